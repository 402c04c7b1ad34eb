"""`/v1/costs` (GET): the spend lost in a period, its trend against the 30 days before it, and
what drives it (`domain.spend`)."""

from __future__ import annotations

from decimal import Decimal

from fastapi import APIRouter

from api.auth import AsOf, Tenant
from api.costs.bodies import CostDriver, CostExplained, CostSummary
from api.costs.queries import daily_spend, spend_by_key
from api.deps import Conn
from api.errors import ERROR_RESPONSES
from api.params import PeriodParam
from domain.analytics import COST_DIMENSIONS
from domain.rounding import cents, percentage, round_half_up
from domain.spend import (
    KeySpend,
    Period,
    baseline_start,
    elapsed_days,
    first_day_summarized,
    key_trend,
    largest_driver,
    model_display_name,
    period_start,
    spend_summary_text,
    summarize_spend,
    top_spenders,
    trend_message,
    trend_of,
)

router = APIRouter(prefix="/v1/costs", tags=["analytics"], responses=ERROR_RESPONSES)


@router.get("/summary", response_model=CostSummary, summary="Spend lost and its trend")
async def get_cost_summary(
    tenant: Tenant, conn: Conn, as_of: AsOf, period: PeriodParam = Period.SEVEN_DAYS
) -> CostSummary:
    """The period's spend against the daily average of the 30 days before it."""
    days = await daily_spend(conn, tenant, first_day_summarized(period, as_of), as_of)
    spend = summarize_spend(days, period, as_of)
    deviation = spend.deviation
    return CostSummary(
        period=period,
        period_start=spend.start,
        period_end=as_of,
        total_spend_cents=cents(spend.total),
        incident_count=spend.incidents,
        spend_today_cents=cents(spend.today),
        spend_7d_cents=cents(spend.seven_days),
        spend_mtd_cents=cents(spend.month_to_date),
        projected_month_end_cents=cents(spend.projected_month_end),
        daily_average_cents=cents(spend.daily_average),
        baseline_daily_average_cents=cents(spend.baseline_daily_average),
        deviation_pct=None if deviation is None else float(round_half_up(deviation, 1)),
        trend=trend_of(deviation),
        trend_message=trend_message(deviation),
        last_updated=as_of,
        as_of=as_of,
    )


@router.get("/explained", response_model=CostExplained, summary="What drives spend")
async def get_cost_explained(
    tenant: Tenant, conn: Conn, as_of: AsOf, period: PeriodParam = Period.SEVEN_DAYS
) -> CostExplained:
    """Top 10 categories, models and agents by spend, each with its own trend."""
    start = period_start(period, as_of)
    keys = await spend_by_key(
        conn, tenant, baseline_start(period, as_of).date(), start.date(), as_of
    )
    total = sum((k.cost_usd for k in keys if k.dimension == "category"), Decimal(0))
    elapsed = elapsed_days(start, as_of)
    tops = {name: top_spenders(keys, name) for name in COST_DIMENSIONS}

    def driver(key: KeySpend) -> CostDriver:
        return CostDriver(
            name=key.key,
            display_name=model_display_name(key.key) if key.dimension == "model" else None,
            spend_cents=cents(key.cost_usd),
            request_count=key.calls,
            incident_count=key.incidents,
            pct_of_total=percentage(key.cost_usd, total, 1),
            trend=key_trend(key, elapsed),
        )

    drivers = {name: [driver(key) for key in rows] for name, rows in tops.items()}
    largest = largest_driver(list(drivers.items()))
    return CostExplained(
        period=period,
        period_start=start,
        period_end=as_of,
        total_spend_cents=cents(total),
        by_category=drivers["category"],
        by_model=drivers["model"],
        by_agent=drivers["agent"],
        largest_driver_type=largest[0] if largest else None,
        largest_driver_name=largest[1].name if largest else None,
        largest_driver_pct=largest[1].pct_of_total if largest else 0.0,
        summary=spend_summary_text(total, _first(tops["category"]), _first(tops["model"])),
        as_of=as_of,
    )


def _first(rows: list[KeySpend]) -> KeySpend | None:
    return rows[0] if rows else None
