"""The stream processors (`incidentflow processors`): a faust app over `incident.changes`.

One agent (`concurrency=1`, platform-notes: faust bug #606) takes up to `MAX_BATCH` change
messages at a time with `noack_take`, and `ChangeSink.apply` writes all five processors' effects
(rollups, recurrence, patterns, costs, lessons) for them in one PostgreSQL transaction
(`storage.analytics_store`). The messages are acked only after that transaction committed, so a
crash replays them, and the processors' stored snapshots make a replay a no-op. A database error
is retried in place with back-off; when the retries run out the worker crashes (exit status 1)
rather than ack what it could not write. A message that is not an incident snapshot is recorded
in `dead_letters` (same transaction) and acked.

A second agent, built the same way, reads the lesson commands topic when the app is given one
(`LessonCommandsInput`; its sink is `workers.lesson_commands.CommandSink`); it can send dead-letter
copies with the app's producer.

faust state lives in PostgreSQL only: no Tables, no web server, no leader topic; the topics must
exist before the worker starts (`workers.topics.ensure_topics`). The app records its Prometheus
metrics in a `workers.telemetry.ProcessorMetrics`, which the process serves.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import faust
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy.exc import SQLAlchemyError

from domain.contracts import DeadLetterReason, Rejection
from domain.snapshot import IncidentSnapshot, parse_snapshot
from storage.analytics_store import AppliedBatch
from storage.effects import DeadLetterRow
from workers.changes import DeadLetterRecord
from workers.telemetry import ProcessorMetrics

log = logging.getLogger("incidentflow.processors")

MAX_BATCH = 500
BATCH_WITHIN_SECONDS = 0.5
RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0, 5.0, 5.0, 10.0, 10.0)
"""Back-off between attempts of one batch (about 34 s in all); then the worker crashes."""
LAG_EVERY_SECONDS = 5.0
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ChangeMessage:
    """One consumed record (of `incident.changes`, or of the lesson commands topic)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class SnapshotWriter(Protocol):
    """Writes a batch in one transaction, or raises having written nothing."""

    async def apply(
        self, snapshots: Sequence[IncidentSnapshot], dead_letters: Sequence[DeadLetterRow] = ()
    ) -> AppliedBatch: ...


class ChangeSink:
    """Decodes change messages and applies them with retries; see the module docstring.

    With `metrics`, each batch is recorded once it committed (and each retry as it happens).
    """

    def __init__(
        self,
        writer: SnapshotWriter,
        *,
        retry_delays: Sequence[float] = RETRY_DELAYS,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        metrics: ProcessorMetrics | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._writer = writer
        self._delays = tuple(retry_delays)
        self._sleep = sleep
        self._metrics = metrics
        self._clock = clock

    async def apply(self, messages: Sequence[ChangeMessage]) -> AppliedBatch:
        """Apply the batch; raises the last database error once the retries are exhausted."""
        started = began = self._clock()
        if self._metrics is not None:
            self._metrics.read(len(messages))
        snapshots, dead_letters = decode(messages)

        async def write() -> AppliedBatch:
            nonlocal began
            began = self._clock()
            return await self._writer.apply(snapshots, dead_letters)

        on_retry = self._metrics.retry if self._metrics is not None else None
        what = f"batch of {len(messages)} changes"
        result = await retried(write, what, self._delays, self._sleep, on_retry=on_retry)
        committed = self._clock()
        if self._metrics is not None:
            self._metrics.batch(len(messages), committed - started, committed - began)
            _record(self._metrics, messages, dead_letters, result)
        return result


async def retried(
    attempt: Callable[[], Awaitable[T]],
    what: str,
    delays: Sequence[float],
    sleep: Callable[[float], Awaitable[Any]],
    *,
    errors: tuple[type[BaseException], ...] = (SQLAlchemyError, OSError),
    operation: str = "database",
    on_retry: Callable[[str], None] | None = None,
) -> T:
    """`attempt()`, called again after each delay while it raises one of `errors` (logged, and
    counted with `on_retry(operation)`); the last error is raised once the delays run out."""
    for number, delay in enumerate((*delays, None), start=1):
        try:
            return await attempt()
        except errors as error:
            if delay is None:
                raise
            log.warning(
                "%s failed (attempt %d: %s: %s); retrying in %.1fs",
                what, number, type(error).__name__, error, delay,
            )  # fmt: skip
            if on_retry is not None:
                on_retry(operation)
            await sleep(delay)
    raise AssertionError("unreachable")


def _record(
    metrics: ProcessorMetrics,
    messages: Sequence[ChangeMessage],
    dead_letters: Sequence[DeadLetterRow],
    result: AppliedBatch,
) -> None:
    """A committed batch's counts, and each partition's dead-letter share."""
    for processor, count in result.applied.items():
        metrics.applied(processor, count)
    for processor, count in result.stale.items():
        metrics.stale(processor, count)
    for reason, count in Counter(row.reason for row in dead_letters).items():
        metrics.dead_lettered(reason, count)
    reasons = {(row.source_partition, row.source_offset): row.reason for row in dead_letters}
    outcomes: dict[int, list[str | None]] = {}
    for message in messages:
        outcome = reasons.get((message.partition, message.offset))
        outcomes.setdefault(message.partition, []).append(outcome)
    for partition, batch in outcomes.items():
        report = metrics.outcomes(partition, batch)
        if report.started:
            log.error("dead-letter guard: %s", report.describe(metrics.guard.share))


def decode(
    messages: Sequence[ChangeMessage],
) -> tuple[list[IncidentSnapshot], list[DeadLetterRow]]:
    """The snapshots of the messages, and a dead-letter row for each message that is none
    (`invalid_json` or `schema_violation`, the detail naming the field at fault)."""
    snapshots: list[IncidentSnapshot] = []
    dead: list[DeadLetterRow] = []
    for message in messages:
        parsed = parse_snapshot(message.value)
        if isinstance(parsed, Rejection):
            dead.append(_dead_letter(message, parsed.reason, parsed.detail))
        else:
            snapshots.append(parsed)
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


class RecordSink(Protocol):
    """What an agent hands its batches to; raises having written nothing."""

    async def apply(self, messages: Sequence[ChangeMessage]) -> object: ...


DeadLetterSend = Callable[[DeadLetterRecord], Awaitable[None]]
"""Sends one dead-letter copy to the dead-letter topic and waits for its delivery."""


@dataclass(frozen=True, slots=True)
class LessonCommandsInput:
    """The lesson commands agent: its topic, the dead-letter topic, and the factory of its sink,
    given the function that sends dead-letter copies with the app's producer."""

    topic: str
    deadletter_topic: str
    sink: Callable[[DeadLetterSend], Awaitable[RecordSink]]


def create_app(
    app_id: str,
    bootstrap_servers: str,
    changes_topic: str,
    sink: Callable[[], Awaitable[ChangeSink]],
    *,
    close: Callable[[], Awaitable[None]] | None = None,
    datadir: Path | None = None,
    metrics: ProcessorMetrics | None = None,
    lesson_commands: LessonCommandsInput | None = None,
) -> faust.App:
    """The faust app with its agents; connects to nothing until a worker starts it.

    `sink` is awaited once, inside the worker's event loop, to build the sink (and its engine);
    `close` is awaited when an agent stops (so it must tolerate a second call). The process
    environment is not read (`env={}`): every setting is passed here. faust creates (empty) data
    directories under `datadir`. With `metrics`, the app also counts rebalances and refreshes the
    consumer lag of the changes topic.
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
    _add_agent(app, "apply_changes", changes_topic, sink, close)
    if lesson_commands is not None:
        deadletter_topic = lesson_commands.deadletter_topic

        async def send(record: DeadLetterRecord) -> None:
            await app.producer.send_and_wait(
                deadletter_topic, record.key, record.value, None, None, record.headers
            )

        async def command_sink() -> RecordSink:
            return await lesson_commands.sink(send)

        _add_agent(app, "apply_lesson_commands", lesson_commands.topic, command_sink, close)
    if metrics is not None:
        _observe(app, metrics, changes_topic, bootstrap_servers)
    return app


def _add_agent(
    app: faust.App,
    name: str,
    topic_name: str,
    sink: Callable[[], Awaitable[RecordSink]],
    close: Callable[[], Awaitable[None]] | None,
) -> None:
    """An agent on `topic_name` (`concurrency=1`) that hands batches taken with `noack_take` to
    the sink and acks them only once it returned; a batch it cannot apply crashes the app."""
    topic = app.topic(topic_name, key_type=bytes, value_type=bytes)

    async def apply_batches(stream: Any) -> None:  # a faust Stream (its stub lacks noack_take)
        batch_sink = await sink()
        try:
            async for events in stream.noack_take(MAX_BATCH, within=BATCH_WITHIN_SECONDS):
                batch = [_message(event) for event in events]
                try:
                    await batch_sink.apply(batch)
                except Exception as error:
                    log.critical("cannot apply a batch of %s; stopping the worker", topic_name,
                                 exc_info=error)  # fmt: skip
                    await app.crash(error)
                    raise
                for event in events:
                    await stream.ack(event)
        finally:
            if close is not None:
                await close()

    app.agent(topic, name=name, concurrency=1)(apply_batches)


def _observe(
    app: faust.App,
    metrics: ProcessorMetrics,
    topic: str,
    bootstrap_servers: str,
) -> None:
    """Count assignments (a partition no longer assigned loses its series) and, while the app
    runs, refresh the lag every `LAG_EVERY_SECONDS`."""

    async def on_assigned(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        (assigned,) = args  # the signal sends the set of assigned TPs
        metrics.rebalance()
        metrics.keep_partitions(tp.partition for tp in assigned if tp.topic == topic)

    app.on_partitions_assigned.connect(on_assigned)

    async def refresh_lag() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
        started = failing = False
        try:
            while True:
                try:
                    if not started:
                        await admin.start()
                        started = True
                    metrics.lags(await _consumer_lag(app, admin, topic))
                    failing = False
                except Exception as error:  # the next refresh tries again
                    if not failing:
                        log.warning("cannot read the consumer lag (%s: %s)",
                                    type(error).__name__, error)  # fmt: skip
                    failing = True
                await asyncio.sleep(LAG_EVERY_SECONDS)
        finally:
            await admin.close()

    app.task(refresh_lag)


async def _consumer_lag(app: faust.App, admin: AIOKafkaAdminClient, topic: str) -> dict[int, int]:
    """Per assigned partition of `topic`: its end offset minus the group's committed offset (the
    log start offset if nothing was committed). The end offset is the broker's: on tansu the
    last batch's base offset + 1, so the lag there is a lower bound, short by up to the size of
    the last batch produced."""
    tps = sorted(tp for tp in app.consumer.assignment() if tp.topic == topic)
    if not tps:
        return {}
    ends = await app.consumer.highwaters(*tps)
    offsets = await admin.list_consumer_group_offsets(app.conf.id, partitions=tps)
    committed = {tp: offsets[tp].offset for tp in tps if tp in offsets and offsets[tp].offset >= 0}
    missing = [tp for tp in tps if tp not in committed]
    if missing:
        committed.update(await app.consumer.earliest_offsets(*missing))
    return {tp.partition: ends[tp] - committed[tp] for tp in tps}


def _message(event: Any) -> ChangeMessage:
    message = event.message
    return ChangeMessage(
        message.topic, message.partition, message.offset, message.key, message.value
    )
