"""Taking a partition (over): its state from PostgreSQL, the consumer at the offsets stored with
it, and the last batch's publication again.

A partition resumes exactly where the last committed batch ended: at the offsets stored with it
in PostgreSQL, or, for a topic partition never stored, at its first offset (never at Kafka's
committed offset, which may be missing or ahead of what PostgreSQL holds). The last batch's
incident changes and dead letters may not have reached their topics before the previous owner
died, so they are published again (consumers keep the highest version; dead-letter copies are
unique by their `x-source-*` headers).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiokafka import TopicPartition

from domain.aggregation import PartitionAggregator
from domain.settings import Settings
from workers.feed import PartitionFeed
from workers.protocols import Consumer, Store
from workers.publishing import Publication


@dataclass(frozen=True, slots=True)
class Resumed:
    """A partition ready to be fed, and what it had stored."""

    feed: PartitionFeed
    stored_offsets: dict[TopicPartition, int]
    """The offsets PostgreSQL holds for it (topic partitions never stored are absent)."""
    republish: Publication
    incidents: int


async def resume_partition(
    partition: int,
    settings: Settings,
    store: Store,
    consumer: Consumer,
    clock: Callable[[], float],
) -> Resumed:
    """Load `partition` and seek the consumer to where it resumes."""
    topics = settings.input_topics
    stored = await store.load_partition(partition, topics)
    tps = [TopicPartition(topic, partition) for topic in topics]
    missing = [tp for tp in tps if tp.topic not in stored.next_offsets]
    first = await consumer.beginning_offsets(missing) if missing else {}
    starts = [stored.next_offsets.get(tp.topic, first.get(tp, 0)) for tp in tps]
    aggregator = PartitionAggregator(
        settings.aggregation(),
        watermark=stored.watermark,
        incidents=stored.incidents,
        keys=stored.keys,
    )
    feed = PartitionFeed(
        partition,
        topics,
        aggregator,
        starts,
        max_idle_seconds=settings.max_task_idle_ms / 1000,
        clock=clock,
    )
    for tp, offset in zip(tps, starts, strict=True):
        consumer.seek(tp, offset)
    republished = await store.load_incidents(stored.last_batch_incident_ids)
    return Resumed(
        feed,
        {tp: stored.next_offsets[tp.topic] for tp in tps if tp.topic in stored.next_offsets},
        Publication.of_stored(republished, stored.last_batch_dead_letters),
        len(stored.incidents),
    )
