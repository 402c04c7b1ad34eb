"""What one incident snapshot contributes to the stream processors' tables. Pure functions.

A processor never aggregates incidents itself: each incident snapshot (the JSON value of an
`incident.changes` message, see `Incident.snapshot`) maps to its *contribution*:

- `counters`: row key -> additive counters, for the processor's counter table (hourly rollups,
  daily recurrence, daily cost). A table row is the sum of the contributions of the incidents
  that fall in it, so a newer snapshot is applied by adding `new - old` (`counter_delta`): an
  escalated severity moves the incident from one rollup row to another, a resolution adds its
  durations and SLA outcome, and a version already applied adds nothing.
- `members`: membership rows of the incident (one per fingerprint, per pattern dimension), which
  replace the incident's previous ones.

Row keys and members are NamedTuples whose field names are the table's column names; counter
names are column names too. The overflow incident (`trigger_type` `rate_limit_overflow`) counts in
rollups, recurrence and cost like any incident, but is never a pattern member: it aggregates the
events of unrelated incidents that the hourly cap turned away, so clustering it says nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from domain.incidents import OVERFLOW_TRIGGER, SEVERITY_RANK, LifecycleState
from domain.metrics import (
    SlaStatus,
    SlaTargets,
    sla_status,
    time_to_containment,
    time_to_resolution,
)

Snapshot = Mapping[str, Any]
"""An incident snapshot as carried by the change feed (JSON-decoded)."""
Counters = dict[str, int | Decimal]

ROLLUPS = "rollups"
RECURRENCE = "recurrence"
PATTERNS = "patterns"
COSTS = "costs"
PROCESSORS = (ROLLUPS, RECURRENCE, PATTERNS, COSTS)
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
    trigger_type: str


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


Member = FingerprintMember | PatternMember


@dataclass(frozen=True, slots=True)
class Contribution:
    """What one snapshot adds to a processor's tables."""

    counters: dict[RowKey, Counters] = field(default_factory=dict)
    members: tuple[Member, ...] = ()


class InvalidChange(ValueError):
    """A change message that is not an incident snapshot this code can apply."""


_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "incident_id": str,
    "tenant_id": str,
    "trigger_type": str,
    "category": str,
    "cause_type": str,
    "severity": str,
    "lifecycle_state": str,
    "started_at": str,
    "last_event_at": str,
    "calls_affected": int,
    "cost_usd": (str, int, float),
    "reopen_count": int,
    "version": int,
}


def check_snapshot(value: object) -> Snapshot:
    """`value` if it is an incident snapshot with every field the processors read.

    Raises `InvalidChange` naming the first problem. Checks types and formats, so that computing
    a contribution of a checked snapshot cannot fail.
    """
    if not isinstance(value, dict):
        raise InvalidChange("not a JSON object")
    for name, kind in _REQUIRED.items():
        if not isinstance(value.get(name), kind) or isinstance(value.get(name), bool):
            raise InvalidChange(f"{name}: missing or not {kind}")
    try:
        uuid.UUID(value["incident_id"])
        for name in ("started_at", "last_event_at", "acked_at", "resolved_at"):
            if value.get(name) is not None:
                _time(value[name])
        Decimal(str(value["cost_usd"]))
        LifecycleState(value["lifecycle_state"])
        for name in ("fingerprints", "run_ids"):
            if not isinstance(value.get(name) or [], list):
                raise TypeError(f"{name} is not a list")
        for dimension in (value.get("breakdown") or {}).values():
            for entry in dimension.values():
                _check_entry(entry)
    except (ValueError, TypeError, KeyError, AttributeError, ArithmeticError) as error:
        raise InvalidChange(f"{type(error).__name__}: {error}") from None
    if value["severity"] not in SEVERITY_RANK:
        raise InvalidChange(f"severity: unknown {value['severity']!r}")
    return value


def _check_entry(entry: Mapping[str, Any]) -> None:
    if not isinstance(entry["calls"], int):
        raise TypeError("breakdown calls is not an integer")
    Decimal(str(entry["cost_usd"]))


def contribution(processor: str, snapshot: Snapshot, sla: SlaTargets) -> Contribution:
    """The contribution of a (checked) snapshot to `processor`'s tables."""
    return _CONTRIBUTIONS[processor](snapshot, sla)


def rollup_contribution(snapshot: Snapshot, sla: SlaTargets) -> Contribution:
    """One `incident_rollups_hourly` row: the incident's start hour (UTC) and classification.

    SLA met / breached count resolved incidents only; an open incident past its target is a
    breach only at query time (it depends on "now"), so it is not counted here.
    """
    started = _time(snapshot["started_at"])
    acked, resolved = _time_or_none(snapshot.get("acked_at")), _resolved_at(snapshot)
    key = RollupKey(
        snapshot["tenant_id"],
        started.replace(minute=0, second=0, microsecond=0),
        snapshot["category"],
        snapshot["severity"],
        snapshot["cause_type"],
        snapshot["trigger_type"],
    )
    containment = time_to_containment(started, acked, resolved)
    resolution = time_to_resolution(started, resolved)
    status = (
        sla_status(snapshot["severity"], started, resolved, resolved, sla)
        if resolved is not None
        else SlaStatus.PENDING
    )
    counters: Counters = {
        "started": 1,
        "acknowledged": int(acked is not None),
        "resolved": int(resolved is not None),
        "calls": snapshot["calls_affected"],
        "cost_usd": _money(snapshot["cost_usd"]),
        "containment_seconds_sum": _seconds(containment),
        "containment_count": int(containment is not None),
        "resolution_seconds_sum": _seconds(resolution),
        "resolution_count": int(resolution is not None),
        "sla_met": int(status is SlaStatus.MET),
        "sla_breached": int(status is SlaStatus.BREACHED),
    }
    return Contribution({key: counters})


def recurrence_contribution(snapshot: Snapshot, sla: SlaTargets) -> Contribution:
    """One `recurrence_daily` row (start day, category, resolution method) and one
    `recurrence_fingerprints` row per fingerprint of the incident."""
    started = _time(snapshot["started_at"])
    method = snapshot.get("resolution_method") if _resolved_at(snapshot) else None
    key = RecurrenceKey(
        snapshot["tenant_id"], started.date(), snapshot["category"], method or UNRESOLVED
    )
    counters: Counters = {"incidents": 1, "reopens": snapshot["reopen_count"]}
    members = tuple(
        FingerprintMember(
            snapshot["tenant_id"],
            fingerprint,
            uuid.UUID(snapshot["incident_id"]),
            snapshot["category"],
            started,
            _time(snapshot["last_event_at"]),
            snapshot["reopen_count"],
        )
        for fingerprint in _fingerprints(snapshot)
    )
    return Contribution({key: counters}, members)


def pattern_contribution(snapshot: Snapshot, sla: SlaTargets) -> Contribution:
    """`pattern_members` rows: by category, by severity (high and critical), by each run id.

    The overflow incident is no member of any pattern (see the module docstring).
    """
    if snapshot["trigger_type"] == OVERFLOW_TRIGGER:
        return Contribution()
    tenant, started = snapshot["tenant_id"], _time(snapshot["started_at"])
    incident_id = uuid.UUID(snapshot["incident_id"])
    dimensions = [(CATEGORY_CLUSTER, snapshot["category"])]
    if snapshot["severity"] in SPIKE_SEVERITIES:
        dimensions.append((SEVERITY_SPIKE, snapshot["severity"]))
    dimensions.extend((CASCADE_FAILURE, run_id) for run_id in _distinct(snapshot.get("run_ids")))
    members = tuple(
        PatternMember(tenant, pattern_type, dimension, incident_id, started)
        for pattern_type, dimension in dimensions
    )
    return Contribution({}, members)


def cost_contribution(snapshot: Snapshot, sla: SlaTargets) -> Contribution:
    """`cost_daily` rows of the start day: the category, and each model and agent of the
    breakdown, with the incident counted once in each."""
    tenant, day = snapshot["tenant_id"], _time(snapshot["started_at"]).date()
    counters: dict[RowKey, Counters] = {
        CostKey(tenant, day, "category", snapshot["category"]): {
            "incidents": 1,
            "calls": snapshot["calls_affected"],
            "cost_usd": _money(snapshot["cost_usd"]),
        }
    }
    breakdown = snapshot.get("breakdown") or {}
    for dimension in ("model", "agent"):
        for key, entry in (breakdown.get(dimension) or {}).items():
            counters[CostKey(tenant, day, dimension, key)] = {
                "incidents": 1,
                "calls": int(entry["calls"]),
                "cost_usd": _money(entry["cost_usd"]),
            }
    return Contribution(counters)


_CONTRIBUTIONS: dict[str, Callable[[Snapshot, SlaTargets], Contribution]] = {
    ROLLUPS: rollup_contribution,
    RECURRENCE: recurrence_contribution,
    PATTERNS: pattern_contribution,
    COSTS: cost_contribution,
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
    snapshots: Iterable[Snapshot], stored_versions: Mapping[str, int]
) -> dict[str, Snapshot]:
    """Per incident id, the highest-version snapshot newer than the stored version (if any).

    Redelivered, replayed and out-of-order versions (`version <= stored`) are left out.
    """
    newest: dict[str, Snapshot] = {}
    for snapshot in snapshots:
        incident_id = snapshot["incident_id"]
        best = newest.get(incident_id)
        if best is None or snapshot["version"] > best["version"]:
            newest[incident_id] = snapshot
    return {
        incident_id: snapshot
        for incident_id, snapshot in newest.items()
        if snapshot["version"] > stored_versions.get(incident_id, -1)
    }


def _time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"time without offset: {value!r}")
    return parsed.astimezone(UTC)


def _time_or_none(value: str | None) -> datetime | None:
    return _time(value) if value is not None else None


def _resolved_at(snapshot: Snapshot) -> datetime | None:
    if snapshot["lifecycle_state"] != LifecycleState.RESOLVED.value:
        return None
    return _time_or_none(snapshot.get("resolved_at"))


def _money(value: Any) -> Decimal:
    return Decimal(str(value))


def _seconds(value: timedelta | None) -> Decimal:
    """Exact seconds of a duration (microseconds kept), 0 for None."""
    if value is None:
        return Decimal(0)
    return Decimal(value.days * 86400 + value.seconds) + Decimal(value.microseconds) / 1_000_000


def _fingerprints(snapshot: Snapshot) -> list[str]:
    return _distinct([snapshot.get("fingerprint"), *(snapshot.get("fingerprints") or ())])


def _distinct(values: Iterable[Any] | None) -> list[str]:
    return [value for value in dict.fromkeys(values or ()) if isinstance(value, str) and value]
