"""Response bodies of the incident endpoints (the OpenAPI schema and its examples).

Money is a decimal string (`"12.50000000"`), times are ISO 8601 with offset, durations are whole
milliseconds. Every body carries `as_of`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Money = Annotated[str, Field(pattern=r"^-?\d+(\.\d+)?$", examples=["12.34000000"])]
AsOf = Annotated[
    datetime,
    Field(description="Event time up to which the tables are complete; windows end here."),
]

EXAMPLE_ID = "0b5c2f8e-8d8a-5b6e-9a53-7c1f1f4f8a10"
EXAMPLE_AS_OF = "2024-05-01T10:05:00Z"


def examples(example: dict[str, Any]) -> ConfigDict:
    """A model config that documents `example` as the body's example in the OpenAPI schema."""
    return ConfigDict(json_schema_extra={"examples": [example]})


_SUMMARY_EXAMPLE: dict[str, Any] = {
    "incident_id": EXAMPLE_ID,
    "tenant_id": "acme",
    "title": "LLM call failures: openai/gpt-4o timeout",
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
    "version": 14,
}


class IncidentSummary(BaseModel):
    """An incident as lists show it."""

    model_config = ConfigDict(json_schema_extra={"examples": [_SUMMARY_EXAMPLE]})

    incident_id: uuid.UUID
    tenant_id: str
    title: str
    category: str
    severity: Literal["low", "medium", "high", "critical"]
    lifecycle_state: Literal["ACTIVE", "ACKED", "RESOLVED"]
    trigger_type: str
    cause_type: str
    fingerprint: str
    started_at: datetime
    last_event_at: datetime
    acked_at: datetime | None
    resolved_at: datetime | None
    resolution_method: str | None
    calls_affected: int = Field(ge=0)
    cost_usd: Money
    reopen_count: int = Field(ge=0)
    is_synthetic: bool
    version: int = Field(ge=0)


class IncidentList(BaseModel):
    """One page of incidents and what was asked."""

    items: list[IncidentSummary]
    total: int = Field(ge=0, description="Incidents matching the filters (all pages).")
    has_more: bool
    next_offset: int | None = Field(description="`offset` of the next page; null on the last.")
    limit: int
    offset: int
    filters_applied: dict[str, Any] = Field(
        examples=[{"tenant_id": "acme", "topic": "active", "severity": "high"}]
    )
    as_of: AsOf


class Sla(BaseModel):
    target_seconds: int = Field(examples=[3600])
    status: Literal["met", "breached", "pending"] = Field(
        description="met: resolved within target; breached: resolved later or open past it at "
        "as_of; pending: open and within target."
    )


class BreakdownEntry(BaseModel):
    calls: int
    cost_usd: Money


class IncidentDetail(IncidentSummary):
    """Every stored field of an incident, plus derived times, SLA and breakdown."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
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
                    "updated_at": "2024-05-01T10:04:11Z",
                    "time_to_containment_ms": None,
                    "time_to_resolution_ms": None,
                    "sla": {"target_seconds": 86400, "status": "pending"},
                    "as_of": "2024-05-01T10:05:00Z",
                }
            ]
        }
    )

    fingerprints: list[str]
    opened_at: datetime
    acked_by: str | None
    resolved_by: str | None
    related_call_ids_count: int = Field(ge=0, description="Distinct call ids listed (first M).")
    run_ids: list[str] = Field(description="Run ids behind the incident (the first M).")
    absorbed: dict[str, dict[str, int]] = Field(
        description="Overflow incident only: calls per absorbed trigger type and fingerprint."
    )
    breakdown: dict[str, dict[str, BreakdownEntry]] = Field(
        description="Calls and cost by `model` (provider/model) and `agent`, top 50 + `other`."
    )
    updated_at: datetime
    time_to_containment_ms: int | None = Field(description="(acked_at or resolved_at) - started_at")
    time_to_resolution_ms: int | None = Field(description="resolved_at - started_at")
    sla: Sla
    as_of: AsOf


class TimelineEntry(BaseModel):
    kind: str = Field(examples=["created"])
    at: datetime
    data: dict[str, Any]


class Timeline(BaseModel):
    incident_id: uuid.UUID
    entries: list[TimelineEntry]
    as_of: AsOf


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

    incident_id: uuid.UUID
    items: list[IncidentEvent]
    total: int
    has_more: bool
    next_offset: int | None
    limit: int
    offset: int
    as_of: AsOf


class RunIncidents(BaseModel):
    """Incidents with at least one event of the run, newest first."""

    run_id: str
    incidents: list[IncidentSummary]
    total: int
    has_more: bool
    next_offset: int | None
    limit: int
    offset: int
    as_of: AsOf


class IncidentMetrics(BaseModel):
    """Counts, times and SLA of the incidents started in the window ending at as_of."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "window_days": 30,
                    "window_start": "2024-04-01T10:05:00Z",
                    "total_count": 40,
                    "active_count": 6,
                    "acked_count": 2,
                    "resolved_count": 34,
                    "critical_count": 1,
                    "high_count": 5,
                    "medium_count": 14,
                    "low_count": 20,
                    "avg_time_to_containment_ms": 512000,
                    "median_time_to_containment_ms": 300000,
                    "avg_time_to_resolution_ms": 1100000,
                    "median_time_to_resolution_ms": 900000,
                    "sla_met_count": 33,
                    "sla_breached_count": 2,
                    "sla_compliance_rate": 94.29,
                    "generated_at": "2024-05-01T10:05:00Z",
                    "as_of": "2024-05-01T10:05:00Z",
                }
            ]
        }
    )

    window_days: int
    window_start: datetime
    total_count: int
    active_count: int = Field(description="ACTIVE and ACKED")
    acked_count: int
    resolved_count: int
    critical_count: int
    high_count: int
    medium_count: int
    low_count: int
    avg_time_to_containment_ms: int | None
    median_time_to_containment_ms: int | None
    avg_time_to_resolution_ms: int | None
    median_time_to_resolution_ms: int | None
    sla_met_count: int
    sla_breached_count: int = Field(description="Resolved late, or still open past target.")
    sla_compliance_rate: float | None = Field(description="met / (met + breached) * 100, 2 dp")
    generated_at: datetime
    as_of: AsOf


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

    incident_id: uuid.UUID
    resolution_summary: ResolutionSummary
    similar_incidents: list[ResolutionSummary]
    insights: list[Insight]
    generated_at: datetime
    as_of: AsOf
