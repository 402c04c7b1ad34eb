"""Selects behind `/v1/costs`: spend per UTC day and per (dimension, key), from `cost_daily`
before as_of's day and the `incidents` of that day (built once, see `api.windows`).
"""

from __future__ import annotations

import functools
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, Select, Subquery, bindparam, func, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection

from api.windows import AS_OF, START_DAY, TAIL, TAIL_DAY, TENANT, started_between, window
from domain.buckets import day_start, utc_midnight
from domain.spend import DaySpend, KeySpend
from storage import rules
from storage.analytics_schema import cost_daily

_COLUMNS = ("day", "dimension", "key", "incidents", "calls", "cost_usd")


PERIOD_DAY = bindparam("period_day", type_=Date())
"""The first day of the period (the days before it are its baseline)."""


@functools.cache
def _cost_rows() -> Subquery:
    """cost_daily rows from `start_day` to the day before as_of's, then that day's incidents."""
    c = cost_daily
    from_table = select(*(c.c[name] for name in _COLUMNS)).where(
        c.c.tenant_id == TENANT, c.c.day >= START_DAY, c.c.day < TAIL_DAY
    )
    tails = [tail.subquery() for tail in rules.cost_rows(started_between(TENANT, TAIL, AS_OF))]
    from_incidents = [select(*(tail.c[name] for name in _COLUMNS)) for tail in tails]
    return union_all(from_table, *from_incidents).subquery()


def _parameters(tenant: str, since: date, as_of: datetime) -> dict[str, Any]:
    return window(tenant, day_start(since), as_of, tail=utc_midnight(as_of))


@functools.cache
def _daily_spend() -> Select[Any]:
    rows = _cost_rows()
    return (
        select(rows.c.day, func.sum(rows.c.incidents), func.sum(rows.c.cost_usd))
        .where(rows.c.dimension == "category")
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
def _spend_by_key() -> Select[Any]:
    rows = _cost_rows()
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
    conn: AsyncConnection, tenant: str, baseline_start: date, period_start: date, as_of: datetime
) -> list[KeySpend]:
    """Per (dimension, key) with incidents in [period_start, as_of]: period totals, and the cost
    of [baseline_start, period_start)."""
    parameters = _parameters(tenant, baseline_start, as_of) | {"period_day": period_start}
    return [
        KeySpend(d, k, int(n), int(calls), Decimal(cost), Decimal(base))
        for d, k, n, calls, cost, base in await conn.execute(_spend_by_key(), parameters)
    ]
