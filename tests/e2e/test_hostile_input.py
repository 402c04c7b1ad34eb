"""The ingest worker under a hostile battery (`tests.e2e.hostile`), end to end.

More than 60 hostile messages (framing, JSON shape, text, numbers, times, sizes, commands) sit
between the valid traffic of the same tenants and partitions. The worker must exit 0, dead-letter
each hostile message exactly once, in the table and on the dead-letter topic, with the expected
reason, and apply every valid message exactly as the pure replay of the same log says.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime

import psycopg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from domain.replay import replay
from tests.e2e.hostile import Message, build
from tests.e2e.pipeline import (
    KINDS,
    PARTITIONS,
    Topics,
    assert_same_tables,
    expected_tables,
    new_prefix,
    read_tables,
    run_ingest_to_end,
)
from tests.scenario import SCENARIO_CONFIG, partition_for
from workers.topics import ensure_topics

NOW = datetime.now(UTC).replace(microsecond=0)


def partition_of(message: Message) -> int:
    return partition_for(message.tenant.encode(), PARTITIONS)


async def publish(bootstrap: str, topics: Topics, messages: list[Message]) -> None:
    """Send each message to its tenant's partition, in order; a record with neither key nor
    value goes through a raw batch (aiokafka's `send` refuses one)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=4 * 1024 * 1024)
    await producer.start()
    try:
        for message in messages:
            topic, partition = topics.by_kind[message.kind], partition_of(message)
            if message.record_key is None and message.value is None:
                await producer.flush()
                batch = producer.create_batch()
                batch.append(key=None, value=None, timestamp=None)
                await (await producer.send_batch(batch, topic, partition=partition))
                continue
            await producer.send(topic, message.value, key=message.record_key, partition=partition)
        await producer.flush()
    finally:
        await producer.stop()


async def dead_letter_copies(bootstrap: str, topic: str, expected: int) -> list[dict[str, bytes]]:
    """The dead-letter topic's records: headers plus `value` and `key`."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    copies: list[dict[str, bytes]] = []
    try:
        for _ in range(200):
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for record in records:
                    copies.append(
                        dict(record.headers)
                        | {"value": record.value or b"", "key": record.key or b""}
                    )
            if len(copies) >= expected and not batch:
                break
    finally:
        await consumer.stop()
    return copies


def log_of(messages: list[Message]) -> dict[int, list[list[bytes | None]]]:
    log: dict[int, list[list[bytes | None]]] = {p: [[], [], []] for p in range(PARTITIONS)}
    for message in messages:
        log[partition_of(message)][KINDS.index(message.kind)].append(message.value)
    return log


async def test_a_hostile_battery_is_dead_lettered_once_each_and_the_rest_applied(
    database_url: str, bootstrap_servers: str
) -> None:
    messages = build(NOW)
    hostile = [m for m in messages if m.reason is not None]
    assert len(hostile) >= 60
    topics = Topics(new_prefix())
    names = [*topics.inputs, topics.changes, topics.deadletter]
    await ensure_topics(bootstrap_servers, names, PARTITIONS, topics.inputs)
    await publish(bootstrap_servers, topics, messages)

    run_ingest_to_end(topics.env(database_url, bootstrap_servers))

    # Every valid message applied exactly as the pure replay says, every dead letter once.
    expected = replay(log_of(messages), SCENARIO_CONFIG, NOW)
    assert_same_tables(read_tables(database_url), expected_tables(expected, topics))

    # Each hostile message got the reason the battery names for it.
    offsets: Counter[tuple[str, int]] = Counter()
    want: dict[tuple[str, int, int], tuple[str, Message]] = {}
    for message in messages:
        source = (topics.by_kind[message.kind], partition_of(message))
        if message.reason is not None:
            want[(*source, offsets[source])] = (message.reason, message)
        offsets[source] += 1
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT source_topic, source_partition, source_offset, reason FROM dead_letters"
        ).fetchall()
        applied = {
            event_id
            for (event_id,) in conn.execute(
                "SELECT event_id FROM llm_call_failures"
                " UNION SELECT event_id FROM policy_violations"
            )
        }
    got = {(topic, partition, offset): reason for topic, partition, offset, reason in rows}
    wrong = {
        message.what: (reason, got.get(source))
        for source, (reason, message) in want.items()
        if got.get(source) != reason
    }
    assert not wrong, f"hostile messages with another outcome (expected, got): {wrong}"
    assert len(rows) == len(want)

    # The edges are valid and applied.
    edges = [m for m in messages if m.what.startswith("edge:") and m.value]
    for edge in edges:
        body = json.loads(edge.value or b"")
        assert body["event_id"] in applied, edge.what
    assert "dup-1" not in applied  # a duplicate key keeps its last value

    # One copy of each dead letter on the topic, with its headers and the original bytes.
    copies = await dead_letter_copies(bootstrap_servers, topics.deadletter, len(rows))
    sources = Counter(
        (c["x-source-topic"].decode(), int(c["x-source-partition"]), int(c["x-source-offset"]),
         c["x-error-reason"].decode())
        for c in copies
    )  # fmt: skip
    assert sources == Counter(map(tuple, rows))
    by_source = {
        (c["x-source-topic"].decode(), int(c["x-source-partition"]), int(c["x-source-offset"])): c
        for c in copies
    }
    for source, (_, message) in want.items():
        copy = by_source[source]
        assert copy["value"] == (message.value or b""), message.what
        assert ("x-value-missing" in copy) == (message.value is None), message.what
