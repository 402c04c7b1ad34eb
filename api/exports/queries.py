"""SQLAlchemy Core reads behind `/v1/incidents/{incident_id}/export`, all in one snapshot.

An export reads in one REPEATABLE READ, read-only transaction (`begin_snapshot`): the incident,
its timeline, its recurrence and every event it streams are of the same moment, however long the
stream takes. Every read is scoped by `tenant_id`: another tenant's incident is never loaded.
"""

from __future__ import annotations

import functools
import operator
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any
from typing import cast as cast_row

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    bindparam,
    cast,
    func,
    literal,
    null,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncTransaction

from domain.evidence import IncidentRow, LessonEntry, TimelineRow
from storage.schema import incident_timeline, incidents, llm_call_failures, policy_violations

EVENT_TABLES = {"llm_call_failure": llm_call_failures, "policy_violation": policy_violations}
"""The event tables by the `type` an event has in a bundle."""
EVENT_BATCH = 2000
"""Event rows fetched per round trip of the server-side cursor: what an export holds at once."""


async def begin_snapshot(conn: AsyncConnection) -> AsyncTransaction:
    """Begin the export's transaction on `conn`: REPEATABLE READ and READ ONLY, so that every
    read in it sees one snapshot. The caller ends it; closing the connection ends it too (the
    isolation level is reset when the connection goes back to the pool)."""
    if conn.in_transaction():
        await conn.rollback()  # the key lookup's (reads only)
    await conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
    return await conn.begin()


async def load_incident(
    conn: AsyncConnection, tenant_id: str, incident_id: uuid.UUID
) -> IncidentRow | None:
    """Every column of the tenant's incident, or None (also for another tenant's incident)."""
    query = select(incidents).where(
        incidents.c.incident_id == incident_id, incidents.c.tenant_id == tenant_id
    )
    row = (await conn.execute(query)).mappings().first()
    return None if row is None else cast_row(IncidentRow, dict(row))


async def load_timeline(
    conn: AsyncConnection, tenant_id: str, incident_id: uuid.UUID
) -> list[TimelineRow]:
    """The incident's timeline entries in order (time, then the order they were written)."""
    t = incident_timeline.c
    query = (
        select(t.kind, t.at, t.data)
        .where(t.incident_id == incident_id, t.tenant_id == tenant_id)
        .order_by(t.at, t.id)
    )
    rows = (await conn.execute(query)).mappings().all()
    return [TimelineRow(kind=row["kind"], at=row["at"], data=row["data"]) for row in rows]


async def load_lessons(
    conn: AsyncConnection, tenant_id: str, incident_id: uuid.UUID, as_of: datetime
) -> list[LessonEntry]:
    """The incident's lessons, with their state as of `as_of`, ordered by lesson id.

    The one place bundles read lessons from: no lesson is read yet, so every bundle lists none.
    Pointed at the lessons tables, it must stay scoped by `tenant_id` and read in the snapshot.
    """
    return []


async def count_recurrence(conn: AsyncConnection, incident: IncidentRow, window: timedelta) -> int:
    """Incidents of the same tenant and (opening) fingerprint that started in the `window`
    before this one started; this one is not counted."""
    c = incidents.c
    started = incident["started_at"]
    query = select(func.count()).where(
        c.tenant_id == incident["tenant_id"],
        c.fingerprint == incident["fingerprint"],
        c.started_at >= started - window,
        c.started_at < started,
        c.incident_id != incident["incident_id"],
    )
    return int((await conn.execute(query)).scalar_one())


def _names(table: Table) -> list[str]:
    """Column names as plain `str` (SQLAlchemy's are a subclass, which the canonical form
    writes only by its slow path)."""
    return [str(column.name) for column in table.columns]


def _union_names() -> list[str]:
    """The columns of the union of both event tables, after `type`: each name once."""
    return list(dict.fromkeys(name for table in EVENT_TABLES.values() for name in _names(table)))


@functools.cache
def _own_columns() -> dict[str, tuple[tuple[str, ...], operator.itemgetter[Any]]]:
    """By bundle `type`: its table's column names, and a getter of their values from a row of
    `_events_statement` (by position: a lookup by name per value cost more than the rest)."""
    positions = {name: index for index, name in enumerate(_union_names(), start=1)}
    found = {}
    for kind, table in EVENT_TABLES.items():
        names = tuple(_names(table))
        found[kind] = (names, operator.itemgetter(*(positions[name] for name in names)))
    return found


@functools.cache
def _events_statement() -> Select[Any]:
    """Both tables' rows of one incident (bind parameters `tenant_id`, `incident_id`), in one
    result: `type`, then every column of either table (null where the row's table has none), by
    occurred_at, then event_id, then type (the order of `/v1/incidents/{id}/events`)."""
    names = _union_names()
    types = {
        name: table.c[name].type
        for table in reversed(EVENT_TABLES.values())
        for name in _names(table)
    }
    selects = []
    for kind, table in EVENT_TABLES.items():
        columns: list[ColumnElement[Any]] = [literal(kind).label("type")]
        columns += [
            table.c[name] if name in table.c else cast(null(), types[name]).label(name)
            for name in names
        ]
        selects.append(
            select(*columns).where(
                table.c.incident_id == bindparam("incident_id"),
                table.c.tenant_id == bindparam("tenant_id"),
            )
        )
    events = union_all(*selects).subquery("events")
    return select(events).order_by(events.c.occurred_at, events.c.event_id, events.c.type)


async def stream_events(
    conn: AsyncConnection, tenant_id: str, incident_id: uuid.UUID
) -> AsyncIterator[dict[str, Any]]:
    """The incident's events, each as its own table's row plus `type`, read through a
    server-side cursor `EVENT_BATCH` rows at a time (in the caller's transaction)."""
    statement = _events_statement().execution_options(yield_per=EVENT_BATCH)
    result = await conn.stream(statement, {"tenant_id": tenant_id, "incident_id": incident_id})
    own = _own_columns()
    try:
        async for rows in result.partitions():
            for row in rows:
                kind = row[0]
                names, values = own[kind]
                event = dict(zip(names, values(row), strict=True))
                event["type"] = kind
                yield event
    finally:
        await result.close()
