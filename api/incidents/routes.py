"""`/v1/incidents` and the per-incident routes (GET only): parse, query, serialise.

An incident is addressed by `{incident_id:uuid}`: a path whose segment is no UUID never reaches
those routes, whatever else is registered under `/v1/incidents`. `any_id` serves the same
endpoints for every other segment, so that it is validated like a UUID parameter (a 422 naming
`incident_id`, or the incident for a UUID spelt otherwise); `create_app` includes it last.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter
from pydantic import TypeAdapter

from api.auth import AsOf, Tenant
from api.deps import AppSettings, Conn
from api.errors import ERROR_RESPONSES, not_found
from api.incidents import queries
from api.incidents.bodies import (
    IncidentDetail,
    IncidentEvents,
    IncidentList,
    IncidentSummary,
    Learnings,
    ResolutionSummary,
    RunIncidents,
    Timeline,
    TimelineEntry,
)
from api.incidents.listing import (
    IncidentFilters,
    IncidentId,
    LifecycleStateParam,
    PagedAsOf,
    RetentionDays,
    RunId,
    Since,
    SortByParam,
    SortField,
    SortOrder,
    TextFilter,
    Topic,
    TopicParam,
    check_order,
    default_sort,
    listed_states,
    page_of,
)
from api.params import Limit, Offset
from domain.contracts import CauseType, Severity
from domain.learnings import Resolved, insights
from domain.metrics import (
    SlaTargets,
    sla_status,
    time_to_containment,
    time_to_resolution,
    whole_ms,
)
from domain.rounding import money

router = APIRouter(prefix="/v1/incidents", tags=["incidents"], responses=ERROR_RESPONSES)
any_id = APIRouter(prefix="/v1/incidents", include_in_schema=False, responses=ERROR_RESPONSES)

_SUMMARIES = TypeAdapter(list[IncidentSummary])


def summaries(rows: list[dict[str, Any]]) -> list[IncidentSummary]:
    """Summaries of rows of the `IncidentSummary` fields (cost a Decimal), validated in one call."""
    for row in rows:
        row["cost_usd"] = money(row["cost_usd"])
    return _SUMMARIES.validate_python(rows)


@router.get("", response_model=IncidentList, summary="List incidents")
async def list_incidents(
    tenant: Tenant,
    conn: Conn,
    as_of: PagedAsOf,
    topic: TopicParam = None,
    lifecycle_state: LifecycleStateParam = None,
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
    sort_by: SortByParam = None,
    sort_order: SortOrder = SortOrder.DESC,
    limit: Limit = 20,
    offset: Offset = 0,
) -> IncidentList:
    check_order(started_after, started_before, "started_after", "started_before")
    check_order(resolved_after, resolved_before, "resolved_after", "resolved_before")
    filters = IncidentFilters(
        topic, lifecycle_state, retention_days, severity, category, cause_type, trigger_type,
        is_synthetic, started_after, started_before, resolved_after, resolved_before,
    )  # fmt: skip
    states = listed_states(topic, lifecycle_state)
    sort = sort_by or default_sort(topic)
    rows, total = await queries.list_incidents(
        conn, tenant, filters, states, as_of, (sort, sort_order), limit, offset
    )
    page = page_of(total, offset, len(rows))
    return IncidentList(
        items=summaries(rows),
        total=page.total,
        has_more=page.has_more,
        next_offset=page.next_offset,
        limit=limit,
        offset=offset,
        filters_applied=_filters_applied(tenant, filters, sort, sort_order, as_of),
        as_of=as_of,
    )


def _filters_applied(
    tenant: str, filters: IncidentFilters, sort: SortField, order: SortOrder, as_of: datetime
) -> dict[str, Any]:
    applied: dict[str, Any] = {"tenant_id": tenant, "topic": filters.topic}
    for name in IncidentFilters.__dataclass_fields__:
        value = getattr(filters, name)
        if name not in ("topic", "retention_days") and value is not None:
            applied[name] = value.isoformat() if isinstance(value, datetime) else value
    if filters.topic is Topic.HISTORICAL:
        applied["retention_days"] = filters.retention_days
        applied["cutoff_date"] = (as_of - timedelta(days=filters.retention_days)).isoformat()
    return applied | {"sort_by": sort, "sort_order": order}


@router.get("/by-run/{run_id}", response_model=RunIncidents, summary="Incidents of a run")
async def incidents_for_run(
    tenant: Tenant, conn: Conn, as_of: AsOf, run_id: RunId, limit: Limit = 20, offset: Offset = 0
) -> RunIncidents:
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
        as_of=as_of,
    )


@router.get("/{incident_id:uuid}", response_model=IncidentDetail, summary="One incident")
@any_id.get("/{incident_id}", response_model=IncidentDetail)
async def incident_detail(
    tenant: Tenant, conn: Conn, as_of: AsOf, settings: AppSettings, incident_id: IncidentId
) -> IncidentDetail:
    row = await queries.get_incident(conn, tenant, incident_id)
    if row is None:
        raise not_found("incident not found")
    return detail(row, as_of, settings.sla_targets())


def detail(row: Any, as_of: datetime, targets: SlaTargets) -> IncidentDetail:
    """The detail body of an incidents row; SLA status as of `as_of`."""
    started, acked, resolved = row["started_at"], row["acked_at"], row["resolved_at"]
    status = sla_status(row["severity"], started, resolved, as_of, targets)
    target = targets.for_severity(row["severity"])
    breakdown = {
        dimension: {key: {**entry, "cost_usd": str(entry["cost_usd"])} for key, entry in e.items()}
        for dimension, e in (row["breakdown"] or {}).items()
    }
    fields = {name: row[name] for name in IncidentDetail.model_fields if name in row}
    body: IncidentDetail = IncidentDetail.model_validate(
        fields
        | {
            "cost_usd": money(row["cost_usd"]),
            "related_call_ids_count": len(row["related_call_ids"]),
            "breakdown": breakdown,
            "time_to_containment_ms": whole_ms(time_to_containment(started, acked, resolved)),
            "time_to_resolution_ms": whole_ms(time_to_resolution(started, resolved)),
            "sla": {"target_seconds": int(target.total_seconds()), "status": status.value},
            "as_of": as_of,
        }
    )
    return body


@router.get("/{incident_id:uuid}/timeline", response_model=Timeline, summary="Lifecycle timeline")
@any_id.get("/{incident_id}/timeline", response_model=Timeline)
async def incident_timeline(
    tenant: Tenant, conn: Conn, as_of: AsOf, incident_id: IncidentId
) -> Timeline:
    if not await queries.incident_exists(conn, tenant, incident_id):
        raise not_found("incident not found")
    rows = await queries.timeline(conn, tenant, incident_id)
    entries = [TimelineEntry.model_validate(dict(row)) for row in rows]
    return Timeline(incident_id=incident_id, entries=entries, as_of=as_of)


@router.get(
    "/{incident_id:uuid}/events",
    response_model=IncidentEvents,
    summary="The incident's own events",
)
@any_id.get("/{incident_id}/events", response_model=IncidentEvents)
async def incident_events(
    tenant: Tenant,
    conn: Conn,
    as_of: AsOf,
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
            "items": [row | {"cost_usd": money(row["cost_usd"])} for row in rows],
            "total": page.total,
            "has_more": page.has_more,
            "next_offset": page.next_offset,
            "limit": limit,
            "offset": offset,
            "as_of": as_of,
        }
    )


def _resolved(row: Any) -> Resolved:
    resolution = time_to_resolution(row["started_at"], row["resolved_at"])
    return Resolved(row["incident_id"], row["resolution_method"], whole_ms(resolution))


def _resolution(row: Any, evidence_count: int) -> ResolutionSummary:
    resolved = _resolved(row)
    return ResolutionSummary(
        incident_id=resolved.incident_id,
        title=row["title"],
        category=row["category"],
        severity=row["severity"],
        resolution_method=resolved.resolution_method,
        time_to_resolution_ms=resolved.time_to_resolution_ms,
        evidence_count=evidence_count,
        recovery_attempted=False,
    )


@router.get(
    "/{incident_id:uuid}/learnings",
    response_model=Learnings,
    summary="Learnings from similar incidents",
)
@any_id.get("/{incident_id}/learnings", response_model=Learnings)
async def incident_learnings(
    tenant: Tenant, conn: Conn, as_of: AsOf, incident_id: IncidentId
) -> Learnings:
    """evidence_count: the incident's events; for similar incidents their calls_affected (one
    per event, so the same number) to avoid scanning other incidents' events. recovery_attempted
    is always false: incidentflow records no recovery actions."""
    row = await queries.get_incident(conn, tenant, incident_id)
    if row is None:
        raise not_found("incident not found")
    target = _resolution(row, await queries.count_events(conn, tenant, incident_id))
    similar_rows = await queries.similar_resolved(conn, tenant, row["category"], incident_id)
    similar = [_resolution(other, other["calls_affected"]) for other in similar_rows]
    found = insights(_resolved(row), [_resolved(other) for other in similar_rows])
    return Learnings.model_validate(
        {
            "incident_id": incident_id,
            "resolution_summary": target,
            "similar_incidents": similar,
            "insights": [asdict(insight) for insight in found],
            "generated_at": as_of,
            "as_of": as_of,
        }
    )
