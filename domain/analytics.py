"""What one incident snapshot contributes to the stream processors' tables. Pure functions.

A processor never aggregates incidents itself: each incident snapshot (an `incident.changes`
message, `domain.snapshot.IncidentSnapshot`) maps to its *contribution*:

- `counters`: row key -> additive counters, for the processor's counter table (hourly rollups,
  daily recurrence, daily cost). A table row is the sum of the contributions of the incidents
  that fall in it, so a newer snapshot is applied by adding `new - old` (`counter_delta`): an
  escalated severity moves the incident from one rollup row to another, a resolution adds its
  duration, and a version already applied adds nothing.
- `members`: membership rows of the incident (one per fingerprint, per pattern dimension, per
  lesson it teaches), which replace the incident's previous ones.

Row keys and members are NamedTuples whose field names are the table's column names; counter
names are column names too. The overflow incident (`trigger_type` `rate_limit_overflow`) counts in
rollups, recurrence and cost like any incident, but is never a pattern member: it aggregates the
events of unrelated incidents that the hourly cap turned away, so clustering it says nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Literal, NamedTuple, get_args

from domain.buckets import utc_day, utc_hour
from domain.incidents import OVERFLOW_TRIGGER
from domain.lessons import LessonMember, lesson_members
from domain.metrics import SlaTargets, time_to_resolution
from domain.snapshot import IncidentSnapshot, resolved_at

Counters = dict[str, int | Decimal]

ROLLUPS = "rollups"
RECURRENCE = "recurrence"
PATTERNS = "patterns"
COSTS = "costs"
LESSONS = "lessons"
PROCESSORS = (ROLLUPS, RECURRENCE, PATTERNS, COSTS, LESSONS)
"""Processor names: each keeps its own `processor_snapshots` rows."""

UNRESOLVED = "unresolved"
"""`recurrence_daily.resolution_method` of an incident that is not resolved."""
CATEGORY_CLUSTER = "category_cluster"
SEVERITY_SPIKE = "severity_spike"
CASCADE_FAILURE = "cascade_failure"
SPIKE_SEVERITIES = ("high", "critical")


class RollupKey(NamedTuple):
    tenant_id: str
    hour: datetime
    category: str
    severity: str
    cause_type: str


class RecurrenceKey(NamedTuple):
    tenant_id: str
    day: date
    category: str
    resolution_method: str


class CostKey(NamedTuple):
    tenant_id: str
    day: date
    dimension: str
    key: str


RowKey = RollupKey | RecurrenceKey | CostKey


class FingerprintMember(NamedTuple):
    """A `recurrence_fingerprints` row."""

    tenant_id: str
    fingerprint: str
    incident_id: uuid.UUID
    category: str
    started_at: datetime
    last_event_at: datetime
    reopen_count: int


class PatternMember(NamedTuple):
    """A `pattern_members` row: the incident counts toward (pattern_type, dimension)."""

    tenant_id: str
    pattern_type: str
    dimension: str
    incident_id: uuid.UUID
    started_at: datetime


Member = FingerprintMember | PatternMember | LessonMember


@dataclass(frozen=True, slots=True)
class Contribution:
    """What one snapshot adds to a processor's tables."""

    counters: dict[RowKey, Counters] = field(default_factory=dict)
    members: tuple[Member, ...] = ()


def contribution(processor: str, snapshot: IncidentSnapshot, sla: SlaTargets) -> Contribution:
    """The contribution of a snapshot to `processor`'s tables."""
    return _CONTRIBUTIONS[processor](snapshot, sla)


def recurrence_method(snapshot: IncidentSnapshot) -> str:
    """The `recurrence_daily.resolution_method` of the incident: its method if resolved (and
    named), else `unresolved`."""
    method = snapshot.resolution_method if resolved_at(snapshot) is not None else None
    return method or UNRESOLVED


def rollup_contribution(snapshot: IncidentSnapshot, sla: SlaTargets) -> Contribution:
    """One `incident_rollups_hourly` row: the incident's start hour (UTC) and classification;
    the time to resolution counts once the incident is resolved."""
    started, resolved = snapshot.started_at, resolved_at(snapshot)
    key = RollupKey(
        snapshot.tenant_id, utc_hour(started), snapshot.category, snapshot.severity,
        snapshot.cause_type,
    )  # fmt: skip
    resolution = time_to_resolution(started, resolved)
    counters: Counters = {
        "started": 1,
        "resolved": int(resolved is not None),
        "cost_usd": snapshot.cost_usd,
        "resolution_seconds_sum": _seconds(resolution),
        "resolution_count": int(resolution is not None),
    }
    return Contribution({key: counters})


def recurrence_contribution(snapshot: IncidentSnapshot, sla: SlaTargets) -> Contribution:
    """One `recurrence_daily` row (start day, category, resolution method) and one
    `recurrence_fingerprints` row per fingerprint of the incident."""
    key = RecurrenceKey(
        snapshot.tenant_id, utc_day(snapshot.started_at), snapshot.category,
        recurrence_method(snapshot),
    )  # fmt: skip
    counters: Counters = {"incidents": 1}
    members = tuple(
        FingerprintMember(
            snapshot.tenant_id,
            fingerprint,
            snapshot.incident_id,
            snapshot.category,
            snapshot.started_at,
            snapshot.last_event_at,
            snapshot.reopen_count,
        )
        for fingerprint in _distinct([snapshot.fingerprint, *snapshot.fingerprints])
    )
    return Contribution({key: counters}, members)


def pattern_contribution(snapshot: IncidentSnapshot, sla: SlaTargets) -> Contribution:
    """`pattern_members` rows: by category, by severity (high and critical), by each run id.

    The overflow incident is no member of any pattern (see the module docstring).
    """
    if snapshot.trigger_type == OVERFLOW_TRIGGER:
        return Contribution()
    dimensions = [(CATEGORY_CLUSTER, snapshot.category)]
    if snapshot.severity in SPIKE_SEVERITIES:
        dimensions.append((SEVERITY_SPIKE, snapshot.severity))
    dimensions.extend((CASCADE_FAILURE, run_id) for run_id in _distinct(snapshot.run_ids))
    members = tuple(
        PatternMember(
            snapshot.tenant_id, pattern_type, dimension, snapshot.incident_id, snapshot.started_at
        )
        for pattern_type, dimension in dimensions
    )
    return Contribution({}, members)


CostDimension = Literal["category", "model", "agent"]
COST_DIMENSIONS: tuple[CostDimension, ...] = get_args(CostDimension)
"""`cost_daily.dimension`: the incident's category, and the keys of its breakdown."""


def cost_contribution(snapshot: IncidentSnapshot, sla: SlaTargets) -> Contribution:
    """`cost_daily` rows of the start day: the category, and each model and agent of the
    breakdown, with the incident counted once in each."""
    tenant, day = snapshot.tenant_id, utc_day(snapshot.started_at)
    counters: dict[RowKey, Counters] = {
        CostKey(tenant, day, "category", snapshot.category): {
            "incidents": 1,
            "calls": snapshot.calls_affected,
            "cost_usd": snapshot.cost_usd,
        }
    }
    for dimension in COST_DIMENSIONS[1:]:
        for key, entry in snapshot.breakdown.get(dimension, {}).items():
            counters[CostKey(tenant, day, dimension, key)] = {
                "incidents": 1,
                "calls": entry.calls,
                "cost_usd": entry.cost_usd,
            }
    return Contribution(counters)


def lesson_contribution(snapshot: IncidentSnapshot, sla: SlaTargets) -> Contribution:
    """`lesson_members` rows: one per per-incident lesson rule that holds (`domain.lessons`).

    The `recurring_fingerprint` lessons have no rows of their own: they are assembled from the
    recurrence processor's `recurrence_fingerprints` rows.
    """
    return Contribution({}, lesson_members(snapshot))


_CONTRIBUTIONS: dict[str, Callable[[IncidentSnapshot, SlaTargets], Contribution]] = {
    ROLLUPS: rollup_contribution,
    RECURRENCE: recurrence_contribution,
    PATTERNS: pattern_contribution,
    COSTS: cost_contribution,
    LESSONS: lesson_contribution,
}


def add_counters(
    totals: dict[RowKey, Counters], counters: Mapping[RowKey, Counters], sign: int = 1
) -> None:
    """Add `sign` times `counters` into `totals`, row by row and counter by counter."""
    for key, values in counters.items():
        row = totals.setdefault(key, {})
        for name, value in values.items():
            row[name] = row.get(name, 0) + sign * value


def counter_delta(old: Contribution | None, new: Contribution) -> dict[RowKey, Counters]:
    """`new - old` (old None: nothing applied yet), without its zero counters and rows."""
    totals: dict[RowKey, Counters] = {}
    add_counters(totals, new.counters)
    if old is not None:
        add_counters(totals, old.counters, -1)
    return drop_zero_rows(totals)


def drop_zero_rows(totals: Mapping[RowKey, Counters]) -> dict[RowKey, Counters]:
    """`totals` without zero counters, and without rows left with none."""
    nonzero = {
        key: {name: value for name, value in row.items() if value} for key, row in totals.items()
    }
    return {key: row for key, row in nonzero.items() if row}


def newer_snapshots(
    snapshots: Iterable[IncidentSnapshot], stored_versions: Mapping[uuid.UUID, int]
) -> dict[uuid.UUID, IncidentSnapshot]:
    """Per incident id, the highest-version snapshot newer than the stored version (if any).

    Redelivered, replayed and out-of-order versions (`version <= stored`) are left out.
    """
    newest: dict[uuid.UUID, IncidentSnapshot] = {}
    for snapshot in snapshots:
        best = newest.get(snapshot.incident_id)
        if best is None or snapshot.version > best.version:
            newest[snapshot.incident_id] = snapshot
    return {
        incident_id: snapshot
        for incident_id, snapshot in newest.items()
        if snapshot.version > stored_versions.get(incident_id, -1)
    }


def _seconds(value: timedelta | None) -> Decimal:
    """Exact seconds of a duration (microseconds kept), 0 for None."""
    if value is None:
        return Decimal(0)
    return Decimal(value.days * 86400 + value.seconds) + Decimal(value.microseconds) / 1_000_000


def _distinct(values: Iterable[str]) -> list[str]:
    """The non-empty values, each once, in first-seen order."""
    return [value for value in dict.fromkeys(values) if value]
