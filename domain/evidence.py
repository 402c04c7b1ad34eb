"""The evidence bundle of an incident, and what every bundle kind is built from. Pure functions.

A bundle is built from plain data (`BundleSource`: the incident row, its timeline, the rules'
configuration, its lessons, `as_of`) and the incident's events, which are streamed
(`domain.bundles.stream_bundle`): `evidence_parts(source)` is the bundle without its events, and
`evidence_event(row)` maps each event row. Nothing reads a clock: `generated_at` is `as_of`, and
the same rows at the same `as_of` give the same bytes.

The evidence bundle (`kind` `evidence`) holds:

- `incident`: every stored field of the incident row except the processing-time ones
  (`PROCESSING_FIELDS`: the worker partition, the wall-clock `updated_at` and the batch's
  `created_watermark`), so that two databases built from the same log export the same bundle;
- `derived`: the one-line description, times to containment and resolution (whole
  milliseconds) and the SLA target, deadline and status as of `as_of`;
- `timeline`: its entries in order (`kind`, `at`, `data`);
- `events`: every event applied to it (the evidence), in the order given (the API reads them by
  `occurred_at`, then `event_id`), each row with a `type` (`llm_call_failure` or
  `policy_violation`) and without `received_at` (processing time);
- `configuration`: the aggregation rules and SLA targets the incident was computed under;
- `bundle_id` (`bundle_id`), `kind`, `tenant_id`, `incident_id`, `as_of`, `generated_at`,
  `generated_by`, `bundle_version`.

Free-form JSON (event `metadata` and `evidence`, timeline `data`) passes through
`domain.bundles.plain_json`: a non-integer number there is written as a decimal string.
"""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from typing import Any, TypedDict

from domain.canonical import canonical, plain_json
from domain.config import AggregationConfig
from domain.descriptions import describe_row
from domain.incidents import LifecycleState
from domain.metrics import SlaTargets, sla_status, time_to_containment, time_to_resolution

BUNDLE_VERSION = 1
GENERATED_BY = "incidentflow"
PROCESSING_FIELDS = frozenset({"partition", "updated_at", "created_watermark"})
"""Incident columns left out of bundles: where and when a worker wrote the row, not facts of
the incident (a replay of the same log writes other values: the wall clock, and the watermark
committed before the batch that created the incident, which depends on how the log was cut into
batches)."""
EVENT_PROCESSING_FIELDS = frozenset({"received_at"})
FREE_FORM_EVENT_FIELDS = ("metadata", "evidence")


class BundleKind(StrEnum):
    EVIDENCE = "evidence"
    SOC2 = "soc2"
    DEBRIEF = "debrief"


BUNDLE_ID_PREFIXES = {
    BundleKind.EVIDENCE: "EVD",
    BundleKind.SOC2: "SOC2",
    BundleKind.DEBRIEF: "DEB",
}


class IncidentRow(TypedDict):
    """A row of the `incidents` table, every column (as `select(incidents)` returns it).

    Columns added later pass into the bundle too: the builders copy every key but
    `PROCESSING_FIELDS`, and read the ones declared here.
    """

    incident_id: uuid.UUID
    tenant_id: str
    trigger_type: str
    fingerprint: str
    fingerprints: list[str]
    category: str
    cause_type: str
    title: str
    severity: str
    lifecycle_state: str
    started_at: datetime
    opened_at: datetime
    last_event_at: datetime
    acked_at: datetime | None
    acked_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    resolution_method: str | None
    calls_affected: int
    related_call_ids: list[str]
    run_ids: list[str]
    cost_usd: Decimal
    reopen_count: int
    absorbed: dict[str, dict[str, int]]
    breakdown: dict[str, dict[str, dict[str, Any]]]
    is_synthetic: bool
    version: int


class TimelineRow(TypedDict):
    """A row of `incident_timeline` as the API reads it (`kind`, `at`, `data`), in order."""

    kind: str
    at: datetime
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class LessonEntry:
    """A lesson of the incident as bundles show it (from the lessons table, state effective at
    the bundle's `as_of`)."""

    lesson_id: uuid.UUID
    kind: str
    state: str
    proposed_action: str


@dataclass(frozen=True, slots=True)
class BundleSource:
    """Everything a bundle is built from but the events. `as_of` is the read's watermark."""

    incident: IncidentRow
    timeline: Sequence[TimelineRow]
    rules: AggregationConfig
    sla: SlaTargets
    as_of: datetime
    lessons: Sequence[LessonEntry] = ()


@dataclass(frozen=True, slots=True)
class Derived:
    """What the rows imply as of `as_of`: times (None while not reached) and the SLA."""

    contained_at: datetime | None
    resolved_at: datetime | None
    time_to_containment: timedelta | None
    time_to_resolution: timedelta | None
    sla_target: timedelta
    sla_deadline: datetime
    sla_status: str


def derive(source: BundleSource) -> Derived:
    """The derived times and SLA status of the source's incident as of its `as_of`."""
    row = source.incident
    started, acked = row["started_at"], row["acked_at"]
    resolved = row["resolved_at"] if row["lifecycle_state"] == LifecycleState.RESOLVED else None
    target = source.sla.for_severity(row["severity"])
    return Derived(
        contained_at=acked or resolved,
        resolved_at=resolved,
        time_to_containment=time_to_containment(started, acked, resolved),
        time_to_resolution=time_to_resolution(started, resolved),
        sla_target=target,
        sla_deadline=started + target,
        sla_status=sla_status(row["severity"], started, resolved, source.as_of, source.sla).value,
    )


def milliseconds(value: timedelta | None) -> int | None:
    """Whole milliseconds (half to even, computed exactly), None for None."""
    if value is None:
        return None
    return round(Fraction(value // timedelta(microseconds=1), 1000))


def seconds(value: timedelta) -> int:
    """Whole seconds (rounded down)."""
    return value // timedelta(seconds=1)


def bundle_id(kind: BundleKind, incident_id: uuid.UUID | str, as_of: datetime) -> str:
    """`<prefix>-<12 hex>`: the first 12 hex digits of the SHA-256 of the canonical form of
    `[kind, incident id, as_of]`, so the same export asked twice has the same id."""
    digest = hashlib.sha256(canonical([kind.value, str(incident_id), as_of])).hexdigest()
    return f"{BUNDLE_ID_PREFIXES[kind]}-{digest[:12]}"


def common_parts(source: BundleSource, kind: BundleKind) -> dict[str, Any]:
    """The keys every bundle kind starts with."""
    row = source.incident
    return {
        "as_of": source.as_of,
        "bundle_id": bundle_id(kind, row["incident_id"], source.as_of),
        "bundle_version": BUNDLE_VERSION,
        "generated_at": source.as_of,
        "generated_by": GENERATED_BY,
        "incident_id": row["incident_id"],
        "kind": kind.value,
        "tenant_id": row["tenant_id"],
    }


def evidence_parts(source: BundleSource, kind: BundleKind = BundleKind.EVIDENCE) -> dict[str, Any]:
    """The evidence bundle without its `events` (module docstring)."""
    return common_parts(source, kind) | {
        "configuration": configuration(source.rules, source.sla),
        "derived": derived_json(source),
        "incident": incident_json(source.incident),
        "timeline": [timeline_json(entry) for entry in source.timeline],
    }


def incident_json(row: Mapping[str, Any]) -> dict[str, Any]:
    """Every stored field of an incident row but `PROCESSING_FIELDS`."""
    return {name: plain_json(value) for name, value in row.items() if name not in PROCESSING_FIELDS}


def derived_json(source: BundleSource) -> dict[str, Any]:
    found = derive(source)
    return {
        "description": describe_row(source.incident),
        "time_to_containment_ms": milliseconds(found.time_to_containment),
        "time_to_resolution_ms": milliseconds(found.time_to_resolution),
        "sla": {
            "target_seconds": seconds(found.sla_target),
            "deadline": found.sla_deadline,
            "status": found.sla_status,
        },
    }


def timeline_json(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {"kind": entry["kind"], "at": entry["at"], "data": plain_json(entry["data"] or {})}


def configuration(rules: AggregationConfig, sla: SlaTargets) -> dict[str, Any]:
    """The rules' configuration as bundles record it (seconds, counts)."""
    aggregation = {
        name: list(value) if isinstance(value, tuple) else value
        for name, value in dataclasses.asdict(rules).items()
    }
    targets = {item.name: seconds(getattr(sla, item.name)) for item in dataclasses.fields(sla)}
    return {"aggregation": aggregation, "sla_target_seconds": targets}


def evidence_event(row: Mapping[str, Any]) -> dict[str, Any]:
    """An event row (either table, with its `type`) as the bundle's `events` hold it."""
    event = {name: value for name, value in row.items() if name not in EVENT_PROCESSING_FIELDS}
    for name in FREE_FORM_EVENT_FIELDS:
        if event.get(name) is not None:
            event[name] = plain_json(event[name])
    return event
