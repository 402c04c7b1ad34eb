"""`/v1/costs` (GET): the spend lost in a period, its trend against the 30 days before it, and
what drives it (`domain.spend`); the incidents that cost money (`domain.cost_incidents`)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Query

from api.auth import AsOf, Tenant
from api.costs.bodies import (
    CostDriver,
    CostExplained,
    CostIncident,
    CostIncidents,
    CostSummary,
)
from api.costs.queries import cost_incidents, daily_spend, spend_by_key
from api.deps import Conn
from api.errors import ERROR_RESPONSES
from api.incidents.listing import PagedAsOf, page_of
from api.incidents.queries import Row
from api.params import Limit, Offset, PeriodParam
from domain.analytics import COST_DIMENSIONS
from domain.cost_incidents import (
    TREND_PERIOD,
    category_trends,
    cost_status,
    recommendation,
    title,
    urgency,
)
from domain.descriptions import describe_row
from domain.rounding import cents, money, percentage, round_half_up
from domain.spend import (
    KeySpend,
    Period,
    Trend,
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


IncludeResolved = Annotated[
    bool, Query(description="Also the resolved incidents (status resolved); default: open ones.")
]


@router.get("/incidents", response_model=CostIncidents, summary="Incidents that cost money")
async def get_cost_incidents(
    tenant: Tenant,
    conn: Conn,
    as_of: PagedAsOf,
    include_resolved: IncludeResolved = False,
    limit: Limit = 20,
    offset: Offset = 0,
) -> CostIncidents:
    """The tenant's incidents with a cost, costliest first, each with a status, urgency, title
    and recommendation in calm words and its category's 7-day trend. Paged like `/v1/incidents`:
    pass the `as_of` of the first page back to page over the same set."""
    found = await cost_incidents(conn, tenant, include_resolved, as_of, limit, offset)
    trends = await _trends(conn, tenant, {row["category"] for row in found.rows}, as_of)
    page = page_of(found.total, offset, len(found.rows))
    return CostIncidents(
        incidents=[_cost_incident(row, trends[row["category"]]) for row in found.rows],
        total=page.total,
        total_cost_cents=cents(found.total_cost),
        has_more=page.has_more,
        next_offset=page.next_offset,
        limit=limit,
        offset=offset,
        include_resolved=include_resolved,
        as_of=as_of,
    )


async def _trends(
    conn: Conn, tenant: str, categories: set[str], as_of: datetime
) -> dict[str, Trend]:
    """The trends of these categories over `TREND_PERIOD` up to as_of."""
    if not categories:
        return {}
    start = period_start(TREND_PERIOD, as_of)
    baseline = baseline_start(TREND_PERIOD, as_of).date()
    keys = await spend_by_key(conn, tenant, baseline, start.date(), as_of, "category")
    return category_trends(categories, keys, elapsed_days(start, as_of))


def _cost_incident(row: Row, trend: Trend) -> CostIncident:
    status = cost_status(row["lifecycle_state"], row["trigger_type"])
    return CostIncident(
        incident_id=row["incident_id"],
        title=title(row["trigger_type"]),
        status=status,
        urgency=urgency(row["severity"]),
        trigger_type=row["trigger_type"],
        category=row["category"],
        cost_usd=money(row["cost_usd"]),
        cost_cents=cents(row["cost_usd"]),
        calls_affected=row["calls_affected"],
        trend=trend,
        recommendation=recommendation(status, row["trigger_type"]),
        cause_explanation=describe_row(row),
        detected_at=row["started_at"],
        last_event_at=row["last_event_at"],
        resolved_at=row["resolved_at"],
    )
