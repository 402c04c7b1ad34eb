"""Selects behind the cost guard: spend per UTC day and per (dimension, key), from `cost_daily`
before as_of's day and the `incidents` of that day (as `domain.analytics.cost_contribution`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Integer,
    Numeric,
    Select,
    Subquery,
    cast,
    func,
    literal,
    select,
    true,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from api.analytics_queries import started_between, utc_day, utc_midnight
from storage.analytics_schema import cost_daily
from storage.schema import incidents


def _cost_tail(tenant: str, as_of: datetime) -> list[Select[Any]]:
    """cost_daily rows of the incidents of as_of's day, as `domain.analytics.cost_contribution`."""
    i, tail = incidents, utc_midnight(as_of)
    selects: list[Select[Any]] = [
        select(
            utc_day(i.c.started_at),
            literal("category"),
            i.c.category,
            literal(1, Integer),
            cast(i.c.calls_affected, BigInteger),
            i.c.cost_usd,
        ).where(started_between(tenant, tail, as_of))
    ]
    for dimension in ("model", "agent"):
        entry = func.jsonb_each(i.c.breakdown.op("->")(dimension)).table_valued("key", "value")
        selects.append(
            select(
                utc_day(i.c.started_at),
                literal(dimension),
                entry.c.key,
                literal(1, Integer),
                cast(entry.c.value.op("->>")("calls"), BigInteger),
                cast(entry.c.value.op("->>")("cost_usd"), Numeric),
            )
            .select_from(i.join(entry, true()))
            .where(started_between(tenant, tail, as_of))
        )
    return selects


def _cost_rows(tenant: str, since: date, as_of: datetime) -> Subquery:
    c = cost_daily
    from_table = select(c.c.day, c.c.dimension, c.c.key, c.c.incidents, c.c.calls, c.c.cost_usd)
    from_table = from_table.where(
        c.c.tenant_id == tenant, c.c.day >= since, c.c.day < utc_midnight(as_of).date()
    )
    return union_all(from_table, *_cost_tail(tenant, as_of)).subquery()


@dataclass(frozen=True, slots=True)
class DaySpend:
    day: date
    incidents: int
    cost_usd: Decimal


async def daily_spend(
    conn: AsyncConnection, tenant: str, since: date, as_of: datetime
) -> list[DaySpend]:
    """Per UTC start day from `since` to as_of: incidents and their cost (dimension category)."""
    rows = _cost_rows(tenant, since, as_of)
    query = (
        select(rows.c.day, func.sum(rows.c.incidents), func.sum(rows.c.cost_usd))
        .where(rows.c.dimension == "category")
        .group_by(rows.c.day)
        .order_by(rows.c.day)
    )
    return [DaySpend(d, int(n), Decimal(s)) for d, n, s in await conn.execute(query)]


@dataclass(frozen=True, slots=True)
class KeySpend:
    """One key of a cost dimension: its period totals and its baseline cost before the period."""

    dimension: str
    key: str
    incidents: int
    calls: int
    cost_usd: Decimal
    baseline_cost_usd: Decimal


async def spend_by_key(
    conn: AsyncConnection, tenant: str, baseline_start: date, period_start: date, as_of: datetime
) -> list[KeySpend]:
    """Per (dimension, key) with incidents in [period_start, as_of]: period totals, and the cost
    of [baseline_start, period_start)."""
    rows = _cost_rows(tenant, baseline_start, as_of)
    in_period = rows.c.day >= period_start
    period_incidents = func.coalesce(func.sum(rows.c.incidents).filter(in_period), 0)
    query = (
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
    return [
        KeySpend(d, k, int(n), int(calls), Decimal(cost), Decimal(base))
        for d, k, n, calls, cost, base in await conn.execute(query)
    ]
