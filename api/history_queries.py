"""Selects behind the historical endpoints: per UTC day rollups of the incidents started in a
window, from `incident_rollups_hourly` before as_of's hour and the `incidents` after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Integer, Numeric, Subquery, case, cast, func, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection

from api.analytics_queries import is_resolved, started_between, utc_day, utc_hour
from storage.analytics_schema import incident_rollups_hourly
from storage.schema import incidents


@dataclass(frozen=True, slots=True)
class DayRollup:
    """Rollup counters of one UTC day (or the sum of several)."""

    started: int = 0
    resolved: int = 0
    resolution_seconds: Decimal = Decimal(0)
    resolution_count: int = 0
    cost_usd: Decimal = Decimal(0)

    def __add__(self, other: DayRollup) -> DayRollup:
        return DayRollup(
            self.started + other.started,
            self.resolved + other.resolved,
            self.resolution_seconds + other.resolution_seconds,
            self.resolution_count + other.resolution_count,
            self.cost_usd + other.cost_usd,
        )


def _rollup_rows(tenant: str, start: datetime, as_of: datetime) -> Subquery:
    """Rollup rows of [start, as_of]: hours before as_of's hour, then the incidents after it."""
    r, i, tail = incident_rollups_hourly, incidents, utc_hour(as_of)
    resolved = is_resolved()
    seconds = func.extract("epoch", i.c.resolved_at - i.c.started_at)
    from_rollups = select(
        utc_day(r.c.hour).label("day"),
        r.c.category,
        r.c.severity,
        r.c.cause_type,
        r.c.started,
        r.c.resolved,
        r.c.resolution_seconds_sum.label("resolution_seconds"),
        r.c.resolution_count,
        r.c.cost_usd,
    ).where(r.c.tenant_id == tenant, r.c.hour >= start, r.c.hour < tail)
    from_incidents = select(
        utc_day(i.c.started_at),
        i.c.category,
        i.c.severity,
        i.c.cause_type,
        literal(1, Integer),
        cast(resolved, Integer),
        case((resolved, seconds), else_=literal(0, Numeric)),
        cast(resolved, Integer),
        i.c.cost_usd,
    ).where(started_between(tenant, tail, as_of))
    return union_all(from_rollups, from_incidents).subquery()


async def daily_rollups(
    conn: AsyncConnection, tenant: str, start: datetime, as_of: datetime
) -> dict[date, DayRollup]:
    """Per UTC start day in [start, as_of]: incidents started, resolved, resolution time, cost."""
    rows = _rollup_rows(tenant, start, as_of)
    query = select(
        rows.c.day,
        func.sum(rows.c.started),
        func.sum(rows.c.resolved),
        func.sum(rows.c.resolution_seconds),
        func.sum(rows.c.resolution_count),
        func.sum(rows.c.cost_usd),
    ).group_by(rows.c.day)
    return {
        day: DayRollup(int(started), int(resolved), Decimal(seconds), int(count), Decimal(cost))
        for day, started, resolved, seconds, count, cost in await conn.execute(query)
    }


@dataclass(frozen=True, slots=True)
class ClassCount:
    category: str
    severity: str
    cause_type: str
    count: int


async def class_counts(
    conn: AsyncConnection, tenant: str, start: datetime, as_of: datetime
) -> list[ClassCount]:
    """Incidents started in [start, as_of] per (category, severity, cause_type)."""
    rows = _rollup_rows(tenant, start, as_of)
    started = func.sum(rows.c.started)
    query = (
        select(rows.c.category, rows.c.severity, rows.c.cause_type, started)
        .group_by(rows.c.category, rows.c.severity, rows.c.cause_type)
        .having(started > 0)
    )
    return [ClassCount(a, b, c, int(n)) for a, b, c, n in await conn.execute(query)]
