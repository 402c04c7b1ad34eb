"""Publishing a committed batch: incident changes and dead-letter copies, until they are sent.

Everything published here is already committed in PostgreSQL, so a failed send is retried in
place (with backoff, counted against the broker's outage limit) rather than undoing anything.
A dead-letter copy the broker refuses as too large is sent again with its value cut to the first
64 KiB and an `x-payload-truncated` header: the table keeps the same first bytes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from aiokafka.errors import MessageSizeTooLargeError, RecordTooLargeError

from domain.incidents import Incident
from storage.effects import BatchEffects, DeadLetterRow
from storage.schema import MAX_DEAD_LETTER_PAYLOAD
from workers.changes import change_message, dead_letter_record
from workers.faults import Outage
from workers.telemetry import IngestMetrics

log = logging.getLogger("incidentflow.ingest")

TOO_LARGE = (MessageSizeTooLargeError, RecordTooLargeError)


class Producer(Protocol):
    """What publishing needs of an aiokafka producer: `send` returns a delivery future."""

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> Awaitable[Any]: ...


@dataclass(frozen=True, slots=True)
class Publication:
    """What one committed batch (or a reloaded partition) publishes."""

    changes: list[tuple[bytes, bytes]] = field(default_factory=list)
    """(key, value) of each `incident.changes` message."""
    dead_letters: list[DeadLetterRow] = field(default_factory=list)

    @classmethod
    def of_batch(cls, changes: list[tuple[bytes, bytes]], effects: BatchEffects) -> Publication:
        return cls(changes, list(effects.dead_letters))

    @classmethod
    def of_stored(
        cls, incidents: Iterable[Incident], dead_letters: Iterable[DeadLetterRow]
    ) -> Publication:
        """The last batch of a partition, as loaded again from PostgreSQL."""
        changes = [(i.tenant_id.encode(), change_message(i.snapshot())) for i in incidents]
        return cls(changes, list(dead_letters))


@dataclass(frozen=True, slots=True)
class _Record:
    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] | None = None
    dead_letter: DeadLetterRow | None = None


class Publisher:
    """Sends publications with `producer`, retrying failed sends until the broker outage limit."""

    def __init__(
        self,
        producer: Producer,
        *,
        changes_topic: str,
        deadletter_topic: str,
        outage: Outage,
        metrics: IngestMetrics,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self._producer = producer
        self._changes_topic = changes_topic
        self._deadletter_topic = deadletter_topic
        self._outage = outage
        self._metrics = metrics
        self._sleep = sleep

    async def publish(self, publication: Publication) -> None:
        """Send every record of `publication`; returns once all were delivered.

        Raises `OutageExceeded` when the broker stays unavailable past the outage limit.
        """
        pending = [_Record(self._changes_topic, key, value) for key, value in publication.changes]
        pending += [self._dead_letter(row) for row in publication.dead_letters]
        while pending:
            failed: list[tuple[_Record, BaseException]] = []
            futures: list[tuple[_Record, Awaitable[Any]]] = []
            for record in pending:
                try:
                    future = await self._producer.send(
                        record.topic, value=record.value, key=record.key, headers=record.headers
                    )
                except Exception as error:  # refused before sending (size, no metadata)
                    failed.append((record, error))
                else:
                    futures.append((record, future))
            results = await asyncio.gather(*(f for _, f in futures), return_exceptions=True)
            failed += [
                (record, result)
                for (record, _), result in zip(futures, results, strict=True)
                if isinstance(result, BaseException)
            ]
            pending = await self._retry(failed)
        self._outage.recovered()

    def _dead_letter(self, row: DeadLetterRow) -> _Record:
        copy = dead_letter_record(row)
        return _Record(self._deadletter_topic, copy.key, copy.value, copy.headers, row)

    async def _retry(self, failed: list[tuple[_Record, BaseException]]) -> list[_Record]:
        """The records to send again: too large dead letters cut, the rest after a backoff."""
        if not failed:
            return []
        again: list[_Record] = []
        errors: list[BaseException] = []
        for record, error in failed:
            row = record.dead_letter
            if isinstance(error, TOO_LARGE) and row is not None and not row.truncated:
                log.warning("dead-letter copy of %s[%d]@%d too large for the broker; sending its "
                            "first %d bytes", row.source_topic, row.source_partition,
                            row.source_offset, MAX_DEAD_LETTER_PAYLOAD)  # fmt: skip
                cut = replace(
                    row,
                    payload=(row.payload or b"")[:MAX_DEAD_LETTER_PAYLOAD],
                    payload_bytes=len(row.payload or b""),
                )
                again.append(self._dead_letter(cut))
            else:
                again.append(record)
                errors.append(error)
        if errors:
            self._metrics.retry("publish")
            await self._sleep(self._outage.failed(errors[0], f"publishing {len(failed)} messages"))
        return again
