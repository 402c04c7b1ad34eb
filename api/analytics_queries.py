"""Selects behind the analytics endpoints: one tenant, a window ending at `as_of`, plain rows out.

The processors' tables are bucketed (hour or UTC day), while a window ends at `as_of`, inside the
last bucket; incidents of that bucket may start after `as_of` (in partitions whose watermark is
ahead). So every select reads the processors' table for the buckets before the one holding
`as_of`, and the `incidents` table, with the same contribution (`domain.analytics`), for the rest
of the window: the tail `[start of as_of's bucket, as_of]`, a few rows of one tenant.

Indexes relied on: the tables' primary keys (tenant first, then the time bucket),
`ix_incidents_tenant_state_started` (reached with `lifecycle_state IN (<all states>)` so that the
started_at range is an index range per state), `ix_recurrence_fingerprints_tenant_started` and
`ix_pattern_members_tenant_type_started` (with `pattern_type IN (<all types>)`).

Here: the building blocks every analytics select shares (UTC buckets, the incidents of a window,
the resolution method), and the selects of patterns, recurrence and cost impact.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    Subquery,
    and_,
    case,
    func,
    literal,
    select,
    tuple_,
    union_all,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.analytics import UNRESOLVED, PatternMember
from domain.incidents import LifecycleState
from domain.patterns import PATTERN_TYPES
from storage.analytics_schema import pattern_members, recurrence_daily, recurrence_fingerprints
from storage.schema import incidents

ALL_STATES = [state.value for state in LifecycleState]
RECENT_IDS = 5
MIN_PATTERN_SIZE = 2
"""No pattern type has a threshold below 2 (cascade_failure's), so a (type, dimension) with one
member in the window can never form a pattern and is not fetched."""


def utc_midnight(at: datetime) -> datetime:
    return datetime.combine(at.astimezone(UTC).date(), time(), UTC)


def utc_hour(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def utc_day(column: Any) -> ColumnElement[date]:
    return func.date(func.timezone("UTC", column))


def started_between(tenant: str, start: datetime, end: datetime) -> ColumnElement[bool]:
    """The tenant's incidents started in [start, end], by ix_incidents_tenant_state_started."""
    return and_(
        incidents.c.tenant_id == tenant,
        incidents.c.lifecycle_state.in_(ALL_STATES),
        incidents.c.started_at >= start,
        incidents.c.started_at <= end,
    )


def is_resolved() -> ColumnElement[bool]:
    return and_(
        incidents.c.lifecycle_state == LifecycleState.RESOLVED.value,
        incidents.c.resolved_at.is_not(None),
    )


def resolution_method() -> ColumnElement[str]:
    """As `domain.analytics.recurrence_contribution`: the method if resolved, else `unresolved`."""
    method = func.coalesce(incidents.c.resolution_method, UNRESOLVED)
    return case((is_resolved(), method), else_=literal(UNRESOLVED))


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def days_before(at: datetime, days: int) -> datetime:
    """Midnight UTC `days` days before at's day."""
    return utc_midnight(at) - timedelta(days=days)


async def count_started(conn: AsyncConnection, tenant: str, after: datetime, end: datetime) -> int:
    """Incidents of the tenant started in (after, end]."""
    query = select(func.count()).where(
        started_between(tenant, after, end), incidents.c.started_at > after
    )
    return int((await conn.execute(query)).scalar_one())


async def pattern_candidates(
    conn: AsyncConnection, tenant: str, after: datetime, end: datetime
) -> list[PatternMember]:
    """Pattern members started in (after, end] whose (type, dimension) has >= 2 of them."""
    m = pattern_members
    in_window = (
        select(
            m.c.pattern_type,
            m.c.dimension,
            m.c.incident_id,
            m.c.started_at,
            func.count().over(partition_by=(m.c.pattern_type, m.c.dimension)).label("size"),
        )
        .where(
            m.c.tenant_id == tenant,
            m.c.pattern_type.in_(PATTERN_TYPES),
            m.c.started_at > after,
            m.c.started_at <= end,
        )
        .subquery()
    )
    query = select(
        in_window.c.pattern_type,
        in_window.c.dimension,
        in_window.c.incident_id,
        in_window.c.started_at,
    ).where(in_window.c.size >= MIN_PATTERN_SIZE)
    rows = await conn.execute(query)
    return [PatternMember(tenant, *row) for row in rows]


@dataclass(frozen=True, slots=True)
class Ranked:
    """A page of groups and the totals over every group (before the limit)."""

    rows: list[Any]
    total_groups: int
    total_count: int
    total_amount: Decimal = Decimal(0)


def _totals(count: Any, *amounts: Any) -> list[Any]:
    """Window columns that `_ranked` reads: groups, their summed counts and summed amounts."""
    return [func.count().over(), func.sum(count).over(), *(func.sum(a).over() for a in amounts)]


async def _ranked(
    conn: AsyncConnection, query: Select[Any], width: int, row: Callable[..., Any]
) -> Ranked:
    """`query`'s rows as `row(*their first width columns)`, with the totals `_totals` put after."""
    result = (await conn.execute(query)).all()
    if not result:
        return Ranked([], 0, 0)
    totals = result[0][width:]
    amount = Decimal(totals[2]) if len(totals) > 2 else Decimal(0)
    rows = [row(*values[:width]) for values in result]
    return Ranked(rows, int(totals[0]), int(totals[1]), amount)


def _newest_ids(started_at: Any, incident_id: Any) -> Any:
    ordered = aggregate_order_by(incident_id, started_at.desc(), incident_id.desc())
    return func.array_agg(ordered)[1:RECENT_IDS]


@dataclass(frozen=True, slots=True)
class RecurrenceGroupRow:
    category: str
    resolution_method: str
    total: int
    distinct_days: int


def _recurrence_rows(tenant: str, start: datetime, as_of: datetime) -> Subquery:
    """recurrence_daily rows of the days before as_of's day, then that day's incidents."""
    d, tail = recurrence_daily, utc_midnight(as_of)
    from_table = select(d.c.day, d.c.category, d.c.resolution_method, d.c.incidents).where(
        d.c.tenant_id == tenant, d.c.day >= start.date(), d.c.day < tail.date()
    )
    from_incidents = select(
        utc_day(incidents.c.started_at),
        incidents.c.category,
        resolution_method(),
        literal(1, Integer),
    ).where(started_between(tenant, tail, as_of))
    return union_all(from_table, from_incidents).subquery()


async def recurrence_groups(
    conn: AsyncConnection, tenant: str, start: datetime, as_of: datetime, threshold: int, limit: int
) -> Ranked:
    """(category, resolution_method) groups with >= threshold incidents, largest first."""
    rows = _recurrence_rows(tenant, start, as_of)
    total = func.sum(rows.c.incidents)
    days = func.count(rows.c.day.distinct()).filter(rows.c.incidents > 0)
    query = (
        select(
            rows.c.category,
            rows.c.resolution_method,
            total,
            days,
            *_totals(total),
        )
        .group_by(rows.c.category, rows.c.resolution_method)
        .having(total >= threshold)
        .order_by(total.desc(), rows.c.category, rows.c.resolution_method)
        .limit(limit)
    )
    return await _ranked(
        conn, query, 4, lambda c, m, n, k: RecurrenceGroupRow(c, m, int(n), int(k))
    )


@dataclass(frozen=True, slots=True)
class Occurrences:
    first: datetime
    last: datetime
    recent_ids: list[uuid.UUID]


async def group_occurrences(
    conn: AsyncConnection,
    tenant: str,
    start: datetime,
    as_of: datetime,
    groups: Sequence[tuple[str, str]],
) -> dict[tuple[str, str], Occurrences]:
    """First and last start and the 5 newest ids of the given (category, method) groups."""
    if not groups:
        return {}
    i, method = incidents, resolution_method()
    query = (
        select(
            i.c.category,
            method,
            func.min(i.c.started_at),
            func.max(i.c.started_at),
            _newest_ids(i.c.started_at, i.c.incident_id),
        )
        .where(started_between(tenant, start, as_of), tuple_(i.c.category, method).in_(groups))
        .group_by(i.c.category, method)
    )
    rows = await conn.execute(query)
    return {(c, m): Occurrences(first, last, list(ids)) for c, m, first, last, ids in rows}


@dataclass(frozen=True, slots=True)
class FingerprintRow:
    fingerprint: str
    occurrences: int
    reopens: int
    first_seen: datetime
    last_seen: datetime
    recent_ids: list[uuid.UUID]


async def recurring_fingerprints(
    conn: AsyncConnection, tenant: str, start: datetime, as_of: datetime, threshold: int, limit: int
) -> Ranked:
    """Fingerprints of >= threshold incidents started in [start, as_of], most frequent first."""
    f = recurrence_fingerprints
    count = func.count()
    query = (
        select(
            f.c.fingerprint,
            count,
            func.sum(f.c.reopen_count),
            func.min(f.c.started_at),
            func.max(f.c.last_event_at),
            _newest_ids(f.c.started_at, f.c.incident_id),
            *_totals(count),
        )
        .where(f.c.tenant_id == tenant, f.c.started_at >= start, f.c.started_at <= as_of)
        .group_by(f.c.fingerprint)
        .having(count >= threshold)
        .order_by(count.desc(), f.c.fingerprint)
        .limit(limit)
    )
    return await _ranked(
        conn,
        query,
        6,
        lambda p, n, r, a, b, ids: FingerprintRow(p, int(n), int(r), a, b, list(ids)),
    )


@dataclass(frozen=True, slots=True)
class CostGroupRow:
    category: str
    resolution_method: str
    incident_count: int
    total_cost: Decimal


async def cost_groups(
    conn: AsyncConnection, tenant: str, start: datetime, as_of: datetime, limit: int
) -> Ranked:
    """Incidents with a cost, started in [start, as_of], by (category, method), costliest first."""
    i, method = incidents, resolution_method()
    count, cost = func.count(), func.sum(i.c.cost_usd)
    query = (
        select(
            i.c.category,
            method,
            count,
            cost,
            *_totals(count, cost),
        )
        .where(started_between(tenant, start, as_of), i.c.cost_usd > 0)
        .group_by(i.c.category, method)
        .order_by(cost.desc(), i.c.category, method)
        .limit(limit)
    )
    return await _ranked(conn, query, 4, lambda c, m, n, s: CostGroupRow(c, m, int(n), Decimal(s)))
