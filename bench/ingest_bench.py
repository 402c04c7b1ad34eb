"""Ingest benchmark: the worker's events/s against a raw aiokafka consume of the same topic.

Publishes N failure events (default 300,000) over many tenants and fingerprints, then in the same
run measures (1) a bare aiokafka `getmany` consume of the topic and (2) `incidentflow ingest
--stop-when-caught-up` on a fresh database, and prints both rates and their ratio. Uses the
embedded PostgreSQL and broker unless DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS are set.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import orjson
import psycopg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from domain.settings import Settings
from incidentflow.infra import infra_mode_from_env, provide_broker, provide_postgres
from storage.migrate import upgrade
from workers.topics import ensure_topics

FAILURE_TYPES = ("timeout", "exception", "rate_limited", "provider_unavailable", "invalid_output")
MODELS = (("openai", "gpt-4o"), ("anthropic", "claude-sonnet"), ("google", "gemini-pro"))


def events(count: int, tenants: int, seed: int = 1) -> list[tuple[bytes, bytes]]:
    """(key, value) pairs: ~400-byte failures, one minute of traffic per 20,000 events."""
    rng = random.Random(seed)
    start = datetime.now(UTC) - timedelta(days=1)
    out = []
    for index in range(count):
        tenant = f"tenant-{rng.randrange(tenants):03d}"
        provider, model = rng.choice(MODELS)
        value = {
            "event_id": f"bench-{index}",
            "tenant_id": tenant,
            "occurred_at": (start + timedelta(milliseconds=3 * index)).isoformat(),
            "run_id": f"run-{rng.randrange(5000)}",
            "agent_id": f"agent-{rng.randrange(40)}",
            "provider": provider,
            "model": model,
            "failure_type": rng.choice(FAILURE_TYPES),
            "error_code": "E42",
            "error_message": "upstream request failed after retries",
            "duration_ms": rng.randrange(50, 30000),
            "tokens_in": rng.randrange(2000),
            "tokens_out": rng.randrange(500),
            "cost_usd": f"{rng.random() / 100:.6f}",
        }
        out.append((tenant.encode(), orjson.dumps(value)))
    return out


async def publish(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> float:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=256_000)
    await producer.start()
    started = time.perf_counter()
    try:
        for offset in range(0, len(records), 5000):
            sends = [
                await producer.send(topic, key=key, value=value)
                for key, value in records[offset : offset + 5000]
            ]
            await asyncio.gather(*sends)
    finally:
        await producer.stop()
    return len(records) / (time.perf_counter() - started)


async def raw_consume(bootstrap: str, topic: str, expected: int) -> float:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"bench-raw-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    await consumer.start()
    try:
        seen = 0
        started: float | None = None
        while seen < expected:
            batch = await consumer.getmany(timeout_ms=200, max_records=5000)
            if batch and started is None:
                started = time.perf_counter()
            seen += sum(len(records) for records in batch.values())
        assert started is not None
        return seen / (time.perf_counter() - started)
    finally:
        await consumer.stop()


def committed_events(database_url: str, topic: str) -> int:
    """Events of `topic` the workers have committed: the sum of their stored next offsets.

    Eight rows, unlike a count of the growing event table (which, polled ten times a second,
    took a noticeable share of the database's CPU from the workers it measures).
    """
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(next_offset), 0) FROM ingest_offsets WHERE topic = %s", (topic,)
        ).fetchone()
    return int(row[0]) if row else 0


def _processes() -> dict[int, tuple[str, int, float]]:
    """pid -> (name, parent pid, CPU seconds including reaped children), from /proc (Linux)."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the process ended while we looked
            continue
        name, fields = text[text.index("(") + 1 : text.rindex(")")], text.rsplit(")", 1)[1].split()
        ticks = sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
        found[int(stat.parent.name)] = (name, int(fields[1]), ticks / os.sysconf("SC_CLK_TCK"))
    return found


def cpu_seconds(database_url: str, command: str) -> float | None:
    """CPU time so far of this run's embedded database (`postgres`) or broker (`tansu`).

    The database is the postmaster whose `postmaster.pid` lies in the socket directory of
    `database_url` (pgserver keeps it there) with its backends; the broker is this process's
    `tansu` child. Other servers on the machine are not counted. None if not found.
    """
    processes = _processes()
    if command == "postgres":
        socket_dir = parse_qs(urlsplit(database_url).query).get("host", [""])[0]
        pid_file = Path(socket_dir) / "postmaster.pid" if socket_dir else None
        if pid_file is None or not pid_file.exists():
            return None
        roots = {int(pid_file.read_text().split()[0])}
    else:
        roots = {
            pid
            for pid, (name, parent, _) in processes.items()
            if name.startswith(command) and parent == os.getpid()
        }
    if not roots:
        return None

    def inside(pid: int) -> bool:
        while pid > 1:
            if pid in roots:
                return True
            pid = processes[pid][1] if pid in processes else 0
        return False

    return sum(cpu for pid, (_, _, cpu) in processes.items() if inside(pid))


def _spent(before: float | None, after: float | None) -> str:
    return "n/a" if before is None or after is None else f"{after - before:.1f}s"


async def worker_rate(
    settings: Settings, expected: int, workers: int, max_batch: int | None
) -> float:
    """Run `workers` ingest processes in one group; events/s from the first committed batch."""
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url or "",
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers or "",
        "INCIDENTFLOW_IDLE_WATERMARK_ADVANCE": "false",
        "INCIDENTFLOW_CONSUMER_GROUP": settings.consumer_group,
        **({"INCIDENTFLOW_INGEST_MAX_BATCH": str(max_batch)} if max_batch else {}),
    }
    command = [sys.executable, "-m", "incidentflow", "ingest", "--stop-when-caught-up"]
    database_url = settings.database_url or ""
    database_cpu, broker_cpu = cpu_seconds(database_url, "postgres"), cpu_seconds("", "tansu")
    processes = [subprocess.Popen(command, env=env) for _ in range(workers)]
    first: float | None = None
    try:
        while True:
            done = committed_events(settings.database_url or "", settings.failures_topic)
            now = time.perf_counter()
            if done and first is None:
                first = now
            if done >= expected:
                assert first is not None
                return expected / (now - first)
            if all(process.poll() is not None for process in processes):
                raise RuntimeError(f"workers exited after committing {done} of {expected} events")
            await asyncio.sleep(0.1)  # polling interval of a measurement, not synchronisation
    finally:
        for process in processes:
            process.wait(timeout=60)
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        print(
            f"  CPU while ingesting: workers {usage.ru_utime + usage.ru_stime:.1f}s, database "
            f"{_spent(database_cpu, cpu_seconds(database_url, 'postgres'))}, broker "
            f"{_spent(broker_cpu, cpu_seconds('', 'tansu'))}",
            flush=True,
        )


async def bench(
    database_url: str, bootstrap: str, count: int, tenants: int, workers: int, max_batch: int | None
) -> None:
    settings = Settings(
        database_url=database_url,
        kafka_bootstrap_servers=bootstrap,
        consumer_group=f"bench-{uuid.uuid4().hex[:8]}",
    )
    await ensure_topics(
        bootstrap,
        [*settings.input_topics, settings.changes_topic, settings.deadletter_topic],
        settings.topic_partitions,
        settings.input_topics,
    )
    records = events(count, tenants)
    print(f"publishing {count:,} events over {tenants} tenants ...", flush=True)
    published = await publish(bootstrap, settings.failures_topic, records)
    print(f"  producer: {published:,.0f} events/s", flush=True)
    baseline = await raw_consume(bootstrap, settings.failures_topic, count)
    print(f"  raw aiokafka consume (baseline): {baseline:,.0f} events/s", flush=True)
    rate = await worker_rate(settings, count, workers, max_batch)
    with psycopg.connect(database_url) as conn:
        incidents = conn.execute("select count(*) from incidents").fetchone()
        applied = conn.execute("select count(*) from llm_call_failures").fetchone()
    if not applied or applied[0] != count:
        raise SystemExit(f"{applied[0] if applied else 0:,} events applied, not {count:,}")
    batch = f"batches of {max_batch:,}" if max_batch else "default batches"
    print(f"  ingest, {workers} worker process(es), {batch}: {rate:,.0f} events/s")
    print(f"  ratio ingest / raw consume: {rate / baseline:.3f}")
    print(f"  incidents: {incidents[0] if incidents else 0:,}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--workers", type=int, default=1, help="ingest processes in the group")
    parser.add_argument(
        "--max-batch", type=int, default=None, help="INCIDENTFLOW_INGEST_MAX_BATCH of the workers"
    )
    args = parser.parse_args()
    mode = infra_mode_from_env()
    with provide_postgres(mode) as database_url, provide_broker(mode) as bootstrap:
        upgrade(database_url)
        asyncio.run(
            bench(database_url, bootstrap, args.events, args.tenants, args.workers, args.max_batch)
        )


if __name__ == "__main__":
    main()
