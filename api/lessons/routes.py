"""`/v1/lessons`, `/v1/lessons/stats` and `/v1/lessons/{lesson_id}` (GET): lessons learned.

Lessons are kept by the lessons processor and triaged by commands on the lesson commands topic;
these routes only read them. A lesson of another tenant answers 404, as one that does not exist.
`/stats` is registered before `/{lesson_id}`, which validates any other segment as a UUID.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from api.auth import AsOf, Tenant
from api.deps import Conn
from api.errors import ERROR_RESPONSES, not_found
from api.incidents.listing import page_of
from api.lessons import queries
from api.lessons.bodies import (
    SUMMARY_INCIDENT_IDS,
    LessonDetail,
    LessonList,
    LessonStatsBody,
    LessonSummary,
)
from api.params import Limit, Offset
from domain.lesson_triage import LessonState, stats_of_counts
from domain.lessons import LessonKind

router = APIRouter(prefix="/v1/lessons", tags=["lessons"], responses=ERROR_RESPONSES)

StateParam = Annotated[
    LessonState | None,
    Query(description="The state at as_of (a deferral whose time has come is pending)."),
]
KindParam = Annotated[LessonKind | None, Query(description="The rule that made the lesson.")]
LessonId = Annotated[uuid.UUID, Path(description="The lesson's UUID.")]


def _shown(row: dict[str, Any]) -> dict[str, Any]:
    """A row as a body shows it: `deferred_until` only while the lesson is deferred."""
    if row["state"] != LessonState.DEFERRED:
        row["deferred_until"] = None
    return row


@router.get("", response_model=LessonList, summary="List lessons")
async def list_lessons(
    tenant: Tenant,
    conn: Conn,
    as_of: AsOf,
    state: StateParam = None,
    kind: KindParam = None,
    limit: Limit = 20,
    offset: Offset = 0,
) -> LessonList:
    """The tenant's lessons, newest first, by state at as_of and by kind."""
    filters = {
        name: value.value for name, value in (("state", state), ("kind", kind)) if value is not None
    }
    rows, total = await queries.list_lessons(
        conn, tenant, as_of, filters, SUMMARY_INCIDENT_IDS, limit, offset
    )
    page = page_of(total, offset, len(rows))
    return LessonList(
        items=[LessonSummary.model_validate(_shown(row)) for row in rows],
        total=page.total,
        has_more=page.has_more,
        next_offset=page.next_offset,
        limit=limit,
        offset=offset,
        filters_applied={"tenant_id": tenant, **filters},
        as_of=as_of,
    )


@router.get("/stats", response_model=LessonStatsBody, summary="Lessons by state and kind")
async def lesson_stats(tenant: Tenant, conn: Conn, as_of: AsOf) -> LessonStatsBody:
    """The tenant's lessons counted by state at as_of, by kind, and by both."""
    stats = stats_of_counts(await queries.lesson_counts(conn, tenant, as_of))
    return LessonStatsBody(
        total=stats.total,
        by_state=stats.by_state,
        by_kind=stats.by_kind,
        by_kind_and_state=stats.by_kind_and_state,
        as_of=as_of,
    )


@router.get("/{lesson_id}", response_model=LessonDetail, summary="One lesson")
async def lesson_detail(
    tenant: Tenant, conn: Conn, as_of: AsOf, lesson_id: LessonId
) -> LessonDetail:
    """The lesson, every incident behind it, its triage record and the commands applied."""
    row = await queries.get_lesson(conn, tenant, lesson_id, as_of)
    if row is None:
        raise not_found("lesson not found")
    return LessonDetail.model_validate(_shown(row) | {"as_of": as_of})
