"""The stream processors on a real broker and PostgreSQL, and the sink's retry and decode rules.

The pipeline test publishes the scenario log, runs ingest to the end, then runs
`incidentflow processors` as a subprocess and requires every processor table to equal the sum of
the contributions of the final `incidents` rows. It then publishes, in
two rounds, every change message again in reverse order, then stale (version - 1) and altered
copies of the final snapshots and one undecodable message. Each round ends on every partition
with a *sentinel*: a snapshot of an incident of a separate tenant. A partition is consumed in
order and a batch commits atomically, so once all sentinels are in `processor_snapshots` the
messages before them were processed too; the tables must then be unchanged except for the
sentinels' own contributions. (Consumer lag cannot tell: tansu reports as end offset the last
batch's base offset + 1.) The second round's stale copies arrive in batches without their final
versions, so they test the stored-version guard, not only the in-batch deduplication.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from psycopg.rows import dict_row
from sqlalchemy.exc import OperationalError

from domain import analytics
from domain.analytics import contribution
from domain.metrics import SlaTargets
from domain.snapshot import IncidentSnapshot
from storage.analytics_store import AppliedBatch
from storage.effects import DeadLetterRow
from storage.rows import incident_from_row
from tests.e2e.pipeline import PARTITIONS, publish_scenario, run_ingest_to_end
from tests.scenario import build_scenario, partition_for
from workers.processors import ChangeMessage, ChangeSink

NOW = datetime.now(UTC).replace(microsecond=0)
REPO = Path(__file__).resolve().parents[2]
SLA = SlaTargets()
SENTINEL_TENANT = "zz-sentinel"
Snapshot = dict[str, Any]
"""A change-feed value as published (JSON-ready)."""
COUNTER_TABLES = {
    analytics.ROLLUPS: "incident_rollups_hourly",
    analytics.RECURRENCE: "recurrence_daily",
    analytics.COSTS: "cost_daily",
}
MEMBER_TABLES = {
    analytics.RECURRENCE: "recurrence_fingerprints",
    analytics.PATTERNS: "pattern_members",
}


# -- the pipeline -------------------------------------------------------------------------------


async def test_processor_tables_equal_the_contributions_of_the_final_incidents(
    database_url, bootstrap_servers, wait_until, tmp_path
):
    messages = build_scenario(7, now=NOW)
    topics = await publish_scenario(bootstrap_servers, messages)
    env = topics.env(
        database_url,
        bootstrap_servers,
        INCIDENTFLOW_PROCESSORS_GROUP=f"{topics.prefix}processors",
    )
    run_ingest_to_end(env)
    final = final_snapshots(database_url)

    log = tmp_path / "processors.log"
    with processors(env, log) as worker:
        started = time.perf_counter()
        await wait_until(
            lambda: stored_versions(database_url) == expected_versions(final),
            timeout=60,
            message="the processors never applied every incident at its final version",
        )
        print(f"\nprocessors: all applied {time.perf_counter() - started:.2f}s after the start")
        assert_tables(database_url, final)

        # Round 1: everything again, newest first, so older versions follow newer ones.
        records = await read_topic(bootstrap_servers, topics.changes)
        again = [(r.partition, r.key, r.value) for r in reversed(records)]
        sentinels = sentinel_snapshots(NOW, version=1)
        await publish_then_wait(
            bootstrap_servers, topics.changes, again, sentinels, wait_until, database_url
        )
        assert_tables(database_url, final + sentinels)

        # Round 2: an altered copy of each final snapshot one version back, and a message that
        # is no JSON; the sentinels move on to version 2 (escalated and resolved).
        stale = [
            dict(s, version=s["version"] - 1, severity="critical", category="STALE",
                 calls_affected=999)
            for s in final
            if s["version"] > 1
        ]  # fmt: skip
        assert len(stale) > len(final) / 2
        values = [(_partition(s), s["tenant_id"].encode(), orjson.dumps(s)) for s in stale]
        values.append((0, b"acme", b"{not json"))
        sentinels = sentinel_snapshots(NOW, version=2)
        await publish_then_wait(
            bootstrap_servers, topics.changes, values, sentinels, wait_until, database_url
        )
        assert_tables(database_url, final + sentinels)
        assert dead_letter_reasons(database_url, topics.changes) == ["invalid_json"]
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    assert worker.returncode == 0, log.read_text()[-4000:]


class processors:
    """`python -m workers processors` as a subprocess, output to `log`; killed if still running."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self._env, self._log = env, log

    def __enter__(self) -> subprocess.Popen[bytes]:
        self._file = self._log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "incidentflow", "processors"],
            env=self._env,
            cwd=REPO,
            stdout=self._file,
            stderr=subprocess.STDOUT,
        )
        return self.process

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self._file.close()
        if exc[0] is not None:
            print(self._log.read_text()[-4000:])


def final_snapshots(database_url: str) -> list[dict[str, Any]]:
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        return [
            incident_from_row(row).snapshot() for row in conn.execute("SELECT * FROM incidents")
        ]


def stored_versions(database_url: str) -> dict[tuple[str, str], int]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT processor, incident_id, version FROM processor_snapshots")
        return {(processor, str(i)): version for processor, i, version in rows}


def expected_versions(snapshots: Sequence[Snapshot]) -> dict[tuple[str, str], int]:
    return {
        (processor, s["incident_id"]): s["version"]
        for processor in analytics.PROCESSORS
        for s in snapshots
    }


def sentinel_snapshots(now: datetime, version: int) -> list[dict[str, Any]]:
    """One incident of a separate tenant per partition (the i-th goes to partition i): version 1
    open and high, version 2 critical and resolved."""
    resolved = version > 1
    return [
        {
            "incident_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"sentinel-{partition}")),
            "tenant_id": SENTINEL_TENANT,
            "trigger_type": "llm_failure",
            "fingerprint": f"sentinel-{partition}",
            "fingerprints": [f"sentinel-{partition}"],
            "category": "LLM_TIMEOUT",
            "cause_type": "LLM_RUN",
            "severity": "critical" if resolved else "high",
            "lifecycle_state": "RESOLVED" if resolved else "ACTIVE",
            "started_at": (now - timedelta(minutes=partition)).isoformat(),
            "last_event_at": now.isoformat(),
            "resolved_at": now.isoformat() if resolved else None,
            "resolution_method": "manual" if resolved else None,
            "calls_affected": version,
            "cost_usd": "0.5",
            "reopen_count": 0,
            "run_ids": ["sentinel-run"],
            "breakdown": {"agent": {"sentinel": {"calls": version, "cost_usd": "0.5"}}},
            "version": version,
        }
        for partition in range(PARTITIONS)
    ]


async def publish_then_wait(
    bootstrap: str,
    topic: str,
    values: Sequence[tuple[int, bytes, bytes]],
    sentinels: Sequence[Snapshot],
    wait_until: Any,
    database_url: str,
) -> None:
    """Publish (partition, key, value)s, then sentinel i on partition i; wait for the sentinels.

    A partition is consumed in order and a batch commits atomically: once every sentinel's
    version is stored, everything published before it was processed too.
    """
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        for partition, key, value in values:
            await producer.send(topic, key=key, value=value, partition=partition)
        for partition, sentinel in enumerate(sentinels):
            value = orjson.dumps(sentinel)
            await producer.send(
                topic, key=SENTINEL_TENANT.encode(), value=value, partition=partition
            )
        await producer.flush()
    finally:
        await producer.stop()
    wanted = expected_versions(sentinels)
    await wait_until(
        lambda: wanted.items() <= stored_versions(database_url).items(),
        timeout=30,
        message="the sentinels after the published changes were never applied",
    )


def _partition(snapshot: Snapshot) -> int:
    return partition_for(snapshot["tenant_id"].encode(), PARTITIONS)


async def read_topic(bootstrap: str, topic: str) -> list[Any]:
    """Every record of the topic. Reads until each position reaches the end offset and a fetch
    comes back empty: tansu reports as end offset the last batch's base offset + 1."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        records: list[Any] = []
        while True:
            fetched = await consumer.getmany(timeout_ms=500)
            for batch in fetched.values():
                records.extend(batch)
            positions = [await consumer.position(tp) for tp in tps]
            if not fetched and all(pos >= ends[tp] for pos, tp in zip(positions, tps, strict=True)):
                return records
    finally:
        await consumer.stop()


def dead_letter_reasons(database_url: str, topic: str) -> list[str]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT reason FROM dead_letters WHERE source_topic = %s", (topic,))
        return [reason for (reason,) in rows]


# -- expected tables ------------------------------------------------------------------------------


def assert_tables(database_url: str, values: Sequence[Snapshot]) -> None:
    snapshots = [IncidentSnapshot.model_validate(value) for value in values]
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        for processor, table in COUNTER_TABLES.items():
            expected: dict[Any, Any] = {}
            for snapshot in snapshots:
                analytics.add_counters(expected, contribution(processor, snapshot, SLA).counters)
            actual = read_counters(conn, table, next(iter(expected)))
            assert len(actual) == len(analytics.drop_zero_rows(expected)), table
            assert analytics.drop_zero_rows(actual) == analytics.drop_zero_rows(expected), table
        for processor, table in MEMBER_TABLES.items():
            expected_members = {
                tuple(member)
                for snapshot in snapshots
                for member in contribution(processor, snapshot, SLA).members
            }
            rows = conn.execute(f"SELECT * FROM {table}")
            actual_members = {tuple(row.values()) for row in rows}
            assert actual_members == expected_members, table


def read_counters(conn: psycopg.Connection[Any], table: str, sample_key: Any) -> dict[Any, Any]:
    key_type = type(sample_key)
    counters: dict[Any, Any] = {}
    for row in conn.execute(f"SELECT * FROM {table}"):
        key = key_type(*(row.pop(name) for name in key_type._fields))
        counters[key] = row
    return counters


# -- the sink ------------------------------------------------------------------------------------


class FlakyWriter:
    """Fails the first `failures` calls with a database error, then records what it is given."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls: list[tuple[list[IncidentSnapshot], list[DeadLetterRow]]] = []

    async def apply(
        self, snapshots: Sequence[IncidentSnapshot], dead_letters: Sequence[DeadLetterRow] = ()
    ) -> AppliedBatch:
        if self.failures:
            self.failures -= 1
            raise OperationalError("SELECT 1", {}, ConnectionError("server closed"))
        self.calls.append((list(snapshots), list(dead_letters)))
        return AppliedBatch(applied={"rollups": len(snapshots)})


def change(offset: int, value: bytes) -> ChangeMessage:
    return ChangeMessage("incident.changes", 0, offset, b"acme", value)


VALID = orjson.dumps(sentinel_snapshots(NOW, version=1)[0])


async def test_the_sink_retries_database_errors_in_place() -> None:
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    writer = FlakyWriter(failures=2)
    sink = ChangeSink(writer, retry_delays=(0.1, 0.2, 0.3), sleep=sleep)
    await sink.apply([change(0, VALID)])
    assert delays == [0.1, 0.2] and len(writer.calls) == 1


async def test_the_sink_gives_up_and_raises_after_the_last_retry() -> None:
    async def sleep(seconds: float) -> None:
        pass

    sink = ChangeSink(FlakyWriter(failures=3), retry_delays=(0.1, 0.2), sleep=sleep)
    with pytest.raises(OperationalError):
        await sink.apply([change(0, VALID)])


async def test_the_sink_dead_letters_what_is_no_snapshot() -> None:
    writer = FlakyWriter(failures=0)
    sink = ChangeSink(writer)
    await sink.apply([change(0, b"{oops"), change(1, b'{"tenant_id": "acme"}'), change(2, VALID)])
    ((snapshots, dead),) = writer.calls
    assert len(snapshots) == 1
    assert [(row.source_offset, row.reason) for row in dead] == [
        (0, "invalid_json"),
        (1, "schema_violation"),
    ]
