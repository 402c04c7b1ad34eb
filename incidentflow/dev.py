"""`incidentflow dev`: the whole pipeline on one machine, with a live summary until Ctrl-C.

PostgreSQL and the broker come from `DATABASE_URL` / `KAFKA_BOOTSTRAP_SERVERS` when set, else
embedded (pgserver, tansu), both fresh for each run: the embedded broker keeps its topics in memory,
so a database kept from an earlier run would hold offsets of topics that no longer exist. The
ingest worker runs in this process; `--demo` also publishes synthetic traffic. Every process
serves its metrics on 127.0.0.1 (unless `INCIDENTFLOW_METRICS_HOST` is set) and the URLs are
printed at the start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.settings import Settings
from incidentflow.embedded_api import RunningApi, start_api
from incidentflow.infra import free_port, provide_broker, provide_postgres
from incidentflow.ingest_process import run_ingest
from storage.engine import create_async_db_engine
from storage.migrate import upgrade
from workers.changes import IngestStats
from workers.ingest import IngestWorker
from workers.telemetry import metrics_url

SUMMARY_EVERY_SECONDS = 3.0
LOCALHOST = "127.0.0.1"
DEMO_RATE = 100.0
DEMO_TENANTS = 6

TENANT_SUMMARY = text(
    """
    SELECT tenant_id,
           count(*) FILTER (WHERE lifecycle_state <> 'RESOLVED') AS open,
           count(*) FILTER (WHERE lifecycle_state = 'RESOLVED') AS resolved,
           count(*) FILTER (WHERE trigger_type = 'rate_limit_overflow') AS overflow,
           coalesce(sum(calls_affected), 0) AS calls,
           max(severity_rank) AS worst
    FROM (SELECT *, CASE severity WHEN 'critical' THEN 3 WHEN 'high' THEN 2
                                  WHEN 'medium' THEN 1 ELSE 0 END AS severity_rank
          FROM incidents) AS ranked
    GROUP BY tenant_id ORDER BY tenant_id
    """
)
ANALYTICS = text(
    "SELECT (SELECT count(*) FROM processor_snapshots WHERE processor = 'rollups'),"
    " (SELECT count(*) FROM lessons),"
    " (SELECT count(*) FROM lesson_triage)"
)
"""Incidents the processors applied, the lessons they hold, and the lessons commands changed."""
DEAD_LETTERS = text("SELECT reason, count(*) FROM dead_letters GROUP BY reason ORDER BY reason")
SEVERITY_NAMES = ("low", "medium", "high", "critical")


@dataclass(slots=True)
class _Rate:
    """Events per second between two summaries."""

    events: int = 0
    at: float = 0.0

    def update(self, events: int, now: float) -> float:
        rate = (events - self.events) / (now - self.at) if self.at else 0.0
        self.events, self.at = events, now
        return rate


def run_dev(settings: Settings, *, demo: bool) -> int:
    """Start infrastructure, migrate, run ingest (and the demo) until Ctrl-C; returns 0."""
    logging.getLogger("incidentflow").setLevel(logging.WARNING)
    mode = "external" if settings.database_url and settings.kafka_bootstrap_servers else "auto"
    print("incidentflow dev: starting PostgreSQL and the Kafka-protocol broker ...", flush=True)
    with (
        provide_postgres(mode) as database_url,
        provide_broker(mode) as bootstrap,
    ):
        local = {} if "metrics_host" in settings.model_fields_set else {"metrics_host": LOCALHOST}
        settings = settings.model_copy(
            update={"database_url": database_url, "kafka_bootstrap_servers": bootstrap, **local}
        )
        upgrade(database_url)
        print(f"  PostgreSQL: {database_url}")
        print(f"  Kafka bootstrap: {bootstrap}")
        print("  topics:", ", ".join(settings.input_topics))
        print(f"  query:   psql '{database_url}' -c 'SELECT * FROM incidents'")
        print(f"  publish: KAFKA_BOOTSTRAP_SERVERS={bootstrap} incidentflow publish FILE.jsonl")
        print(flush=True)
        return asyncio.run(_run(settings, demo=demo))


async def _run(settings: Settings, *, demo: bool) -> int:
    loop = asyncio.get_running_loop()
    started: asyncio.Future[IngestWorker] = loop.create_future()
    ingest = asyncio.create_task(run_ingest(settings, on_started=started))
    worker = await started
    tasks: list[asyncio.Task[Any]] = [ingest]
    if demo:
        tasks.append(asyncio.create_task(_demo(settings)))
    engine = create_async_db_engine(settings.database_url or "", pool_size=1)
    processors, processors_metrics = await _start_processors(settings)
    api = await _start_api(settings, engine)
    print(f"  metrics: ingest     {worker.metrics_url}")
    print(f"           processors {processors_metrics}")
    print(f"           API        {api.url}/metrics")
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGINT, stop.set)  # ingest's own handler is replaced: stop both
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    print("Ctrl-C to stop.\n", flush=True)
    try:
        rate = _Rate()
        while not stop.is_set() and not ingest.done():
            await _print_summary(engine, worker.stats, rate)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), SUMMARY_EVERY_SECONDS)
    finally:
        worker.stop()
        await api.stop()
        await _stop_processors(processors)
        for task in tasks[1:]:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await engine.dispose()
    print("stopped.")
    return 0


async def _start_processors(settings: Settings) -> tuple[asyncio.subprocess.Process, str]:
    """The stream processors run as their own process (faust owns its event loop); returns it
    and the URL of its metrics."""
    log_path = Path(tempfile.gettempdir()) / f"incidentflow-processors-{os.getpid()}.log"
    host = settings.metrics_host
    port = free_port(host, settings.processors_metrics_port)
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url or "",
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers or "",
        "INCIDENTFLOW_METRICS_HOST": host,
        "INCIDENTFLOW_PROCESSORS_METRICS_PORT": str(port),
    }
    with log_path.open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "incidentflow", "processors",
            env=env, stdout=log_file, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
    print(f"  processors: pid {process.pid} (log: {log_path})")
    return process, metrics_url(host, port)


async def _stop_processors(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 20)
        except TimeoutError:
            process.kill()
            await process.wait()


async def _start_api(settings: Settings, engine: AsyncEngine) -> RunningApi:
    """Serve the read API on 127.0.0.1 (port 8000 or a free one) with a fresh demo tenant key."""
    from api.app import create_app
    from incidentflow.demo import tenant_ids
    from storage.keys import create_key

    tenant = tenant_ids(1)[0]
    async with engine.begin() as conn:
        _, key = await create_key(conn, tenant_id=tenant, name="dev demo")
    api = await start_api(create_app(settings))
    print(f"  API:     {api.url}  (OpenAPI: {api.url}/docs)")
    print(f"  demo key (tenant {tenant}): {key}")
    print(f"  curl -H 'Authorization: Bearer {key}' '{api.url}/v1/incidents?topic=active'")
    return api


async def _demo(settings: Settings) -> None:
    from incidentflow.demo import run_demo
    from incidentflow.publisher import Publisher

    async with Publisher(settings.kafka_bootstrap_servers or "", settings) as publisher:
        await run_demo(publisher, rate=DEMO_RATE, tenants=DEMO_TENANTS, duration=None)


async def _print_summary(engine: AsyncEngine, stats: IngestStats, rate: _Rate) -> None:
    async with engine.connect() as conn:
        tenants = (await conn.execute(TENANT_SUMMARY)).all()
        dead = (await conn.execute(DEAD_LETTERS)).all()
        analysed, lessons, triaged = (await conn.execute(ANALYTICS)).one()
    per_second = rate.update(stats.events, time.monotonic())
    lines = [
        f"[{time.strftime('%H:%M:%S')}] {per_second:,.0f} events/s | applied {stats.events:,} "
        f"events, {stats.commands:,} commands | dead letters {stats.dead_letters:,}",
        f"  {'tenant':<16}{'open':>6}{'resolved':>10}{'overflow':>10}{'calls':>9}  worst",
    ]
    lines += [
        f"  {row.tenant_id:<16}{row.open:>6}{row.resolved:>10}{row.overflow:>10}"
        f"{row.calls:>9}  {SEVERITY_NAMES[row.worst]}"
        for row in tenants
    ]
    lines.append(
        f"  processors: {analysed} incidents analysed, {_count(lessons, 'lesson')}"
        f" ({triaged} triaged)"
    )
    if dead:
        lines.append("  dead letters: " + ", ".join(f"{reason} {count}" for reason, count in dead))
    print("\n".join(lines) + "\n", file=sys.stdout, flush=True)


def _count(number: int, noun: str) -> str:
    """`1 lesson`, `2 lessons`."""
    return f"{number:,} {noun}{'' if number == 1 else 's'}"
