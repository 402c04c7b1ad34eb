"""`/v1/incidents` and the per-incident routes (GET only): parse, query, serialise.

Static paths (`/metrics`, `/by-run/...`, and the analytics router's) are registered before
`/{incident_id}`, so they are never read as an id.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import AwareDatetime, TypeAdapter
from sqlalchemy.ext.asyncio import AsyncConnection

from api import queries
from api.auth import Tenant
from api.deps import as_of, connection
from api.errors import ERROR_RESPONSES, not_found
from api.learnings import Resolved, insights
from api.models import (
    IncidentDetail,
    IncidentEvents,
    IncidentList,
    IncidentMetrics,
    IncidentSummary,
    Learnings,
    ResolutionSummary,
    RunIncidents,
    Timeline,
    TimelineEntry,
)
from api.params import (
    NO_NUL,
    Limit,
    Offset,
    RetentionDays,
    SortField,
    SortOrder,
    TextFilter,
    Topic,
    WindowDays,
    check_order,
    default_sort,
    page_of,
)
from domain.contracts import CauseType, Severity
from domain.metrics import sla_status, time_to_containment, time_to_resolution
from domain.settings import Settings

router = APIRouter(prefix="/v1/incidents", tags=["incidents"], responses=ERROR_RESPONSES)

Conn = Annotated[AsyncConnection, Depends(connection)]
IncidentId = Annotated[uuid.UUID, Path(description="The incident's UUID.")]
Since = Annotated[AwareDatetime | None, Query(description="Inclusive; ISO 8601 with offset.")]
MILLISECOND = timedelta(milliseconds=1)


def _money(value: Any) -> str:
    return f"{value:f}"


def _ms(value: timedelta | None) -> int | None:
    return None if value is None else round(value / MILLISECOND)


_SUMMARIES = TypeAdapter(list[IncidentSummary])


def summaries(rows: list[dict[str, Any]]) -> list[IncidentSummary]:
    """Summaries of rows of the `IncidentSummary` fields (cost a Decimal), validated in one call."""
    for row in rows:
        row["cost_usd"] = _money(row["cost_usd"])
    return _SUMMARIES.validate_python(rows)


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


@router.get("", response_model=IncidentList, summary="List incidents")
async def list_incidents(
    tenant: Tenant,
    conn: Conn,
    topic: Annotated[
        Topic | None,
        Query(description="active (ACTIVE, ACKED), resolved, historical; absent: all."),
    ] = None,
    retention_days: RetentionDays = 30,
    severity: Severity | None = None,
    category: TextFilter = None,
    cause_type: CauseType | None = None,
    trigger_type: TextFilter = None,
    is_synthetic: bool | None = None,
    started_after: Since = None,
    started_before: Since = None,
    resolved_after: Since = None,
    resolved_before: Since = None,
    sort_by: Annotated[
        SortField | None,
        Query(description="Default: started_at (resolved_at for resolved and historical)."),
    ] = None,
    sort_order: SortOrder = SortOrder.DESC,
    limit: Limit = 20,
    offset: Offset = 0,
) -> IncidentList:
    check_order(started_after, started_before, "started_after", "started_before")
    check_order(resolved_after, resolved_before, "resolved_after", "resolved_before")
    now = await as_of(conn)
    filters = queries.IncidentFilters(
        topic, retention_days, severity, category, cause_type, trigger_type, is_synthetic,
        started_after, started_before, resolved_after, resolved_before,
    )  # fmt: skip
    sort = sort_by or default_sort(topic)
    rows, total = await queries.list_incidents(
        conn, tenant, filters, now, (sort, sort_order), limit, offset
    )
    page = page_of(total, offset, len(rows))
    return IncidentList(
        items=summaries(rows),
        total=page.total,
        has_more=page.has_more,
        next_offset=page.next_offset,
        limit=limit,
        offset=offset,
        filters_applied=_filters_applied(tenant, filters, sort, sort_order, now),
        as_of=now,
    )


def _filters_applied(
    tenant: str,
    filters: queries.IncidentFilters,
    sort: SortField,
    order: SortOrder,
    now: datetime,
) -> dict[str, Any]:
    applied: dict[str, Any] = {"tenant_id": tenant, "topic": filters.topic}
    for name in queries.IncidentFilters.__dataclass_fields__:
        value = getattr(filters, name)
        if name not in ("topic", "retention_days") and value is not None:
            applied[name] = value.isoformat() if isinstance(value, datetime) else value
    if filters.topic is Topic.HISTORICAL:
        applied["retention_days"] = filters.retention_days
        applied["cutoff_date"] = (now - timedelta(days=filters.retention_days)).isoformat()
    return applied | {"sort_by": sort, "sort_order": order}


@router.get("/metrics", response_model=IncidentMetrics, summary="Incident metrics and SLA")
async def incident_metrics(
    request: Request, tenant: Tenant, conn: Conn, window_days: WindowDays = 30
) -> IncidentMetrics:
    now = await as_of(conn)
    start = now - timedelta(days=window_days)
    row = await queries.incident_metrics(conn, tenant, start, now, _settings(request).sla_targets())
    met, breached = row["sla_met_count"], row["sla_breached_count"]
    rate = round(met / (met + breached) * 100, 2) if met + breached else None
    return IncidentMetrics.model_validate(
        {
            **row,
            "window_days": window_days,
            "window_start": start,
            "sla_compliance_rate": rate,
            "generated_at": now,
            "as_of": now,
        }
    )


@router.get("/by-run/{run_id}", response_model=RunIncidents, summary="Incidents of a run")
async def incidents_for_run(
    tenant: Tenant,
    conn: Conn,
    run_id: Annotated[str, Path(min_length=1, max_length=200, pattern=NO_NUL)],
    limit: Limit = 20,
    offset: Offset = 0,
) -> RunIncidents:
    now = await as_of(conn)
    rows, total = await queries.incidents_for_run(conn, tenant, run_id, limit, offset)
    page = page_of(total, offset, len(rows))
    return RunIncidents(
        run_id=run_id,
        incidents=summaries(rows),
        total=page.total,
        has_more=page.has_more,
        next_offset=page.next_offset,
        limit=limit,
        offset=offset,
        as_of=now,
    )


@router.get("/{incident_id}", response_model=IncidentDetail, summary="One incident")
async def incident_detail(
    request: Request, tenant: Tenant, conn: Conn, incident_id: IncidentId
) -> IncidentDetail:
    row = await queries.get_incident(conn, tenant, incident_id)
    if row is None:
        raise not_found("incident not found")
    now = await as_of(conn)
    return detail(row, now, _settings(request))


def detail(row: Any, now: datetime, settings: Settings) -> IncidentDetail:
    """The detail body of an incidents row; SLA status as of `now`."""
    targets = settings.sla_targets()
    started, acked, resolved = row["started_at"], row["acked_at"], row["resolved_at"]
    status = sla_status(row["severity"], started, resolved, now, targets)
    target = targets.for_severity(row["severity"])
    breakdown = {
        dimension: {key: {**entry, "cost_usd": str(entry["cost_usd"])} for key, entry in e.items()}
        for dimension, e in (row["breakdown"] or {}).items()
    }
    fields = {name: row[name] for name in IncidentDetail.model_fields if name in row}
    return IncidentDetail.model_validate(
        fields
        | {
            "cost_usd": _money(row["cost_usd"]),
            "related_call_ids_count": len(row["related_call_ids"]),
            "breakdown": breakdown,
            "time_to_containment_ms": _ms(time_to_containment(started, acked, resolved)),
            "time_to_resolution_ms": _ms(time_to_resolution(started, resolved)),
            "sla": {"target_seconds": int(target.total_seconds()), "status": status.value},
            "as_of": now,
        }
    )


@router.get("/{incident_id}/timeline", response_model=Timeline, summary="Lifecycle timeline")
async def incident_timeline(tenant: Tenant, conn: Conn, incident_id: IncidentId) -> Timeline:
    if not await queries.incident_exists(conn, tenant, incident_id):
        raise not_found("incident not found")
    rows = await queries.timeline(conn, tenant, incident_id)
    entries = [TimelineEntry.model_validate(dict(row)) for row in rows]
    return Timeline(incident_id=incident_id, entries=entries, as_of=await as_of(conn))


@router.get(
    "/{incident_id}/events", response_model=IncidentEvents, summary="The incident's own events"
)
async def incident_events(
    tenant: Tenant,
    conn: Conn,
    incident_id: IncidentId,
    limit: Limit = 20,
    offset: Offset = 0,
) -> IncidentEvents:
    if not await queries.incident_exists(conn, tenant, incident_id):
        raise not_found("incident not found")
    rows, total = await queries.incident_events(conn, tenant, incident_id, limit, offset)
    page = page_of(total, offset, len(rows))
    return IncidentEvents.model_validate(
        {
            "incident_id": incident_id,
            "items": [row | {"cost_usd": _money(row["cost_usd"])} for row in rows],
            "total": page.total,
            "has_more": page.has_more,
            "next_offset": page.next_offset,
            "limit": limit,
            "offset": offset,
            "as_of": await as_of(conn),
        }
    )


def _resolution(row: Any, evidence_count: int) -> ResolutionSummary:
    return ResolutionSummary(
        incident_id=row["incident_id"],
        title=row["title"],
        category=row["category"],
        severity=row["severity"],
        resolution_method=row["resolution_method"],
        time_to_resolution_ms=_ms(time_to_resolution(row["started_at"], row["resolved_at"])),
        evidence_count=evidence_count,
        recovery_attempted=False,
    )


def _resolved(item: ResolutionSummary) -> Resolved:
    return Resolved(
        item.incident_id,
        item.resolution_method,
        item.time_to_resolution_ms,
        item.recovery_attempted,
    )


@router.get(
    "/{incident_id}/learnings", response_model=Learnings, summary="Learnings from similar incidents"
)
async def incident_learnings(tenant: Tenant, conn: Conn, incident_id: IncidentId) -> Learnings:
    """evidence_count: the incident's events; for similar incidents their calls_affected (one
    per event, so the same number) to avoid scanning other incidents' events. recovery_attempted
    is always false: incidentflow records no recovery actions."""
    row = await queries.get_incident(conn, tenant, incident_id)
    if row is None:
        raise not_found("incident not found")
    target = _resolution(row, await queries.count_events(conn, tenant, incident_id))
    similar_rows = await queries.similar_resolved(conn, tenant, row["category"], incident_id)
    similar = [_resolution(other, other["calls_affected"]) for other in similar_rows]
    found = insights(_resolved(target), [_resolved(item) for item in similar])
    now = await as_of(conn)
    return Learnings.model_validate(
        {
            "incident_id": incident_id,
            "resolution_summary": target,
            "similar_incidents": similar,
            "insights": [asdict(insight) for insight in found],
            "generated_at": now,
            "as_of": now,
        }
    )
