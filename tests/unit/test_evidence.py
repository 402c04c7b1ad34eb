"""What the evidence, SOC 2 and debrief bundles hold, built from rows."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from domain.bundles import bundle_file, stream_bundle
from domain.debrief import Recurrence, debrief
from domain.evidence import (
    BundleKind,
    bundle_id,
    evidence_event,
    evidence_parts,
    milliseconds,
)
from domain.soc2 import ControlStatus, soc2_parts, status_of
from domain.verification import verify
from tests.evidence_rows import AS_OF, INCIDENT_ID, T0, failure_row, failure_rows, source


def exported(parts: dict[str, Any], events: int = 3) -> bytes:
    return b"".join(stream_bundle(parts, map(evidence_event, failure_rows(events))))


def bundle_of(data: bytes) -> dict[str, Any]:
    bundle: dict[str, Any] = json.loads(data)["bundle"]
    return bundle


def test_the_evidence_bundle_holds_every_stored_field_but_processing_time() -> None:
    bundle = bundle_of(exported(evidence_parts(source())))
    incident = bundle["incident"]
    assert "partition" not in incident
    assert "updated_at" not in incident
    assert "created_watermark" not in incident
    assert incident["incident_id"] == str(INCIDENT_ID)
    assert incident["cost_usd"] == "0.42000000"
    assert incident["started_at"] == "2026-11-22T10:00:00.000000Z"
    assert incident["breakdown"]["model"]["openai/gpt-4o"] == {
        "calls": 12,
        "cost_usd": "0.42000000",
    }
    assert len(incident["related_call_ids"]) == 12
    assert bundle["kind"] == "evidence"
    assert bundle["generated_at"] == bundle["as_of"] == "2026-11-22T12:00:00.000000Z"
    assert [entry["kind"] for entry in bundle["timeline"]] == [
        "created",
        "severity_escalated",
        "severity_escalated",
        "acknowledged",
        "resolved",
    ]


def test_a_column_added_later_passes_into_the_bundle() -> None:
    bundle = bundle_of(exported(evidence_parts(source(error_code_first="ETIMEDOUT"))))
    assert bundle["incident"]["error_code_first"] == "ETIMEDOUT"


def test_derived_times_and_sla_are_as_of_the_bundle() -> None:
    resolved = bundle_of(exported(evidence_parts(source())))["derived"]
    assert resolved == {
        "description": "Timeouts on openai/gpt-4o: 12 calls since 2026-11-22 10:00 UTC",
        "time_to_containment_ms": 300_000,
        "time_to_resolution_ms": 2_820_000,
        "sla": {
            "target_seconds": 14_400,
            "deadline": "2026-11-22T14:00:00.000000Z",
            "status": "met",
        },
    }
    open_row = source(lifecycle_state="ACKED", resolved_at=None, resolution_method=None)
    late = dataclasses.replace(open_row, as_of=T0 + timedelta(hours=5))
    derived = bundle_of(exported(evidence_parts(late)))["derived"]
    assert derived["time_to_resolution_ms"] is None
    assert derived["sla"]["status"] == "breached"


def test_events_lose_their_arrival_time_and_keep_free_form_numbers_as_text() -> None:
    event = evidence_event(failure_row(7))
    assert "received_at" not in event
    bundle = bundle_of(exported(evidence_parts(source()), events=8))
    written = bundle["events"][7]
    assert written["metadata"] == {"region": "eu-west-1", "latency_s": "30.5", "attempt": 1}
    assert written["cost_usd"] == "0.03500000"
    assert written["occurred_at"] == "2026-11-22T10:00:00.259000Z"
    assert written["type"] == "llm_call_failure"
    assert len(bundle["events"]) == 8


def test_the_configuration_is_recorded_in_seconds_and_counts() -> None:
    configuration = bundle_of(exported(evidence_parts(source())))["configuration"]
    assert configuration["aggregation"]["auto_resolve_after_seconds"] == 900
    assert configuration["aggregation"]["severity_thresholds"] == [10, 50, 200]
    assert configuration["sla_target_seconds"] == {
        "critical": 3600,
        "high": 14_400,
        "medium": 86_400,
        "low": 259_200,
    }


def test_the_same_rows_at_the_same_as_of_give_the_same_bytes() -> None:
    first = exported(evidence_parts(source()))
    assert exported(evidence_parts(source())) == first
    assert exported(evidence_parts(source(updated_at=T0, partition=7))) == first
    later = dataclasses.replace(source(), as_of=AS_OF + timedelta(seconds=1))
    other = exported(evidence_parts(later))
    assert bundle_of(other)["bundle_id"] != bundle_of(first)["bundle_id"]
    assert json.loads(other)["integrity"] != json.loads(first)["integrity"]


def test_bundle_ids_name_their_kind_and_are_deterministic() -> None:
    ids = {kind: bundle_id(kind, INCIDENT_ID, AS_OF) for kind in BundleKind}
    assert ids[BundleKind.EVIDENCE].startswith("EVD-")
    assert ids[BundleKind.SOC2].startswith("SOC2-")
    assert ids[BundleKind.DEBRIEF].startswith("DEB-")
    assert all(len(value.split("-")[1]) == 12 for value in ids.values())
    assert len(set(ids.values())) == 3
    assert bundle_id(BundleKind.EVIDENCE, str(INCIDENT_ID), AS_OF) == ids[BundleKind.EVIDENCE]


def test_every_kind_exports_a_file_that_verifies() -> None:
    files = [
        exported(evidence_parts(source())),
        exported(soc2_parts(source())),
        bundle_file(debrief(source(), Recurrence(30, 2))),
    ]
    assert all(verify(data).intact for data in files)
    assert [verify(data).kind for data in files] == ["evidence", "soc2", "debrief"]


def test_milliseconds_are_rounded_half_to_even_exactly() -> None:
    assert milliseconds(timedelta(microseconds=1500)) == 2
    assert milliseconds(timedelta(microseconds=2500)) == 2
    assert milliseconds(timedelta(microseconds=2501)) == 3
    assert milliseconds(None) is None


def controls(**fields: Any) -> dict[str, str]:
    parts = soc2_parts(source(**fields))
    return {control["control_id"]: control["status"] for control in parts["controls"]}


def test_a_contained_and_resolved_incident_demonstrates_every_control() -> None:
    assert controls() == dict.fromkeys(("CC7.2", "CC7.3", "CC7.4", "CC7.5"), "demonstrated")


def test_an_open_unacknowledged_incident_past_its_target_shows_detection_only() -> None:
    late = dataclasses.replace(
        source(
            lifecycle_state="ACTIVE",
            acked_at=None,
            acked_by=None,
            resolved_at=None,
            resolved_by=None,
            resolution_method=None,
        ),
        as_of=T0 + timedelta(hours=5),
    )
    statuses = {
        control["control_id"]: control["status"] for control in soc2_parts(late)["controls"]
    }
    assert statuses == {
        "CC7.2": "demonstrated",
        "CC7.3": "demonstrated",
        "CC7.4": "not_demonstrated",
        "CC7.5": "not_demonstrated",
    }


def test_auto_resolution_is_containment_without_a_person_and_a_reopen_weakens_recovery() -> None:
    auto = controls(acked_at=None, acked_by=None, resolution_method="auto", resolved_by="system")
    assert auto["CC7.4"] == "partial"
    assert auto["CC7.5"] == "demonstrated"
    assert controls(reopen_count=1)["CC7.5"] == "partial"
    late = T0 + timedelta(hours=5)
    assert controls(resolved_at=late)["CC7.5"] == "partial"


def test_a_missing_creation_entry_makes_detection_partial() -> None:
    without = dataclasses.replace(source(), timeline=source().timeline[1:])
    statuses = {c["control_id"]: c["status"] for c in soc2_parts(without)["controls"]}
    assert statuses["CC7.2"] == "partial"


@pytest.mark.parametrize(
    ("checks", "status"),
    [
        ([("baseline", True), ("more", True)], ControlStatus.DEMONSTRATED),
        ([("baseline", True), ("more", False)], ControlStatus.PARTIAL),
        ([("baseline", False), ("more", True)], ControlStatus.NOT_DEMONSTRATED),
        ([], ControlStatus.NOT_DEMONSTRATED),
    ],
)
def test_the_status_rule(checks: list[tuple[str, bool]], status: ControlStatus) -> None:
    assert status_of(checks) is status


def test_control_facts_come_from_the_rows_and_the_timeline() -> None:
    parts = soc2_parts(source())
    facts = {control["control_id"]: control["facts"] for control in parts["controls"]}
    assert facts["CC7.2"]["first_event_at"] == T0
    assert facts["CC7.2"]["detection_lag_ms"] == 0
    assert facts["CC7.3"]["initial_severity"] == "low"
    assert [step["to"] for step in facts["CC7.3"]["escalations"]] == ["medium", "high"]
    assert [command["kind"] for command in facts["CC7.4"]["commands"]] == [
        "acknowledged",
        "resolved",
    ]
    assert facts["CC7.4"]["time_to_containment_ms"] == 300_000
    assert facts["CC7.5"]["reopen_count"] == 0
    assert facts["CC7.5"]["lessons"][0]["kind"] == "severe_incident_resolved"


def test_the_attestation_counts_from_one_prints_zeros_and_points_at_the_files_hash() -> None:
    data = exported(soc2_parts(source()))
    attestation = bundle_of(data)["attestation"]
    assert [statement.split(".")[0] for statement in attestation["statements"]] == [
        "1",
        "2",
        "3",
        "4",
        "5",
    ]
    assert "reopened 0 times" in attestation["statements"][2]
    assert "N/A" not in data.decode()
    assert attestation["attested_at"] == attestation["scope"]["as_of"]
    assert attestation["scope"]["events"] == 12
    assert json.loads(data)["integrity"]["hash"] not in json.dumps(attestation)


@pytest.mark.parametrize(
    ("severity", "risk"),
    [("critical", "high"), ("high", "high"), ("medium", "medium"), ("low", "low")],
)
def test_the_debrief_risk_level_follows_the_severity(severity: str, risk: str) -> None:
    assert debrief(source(severity=severity), Recurrence(30, 0))["risk_level"] == risk


def test_the_debrief_is_one_page_of_facts_and_a_paragraph() -> None:
    page = debrief(source(reopen_count=1), Recurrence(30, 2))
    assert "events" not in page
    assert page["calls_affected"] == 12
    assert page["cost_usd"] == Decimal("0.42000000")
    assert page["time_to_contain"] == "5 min"
    assert page["time_to_resolve_ms"] == 2_820_000
    assert page["sla"]["status"] == "met"
    assert page["recurrence"] == {
        "fingerprint": "openai/gpt-4o/timeout",
        "window_days": 30,
        "previous_incidents": 2,
    }
    assert page["lessons"][0]["state"] == "pending"
    assert page["what_happened"] == (
        "Timeouts on openai/gpt-4o: 12 calls since 2026-11-22 10:00 UTC; the last at "
        "2026-11-22 10:40 UTC. It was rated high, a high risk. alice acknowledged it 5 min after "
        "it started. It was resolved by hand 47 min after it started, within its SLA target of "
        "4 h. It reopened once. The affected calls cost 0.42 USD. 2 other incidents of the same "
        "fingerprint started in the 30 days before."
    )


def test_the_debrief_of_an_open_incident_says_it_is_open() -> None:
    open_row = source(
        lifecycle_state="ACTIVE",
        acked_at=None,
        acked_by=None,
        resolved_at=None,
        resolution_method=None,
        cost_usd=Decimal(0),
    )
    text = debrief(open_row, Recurrence(30, 1))["what_happened"]
    assert "Nobody had acknowledged it as of 2026-11-22 12:00 UTC." in text
    assert "its SLA target of 4 h runs out 2026-11-22 14:00 UTC." in text
    assert "cost" not in text
    assert text.endswith("1 other incident of the same fingerprint started in the 30 days before.")
    late = dataclasses.replace(open_row, as_of=T0 + timedelta(hours=5))
    assert "past its SLA target of 4 h" in debrief(late, Recurrence(7, 0))["what_happened"]
