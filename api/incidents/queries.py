"""SQLAlchemy Core selects behind `/v1/incidents` and the per-incident routes; rows as mappings.

Every query is scoped by `tenant_id`. Reads of the event tables are limited to one incident's own
events (by `incident_id`) and to one run (`ix_*_tenant_run`). A listing holds the incidents created
before its `as_of` (`created_since` gives the others; see `api.incidents.listing`).
"""

from __future__ import annotations

import functools
import operator
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    bindparam,
    func,
    literal,
    select,
    union,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from api.incidents.bodies import SUMMARY_FIELDS
from api.incidents.listing import IncidentFilters, SortField, SortOrder, Topic
from storage.rules import ALL_STATES, RESOLVED_STATES, severity_rank
from storage.schema import (
    incident_counts,
    incident_timeline,
    incidents,
    llm_call_failures,
    policy_violations,
)

Row = Mapping[Any, Any]


# Filters compared with `==` and the range bounds, by `IncidentFilters` field name.
_EQUAL = ("severity", "category", "cause_type", "trigger_type", "is_synthetic")
_BOUNDS = {
    "started_after": (incidents.c.started_at, operator.ge),
    "started_before": (incidents.c.started_at, operator.le),
    "resolved_after": (incidents.c.resolved_at, operator.ge),
    "resolved_before": (incidents.c.resolved_at, operator.le),
}


def _state_conditions(states: tuple[str, ...], historical: bool) -> list[ColumnElement[bool]]:
    state = incidents.c.lifecycle_state
    conditions = []
    if states != ALL_STATES:
        conditions.append(state == states[0] if len(states) == 1 else state.in_(states))
    if historical:
        conditions.append(incidents.c.resolved_at < bindparam("cutoff"))
    return conditions


LISTED_AT = bindparam("listed_at", type_=incidents.c.created_watermark.type)
"""The `as_of` a listing is read at."""


def created_since() -> Select[Any]:
    """Ids of the tenant's incidents (bind parameter `tenant_id`) created at or after the
    listing's `as_of` in event time (`created_watermark`). A listing leaves them out; they are
    few (created since the slowest partition reached `as_of`) and found by
    `ix_incidents_tenant_created_watermark`, so a page is still chosen in the sort indexes'
    order."""
    c = incidents.c
    return select(c.incident_id).where(
        c.tenant_id == bindparam("tenant_id"), c.created_watermark >= LISTED_AT
    )


def _conditions(
    states: tuple[str, ...], historical: bool, present: frozenset[str]
) -> list[ColumnElement[bool]]:
    """The WHERE conditions of a listing; each value is a bind parameter named after its filter."""
    c = incidents.c
    conditions = [
        c.tenant_id == bindparam("tenant_id"),
        *_state_conditions(states, historical),
        c.incident_id.not_in(created_since()),
    ]
    conditions += [c[name] == bindparam(name) for name in _EQUAL if name in present]
    for name, (column, compare) in _BOUNDS.items():
        if name in present:
            conditions.append(compare(column, bindparam(name, type_=column.type)))
    return conditions


def _parameters(tenant_id: str, filters: IncidentFilters, as_of: datetime) -> dict[str, Any]:
    """The bind parameters of a listing: the tenant, `as_of`, the historical cutoff, and every
    filter that is set."""
    values = {name: getattr(filters, name) for name in (*_EQUAL, *_BOUNDS)}
    parameters = {name: value for name, value in values.items() if value is not None}
    parameters["tenant_id"] = tenant_id
    parameters["listed_at"] = as_of
    if filters.topic is Topic.HISTORICAL:
        parameters["cutoff"] = as_of - timedelta(days=filters.retention_days)
    return parameters


def sort_keys(sort: SortField, order: SortOrder) -> list[Any]:
    """ORDER BY for `sort`: nulls last either way, ties broken by incident_id (stable pages).

    NULLS LAST is written only for a column that can be null: on the others it would not match
    the order of their indexes (PostgreSQL does not look at NOT NULL there).
    """
    column: Any = severity_rank() if sort is SortField.SEVERITY else incidents.c[sort.value]
    direction = column.asc() if order is SortOrder.ASC else column.desc()
    if sort is SortField.SEVERITY or not column.nullable:
        first = direction
    else:
        first = direction.nulls_last()
    tie = (
        incidents.c.incident_id.asc() if order is SortOrder.ASC else incidents.c.incident_id.desc()
    )
    return [first, tie]


SUMMARY_COLUMNS = [incidents.c[name] for name in SUMMARY_FIELDS]


Paged = tuple[Select[Any], Select[Any]]
"""A page statement (summaries and `total`; bind parameters `limit` and `offset`) and a count."""


def _paged(
    conditions: list[ColumnElement[bool]], order_by: list[Any], count: Select[Any] | None = None
) -> Paged:
    """The page and count statements of the incidents matching `conditions`.

    The page's ids are chosen first, from an index in sort order where one fits (one lifecycle
    state, a sort of `LISTING_SORTS` or started_at), else from `ix_incidents_tenant_state_listing`
    alone; only their rows are then read. The total is `count` if given (it must count exactly
    the incidents matching `conditions`), else counted apart in the same statement: a
    `count(*) OVER ()` beside the LIMIT would make every page sort all matching rows.
    """
    chosen = (
        select(incidents.c.incident_id)
        .where(*conditions)
        .order_by(*order_by)
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
        .subquery()
    )
    if count is None:
        count = select(func.count()).select_from(incidents).where(*conditions)
    page = (
        select(*SUMMARY_COLUMNS, count.scalar_subquery().label("total"))
        .join_from(incidents, chosen, incidents.c.incident_id == chosen.c.incident_id)
        .order_by(*order_by)
    )
    return page, count


async def _page(
    conn: AsyncConnection, paged: Paged, parameters: dict[str, Any], limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """The page's summaries as dicts of the `IncidentSummary` fields, and the total."""
    page, count = paged
    result = await conn.execute(page, {**parameters, "limit": limit, "offset": offset})
    # Rows hold SUMMARY_COLUMNS in order, then the total: zip by position, not by key.
    rows = result.all()
    summaries = [dict(zip(SUMMARY_FIELDS, row, strict=False)) for row in rows]
    if rows:
        total = int(rows[0][-1])
    elif offset == 0:
        total = 0
    else:  # a page past the end says nothing about the total: count
        total = int((await conn.execute(count, parameters)).scalar_one())
    return summaries, total


# The statements below are built once per shape and reused: a reused statement object skips
# SQLAlchemy's per-request construction and cache-key work, a third of a listing's CPU in the
# API process when they were built per request. Values are bind parameters.


def _kept_count(states: tuple[str, ...]) -> Select[Any]:
    """The tenant's incidents in `states` created before `as_of`: `incident_counts` (kept by
    triggers, a few rows read however many incidents the tenant has) less those created since."""
    c, i = incident_counts.c, incidents.c
    kept = select(func.coalesce(func.sum(c.incidents), 0)).where(
        c.tenant_id == bindparam("tenant_id"), c.lifecycle_state.in_(states)
    )
    since = created_since().with_only_columns(func.count())
    if states != ALL_STATES:
        since = since.where(i.lifecycle_state.in_(states))
    return select(kept.scalar_subquery() - since.scalar_subquery())


@functools.lru_cache(maxsize=256)
def _listing(
    states: tuple[str, ...],
    historical: bool,
    present: frozenset[str],
    sort: SortField,
    order: SortOrder,
) -> Paged:
    # Only the tenant, its states and as_of narrow a listing without filters (historical is
    # narrowed by time too): its total is kept.
    unfiltered = present == {"tenant_id", "listed_at"} and not historical
    count = _kept_count(states) if unfiltered else None
    return _paged(_conditions(states, historical, present), sort_keys(sort, order), count)


async def list_incidents(
    conn: AsyncConnection,
    tenant_id: str,
    filters: IncidentFilters,
    states: tuple[str, ...],
    as_of: datetime,
    sort: tuple[SortField, SortOrder],
    limit: int,
    offset: int,
) -> tuple[list[dict[Any, Any]], int]:
    """One page of the tenant's incident summaries in `states` matching `filters`, among those
    created before `as_of`, and their total."""
    parameters = _parameters(tenant_id, filters, as_of)
    historical = filters.topic is Topic.HISTORICAL
    paged = _listing(states, historical, frozenset(parameters), *sort)
    return await _page(conn, paged, parameters, limit, offset)


async def get_incident(conn: AsyncConnection, tenant_id: str, incident_id: uuid.UUID) -> Row | None:
    """Every column of the tenant's incident, or None (also for another tenant's incident)."""
    query = select(incidents).where(
        incidents.c.incident_id == incident_id, incidents.c.tenant_id == tenant_id
    )
    return (await conn.execute(query)).mappings().first()


async def incident_exists(conn: AsyncConnection, tenant_id: str, incident_id: uuid.UUID) -> bool:
    query = select(literal(1)).where(
        incidents.c.incident_id == incident_id, incidents.c.tenant_id == tenant_id
    )
    return (await conn.execute(query)).first() is not None


async def timeline(conn: AsyncConnection, tenant_id: str, incident_id: uuid.UUID) -> list[Row]:
    t = incident_timeline.c
    query = (
        select(t.kind, t.at, t.data)
        .where(t.incident_id == incident_id, t.tenant_id == tenant_id)
        .order_by(t.at, t.id)
    )
    return list((await conn.execute(query)).mappings().all())


EVENT_TABLES = {"llm_call_failure": llm_call_failures, "policy_violation": policy_violations}


def _event_keys(tenant_id: str, incident_id: uuid.UUID) -> Any:
    return union_all(
        *(
            select(literal(kind).label("type"), t.c.event_id, t.c.occurred_at).where(
                t.c.incident_id == incident_id, t.c.tenant_id == tenant_id
            )
            for kind, t in EVENT_TABLES.items()
        )
    ).subquery("event_keys")


async def incident_events(
    conn: AsyncConnection, tenant_id: str, incident_id: uuid.UUID, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """One page of the incident's events, by occurred_at then event_id, and their total."""
    keys = _event_keys(tenant_id, incident_id)
    page = (
        await conn.execute(
            select(keys.c.type, keys.c.event_id)
            .order_by(keys.c.occurred_at, keys.c.event_id, keys.c.type)
            .limit(limit)
            .offset(offset)
        )
    ).all()
    total = int((await conn.execute(select(func.count()).select_from(keys))).scalar_one())
    loaded: dict[tuple[str, str], dict[str, Any]] = {}
    for kind, table in EVENT_TABLES.items():
        ids = [event_id for type_, event_id in page if type_ == kind]
        if ids:
            rows = await conn.execute(select(table).where(table.c.event_id.in_(ids)))
            loaded |= {(kind, row.event_id): {**row._mapping, "type": kind} for row in rows}
    return [loaded[(type_, event_id)] for type_, event_id in page], total


@functools.cache
def _run_listing() -> Paged:
    run_incident_ids = union(
        *(
            select(t.c.incident_id).where(
                t.c.tenant_id == bindparam("tenant_id"),
                t.c.run_id == bindparam("run_id"),
                t.c.incident_id.is_not(None),
            )
            for t in EVENT_TABLES.values()
        )
    ).subquery("run_incidents")
    conditions = [
        incidents.c.tenant_id == bindparam("tenant_id"),
        incidents.c.incident_id.in_(select(run_incident_ids)),
    ]
    return _paged(conditions, [incidents.c.started_at.desc(), incidents.c.incident_id.desc()])


async def incidents_for_run(
    conn: AsyncConnection, tenant_id: str, run_id: str, limit: int, offset: int
) -> tuple[list[dict[Any, Any]], int]:
    """Incidents with an event of the run (newest first), and their total."""
    parameters = {"tenant_id": tenant_id, "run_id": run_id}
    return await _page(conn, _run_listing(), parameters, limit, offset)


async def count_events(conn: AsyncConnection, tenant_id: str, incident_id: uuid.UUID) -> int:
    keys = _event_keys(tenant_id, incident_id)
    return int((await conn.execute(select(func.count()).select_from(keys))).scalar_one())


async def similar_resolved(
    conn: AsyncConnection, tenant_id: str, category: str, incident_id: uuid.UUID, limit: int = 5
) -> list[Row]:
    """Resolved incidents of the category other than `incident_id`, latest resolution first."""
    c = incidents.c
    query = (
        select(incidents)
        .where(
            c.tenant_id == tenant_id,
            c.category == category,
            c.incident_id != incident_id,
            c.lifecycle_state.in_(RESOLVED_STATES),
        )
        .order_by(c.resolved_at.desc().nulls_last(), c.incident_id)
        .limit(limit)
    )
    return list((await conn.execute(query)).mappings().all())
