"""The executive debrief of an incident: one page of what happened and what it cost. Pure.

`debrief(source, recurrence)` is a whole bundle (`kind` `debrief`, no events: the evidence
bundle holds them), written with `domain.bundles.bundle_file`. It holds:

- `what_happened`: one paragraph generated from the incident's fields (`what_happened`);
- `risk_level`: `high` for a critical or high incident, `medium` for medium, `low` for low;
- `calls_affected` (the customers' calls that failed or were flagged), `cost_usd`;
- `time_to_contain_ms` / `time_to_resolve_ms` (null while not reached) and the same in words;
- `sla`: target, deadline and status as of `as_of`;
- `recurrence`: how many incidents of the same fingerprint started in the `window_days` before
  this one (`Recurrence`, counted by the caller);
- `lessons`: the incident's lessons (id, kind, state, proposed action), from the source.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from domain.descriptions import describe_row, format_duration, format_minute
from domain.evidence import (
    BundleKind,
    BundleSource,
    Derived,
    common_parts,
    derive,
    milliseconds,
    seconds,
)
from domain.lessons import RESOLVED_HOW

RISK_LEVELS = {"critical": "high", "high": "high", "medium": "medium", "low": "low"}
CENT = Decimal("0.01")
RECURRENCE_WINDOW_DAYS = 30
"""The days before an incident's start in which a debrief counts earlier incidents of its
fingerprint."""


@dataclass(frozen=True, slots=True)
class Recurrence:
    """Incidents of the same tenant and fingerprint that started in the `window_days` days
    before this incident started (this one not counted)."""

    window_days: int
    previous_incidents: int


def debrief(source: BundleSource, recurrence: Recurrence) -> dict[str, Any]:
    """The debrief bundle (module docstring)."""
    row, found = source.incident, derive(source)
    return common_parts(source, BundleKind.DEBRIEF) | {
        "title": row["title"],
        "description": describe_row(row),
        "what_happened": what_happened(source, found, recurrence),
        "severity": row["severity"],
        "risk_level": RISK_LEVELS[row["severity"]],
        "lifecycle_state": row["lifecycle_state"],
        "started_at": row["started_at"],
        "last_event_at": row["last_event_at"],
        "calls_affected": row["calls_affected"],
        "cost_usd": row["cost_usd"],
        "time_to_contain_ms": milliseconds(found.time_to_containment),
        "time_to_contain": _words(found.time_to_containment),
        "time_to_resolve_ms": milliseconds(found.time_to_resolution),
        "time_to_resolve": _words(found.time_to_resolution),
        "sla": {
            "target_seconds": seconds(found.sla_target),
            "deadline": found.sla_deadline,
            "status": found.sla_status,
        },
        "recurrence": {
            "fingerprint": row["fingerprint"],
            "window_days": recurrence.window_days,
            "previous_incidents": recurrence.previous_incidents,
        },
        "lessons": [
            {
                "lesson_id": lesson.lesson_id,
                "kind": lesson.kind,
                "state": lesson.state,
                "proposed_action": lesson.proposed_action,
            }
            for lesson in source.lessons
        ],
    }


def what_happened(source: BundleSource, found: Derived, recurrence: Recurrence) -> str:
    """One paragraph: the description, severity, containment, resolution against the SLA,
    reopens, cost and recurrence, each sentence from the rows as of `as_of`."""
    row = source.incident
    sentences = [
        f"{describe_row(row)}; the last at {format_minute(row['last_event_at'])}.",
        f"It was rated {row['severity']}, a {RISK_LEVELS[row['severity']]} risk.",
        _containment(source, found),
        _resolution(source, found),
    ]
    if row["reopen_count"]:
        count = row["reopen_count"]
        sentences.append(f"It reopened {'once' if count == 1 else f'{count} times'}.")
    cost = Decimal(row["cost_usd"])
    if cost:
        sentences.append(f"The affected calls cost {cost.quantize(CENT, ROUND_HALF_EVEN)} USD.")
    sentences.append(_recurrence(recurrence))
    return " ".join(sentences)


def _containment(source: BundleSource, found: Derived) -> str:
    row = source.incident
    if row["acked_at"] is not None and found.time_to_containment is not None:
        took = format_duration(found.time_to_containment)
        return f"{row['acked_by'] or 'Someone'} acknowledged it {took} after it started."
    if found.resolved_at is not None:
        return "Nobody acknowledged it before it resolved."
    return f"Nobody had acknowledged it as of {format_minute(source.as_of)}."


def _resolution(source: BundleSource, found: Derived) -> str:
    row = source.incident
    target = format_duration(found.sla_target)
    if found.resolved_at is not None and found.time_to_resolution is not None:
        method = row["resolution_method"] or "unknown"
        how = RESOLVED_HOW.get(method, f"by {method}")
        within = "within" if found.sla_status == "met" else "past"
        took = format_duration(found.time_to_resolution)
        return (
            f"It was resolved {how} {took} after it started, {within} its SLA target of {target}."
        )
    as_of = format_minute(source.as_of)
    if found.sla_status == "breached":
        return f"It was still open as of {as_of}, past its SLA target of {target}."
    deadline = format_minute(found.sla_deadline)
    return f"It was still open as of {as_of}; its SLA target of {target} runs out {deadline}."


def _recurrence(recurrence: Recurrence) -> str:
    count, days = recurrence.previous_incidents, recurrence.window_days
    if count == 0:
        return f"No other incident of the same fingerprint started in the {days} days before."
    incidents = "incident" if count == 1 else "incidents"
    return f"{count} other {incidents} of the same fingerprint started in the {days} days before."


def _words(value: timedelta | None) -> str | None:
    return format_duration(value) if value is not None else None
