"""`/v1/incidents/recurring` (GET): what keeps recurring among the incidents started in the last
`baseline_days` UTC days up to `as_of` (the current day up to `as_of`)."""

from __future__ import annotations

from decimal import Decimal

from fastapi import APIRouter

from api.auth import AsOf, Tenant
from api.deps import Conn
from api.errors import ERROR_RESPONSES
from api.params import BaselineDays, GroupLimit, Threshold
from api.recurrence import queries as q
from api.recurrence.bodies import FingerprintRecurrence, RecurrenceGroup, Recurring
from domain.buckets import days_before
from domain.rounding import round_half_up

router = APIRouter(prefix="/v1/incidents/recurring", tags=["analytics"], responses=ERROR_RESPONSES)


@router.get("", response_model=Recurring, summary="What keeps recurring")
async def get_recurring(
    tenant: Tenant,
    conn: Conn,
    as_of: AsOf,
    baseline_days: BaselineDays = 30,
    recurrence_threshold: Threshold = 3,
    limit: GroupLimit = 20,
) -> Recurring:
    """(category, resolution method) groups and fingerprints with >= threshold incidents."""
    start = days_before(as_of, baseline_days - 1)
    ranked = await q.recurrence_groups(conn, tenant, start, as_of, recurrence_threshold, limit)
    keys = [(g.category, g.resolution_method) for g in ranked.rows]
    details = await q.group_occurrences(conn, tenant, start, as_of, keys)
    prints = await q.recurring_fingerprints(conn, tenant, start, as_of, recurrence_threshold, limit)
    return Recurring(
        groups=[_group(g, details[(g.category, g.resolution_method)]) for g in ranked.rows],
        fingerprints=[_fingerprint(row) for row in prints.rows],
        baseline_days=baseline_days,
        recurrence_threshold=recurrence_threshold,
        window_start=start,
        total_recurring=ranked.total_count,
        total_groups=ranked.total_groups,
        total_fingerprints=prints.total_groups,
        generated_at=as_of,
        as_of=as_of,
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
