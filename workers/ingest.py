"""The ingest and aggregation worker (`incidentflow ingest`), on aiokafka.

One consumer group reads the two signal topics and the command topic with range assignment, so
partition p of all three lands on one worker. Per loop it fetches, merges each partition by time,
and for the messages taken runs one batch:

1. one PostgreSQL transaction: applied events, touched incidents, timeline, key map, commands,
   dead letters, and per partition the watermark, the next offsets and the last batch's changes
   and dead letters (`IngestStore.save`);
2. one `incident.changes` message per touched incident, and the dead letters' copies;
3. the Kafka offset commit (for lag monitoring: PostgreSQL holds the offsets we resume from).

A crash anywhere leaves PostgreSQL at the end of the last committed batch, and the worker that
takes the partition over resumes from the offsets stored with it (or the partition's first offset)
and publishes the last batch's changes and dead letters again: each event is applied once.

Faults: a failed batch is re-read from exactly where it started. A database refusal caused by the
data (`workers.faults.is_data_error`) is narrowed down by halving the batch until the message
responsible is found; it is dead-lettered as `storage_rejected` and the rest applied. Any other
database or broker failure is retried with backoff for `outage_seconds`, then the worker stops
with `OutageExceeded`. The consumer's start-up and group join are retried after
`startup_timeout_seconds`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from domain.merge import Pending
from domain.settings import Settings
from workers.batch import Batch, Taken, build_batch, ids_of, named_incidents
from workers.changes import IngestStats
from workers.faults import Outage, WorkerStop, describe, is_data_error
from workers.feed import Fetched, PartitionFeed
from workers.guard import DeadLetterGuard, DeadLettersAboveLimit
from workers.membership import join_group, stop_consumer
from workers.ownership import OwnedPartitions
from workers.protocols import Consumer, Records, Store
from workers.publishing import Producer, Publication, Publisher
from workers.refusals import RefusalSearch
from workers.telemetry import IngestMetrics

log = logging.getLogger("incidentflow.ingest")

IDLE_ADVANCE_EVERY = 1.0
"""Seconds between two idle watermark advances of one partition."""
EVICT_EVERY_BATCHES = 200
PROBE_EVERY = 5.0
"""Seconds between two reads of the end offsets: consumer lag, and a broker health check."""
PROBE_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
GUARD_REPEAT_SECONDS = 60.0
COMMIT_TIMEOUT = 10.0
"""A commit waits for the group coordinator; with the broker away it would wait for good."""


class IngestWorker:
    """Consumes, aggregates and persists; see the module docstring for the batch contract."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        producer: Producer,
        *,
        metrics: IngestMetrics | None = None,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self._settings = settings
        self._store = store
        self.metrics = metrics or IngestMetrics()
        self._wall_clock = wall_clock
        self._clock = clock
        self._sleep = sleep
        self._topics = settings.input_topics
        self._source = {topic: rank for rank, topic in enumerate(self._topics)}
        self._lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._fatal: WorkerStop | None = None
        self._batches = 0
        self._uncommitted: dict[TopicPartition, int] = {}
        self._inflight: asyncio.Task[None] | None = None
        self._inflight_batch: Batch | None = None
        self._database = Outage("PostgreSQL", settings.outage_seconds, clock)
        self._broker = Outage("the broker", settings.outage_seconds, clock)
        self._publisher = Publisher(
            producer,
            changes_topic=settings.changes_topic,
            deadletter_topic=settings.deadletter_topic,
            outage=self._broker,
            metrics=self.metrics,
            sleep=sleep,
        )
        self._owned = OwnedPartitions(
            settings, store, self._publisher, self.metrics,
            database=self._database, broker=self._broker, clock=clock, sleep=sleep,
        )  # fmt: skip
        self._refusals = RefusalSearch()
        self._guard = DeadLetterGuard(
            settings.dead_letter_guard_share, settings.dead_letter_guard_window
        )
        self._guard_logged: dict[int, float] = {}
        self._shares: dict[int, float] = {}
        self.metrics_url: str | None = None
        self.stats = IngestStats()

    @property
    def consumer(self) -> Consumer:
        if self._owned.consumer is None:
            raise RuntimeError("the worker has no consumer: call join() first")
        return self._owned.consumer

    # -- lifecycle -----------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the loop to finish its batch and exit (SIGTERM, Ctrl-C)."""
        self._stopping.set()

    def listener(self) -> ConsumerRebalanceListener:
        return _Rebalance(self)

    async def join(self, make_consumer: Callable[[], Consumer]) -> None:
        """Start a consumer and join the group (`workers.membership.join_group`)."""

        def adopt() -> Consumer:
            if self._owned.consumer is not None:  # the attempt before failed
                self.metrics.retry("join")
            self._owned.consumer = make_consumer()
            return self._owned.consumer

        await join_group(
            adopt,
            list(self._topics),
            self.listener(),
            timeout=self._settings.startup_timeout_seconds,
            outage=self._broker,
            sleep=self._sleep,
        )
        log.info("joined group %s", self._settings.consumer_group)

    async def close(self) -> None:
        """Stop the consumer (bounded: a broker that does not answer cannot hold the exit)."""
        if self._owned.consumer is not None:
            await stop_consumer(self._owned.consumer)
            self._owned.consumer = None

    async def run(self, *, stop_when_caught_up: bool = False) -> int:
        """Consume until stopped, or until caught up if asked; returns the exit code.

        Raises `WorkerStop` when an outage outlasts its limit or the dead-letter guard stops it.
        """
        while not self._stopping.is_set():
            self._raise_fatal()
            if self._owned.unloaded:
                async with self._lock:
                    await self._owned.load_unloaded()
            waiting = any(feed.is_waiting() for feed in self._owned.feeds.values())
            timeout_ms = 5 if waiting else 100
            fetched = await self._fetch(timeout_ms)
            async with self._lock:
                self._push(fetched)
                worked = await self._run_batches()
                self._owned.apply_backpressure()
            self._raise_fatal()
            await self._commit_offsets()
            await self._owned.probe(self._shares)
            if stop_when_caught_up and not worked and not fetched:
                async with self._lock:
                    await self.settle()
                if not self._refusals.busy and await self._owned.caught_up():
                    log.info("caught up on partitions %s", sorted(self._owned.feeds))
                    break
        async with self._lock:
            await self.settle()
        self._raise_fatal()
        await self._commit_offsets()
        return 0

    def _raise_fatal(self) -> None:
        if self._fatal is not None:
            raise self._fatal

    async def _fetch(self, timeout_ms: int) -> Records:
        """Fetch up to a batch: what arrives within the timeout, topped up from the prefetch."""
        limit = self._settings.ingest_max_batch
        try:
            fetched = await self.consumer.getmany(timeout_ms=timeout_ms, max_records=limit)
            count = sum(len(records) for records in fetched.values())
            while fetched and count < limit:
                more = await self.consumer.getmany(timeout_ms=0, max_records=limit - count)
                if not more:
                    break
                for tp, records in more.items():
                    fetched.setdefault(tp, []).extend(records)
                    count += len(records)
        except KafkaError as error:  # the consumer reconnects by itself; the probe counts outages
            log.warning("fetch failed: %s", describe(error))
            return {}
        return fetched

    def _push(self, fetched: Records) -> None:
        now = self._wall_clock()
        for tp, records in fetched.items():
            feed = self._owned.feeds.get(tp.partition)
            if feed is not None and tp.topic in self._source:
                self.metrics.read(tp.topic, feed.push(self._source[tp.topic], records, now))

    async def _run_batches(self) -> bool:
        """Build batches until the merges hold nothing ready; True if any was built.

        Batches are pipelined: batch N+1 is computed while batch N is being written, and N+1 is
        written only after N committed. Dedupe therefore looks at N's ids as well as PostgreSQL.
        """
        worked = False
        while True:
            self._batches += 1
            if self._batches % EVICT_EVERY_BATCHES == 0:
                for feed in self._owned.feeds.values():
                    feed.evict()
            taken = self._take(self._batch_limit())
            idle = self._idle_advances()
            if not taken and not idle:
                return worked
            worked = True
            started = time.perf_counter()
            try:
                batch = await self._build(taken, idle)
            except WorkerStop:
                raise
            except Exception as error:  # a read failed: reload and retry, never die on a batch
                if await self.settle():
                    await self._recover(error, None)
                return worked
            if not await self.settle():
                return worked  # the batch before failed: state was reloaded, this one is void
            self._inflight = asyncio.create_task(self._complete(batch, started))
            self._inflight_batch = batch
            if self._refusals.limit is not None:
                await self.settle()  # while searching for a refused message, one batch at a time

    def _batch_limit(self) -> int:
        limit, searching = self._settings.ingest_max_batch, self._refusals.limit
        return min(limit, searching) if searching is not None else limit

    async def settle(self) -> bool:
        """Wait for the batch in flight; on failure reload every partition. True if it committed."""
        task, self._inflight = self._inflight, None
        batch, self._inflight_batch = self._inflight_batch, None
        if task is None:
            return True
        started = time.perf_counter()
        try:
            await task
        except WorkerStop:
            raise
        except Exception as error:
            await self._recover(error, batch)
            return False
        finally:
            self.stats.spent("wait", time.perf_counter() - started)
        return True

    # -- one batch -----------------------------------------------------------------------------

    def _take(self, limit: int) -> list[tuple[PartitionFeed, Pending[Fetched]]]:
        taken: list[tuple[PartitionFeed, Pending[Fetched]]] = []
        feeds = self._owned.feeds
        for partition in sorted(feeds):
            remaining = limit - len(taken)
            if remaining <= 0:
                break
            feed = feeds[partition]
            taken.extend((feed, p) for p in feed.take(remaining, self._owned.highwater))
        return taken

    def _idle_advances(self) -> list[PartitionFeed]:
        """Advance the watermark of partitions quiet for `idle_watermark_seconds` (wall clock)."""
        if not self._settings.idle_watermark_advance:
            return []
        now = self._clock()
        advanced = []
        for feed in self._owned.feeds.values():
            quiet = now - feed.last_received >= self._settings.idle_watermark_seconds
            if quiet and not len(feed) and now - feed.last_idle_advance >= IDLE_ADVANCE_EVERY:
                feed.last_idle_advance = now
                feed.aggregator.advance_watermark(self._wall_clock())
                advanced.append(feed)
        return advanced

    async def _build(self, taken: Taken, idle: Sequence[PartitionFeed]) -> Batch:
        started = time.perf_counter()
        event_ids, command_ids = ids_of(taken)
        applied_events, applied_commands = await self._store.applied_ids(event_ids, command_ids)
        if self._inflight_batch is not None:  # not visible in PostgreSQL until it commits
            applied_events |= self._inflight_batch.event_ids
            applied_commands |= self._inflight_batch.command_ids
        wanted = named_incidents(taken)
        for incident in await self._store.load_incidents(wanted):
            feed, tenant_id = wanted[incident.incident_id]
            # Only the tenant's own incidents belong to this partition's state.
            if incident.tenant_id == tenant_id:
                feed.restore(incident)
        looked_up = time.perf_counter()
        batch = build_batch(
            taken,
            idle,
            now=self._wall_clock(),
            applied_events=applied_events,
            applied_commands=applied_commands,
            refused=self._refusals.refused,
        )
        self.stats.spent("lookup", looked_up - started)
        self.stats.spent("apply", time.perf_counter() - looked_up)
        return batch

    async def _complete(self, batch: Batch, started: float) -> None:
        """Write, publish, and queue the offsets for the Kafka commit."""
        writing = time.perf_counter()
        await self._store.save(batch.effects)
        saved = time.perf_counter()
        self._database.recovered()
        self._after_commit(batch, transaction=saved - writing, seconds=saved - started)
        await self._publisher.publish(Publication.of_batch(batch.changes, batch.effects))
        self.stats.spent("save", saved - writing)
        self.stats.spent("publish", time.perf_counter() - saved)
        for effects in batch.effects.partitions:
            for topic, offset in effects.next_offsets.items():
                tp = TopicPartition(topic, effects.partition)
                self._uncommitted[tp] = self._owned.stored[tp] = offset

    def _after_commit(self, batch: Batch, *, transaction: float, seconds: float) -> None:
        """Counts, metrics, the end of a refusal search, and the dead-letter guard."""
        self.stats.record(batch.effects)
        outcomes = batch.outcomes
        self.metrics.batch(batch.messages, seconds, transaction)
        for topic, count in outcomes.applied.items():
            self.metrics.applied(topic, count)
        for topic, count in outcomes.duplicates.items():
            self.metrics.duplicates(topic, count)
        for (topic, reason), count in outcomes.dead_letters.items():
            self.metrics.dead_lettered(topic, reason, count)
        self._refusals.committed(batch.sources)
        for partition, reasons in outcomes.by_partition.items():
            self._check_guard(partition, reasons)

    def _check_guard(self, partition: int, reasons: list[str | None]) -> None:
        report = self._guard.record(partition, reasons)
        self._shares[partition] = report.share
        if not report.firing:
            return
        now = self._clock()
        if report.started:
            self.metrics.guard_fired(partition)
        if report.started or now - self._guard_logged.get(partition, 0.0) >= GUARD_REPEAT_SECONDS:
            self._guard_logged[partition] = now
            log.error("dead-letter guard: %s", report.describe(self._guard.share))
        if self._settings.dead_letter_guard_action == "stop" and self._fatal is None:
            self._fatal = DeadLettersAboveLimit(
                f"{report.describe(self._guard.share)}; stopping "
                "(INCIDENTFLOW_DEAD_LETTER_GUARD_ACTION=stop)"
            )

    async def _commit_offsets(self) -> None:
        """Commit persisted offsets to Kafka outside the lock: a commit may wait on a rebalance."""
        if self._owned.consumer is None:
            return
        assigned = self.consumer.assignment()
        offsets = {tp: offset for tp, offset in self._uncommitted.items() if tp in assigned}
        self._uncommitted.clear()
        if not offsets:
            return
        try:
            await asyncio.wait_for(self.consumer.commit(offsets), COMMIT_TIMEOUT)
        except (KafkaError, TimeoutError) as error:
            # PostgreSQL holds the offsets we resume from; Kafka's copy only serves lag metrics.
            self.metrics.retry("commit")
            log.warning("offset commit to Kafka failed (%s); PostgreSQL has them", error)

    # -- failures ------------------------------------------------------------------------------

    async def _recover(self, error: BaseException, batch: Batch | None) -> None:
        """Forget the in-memory effects of failed batches: reload every partition, seek back.

        A data refusal of a batch narrows the search for its message (`RefusalSearch`); any
        other failure waits a backoff first and counts against the database's outage limit.
        """
        sources = batch.sources if batch is not None else []
        if sources and is_data_error(error) and not self._refusals.knows(sources):
            self._refusals.refusal(sources, describe(error))
        else:
            self.metrics.retry("database")
            await self._sleep(self._database.failed(error, "applying a batch"))
        await self._owned.reload()

    # -- assignment ----------------------------------------------------------------------------

    async def assign(self, partitions: Iterable[int]) -> None:
        self.metrics.rebalance()
        async with self._lock:
            try:
                await self._owned.assign(partitions)
            except WorkerStop as error:  # the consumer swallows a listener's exceptions
                self._fatal = error

    async def revoke(self, partitions: Iterable[int]) -> None:
        async with self._lock:  # a batch being built finishes first: it holds the lock
            try:
                await self.settle()  # and the one being written commits
            except WorkerStop as error:
                self._fatal = error
            revoked = list(partitions)
            self._owned.drop(revoked)
            for partition in revoked:
                self._guard.forget(partition)
                self._shares.pop(partition, None)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, worker: IngestWorker) -> None:
        self._worker = worker

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._worker.revoke({tp.partition for tp in revoked})

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._worker.assign({tp.partition for tp in assigned})
