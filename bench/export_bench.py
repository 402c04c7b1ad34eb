"""Export benchmark: the bundles of a 100,000-event incident through the API, and `verify`.

Loads one incident of N LLM failures (default 100,000) of one key the way production does:
published to an embedded broker and ingested by `incidentflow ingest --stop-when-caught-up`
(kept with `--data-dir` and reused). Then, for each step, a fresh API process (`incidentflow
api`, one worker) answers a warm-up request and the export `--runs` times; the step's time is the
median whole download, its memory the API process's peak resident set (VmHWM) against its size
after the warm-up. Two baselines of the same run make the times ratios: reading the incident's
event rows alone (a psycopg server-side cursor, nothing encoded) and the detail endpoint.
`verify` runs as the command line does, in a process of its own. Every run of a step must give
the same bytes. Targets: an export within 10 s and 200 MB.

usage: python -m bench.export_bench [--events N] [--data-dir DIR] [--runs R]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from aiokafka import AIOKafkaProducer

from domain.incidents import incident_id_for
from domain.settings import Settings
from incidentflow.infra import infra_mode_from_env, provide_broker, provide_postgres
from storage.keys import hash_key, new_key
from storage.migrate import upgrade
from workers.topics import ensure_topics

TENANT = "bench-export"
FIRST_EVENT = "export-bench-000000"
END = datetime(2026, 11, 1, 12, tzinfo=UTC)
TARGET_SECONDS = 10.0
TARGET_MB = 200.0
EXPORTS = [
    (f"{kind}-{export_format}", {"kind": kind, "format": export_format})
    for export_format in ("json", "pdf")
    for kind in ("evidence", "soc2", "debrief")
]


def failure(index: int, count: int) -> dict[str, Any]:
    """The `index`-th of `count` failures of one key, 5 ms apart, the last at `END`."""
    at = END - timedelta(milliseconds=5 * (count - 1 - index))
    return {
        "event_id": f"export-bench-{index:06d}",
        "tenant_id": TENANT,
        "occurred_at": at.isoformat(),
        "run_id": f"run-{index % 7}",
        "call_id": f"call-{index}",
        "agent_id": "support-bot",
        "provider": "openai",
        "model": "gpt-4o",
        "failure_type": "timeout",
        "error_code": "ETIMEDOUT",
        "error_message": f"upstream timed out after 30 s (attempt {index % 3})",
        "request_id": f"req-{index:06d}",
        "duration_ms": 30000,
        "tokens_in": 812,
        "cost_usd": "0.00350000",
        "metadata": {"region": "eu-west-1", "attempt": index % 3, "latency_s": 30.5},
    }


def loaded_events(database_url: str) -> int:
    """The events of the benchmark's incident already in the database (0: none)."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT calls_affected FROM incidents WHERE incident_id = %s",
            (incident_id_for(FIRST_EVENT),),
        ).fetchone()
        others = conn.execute("SELECT count(*) FROM incidents").fetchone()
    if row is None and others and others[0]:
        raise SystemExit("the database holds other incidents: use another --data-dir")
    return int(row[0]) if row else 0


async def publish(bootstrap: str, settings: Settings, count: int) -> None:
    names = [*settings.input_topics, settings.changes_topic, settings.deadletter_topic]
    await ensure_topics(bootstrap, names, settings.topic_partitions, settings.input_topics)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        for index in range(count):
            value = json.dumps(failure(index, count), separators=(",", ":")).encode()
            await producer.send(settings.failures_topic, key=TENANT.encode(), value=value)
        await producer.flush()
    finally:
        await producer.stop()


def load(database_url: str, count: int) -> None:
    """Publish the incident's events to a fresh embedded broker and ingest them to the end."""
    started = time.perf_counter()
    with provide_broker(infra_mode_from_env()) as bootstrap:
        asyncio.run(publish(bootstrap, Settings(), count))
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "INCIDENTFLOW_IDLE_WATERMARK_ADVANCE": "false",
            "INCIDENTFLOW_INGEST_METRICS_PORT": "0",
            "INCIDENTFLOW_LOG_LEVEL": "warning",
        }
        command = [sys.executable, "-m", "incidentflow", "ingest", "--stop-when-caught-up"]
        subprocess.run(command, env=env, check=True)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    print(f"loaded {count:,} events in {time.perf_counter() - started:.0f}s (publish + ingest)")


def create_key(database_url: str) -> str:
    key_id, key = new_key()
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO api_keys (key_hash, key_id, tenant_id, is_ops, name)"
            " VALUES (%s, %s, %s, false, 'export bench')",
            (hash_key(key), key_id, TENANT),
        )
    return key


def read_events_alone(database_url: str) -> float:
    """Seconds to read the incident's event rows through a server-side cursor, unencoded."""
    started = time.perf_counter()
    with psycopg.connect(database_url) as conn, conn.cursor(name="events") as cursor:
        cursor.itersize = 2000
        cursor.execute(
            "SELECT * FROM llm_call_failures WHERE incident_id = %s AND tenant_id = %s"
            " ORDER BY occurred_at, event_id",
            (incident_id_for(FIRST_EVENT), TENANT),
        )
        for _ in cursor:
            pass
    return time.perf_counter() - started


def memory_mb(pid: int, field: str) -> float:
    """`VmRSS` (now) or `VmHWM` (peak) of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for process {pid}")


@dataclass
class Server:
    """One `incidentflow api` process (one worker: its memory is the process's own)."""

    process: subprocess.Popen[bytes]
    base: str

    @classmethod
    def start(cls, database_url: str, port: int) -> Server:
        env = {**os.environ, "DATABASE_URL": database_url, "INCIDENTFLOW_LOG_LEVEL": "warning"}
        command = [sys.executable, "-m", "incidentflow", "api", "--port", str(port)]
        server = cls(subprocess.Popen(command, env=env), f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{server.base}/readyz", timeout=2).status_code == 200:
                    return server
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.process.poll() is not None:
                server.stop()
                raise RuntimeError("the API did not become ready")
            time.sleep(0.2)  # polling a starting server, not test synchronisation

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


@dataclass
class Download:
    seconds: float
    first_byte: float
    size: int
    sha256: str


def download(client: httpx.Client, url: str, params: dict[str, str], keep: Path | None) -> Download:
    """One GET read to its end in chunks (written to `keep` if given), timed."""
    digest, size = hashlib.sha256(), 0
    started = time.perf_counter()
    first = None
    with client.stream("GET", url, params=params) as response:
        if response.status_code != 200:
            raise RuntimeError(f"{url} {params}: {response.status_code} {response.read()[:300]!r}")
        with keep.open("wb") if keep else open(os.devnull, "wb") as file:
            for chunk in response.iter_bytes():
                first = first or time.perf_counter() - started
                digest.update(chunk)
                size += len(chunk)
                file.write(chunk)
    return Download(time.perf_counter() - started, first or 0.0, size, digest.hexdigest())


@dataclass
class Step:
    name: str
    seconds: float
    peak_mb: float | None = None
    idle_mb: float | None = None
    note: str = ""


def measure_step(
    database_url: str, args: Any, key: str, name: str, path: str, params: dict[str, str]
) -> Step:
    """A fresh API process: warm-up (the detail), then `args.runs` downloads of `path`."""
    server = Server.start(database_url, args.port)
    incident = incident_id_for(FIRST_EVENT)
    try:
        with httpx.Client(
            base_url=server.base, headers={"Authorization": f"Bearer {key}"}, timeout=120
        ) as client:
            download(client, f"/v1/incidents/{incident}", {}, None)
            idle = memory_mb(server.process.pid, "VmRSS")
            keep = args.folder / f"{name}.out" if params else None
            runs = [download(client, path, params, keep) for _ in range(args.runs)]
            peak = memory_mb(server.process.pid, "VmHWM")
    finally:
        server.stop()
    if len({run.sha256 for run in runs}) != 1:
        raise RuntimeError(f"{name}: the runs gave different bytes")
    first_byte = statistics.median(run.first_byte for run in runs)
    note = f"{runs[0].size:,} bytes, first byte {first_byte:.2f}s"
    return Step(name, statistics.median(run.seconds for run in runs), peak, idle, note)


def measure_verify(path: Path) -> Step:
    """`incidentflow verify` of the evidence file, in a process of its own."""
    code = (
        "import resource, sys; from incidentflow.cli import main; status = main(sys.argv[1:]); "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); "
        "sys.exit(status)"
    )
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", code, "verify", str(path)], capture_output=True, text=True
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"verify: {result.stdout}{result.stderr}")
    peak = int(result.stderr.split()[-1]) / 1024
    return Step("verify (CLI)", seconds, peak, None, result.stdout.strip()[:24] + "...")


def report(steps: Iterator[Step], events: int) -> None:
    baseline = None
    print(f"\n{events:,}-event incident")
    header = f"{'step':<16}{'s':>8}{'x events read':>15}{'peak MB':>9}{'idle MB':>9}  note"
    print(header)
    for step in steps:
        baseline = baseline or step.seconds
        peak = f"{step.peak_mb:9.0f}" if step.peak_mb is not None else f"{'':>9}"
        idle = f"{step.idle_mb:9.0f}" if step.idle_mb is not None else f"{'':>9}"
        over = ""
        if step.name not in ("events read", "detail") and (
            step.seconds > TARGET_SECONDS or (step.peak_mb or 0) > TARGET_MB
        ):
            over = f"  OVER TARGET ({TARGET_SECONDS:g} s, {TARGET_MB:g} MB)"
        ratio = step.seconds / baseline
        print(f"{step.name:<16}{step.seconds:8.2f}{ratio:15.1f}{peak}{idle}  {step.note}{over}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3, help="downloads per step (median)")
    parser.add_argument("--port", type=int, default=18090)
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="keep the embedded database here and reuse it"
    )
    args = parser.parse_args()
    data_dir = args.data_dir.resolve() if args.data_dir else None
    with (
        provide_postgres(infra_mode_from_env(), data_dir=data_dir) as database_url,
        tempfile.TemporaryDirectory() as folder,
    ):
        args.folder = Path(folder)
        upgrade(database_url)
        found = loaded_events(database_url)
        if found == 0:
            load(database_url, args.events)
        elif found != args.events:
            raise SystemExit(f"the database holds {found:,} events, not {args.events:,}")
        else:
            print(f"reusing {found:,} loaded events")
        key = create_key(database_url)
        incident = incident_id_for(FIRST_EVENT)
        export = f"/v1/incidents/{incident}/export"

        def steps() -> Iterator[Step]:
            reads = [read_events_alone(database_url) for _ in range(args.runs)]
            yield Step("events read", statistics.median(reads), note="psycopg cursor, no API")
            yield measure_step(database_url, args, key, "detail", f"/v1/incidents/{incident}", {})
            for name, params in EXPORTS:
                yield measure_step(database_url, args, key, name, export, params)
            yield measure_verify(args.folder / "evidence-json.out")

        report(steps(), args.events)


if __name__ == "__main__":
    main()
