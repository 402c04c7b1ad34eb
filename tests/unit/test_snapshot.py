"""The change-feed contract: what `Incident.snapshot()` writes validates, and what cannot be
applied is refused with a reason and the field at fault."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest

from domain.contracts import DeadLetterReason, Rejection
from domain.incidents import BreakdownEntry, Incident, LifecycleState
from domain.snapshot import SNAPSHOT_FIELDS, IncidentSnapshot, parse_snapshot
from tests.builders import INCIDENT_CONTEXT, incident

T0 = datetime(2024, 11, 22, 14, 25, 30, tzinfo=UTC)


def full() -> Incident:
    return incident(
        trigger_type="rate_limit_overflow",
        fingerprint="*",
        fingerprints=["*", "a/b/c"],
        category="RATE_LIMIT_OVERFLOW",
        cause_type="SYSTEM",
        severity="critical",
        started_at=T0,
        last_event_at=T0 + timedelta(minutes=5),
        opened_at=T0 + timedelta(seconds=1),
        is_synthetic=True,
        lifecycle_state=LifecycleState.RESOLVED,
        acked_at=T0 + timedelta(minutes=1),
        acked_by="ops@acme",
        resolved_at=T0 + timedelta(minutes=6),
        resolved_by="ops@acme",
        resolution_method="rollback",
        calls_affected=42,
        related_call_ids=["c1", "c2"],
        run_ids=["r1"],
        cost_usd=Decimal("12.34567891"),
        reopen_count=2,
        absorbed={"llm_failure": {"x": 40, "y": 1}},
        breakdown={"model": {"a/b": BreakdownEntry(40, Decimal("12.3"))}},
        **INCIDENT_CONTEXT,
        version=57,
    )


@pytest.mark.parametrize("built", [incident(), full()], ids=["minimal", "full"])
def test_what_the_aggregator_writes_validates_field_for_field(built: Incident) -> None:
    written = built.snapshot()
    assert list(written) == list(SNAPSHOT_FIELDS)
    parsed = parse_snapshot(orjson.dumps(written))
    assert isinstance(parsed, IncidentSnapshot)
    for name in SNAPSHOT_FIELDS:
        expected = built.opened if name == "opened_at" else getattr(built, name)
        got = getattr(parsed, name)
        if name == "breakdown":
            got = {
                dimension: {key: BreakdownEntry(e.calls, e.cost_usd) for key, e in entries.items()}
                for dimension, entries in got.items()
            }
        assert got == expected, name


def test_the_snapshot_carries_every_field_of_the_incident() -> None:
    assert set(SNAPSHOT_FIELDS) == set(Incident.__dataclass_fields__)


def test_a_stored_snapshot_survives_its_json_form() -> None:
    parsed = IncidentSnapshot.model_validate(full().snapshot())
    assert parse_snapshot(parsed.model_dump_json()) == parsed


def test_fields_the_processors_do_not_read_may_be_absent_or_null() -> None:
    written = incident(started_at=T0, last_event_at=T0).snapshot()
    required = {
        "incident_id", "tenant_id", "trigger_type", "category", "cause_type", "severity",
        "lifecycle_state", "started_at", "last_event_at", "calls_affected", "cost_usd",
        "reopen_count", "version",
    }  # fmt: skip
    bare = {name: value for name, value in written.items() if name in required}
    nulls = {**written, "title": None, "opened_at": None, "fingerprints": None, "breakdown": None}
    for value in (bare, nulls):
        parsed = parse_snapshot(orjson.dumps(value))
        assert isinstance(parsed, IncidentSnapshot)
        assert parsed.opened_at == T0 and parsed.fingerprints == [] and parsed.breakdown == {}
    for name in required:
        rejected = parse_snapshot(orjson.dumps({k: v for k, v in bare.items() if k != name}))
        assert isinstance(rejected, Rejection) and rejected.detail.startswith(name), name


CONTEXT_FIELDS = (
    "description", "source_run_id", "agent_ids", "synthetic_scenario_id", "first_error_code",
    "first_error_message", "latest_error_code", "latest_error_message", "first_policy_id",
    "first_violation_id", "first_violated_rule", "first_action_taken", "latest_policy_id",
    "latest_violation_id", "latest_violated_rule", "latest_action_taken",
)  # fmt: skip


def test_a_snapshot_written_before_the_context_fields_reads_them_as_null() -> None:
    """Change messages and the processors' stored snapshots from before these fields existed."""
    written = full().snapshot()
    old = {name: value for name, value in written.items() if name not in CONTEXT_FIELDS}
    for value in (old, {**old, "agent_ids": None}):
        parsed = parse_snapshot(orjson.dumps(value))
        assert isinstance(parsed, IncidentSnapshot)
        assert parsed.agent_ids == []
        assert all(getattr(parsed, name) is None for name in CONTEXT_FIELDS if name != "agent_ids")
        assert parsed.model_dump(exclude=set(CONTEXT_FIELDS)) == IncidentSnapshot.model_validate(
            written
        ).model_dump(exclude=set(CONTEXT_FIELDS))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"incident_id": "not-a-uuid"}, "incident_id"),
        ({"version": "7"}, "version"),
        ({"version": -1}, "version"),
        ({"started_at": "2024-11-22T14:00:00"}, "started_at"),
        ({"started_at": 1732284000}, "started_at"),
        ({"severity": "urgent"}, "severity"),
        ({"lifecycle_state": "OPEN"}, "lifecycle_state"),
        ({"calls_affected": True}, "calls_affected"),
        ({"cost_usd": "NaN"}, "cost_usd"),
        ({"run_ids": "run-1"}, "run_ids"),
        ({"agent_ids": "bot"}, "agent_ids"),
        ({"latest_action_taken": "nuked"}, "latest_action_taken"),
        ({"breakdown": {"model": {"x": {"calls": 1, "cost_usd": "abc"}}}}, "breakdown.model.x"),
    ],
)
def test_a_value_the_processors_cannot_apply_is_a_schema_violation(
    change: dict[str, Any], field: str
) -> None:
    value = {**incident().snapshot(), **change}
    rejected = parse_snapshot(orjson.dumps(value))
    assert isinstance(rejected, Rejection)
    assert rejected.reason is DeadLetterReason.SCHEMA_VIOLATION
    assert rejected.detail.startswith(field), rejected.detail


@pytest.mark.parametrize("raw", [None, b"", b"{not json", b"\xff\xfe"])
def test_what_is_no_json_is_invalid_json(raw: bytes | None) -> None:
    rejected = parse_snapshot(raw)
    assert isinstance(rejected, Rejection) and rejected.reason is DeadLetterReason.INVALID_JSON


def test_a_json_value_that_is_no_object_is_a_schema_violation() -> None:
    rejected = parse_snapshot(b"[]")
    assert isinstance(rejected, Rejection)
    assert rejected.reason is DeadLetterReason.SCHEMA_VIOLATION


def test_unknown_fields_are_ignored() -> None:
    value = {**incident(incident_id=uuid.UUID(int=1)).snapshot(), "shard": 3}
    parsed = parse_snapshot(orjson.dumps(value))
    assert isinstance(parsed, IncidentSnapshot) and parsed.incident_id == uuid.UUID(int=1)
