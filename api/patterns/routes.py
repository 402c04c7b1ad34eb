"""`/v1/incidents/patterns` (GET): patterns among the incidents started in the hours before
`as_of`."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter

from api.auth import AsOf, Tenant
from api.deps import Conn
from api.errors import ERROR_RESPONSES
from api.params import PatternLimit, WindowHours
from api.patterns import queries
from api.patterns.bodies import Pattern, Patterns
from domain.patterns import detect_patterns

router = APIRouter(prefix="/v1/incidents/patterns", tags=["analytics"], responses=ERROR_RESPONSES)


@router.get("", response_model=Patterns, summary="Patterns forming now")
async def get_patterns(
    tenant: Tenant,
    conn: Conn,
    as_of: AsOf,
    window_hours: WindowHours = 24,
    limit: PatternLimit = 10,
) -> Patterns:
    """Category clusters, severity spikes and cascades among incidents started in the window."""
    start = as_of - timedelta(hours=window_hours)
    members = await queries.pattern_candidates(conn, tenant, start, as_of)
    found = detect_patterns(members, start, as_of, limit)
    return Patterns(
        patterns=[Pattern.model_validate(p, from_attributes=True) for p in found],
        incidents_analyzed=await queries.count_started(conn, tenant, start, as_of),
        window_hours=window_hours,
        window_start=start,
        window_end=as_of,
        as_of=as_of,
    )
