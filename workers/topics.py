"""Explicit topic creation and the co-partitioning check.

Topics are always created explicitly before any worker starts: our brokers either do not create
topics on their own (Kafka with auto-creation off) or create them with a broker-chosen partition
count (tansu creates a missing topic with 4 partitions when a client, e.g. a producer, asks for
its metadata). `ensure_topics` is the single place that decides the layout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code

TOPIC_VISIBILITY_TIMEOUT_SECONDS = 30.0


class TopicLayoutError(RuntimeError):
    """The existing topics cannot be used as they are (e.g. unequal co-partitioned counts)."""


async def ensure_topics(
    bootstrap_servers: str,
    topics: Sequence[str],
    partitions: int,
    co_partitioned: Sequence[str],
    *,
    visibility_timeout: float = TOPIC_VISIBILITY_TIMEOUT_SECONDS,
) -> int:
    """Create the missing `topics` and return the partition count of the `co_partitioned` ones.

    Missing topics are created with `partitions` partitions and replication factor 1; existing
    topics are used as they are (a concurrent creator is tolerated). Then the partition counts are
    read from the cluster metadata, waiting up to `visibility_timeout` seconds until every topic is
    visible (`TimeoutError` otherwise). `co_partitioned` must be a non-empty subset of `topics`;
    if those topics do not all have the same partition count, `TopicLayoutError` names each count.
    """
    if partitions < 1:
        raise ValueError(f"partitions must be at least 1, got {partitions}")
    if not co_partitioned or not set(co_partitioned) <= set(topics):
        raise ValueError(
            f"co_partitioned {list(co_partitioned)} must be a non-empty subset of {list(topics)}"
        )
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, client_id="incidentflow-ensure-topics"
    )
    await admin.start()
    try:
        await _create_missing(admin, list(dict.fromkeys(topics)), partitions)
        counts = await _wait_for_partition_counts(admin, set(topics), visibility_timeout)
    finally:
        await admin.close()
    return _co_partitioned_count(counts, co_partitioned)


async def _create_missing(admin: AIOKafkaAdminClient, topics: list[str], partitions: int) -> None:
    """Create each topic of `topics` that the cluster does not list; 'already exists' is fine."""
    existing = set(await admin.list_topics())
    missing = [name for name in topics if name not in existing]
    if not missing:
        return
    new_topics = [
        NewTopic(name, num_partitions=partitions, replication_factor=1) for name in missing
    ]
    try:
        response = await admin.create_topics(new_topics)
    except TopicAlreadyExistsError:
        return
    for topic_error in response.topic_errors:
        name, code = topic_error[0], topic_error[1]
        if code not in (0, TopicAlreadyExistsError.errno):
            message = topic_error[2] if len(topic_error) > 2 else None
            raise for_code(code)(f"creating topic {name!r} failed: {message}")


async def _wait_for_partition_counts(
    admin: AIOKafkaAdminClient, topics: set[str], seconds: float
) -> dict[str, int]:
    """Poll the cluster metadata until every topic has partitions; return their counts.

    Asks for the metadata of all topics rather than of the named ones: a named metadata request
    may auto-create a topic (tansu does) with a partition count that is not ours.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        counts = _partition_counts(await admin.describe_topics(), topics)
        if len(counts) == len(topics):
            return counts
        if loop.time() >= deadline:
            missing = sorted(topics - counts.keys())
            raise TimeoutError(
                f"topics not visible in the cluster metadata after {seconds}s: {missing}"
            )
        await asyncio.sleep(0.1)


def _partition_counts(described: list[Mapping[str, object]], wanted: set[str]) -> dict[str, int]:
    """Partition counts of the `wanted` topics that the metadata shows without error."""
    counts: dict[str, int] = {}
    for topic in described:
        name, partitions = topic["topic"], topic["partitions"]
        if (
            name in wanted
            and topic["error_code"] == 0
            and isinstance(partitions, list)
            and partitions
        ):
            counts[str(name)] = len(partitions)
    return counts


def _co_partitioned_count(counts: Mapping[str, int], co_partitioned: Sequence[str]) -> int:
    """The shared partition count of `co_partitioned`, or `TopicLayoutError` if they differ."""
    distinct = {counts[name] for name in co_partitioned}
    if len(distinct) != 1:
        layout = ", ".join(f"{name}={counts[name]}" for name in co_partitioned)
        raise TopicLayoutError(
            f"co-partitioned topics have different partition counts ({layout}); co-partitioning "
            "needs equal counts so that a key maps to the same partition number in every topic. "
            "Recreate the topics with one partition count."
        )
    return distinct.pop()
