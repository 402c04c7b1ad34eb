"""Rows as the API reads them for an export: an incident, its timeline, its events.

Shared by the bundle, PDF and lesson tests and by the export measurement; the values are those
the storage layer returns (UUIDs, aware datetimes, Decimals, JSON-decoded jsonb).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from domain.config import AggregationConfig
from domain.evidence import BundleSource, IncidentRow, LessonEntry, TimelineRow
from domain.metrics import SlaTargets

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
INCIDENT_ID = uuid.UUID("6f1d2c3b-4a59-5e6f-8a7b-9c0d1e2f3a4b")
AS_OF = T0 + timedelta(hours=2)


def incident_row(**fields: Any) -> IncidentRow:
    """A resolved high incident of 12 timeouts on openai/gpt-4o, acknowledged after 5 min."""
    row: dict[str, Any] = {
        "incident_id": INCIDENT_ID,
        "partition": 3,
        "tenant_id": "acme",
        "trigger_type": "llm_failure",
        "fingerprint": "openai/gpt-4o/timeout",
        "fingerprints": ["openai/gpt-4o/timeout"],
        "category": "LLM_TIMEOUT",
        "cause_type": "LLM_RUN",
        "title": "LLM call failures: openai/gpt-4o/timeout",
        "severity": "high",
        "lifecycle_state": "RESOLVED",
        "started_at": T0,
        "opened_at": T0,
        "last_event_at": T0 + timedelta(minutes=40),
        "acked_at": T0 + timedelta(minutes=5),
        "acked_by": "alice",
        "resolved_at": T0 + timedelta(minutes=47),
        "resolved_by": "alice",
        "resolution_method": "manual",
        "calls_affected": 12,
        "related_call_ids": [f"call-{index}" for index in range(12)],
        "run_ids": ["run-1", "run-2"],
        "cost_usd": Decimal("0.42000000"),
        "reopen_count": 0,
        "absorbed": {},
        "breakdown": {
            "model": {"openai/gpt-4o": {"calls": 12, "cost_usd": "0.42000000"}},
            "agent": {"support-bot": {"calls": 12, "cost_usd": "0.42000000"}},
        },
        "is_synthetic": False,
        "version": 15,
        "updated_at": datetime(2026, 11, 22, 12, 3, 1, 123456, tzinfo=UTC),
        "created_watermark": T0 + timedelta(seconds=40),
    }
    row.update(fields)
    return row  # type: ignore[return-value]


def timeline_rows() -> list[TimelineRow]:
    return [
        {"kind": "created", "at": T0, "data": {"severity": "low"}},
        {
            "kind": "severity_escalated",
            "at": T0 + timedelta(minutes=2),
            "data": {"from": "low", "to": "medium"},
        },
        {
            "kind": "severity_escalated",
            "at": T0 + timedelta(minutes=3),
            "data": {"from": "medium", "to": "high"},
        },
        {
            "kind": "acknowledged",
            "at": T0 + timedelta(minutes=5),
            "data": {"by": "alice", "note": None},
        },
        {
            "kind": "resolved",
            "at": T0 + timedelta(minutes=47),
            "data": {"by": "alice", "method": "manual", "note": "rolled the prompt back"},
        },
    ]


def failure_row(index: int, incident_id: uuid.UUID = INCIDENT_ID) -> dict[str, Any]:
    """The `index`-th event row of the incident, as `select(llm_call_failures)` plus `type`."""
    return {
        "type": "llm_call_failure",
        "event_id": f"evt-{index:06d}",
        "tenant_id": "acme",
        "occurred_at": T0 + timedelta(milliseconds=37 * index),
        "schema_version": 1,
        "fingerprint": None,
        "is_synthetic": False,
        "synthetic_scenario_id": None,
        "metadata": {"region": "eu-west-1", "latency_s": 30.5, "attempt": index % 3},
        "run_id": f"run-{index % 2 + 1}",
        "call_id": f"call-{index}",
        "agent_id": "support-bot",
        "integration_id": "int-7",
        "provider": "openai",
        "model": "gpt-4o",
        "failure_type": "timeout",
        "error_code": "ETIMEDOUT",
        "error_message": f"upstream timed out after 30 s (attempt {index % 3})",
        "request_id": f"req-{index:06d}",
        "duration_ms": 30000,
        "tokens_in": 812,
        "tokens_out": 0,
        "cost_usd": Decimal("0.03500000"),
        "received_at": datetime(2026, 11, 22, 10, 0, 1, tzinfo=UTC) + timedelta(seconds=index),
        "incident_id": incident_id,
    }


def failure_rows(count: int) -> Iterator[dict[str, Any]]:
    return (failure_row(index) for index in range(count))


def lesson_entries() -> list[LessonEntry]:
    return [
        LessonEntry(
            uuid.UUID("0b9a6a34-5c2e-5d7f-9a1b-2c3d4e5f6a7b"),
            "severe_incident_resolved",
            "pending",
            'Review the high incident "LLM call failures: openai/gpt-4o/timeout".',
        )
    ]


def source(**fields: Any) -> BundleSource:
    """The bundle source of `incident_row(**fields)` at `AS_OF`, default rules and targets."""
    return BundleSource(
        incident=incident_row(**fields),
        timeline=timeline_rows(),
        rules=AggregationConfig(),
        sla=SlaTargets(),
        as_of=AS_OF,
        lessons=lesson_entries(),
    )
