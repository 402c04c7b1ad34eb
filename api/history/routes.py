"""`/v1/incidents/historical` (GET): incidents and cost per UTC bucket, and the distribution of
the incidents started in a window of `window_days` UTC days ending at `as_of`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends

from api.auth import AsOf, Tenant
from api.deps import Conn
from api.errors import ERROR_RESPONSES
from api.history.bodies import (
    CostTrendPoint,
    DistributionEntry,
    HistoricalCostTrend,
    HistoricalDistribution,
    HistoricalTrend,
    TrendPoint,
)
from api.history.queries import DayRollup, class_counts, daily_rollups
from api.params import GranularityParam, HistoryWindowDays
from domain.buckets import Granularity, days_before, fold_days
from domain.rounding import mean_ms, money, percentage

router = APIRouter(prefix="/v1/incidents/historical", tags=["analytics"], responses=ERROR_RESPONSES)


@dataclass(frozen=True, slots=True)
class RollupWindow:
    """A request's window of UTC days and its daily rollups folded into buckets."""

    window_days: int
    granularity: Granularity
    start: datetime
    end: datetime
    buckets: list[tuple[date, DayRollup]]


async def rollup_window(
    tenant: Tenant,
    conn: Conn,
    as_of: AsOf,
    window_days: HistoryWindowDays = 90,
    granularity: GranularityParam = Granularity.WEEK,
) -> RollupWindow:
    """The query parameters both trend endpoints take, and the buckets they read."""
    start = days_before(as_of, window_days - 1)
    days = await daily_rollups(conn, tenant, start, as_of)
    zero = DayRollup()
    buckets = fold_days(days, start.date(), as_of.date(), granularity, zero, DayRollup.__add__)
    return RollupWindow(window_days, granularity, start, as_of, buckets)


Buckets = Annotated[RollupWindow, Depends(rollup_window)]


@router.get("/trend", response_model=HistoricalTrend, summary="Incidents per period")
async def get_historical_trend(window: Buckets) -> HistoricalTrend:
    """Incidents started, resolved and mean time to resolution per bucket, empty ones as 0."""
    points = [
        TrendPoint(
            period=period,
            incident_count=r.started,
            resolved_count=r.resolved,
            avg_resolution_time_ms=mean_ms(r.resolution_seconds, r.resolution_count),
        )
        for period, r in window.buckets
    ]
    return HistoricalTrend(
        data_points=points,
        granularity=window.granularity,
        window_days=window.window_days,
        window_start=window.start,
        total_incidents=sum(p.incident_count for p in points),
        generated_at=window.end,
        as_of=window.end,
    )


@router.get(
    "/cost-trend",
    response_model=HistoricalCostTrend,
    summary="Cost per period",
)
async def get_historical_cost_trend(window: Buckets) -> HistoricalCostTrend:
    """Cost and incidents per bucket (USD, 2 dp), empty buckets as 0."""
    buckets = window.buckets
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
        granularity=window.granularity,
        window_days=window.window_days,
        window_start=window.start,
        total_cost=money(sum((r.cost_usd for _, r in buckets), Decimal(0)), 2),
        total_incidents=sum(r.started for _, r in buckets),
        generated_at=window.end,
        as_of=window.end,
    )


@router.get(
    "/distribution",
    response_model=HistoricalDistribution,
    summary="Incidents by category, severity and cause",
)
async def get_historical_distribution(
    tenant: Tenant, conn: Conn, as_of: AsOf, window_days: HistoryWindowDays = 90
) -> HistoricalDistribution:
    """Counts and percentages (2 dp) of the incidents started in the window."""
    start = days_before(as_of, window_days - 1)
    counts = await class_counts(conn, tenant, start, as_of)
    total = sum(c.count for c in counts)
    return HistoricalDistribution(
        by_category=_distribution("category", ((c.category, c.count) for c in counts), total),
        by_severity=_distribution("severity", ((c.severity, c.count) for c in counts), total),
        by_cause_type=_distribution("cause_type", ((c.cause_type, c.count) for c in counts), total),
        window_days=window_days,
        window_start=start,
        total_incidents=total,
        generated_at=as_of,
        as_of=as_of,
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
