"""Selects behind `/v1/incidents/patterns`: the pattern members of a window and the incidents
started in it (built once, see `api.windows`)."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from api.windows import AS_OF, START, TENANT, started_between, window
from domain.analytics import PatternMember
from domain.patterns import MIN_PATTERN_SIZE, PATTERN_TYPES
from storage.analytics_schema import pattern_members
from storage.schema import incidents


@functools.cache
def _count_started() -> Select[Any]:
    return select(func.count()).where(
        started_between(TENANT, START, AS_OF), incidents.c.started_at > START
    )


async def count_started(conn: AsyncConnection, tenant: str, after: datetime, end: datetime) -> int:
    """Incidents of the tenant started in (after, end]."""
    result = await conn.execute(_count_started(), window(tenant, after, end, tail=end))
    return int(result.scalar_one())


@functools.cache
def _candidates() -> Select[Any]:
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
            m.c.tenant_id == TENANT,
            m.c.pattern_type.in_(PATTERN_TYPES),
            m.c.started_at > START,
            m.c.started_at <= AS_OF,
        )
        .subquery()
    )
    return select(
        in_window.c.pattern_type,
        in_window.c.dimension,
        in_window.c.incident_id,
        in_window.c.started_at,
    ).where(in_window.c.size >= MIN_PATTERN_SIZE)


async def pattern_candidates(
    conn: AsyncConnection, tenant: str, after: datetime, end: datetime
) -> list[PatternMember]:
    """Pattern members started in (after, end] whose (type, dimension) has enough of them to
    form a pattern of some type (`MIN_PATTERN_SIZE`)."""
    rows = await conn.execute(_candidates(), window(tenant, after, end, tail=end))
    return [PatternMember(tenant, *row) for row in rows]
