"""The partitions a worker owns: their feeds, their loads, and what the broker says about them.

A partition assigned to the worker is either loaded (it has a `PartitionFeed`, resumed from
PostgreSQL by `workers.resume`) or waiting for its load to be retried (PostgreSQL was unavailable
at assignment; its records are dropped meanwhile, and the load seeks back to the stored offsets).
`OwnedPartitions` also keeps the offsets PostgreSQL holds for each topic partition, which the lag
metric is measured from, and reads the end offsets every few seconds: consumer lag, and the
broker's health (a broker that does not answer counts against its outage limit).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from domain.settings import Settings
from workers.faults import Outage, WorkerStop, describe
from workers.feed import PartitionFeed
from workers.protocols import Consumer, Store
from workers.publishing import Publisher
from workers.resume import resume_partition
from workers.telemetry import IngestMetrics

log = logging.getLogger("incidentflow.ingest")

PROBE_EVERY = 5.0
"""Seconds between two reads of the end offsets."""
PROBE_TIMEOUT = 10.0


class OwnedPartitions:
    """Feeds of the loaded partitions, the partitions still to load, and stored offsets."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        publisher: Publisher,
        metrics: IngestMetrics,
        *,
        database: Outage,
        broker: Outage,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[Any]],
    ) -> None:
        self._settings = settings
        self._store = store
        self._publisher = publisher
        self._metrics = metrics
        self._database = database
        self._broker = broker
        self._clock = clock
        self._sleep = sleep
        self.consumer: Consumer | None = None
        self.feeds: dict[int, PartitionFeed] = {}
        self.unloaded: set[int] = set()
        self.stored: dict[TopicPartition, int] = {}
        """The offsets PostgreSQL holds: as loaded, then as each committed batch stored them."""
        self._next_load = 0.0
        self._next_probe = 0.0

    def _consumer(self) -> Consumer:
        if self.consumer is None:
            raise RuntimeError("no consumer yet: the worker has not joined its group")
        return self.consumer

    async def load(self, partition: int) -> None:
        """(Re)build a partition's state, seek to where it resumes, publish its last batch
        again. Raises what PostgreSQL or the broker raise."""
        resumed = await resume_partition(
            partition, self._settings, self._store, self._consumer(), self._clock
        )
        self.stored.update(resumed.stored_offsets)
        await self._publisher.publish(resumed.republish)
        self.feeds[partition] = resumed.feed
        self.unloaded.discard(partition)
        log.info(
            "partition %d loaded: %d incidents, watermark %s, offsets %s",
            partition, resumed.incidents, resumed.feed.aggregator.watermark,
            resumed.feed.next_offsets,
        )  # fmt: skip

    async def assign(self, partitions: Iterable[int]) -> None:
        """Load newly assigned partitions; one that cannot be loaded now is retried later."""
        for partition in sorted(set(partitions)):
            try:
                await self.load(partition)
            except WorkerStop:
                raise
            except Exception as error:
                log.warning("cannot load partition %d yet: %s", partition, describe(error))
                self.unloaded.add(partition)

    def drop(self, partitions: Iterable[int]) -> None:
        """Forget revoked partitions."""
        for partition in partitions:
            self.feeds.pop(partition, None)
            self.unloaded.discard(partition)
            self._metrics.forget_partition(partition)
            for topic in self._settings.input_topics:
                self.stored.pop(TopicPartition(topic, partition), None)

    async def reload(self) -> None:
        """Load every owned partition again, retrying while PostgreSQL is unavailable."""
        for partition in sorted(self.feeds.keys() | self.unloaded):
            while True:
                try:
                    await self.load(partition)
                except WorkerStop:
                    raise
                except Exception as error:
                    self._metrics.retry("database")
                    doing = f"loading partition {partition}"
                    await self._sleep(self._database.failed(error, doing))
                    continue
                break

    async def load_unloaded(self) -> None:
        """Try the partitions whose load failed again, after the backoff of the last failure."""
        if not self.unloaded or self._clock() < self._next_load:
            return
        for partition in sorted(self.unloaded):
            try:
                await self.load(partition)
            except WorkerStop:
                raise
            except Exception as error:
                self._metrics.retry("database")
                delay = self._database.failed(error, f"loading partition {partition}")
                self._next_load = self._clock() + delay
                return
        self._database.recovered()

    def highwater(self, tp: TopicPartition) -> int | None:
        """The end offset of `tp` in the broker's last fetch response (None before one)."""
        return self._consumer().highwater(tp)

    async def probe(self, shares: Mapping[int, float]) -> None:
        """Every few seconds: the lag, watermark and dead-letter share of each partition into
        the metrics. The end offsets come from the broker (a failure is an outage attempt); the
        last fetch's high watermark is used where it is further (some brokers report a stale
        end offset)."""
        now = self._clock()
        if now < self._next_probe or not self.feeds:
            return
        consumer = self._consumer()
        tps = [tp for feed in self.feeds.values() for tp in feed.tps]
        try:
            ends = await asyncio.wait_for(consumer.end_offsets(tps), PROBE_TIMEOUT)
        except (TimeoutError, KafkaError, OSError) as error:
            self._metrics.retry("broker")
            self._next_probe = self._clock() + self._broker.failed(error, "reading end offsets")
            return
        self._broker.recovered()
        self._next_probe = self._clock() + PROBE_EVERY
        for partition, feed in self.feeds.items():
            lag = {}
            for source, tp in enumerate(feed.tps):
                end = max(ends.get(tp, 0), consumer.highwater(tp) or 0)
                lag[tp.topic] = max(end - self.stored.get(tp, feed.next_offsets[source]), 0)
            share = shares.get(partition, 0.0)
            self._metrics.partition(partition, lag, feed.aggregator.watermark, share)

    def apply_backpressure(self) -> None:
        """Pause a topic partition whose buffer holds more than two batches; resume it after."""
        consumer = self._consumer()
        limit = 2 * self._settings.ingest_max_batch
        assigned = consumer.assignment()
        for feed in self.feeds.values():
            for source, tp in enumerate(feed.tps):
                if tp not in assigned:
                    continue
                if feed.buffered(source) > limit:
                    consumer.pause(tp)
                else:
                    consumer.resume(tp)

    async def caught_up(self) -> bool:
        """Every owned partition loaded, its feed empty, and read to its end offset."""
        if self.unloaded or not self.feeds or any(len(feed) for feed in self.feeds.values()):
            return False
        consumer = self._consumer()
        tps = [tp for feed in self.feeds.values() for tp in feed.tps]
        try:
            ends = await consumer.end_offsets(tps)
            for tp in tps:
                if await consumer.position(tp) < ends[tp]:
                    return False
        except KafkaError:
            return False
        return True
