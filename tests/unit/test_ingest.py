"""The ingest worker's core (`workers.ingest.IngestWorker`) against fakes of its protocols.

No broker and no database: `tests.fakes` implements the consumer, the store and the producer the
worker talks to, and a manual clock replaces time. What runs here is the real loop: the time merge
and its waits, backpressure, the idle watermark advance, batch building with duplicates, the
rewind of a failed batch, the search for a refused message, outages and the dead-letter guard.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from aiokafka import TopicPartition

from domain.incidents import incident_id_for
from domain.settings import Settings
from tests.builders import T0, failure, secs, violation, wire
from tests.fakes import DatabaseError, FakeConsumer, FakeProducer, FakeStore, ManualClock
from workers.faults import OutageExceeded
from workers.guard import DeadLettersAboveLimit
from workers.ingest import IngestWorker

F, V, C = "failures", "violations", "commands"
STEPS = 2_000
"""Event-loop turns a test lets the worker run before it decides that something never happens."""


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "failures_topic": F,
        "violations_topic": V,
        "commands_topic": C,
        "changes_topic": "changes",
        "deadletter_topic": "deadletter",
        "idle_watermark_advance": False,
        "max_task_idle_ms": 100,
        "ingest_max_batch": 100,
        "startup_timeout_seconds": 5,
    }
    return Settings(**(values | overrides))


Logs = dict[TopicPartition, list[tuple[bytes | None, bytes | None]]]


def logs(partitions: int = 1) -> Logs:
    return {TopicPartition(t, p): [] for t in (F, V, C) for p in range(partitions)}


def tp(topic: str, partition: int = 0) -> TopicPartition:
    return TopicPartition(topic, partition)


class Harness:
    """A worker over fakes, with a manual clock."""

    def __init__(self, log: Logs, **overrides: Any) -> None:
        self.clock = ManualClock(T0 + timedelta(days=1))
        self.consumer = FakeConsumer(log, self.clock)
        self.store = FakeStore()
        self.producer = FakeProducer()
        self.settings = settings(**overrides)
        self.worker = self.new_worker()

    def new_worker(self) -> IngestWorker:
        return IngestWorker(
            self.settings, self.store, self.producer,
            wall_clock=self.clock.now, clock=self.clock.monotonic, sleep=self.clock.sleep,
        )  # fmt: skip

    async def run(self, consumer: FakeConsumer | None = None) -> int:
        consumer = consumer or self.consumer
        await self.worker.join(lambda: consumer)
        return await self.worker.run(stop_when_caught_up=True)

    def start(self) -> asyncio.Task[int]:
        return asyncio.create_task(self.run())


async def turns(condition: Callable[[], bool], steps: int = STEPS) -> bool:
    """Let the event loop turn until `condition` holds; False if it never did."""
    for _ in range(steps):
        if condition():
            return True
        await asyncio.sleep(0)
    return condition()


def add(log: Logs, topic: str, *values: bytes | None, partition: int = 0) -> None:
    log[tp(topic, partition)].extend((b"acme", value) for value in values)


# -- the time merge ----------------------------------------------------------------------------


async def test_the_merge_waits_for_a_partition_a_fetch_away_however_long_the_fetch_takes() -> None:
    log = logs()
    add(log, F, wire(failure("f1", at=T0 + secs(10))))
    add(log, V, wire(violation("v1", at=T0 + secs(5))))
    h = Harness(log, ingest_max_batch=1)
    h.consumer.held.add(tp(V))
    h.consumer.highwaters[tp(V)] = 1  # known to hold a message, whose fetch is late
    task = h.start()
    for _ in range(20):  # far past max_task_idle_ms
        h.clock.advance(1.0)
        assert not await turns(lambda: bool(h.store.order), steps=50)
    h.consumer.held.clear()
    assert await task == 0
    assert h.store.order == ["v1", "f1"]


async def test_before_any_fetch_response_the_merge_waits_too() -> None:
    log = logs()
    add(log, F, wire(failure("f1", at=T0 + secs(10))))
    add(log, V, wire(violation("v1", at=T0 + secs(5))))
    h = Harness(log, ingest_max_batch=1)
    h.consumer.held.add(tp(V))  # no end offset known at all
    task = h.start()
    h.clock.advance(10.0)
    assert not await turns(lambda: bool(h.store.order), steps=200)
    h.consumer.held.clear()
    assert await task == 0
    assert h.store.order == ["v1", "f1"]


async def test_a_partition_at_its_end_is_waited_for_at_most_max_task_idle_ms() -> None:
    log = logs()
    add(log, F, wire(failure("f1", at=T0 + secs(10))))
    h = Harness(log)  # the violations and commands topics are empty: at their end
    started = h.clock.monotonic()
    assert await h.run() == 0
    assert h.store.order == ["f1"]
    assert 0.1 <= h.clock.monotonic() - started < 0.5  # the fake consumer's waits are the clock


async def test_a_future_event_at_a_head_does_not_hold_back_the_messages_behind_it() -> None:
    log = logs()
    add(
        log,
        F,
        wire(failure("future", at=T0 + timedelta(days=3))),
        wire(failure("f2", at=T0 + secs(20))),
    )
    add(log, V, wire(violation("v1", at=T0 + secs(10))), wire(violation("v2", at=T0 + secs(30))))
    h = Harness(log, ingest_max_batch=1)
    assert await h.run() == 0
    assert h.store.order == ["v1", "f2", "v2"]  # by time; without the read-time guard f2 is late
    (dead,) = h.store.dead_letters.values()
    assert dead.reason == "future_timestamp"


# -- batches -----------------------------------------------------------------------------------


async def test_duplicates_inside_one_batch_and_across_pipelined_batches_apply_once() -> None:
    log = logs()
    e1, e2, e3 = (wire(failure(i, at=T0 + secs(n))) for n, i in enumerate(["e1", "e2", "e3"]))
    add(log, F, e1, e1, e2, e1, e3, e2)
    h = Harness(log, ingest_max_batch=2)
    h.store.gate = asyncio.Event()  # the first batch stays in flight while the next is built
    task = h.start()
    assert await turns(lambda: h.store.lookups >= 2)  # the second batch is built ...
    assert not h.store.saves  # ... while the first is being written
    h.store.gate.set()
    assert await task == 0  # FakeStore fails on an event written twice
    assert sorted(h.store.failures) == ["e1", "e2", "e3"]
    assert h.worker.stats.events == 3


async def test_backpressure_pauses_a_partition_that_buffers_more_than_two_batches() -> None:
    log = logs()
    add(log, F, *(wire(failure(f"e{n}", at=T0 + secs(10 + n))) for n in range(12)))
    add(log, V, wire(violation("v1", at=T0 + secs(5))))
    h = Harness(log, ingest_max_batch=5)
    h.consumer.held.add(tp(V))
    h.consumer.highwaters[tp(V)] = 1
    task = h.start()
    assert await turns(lambda: tp(F) in h.consumer.paused)
    assert not h.store.order
    h.consumer.held.clear()
    assert await task == 0
    assert tp(F) not in h.consumer.paused
    assert len(h.store.order) == 13


async def test_a_quiet_partition_follows_the_wall_clock_and_its_incidents_resolve() -> None:
    log = logs()
    add(log, F, wire(failure("e1", at=T0)))
    h = Harness(log, idle_watermark_advance=True, idle_watermark_seconds=60)
    await h.worker.join(lambda: h.consumer)
    task = asyncio.create_task(h.worker.run())
    assert await turns(lambda: "e1" in h.store.failures)
    incident = h.store.incidents[incident_id_for("e1")]
    assert incident["lifecycle_state"] == "ACTIVE"
    h.clock.advance(61)
    assert await turns(
        lambda: h.store.incidents[incident_id_for("e1")]["lifecycle_state"] == "RESOLVED"
    )
    assert h.store.incidents[incident_id_for("e1")]["resolved_at"] == T0 + secs(900)
    h.worker.stop()
    assert await task == 0


# -- failures ----------------------------------------------------------------------------------


async def test_a_failed_first_batch_is_read_again_from_the_partitions_first_offset() -> None:
    log = logs()
    add(log, F, *(wire(failure(f"e{n}", at=T0 + secs(n))) for n in range(5)))
    h = Harness(log)
    h.store.errors.append(DatabaseError("40001", "could not serialize access"))
    assert await h.run() == 0
    assert sorted(h.store.failures) == [f"e{n}" for n in range(5)]
    assert h.store.offsets[(F, 0)] == 5


async def test_a_refused_message_is_found_by_halving_and_the_rest_is_applied() -> None:
    log = logs()
    ids = [f"e{n}" for n in range(9)]
    add(log, F, *(wire(failure(i, at=T0 + secs(n))) for n, i in enumerate(ids)))
    h = Harness(log, ingest_max_batch=8)

    def refuse(batch: Any) -> str | None:
        if any(event.event_id == "e5" for event, _ in batch.failures):
            return 'new row violates check constraint "no_e5"'
        return None

    h.store.refuse = refuse
    assert await h.run() == 0
    assert sorted(h.store.failures) == [i for i in ids if i != "e5"]
    (dead,) = h.store.dead_letters.values()
    assert (dead.source_offset, dead.reason) == (5, "storage_rejected")
    assert "no_e5" in dead.detail
    (copy,) = h.producer.on("deadletter")
    assert dict(copy.headers or [])["x-error-reason"] == b"storage_rejected"


async def test_a_database_outage_is_ridden_through_within_the_limit() -> None:
    log = logs()
    add(log, F, *(wire(failure(f"e{n}", at=T0 + secs(n))) for n in range(3)))
    h = Harness(log, outage_seconds=60)
    lost = DatabaseError("08006", "server closed the connection unexpectedly")
    h.store.errors += [lost] * 4
    h.store.read_errors += [lost] * 3
    assert await h.run() == 0
    assert sorted(h.store.failures) == ["e0", "e1", "e2"]


async def test_a_database_outage_past_the_limit_stops_the_worker_with_a_clear_message() -> None:
    log = logs()
    add(log, F, wire(failure("e1", at=T0)))
    h = Harness(log, outage_seconds=30)
    h.store.errors += [DatabaseError("57P01", "terminating connection")] * 1000
    h.store.read_errors += [DatabaseError("57P01", "terminating connection")] * 1000
    with pytest.raises(OutageExceeded, match=r"PostgreSQL unavailable for .* limit is 30 s"):
        await h.run()


async def test_a_start_that_hangs_is_retried_with_a_new_consumer() -> None:
    log = logs()
    add(log, F, wire(failure("e1", at=T0)))
    h = Harness(log, startup_timeout_seconds=0.05)
    stuck = FakeConsumer(log, h.clock)
    stuck.hang_start = True
    consumers = iter([stuck, h.consumer])
    await h.worker.join(lambda: next(consumers))
    assert stuck.stopped and h.consumer.started
    assert await h.worker.run(stop_when_caught_up=True) == 0
    assert "e1" in h.store.failures


# -- dead letters ------------------------------------------------------------------------------


async def test_a_message_without_key_or_value_reaches_the_dead_letter_topic() -> None:
    log = logs()
    log[tp(F)].append((None, None))
    log[tp(F)].append((None, b"{not json"))
    h = Harness(log)
    assert await h.run() == 0
    copies = h.producer.on("deadletter")
    assert [c.value for c in copies] == [b"", b"{not json"]
    headers = [dict(c.headers or []) for c in copies]
    assert headers[0]["x-value-missing"] == b"true" and "x-value-missing" not in headers[1]
    assert [h["x-source-offset"] for h in headers] == [b"0", b"1"]


async def test_the_next_owner_sends_the_last_batchs_dead_letters_again() -> None:
    log = logs()
    big = b"{" + b" " * 100_000
    log[tp(F)].append((b"acme", big))
    h = Harness(log)
    assert await h.run() == 0
    assert len(h.producer.on("deadletter")) == 1
    # The worker died before its copies were sent: the table keeps the first 64 KiB.
    (row,) = h.store.dead_letters.values()
    kept = row.payload[: 64 * 1024] if row.payload else None
    source = (row.source_topic, row.source_partition, row.source_offset)
    h.store.dead_letters[source] = replace(row, payload=kept, payload_bytes=len(big))
    h.producer.sent.clear()
    h.worker = h.new_worker()
    assert await h.run(FakeConsumer(log, h.clock)) == 0
    (copy,) = h.producer.on("deadletter")
    assert copy.value == kept
    assert dict(copy.headers or [])["x-payload-truncated"] == str(len(big)).encode()


async def test_a_dead_letter_too_large_for_the_broker_is_sent_cut() -> None:
    log = logs()
    huge = b"[" * 70_000
    log[tp(F)].append((b"acme", huge))
    h = Harness(log)
    h.producer.max_bytes = 65_536
    assert await h.run() == 0
    (copy,) = h.producer.on("deadletter")
    assert len(copy.value or b"") == 65_536
    assert dict(copy.headers or [])["x-payload-truncated"] == b"70000"


async def test_the_dead_letter_guard_can_stop_the_worker() -> None:
    log = logs()
    add(log, F, *[b"{wrong schema" for _ in range(20)])
    h = Harness(log, dead_letter_guard_window=10, dead_letter_guard_share=0.5,
                dead_letter_guard_action="stop")  # fmt: skip
    with pytest.raises(DeadLettersAboveLimit, match="partition 0: 100% of the last 10 messages"):
        await h.run()
    assert len(h.store.dead_letters) >= 10  # what it read was committed first


async def test_the_dead_letter_guard_warns_by_default(caplog: pytest.LogCaptureFixture) -> None:
    log = logs()
    add(log, F, *[b"{wrong schema" for _ in range(20)])
    add(log, F, wire(failure("e1", at=T0)))
    h = Harness(log, dead_letter_guard_window=10)
    assert await h.run() == 0
    assert "dead-letter guard: partition 0" in caplog.text
    assert "e1" in h.store.failures
