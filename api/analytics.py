"""The analytics endpoints (GET only): patterns, recurrence, cost impact, history, cost guard.

Every window ends at `as_of`. Day-based windows (`baseline_days`, `window_days`, `period`) are
UTC calendar days: the last N days, the current one up to `as_of`. Incidents count by their
`started_at`. The pure helpers below (buckets, rounding, trend) are unit-tested directly.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Query
from sqlalchemy.ext.asyncio import AsyncConnection

from api import analytics_queries as q
from api.analytics_models import (
    CostDriver,
    CostExplained,
    CostImpact,
    CostImpactGroup,
    CostSummary,
    CostTrendPoint,
    DistributionEntry,
    DriverType,
    FingerprintRecurrence,
    Granularity,
    HistoricalCostTrend,
    HistoricalDistribution,
    HistoricalTrend,
    Pattern,
    Patterns,
    Period,
    RecurrenceGroup,
    Recurring,
    Trend,
    TrendPoint,
)
from api.auth import Tenant
from api.deps import as_of, connection
from api.errors import ERROR_RESPONSES
from domain.patterns import detect_patterns

router = APIRouter(tags=["analytics"], responses=ERROR_RESPONSES)
Conn = Annotated[AsyncConnection, Depends(connection)]

WindowHours = Annotated[
    int, Query(ge=1, le=168, description="Hours before as_of (1-168).", examples=[24])
]
PatternLimit = Annotated[int, Query(ge=1, le=50, description="Patterns per type (1-50).")]
BaselineDays = Annotated[
    int, Query(ge=1, le=90, description="UTC days up to as_of (1-90).", examples=[30])
]
Threshold = Annotated[
    int, Query(ge=2, le=100, description="Least occurrences of a recurring group (2-100).")
]
GroupLimit = Annotated[int, Query(ge=1, le=50, description="Groups returned (1-50).")]
WindowDays = Annotated[
    int, Query(ge=7, le=365, description="UTC days up to as_of (7-365).", examples=[90])
]
GranularityParam = Annotated[
    Granularity, Query(description="Bucket of started_at (UTC); weeks start on Monday.")
]
PeriodParam = Annotated[
    Period, Query(description="today, or the last 7 or 30 UTC days, up to as_of.")
]

BASELINE_DAYS = 30
"""The cost trend compares against the daily average of this many days before the period."""
TOP_DRIVERS = 10
MIN_ELAPSED = timedelta(hours=1)
PERIOD_DAYS = {Period.TODAY: 1, Period.SEVEN_DAYS: 7, Period.THIRTY_DAYS: 30}

# -- pure helpers -------------------------------------------------------------------------------

T = TypeVar("T")


def bucket_of(day: date, granularity: Granularity) -> date:
    """The start of the bucket holding `day`: itself, its week's Monday, or its month's 1st."""
    if granularity is Granularity.WEEK:
        return day - timedelta(days=day.weekday())
    if granularity is Granularity.MONTH:
        return day.replace(day=1)
    return day


def bucket_starts(first: date, last: date, granularity: Granularity) -> list[date]:
    """Every bucket start from the bucket of `first` to the bucket of `last`, ascending."""
    starts, at, end = [], bucket_of(first, granularity), bucket_of(last, granularity)
    while at <= end:
        starts.append(at)
        at = _next_bucket(at, granularity)
    return starts


def _next_bucket(start: date, granularity: Granularity) -> date:
    if granularity is Granularity.MONTH:
        return (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    return start + timedelta(days=7 if granularity is Granularity.WEEK else 1)


def fold_days(
    days: Mapping[date, T],
    first: date,
    last: date,
    granularity: Granularity,
    zero: T,
    add: Callable[[T, T], T],
) -> list[tuple[date, T]]:
    """Per-day values summed into every bucket of [first, last]; empty buckets hold `zero`."""
    totals = dict.fromkeys(bucket_starts(first, last, granularity), zero)
    for day, value in days.items():
        if first <= day <= last:
            bucket = bucket_of(day, granularity)
            totals[bucket] = add(totals[bucket], value)
    return sorted(totals.items())


def round_half_up(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP)


def percentage(part: Decimal | int, whole: Decimal | int, places: int) -> float:
    """part / whole * 100 rounded half up to `places`; 0 when whole is 0."""
    if not whole:
        return 0.0
    return float(round_half_up(Decimal(part) * 100 / Decimal(whole), places))


def money(value: Decimal, places: int = 8) -> str:
    """USD as a decimal string: 8 places (stored precision, half-even) or fewer (half up)."""
    rounding = ROUND_HALF_EVEN if places == 8 else ROUND_HALF_UP
    return f"{value.quantize(Decimal(1).scaleb(-places), rounding):f}"


def cents(usd: Decimal) -> int:
    return int(round_half_up(usd * 100, 0))


def mean_ms(seconds: Decimal, count: int) -> int | None:
    """Mean duration in whole milliseconds (half up); None without durations."""
    return int(round_half_up(seconds * 1000 / count, 0)) if count else None


def elapsed_days(start: datetime, end: datetime) -> Decimal:
    """Days from start to end, at least one hour's worth (a rate over minutes means nothing)."""
    span = max(end - start, MIN_ELAPSED)
    return Decimal(span // timedelta(microseconds=1)) / Decimal(86_400_000_000)


def deviation_pct(daily: Decimal, baseline_daily: Decimal) -> Decimal | None:
    """How far `daily` is above (or below) the baseline, in percent; None without baseline."""
    if baseline_daily <= 0:
        return None
    return (daily - baseline_daily) / baseline_daily * 100


def trend_of(deviation: Decimal | None) -> Trend:
    """spike above +200%, rising above +50%, else normal."""
    if deviation is not None and deviation > 200:
        return "spike"
    if deviation is not None and deviation > 50:
        return "rising"
    return "normal"


def trend_message(deviation: Decimal | None) -> str:
    """The seed's wording, N rendered with 0 decimals."""
    if deviation is None:
        return "Spending is within normal range"
    n = round_half_up(abs(deviation), 0)
    if deviation > 200:
        return f"Spending is {n}% above your usual level"
    if deviation > 50:
        return f"Spending has increased {n}% from baseline"
    if deviation < -30:
        return f"Spending is {n}% below your usual level"
    return "Spending is within normal range"


def model_display_name(key: str) -> str:
    """`anthropic/claude-3-haiku` -> `Claude 3 Haiku` (the seed's rule, provider dropped)."""
    name = key.rsplit("/", 1)[-1].replace("claude-", "Claude ")
    return name.replace("-", " ").title()


def period_start(period: Period, at: datetime) -> datetime:
    return q.days_before(at, PERIOD_DAYS[period] - 1)


def spend_summary_text(
    total: Decimal, top_category: q.KeySpend | None, top_model: q.KeySpend | None
) -> str:
    """The seed's summary rules, with category standing in for its `feature`."""
    if total == 0:
        return "No spending recorded for this period"
    if top_model is not None:
        pct, name = percentage(top_model.cost_usd, total, 0), model_display_name(top_model.key)
        if top_category is not None:
            return f"{pct:.0f}% of your spend is from {name} usage in {top_category.key}"
        return f"Most of your spend ({pct:.0f}%) is from {name}"
    if top_category is not None:
        pct = percentage(top_category.cost_usd, total, 0)
        return f"Most of your spend ({pct:.0f}%) is from {top_category.key}"
    return f"Your total spend for this period is ${round_half_up(total, 2)}"


def top_spenders(keys: Iterable[q.KeySpend], dimension: str) -> list[q.KeySpend]:
    """The dimension's 10 costliest keys (ties by name)."""
    rows = [key for key in keys if key.dimension == dimension]
    return sorted(rows, key=lambda key: (-key.cost_usd, key.key))[:TOP_DRIVERS]


def largest_driver(
    tops: Sequence[tuple[DriverType, list[CostDriver]]],
) -> tuple[DriverType, CostDriver] | None:
    """The top driver with the largest share; ties go to the first dimension listed."""
    best: tuple[DriverType, CostDriver] | None = None
    for dimension, drivers in tops:
        if drivers and (best is None or drivers[0].pct_of_total > best[1].pct_of_total):
            best = (dimension, drivers[0])
    return best


async def _as_of(conn: AsyncConnection) -> datetime:
    return (await as_of(conn)).astimezone(UTC)


# -- routes -------------------------------------------------------------------------------------


@router.get("/v1/incidents/patterns", response_model=Patterns, summary="Patterns forming now")
async def get_patterns(
    tenant: Tenant, conn: Conn, window_hours: WindowHours = 24, limit: PatternLimit = 10
) -> Patterns:
    """Category clusters, severity spikes and cascades among incidents started in the window."""
    end = await _as_of(conn)
    start = end - timedelta(hours=window_hours)
    members = await q.pattern_candidates(conn, tenant, start, end)
    found = detect_patterns(members, start, end, limit)
    return Patterns(
        patterns=[Pattern.model_validate(p, from_attributes=True) for p in found],
        incidents_analyzed=await q.count_started(conn, tenant, start, end),
        window_hours=window_hours,
        window_start=start,
        window_end=end,
        as_of=end,
    )


@router.get("/v1/incidents/recurring", response_model=Recurring, summary="What keeps recurring")
async def get_recurring(
    tenant: Tenant,
    conn: Conn,
    baseline_days: BaselineDays = 30,
    recurrence_threshold: Threshold = 3,
    limit: GroupLimit = 20,
) -> Recurring:
    """(category, resolution method) groups and fingerprints with >= threshold incidents."""
    end = await _as_of(conn)
    start = q.days_before(end, baseline_days - 1)
    ranked = await q.recurrence_groups(conn, tenant, start, end, recurrence_threshold, limit)
    keys = [(g.category, g.resolution_method) for g in ranked.rows]
    details = await q.group_occurrences(conn, tenant, start, end, keys)
    prints = await q.recurring_fingerprints(conn, tenant, start, end, recurrence_threshold, limit)
    return Recurring(
        groups=[_group(g, details[(g.category, g.resolution_method)]) for g in ranked.rows],
        fingerprints=[_fingerprint(row) for row in prints.rows],
        baseline_days=baseline_days,
        recurrence_threshold=recurrence_threshold,
        window_start=start,
        total_recurring=ranked.total_count,
        total_groups=ranked.total_groups,
        total_fingerprints=prints.total_groups,
        generated_at=end,
        as_of=end,
    )


def _group(group: q.RecurrenceGroupRow, seen: q.Occurrences) -> RecurrenceGroup:
    per_day = round_half_up(Decimal(group.total) / max(group.distinct_days, 1), 2)
    return RecurrenceGroup(
        category=group.category,
        resolution_method=group.resolution_method,
        total_occurrences=group.total,
        distinct_days=group.distinct_days,
        occurrences_per_day=float(per_day),
        first_occurrence=seen.first,
        last_occurrence=seen.last,
        recent_incident_ids=seen.recent_ids,
    )


def _fingerprint(row: q.FingerprintRow) -> FingerprintRecurrence:
    return FingerprintRecurrence(
        fingerprint=row.fingerprint,
        occurrences=row.occurrences,
        reopens=row.reopens,
        first_seen=row.first_seen,
        last_seen=row.last_seen,
        recent_incident_ids=row.recent_ids,
    )


@router.get("/v1/incidents/cost-impact", response_model=CostImpact, summary="What failures cost")
async def get_cost_impact(
    tenant: Tenant, conn: Conn, baseline_days: BaselineDays = 30, limit: GroupLimit = 20
) -> CostImpact:
    """Incidents with a cost by (category, resolution method); totals cover every group."""
    end = await _as_of(conn)
    start = q.days_before(end, baseline_days - 1)
    ranked = await q.cost_groups(conn, tenant, start, end, limit)
    return CostImpact(
        summaries=[
            CostImpactGroup(
                category=row.category,
                resolution_method=row.resolution_method,
                incident_count=row.incident_count,
                total_cost_impact=money(row.total_cost),
                avg_cost_impact=money(row.total_cost / row.incident_count),
            )
            for row in ranked.rows
        ],
        total_cost_impact=money(ranked.total_amount),
        total_incidents=ranked.total_count,
        total_groups=ranked.total_groups,
        baseline_days=baseline_days,
        window_start=start,
        generated_at=end,
        as_of=end,
    )


async def _rollup_buckets(
    conn: AsyncConnection, tenant: str, window_days: int, granularity: Granularity
) -> tuple[datetime, datetime, list[tuple[date, q.DayRollup]]]:
    end = await _as_of(conn)
    start = q.days_before(end, window_days - 1)
    days = await q.daily_rollups(conn, tenant, start, end)
    zero = q.DayRollup()
    return (
        start,
        end,
        fold_days(days, start.date(), end.date(), granularity, zero, q.DayRollup.__add__),
    )


@router.get(
    "/v1/incidents/historical/trend", response_model=HistoricalTrend, summary="Incidents per period"
)
async def get_historical_trend(
    tenant: Tenant,
    conn: Conn,
    window_days: WindowDays = 90,
    granularity: GranularityParam = Granularity.WEEK,
) -> HistoricalTrend:
    """Incidents started, resolved and mean time to resolution per bucket, empty ones as 0."""
    start, end, buckets = await _rollup_buckets(conn, tenant, window_days, granularity)
    points = [
        TrendPoint(
            period=period,
            incident_count=r.started,
            resolved_count=r.resolved,
            avg_resolution_time_ms=mean_ms(r.resolution_seconds, r.resolution_count),
        )
        for period, r in buckets
    ]
    return HistoricalTrend(
        data_points=points,
        granularity=granularity,
        window_days=window_days,
        window_start=start,
        total_incidents=sum(p.incident_count for p in points),
        generated_at=end,
        as_of=end,
    )


@router.get(
    "/v1/incidents/historical/cost-trend",
    response_model=HistoricalCostTrend,
    summary="Cost per period",
)
async def get_historical_cost_trend(
    tenant: Tenant,
    conn: Conn,
    window_days: WindowDays = 90,
    granularity: GranularityParam = Granularity.WEEK,
) -> HistoricalCostTrend:
    """Cost and incidents per bucket (USD, 2 dp), empty buckets as 0."""
    start, end, buckets = await _rollup_buckets(conn, tenant, window_days, granularity)
    points = [
        CostTrendPoint(
            period=period,
            total_cost=money(r.cost_usd, 2),
            incident_count=r.started,
            avg_cost_per_incident=money(r.cost_usd / r.started if r.started else Decimal(0), 2),
        )
        for period, r in buckets
    ]
    return HistoricalCostTrend(
        data_points=points,
        granularity=granularity,
        window_days=window_days,
        window_start=start,
        total_cost=money(sum((r.cost_usd for _, r in buckets), Decimal(0)), 2),
        total_incidents=sum(r.started for _, r in buckets),
        generated_at=end,
        as_of=end,
    )


@router.get(
    "/v1/incidents/historical/distribution",
    response_model=HistoricalDistribution,
    summary="Incidents by category, severity and cause",
)
async def get_historical_distribution(
    tenant: Tenant, conn: Conn, window_days: WindowDays = 90
) -> HistoricalDistribution:
    """Counts and percentages (2 dp) of the incidents started in the window."""
    end = await _as_of(conn)
    start = q.days_before(end, window_days - 1)
    counts = await q.class_counts(conn, tenant, start, end)
    total = sum(c.count for c in counts)
    return HistoricalDistribution(
        by_category=_distribution("category", ((c.category, c.count) for c in counts), total),
        by_severity=_distribution("severity", ((c.severity, c.count) for c in counts), total),
        by_cause_type=_distribution("cause_type", ((c.cause_type, c.count) for c in counts), total),
        window_days=window_days,
        window_start=start,
        total_incidents=total,
        generated_at=end,
        as_of=end,
    )


def _distribution(
    dimension: str, values: Iterable[tuple[str, int]], total: int
) -> list[DistributionEntry]:
    counts: dict[str, int] = {}
    for value, count in values:
        counts[value] = counts.get(value, 0) + count
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [
        DistributionEntry.model_validate(
            {"dimension": dimension, "value": v, "count": n, "percentage": percentage(n, total, 2)}
        )
        for v, n in ordered
    ]


@router.get("/v1/costs/summary", response_model=CostSummary, summary="Spend lost and its trend")
async def get_cost_summary(
    tenant: Tenant, conn: Conn, period: PeriodParam = Period.SEVEN_DAYS
) -> CostSummary:
    """The period's spend against the daily average of the 30 days before it."""
    end = await _as_of(conn)
    start = period_start(period, end)
    baseline_start = start - timedelta(days=BASELINE_DAYS)
    month_start = end.date().replace(day=1)
    days = await q.daily_spend(conn, tenant, min(baseline_start.date(), month_start), end)

    def spend(since: date, until: date = date.max) -> Decimal:
        return sum((d.cost_usd for d in days if since <= d.day < until), Decimal(0))

    total = spend(start.date())
    daily = total / elapsed_days(start, end)
    baseline = spend(baseline_start.date(), start.date()) / BASELINE_DAYS
    deviation = deviation_pct(daily, baseline)
    mtd = spend(month_start)
    month_days = calendar.monthrange(end.year, end.month)[1]
    return CostSummary(
        period=period,
        period_start=start,
        period_end=end,
        total_spend_cents=cents(total),
        incident_count=sum(d.incidents for d in days if d.day >= start.date()),
        spend_today_cents=cents(spend(end.date())),
        spend_7d_cents=cents(spend(period_start(Period.SEVEN_DAYS, end).date())),
        spend_mtd_cents=cents(mtd),
        projected_month_end_cents=cents(
            mtd / elapsed_days(q.day_start(month_start), end) * month_days
        ),
        daily_average_cents=cents(daily),
        baseline_daily_average_cents=cents(baseline),
        deviation_pct=None if deviation is None else float(round_half_up(deviation, 1)),
        trend=trend_of(deviation),
        trend_message=trend_message(deviation),
        last_updated=end,
        as_of=end,
    )


@router.get("/v1/costs/explained", response_model=CostExplained, summary="What drives spend")
async def get_cost_explained(
    tenant: Tenant, conn: Conn, period: PeriodParam = Period.SEVEN_DAYS
) -> CostExplained:
    """Top 10 categories, models and agents by spend, each with its own trend."""
    end = await _as_of(conn)
    start = period_start(period, end)
    baseline_start = start - timedelta(days=BASELINE_DAYS)
    keys = await q.spend_by_key(conn, tenant, baseline_start.date(), start.date(), end)
    total = sum((k.cost_usd for k in keys if k.dimension == "category"), Decimal(0))
    elapsed = elapsed_days(start, end)
    names: tuple[DriverType, ...] = ("category", "model", "agent")
    tops = {name: top_spenders(keys, name) for name in names}

    def driver(key: q.KeySpend) -> CostDriver:
        deviation = deviation_pct(key.cost_usd / elapsed, key.baseline_cost_usd / BASELINE_DAYS)
        return CostDriver(
            name=key.key,
            display_name=model_display_name(key.key) if key.dimension == "model" else None,
            spend_cents=cents(key.cost_usd),
            request_count=key.calls,
            incident_count=key.incidents,
            pct_of_total=percentage(key.cost_usd, total, 1),
            trend=trend_of(deviation),
        )

    drivers = {name: [driver(key) for key in rows] for name, rows in tops.items()}
    largest = largest_driver(list(drivers.items()))
    return CostExplained(
        period=period,
        period_start=start,
        period_end=end,
        total_spend_cents=cents(total),
        by_category=drivers["category"],
        by_model=drivers["model"],
        by_agent=drivers["agent"],
        largest_driver_type=largest[0] if largest else None,
        largest_driver_name=largest[1].name if largest else None,
        largest_driver_pct=largest[1].pct_of_total if largest else 0.0,
        summary=spend_summary_text(total, _first(tops["category"]), _first(tops["model"])),
        as_of=end,
    )


def _first(rows: list[q.KeySpend]) -> q.KeySpend | None:
    return rows[0] if rows else None
