"""Response bodies of `/v1/incidents` and the per-incident routes.

The incident's stored fields are the change-feed contract's (`domain.snapshot.IncidentSnapshot`):
their names, order, types and descriptions are taken from it, as required response fields, except
where HTTP serves them otherwise (`SERVED_AS`: money as a decimal string, the related call ids as
their count). A summary shows `SUMMARY_FIELDS`; the detail shows every stored field.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.fields import FieldInfo

from api.bodies import EXAMPLE_AS_OF, EXAMPLE_ID, AsOfTime, Money, examples
from domain.snapshot import SNAPSHOT_FIELDS, IncidentSnapshot

SUMMARY_FIELDS = (
    "incident_id", "tenant_id", "title", "description", "category", "severity",
    "lifecycle_state", "trigger_type", "cause_type", "fingerprint", "started_at", "last_event_at",
    "acked_at", "resolved_at", "resolution_method", "calls_affected", "cost_usd", "reopen_count",
    "is_synthetic", "synthetic_scenario_id", "source_run_id", "agent_ids", "first_error_code",
    "latest_error_code", "first_policy_id", "first_violation_id", "latest_policy_id",
    "latest_violation_id", "version",
)  # fmt: skip
"""What lists show of an incident, in this order: the short fields (the detail adds the error
messages, violated rules and actions, among others)."""


class BreakdownEntry(BaseModel):
    calls: int
    cost_usd: Money


SERVED_AS: dict[str, tuple[str, Any]] = {
    "cost_usd": ("cost_usd", Money),
    "related_call_ids": (
        "related_call_ids_count",
        Annotated[int, Field(ge=0, description="Distinct call ids listed (first M).")],
    ),
    "breakdown": ("breakdown", dict[str, dict[str, BreakdownEntry]]),
}
"""Stored fields whose response field differs: name -> (response name, type)."""


def _record_fields(names: tuple[str, ...], base: type[BaseModel]) -> type[BaseModel]:
    """A model holding the named stored fields, after `base`'s, typed as `SERVED_AS` says or as
    the contract types them (described as there; required, without the contract's default)."""
    fields: dict[str, Any] = {}
    for name in names:
        contract = IncidentSnapshot.model_fields[name]
        served, annotation = SERVED_AS.get(name, (name, None))
        if annotation is None:
            annotation = contract.annotation
            if contract.metadata:
                annotation = Annotated[annotation, *contract.metadata]
        described = FieldInfo(description=contract.description) if contract.description else ...
        fields[served] = (annotation, described)
    return create_model(f"{base.__name__}Record", __base__=base, **fields)


_SUMMARY_EXAMPLE: dict[str, Any] = {
    "incident_id": EXAMPLE_ID,
    "tenant_id": "acme",
    "title": "LLM call failures: openai/gpt-4o/timeout",
    "description": "Timeouts on openai/gpt-4o: 12 calls since 2024-05-01 10:00 UTC",
    "category": "LLM_TIMEOUT",
    "severity": "medium",
    "lifecycle_state": "ACTIVE",
    "trigger_type": "llm_failure",
    "cause_type": "LLM_RUN",
    "fingerprint": "openai/gpt-4o/timeout",
    "started_at": "2024-05-01T10:00:00Z",
    "last_event_at": "2024-05-01T10:04:10Z",
    "acked_at": None,
    "resolved_at": None,
    "resolution_method": None,
    "calls_affected": 12,
    "cost_usd": "0.42000000",
    "reopen_count": 0,
    "is_synthetic": False,
    "synthetic_scenario_id": None,
    "source_run_id": "run-1",
    "agent_ids": ["support-bot"],
    "first_error_code": "504",
    "latest_error_code": "timeout",
    "first_policy_id": None,
    "first_violation_id": None,
    "latest_policy_id": None,
    "latest_violation_id": None,
    "version": 14,
}


class IncidentSummary(_record_fields(SUMMARY_FIELDS, BaseModel)):  # type: ignore[misc]
    """An incident as lists show it."""

    model_config = ConfigDict(json_schema_extra={"examples": [_SUMMARY_EXAMPLE]})


class IncidentList(BaseModel):
    """One page of incidents and what was asked."""

    model_config = examples(
        {
            "items": [_SUMMARY_EXAMPLE],
            "total": 3,
            "has_more": True,
            "next_offset": 1,
            "limit": 1,
            "offset": 0,
            "filters_applied": {
                "tenant_id": "acme",
                "topic": "active",
                "sort_by": "started_at",
                "sort_order": "desc",
            },
            "as_of": EXAMPLE_AS_OF,
        }
    )

    items: list[IncidentSummary]
    total: int = Field(ge=0, description="Incidents matching the filters (all pages).")
    has_more: bool
    next_offset: int | None = Field(description="`offset` of the next page; null on the last.")
    limit: int
    offset: int
    filters_applied: dict[str, Any] = Field(
        examples=[{"tenant_id": "acme", "topic": "active", "severity": "high"}]
    )
    as_of: AsOfTime


class Sla(BaseModel):
    target_seconds: int = Field(examples=[3600])
    status: Literal["met", "breached", "pending"] = Field(
        description="met: resolved within target; breached: resolved later or open past it at "
        "as_of; pending: open and within target."
    )


DETAIL_FIELDS = tuple(name for name in SNAPSHOT_FIELDS if name not in SUMMARY_FIELDS)
"""The stored fields the detail shows beyond the summary's, in snapshot order."""


class IncidentDetail(_record_fields(DETAIL_FIELDS, IncidentSummary)):  # type: ignore[misc]
    """Every stored field of an incident, plus derived times, SLA and breakdown."""

    model_config = examples(
        {
            **_SUMMARY_EXAMPLE,
            "fingerprints": ["openai/gpt-4o/timeout"],
            "opened_at": "2024-05-01T10:00:00Z",
            "acked_by": None,
            "resolved_by": None,
            "related_call_ids_count": 12,
            "run_ids": ["run-1", "run-2"],
            "absorbed": {},
            "breakdown": {
                "model": {"openai/gpt-4o": {"calls": 12, "cost_usd": "0.42000000"}},
                "agent": {"support-bot": {"calls": 12, "cost_usd": "0.42000000"}},
            },
            "first_error_message": "Gateway timeout after 30 s",
            "latest_error_message": "Request timed out",
            "first_violated_rule": None,
            "first_action_taken": None,
            "latest_violated_rule": None,
            "latest_action_taken": None,
            "updated_at": "2024-05-01T10:04:11Z",
            "time_to_containment_ms": None,
            "time_to_resolution_ms": None,
            "sla": {"target_seconds": 86400, "status": "pending"},
            "as_of": EXAMPLE_AS_OF,
        }
    )

    updated_at: datetime
    time_to_containment_ms: int | None = Field(description="(acked_at or resolved_at) - started_at")
    time_to_resolution_ms: int | None = Field(description="resolved_at - started_at")
    sla: Sla
    as_of: AsOfTime


class TimelineEntry(BaseModel):
    kind: str = Field(examples=["created"])
    at: datetime
    data: dict[str, Any]


class Timeline(BaseModel):
    """The incident's timeline entries in the order they happened (event time)."""

    model_config = examples(
        {
            "incident_id": EXAMPLE_ID,
            "entries": [
                {"kind": "created", "at": "2024-05-01T10:00:00Z", "data": {"severity": "low"}},
                {
                    "kind": "severity_escalated",
                    "at": "2024-05-01T10:02:30Z",
                    "data": {"from": "low", "to": "medium", "calls_affected": 10},
                },
            ],
            "as_of": EXAMPLE_AS_OF,
        }
    )

    incident_id: uuid.UUID
    entries: list[TimelineEntry]
    as_of: AsOfTime


class _Event(BaseModel):
    event_id: str
    occurred_at: datetime
    run_id: str
    fingerprint: str | None
    agent_id: str | None
    cost_usd: Money
    is_synthetic: bool
    synthetic_scenario_id: str | None
    metadata: dict[str, Any] | None
    received_at: datetime


class FailureEvent(_Event):
    type: Literal["llm_call_failure"] = "llm_call_failure"
    call_id: str | None
    integration_id: str | None
    provider: str
    model: str
    failure_type: str
    error_code: str | None
    error_message: str | None
    request_id: str | None
    duration_ms: int | None
    tokens_in: int
    tokens_out: int


class ViolationEvent(_Event):
    type: Literal["policy_violation"] = "policy_violation"
    violation_id: str | None
    policy_id: str
    policy_type: str | None
    violated_rule: str
    severity: str
    action_taken: str | None
    reason: str | None
    evaluated_value: str | None
    threshold_condition: str | None
    cause_type: str
    evidence: dict[str, Any] | None


IncidentEvent = Annotated[FailureEvent | ViolationEvent, Field(discriminator="type")]


class IncidentEvents(BaseModel):
    """The incident's own events (its evidence), by occurred_at then event_id."""

    model_config = examples(
        {
            "incident_id": EXAMPLE_ID,
            "items": [
                {
                    "type": "llm_call_failure",
                    "event_id": "evt-1",
                    "occurred_at": "2024-05-01T10:00:00Z",
                    "run_id": "run-1",
                    "fingerprint": None,
                    "agent_id": "support-bot",
                    "cost_usd": "0.03500000",
                    "is_synthetic": False,
                    "synthetic_scenario_id": None,
                    "metadata": {"region": "eu-west-1"},
                    "received_at": "2024-05-01T10:00:00.120000Z",
                    "call_id": "call-1",
                    "integration_id": None,
                    "provider": "openai",
                    "model": "gpt-4o",
                    "failure_type": "timeout",
                    "error_code": "504",
                    "error_message": "Gateway timeout after 30 s",
                    "request_id": "req-9",
                    "duration_ms": 30000,
                    "tokens_in": 812,
                    "tokens_out": 0,
                }
            ],
            "total": 12,
            "has_more": True,
            "next_offset": 1,
            "limit": 1,
            "offset": 0,
            "as_of": EXAMPLE_AS_OF,
        }
    )

    incident_id: uuid.UUID
    items: list[IncidentEvent]
    total: int
    has_more: bool
    next_offset: int | None
    limit: int
    offset: int
    as_of: AsOfTime


class RunIncidents(BaseModel):
    """Incidents with at least one event of the run, newest first."""

    model_config = examples(
        {
            "run_id": "run-1",
            "incidents": [_SUMMARY_EXAMPLE],
            "total": 1,
            "has_more": False,
            "next_offset": None,
            "limit": 20,
            "offset": 0,
            "as_of": EXAMPLE_AS_OF,
        }
    )

    run_id: str
    incidents: list[IncidentSummary]
    total: int
    has_more: bool
    next_offset: int | None
    limit: int
    offset: int
    as_of: AsOfTime


_RESOLUTION_EXAMPLE: dict[str, Any] = {
    "incident_id": EXAMPLE_ID,
    "title": "LLM call failures: openai/gpt-4o/timeout",
    "category": "LLM_TIMEOUT",
    "severity": "medium",
    "resolution_method": None,
    "time_to_resolution_ms": None,
    "evidence_count": 12,
    "recovery_attempted": False,
}


class ResolutionSummary(BaseModel):
    incident_id: uuid.UUID
    title: str
    category: str
    severity: str
    resolution_method: str | None
    time_to_resolution_ms: int | None
    evidence_count: int = Field(description="The incident's events (= calls_affected).")
    recovery_attempted: bool = Field(
        description="Always false: no recovery actions are recorded by incidentflow."
    )


class Insight(BaseModel):
    insight_type: Literal["response", "prevention", "detection"]
    description: str
    confidence: float = Field(ge=0, le=1)
    supporting_incident_ids: list[uuid.UUID]


class Learnings(BaseModel):
    """Similar resolved incidents of the category and what they suggest."""

    model_config = examples(
        {
            "incident_id": EXAMPLE_ID,
            "resolution_summary": _RESOLUTION_EXAMPLE,
            "similar_incidents": [
                {
                    **_RESOLUTION_EXAMPLE,
                    "incident_id": "5d0b1a6e-2c4f-5e8a-9b7d-3f2e1c0a9b8d",
                    "resolution_method": "rollback",
                    "time_to_resolution_ms": 1800000,
                }
            ],
            "insights": [
                {
                    "insight_type": "response",
                    "description": "Similar LLM_TIMEOUT incidents were most often resolved by "
                    "rollback (1 of 1).",
                    "confidence": 0.6,
                    "supporting_incident_ids": ["5d0b1a6e-2c4f-5e8a-9b7d-3f2e1c0a9b8d"],
                }
            ],
            "generated_at": EXAMPLE_AS_OF,
            "as_of": EXAMPLE_AS_OF,
        }
    )

    incident_id: uuid.UUID
    resolution_summary: ResolutionSummary
    similar_incidents: list[ResolutionSummary]
    insights: list[Insight]
    generated_at: datetime
    as_of: AsOfTime
