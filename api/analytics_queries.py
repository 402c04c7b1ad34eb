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
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    Numeric,
    Select,
    Subquery,
    and_,
    case,
    cast,
    func,
    literal,
    select,
    true,
    tuple_,
    union_all,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.analytics import UNRESOLVED, PatternMember
from domain.incidents import LifecycleState
from domain.patterns import PATTERN_TYPES
from storage.schema import (
    cost_daily,
    incident_rollups_hourly,
    incidents,
    pattern_members,
    recurrence_daily,
    recurrence_fingerprints,
)

ALL_STATES = [state.value for state in LifecycleState]
RECENT_IDS = 5
MIN_PATTERN_SIZE = 2
"""No pattern type has a threshold below 2 (cascade_failure's), so a (type, dimension) with one
member in the window can never form a pattern and is not fetched."""


def utc_midnight(at: datetime) -> datetime:
    return datetime.combine(at.astimezone(UTC).date(), time(), UTC)


def utc_hour(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _utc_day(column: Any) -> ColumnElement[date]:
    return func.date(func.timezone("UTC", column))


def _started_between(tenant: str, start: datetime, end: datetime) -> ColumnElement[bool]:
    """The tenant's incidents started in [start, end], by ix_incidents_tenant_state_started."""
    return and_(
        incidents.c.tenant_id == tenant,
        incidents.c.lifecycle_state.in_(ALL_STATES),
        incidents.c.started_at >= start,
        incidents.c.started_at <= end,
    )


def _is_resolved() -> ColumnElement[bool]:
    return and_(
        incidents.c.lifecycle_state == LifecycleState.RESOLVED.value,
        incidents.c.resolved_at.is_not(None),
    )


def _resolution_method() -> ColumnElement[str]:
    """As `domain.analytics.recurrence_contribution`: the method if resolved, else `unresolved`."""
    method = func.coalesce(incidents.c.resolution_method, UNRESOLVED)
    return case((_is_resolved(), method), else_=literal(UNRESOLVED))


async def count_started(conn: AsyncConnection, tenant: str, after: datetime, end: datetime) -> int:
    """Incidents of the tenant started in (after, end]."""
    query = select(func.count()).where(
        _started_between(tenant, after, end), incidents.c.started_at > after
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
    resolved = _is_resolved()
    seconds = func.extract("epoch", i.c.resolved_at - i.c.started_at)
    from_rollups = select(
        _utc_day(r.c.hour).label("day"),
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
        _utc_day(i.c.started_at),
        i.c.category,
        i.c.severity,
        i.c.cause_type,
        literal(1, Integer),
        cast(resolved, Integer),
        case((resolved, seconds), else_=literal(0, Numeric)),
        cast(resolved, Integer),
        i.c.cost_usd,
    ).where(_started_between(tenant, tail, as_of))
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


@dataclass(frozen=True, slots=True)
class Ranked:
    """A page of groups and the totals over every group (before the limit)."""

    rows: list[Any]
    total_groups: int
    total_count: int
    total_amount: Decimal = Decimal(0)


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
        _utc_day(incidents.c.started_at),
        incidents.c.category,
        _resolution_method(),
        literal(1, Integer),
    ).where(_started_between(tenant, tail, as_of))
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
            func.count().over(),
            func.sum(total).over(),
        )
        .group_by(rows.c.category, rows.c.resolution_method)
        .having(total >= threshold)
        .order_by(total.desc(), rows.c.category, rows.c.resolution_method)
        .limit(limit)
    )
    result = (await conn.execute(query)).all()
    groups = [RecurrenceGroupRow(c, m, int(n), int(k)) for c, m, n, k, _, _ in result]
    if not result:
        return Ranked([], 0, 0)
    return Ranked(groups, int(result[0][4]), int(result[0][5]))


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
    i, method = incidents, _resolution_method()
    query = (
        select(
            i.c.category,
            method,
            func.min(i.c.started_at),
            func.max(i.c.started_at),
            _newest_ids(i.c.started_at, i.c.incident_id),
        )
        .where(_started_between(tenant, start, as_of), tuple_(i.c.category, method).in_(groups))
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
            func.count().over(),
            func.sum(count).over(),
        )
        .where(f.c.tenant_id == tenant, f.c.started_at >= start, f.c.started_at <= as_of)
        .group_by(f.c.fingerprint)
        .having(count >= threshold)
        .order_by(count.desc(), f.c.fingerprint)
        .limit(limit)
    )
    result = (await conn.execute(query)).all()
    if not result:
        return Ranked([], 0, 0)
    rows = [FingerprintRow(p, int(n), int(r), a, b, list(ids)) for p, n, r, a, b, ids, *_ in result]
    return Ranked(rows, int(result[0][6]), int(result[0][7]))


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
    i, method = incidents, _resolution_method()
    count, cost = func.count(), func.sum(i.c.cost_usd)
    query = (
        select(
            i.c.category,
            method,
            count,
            cost,
            func.count().over(),
            func.sum(count).over(),
            func.sum(cost).over(),
        )
        .where(_started_between(tenant, start, as_of), i.c.cost_usd > 0)
        .group_by(i.c.category, method)
        .order_by(cost.desc(), i.c.category, method)
        .limit(limit)
    )
    result = (await conn.execute(query)).all()
    if not result:
        return Ranked([], 0, 0)
    rows = [CostGroupRow(c, m, int(n), Decimal(s)) for c, m, n, s, *_ in result]
    first = result[0]
    return Ranked(rows, int(first[4]), int(first[5]), Decimal(first[6]))


def _cost_tail(tenant: str, as_of: datetime) -> list[Select[Any]]:
    """cost_daily rows of the incidents of as_of's day, as `domain.analytics.cost_contribution`."""
    i, tail = incidents, utc_midnight(as_of)
    selects: list[Select[Any]] = [
        select(
            _utc_day(i.c.started_at),
            literal("category"),
            i.c.category,
            literal(1, Integer),
            cast(i.c.calls_affected, BigInteger),
            i.c.cost_usd,
        ).where(_started_between(tenant, tail, as_of))
    ]
    for dimension in ("model", "agent"):
        entry = func.jsonb_each(i.c.breakdown.op("->")(dimension)).table_valued("key", "value")
        selects.append(
            select(
                _utc_day(i.c.started_at),
                literal(dimension),
                entry.c.key,
                literal(1, Integer),
                cast(entry.c.value.op("->>")("calls"), BigInteger),
                cast(entry.c.value.op("->>")("cost_usd"), Numeric),
            )
            .select_from(i.join(entry, true()))
            .where(_started_between(tenant, tail, as_of))
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


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def days_before(at: datetime, days: int) -> datetime:
    """Midnight UTC `days` days before at's day."""
    return utc_midnight(at) - timedelta(days=days)
