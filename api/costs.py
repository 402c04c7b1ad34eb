"""The cost guard endpoints (GET only): the spend lost in a period, its trend against the 30 days
before it, and what drives it.
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Query

from api.analytics_queries import day_start
from api.analytics_rules import (
    cents,
    deviation_pct,
    elapsed_days,
    largest_driver,
    model_display_name,
    percentage,
    period_start,
    round_half_up,
    spend_summary_text,
    top_spenders,
    trend_message,
    trend_of,
)
from api.auth import Tenant
from api.cost_models import CostDriver, CostExplained, CostSummary, DriverType, Period
from api.cost_queries import KeySpend, daily_spend, spend_by_key
from api.deps import Conn, utc_as_of
from api.errors import ERROR_RESPONSES

router = APIRouter(tags=["analytics"], responses=ERROR_RESPONSES)

PeriodParam = Annotated[
    Period, Query(description="today, or the last 7 or 30 UTC days, up to as_of.")
]


BASELINE_DAYS = 30
"""The cost trend compares against the daily average of this many days before the period."""


@router.get("/v1/costs/summary", response_model=CostSummary, summary="Spend lost and its trend")
async def get_cost_summary(
    tenant: Tenant, conn: Conn, period: PeriodParam = Period.SEVEN_DAYS
) -> CostSummary:
    """The period's spend against the daily average of the 30 days before it."""
    end = await utc_as_of(conn)
    start = period_start(period, end)
    baseline_start = start - timedelta(days=BASELINE_DAYS)
    month_start = end.date().replace(day=1)
    days = await daily_spend(conn, tenant, min(baseline_start.date(), month_start), end)

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
            mtd / elapsed_days(day_start(month_start), end) * month_days
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
    end = await utc_as_of(conn)
    start = period_start(period, end)
    baseline_start = start - timedelta(days=BASELINE_DAYS)
    keys = await spend_by_key(conn, tenant, baseline_start.date(), start.date(), end)
    total = sum((k.cost_usd for k in keys if k.dimension == "category"), Decimal(0))
    elapsed = elapsed_days(start, end)
    names: tuple[DriverType, ...] = ("category", "model", "agent")
    tops = {name: top_spenders(keys, name) for name in names}

    def driver(key: KeySpend) -> CostDriver:
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


def _first(rows: list[KeySpend]) -> KeySpend | None:
    return rows[0] if rows else None
