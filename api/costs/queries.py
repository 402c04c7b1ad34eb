"""Selects behind `/v1/costs`: spend per UTC day and per (dimension, key), from `cost_daily`
before as_of's day and the `incidents` of that day (built once, see `api.windows`); and the
incidents that cost money, read like a listing of incidents (`api.incidents.queries`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Date,
    Select,
    Subquery,
    bindparam,
    func,
    literal,
    select,
    true,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from api.incidents.listing import SortField, SortOrder
from api.incidents.queries import Row, created_since, sort_keys
from api.windows import AS_OF, START_DAY, TAIL, TAIL_DAY, TENANT, started_between, window
from domain.analytics import COST_DIMENSIONS, CostDimension
from domain.buckets import day_start, utc_midnight
from domain.spend import DaySpend, KeySpend
from storage import rules
from storage.analytics_schema import cost_daily
from storage.rules import OPEN_STATES
from storage.schema import incidents

_COLUMNS = ("day", "dimension", "key", "incidents", "calls", "cost_usd")


PERIOD_DAY = bindparam("period_day", type_=Date())
"""The first day of the period (the days before it are its baseline)."""


@functools.cache
def _cost_rows(dimension: CostDimension | None = None) -> Subquery:
    """cost_daily rows from `start_day` to the day before as_of's, then that day's incidents; of
    `dimension` only, if given (read from `ix_cost_daily_tenant_day_spend` alone either way)."""
    c = cost_daily
    from_table = select(*(c.c[name] for name in _COLUMNS)).where(
        c.c.tenant_id == TENANT, c.c.day >= START_DAY, c.c.day < TAIL_DAY
    )
    tails = rules.cost_rows(started_between(TENANT, TAIL, AS_OF))
    if dimension is not None:
        # A constant in the table's branch and only the dimension's own tail: PostgreSQL pushed a
        # filter on the union's `dimension` into none of its branches.
        from_table = from_table.where(c.c.dimension == literal(dimension))
        tails = [tails[COST_DIMENSIONS.index(dimension)]]
    subqueries = [tail.subquery() for tail in tails]
    from_incidents = [select(*(sub.c[name] for name in _COLUMNS)) for sub in subqueries]
    return union_all(from_table, *from_incidents).subquery()


def _parameters(tenant: str, since: date, as_of: datetime) -> dict[str, Any]:
    return window(tenant, day_start(since), as_of, tail=utc_midnight(as_of))


@functools.cache
def _daily_spend() -> Select[Any]:
    rows = _cost_rows("category")
    return (
        select(rows.c.day, func.sum(rows.c.incidents), func.sum(rows.c.cost_usd))
        .group_by(rows.c.day)
        .order_by(rows.c.day)
    )


async def daily_spend(
    conn: AsyncConnection, tenant: str, since: date, as_of: datetime
) -> list[DaySpend]:
    """Per UTC start day from `since` to as_of: incidents and their cost (dimension category)."""
    result = await conn.execute(_daily_spend(), _parameters(tenant, since, as_of))
    return [DaySpend(d, int(n), Decimal(s)) for d, n, s in result]


@functools.cache
def _spend_by_key(dimension: CostDimension | None) -> Select[Any]:
    rows = _cost_rows(dimension)
    in_period = rows.c.day >= PERIOD_DAY
    period_incidents = func.coalesce(func.sum(rows.c.incidents).filter(in_period), 0)
    return (
        select(
            rows.c.dimension,
            rows.c.key,
            period_incidents,
            func.coalesce(func.sum(rows.c.calls).filter(in_period), 0),
            func.coalesce(func.sum(rows.c.cost_usd).filter(in_period), 0),
            func.coalesce(func.sum(rows.c.cost_usd).filter(~in_period), 0),
        )
        .group_by(rows.c.dimension, rows.c.key)
        .having(period_incidents > 0)
    )


async def spend_by_key(
    conn: AsyncConnection,
    tenant: str,
    baseline_start: date,
    period_start: date,
    as_of: datetime,
    dimension: CostDimension | None = None,
) -> list[KeySpend]:
    """Per (dimension, key) with incidents in [period_start, as_of] (of `dimension` only, if
    given): period totals, and the cost of [baseline_start, period_start)."""
    parameters = _parameters(tenant, baseline_start, as_of) | {"period_day": period_start}
    return [
        KeySpend(d, k, int(n), int(calls), Decimal(cost), Decimal(base))
        for d, k, n, calls, cost, base in await conn.execute(_spend_by_key(dimension), parameters)
    ]


COST_INCIDENT_COLUMNS = (
    "incident_id", "title", "trigger_type", "category", "severity", "lifecycle_state",
    "fingerprint", "started_at", "last_event_at", "resolved_at", "calls_affected", "cost_usd",
    "breakdown",
)  # fmt: skip
"""What a cost incident shows and says of its incident (`breakdown` for its description)."""
COST_ORDER = sort_keys(SortField.COST_USD, SortOrder.DESC)
"""Costliest first: cost_usd descending, then incident_id descending."""


@dataclass(frozen=True, slots=True)
class CostIncidentPage:
    rows: list[Row]
    total: int
    total_cost: Decimal


@functools.cache
def _cost_incidents(include_resolved: bool) -> tuple[Select[Any], Select[Any]]:
    """The page statement (bind parameters `tenant_id`, `listed_at`, `limit`, `offset`), its rows
    with the totals of all pages, and the totals alone (for a page past the end)."""
    i = incidents.c
    conditions = [
        i.tenant_id == bindparam("tenant_id"),
        i.cost_usd > 0,
        i.incident_id.not_in(created_since()),
    ]
    if not include_resolved:
        conditions.append(i.lifecycle_state.in_(OPEN_STATES))
    chosen = (
        select(i.incident_id)
        .where(*conditions)
        .order_by(*COST_ORDER)
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
        .subquery()
    )
    totals = select(
        func.count().label("total"), func.coalesce(func.sum(i.cost_usd), 0).label("total_cost")
    ).where(*conditions)
    summed = totals.subquery()
    page = (
        select(*(i[name] for name in COST_INCIDENT_COLUMNS), summed.c.total, summed.c.total_cost)
        .join_from(incidents, chosen, i.incident_id == chosen.c.incident_id)
        .join(summed, true())
        .order_by(*COST_ORDER)
    )
    return page, totals


async def cost_incidents(
    conn: AsyncConnection,
    tenant: str,
    include_resolved: bool,
    as_of: datetime,
    limit: int,
    offset: int,
) -> CostIncidentPage:
    """One page of the tenant's incidents with a cost, created before `as_of` (open ones only
    unless `include_resolved`), costliest first; and the count and cost of all pages."""
    page, totals = _cost_incidents(include_resolved)
    parameters = {"tenant_id": tenant, "listed_at": as_of}
    result = await conn.execute(page, {**parameters, "limit": limit, "offset": offset})
    rows = [row._mapping for row in result]
    if rows:
        return CostIncidentPage(rows, int(rows[0]["total"]), Decimal(rows[0]["total_cost"]))
    if offset == 0:
        return CostIncidentPage([], 0, Decimal(0))
    count, cost = (await conn.execute(totals, parameters)).one()
    return CostIncidentPage([], int(count), Decimal(cost))
