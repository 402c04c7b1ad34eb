"""The SOC 2 bundle: the evidence bundle mapped to the incident-response controls. Pure.

`soc2_parts(source)` is the evidence bundle (without its streamed `events`) with `kind` `soc2`,
plus `controls` and `attestation`. Each control lists the facts this incident shows for it and
checks over those facts; the first check (in italics) is the control's baseline:

- CC7.2 detection (anomalies are detected): *events recorded*; creation recorded in the
  timeline;
- CC7.3 evaluation (events are evaluated): *severity assigned*; classified by trigger type,
  category and cause;
- CC7.4 response (incidents are contained): *contained* (acknowledged or resolved); a person
  responded (acknowledged it, or resolved it by a command rather than by auto-resolve);
- CC7.5 recovery (the entity recovers): *resolved*; within its SLA target; stayed resolved
  (never reopened).

Status rule: `demonstrated` when every check holds; `not_demonstrated` when the baseline fails;
`partial` otherwise. Checks and facts are evaluated as of the bundle's `as_of`.

The attestation states what the bundle covers and that the system (not a person) generated it.
It cannot hold its own hash: the integrity hash is the file's, in the `integrity` block beside the
bundle, and covers the attestation too. Counts are printed as numbers, zero included.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from domain.canonical import FORM, format_time
from domain.evidence import (
    BundleKind,
    BundleSource,
    Derived,
    derive,
    evidence_parts,
    milliseconds,
    seconds,
)
from domain.incidents import SEVERITY_RANK, TimelineKind

ATTESTED_BY = "incidentflow, automatically, from its stored incident, timeline and events"
COMMAND_ENTRIES = (TimelineKind.ACKNOWLEDGED.value, TimelineKind.RESOLVED.value)
CREATION_ENTRIES = (TimelineKind.CREATED.value, TimelineKind.OVERFLOW_STARTED.value)


class ControlStatus(StrEnum):
    DEMONSTRATED = "demonstrated"
    PARTIAL = "partial"
    NOT_DEMONSTRATED = "not_demonstrated"


STATUS_RULE = (
    "demonstrated when every check holds; not_demonstrated when the first check (the "
    "control's baseline) fails; partial otherwise"
)


@dataclass(frozen=True, slots=True)
class Control:
    control_id: str
    name: str
    criterion: str
    facts: Callable[[BundleSource, Derived], dict[str, Any]]
    checks: Callable[[BundleSource, Derived], list[tuple[str, bool]]]


def status_of(checks: Sequence[tuple[str, bool]]) -> ControlStatus:
    """The status rule (module docstring) over `(check, holds)` pairs, baseline first."""
    if not checks or not checks[0][1]:
        return ControlStatus.NOT_DEMONSTRATED
    if all(holds for _, holds in checks):
        return ControlStatus.DEMONSTRATED
    return ControlStatus.PARTIAL


def _entries(source: BundleSource, kinds: Sequence[str]) -> list[Mapping[str, Any]]:
    return [entry for entry in source.timeline if entry["kind"] in kinds]


def _detection_facts(source: BundleSource, derived: Derived) -> dict[str, Any]:
    row = source.incident
    created = _entries(source, CREATION_ENTRIES)
    detected_at = created[0]["at"] if created else None
    lag = detected_at - row["started_at"] if detected_at is not None else None
    return {
        "first_event_at": row["started_at"],
        "detected_at": detected_at,
        "detection_lag_ms": milliseconds(lag),
        "events_recorded": row["calls_affected"],
        "trigger_type": row["trigger_type"],
        "fingerprints": list(row["fingerprints"]) or [row["fingerprint"]],
        "grouping": "events of one tenant, trigger type and fingerprint form one incident",
    }


def _detection_checks(source: BundleSource, derived: Derived) -> list[tuple[str, bool]]:
    return [
        ("events recorded", source.incident["calls_affected"] >= 1),
        ("creation recorded in the timeline", bool(_entries(source, CREATION_ENTRIES))),
    ]


def _evaluation_facts(source: BundleSource, derived: Derived) -> dict[str, Any]:
    row = source.incident
    escalations = _entries(source, (TimelineKind.SEVERITY_ESCALATED.value,))
    created = _entries(source, (TimelineKind.CREATED.value,))
    return {
        "severity": row["severity"],
        "initial_severity": created[0]["data"].get("severity") if created else None,
        "escalations": [
            {"at": entry["at"], "from": entry["data"].get("from"), "to": entry["data"].get("to")}
            for entry in escalations
        ],
        "classification": {
            "trigger_type": row["trigger_type"],
            "category": row["category"],
            "cause_type": row["cause_type"],
        },
        "severity_thresholds_calls": list(source.rules.severity_thresholds),
    }


def _evaluation_checks(source: BundleSource, derived: Derived) -> list[tuple[str, bool]]:
    row = source.incident
    classified = all(row[name] for name in ("trigger_type", "category", "cause_type"))
    return [
        ("severity assigned", row["severity"] in SEVERITY_RANK),
        ("classified by trigger type, category and cause", classified),
    ]


def _response_facts(source: BundleSource, derived: Derived) -> dict[str, Any]:
    row = source.incident
    return {
        "acknowledged_at": row["acked_at"],
        "acknowledged_by": row["acked_by"],
        "contained_at": derived.contained_at,
        "time_to_containment_ms": milliseconds(derived.time_to_containment),
        "commands": [
            {
                "kind": entry["kind"],
                "at": entry["at"],
                "by": entry["data"].get("by"),
                "method": entry["data"].get("method"),
                "note": entry["data"].get("note"),
            }
            for entry in _entries(source, COMMAND_ENTRIES)
        ],
    }


def _response_checks(source: BundleSource, derived: Derived) -> list[tuple[str, bool]]:
    row = source.incident
    by_command = derived.resolved_at is not None and row["resolution_method"] != "auto"
    responded = row["acked_at"] is not None or by_command
    return [
        ("contained (acknowledged or resolved)", derived.contained_at is not None),
        ("a person responded (acknowledged, or resolved by a command)", responded),
    ]


def _recovery_facts(source: BundleSource, derived: Derived) -> dict[str, Any]:
    row = source.incident
    return {
        "resolved_at": derived.resolved_at,
        "resolved_by": row["resolved_by"] if derived.resolved_at is not None else None,
        "resolution_method": row["resolution_method"] if derived.resolved_at is not None else None,
        "time_to_resolution_ms": milliseconds(derived.time_to_resolution),
        "sla": {"target_seconds": seconds(derived.sla_target), "status": derived.sla_status},
        "reopen_count": row["reopen_count"],
        "reopened_at": [entry["at"] for entry in _entries(source, (TimelineKind.REOPENED.value,))],
        "lessons": [
            {"lesson_id": lesson.lesson_id, "kind": lesson.kind, "state": lesson.state}
            for lesson in source.lessons
        ],
    }


def _recovery_checks(source: BundleSource, derived: Derived) -> list[tuple[str, bool]]:
    return [
        ("resolved", derived.resolved_at is not None),
        ("resolved within its SLA target", derived.sla_status == "met"),
        ("stayed resolved (never reopened)", source.incident["reopen_count"] == 0),
    ]


CONTROLS = (
    Control(
        "CC7.2",
        "Detection",
        "The entity detects anomalies that could be incidents.",
        _detection_facts,
        _detection_checks,
    ),
    Control(
        "CC7.3",
        "Evaluation",
        "The entity evaluates detected events to decide whether they are incidents, and how "
        "severe.",
        _evaluation_facts,
        _evaluation_checks,
    ),
    Control(
        "CC7.4",
        "Response",
        "The entity responds to identified incidents to contain them.",
        _response_facts,
        _response_checks,
    ),
    Control(
        "CC7.5",
        "Recovery",
        "The entity recovers from identified incidents.",
        _recovery_facts,
        _recovery_checks,
    ),
)


def controls_json(source: BundleSource) -> list[dict[str, Any]]:
    """Each control with its facts, checks and status (module docstring)."""
    derived = derive(source)
    mapped = []
    for control in CONTROLS:
        checks = control.checks(source, derived)
        mapped.append(
            {
                "control_id": control.control_id,
                "name": control.name,
                "criterion": control.criterion,
                "status": status_of(checks).value,
                "checks": [{"check": name, "holds": holds} for name, holds in checks],
                "facts": control.facts(source, derived),
            }
        )
    return mapped


def attestation_json(source: BundleSource, controls: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """What the bundle attests, by whom, and where its integrity hash is."""
    row, as_of = source.incident, format_time(source.as_of)
    statuses = "; ".join(f"{control['control_id']} {control['status']}" for control in controls)
    statements = [
        f"This bundle holds incident {row['incident_id']} of tenant {row['tenant_id']} as "
        f"recorded up to {as_of}: its stored fields, its {len(source.timeline)} timeline "
        f"entries and every event applied to it ({row['calls_affected']} events).",
        "Detection, classification and escalation were made by the aggregation rules under the "
        "configuration in this bundle; lifecycle commands are recorded with who issued them.",
        f"The incident was reopened {_times(row['reopen_count'])}.",
        f"Controls as of {as_of}: {statuses}.",
        f"Integrity: the SHA-256 of this bundle in canonical form ({FORM}) is stated in the "
        "integrity block beside it in the same file; it covers this attestation, and any change "
        "to the bundle changes it.",
    ]
    return {
        "attested_by": ATTESTED_BY,
        "attested_at": source.as_of,
        "statements": [f"{number}. {text}" for number, text in enumerate(statements, start=1)],
        "scope": {
            "incident_id": row["incident_id"],
            "tenant_id": row["tenant_id"],
            "events": row["calls_affected"],
            "timeline_entries": len(source.timeline),
            "as_of": source.as_of,
        },
        "integrity": f"sha256 over {FORM}, in the file's integrity block",
    }


def _times(count: int) -> str:
    return f"{count} time{'' if count == 1 else 's'}"


def soc2_parts(source: BundleSource) -> dict[str, Any]:
    """The SOC 2 bundle without its `events` (module docstring)."""
    controls = controls_json(source)
    return evidence_parts(source, BundleKind.SOC2) | {
        "attestation": attestation_json(source, controls),
        "controls": controls,
        "control_status_rule": STATUS_RULE,
    }
