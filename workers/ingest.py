"""The ingest and aggregation worker (`incidentflow ingest`), on aiokafka.

One consumer group reads the two signal topics and the command topic with range assignment, so
partition p of all three lands on one worker. Per loop it fetches, merges each partition by time,
and for the messages taken runs one batch:

1. one PostgreSQL transaction: applied events, touched incidents, timeline, key map, commands,
   dead letters, and per partition the watermark and the next offsets (`IngestStore.save`);
2. one `incident.changes` message per touched incident, and the dead letters' copies;
3. the Kafka offset commit (for lag monitoring: PostgreSQL holds the offsets we resume from).

A crash anywhere leaves PostgreSQL at the end of the last committed batch, and the worker that
takes the partition over resumes from the offsets stored with it: each event is applied once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from aiokafka.structs import ConsumerRecord

from domain.aggregation import PartitionAggregator
from domain.merge import Pending
from domain.settings import Settings
from storage.ingest_store import IngestStore
from workers.batch import Batch, Taken, build_batch, ids_of, named_incidents
from workers.changes import IngestStats, change_message, dead_letter_headers
from workers.feed import Fetched, PartitionFeed

log = logging.getLogger("incidentflow.ingest")

IDLE_ADVANCE_EVERY = 1.0
"""Seconds between two idle watermark advances of one partition."""
EVICT_EVERY_BATCHES = 200
RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0, 5.0)


class IngestWorker:
    """Consumes, aggregates and persists; see the module docstring for the batch contract."""

    def __init__(
        self,
        settings: Settings,
        store: IngestStore,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        *,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._store = store
        self._consumer = consumer
        self._producer = producer
        self._wall_clock = wall_clock
        self._clock = clock
        self._topics = settings.input_topics
        self._source = {topic: rank for rank, topic in enumerate(self._topics)}
        self._feeds: dict[int, PartitionFeed] = {}
        self._lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._batches = 0
        self._failures = 0
        self._uncommitted: dict[TopicPartition, int] = {}
        self._inflight: asyncio.Task[None] | None = None
        self._inflight_batch: Batch | None = None
        self.stats = IngestStats()

    # -- lifecycle -----------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the loop to finish its batch and exit (SIGTERM, Ctrl-C)."""
        self._stopping.set()

    def listener(self) -> ConsumerRebalanceListener:
        return _Rebalance(self)

    async def run(self, *, stop_when_caught_up: bool = False) -> int:
        """Consume until stopped, or until caught up if asked; returns the exit code."""
        while not self._stopping.is_set():
            timeout_ms = 5 if any(feed.is_waiting() for feed in self._feeds.values()) else 100
            fetched = await self._fetch(timeout_ms)
            async with self._lock:
                for tp, records in fetched.items():
                    feed = self._feeds.get(tp.partition)
                    if feed is not None and tp.topic in self._source:
                        feed.push(self._source[tp.topic], records)
                worked = await self._run_batches()
                self._apply_backpressure()
            await self._commit_offsets()
            if stop_when_caught_up and not worked and not fetched:
                async with self._lock:
                    await self.settle()
                if await self._caught_up():
                    log.info("caught up on partitions %s", sorted(self._feeds))
                    break
        async with self._lock:
            await self.settle()
        await self._commit_offsets()
        return 0

    async def _fetch(
        self, timeout_ms: int
    ) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
        """Fetch up to a batch: what arrives within the timeout, topped up from the prefetch."""
        limit = self._settings.ingest_max_batch
        fetched: dict[
            TopicPartition, list[ConsumerRecord[bytes, bytes]]
        ] = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=limit)
        count = sum(len(records) for records in fetched.values())
        while fetched and count < limit:
            more = await self._consumer.getmany(timeout_ms=0, max_records=limit - count)
            if not more:
                break
            for tp, records in more.items():
                fetched.setdefault(tp, []).extend(records)
                count += len(records)
        return fetched

    async def _run_batches(self) -> bool:
        """Build batches until the merges hold nothing ready; True if any was built.

        Batches are pipelined: batch N+1 is computed while batch N is being written, and N+1 is
        written only after N committed. Dedupe therefore looks at N's ids as well as PostgreSQL.
        """
        worked = False
        while True:
            self._batches += 1
            if self._batches % EVICT_EVERY_BATCHES == 0:
                for feed in self._feeds.values():
                    feed.evict()
            taken = self._take(self._settings.ingest_max_batch)
            idle = self._idle_advances()
            if not taken and not idle:
                return worked
            worked = True
            try:
                batch = await self._build(taken, idle)
            except Exception as error:  # a read failed: reload and retry, never die on a batch
                if await self.settle():
                    await self._recover(error)
                return worked
            if not await self.settle():
                return worked  # the batch before failed: state was reloaded, this one is void
            self._inflight = asyncio.create_task(self._complete(batch))
            self._inflight_batch = batch

    async def settle(self) -> bool:
        """Wait for the batch in flight; on failure reload every partition. True if it committed."""
        task, self._inflight = self._inflight, None
        if task is None:
            return True
        started = time.perf_counter()
        try:
            await task
        except Exception as error:
            await self._recover(error)
            return False
        finally:
            self._inflight_batch = None
            self.stats.spent("wait", time.perf_counter() - started)
        self._failures = 0
        return True

    # -- one batch -----------------------------------------------------------------------------

    def _take(self, limit: int) -> list[tuple[PartitionFeed, Pending[Fetched]]]:
        taken: list[tuple[PartitionFeed, Pending[Fetched]]] = []
        for partition in sorted(self._feeds):
            feed = self._feeds[partition]
            remaining = limit - len(taken)
            if remaining <= 0:
                break
            taken.extend((feed, pending) for pending in feed.take(remaining, self._at_end))
        return taken

    def _at_end(self, tp: TopicPartition) -> bool:
        feed = self._feeds[tp.partition]
        highwater = self._consumer.highwater(tp)
        fetched = feed.next_offsets[self._source[tp.topic]]
        if highwater is None:
            return False
        return highwater == 0 or (fetched is not None and fetched >= highwater)

    def _idle_advances(self) -> list[PartitionFeed]:
        """Advance the watermark of partitions quiet for `idle_watermark_seconds` (wall clock)."""
        if not self._settings.idle_watermark_advance:
            return []
        now = self._clock()
        advanced = []
        for feed in self._feeds.values():
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
            topics=self._topics,
        )
        self.stats.spent("lookup", looked_up - started)
        self.stats.spent("apply", time.perf_counter() - looked_up)
        return batch

    async def _complete(self, batch: Batch) -> None:
        """Write, publish, and queue the offsets for the Kafka commit."""
        started = time.perf_counter()
        await self._store.save(batch.effects)
        saved = time.perf_counter()
        self.stats.record(batch.effects, batch.messages)
        await self._publish(batch)
        self.stats.spent("save", saved - started)
        self.stats.spent("publish", time.perf_counter() - saved)
        for effects in batch.effects.partitions:
            for topic, offset in effects.next_offsets.items():
                self._uncommitted[TopicPartition(topic, effects.partition)] = offset

    async def _publish(self, batch: Batch) -> None:
        sends = [
            await self._producer.send(self._settings.changes_topic, key=key, value=value)
            for key, value in batch.changes
        ]
        for row in batch.effects.dead_letters:
            sends.append(
                await self._producer.send(
                    self._settings.deadletter_topic,
                    key=row.message_key,
                    value=row.payload,
                    headers=dead_letter_headers(row),
                )
            )
        if sends:
            await asyncio.gather(*sends)

    async def _commit_offsets(self) -> None:
        """Commit persisted offsets to Kafka outside the lock: a commit may wait on a rebalance."""
        assigned = self._consumer.assignment()
        offsets = {tp: offset for tp, offset in self._uncommitted.items() if tp in assigned}
        self._uncommitted.clear()
        if not offsets:
            return
        try:
            await self._consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError, KafkaError) as error:
            # PostgreSQL holds the offsets we resume from; Kafka's copy only serves lag metrics.
            log.warning("offset commit to Kafka failed (%s); PostgreSQL has them", error)

    async def _recover(self, error: BaseException) -> None:
        """Forget in-memory effects of failed batches: reload every partition and seek back."""
        self._failures += 1
        delay = RETRY_DELAYS[min(self._failures, len(RETRY_DELAYS)) - 1]
        log.error(
            "batch failed (%s: %s); reloading partitions and retrying in %.1fs",
            type(error).__name__,
            error,
            delay,
            exc_info=error,
        )
        await asyncio.sleep(delay)  # back off before touching the database again
        for partition in list(self._feeds):
            await self._load(partition)

    # -- assignment ----------------------------------------------------------------------------

    async def assign(self, partitions: Iterable[int]) -> None:
        async with self._lock:
            for partition in sorted(set(partitions)):
                await self._load(partition)

    async def revoke(self, partitions: Iterable[int]) -> None:
        async with self._lock:  # a batch being built finishes first: it holds the lock
            await self.settle()  # and the one being written commits
            for partition in partitions:
                self._feeds.pop(partition, None)

    async def _load(self, partition: int) -> None:
        """(Re)build a partition's state from PostgreSQL and seek to its stored offsets."""
        stored = await self._store.load_partition(partition, self._topics)
        aggregator = PartitionAggregator(
            self._settings.aggregation(),
            watermark=stored.watermark,
            incidents=stored.incidents,
            keys=stored.keys,
        )
        feed = PartitionFeed(
            partition,
            self._topics,
            aggregator,
            stored.next_offsets,
            max_idle_seconds=self._settings.max_task_idle_ms / 1000,
            clock=self._clock,
        )
        self._feeds[partition] = feed
        for tp, offset in zip(feed.tps, feed.next_offsets, strict=True):
            if offset is not None:
                self._consumer.seek(tp, offset)
            else:
                await self._consumer.seek_to_committed(tp)
        # The last batch's changes may not have reached the feed before a crash: send them again
        # (processors ignore versions they have seen).
        for incident in await self._store.load_incidents(stored.last_batch_incident_ids):
            await self._producer.send(
                self._settings.changes_topic,
                key=incident.tenant_id.encode(),
                value=change_message(incident.snapshot()),
            )
        log.info(
            "partition %d loaded: %d incidents, watermark %s",
            partition,
            len(stored.incidents),
            stored.watermark,
        )

    def _apply_backpressure(self) -> None:
        limit = 2 * self._settings.ingest_max_batch
        assigned = self._consumer.assignment()
        for feed in self._feeds.values():
            for source, tp in enumerate(feed.tps):
                if tp not in assigned:
                    continue
                if feed.buffered(source) > limit:
                    self._consumer.pause(tp)
                else:
                    self._consumer.resume(tp)

    async def _caught_up(self) -> bool:
        if not self._feeds or any(len(feed) for feed in self._feeds.values()):
            return False
        tps = [tp for feed in self._feeds.values() for tp in feed.tps]
        ends = await self._consumer.end_offsets(tps)
        for tp in tps:
            position = await self._consumer.position(tp)
            if position < ends[tp]:
                return False
        return True


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, worker: IngestWorker) -> None:
        self._worker = worker

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._worker.revoke({tp.partition for tp in revoked})

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._worker.assign({tp.partition for tp in assigned})
