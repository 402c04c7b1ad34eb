"""The stream processors (`incidentflow processors`): a faust app over `incident.changes`.

One agent (`concurrency=1`, platform-notes: faust bug #606) takes up to `MAX_BATCH` change
messages at a time with `noack_take`, and `ChangeSink.apply` writes all four processors' effects
(rollups, recurrence, patterns, costs) for them in one PostgreSQL transaction
(`storage.analytics_store`). The messages are acked only after that transaction committed, so a
crash replays them, and the processors' stored snapshots make a replay a no-op. A database error
is retried in place with back-off; when the retries run out the worker crashes (exit status 1)
rather than ack what it could not write. A message that is not an incident snapshot is recorded
in `dead_letters` (same transaction) and acked.

faust state lives in PostgreSQL only: no Tables, no web server, no leader topic; the changes
topic must exist before the worker starts (`workers.topics.ensure_topics`).
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import faust
import orjson
from sqlalchemy.exc import SQLAlchemyError

from domain.analytics import InvalidChange, Snapshot, check_snapshot
from domain.contracts import DeadLetterReason
from storage.analytics_store import AppliedBatch
from storage.ingest_store import DeadLetterRow

log = logging.getLogger("incidentflow.processors")

MAX_BATCH = 500
BATCH_WITHIN_SECONDS = 0.5
RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0, 5.0, 5.0, 10.0, 10.0)
"""Back-off between attempts of one batch (about 34 s in all); then the worker crashes."""


@dataclass(frozen=True, slots=True)
class ChangeMessage:
    """One consumed `incident.changes` record."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class SnapshotWriter(Protocol):
    """Writes a batch in one transaction, or raises having written nothing."""

    async def apply(
        self, snapshots: Sequence[Snapshot], dead_letters: Sequence[DeadLetterRow] = ()
    ) -> AppliedBatch: ...


class ChangeSink:
    """Decodes change messages and applies them with retries; see the module docstring."""

    def __init__(
        self,
        writer: SnapshotWriter,
        *,
        retry_delays: Sequence[float] = RETRY_DELAYS,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self._writer = writer
        self._delays = tuple(retry_delays)
        self._sleep = sleep
        self.applied = 0
        self.messages = 0

    async def apply(self, messages: Sequence[ChangeMessage]) -> AppliedBatch:
        """Apply the batch; raises the last database error once the retries are exhausted."""
        snapshots, dead_letters = decode(messages)
        for attempt, delay in enumerate((*self._delays, None), start=1):
            try:
                result = await self._writer.apply(snapshots, dead_letters)
            except (SQLAlchemyError, OSError) as error:
                if delay is None:
                    raise
                log.warning(
                    "batch of %d changes failed (attempt %d: %s: %s); retrying in %.1fs",
                    len(messages), attempt, type(error).__name__, error, delay,
                )  # fmt: skip
                await self._sleep(delay)
            else:
                self.messages += len(messages)
                self.applied += max(result.applied.values(), default=0)
                return result
        raise AssertionError("unreachable")


def decode(messages: Sequence[ChangeMessage]) -> tuple[list[Snapshot], list[DeadLetterRow]]:
    """The snapshots of the messages, and a dead-letter row for each message that is none."""
    snapshots: list[Snapshot] = []
    dead: list[DeadLetterRow] = []
    for message in messages:
        try:
            snapshots.append(check_snapshot(orjson.loads(message.value or b"")))
        except orjson.JSONDecodeError as error:
            dead.append(_dead_letter(message, DeadLetterReason.INVALID_JSON, str(error)))
        except InvalidChange as error:
            dead.append(_dead_letter(message, DeadLetterReason.SCHEMA_VIOLATION, str(error)))
    for row in dead:
        log.error("change message %s/%d@%d rejected: %s", row.source_topic,
                  row.source_partition, row.source_offset, row.detail)  # fmt: skip
    return snapshots, dead


def _dead_letter(message: ChangeMessage, reason: DeadLetterReason, detail: str) -> DeadLetterRow:
    return DeadLetterRow(
        message.topic, message.partition, message.offset, message.key, reason.value, detail,
        message.value,
    )  # fmt: skip


def broker_urls(bootstrap_servers: str) -> list[str]:
    """faust broker URLs for a `host:port[,host:port]` bootstrap list."""
    return [f"kafka://{server.strip()}" for server in bootstrap_servers.split(",") if server]


def create_app(
    app_id: str,
    bootstrap_servers: str,
    changes_topic: str,
    sink: Callable[[], Awaitable[ChangeSink]],
    *,
    close: Callable[[], Awaitable[None]] | None = None,
    datadir: Path | None = None,
) -> faust.App:
    """The faust app with its one agent; connects to nothing until a worker starts it.

    `sink` is awaited once, inside the worker's event loop, to build the sink (and its engine);
    `close` is awaited when the agent stops. The process environment is not read (`env={}`):
    every setting is passed here. faust creates (empty) data directories under `datadir`.
    """
    app = faust.App(
        app_id,
        env={},
        broker=broker_urls(bootstrap_servers),
        value_serializer="raw",
        key_serializer="raw",
        web_enabled=False,
        autodiscover=False,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=4,
        broker_heartbeat_interval=0.5,
        broker_rebalance_timeout=4,
        datadir=datadir or Path(tempfile.gettempdir()) / f"{app_id}-faust",
    )
    topic = app.topic(changes_topic, key_type=bytes, value_type=bytes)

    async def apply_changes(stream: Any) -> None:  # a faust Stream (its stub lacks noack_take)
        change_sink = await sink()
        try:
            async for events in stream.noack_take(MAX_BATCH, within=BATCH_WITHIN_SECONDS):
                batch = [_message(event) for event in events]
                try:
                    await change_sink.apply(batch)
                except Exception as error:
                    log.critical("cannot apply a batch of changes; stopping the worker",
                                 exc_info=error)  # fmt: skip
                    await app.crash(error)
                    raise
                for event in events:
                    await stream.ack(event)
        finally:
            if close is not None:
                await close()

    app.agent(topic, name="apply_changes", concurrency=1)(apply_changes)
    return app


def _message(event: Any) -> ChangeMessage:
    message = event.message
    return ChangeMessage(
        message.topic, message.partition, message.offset, message.key, message.value
    )
