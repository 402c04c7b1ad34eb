"""Fakes of the ingest worker's small protocols (`workers.ingest.Consumer`, `Store`,
`workers.publishing.Producer`) and a manual clock, for unit tests of the worker core.

They keep state in memory and behave like the real ones where the worker can tell: the consumer
hands out records from per-topic-partition logs and reports an end offset (high watermark) only
after a "fetch" of that partition; the store writes a batch all or nothing and reads back what it
wrote, as PostgreSQL does.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import ConsumerRecord

from domain.incidents import Incident, Key
from storage.effects import BatchEffects, DeadLetterRow, StoredPartition
from storage.rows import incident_from_row


class ManualClock:
    """A monotonic clock and a wall clock that move only when told (`advance`)."""

    def __init__(self, wall: datetime) -> None:
        self.seconds = 1000.0
        self.wall = wall

    def monotonic(self) -> float:
        return self.seconds

    def now(self) -> datetime:
        return self.wall

    def advance(self, seconds: float) -> None:
        self.seconds += seconds
        self.wall += timedelta(seconds=seconds)

    async def sleep(self, seconds: float) -> None:
        """A sleep that moves the clocks instead of waiting."""
        self.advance(seconds)
        await asyncio.sleep(0)


def record(topic: str, partition: int, offset: int, value: bytes | None,
           key: bytes | None = b"acme") -> ConsumerRecord[bytes, bytes]:  # fmt: skip
    return ConsumerRecord(
        topic, partition, offset, 0, 0, key, value, None, len(key or b""), len(value or b""), []
    )


class FakeConsumer:
    """Topic partition logs behind the `Consumer` protocol, one member of a one-member group.

    `held` partitions answer no fetch (a slow fetch): their records are not handed out and their
    end offset is not refreshed. `hang_start` makes `start()` wait forever. A call that hands out
    nothing moves `clock` by its timeout, as a real one waits that long.
    """

    def __init__(
        self,
        logs: dict[TopicPartition, list[tuple[bytes | None, bytes | None]]],
        clock: ManualClock | None = None,
    ) -> None:
        self.logs = logs
        self.clock = clock
        self.positions: dict[TopicPartition, int] = {}
        self.highwaters: dict[TopicPartition, int] = {}
        self.paused: set[TopicPartition] = set()
        self.held: set[TopicPartition] = set()
        self.committed: dict[TopicPartition, int] = {}
        self.assigned: set[TopicPartition] = set()
        self.listener: ConsumerRebalanceListener | None = None
        self.hang_start = False
        self.started = False
        self.stopped = False
        self.pause_history: list[TopicPartition] = []

    def subscribe(self, topics: list[str], listener: ConsumerRebalanceListener) -> None:
        self.listener = listener

    async def start(self) -> None:
        if self.hang_start:
            await asyncio.Event().wait()
        self.started = True
        self.assigned = set(self.logs)
        assert self.listener is not None
        await self.listener.on_partitions_assigned(set(self.assigned))

    async def stop(self) -> None:
        self.stopped = True

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
        await asyncio.sleep(0)
        limit = max_records if max_records is not None else 1_000_000
        out: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]] = {}
        for tp in sorted(self.assigned):
            if tp in self.held or tp in self.paused:
                continue
            log = self.logs[tp]
            self.highwaters[tp] = len(log)
            position = self.positions.get(tp, 0)
            take = log[position : position + limit]
            if take:
                out[tp] = [
                    record(tp.topic, tp.partition, position + index, value, key)
                    for index, (key, value) in enumerate(take)
                ]
                self.positions[tp] = position + len(take)
                limit -= len(take)
            if limit <= 0:
                break
        if not out and self.clock is not None:
            self.clock.advance(timeout_ms / 1000)  # nothing arrived: the call waited its timeout
        return out

    def highwater(self, partition: TopicPartition) -> int | None:
        return self.highwaters.get(partition)

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self.positions[partition] = offset

    async def beginning_offsets(
        self, partitions: list[TopicPartition]
    ) -> dict[TopicPartition, int]:
        return {tp: 0 for tp in partitions}

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: len(self.logs[tp]) for tp in partitions}

    async def position(self, partition: TopicPartition) -> int:
        return self.positions.get(partition, 0)

    def pause(self, *partitions: TopicPartition) -> None:
        self.paused.update(partitions)
        self.pause_history.extend(partitions)

    def resume(self, *partitions: TopicPartition) -> None:
        self.paused.difference_update(partitions)

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.committed.update(offsets)


class DatabaseError(Exception):
    """An error with a SQLSTATE, as psycopg raises them."""

    def __init__(self, sqlstate: str, message: str) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


@dataclass
class FakeStore:
    """PostgreSQL as the worker sees it: what committed batches wrote, and nothing else."""

    failures: dict[str, tuple[Any, uuid.UUID]] = field(default_factory=dict)
    violations: dict[str, tuple[Any, uuid.UUID]] = field(default_factory=dict)
    commands: dict[str, Any] = field(default_factory=dict)
    dead_letters: dict[tuple[str, int, int], DeadLetterRow] = field(default_factory=dict)
    incidents: dict[uuid.UUID, dict[str, Any]] = field(default_factory=dict)
    keys: dict[Key, tuple[int, uuid.UUID]] = field(default_factory=dict)
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    partitions: dict[int, dict[str, Any]] = field(default_factory=dict)
    saves: int = 0
    lookups: int = 0
    """Calls of `applied_ids`: one per batch built."""
    order: list[str] = field(default_factory=list)
    """Ids of applied events and commands and sources of dead letters, in the order written."""
    errors: list[BaseException] = field(default_factory=list)
    """Raised, one per call, by the next calls of `save` (nothing written)."""
    read_errors: list[BaseException] = field(default_factory=list)
    """Raised, one per call, by the next reads."""
    refuse: Callable[[BatchEffects], str | None] = lambda batch: None
    """A data check: a message returned refuses the whole batch (SQLSTATE 23514)."""
    gate: asyncio.Event | None = None
    """When set, `save` waits for it (a slow transaction)."""

    def _read(self) -> None:
        if self.read_errors:
            raise self.read_errors.pop(0)

    async def load_partition(self, partition: int, topics: Sequence[str]) -> StoredPartition:
        self._read()
        progress = self.partitions.get(partition, {})
        rows = [row for row in self.incidents.values() if row["partition"] == partition]
        incidents = [incident_from_row(row) for row in rows]
        loaded = {incident.incident_id for incident in incidents}
        return StoredPartition(
            partition=partition,
            watermark=progress.get("watermark"),
            incidents=incidents,
            keys={k: i for k, (p, i) in self.keys.items() if p == partition and i in loaded},
            next_offsets={
                t: o for (t, p), o in self.offsets.items() if p == partition and t in topics
            },
            last_batch_incident_ids=list(progress.get("incident_ids", [])),
            last_batch_dead_letters=[
                self.dead_letters[(t, partition, o)] for t, o in progress.get("dead_letters", [])
            ],
        )

    async def load_incidents(self, incident_ids: Iterable[uuid.UUID]) -> list[Incident]:
        self._read()
        return [incident_from_row(self.incidents[i]) for i in incident_ids if i in self.incidents]

    async def applied_ids(
        self, event_ids: Sequence[str], command_ids: Sequence[str]
    ) -> tuple[set[str], set[str]]:
        self._read()
        self.lookups += 1
        events = {e for e in event_ids if e in self.failures or e in self.violations}
        return events, {c for c in command_ids if c in self.commands}

    async def save(self, batch: BatchEffects) -> None:
        if self.gate is not None:
            await self.gate.wait()
        await asyncio.sleep(0)
        if self.errors:
            raise self.errors.pop(0)
        refusal = self.refuse(batch)
        if refusal is not None:
            raise DatabaseError("23514", refusal)
        for event, incident_id in batch.failures:
            assert event.event_id not in self.failures, f"{event.event_id} applied twice"
            self.failures[event.event_id] = (event, incident_id)
        for event, incident_id in batch.violations:
            assert event.event_id not in self.violations, f"{event.event_id} applied twice"
            self.violations[event.event_id] = (event, incident_id)
        for command in batch.commands:
            self.commands[command.command_id] = command
        self.order += [event.event_id for event, _ in batch.failures + batch.violations]
        for row in batch.dead_letters:
            source = (row.source_topic, row.source_partition, row.source_offset)
            self.dead_letters.setdefault(source, row)
        for effects in batch.partitions:
            for row in effects.incident_rows:
                self.incidents[row["incident_id"]] = dict(row)
            for row in effects.appended_incident_rows:
                stored = self.incidents[row["incident_id"]]
                merged = dict(row)
                for name in ("related_call_ids", "run_ids"):
                    merged[name] = stored[name] + row[name]
                self.incidents[row["incident_id"]] = merged
            for key, incident_id in effects.keys.items():
                self.keys[key] = (effects.partition, incident_id)
            for topic, offset in effects.next_offsets.items():
                self.offsets[(topic, effects.partition)] = offset
            self.partitions[effects.partition] = {
                "watermark": effects.watermark,
                "incident_ids": list(effects.incident_ids),
                "dead_letters": list(effects.dead_letters),
            }
        self.saves += 1

    def applied_events(self) -> dict[str, uuid.UUID]:
        return {e: i for e, (_, i) in (self.failures | self.violations).items()}


@dataclass
class Sent:
    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] | None


class FakeProducer:
    """Records what is sent; `fail` holds errors raised by the next deliveries (one each)."""

    def __init__(self, max_bytes: int | None = None) -> None:
        self.sent: list[Sent] = []
        self.fail: list[BaseException] = []
        self.max_bytes = max_bytes

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[None]:
        from aiokafka.errors import MessageSizeTooLargeError

        if key is None and value is None:
            raise AssertionError("aiokafka needs a key or a value")
        if self.max_bytes is not None and len(value or b"") > self.max_bytes:
            raise MessageSizeTooLargeError("too large")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.fail:
            future.set_exception(self.fail.pop(0))
        else:
            self.sent.append(Sent(topic, key, value, headers))
            future.set_result(None)
        return future

    def on(self, topic: str) -> list[Sent]:
        return [sent for sent in self.sent if sent.topic == topic]
