"""The analytics endpoints' data set and oracle: scenario log -> ingest -> processors -> API.

`run_pipeline` fills a database through the real pipeline; the `expected_*` functions compute what
each endpoint must answer directly from the final `incidents` rows (never from the processors'
tables). The test modules compare responses as response models, so datetimes compare as instants
whatever their offset.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg.rows import dict_row
from pydantic import BaseModel

from api.cost_impact import bodies as ci
from api.costs import bodies as cm
from api.history import bodies as hm
from api.patterns import bodies as pm
from api.recurrence import bodies as rm
from domain import analytics
from domain import spend as a
from domain.buckets import Granularity
from domain.spend import KeySpend, Period
from tests.e2e.pipeline import PARTITIONS, publish_scenario, run_ingest_to_end
from tests.scenario import ScenarioMessage, build_scenario, partition_for
from tests.support import wait_until

NOW = datetime.now(UTC).replace(microsecond=0)
REPO = Path(__file__).resolve().parents[3]
TENANTS = ("acme", "globex", "initech", "umbrella", "hooli", "stark", "edge-4")
D = timedelta(days=1)
EDGE_TENANT = "edge-4"
EDGE = (NOW - timedelta(hours=42)).replace(minute=30, second=0)
"""as_of of the test: the last event of EDGE_TENANT, whose partition is otherwise unused."""


@dataclass(frozen=True)
class Row:
    """An `incidents` row, times in UTC."""

    incident_id: uuid.UUID
    tenant_id: str
    trigger_type: str
    category: str
    severity: str
    cause_type: str
    resolved: bool
    started_at: datetime
    last_event_at: datetime
    resolved_at: datetime | None
    resolution_method: str | None
    calls_affected: int
    cost_usd: Decimal
    reopen_count: int
    fingerprints: tuple[str, ...]
    run_ids: tuple[str, ...]
    breakdown: dict[str, dict[str, dict[str, Any]]]

    @property
    def method(self) -> str:
        return (self.resolution_method or "unresolved") if self.resolved else "unresolved"

    @property
    def day(self) -> date:
        return self.started_at.date()


@dataclass
class Pipeline:
    client: httpx.AsyncClient
    rows: list[Row]
    as_of: datetime
    keys: dict[str, str]

    async def get(self, model: type[BaseModel], path: str, tenant: str, **params: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.keys[tenant]}"}
        response = await self.client.get(path, params=params, headers=headers)
        assert response.status_code == 200, response.text
        return model.model_validate(response.json())

    def of(self, tenant: str, start: datetime, *, after: bool = False) -> list[Row]:
        """The tenant's incidents started in [start, as_of] ((start, as_of] with `after`)."""
        return [
            r
            for r in self.rows
            if r.tenant_id == tenant
            and r.started_at <= self.as_of
            and (r.started_at > start if after else r.started_at >= start)
        ]


async def run_pipeline(url: str, bootstrap: str) -> None:
    """Publish the scenario (and the edge tenant's events), run ingest to the end, then the
    processors until they applied every incident at its final version."""
    messages = build_scenario(7, now=NOW)
    messages += edge_messages(messages)
    topics = await publish_scenario(bootstrap, messages)
    env = topics.env(url, bootstrap, INCIDENTFLOW_PROCESSORS_GROUP=f"{topics.prefix}processors")
    run_ingest_to_end(env)
    worker = subprocess.Popen(
        [sys.executable, "-m", "incidentflow", "processors"],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        await wait_until(
            lambda: _processors_caught_up(url),
            timeout=120,
            interval=0.2,
            message="the processors never applied every incident at its final version",
        )
    finally:
        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=60)
    assert worker.returncode == 0, stderr.decode(errors="replace")[-4000:]


def edge_messages(messages: list[ScenarioMessage]) -> list[ScenarioMessage]:
    """Failures of `EDGE_TENANT`, alone on its partition, ending at `EDGE`, in the middle of the
    scenario's span: that partition's watermark, `EDGE`, is the least, so as_of falls inside
    every other tenant's data (what starts later must be left out) and the edge tenant has
    incidents in as_of's own hour (read from `incidents`, not the rollups)."""
    used = {partition_for(message.key, PARTITIONS) for message in messages}
    assert partition_for(EDGE_TENANT.encode(), PARTITIONS) not in used
    kinds = ("timeout", "exception", "content_filtered", "budget_exceeded", "rate_limited")
    edge = []
    for n in range(18):
        body = {
            "event_id": f"edge-{n}",
            "tenant_id": EDGE_TENANT,
            "occurred_at": (EDGE - (17 - n) * 10 * timedelta(minutes=1)).isoformat(),
            "run_id": f"edge-run-{n % 4}",
            "provider": "openai",
            "model": "gpt-4o",
            "failure_type": kinds[n % len(kinds)],
            "agent_id": f"agent-{n % 2}",
            "cost_usd": f"0.{n + 10}",
        }
        edge.append(ScenarioMessage("failures", EDGE_TENANT.encode(), json.dumps(body).encode()))
    return edge


def _processors_caught_up(url: str) -> bool:
    with psycopg.connect(url) as conn:
        (incidents,) = conn.execute("SELECT count(*) FROM incidents").fetchone() or (0,)
        (current,) = conn.execute(
            "SELECT count(*) FROM processor_snapshots s JOIN incidents i"
            " ON i.incident_id = s.incident_id AND i.version = s.version"
        ).fetchone() or (0,)
    return incidents > 0 and current == incidents * len(analytics.PROCESSORS)


def read_incidents(url: str) -> tuple[list[Row], datetime]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        rows = [_row(r) for r in conn.execute("SELECT * FROM incidents")]
        watermark = conn.execute("SELECT min(watermark) AS w FROM ingest_partitions").fetchone()
    assert watermark is not None and watermark["w"] is not None
    return rows, watermark["w"].astimezone(UTC)


def _row(r: dict[str, Any]) -> Row:
    def utc(value: datetime | None) -> Any:
        return value.astimezone(UTC) if value is not None else None

    return Row(
        incident_id=r["incident_id"],
        tenant_id=r["tenant_id"],
        trigger_type=r["trigger_type"],
        category=r["category"],
        severity=r["severity"],
        cause_type=r["cause_type"],
        resolved=r["lifecycle_state"] == "RESOLVED" and r["resolved_at"] is not None,
        started_at=utc(r["started_at"]),
        last_event_at=utc(r["last_event_at"]),
        resolved_at=utc(r["resolved_at"]),
        resolution_method=r["resolution_method"],
        calls_affected=r["calls_affected"],
        cost_usd=r["cost_usd"],
        reopen_count=r["reopen_count"],
        fingerprints=tuple(dict.fromkeys([r["fingerprint"], *r["fingerprints"]])),
        run_ids=tuple(dict.fromkeys(r["run_ids"])),
        breakdown=r["breakdown"],
    )


# -- what the endpoints must answer, from the incidents rows ----------------------------------


def midnight(at: datetime, days_back: int = 0) -> datetime:
    return datetime.combine(at.date(), time(), UTC) - days_back * D


def half_up(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP)


def newest(rows: Iterable[Row], n: int) -> list[uuid.UUID]:
    ordered = sorted(rows, key=lambda r: (r.started_at, str(r.incident_id)), reverse=True)
    return [r.incident_id for r in ordered[:n]]


THRESHOLDS = {"category_cluster": 3, "severity_spike": 3, "cascade_failure": 2}


def confidence(kind: str, dimension: str, n: int) -> float:
    if kind == "category_cluster":
        value = min(Decimal("0.5") + Decimal("0.1") * (n - 3), Decimal("0.95"))
    elif kind == "severity_spike":
        base = Decimal("0.8") if dimension == "critical" else Decimal("0.7")
        value = min(base + Decimal("0.05") * (n - 3), Decimal("0.98"))
    else:
        value = min(Decimal("0.75") + Decimal("0.1") * (n - 2), Decimal("0.95"))
    return float(half_up(value, 2))


def expected_patterns(p: Pipeline, tenant: str, hours: int, limit: int) -> pm.Patterns:
    start = p.as_of - timedelta(hours=hours)
    window = p.of(tenant, start, after=True)
    groups: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for r in window:
        if r.trigger_type == "rate_limit_overflow":
            continue
        groups["category_cluster", r.category].append(r)
        if r.severity in ("high", "critical"):
            groups["severity_spike", r.severity].append(r)
        for run in r.run_ids:
            groups["cascade_failure", run].append(r)
    patterns = []
    for kind in ("category_cluster", "severity_spike", "cascade_failure"):
        found = [(d, rs) for (k, d), rs in groups.items() if k == kind and len(rs) >= THRESHOLDS[k]]
        if kind == "severity_spike":
            found.sort(key=lambda f: (f[0] != "critical", -len(f[1]), f[0]))
        else:
            found.sort(key=lambda f: (-len(f[1]), f[0]))
        patterns += [
            pm.Pattern(
                pattern_type=kind,  # type: ignore[arg-type]
                dimension=d,
                count=len(rs),
                incident_ids=newest(rs, 10),
                confidence=confidence(kind, d, len(rs)),
            )
            for d, rs in found[:limit]
        ]
    return pm.Patterns(
        patterns=patterns,
        incidents_analyzed=len(window),
        window_hours=hours,
        window_start=start,
        window_end=p.as_of,
        as_of=p.as_of,
    )


def ranked(groups: dict[Any, list[Row]], threshold: int) -> list[tuple[Any, list[Row]]]:
    kept = [(k, rs) for k, rs in groups.items() if len(rs) >= threshold]
    return sorted(kept, key=lambda item: (-len(item[1]), item[0]))


def expected_recurring(p: Pipeline, tenant: str, days: int, threshold: int, limit: int) -> Any:
    start = midnight(p.as_of, days - 1)
    window = p.of(tenant, start)
    by_group: dict[tuple[str, str], list[Row]] = defaultdict(list)
    by_print: dict[str, list[Row]] = defaultdict(list)
    for r in window:
        by_group[r.category, r.method].append(r)
        for fingerprint in r.fingerprints:
            by_print[fingerprint].append(r)
    groups, prints = ranked(by_group, threshold), ranked(by_print, threshold)
    return rm.Recurring(
        groups=[
            rm.RecurrenceGroup(
                category=category,
                resolution_method=method,
                total_occurrences=len(rs),
                distinct_days=len({r.day for r in rs}),
                occurrences_per_day=float(half_up(Decimal(len(rs)) / len({r.day for r in rs}), 2)),
                first_occurrence=min(r.started_at for r in rs),
                last_occurrence=max(r.started_at for r in rs),
                recent_incident_ids=newest(rs, 5),
            )
            for (category, method), rs in groups[:limit]
        ],
        fingerprints=[
            rm.FingerprintRecurrence(
                fingerprint=fingerprint,
                occurrences=len(rs),
                reopens=sum(r.reopen_count for r in rs),
                first_seen=min(r.started_at for r in rs),
                last_seen=max(r.last_event_at for r in rs),
                recent_incident_ids=newest(rs, 5),
            )
            for fingerprint, rs in prints[:limit]
        ],
        baseline_days=days,
        recurrence_threshold=threshold,
        window_start=start,
        total_recurring=sum(len(rs) for _, rs in groups),
        total_groups=len(groups),
        total_fingerprints=len(prints),
        generated_at=p.as_of,
        as_of=p.as_of,
    )


def usd(value: Decimal, places: int = 8) -> str:
    return (
        f"{value.quantize(Decimal(1).scaleb(-places)) if places == 8 else half_up(value, places):f}"
    )


def expected_cost_impact(p: Pipeline, tenant: str, days: int, limit: int) -> ci.CostImpact:
    start = midnight(p.as_of, days - 1)
    groups: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for r in p.of(tenant, start):
        if r.cost_usd > 0:
            groups[r.category, r.method].append(r)
    cost = {k: sum((r.cost_usd for r in rs), Decimal(0)) for k, rs in groups.items()}
    ordered = sorted(groups, key=lambda k: (-cost[k], k))
    return ci.CostImpact(
        summaries=[
            ci.CostImpactGroup(
                category=k[0],
                resolution_method=k[1],
                incident_count=len(groups[k]),
                total_cost_impact=usd(cost[k]),
                avg_cost_impact=usd(cost[k] / len(groups[k])),
            )
            for k in ordered[:limit]
        ],
        total_cost_impact=usd(sum(cost.values(), Decimal(0))),
        total_incidents=sum(len(rs) for rs in groups.values()),
        total_groups=len(groups),
        baseline_days=days,
        window_start=start,
        generated_at=p.as_of,
        as_of=p.as_of,
    )


def buckets(p: Pipeline, tenant: str, days: int, granularity: str) -> dict[date, list[Row]]:
    """Every bucket of the window (empty ones too) with its incidents."""

    def bucket(day: date) -> date:
        if granularity == "week":
            return day - timedelta(days=day.weekday())
        return day.replace(day=1) if granularity == "month" else day

    start = midnight(p.as_of, days - 1)
    result: dict[date, list[Row]] = {}
    day = start.date()
    while day <= p.as_of.date():
        result.setdefault(bucket(day), [])
        day += D
    for r in p.of(tenant, start):
        result[bucket(r.day)].append(r)
    return dict(sorted(result.items()))


def mean_ms(rows: list[Row]) -> int | None:
    micros = [
        (r.resolved_at - r.started_at) // timedelta(microseconds=1) for r in rows if r.resolved
    ]
    return int(half_up(Decimal(sum(micros)) / 1000 / len(micros), 0)) if micros else None


def expected_trend(p: Pipeline, tenant: str, days: int, granularity: str) -> hm.HistoricalTrend:
    points = [
        hm.TrendPoint(
            period=period,
            incident_count=len(rs),
            resolved_count=sum(r.resolved for r in rs),
            avg_resolution_time_ms=mean_ms(rs),
        )
        for period, rs in buckets(p, tenant, days, granularity).items()
    ]
    return hm.HistoricalTrend(
        data_points=points,
        granularity=Granularity(granularity),
        window_days=days,
        window_start=midnight(p.as_of, days - 1),
        total_incidents=len(p.of(tenant, midnight(p.as_of, days - 1))),
        generated_at=p.as_of,
        as_of=p.as_of,
    )


def expected_cost_trend(p: Pipeline, tenant: str, days: int, granularity: str) -> Any:
    def total(rows: list[Row]) -> Decimal:
        return sum((r.cost_usd for r in rows), Decimal(0))

    window = p.of(tenant, midnight(p.as_of, days - 1))
    return hm.HistoricalCostTrend(
        data_points=[
            hm.CostTrendPoint(
                period=period,
                total_cost=usd(total(rs), 2),
                incident_count=len(rs),
                avg_cost_per_incident=usd(total(rs) / len(rs) if rs else Decimal(0), 2),
            )
            for period, rs in buckets(p, tenant, days, granularity).items()
        ],
        granularity=Granularity(granularity),
        window_days=days,
        window_start=midnight(p.as_of, days - 1),
        total_cost=usd(total(window), 2),
        total_incidents=len(window),
        generated_at=p.as_of,
        as_of=p.as_of,
    )


def expected_distribution(p: Pipeline, tenant: str, days: int) -> hm.HistoricalDistribution:
    window = p.of(tenant, midnight(p.as_of, days - 1))

    def entries(dimension: str, value: Callable[[Row], str]) -> list[hm.DistributionEntry]:
        counts: dict[str, int] = defaultdict(int)
        for r in window:
            counts[value(r)] += 1
        return [
            hm.DistributionEntry(
                dimension=dimension,  # type: ignore[arg-type]
                value=v,
                count=n,
                percentage=float(half_up(Decimal(n * 100) / len(window), 2)),
            )
            for v, n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        ]

    return hm.HistoricalDistribution(
        by_category=entries("category", lambda r: r.category),
        by_severity=entries("severity", lambda r: r.severity),
        by_cause_type=entries("cause_type", lambda r: r.cause_type),
        window_days=days,
        window_start=midnight(p.as_of, days - 1),
        total_incidents=len(window),
        generated_at=p.as_of,
        as_of=p.as_of,
    )


def spend_keys(rows: Iterable[Row]) -> dict[tuple[str, str], tuple[int, int, Decimal]]:
    """(dimension, key) -> (incidents, calls, cost), as cost_daily defines them."""
    totals: dict[tuple[str, str], tuple[int, int, Decimal]] = {}

    def add(key: tuple[str, str], calls: int, cost: Decimal) -> None:
        n, c, s = totals.get(key, (0, 0, Decimal(0)))
        totals[key] = (n + 1, c + calls, s + cost)

    for r in rows:
        add(("category", r.category), r.calls_affected, r.cost_usd)
        for dimension in ("model", "agent"):
            for key, entry in (r.breakdown.get(dimension) or {}).items():
                add((dimension, key), int(entry["calls"]), Decimal(str(entry["cost_usd"])))
    return totals


def days_between(start: datetime, end: datetime) -> Decimal:
    """Elapsed days, at least an hour's worth (as the API rates spend)."""
    span = max(end - start, timedelta(hours=1))
    return Decimal(span // timedelta(microseconds=1)) / 86_400_000_000


def cents(value: Decimal) -> int:
    return int(half_up(value * 100, 0))


def expected_summary(p: Pipeline, tenant: str, period: str) -> cm.CostSummary:
    days = {"today": 1, "7d": 7, "30d": 30}[period]
    start = midnight(p.as_of, days - 1)
    mine = [r for r in p.rows if r.tenant_id == tenant and r.started_at <= p.as_of]

    def spend(since: datetime, until: datetime = p.as_of + D) -> Decimal:
        return sum((r.cost_usd for r in mine if since <= r.started_at < until), Decimal(0))

    total = spend(start)
    daily = total / days_between(start, p.as_of)
    baseline = spend(start - 30 * D, start) / 30
    deviation = (daily - baseline) / baseline * 100 if baseline > 0 else None
    month = midnight(p.as_of).replace(day=1)
    month_days = ((month + 32 * D).replace(day=1) - month).days
    return cm.CostSummary(
        period=Period(period),
        period_start=start,
        period_end=p.as_of,
        total_spend_cents=cents(total),
        incident_count=sum(1 for r in mine if r.started_at >= start),
        spend_today_cents=cents(spend(midnight(p.as_of))),
        spend_7d_cents=cents(spend(midnight(p.as_of, 6))),
        spend_mtd_cents=cents(spend(month)),
        projected_month_end_cents=cents(spend(month) / days_between(month, p.as_of) * month_days),
        daily_average_cents=cents(daily),
        baseline_daily_average_cents=cents(baseline),
        deviation_pct=None if deviation is None else float(half_up(deviation, 1)),
        trend=a.trend_of(deviation),
        trend_message=a.trend_message(deviation),
        last_updated=p.as_of,
        as_of=p.as_of,
    )


def expected_explained(p: Pipeline, tenant: str, period: str) -> cm.CostExplained:
    days = {"today": 1, "7d": 7, "30d": 30}[period]
    start = midnight(p.as_of, days - 1)
    mine = [r for r in p.rows if r.tenant_id == tenant and r.started_at <= p.as_of]
    now = spend_keys(r for r in mine if r.started_at >= start)
    before = spend_keys(r for r in mine if start - 30 * D <= r.started_at < start)
    total = sum((s for (dim, _), (_, _, s) in now.items() if dim == "category"), Decimal(0))
    elapsed = days_between(start, p.as_of)
    tops: dict[str, list[KeySpend]] = {}
    for dimension in ("category", "model", "agent"):
        keys = [
            KeySpend(d, k, n, c, s, before.get((d, k), (0, 0, Decimal(0)))[2])
            for (d, k), (n, c, s) in now.items()
            if d == dimension
        ]
        tops[dimension] = sorted(keys, key=lambda x: (-x.cost_usd, x.key))[:10]

    def driver(k: KeySpend) -> cm.CostDriver:
        base = k.baseline_cost_usd / 30
        deviation = (k.cost_usd / elapsed - base) / base * 100 if base > 0 else None
        return cm.CostDriver(
            name=k.key,
            display_name=a.model_display_name(k.key) if k.dimension == "model" else None,
            spend_cents=cents(k.cost_usd),
            request_count=k.calls,
            incident_count=k.incidents,
            pct_of_total=float(half_up(k.cost_usd * 100 / total, 1)) if total else 0.0,
            trend=a.trend_of(deviation),
        )

    drivers = {d: [driver(k) for k in keys] for d, keys in tops.items()}
    firsts = [(d, ds[0]) for d, ds in drivers.items() if ds]
    best = max(firsts, key=lambda f: f[1].pct_of_total, default=None)
    if best is not None:
        best = next(f for f in firsts if f[1].pct_of_total == best[1].pct_of_total)
    return cm.CostExplained(
        period=Period(period),
        period_start=start,
        period_end=p.as_of,
        total_spend_cents=cents(total),
        by_category=drivers["category"],
        by_model=drivers["model"],
        by_agent=drivers["agent"],
        largest_driver_type=best[0] if best else None,  # type: ignore[arg-type]
        largest_driver_name=best[1].name if best else None,
        largest_driver_pct=best[1].pct_of_total if best else 0.0,
        summary=a.spend_summary_text(
            total,
            tops["category"][0] if tops["category"] else None,
            tops["model"][0] if tops["model"] else None,
        ),
        as_of=p.as_of,
    )
