"""Builders for the input contracts: valid defaults, any field overridable by keyword."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel

from domain.contracts import LifecycleCommand, LlmCallFailure, PolicyViolation
from domain.incidents import Incident

T0 = datetime(2024, 11, 22, 14, 0, tzinfo=UTC)


def secs(n: float) -> timedelta:
    return timedelta(seconds=n)


def failure(
    event_id: str, tenant: str = "acme", at: datetime = T0, **overrides: Any
) -> LlmCallFailure:
    fields: dict[str, Any] = {
        "event_id": event_id,
        "tenant_id": tenant,
        "occurred_at": at,
        "run_id": f"run-{event_id}",
        "provider": "openai",
        "model": "gpt-4o",
        "failure_type": "timeout",
    }
    return LlmCallFailure.model_validate(fields | overrides)


def violation(
    event_id: str, tenant: str = "acme", at: datetime = T0, **overrides: Any
) -> PolicyViolation:
    fields: dict[str, Any] = {
        "event_id": event_id,
        "tenant_id": tenant,
        "occurred_at": at,
        "run_id": f"run-{event_id}",
        "policy_id": "pii-policy",
        "violated_rule": "no emails in output",
    }
    return PolicyViolation.model_validate(fields | overrides)


def command(
    command_id: str,
    incident_id: object,
    action: str = "acknowledge",
    tenant: str = "acme",
    at: datetime = T0,
    **overrides: Any,
) -> LifecycleCommand:
    fields: dict[str, Any] = {
        "command_id": command_id,
        "tenant_id": tenant,
        "incident_id": str(incident_id),
        "action": action,
        "issued_at": at,
        "issued_by": "alice",
    }
    return LifecycleCommand.model_validate(fields | overrides)


def wire(model: BaseModel) -> bytes:
    """The message as a producer would put it on the topic (JSON, nulls left out)."""
    return model.model_dump_json(exclude_none=True).encode()


def incident(**overrides: Any) -> Incident:
    """A minimal ACTIVE llm_failure incident of tenant `acme` started at T0; fields overridable."""
    fields: dict[str, Any] = {
        "incident_id": uuid.uuid4(),
        "tenant_id": "acme",
        "trigger_type": "llm_failure",
        "fingerprint": "openai/gpt-4o/timeout",
        "category": "LLM_TIMEOUT",
        "cause_type": "LLM_RUN",
        "title": "LLM call failures",
        "severity": "low",
        "started_at": T0,
        "last_event_at": T0,
        "is_synthetic": False,
    }
    fields.update(overrides)
    return Incident(**fields)


INCIDENT_CONTEXT: dict[str, Any] = {
    "description": "Events past the hourly incident cap: 42 calls since 2024-11-22 14:25 UTC",
    "source_run_id": "r1",
    "agent_ids": ["support-bot", "billing-bot"],
    "synthetic_scenario_id": "drill-7",
    "first_error_code": "504",
    "first_error_message": "gateway timeout",
    "latest_error_code": "429",
    "latest_error_message": "slow down",
    "first_policy_id": "pii",
    "first_violation_id": "v-1",
    "first_violated_rule": "no emails",
    "first_action_taken": "redacted",
    "latest_policy_id": "tone",
    "latest_violation_id": "v-9",
    "latest_violated_rule": "be polite",
    "latest_action_taken": "flagged",
}
"""Every context field of an incident set (`Incident(**INCIDENT_CONTEXT, ...)`), each to a
distinct value, for the tests that map an incident to a row or a snapshot and back."""
