"""The Incident, its classification and the changes an aggregator reports.

An `Incident` is mutable on purpose: the aggregator applies tens of thousands of events a second to
a few hundred incidents, and copying per event would dominate. It never escapes a worker except as a
`snapshot()`, a plain dict that the change feed, the storage layer and tests share; its fields are
the incident record of `domain.snapshot.IncidentSnapshot`, which validates it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, NamedTuple

from domain.contracts import FailureType, LlmCallFailure, PolicyViolation, Severity

SEVERITY_RANK: dict[str, int] = {"low": 0, "medium": 1, "high": 2, "critical": 3}
OVERFLOW_TRIGGER = "rate_limit_overflow"
OVERFLOW_CATEGORY = "RATE_LIMIT_OVERFLOW"
OVERFLOW_FINGERPRINT = "*"
OVERFLOW_TITLE = "Incident rate limit reached: events aggregated"


class LifecycleState(StrEnum):
    ACTIVE = "ACTIVE"
    ACKED = "ACKED"
    RESOLVED = "RESOLVED"


class TimelineKind(StrEnum):
    CREATED = "created"
    SEVERITY_ESCALATED = "severity_escalated"
    FINGERPRINT_MERGED = "fingerprint_merged"
    REOPENED = "reopened"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    AUTO_RESOLVED = "auto_resolved"
    OVERFLOW_STARTED = "overflow_started"


Key = tuple[str, str, str]
"""(tenant_id, trigger_type, fingerprint): what groups events into one incident."""


class Classification(NamedTuple):
    """What an event is: its grouping key, category, cause and initial severity."""

    trigger_type: str
    category: str
    severity: str
    cause_type: str
    fingerprint: str

    def key(self, tenant_id: str) -> Key:
        return (tenant_id, self.trigger_type, self.fingerprint)


_FAILURE_CLASSES: dict[FailureType, tuple[str, str, str]] = {
    FailureType.TIMEOUT: ("llm_failure", "LLM_TIMEOUT", "low"),
    FailureType.EXCEPTION: ("llm_failure", "LLM_ERROR", "low"),
    FailureType.INVALID_OUTPUT: ("llm_failure", "INVALID_OUTPUT", "low"),
    FailureType.PROVIDER_UNAVAILABLE: ("llm_failure", "PROVIDER_OUTAGE", "medium"),
    FailureType.RATE_LIMITED: ("rate_limit", "RATE_LIMIT", "medium"),
    FailureType.BUDGET_EXCEEDED: ("budget_breach", "BUDGET_EXCEEDED", "critical"),
    FailureType.CONTENT_FILTERED: ("content_policy", "CONTENT_POLICY", "high"),
}

TITLE_LABELS: dict[str, str] = {
    "llm_failure": "LLM call failures",
    "rate_limit": "Rate limit triggered",
    "budget_breach": "Budget limit exceeded",
    "content_policy": "Content policy violation",
    "policy_violation": "Policy violation",
}


def classify(event: LlmCallFailure | PolicyViolation) -> Classification:
    """The trigger type, category, initial severity, cause and fingerprint of a signal event."""
    if isinstance(event, LlmCallFailure):
        trigger, category, severity = _FAILURE_CLASSES[event.failure_type]
        fingerprint = event.fingerprint or (
            f"{event.provider}/{event.model}/{event.failure_type.value}"
        )
        return Classification(trigger, category, severity, "LLM_RUN", fingerprint)
    category = f"POLICY_{event.policy_type.upper()}" if event.policy_type else "POLICY_VIOLATION"
    return Classification(
        "policy_violation",
        category,
        event.severity.value,
        event.cause_type.value,
        event.fingerprint or event.policy_id,
    )


def incident_id_for(first_event_id: str) -> uuid.UUID:
    """Deterministic incident id, so that a replay rebuilds the same ids."""
    return uuid.uuid5(uuid.NAMESPACE_URL, "incidentflow:" + first_event_id)


def threshold_severity(calls_affected: int, thresholds: tuple[int, int, int]) -> str:
    """The least severity that `calls_affected` calls demand (medium / high / critical cut-offs)."""
    medium, high, critical = thresholds
    if calls_affected >= critical:
        return Severity.CRITICAL.value
    if calls_affected >= high:
        return Severity.HIGH.value
    if calls_affected >= medium:
        return Severity.MEDIUM.value
    return Severity.LOW.value


AGENT_IDS_LIMIT = 10
"""How many distinct agent ids an incident names (the first seen). Ten name every agent of all
but platform-wide incidents, in a list row as in the detail; past them, the breakdown's `agent`
dimension still counts calls per agent for the first 50. The bound keeps the per-event check a
scan of at most ten short strings, and the row and the change message small."""

BREAKDOWN_LIMIT = 50
"""Named keys per breakdown dimension; calls and cost of later keys are summed under `other`."""
BREAKDOWN_OTHER = "other"
UNKNOWN_AGENT = "unknown"


@dataclass(slots=True)
class BreakdownEntry:
    """Calls and cost of one provider/model or agent within an incident."""

    calls: int = 0
    cost_usd: Decimal = Decimal(0)


def add_to_breakdown(
    breakdown: dict[str, dict[str, BreakdownEntry]], dimension: str, key: str, cost: Decimal
) -> None:
    """Count one call of `key`; past `BREAKDOWN_LIMIT` named keys, new keys count as `other`.

    The first keys seen keep their names, so the result is the same however the log is batched.
    """
    entries = breakdown.setdefault(dimension, {})
    entry = entries.get(key)
    if entry is None:
        named = len(entries) - (BREAKDOWN_OTHER in entries)
        if named >= BREAKDOWN_LIMIT:
            key = BREAKDOWN_OTHER
        entry = entries.setdefault(key, BreakdownEntry())
    entry.calls += 1
    entry.cost_usd += cost


def breakdown_json(
    breakdown: dict[str, dict[str, BreakdownEntry]],
) -> dict[str, dict[str, dict[str, Any]]]:
    """The breakdown as JSON-ready data: `{dimension: {key: {"calls", "cost_usd"}}}`."""
    return {
        dimension: {
            key: {"calls": entry.calls, "cost_usd": f"{entry.cost_usd:f}"}
            for key, entry in entries.items()
        }
        for dimension, entries in breakdown.items()
    }


def breakdown_from_json(
    data: dict[str, dict[str, dict[str, Any]]] | None,
) -> dict[str, dict[str, BreakdownEntry]]:
    return {
        dimension: {
            key: BreakdownEntry(int(entry["calls"]), Decimal(str(entry["cost_usd"])))
            for key, entry in entries.items()
        }
        for dimension, entries in (data or {}).items()
    }


@dataclass(slots=True, eq=False)
class Incident:
    """One incident, as stored in the `incidents` table.

    `version` counts the changes applied to the incident (events, commands, resolutions), so it
    grows with every change and does not depend on how the log was cut into batches.
    What on-call reads first (`IncidentSnapshot` describes each field): the creating event's
    `source_run_id` and `synthetic_scenario_id`; the first `AGENT_IDS_LIMIT` distinct
    `agent_ids`; the code and message of the first and the latest LLM failure that carries an
    error (`first_error_*`, `latest_error_*`) and the policy, violation, rule and action of the
    first and the latest policy violation (`first_*`, `latest_*`), "first" and "latest" in the
    order the rules apply events; and the one-line `description`, written when the aggregator
    hands the incident over in `take_changes()` (None until then).
    `absorbed` is kept on the overflow incident only: calls per absorbed trigger_type, then
    fingerprint. `breakdown` holds calls and cost by `model` ("provider/model", failures only)
    and by `agent` (agent_id, or "unknown").
    """

    incident_id: uuid.UUID
    tenant_id: str
    trigger_type: str
    fingerprint: str
    category: str
    cause_type: str
    title: str
    severity: str
    started_at: datetime
    last_event_at: datetime
    is_synthetic: bool
    fingerprints: list[str] = field(default_factory=list)
    lifecycle_state: LifecycleState = LifecycleState.ACTIVE
    acked_at: datetime | None = None
    acked_by: str | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    resolution_method: str | None = None
    calls_affected: int = 0
    related_call_ids: list[str] = field(default_factory=list)
    run_ids: list[str] = field(default_factory=list)
    cost_usd: Decimal = Decimal(0)
    reopen_count: int = 0
    absorbed: dict[str, dict[str, int]] = field(default_factory=dict)
    version: int = 0
    opened_at: datetime | None = None
    breakdown: dict[str, dict[str, BreakdownEntry]] = field(default_factory=dict)
    description: str | None = None
    source_run_id: str | None = None
    agent_ids: list[str] = field(default_factory=list)
    synthetic_scenario_id: str | None = None
    first_error_code: str | None = None
    first_error_message: str | None = None
    latest_error_code: str | None = None
    latest_error_message: str | None = None
    first_policy_id: str | None = None
    first_violation_id: str | None = None
    first_violated_rule: str | None = None
    first_action_taken: str | None = None
    latest_policy_id: str | None = None
    latest_violation_id: str | None = None
    latest_violated_rule: str | None = None
    latest_action_taken: str | None = None

    def __post_init__(self) -> None:
        if self.opened_at is None:
            self.opened_at = self.started_at

    @property
    def opened(self) -> datetime:
        """When the incident was created: the time its start counts at against the hourly cap.

        Unlike `started_at`, it never moves when a late event arrives.
        """
        return self.opened_at if self.opened_at is not None else self.started_at

    @property
    def is_open(self) -> bool:
        return self.lifecycle_state is not LifecycleState.RESOLVED

    @property
    def is_overflow(self) -> bool:
        return self.trigger_type == OVERFLOW_TRIGGER

    def key(self) -> Key:
        return (self.tenant_id, self.trigger_type, self.fingerprint)

    def note_error(self, code: str | None, message: str | None) -> None:
        """An applied LLM failure carried this error (code or message not None): it is the
        latest, and the first if the incident had none yet."""
        if self.latest_error_code is None and self.latest_error_message is None:
            self.first_error_code, self.first_error_message = code, message
        self.latest_error_code, self.latest_error_message = code, message

    def note_violation(self, event: PolicyViolation) -> None:
        """An applied policy violation: the latest, and the first if the incident had none yet."""
        violation_id = event.violation_id or event.event_id
        action = event.action_taken.value if event.action_taken is not None else None
        if self.latest_policy_id is None:
            self.first_policy_id, self.first_violation_id = event.policy_id, violation_id
            self.first_violated_rule, self.first_action_taken = event.violated_rule, action
        self.latest_policy_id, self.latest_violation_id = event.policy_id, violation_id
        self.latest_violated_rule, self.latest_action_taken = event.violated_rule, action

    def snapshot(self) -> dict[str, Any]:
        """The incident as plain JSON-ready data: the change-feed value and the comparison unit.

        Written out field by field (in `IncidentSnapshot` order) rather than through the model:
        the ingest worker calls it for every touched incident of every batch.
        """
        return {
            "incident_id": str(self.incident_id),
            "tenant_id": self.tenant_id,
            "trigger_type": self.trigger_type,
            "fingerprint": self.fingerprint,
            "fingerprints": list(self.fingerprints),
            "category": self.category,
            "cause_type": self.cause_type,
            "title": self.title,
            "description": self.description,
            "severity": self.severity,
            "lifecycle_state": self.lifecycle_state.value,
            "started_at": self.started_at.isoformat(),
            "opened_at": self.opened.isoformat(),
            "last_event_at": self.last_event_at.isoformat(),
            "acked_at": _iso(self.acked_at),
            "acked_by": self.acked_by,
            "resolved_at": _iso(self.resolved_at),
            "resolved_by": self.resolved_by,
            "resolution_method": self.resolution_method,
            "calls_affected": self.calls_affected,
            "related_call_ids": list(self.related_call_ids),
            "run_ids": list(self.run_ids),
            "source_run_id": self.source_run_id,
            "agent_ids": list(self.agent_ids),
            "cost_usd": f"{self.cost_usd:f}",
            "reopen_count": self.reopen_count,
            "absorbed": {trigger: dict(counts) for trigger, counts in self.absorbed.items()},
            "is_synthetic": self.is_synthetic,
            "synthetic_scenario_id": self.synthetic_scenario_id,
            "breakdown": breakdown_json(self.breakdown),
            "first_error_code": self.first_error_code,
            "first_error_message": self.first_error_message,
            "latest_error_code": self.latest_error_code,
            "latest_error_message": self.latest_error_message,
            "first_policy_id": self.first_policy_id,
            "first_violation_id": self.first_violation_id,
            "first_violated_rule": self.first_violated_rule,
            "first_action_taken": self.first_action_taken,
            "latest_policy_id": self.latest_policy_id,
            "latest_violation_id": self.latest_violation_id,
            "latest_violated_rule": self.latest_violated_rule,
            "latest_action_taken": self.latest_action_taken,
            "version": self.version,
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """Something that happened to an incident, at an event time, with a small JSON body."""

    incident_id: uuid.UUID
    tenant_id: str
    kind: TimelineKind
    at: datetime
    data: dict[str, Any]
