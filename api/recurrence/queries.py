"""Selects behind `/v1/incidents/recurring`: (category, resolution method) groups from
`recurrence_daily` and the current day's incidents (see `api.windows`), their occurrences, and
recurring fingerprints from `recurrence_fingerprints`. The groups and fingerprints selects are
built once; the occurrences select names the groups found."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, Select, Subquery, bindparam, func, select, tuple_, union_all
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncConnection

from api.ranked import Ranked, ranked, totals
from api.windows import AS_OF, START, START_DAY, TAIL, TAIL_DAY, TENANT, started_between, window
from domain.buckets import utc_midnight
from storage import rules
from storage.analytics_schema import recurrence_daily, recurrence_fingerprints
from storage.schema import incidents

RECENT_IDS = 5
THRESHOLD = bindparam("threshold", type_=Integer())
LIMIT = bindparam("limit", type_=Integer())


def _newest_ids(started_at: Any, incident_id: Any) -> Any:
    ordered = aggregate_order_by(incident_id, started_at.desc(), incident_id.desc())
    return func.array_agg(ordered)[1:RECENT_IDS]


@dataclass(frozen=True, slots=True)
class RecurrenceGroupRow:
    category: str
    resolution_method: str
    total: int
    distinct_days: int


@functools.cache
def _recurrence_rows() -> Subquery:
    """recurrence_daily rows of the days before as_of's day, then that day's incidents."""
    d = recurrence_daily
    from_table = select(d.c.day, d.c.category, d.c.resolution_method, d.c.incidents).where(
        d.c.tenant_id == TENANT, d.c.day >= START_DAY, d.c.day < TAIL_DAY
    )
    tail = rules.recurrence_rows(started_between(TENANT, TAIL, AS_OF)).subquery()
    from_incidents = select(tail.c.day, tail.c.category, tail.c.resolution_method, tail.c.incidents)
    return union_all(from_table, from_incidents).subquery()


def _parameters(
    tenant: str, start: datetime, as_of: datetime, threshold: int, limit: int
) -> dict[str, Any]:
    return window(tenant, start, as_of, tail=utc_midnight(as_of)) | {
        "threshold": threshold,
        "limit": limit,
    }


@functools.cache
def _groups() -> Select[Any]:
    rows = _recurrence_rows()
    total = func.sum(rows.c.incidents)
    days = func.count(rows.c.day.distinct()).filter(rows.c.incidents > 0)
    return (
        select(
            rows.c.category,
            rows.c.resolution_method,
            total,
            days,
            *totals(total),
        )
        .group_by(rows.c.category, rows.c.resolution_method)
        .having(total >= THRESHOLD)
        .order_by(total.desc(), rows.c.category, rows.c.resolution_method)
        .limit(LIMIT)
    )


async def recurrence_groups(
    conn: AsyncConnection, tenant: str, start: datetime, as_of: datetime, threshold: int, limit: int
) -> Ranked:
    """(category, resolution_method) groups with >= threshold incidents, largest first."""
    parameters = _parameters(tenant, start, as_of, threshold, limit)
    return await ranked(
        conn,
        _groups(),
        parameters,
        4,
        lambda c, m, n, k: RecurrenceGroupRow(c, m, int(n), int(k)),
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
    i, method = incidents, rules.resolution_method()
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


@functools.cache
def _fingerprints() -> Select[Any]:
    f = recurrence_fingerprints
    count = func.count()
    return (
        select(
            f.c.fingerprint,
            count,
            func.sum(f.c.reopen_count),
            func.min(f.c.started_at),
            func.max(f.c.last_event_at),
            _newest_ids(f.c.started_at, f.c.incident_id),
            *totals(count),
        )
        .where(f.c.tenant_id == TENANT, f.c.started_at >= START, f.c.started_at <= AS_OF)
        .group_by(f.c.fingerprint)
        .having(count >= THRESHOLD)
        .order_by(count.desc(), f.c.fingerprint)
        .limit(LIMIT)
    )


async def recurring_fingerprints(
    conn: AsyncConnection, tenant: str, start: datetime, as_of: datetime, threshold: int, limit: int
) -> Ranked:
    """Fingerprints of >= threshold incidents started in [start, as_of], most frequent first."""
    return await ranked(
        conn,
        _fingerprints(),
        _parameters(tenant, start, as_of, threshold, limit),
        6,
        lambda p, n, r, a, b, ids: FingerprintRow(p, int(n), int(r), a, b, list(ids)),
    )
