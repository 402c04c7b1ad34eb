"""The session infrastructure works: PostgreSQL answers, the broker round-trips, topics exist."""

from __future__ import annotations

import psycopg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from workers.topics import TopicLayoutError, ensure_topics


def test_postgres_answers_select_1(postgres_url: str) -> None:
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("select 1").fetchone() == (1,)


def test_fresh_database_is_empty_and_separate(raw_database_url: str, postgres_url: str) -> None:
    with psycopg.connect(raw_database_url) as conn:
        name = conn.execute("select current_database()").fetchone()
        tables = conn.execute(
            "select count(*) from information_schema.tables where table_schema = 'public'"
        ).fetchone()
    assert name is not None and name[0].startswith("test_")
    assert tables == (0,)


async def test_broker_round_trips_a_message(bootstrap_servers, topic_prefix, wait_until) -> None:
    topic = f"{topic_prefix}roundtrip"
    await ensure_topics(bootstrap_servers, [topic], partitions=1, co_partitioned=[topic])
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers)
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap_servers,
        group_id=f"{topic_prefix}group",
        auto_offset_reset="earliest",
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    await producer.start()
    await consumer.start()
    try:
        await producer.send_and_wait(topic, key=b"k", value=b"hello")
        received: list[tuple[bytes | None, bytes | None]] = []

        async def got_message() -> bool:
            batches = await consumer.getmany(timeout_ms=200)
            received.extend((m.key, m.value) for msgs in batches.values() for m in msgs)
            return bool(received)

        await wait_until(got_message, timeout=30, message="message not consumed")
        assert received == [(b"k", b"hello")]
    finally:
        await consumer.stop()
        await producer.stop()


async def _partition_counts(bootstrap_servers: str, topics: list[str]) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        described = await admin.describe_topics()
    finally:
        await admin.close()
    return {t["topic"]: len(t["partitions"]) for t in described if t["topic"] in topics}


async def test_ensure_topics_creates_with_partitions_and_is_idempotent(
    bootstrap_servers, topic_prefix
) -> None:
    topics = [f"{topic_prefix}a", f"{topic_prefix}b", f"{topic_prefix}c"]
    first = await ensure_topics(bootstrap_servers, topics, partitions=3, co_partitioned=topics[:2])
    second = await ensure_topics(bootstrap_servers, topics, partitions=5, co_partitioned=topics)

    assert first == second == 3
    assert await _partition_counts(bootstrap_servers, topics) == dict.fromkeys(topics, 3)


async def test_ensure_topics_rejects_unequal_co_partitioned_topics(
    bootstrap_servers, topic_prefix
) -> None:
    two, three = f"{topic_prefix}two", f"{topic_prefix}three"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(two, num_partitions=2, replication_factor=1),
                NewTopic(three, num_partitions=3, replication_factor=1),
            ]
        )
    finally:
        await admin.close()

    with pytest.raises(TopicLayoutError) as raised:
        await ensure_topics(
            bootstrap_servers, [two, three], partitions=2, co_partitioned=[two, three]
        )

    message = str(raised.value)
    assert f"{two}=2" in message and f"{three}=3" in message
    assert "co-partitioning" in message


async def test_ensure_topics_needs_co_partitioned_among_topics(bootstrap_servers) -> None:
    with pytest.raises(ValueError, match="subset"):
        await ensure_topics(bootstrap_servers, ["x"], partitions=1, co_partitioned=["y"])
