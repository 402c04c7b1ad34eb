"""Selects behind `/v1/incidents/historical`: per UTC day rollups of the incidents started in a
window, from `incident_rollups_hourly` before as_of's hour and the `incidents` after it (see
`api.windows`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, Subquery, func, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection

from api.windows import AS_OF, START, TAIL, TENANT, started_between, window
from domain.buckets import utc_hour
from storage import rules
from storage.analytics_schema import HISTORY_ROLLUP_COLUMNS, incident_rollups_hourly


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


@functools.cache
def _rollup_rows() -> Subquery:
    """Rollup rows of [start, as_of]: hours before as_of's hour, then the incidents after it."""
    r, columns = incident_rollups_hourly, HISTORY_ROLLUP_COLUMNS
    from_rollups = select(
        rules.utc_day(r.c.hour).label("day"), *(r.c[name] for name in columns)
    ).where(r.c.tenant_id == TENANT, r.c.hour >= START, r.c.hour < TAIL)
    tail = rules.rollup_rows(started_between(TENANT, TAIL, AS_OF)).subquery()
    from_incidents = select(rules.utc_day(tail.c.hour), *(tail.c[name] for name in columns))
    return union_all(from_rollups, from_incidents).subquery()


def _parameters(tenant: str, start: datetime, as_of: datetime) -> dict[str, Any]:
    return window(tenant, start, as_of, tail=utc_hour(as_of))


@functools.cache
def _daily_rollups() -> Select[Any]:
    rows = _rollup_rows()
    return select(
        rows.c.day,
        func.sum(rows.c.started),
        func.sum(rows.c.resolved),
        func.sum(rows.c.resolution_seconds_sum),
        func.sum(rows.c.resolution_count),
        func.sum(rows.c.cost_usd),
    ).group_by(rows.c.day)


async def daily_rollups(
    conn: AsyncConnection, tenant: str, start: datetime, as_of: datetime
) -> dict[date, DayRollup]:
    """Per UTC start day in [start, as_of]: incidents started, resolved, resolution time, cost."""
    result = await conn.execute(_daily_rollups(), _parameters(tenant, start, as_of))
    return {
        day: DayRollup(int(started), int(resolved), Decimal(seconds), int(count), Decimal(cost))
        for day, started, resolved, seconds, count, cost in result
    }


@dataclass(frozen=True, slots=True)
class ClassCount:
    category: str
    severity: str
    cause_type: str
    count: int


@functools.cache
def _class_counts() -> Select[Any]:
    rows = _rollup_rows()
    started = func.sum(rows.c.started)
    return (
        select(rows.c.category, rows.c.severity, rows.c.cause_type, started)
        .group_by(rows.c.category, rows.c.severity, rows.c.cause_type)
        .having(started > 0)
    )


async def class_counts(
    conn: AsyncConnection, tenant: str, start: datetime, as_of: datetime
) -> list[ClassCount]:
    """Incidents started in [start, as_of] per (category, severity, cause_type)."""
    result = await conn.execute(_class_counts(), _parameters(tenant, start, as_of))
    return [ClassCount(a, b, c, int(n)) for a, b, c, n in result]
