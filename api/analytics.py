"""The incident analytics endpoints (GET only): patterns forming now, what keeps recurring and
what failures cost.

Every window ends at `as_of`; day-based windows (`baseline_days`) are UTC calendar days: the last
N days, the current one up to `as_of`. Incidents count by their `started_at`.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Query

from api import analytics_queries as q
from api.analytics_models import (
    CostImpact,
    CostImpactGroup,
    FingerprintRecurrence,
    Pattern,
    Patterns,
    RecurrenceGroup,
    Recurring,
)
from api.analytics_rules import money, round_half_up
from api.auth import Tenant
from api.deps import Conn, utc_as_of
from api.errors import ERROR_RESPONSES
from domain.patterns import detect_patterns

router = APIRouter(tags=["analytics"], responses=ERROR_RESPONSES)

WindowHours = Annotated[
    int, Query(ge=1, le=168, description="Hours before as_of (1-168).", examples=[24])
]
PatternLimit = Annotated[int, Query(ge=1, le=50, description="Patterns per type (1-50).")]
BaselineDays = Annotated[
    int, Query(ge=1, le=90, description="UTC days up to as_of (1-90).", examples=[30])
]
Threshold = Annotated[
    int, Query(ge=2, le=100, description="Least occurrences of a recurring group (2-100).")
]
GroupLimit = Annotated[int, Query(ge=1, le=50, description="Groups returned (1-50).")]


@router.get("/v1/incidents/patterns", response_model=Patterns, summary="Patterns forming now")
async def get_patterns(
    tenant: Tenant, conn: Conn, window_hours: WindowHours = 24, limit: PatternLimit = 10
) -> Patterns:
    """Category clusters, severity spikes and cascades among incidents started in the window."""
    end = await utc_as_of(conn)
    start = end - timedelta(hours=window_hours)
    members = await q.pattern_candidates(conn, tenant, start, end)
    found = detect_patterns(members, start, end, limit)
    return Patterns(
        patterns=[Pattern.model_validate(p, from_attributes=True) for p in found],
        incidents_analyzed=await q.count_started(conn, tenant, start, end),
        window_hours=window_hours,
        window_start=start,
        window_end=end,
        as_of=end,
    )


@router.get("/v1/incidents/recurring", response_model=Recurring, summary="What keeps recurring")
async def get_recurring(
    tenant: Tenant,
    conn: Conn,
    baseline_days: BaselineDays = 30,
    recurrence_threshold: Threshold = 3,
    limit: GroupLimit = 20,
) -> Recurring:
    """(category, resolution method) groups and fingerprints with >= threshold incidents."""
    end = await utc_as_of(conn)
    start = q.days_before(end, baseline_days - 1)
    ranked = await q.recurrence_groups(conn, tenant, start, end, recurrence_threshold, limit)
    keys = [(g.category, g.resolution_method) for g in ranked.rows]
    details = await q.group_occurrences(conn, tenant, start, end, keys)
    prints = await q.recurring_fingerprints(conn, tenant, start, end, recurrence_threshold, limit)
    return Recurring(
        groups=[_group(g, details[(g.category, g.resolution_method)]) for g in ranked.rows],
        fingerprints=[_fingerprint(row) for row in prints.rows],
        baseline_days=baseline_days,
        recurrence_threshold=recurrence_threshold,
        window_start=start,
        total_recurring=ranked.total_count,
        total_groups=ranked.total_groups,
        total_fingerprints=prints.total_groups,
        generated_at=end,
        as_of=end,
    )


def _group(group: q.RecurrenceGroupRow, seen: q.Occurrences) -> RecurrenceGroup:
    per_day = round_half_up(Decimal(group.total) / max(group.distinct_days, 1), 2)
    return RecurrenceGroup(
        category=group.category,
        resolution_method=group.resolution_method,
        total_occurrences=group.total,
        distinct_days=group.distinct_days,
        occurrences_per_day=float(per_day),
        first_occurrence=seen.first,
        last_occurrence=seen.last,
        recent_incident_ids=seen.recent_ids,
    )


def _fingerprint(row: q.FingerprintRow) -> FingerprintRecurrence:
    return FingerprintRecurrence(
        fingerprint=row.fingerprint,
        occurrences=row.occurrences,
        reopens=row.reopens,
        first_seen=row.first_seen,
        last_seen=row.last_seen,
        recent_incident_ids=row.recent_ids,
    )


@router.get("/v1/incidents/cost-impact", response_model=CostImpact, summary="What failures cost")
async def get_cost_impact(
    tenant: Tenant, conn: Conn, baseline_days: BaselineDays = 30, limit: GroupLimit = 20
) -> CostImpact:
    """Incidents with a cost by (category, resolution method); totals cover every group."""
    end = await utc_as_of(conn)
    start = q.days_before(end, baseline_days - 1)
    ranked = await q.cost_groups(conn, tenant, start, end, limit)
    return CostImpact(
        summaries=[
            CostImpactGroup(
                category=row.category,
                resolution_method=row.resolution_method,
                incident_count=row.incident_count,
                total_cost_impact=money(row.total_cost),
                avg_cost_impact=money(row.total_cost / row.incident_count),
            )
            for row in ranked.rows
        ],
        total_cost_impact=money(ranked.total_amount),
        total_incidents=ranked.total_count,
        total_groups=ranked.total_groups,
        baseline_days=baseline_days,
        window_start=start,
        generated_at=end,
        as_of=end,
    )
