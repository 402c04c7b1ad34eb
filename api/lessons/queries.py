"""Selects behind `/v1/lessons`: a page of a tenant's lessons, one lesson, and the counts.

A lesson's state is read at `as_of` with the SQL twin of the triage rule (`storage.rules.
lesson_state`), so the state filter and the counts agree with the state a body shows. A page's
lesson ids are chosen from `ix_lessons_tenant_first_seen` (or `ix_lessons_tenant_kind_first_seen`
with a kind) alone, and only its rows are then read: a lesson row is wide (its incident ids).
Triage rows are joined on the tenant too, so that a tenant's are read by
`ix_lesson_triage_tenant`, not every tenant's. The statements are built once per shape and reused
(values are bind parameters).
"""

from __future__ import annotations

import functools
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, bindparam, func, select, text
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncConnection

from api.windows import AS_OF, TENANT
from storage.analytics_schema import lesson_commands, lesson_triage, lessons
from storage.rules import lesson_state

_state = lesson_state(lesson_triage.c.state, lesson_triage.c.deferred_until, AS_OF).label("state")
_JOINED = lessons.outerjoin(
    lesson_triage,
    and_(
        lesson_triage.c.lesson_id == lessons.c.lesson_id,
        lesson_triage.c.tenant_id == lessons.c.tenant_id,
    ),
)
_COLUMNS = [
    *(lessons.c[name] for name in ("lesson_id", "tenant_id", "kind", "subject", "incident_count")),
    _state,
    lesson_triage.c.deferred_until,
    lessons.c.proposed_action,
    lessons.c.first_seen,
    lessons.c.last_seen,
    lesson_triage.c.changed_at,
    lesson_triage.c.changed_by,
]


def _conditions(state: bool, kind: bool) -> list[Any]:
    conditions: list[Any] = [lessons.c.tenant_id == TENANT]
    if kind:
        conditions.append(lessons.c.kind == bindparam("kind"))
    if state:
        conditions.append(_state == bindparam("state"))
    return conditions


_ORDER = (lessons.c.first_seen.desc(), lessons.c.lesson_id.desc())


@functools.cache
def _page(state: bool, kind: bool, ids: int) -> Select[Any]:
    conditions = _conditions(state, kind)
    chosen = (
        select(lessons.c.lesson_id)
        .select_from(_JOINED if state else lessons)
        .where(*conditions)
        .order_by(*_ORDER)
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
        .subquery()
    )
    return (
        select(
            *_COLUMNS,
            lessons.c.incident_ids[1:ids].label("incident_ids"),
            _count(state, kind).scalar_subquery().label("total"),
        )
        .select_from(_JOINED.join(chosen, chosen.c.lesson_id == lessons.c.lesson_id))
        .order_by(*_ORDER)
    )


@functools.cache
def _count(state: bool, kind: bool) -> Select[Any]:
    source = _JOINED if state else lessons
    return select(func.count()).select_from(source).where(*_conditions(state, kind))


async def list_lessons(
    conn: AsyncConnection,
    tenant: str,
    as_of: datetime,
    filters: dict[str, str],
    ids: int,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    """One page of the tenant's lessons (`filters`: `state` and `kind` if given), each with its
    first `ids` incident ids, and the total matching."""
    state, kind = "state" in filters, "kind" in filters
    parameters = {"tenant": tenant, "as_of": as_of, **filters}
    result = await conn.execute(
        _page(state, kind, ids), {**parameters, "limit": limit, "offset": offset}
    )
    rows = [dict(row) for row in result.mappings()]
    if rows:
        total = int(rows[0].pop("total"))
        for row in rows[1:]:
            del row["total"]
    elif offset == 0:
        total = 0
    else:  # a page past the end says nothing about the total: count
        total = int((await conn.execute(_count(state, kind), parameters)).scalar_one())
    return rows, total


HISTORY_FIELDS = ("command_id", "action", "issued_at", "issued_by", "until", "policy_draft", "note")


@functools.cache
def _lesson() -> Select[Any]:
    c = lesson_commands.c
    entry = func.json_build_object(*(part for name in HISTORY_FIELDS for part in (name, c[name])))
    history = (
        select(func.coalesce(func.json_agg(aggregate_order_by(entry, c.issued_at, c.command_id)),
                             text("'[]'::json")))
        .where(c.tenant_id == lessons.c.tenant_id, c.lesson_id == lessons.c.lesson_id)
        .scalar_subquery()
    )  # fmt: skip
    return (
        select(
            *_COLUMNS,
            lessons.c.incident_ids,
            lesson_triage.c.policy_draft,
            lesson_triage.c.note,
            func.coalesce(lesson_triage.c.commands, 0).label("commands"),
            history.label("history"),
        )
        .select_from(_JOINED)
        .where(lessons.c.tenant_id == TENANT, lessons.c.lesson_id == bindparam("lesson_id"))
    )


async def get_lesson(
    conn: AsyncConnection, tenant: str, lesson_id: uuid.UUID, as_of: datetime
) -> dict[str, Any] | None:
    """The tenant's lesson with its triage record and `history` (the applied commands as JSON
    objects of `HISTORY_FIELDS`, by `issued_at`), or None when the tenant has no such lesson."""
    parameters = {"tenant": tenant, "lesson_id": lesson_id, "as_of": as_of}
    row = (await conn.execute(_lesson(), parameters)).mappings().first()
    return dict(row) if row is not None else None


@functools.cache
def _stats() -> Select[Any]:
    # Grouped outside: GROUP BY "state" would name the triage column, not the state at as_of.
    states = select(lessons.c.kind, _state).select_from(_JOINED).where(*_conditions(False, False))
    inner = states.subquery()
    return select(inner.c.kind, inner.c.state, func.count()).group_by(inner.c.kind, inner.c.state)


async def lesson_counts(
    conn: AsyncConnection, tenant: str, as_of: datetime
) -> dict[tuple[str, str], int]:
    """The tenant's lessons counted by (kind, state at `as_of`)."""
    rows = await conn.execute(_stats(), {"tenant": tenant, "as_of": as_of})
    return {(kind, state): int(count) for kind, state, count in rows}
