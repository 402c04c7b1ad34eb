"""Read API benchmark: p50/p99 latency and requests/s on 1,000,000 incidents under load.

Loads N incidents (default 1,000,000) over many tenants and 60 days straight into PostgreSQL,
with the processors' tables computed from the same snapshots by the processors' own pure
contributions (`domain.analytics`), serves the API with uvicorn in a subprocess, and drives
each endpoint with concurrent clients (the list also paged at a given `as_of`, and the cost
incidents with and without the resolved ones). `/healthz` (no database) is measured in the same
run as the baseline; ratios are against its p50.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import httpx
import psycopg
from psycopg.types.json import Jsonb

from domain.analytics import LESSONS, PATTERNS, PROCESSORS, RECURRENCE, add_counters, contribution
from domain.config import AggregationConfig
from domain.descriptions import describe_incident
from domain.incidents import Incident, LifecycleState, add_to_breakdown
from domain.lesson_triage import LessonCommand, Triage, apply_command
from domain.lessons import assemble_lessons
from domain.metrics import SlaTargets
from domain.snapshot import IncidentSnapshot
from incidentflow.infra import infra_mode_from_env, provide_postgres
from storage import analytics_schema, schema
from storage.keys import hash_key, new_key
from storage.lessons_store import lesson_row
from storage.migrate import upgrade
from storage.rows import INCIDENT_COLUMNS, incident_row
from storage.rules import SEVERITIES

CATEGORIES = (
    ("llm_failure", "LLM_TIMEOUT"), ("llm_failure", "LLM_ERROR"),
    ("llm_failure", "PROVIDER_OUTAGE"), ("rate_limit", "RATE_LIMIT"),
    ("budget_breach", "BUDGET_EXCEEDED"), ("content_policy", "CONTENT_POLICY"),
    ("policy_violation", "POLICY_PII"),
)  # fmt: skip
MODELS = ("openai/gpt-4o", "anthropic/claude-sonnet", "google/gemini-pro", "mistral/large")
END = datetime(2026, 11, 1, tzinfo=UTC)
SPAN = timedelta(days=60)


def incidents(count: int, tenants: int, seed: int = 3) -> Iterator[Incident]:
    rng = random.Random(seed)
    for index in range(count):
        tenant = f"tenant-{index % tenants:04d}"
        trigger, category = rng.choice(CATEGORIES)
        started = END - SPAN + timedelta(seconds=rng.randrange(int(SPAN.total_seconds())))
        last = started + timedelta(seconds=rng.randrange(1, 7200))
        state = rng.choices(list(LifecycleState), weights=(1, 1, 8))[0]
        calls = rng.randrange(1, 400)
        cost = Decimal(rng.randrange(1, 10**6)) / Decimal(10**4)
        fingerprint = f"{rng.choice(MODELS)}/{category.lower()}"
        incident = Incident(
            incident_id=uuid.UUID(int=rng.getrandbits(128), version=4),
            tenant_id=tenant,
            trigger_type=trigger,
            fingerprint=fingerprint,
            fingerprints=[fingerprint],
            category=category,
            cause_type="LLM_RUN",
            title=f"LLM call failures: {fingerprint}",
            severity=rng.choice(SEVERITIES),
            started_at=started,
            last_event_at=last,
            is_synthetic=False,
            lifecycle_state=state,
            calls_affected=calls,
            cost_usd=cost,
            run_ids=[f"run-{rng.randrange(20000)}" for _ in range(rng.randrange(1, 3))],
            version=calls,
        )
        if state is not LifecycleState.ACTIVE:
            incident.acked_at = started + timedelta(seconds=rng.randrange(60, 3600))
            incident.acked_by = "oncall"
        if state is LifecycleState.RESOLVED:
            incident.resolved_at = last + timedelta(seconds=900)
            incident.resolved_by = "system"
            incident.resolution_method = rng.choice(("auto", "auto", "manual", "rollback"))
        add_to_breakdown(incident.breakdown, "model", fingerprint.rsplit("/", 1)[0], cost)
        agent = f"agent-{rng.randrange(30)}"
        add_to_breakdown(incident.breakdown, "agent", agent, cost)
        _add_context(incident, agent)
        yield incident


def _add_context(incident: Incident, agent: str) -> None:
    """What the aggregator keeps for on-call, at the sizes the bench's ingest events give."""
    incident.source_run_id, incident.agent_ids = incident.run_ids[0], [agent]
    incident.first_error_code, incident.latest_error_code = "504", "429"
    incident.first_error_message = incident.latest_error_message = "upstream request failed"
    incident.description = describe_incident(incident)


def _copy(conn: psycopg.Connection[Any], table: str, columns: list[str], rows: Any) -> None:
    with (
        conn.cursor() as cursor,
        cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)


def _adapt(value: Any) -> Any:
    return Jsonb(value) if isinstance(value, dict) else value


def load(database_url: str, count: int, tenants: int) -> dict[str, list[str]]:
    """Load the incidents and the processors' tables; returns some incident ids per tenant."""
    started = time.perf_counter()
    counters: dict[str, dict[Any, Any]] = {processor: {} for processor in PROCESSORS}
    members: dict[str, list[Any]] = defaultdict(list)
    sample: dict[str, list[str]] = defaultdict(list)
    # Each incident stamped as the ingest worker stamps one created in order: at its start.
    columns = [*INCIDENT_COLUMNS, "created_watermark"]
    sla = SlaTargets()

    def rows() -> Iterator[list[Any]]:
        for number, incident in enumerate(incidents(count, tenants)):
            row = incident_row(incident, partition=number % 8)
            row["created_watermark"] = incident.started_at
            yield [_adapt(row[name]) for name in columns]
            snapshot = IncidentSnapshot.model_validate(incident.snapshot())
            for processor in PROCESSORS:
                part = contribution(processor, snapshot, sla)
                add_counters(counters[processor], part.counters)
                members[processor].extend(part.members)
            if len(sample[incident.tenant_id]) < 50:
                sample[incident.tenant_id].append(str(incident.incident_id))
            if number and number % 200_000 == 0:
                print(f"  {number:,} incidents ...", flush=True)

    with psycopg.connect(database_url) as conn:
        conn.execute("ALTER TABLE incidents DISABLE TRIGGER USER")  # counted once, below
        _copy(conn, "incidents", columns, rows())
        conn.execute("ALTER TABLE incidents ENABLE TRIGGER USER")
        for statement in schema.RECOUNT_INCIDENTS:
            conn.execute(statement)
        for processor, table in (("rollups", analytics_schema.incident_rollups_hourly),
                                 ("recurrence", analytics_schema.recurrence_daily),
                                 ("costs", analytics_schema.cost_daily)):  # fmt: skip
            names = [column.name for column in table.columns]
            _copy(conn, table.name, names, (
                [{**key._asdict(), **values}.get(name, 0) for name in names]
                for key, values in counters[processor].items()
            ))  # fmt: skip
        for member_table, processor in (
            (analytics_schema.recurrence_fingerprints, RECURRENCE),
            (analytics_schema.pattern_members, PATTERNS),
            (analytics_schema.lesson_members, LESSONS),
        ):
            names = [column.name for column in member_table.columns]
            _copy(conn, member_table.name, names, (
                [member._asdict()[name] for name in names]
                for member in members[processor]
                if set(names) <= set(member._fields)
            ))  # fmt: skip
        load_lessons(conn, members[LESSONS], members[RECURRENCE])
        conn.execute(
            "INSERT INTO ingest_partitions (partition, watermark) "
            "SELECT p, %s FROM generate_series(0, 7) AS p",
            (END,),
        )
    # A steady database has been vacuumed: index-only scans need the visibility map.
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    print(
        f"loaded {count:,} incidents over {tenants} tenants in {time.perf_counter() - started:.0f}s"
    )
    return sample


TRIAGED_EVERY = 8
"""One lesson in this many has been triaged by a command (the rest are pending)."""
TRIAGE_ACTIONS = (
    ("defer", {"until": END + timedelta(days=7)}),  # deferred at as_of
    ("defer", {"until": END - timedelta(days=1)}),  # its deferral has ended: pending at as_of
    ("dismiss", {}),
    ("convert", {"policy_draft": "alert on this fingerprint"}),
)


def load_lessons(
    conn: psycopg.Connection[Any], members: list[Any], fingerprints: list[Any]
) -> None:
    """`lessons` as the lessons processor assembles them from its member rows and the recurrence
    fingerprint rows, and for one lesson in `TRIAGED_EVERY` the triage a command leaves."""
    assembled = assemble_lessons(members, fingerprints, AggregationConfig())
    names = [column.name for column in analytics_schema.lessons.columns]
    _copy(conn, "lessons", names, ([lesson_row(lesson)[n] for n in names] for lesson in assembled))
    states, commands = [], []
    for number, lesson in enumerate(assembled[::TRIAGED_EVERY]):
        action, fields = TRIAGE_ACTIONS[number % len(TRIAGE_ACTIONS)]
        wire = {"command_id": f"bench-{number}", "tenant_id": lesson.tenant_id,
                "lesson_id": lesson.lesson_id, "action": action, "issued_by": "bench",
                "issued_at": END - timedelta(days=2)} | fields  # fmt: skip
        command = LessonCommand.model_validate(wire)
        triage = apply_command(Triage(lesson.lesson_id, lesson.tenant_id), command)
        assert isinstance(triage, Triage), triage
        states.append(triage)
        commands.append(command)
    triage_columns = [column.name for column in analytics_schema.lesson_triage.columns]
    _copy(conn, "lesson_triage", triage_columns, (
        [t.lesson_id, t.tenant_id, t.state.value, t.deferred_until, t.policy_draft, t.changed_at,
         t.changed_by, t.note, t.commands]
        for t in states
    ))  # fmt: skip
    _copy(conn, "lesson_commands", [
        "tenant_id", "command_id", "lesson_id", "action", "issued_at", "issued_by", "until",
        "policy_draft", "note"], (
        [c.tenant_id, c.command_id, c.lesson_id, c.action.value, c.issued_at, c.issued_by, c.until,
         c.policy_draft, c.note]
        for c in commands
    ))  # fmt: skip
    print(f"  {len(assembled):,} lessons, {len(states):,} of them triaged", flush=True)


def ensure_lessons(database_url: str, count: int, tenants: int) -> None:
    """Fill the lesson tables of a database loaded before they existed, from the same incidents."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM lessons").fetchone()
        if row and row[0]:
            return
        print("loading the lessons of the loaded incidents ...", flush=True)
        members: dict[str, list[Any]] = {LESSONS: [], RECURRENCE: []}
        for incident in incidents(count, tenants):
            snapshot = IncidentSnapshot.model_validate(incident.snapshot())
            for processor, found in members.items():
                found.extend(contribution(processor, snapshot, SlaTargets()).members)
        names = [column.name for column in analytics_schema.lesson_members.columns]
        _copy(conn, "lesson_members", names, (
            [member._asdict()[name] for name in names] for member in members[LESSONS]
        ))  # fmt: skip
        load_lessons(conn, members[LESSONS], members[RECURRENCE])
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE lessons, lesson_triage, lesson_members, lesson_commands")


def lesson_sample(database_url: str) -> dict[str, list[str]]:
    """Some lesson ids per tenant."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT tenant_id, (array_agg(lesson_id::text))[1:50] FROM lessons GROUP BY 1"
        ).fetchall()
    return {tenant: ids for tenant, ids in rows}


def loaded_sample(database_url: str, count: int) -> dict[str, list[str]] | None:
    """Incident ids per tenant if the database already holds the `count` incidents."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM incidents").fetchone()
        if not row or row[0] != count:
            if row and row[0]:
                raise SystemExit(f"the database holds {row[0]:,} incidents, not {count:,}")
            return None
        rows = conn.execute(
            "SELECT tenant_id, (array_agg(incident_id::text))[1:50] FROM incidents GROUP BY 1"
        ).fetchall()
    print(f"reusing {count:,} loaded incidents")
    return {tenant: ids for tenant, ids in rows}


def create_keys(database_url: str, tenants: list[str]) -> dict[str, str]:
    keys = {}
    with psycopg.connect(database_url) as conn:
        for tenant in tenants:
            key_id, key = new_key()
            conn.execute(
                "INSERT INTO api_keys (key_hash, key_id, tenant_id, is_ops, name)"
                " VALUES (%s, %s, %s, false, 'bench')",
                (hash_key(key), key_id, tenant),
            )
            keys[tenant] = key
    return keys


async def drive(
    base: str, paths: list[tuple[str, str]], keys: dict[str, str], concurrency: int
) -> tuple[list[float], float]:
    """Send every (tenant, path) request with `concurrency` clients; latencies and duration.

    The load generator shares the machine with the server and PostgreSQL, so it is aiohttp
    (about a third of httpx's CPU per request): what it spends is taken from the system measured.
    """
    queue = list(reversed(paths))
    latencies: list[float] = []

    async def client(http: aiohttp.ClientSession) -> None:
        while queue:
            tenant, path = queue.pop()
            sent = time.perf_counter()
            headers = {"Authorization": f"Bearer {keys[tenant]}"}
            async with http.get(base + path, headers=headers) as response:
                body = await response.read()
            latencies.append(time.perf_counter() - sent)
            if response.status != 200:
                raise RuntimeError(f"{path}: {response.status} {body[:200]!r}")

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
        return latencies, time.perf_counter() - started


def scenarios(
    sample: dict[str, list[str]], requests: int, lessons: dict[str, list[str]]
) -> dict[str, list[tuple[str, str]]]:
    rng = random.Random(5)
    tenants = sorted(sample)

    def many(make: Any) -> list[tuple[str, str]]:
        return [make(rng.choice(tenants)) for _ in range(requests)]

    sorts = ("started_at", "calls_affected", "severity", "cost_usd")
    selections = ("topic=active", "topic=resolved", "lifecycle_state=ACKED")
    as_of = quote(END.isoformat())
    return {
        "healthz (baseline)": many(lambda t: (t, "/healthz")),
        "list": many(lambda t: (t, f"/v1/incidents?topic={rng.choice(('active', 'resolved'))}"
                                   f"&sort_by={rng.choice(sorts)}&limit=20")),
        "list paged (as_of)": many(lambda t: (t, f"/v1/incidents?{rng.choice(selections)}"
                                                 f"&sort_by={rng.choice(sorts)}&limit=20"
                                                 f"&offset={rng.choice((0, 20, 40, 60))}"
                                                 f"&as_of={as_of}")),
        "cost incidents": many(lambda t: (t, "/v1/costs/incidents?include_resolved="
                                             f"{rng.choice(('false', 'true'))}&limit=20"
                                             f"&offset={rng.choice((0, 0, 20, 40))}")),
        "detail": many(lambda t: (t, f"/v1/incidents/{rng.choice(sample[t])}")),
        "metrics": many(lambda t: (t, "/v1/incidents/metrics?window_days=30")),
        "trend": many(lambda t: (t, "/v1/incidents/historical/trend"
                                    "?window_days=90&granularity=week")),
        "patterns": many(lambda t: (t, "/v1/incidents/patterns?window_hours=24")),
        "lessons": many(lambda t: (t, "/v1/lessons?limit=20" + rng.choice(LESSON_FILTERS))),
        "lesson detail": many(lambda t: (t, f"/v1/lessons/{rng.choice(lessons[t])}")),
        "lesson stats": many(lambda t: (t, "/v1/lessons/stats")),
    }  # fmt: skip


LESSON_FILTERS = ("", "&state=pending", "&state=deferred", "&kind=severe_incident_resolved",
                  "&kind=recurring_fingerprint&state=pending", "&offset=100")  # fmt: skip
"""What the lessons list is asked: all, by state, by kind, both, a later page."""

WARM_UP = 200
"""Requests per endpoint sent before measuring (psycopg prepares a statement on its 5th use on a
connection, and each server process pools up to 10)."""


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def measure(
    base: str,
    sample: dict[str, list[str]],
    keys: dict[str, str],
    args: Any,
    lessons: dict[str, list[str]],
) -> None:
    plans = scenarios(sample, args.requests + WARM_UP, lessons)
    baseline_p50 = None
    print(f"\n{'endpoint':<20}{'p50 ms':>9}{'p99 ms':>9}{'req/s':>9}{'p50/baseline':>14}")
    for name, paths in plans.items():
        if args.endpoints and name not in args.endpoints and baseline_p50 is not None:
            continue
        # Unmeasured first requests: every pooled connection of both server processes compiles
        # and prepares the endpoint's statements before the steady state is measured.
        await drive(base, paths[:WARM_UP], keys, args.concurrency)
        latencies, duration = await drive(base, paths[WARM_UP:], keys, args.concurrency)
        p50, p99 = percentile(latencies, 0.5) * 1000, percentile(latencies, 0.99) * 1000
        baseline_p50 = baseline_p50 or p50
        print(f"{name:<20}{p50:>9.1f}{p99:>9.1f}{len(latencies) / duration:>9.0f}"
              f"{p50 / baseline_p50:>14.1f}")  # fmt: skip
    print(f"(concurrency {args.concurrency}; mean over all: "
          f"{statistics.mean(latencies) * 1000:.1f} ms for the last endpoint)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--incidents", type=int, default=1_000_000)
    parser.add_argument("--tenants", type=int, default=200)
    parser.add_argument(
        "--requests",
        type=int,
        default=2000,
        help="measured per endpoint (a p99 of 400 is their 4th slowest: it moved by 20 ms)",
    )
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument(
        "--endpoints", nargs="*", default=None, help="measure only these (the baseline always runs)"
    )
    parser.add_argument("--port", type=int, default=18080)
    parser.add_argument(
        "--api-workers", type=int, default=2, help="API server processes (2: one per core)"
    )
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="keep the embedded database here and reuse it"
    )
    args = parser.parse_args()
    data_dir = args.data_dir.resolve() if args.data_dir else None
    with provide_postgres(infra_mode_from_env(), data_dir=data_dir) as database_url:
        upgrade(database_url)
        sample = loaded_sample(database_url, args.incidents)
        if sample is None:
            sample = load(database_url, args.incidents, args.tenants)
        ensure_lessons(database_url, args.incidents, args.tenants)
        keys = create_keys(database_url, sorted(sample))
        env = {**os.environ, "DATABASE_URL": database_url}
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "incidentflow",
                "api",
                "--port",
                str(args.port),
                "--workers",
                str(args.api_workers),
            ],
            env={**env, "INCIDENTFLOW_LOG_LEVEL": "warning"},
        )
        base = f"http://127.0.0.1:{args.port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the API did not become ready")
                time.sleep(0.2)  # polling a starting server, not test synchronisation
            asyncio.run(measure(base, sample, keys, args, lesson_sample(database_url)))
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
