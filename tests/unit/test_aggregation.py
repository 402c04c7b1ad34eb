"""domain.aggregation, merge and replay: one or more tests per rule of aggregation.md."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from domain.aggregation import PartitionAggregator
from domain.config import AggregationConfig
from domain.contracts import (
    DeadLetterReason,
    FailureType,
    LifecycleCommand,
    PolicyViolation,
    Rejection,
    Signal,
)
from domain.incidents import Incident, incident_id_for
from domain.merge import Pending, TimeMerge, merge_complete
from domain.replay import Skipped, apply_message, replay
from tests.builders import T0, command, failure, secs, violation, wire

NOW = T0 + timedelta(days=30)
OVERFLOW_KEY = ("acme", "rate_limit_overflow", "*")


def aggregator(**config: Any) -> PartitionAggregator:
    return PartitionAggregator(AggregationConfig(**config))


def signal(agg: PartitionAggregator, event: Signal) -> uuid.UUID:
    outcome = agg.apply_signal(event, NOW)
    assert isinstance(outcome, uuid.UUID), outcome
    return outcome


def ok(agg: PartitionAggregator, cmd: LifecycleCommand) -> None:
    assert agg.apply_command(cmd) is None


def rejected(agg: PartitionAggregator, cmd: LifecycleCommand) -> DeadLetterReason:
    outcome = agg.apply_command(cmd)
    assert isinstance(outcome, Rejection)
    return outcome.reason


def timeline(agg: PartitionAggregator, incident_id: uuid.UUID | None = None) -> list[tuple]:
    """(kind, at, data) of the entries collected since the last take_changes (consumes them)."""
    return [
        (entry.kind.value, entry.at, entry.data)
        for entry in agg.take_changes().timeline
        if incident_id is None or entry.incident_id == incident_id
    ]


def timeout(event_id: str, at: datetime, model: str = "gpt-4o", **overrides: Any) -> Signal:
    return failure(event_id, "acme", at, model=model, **overrides)


def resolution(incident: Incident) -> tuple:
    return (
        incident.lifecycle_state.value,
        incident.resolved_at,
        incident.resolved_by,
        incident.resolution_method,
    )


# -- classification ------------------------------------------------------------------------------

FAILURE_TABLE = [
    ("timeout", "llm_failure", "LLM_TIMEOUT", "low", "LLM call failures"),
    ("exception", "llm_failure", "LLM_ERROR", "low", "LLM call failures"),
    ("invalid_output", "llm_failure", "INVALID_OUTPUT", "low", "LLM call failures"),
    ("provider_unavailable", "llm_failure", "PROVIDER_OUTAGE", "medium", "LLM call failures"),
    ("rate_limited", "rate_limit", "RATE_LIMIT", "medium", "Rate limit triggered"),
    ("budget_exceeded", "budget_breach", "BUDGET_EXCEEDED", "critical", "Budget limit exceeded"),
    ("content_filtered", "content_policy", "CONTENT_POLICY", "high", "Content policy violation"),
]


def test_the_failure_table_covers_every_failure_type() -> None:
    assert {row[0] for row in FAILURE_TABLE} == {member.value for member in FailureType}


@pytest.mark.parametrize(
    ("failure_type", "trigger", "category", "severity", "label"), FAILURE_TABLE
)
def test_llm_failures_are_classified_by_the_table(
    failure_type: str, trigger: str, category: str, severity: str, label: str
) -> None:
    agg = aggregator()
    event = failure(
        "e1", "acme", T0, provider="anthropic", model="claude", failure_type=failure_type
    )
    incident = agg.incidents[signal(agg, event)]
    fingerprint = f"anthropic/claude/{failure_type}"
    assert (
        incident.trigger_type,
        incident.category,
        incident.severity,
        incident.cause_type,
        incident.fingerprint,
        incident.fingerprints,
        incident.title,
    ) == (
        trigger,
        category,
        severity,
        "LLM_RUN",
        fingerprint,
        [fingerprint],
        f"{label}: {fingerprint}",
    )
    assert agg.keys == {("acme", trigger, fingerprint): incident.incident_id}
    assert timeline(agg) == [("created", T0, {"severity": severity})]


def test_violation_with_policy_type_takes_its_category_severity_and_cause() -> None:
    agg = aggregator()
    event = violation("v1", policy_type="pii_leak", severity="critical", cause_type="HUMAN")
    incident = agg.incidents[signal(agg, event)]
    assert (incident.trigger_type, incident.category, incident.severity, incident.cause_type) == (
        "policy_violation",
        "POLICY_PII_LEAK",
        "critical",
        "HUMAN",
    )
    assert incident.fingerprint == "pii-policy"
    assert incident.title == "Policy violation: pii-policy"
    assert agg.keys == {("acme", "policy_violation", "pii-policy"): incident.incident_id}


def test_violation_without_policy_type_defaults() -> None:
    raw = {
        "event_id": "v1",
        "tenant_id": "acme",
        "occurred_at": "2024-11-22T15:00:00+01:00",
        "run_id": "r1",
        "policy_id": "pii-policy",
        "violated_rule": "no emails",
        "policy_type": None,
        "cause_type": None,
        "severity": None,
    }
    parsed = PolicyViolation.model_validate_json(json.dumps(raw))
    assert parsed.occurred_at == T0
    agg = aggregator()
    incident = agg.incidents[signal(agg, parsed)]
    assert (incident.category, incident.severity, incident.cause_type) == (
        "POLICY_VIOLATION",
        "medium",
        "LLM_RUN",
    )


def test_custom_fingerprint_groups_across_models_but_not_across_trigger_types() -> None:
    agg = aggregator()
    first = signal(agg, timeout("e1", T0, "gpt-4o", fingerprint="checkout"))
    assert signal(agg, timeout("e2", T0 + secs(1), "claude", fingerprint="checkout")) == first
    other = signal(
        agg, timeout("e3", T0 + secs(2), failure_type="rate_limited", fingerprint="checkout")
    )
    policy = signal(agg, violation("v1", at=T0 + secs(3), fingerprint="checkout"))
    assert len({first, other, policy}) == 3
    assert agg.incidents[first].title == "LLM call failures: checkout"
    assert agg.incidents[first].calls_affected == 2
    assert agg.keys == {
        ("acme", "llm_failure", "checkout"): first,
        ("acme", "rate_limit", "checkout"): other,
        ("acme", "policy_violation", "checkout"): policy,
    }


# -- rule 1: join --------------------------------------------------------------------------------


def test_join_applies_events_of_the_key_to_the_open_incident() -> None:
    agg = aggregator()
    first = signal(agg, timeout("e1", T0))
    assert signal(agg, timeout("e2", T0 + secs(30))) == first
    assert signal(agg, timeout("e3", T0 - secs(20))) == first
    other_tenant = signal(agg, failure("e4", "globex", T0 + secs(40)))
    assert other_tenant != first
    incident = agg.incidents[first]
    assert incident.calls_affected == 3
    assert (incident.started_at, incident.last_event_at) == (T0 - secs(20), T0 + secs(30))
    assert incident.related_call_ids == ["e1", "e2", "e3"]
    assert incident.run_ids == ["run-e1", "run-e2", "run-e3"]
    assert [kind for kind, _, _ in timeline(agg, first)] == ["created"]


def test_join_an_acked_incident_keeps_it_acked() -> None:
    agg = aggregator()
    first = signal(agg, timeout("e1", T0))
    ok(agg, command("c1", first, at=T0 + secs(5)))
    assert signal(agg, timeout("e2", T0 + secs(5000))) == first
    incident = agg.incidents[first]
    assert incident.lifecycle_state.value == "ACKED"
    assert incident.calls_affected == 2


# -- severity ------------------------------------------------------------------------------------


def test_severity_escalates_at_10_50_200_calls() -> None:
    agg = aggregator()
    severities = {}
    for n in range(1, 201):
        incident_id = signal(agg, timeout(f"e{n}", T0 + secs(n)))
        severities[n] = agg.incidents[incident_id].severity
    assert [severities[n] for n in (9, 10, 49, 50, 199, 200)] == [
        "low",
        "medium",
        "medium",
        "high",
        "high",
        "critical",
    ]
    assert timeline(agg) == [
        ("created", T0 + secs(1), {"severity": "low"}),
        ("severity_escalated", T0 + secs(10), {"from": "low", "to": "medium"}),
        ("severity_escalated", T0 + secs(50), {"from": "medium", "to": "high"}),
        ("severity_escalated", T0 + secs(200), {"from": "high", "to": "critical"}),
    ]


def test_severity_rises_with_an_event_and_never_falls() -> None:
    agg = aggregator()
    first = signal(agg, violation("v1", severity="low"))
    signal(agg, violation("v2", at=T0 + secs(1), severity="high"))
    signal(agg, violation("v3", at=T0 + secs(2), severity="low"))
    for n in range(4, 12):  # 11 calls: the medium threshold is below "high"
        signal(agg, violation(f"v{n}", at=T0 + secs(n), severity="low"))
    assert agg.incidents[first].severity == "high"
    assert agg.incidents[first].calls_affected == 11
    assert timeline(agg, first) == [
        ("created", T0, {"severity": "low"}),
        ("severity_escalated", T0 + secs(1), {"from": "low", "to": "high"}),
    ]


def test_threshold_severity_is_configurable() -> None:
    agg = aggregator(severity_thresholds=(2, 3, 4))
    for n in range(1, 5):
        incident_id = signal(agg, timeout(f"e{n}", T0 + secs(n)))
    assert agg.incidents[incident_id].severity == "critical"
    assert [data["to"] for kind, _, data in timeline(agg) if kind == "severity_escalated"] == [
        "medium",
        "high",
        "critical",
    ]


# -- rule 2: late join ---------------------------------------------------------------------------


def test_late_join_keeps_a_manual_resolution() -> None:
    agg = aggregator()
    first = signal(agg, timeout("e1", T0))
    signal(agg, timeout("e2", T0 + secs(100)))
    ok(agg, command("c1", first, "resolve", at=T0 + secs(200), resolution_method="rollback"))
    assert signal(agg, timeout("e3", T0 + secs(150))) == first
    incident = agg.incidents[first]
    assert resolution(incident) == ("RESOLVED", T0 + secs(200), "alice", "rollback")
    assert (incident.calls_affected, incident.reopen_count) == (3, 0)
    assert incident.last_event_at == T0 + secs(150)
    assert [kind for kind, _, _ in timeline(agg, first)] == ["created", "resolved"]


def test_late_join_recomputes_an_auto_resolution_that_stays_behind_the_watermark() -> None:
    agg = aggregator()
    first = signal(agg, timeout("e1", T0))
    signal(agg, timeout("e2", T0 + secs(100)))
    signal(agg, failure("x1", "globex", T0 + secs(2000)))
    assert resolution(agg.incidents[first]) == ("RESOLVED", T0 + secs(1000), "system", "auto")
    assert signal(agg, timeout("e3", T0 + secs(50))) == first  # before last_event_at
    assert agg.incidents[first].resolved_at == T0 + secs(1000)
    assert signal(agg, timeout("e4", T0 + secs(500))) == first
    incident = agg.incidents[first]
    assert resolution(incident) == ("RESOLVED", T0 + secs(1400), "system", "auto")
    assert (incident.calls_affected, incident.reopen_count) == (4, 0)
    assert timeline(agg, first) == [
        ("created", T0, {"severity": "low"}),
        ("auto_resolved", T0 + secs(1000), {}),
    ]


def test_late_join_reactivates_an_auto_resolution_that_moves_past_the_watermark() -> None:
    agg = aggregator()
    first = signal(agg, timeout("e1", T0))
    signal(agg, failure("x1", "globex", T0 + secs(1000)))
    assert resolution(agg.incidents[first]) == ("RESOLVED", T0 + secs(900), "system", "auto")
    assert signal(agg, timeout("e2", T0 + secs(800))) == first
    incident = agg.incidents[first]
    assert resolution(incident) == ("ACTIVE", None, None, None)
    assert incident.reopen_count == 0
    assert [kind for kind, _, _ in timeline(agg, first)] == ["created", "auto_resolved"]
    signal(agg, failure("x2", "globex", T0 + secs(1699)))
    assert incident.lifecycle_state.value == "ACTIVE"
    signal(agg, failure("x3", "globex", T0 + secs(1700)))
    assert resolution(incident) == ("RESOLVED", T0 + secs(1700), "system", "auto")
    assert timeline(agg, first) == [("auto_resolved", T0 + secs(1700), {})]


# -- rule 3: reopen ------------------------------------------------------------------------------


def test_reopen_within_the_window_after_resolution() -> None:
    agg = aggregator()
    first = signal(agg, timeout("e1", T0))
    ok(agg, command("c1", first, "resolve", at=T0 + secs(100)))
    assert signal(agg, timeout("e2", T0 + secs(399))) == first
    incident = agg.incidents[first]
    assert resolution(incident) == ("ACTIVE", None, None, None)
    assert (incident.reopen_count, incident.calls_affected) == (1, 2)
    assert incident.last_event_at == T0 + secs(399)
    assert timeline(agg, first)[-1] == ("reopened", T0 + secs(399), {"reopen_count": 1})
    ok(agg, command("c2", first, "resolve", at=T0 + secs(500)))
    assert signal(agg, timeout("e3", T0 + secs(500))) == first  # t == resolved_at reopens
    assert incident.reopen_count == 2


def test_reopen_an_auto_resolved_incident() -> None:
    agg = aggregator()
    first = signal(agg, timeout("e1", T0))
    signal(agg, failure("x1", "globex", T0 + secs(1000)))
    assert signal(agg, timeout("e2", T0 + secs(1199))) == first
    assert resolution(agg.incidents[first]) == ("ACTIVE", None, None, None)
    assert agg.incidents[first].reopen_count == 1


def test_no_reopen_after_the_window_creates_a_new_incident() -> None:
    agg = aggregator()
    first = signal(agg, timeout("e1", T0))
    ok(agg, command("c1", first, "resolve", at=T0 + secs(100)))
    second = signal(agg, timeout("e2", T0 + secs(400)))
    assert second == incident_id_for("e2") != first
    assert agg.keys[("acme", "llm_failure", "openai/gpt-4o/timeout")] == second
    assert agg.incidents[first].calls_affected == 1
    assert agg.incidents[first].lifecycle_state.value == "RESOLVED"
    assert agg.incidents[second].reopen_count == 0
    assert signal(agg, timeout("e3", T0 + secs(401))) == second
    assert signal(agg, timeout("e4", T0 + secs(50))) == second  # the key maps to the newer one


# -- rule 4: storm merge -------------------------------------------------------------------------


def test_storm_merge_of_models_within_the_cooldown() -> None:
    agg = aggregator()
    first = signal(agg, timeout("e1", T0, "gpt-4o"))
    assert signal(agg, timeout("e2", T0 + secs(30), "gpt-4o-mini")) == first
    assert signal(agg, timeout("e3", T0 + secs(59), "o1")) == first
    assert signal(agg, timeout("e4", T0 + secs(70), "gpt-4o-mini")) == first  # joins by key now
    incident = agg.incidents[first]
    fingerprints = ["openai/gpt-4o/timeout", "openai/gpt-4o-mini/timeout", "openai/o1/timeout"]
    assert incident.fingerprints == fingerprints
    assert incident.fingerprint == fingerprints[0]
    assert incident.calls_affected == 4
    assert {key: agg.keys[key] for key in agg.keys} == {
        ("acme", "llm_failure", fp): first for fp in fingerprints
    }
    assert timeline(agg, first) == [
        ("created", T0, {"severity": "low"}),
        ("fingerprint_merged", T0 + secs(30), {"fingerprint": fingerprints[1]}),
        ("fingerprint_merged", T0 + secs(59), {"fingerprint": fingerprints[2]}),
    ]


def test_storm_merge_stops_at_the_cooldown_and_needs_the_same_category() -> None:
    agg = aggregator()
    first = signal(agg, timeout("e1", T0, "gpt-4o"))
    assert signal(agg, timeout("e2", T0 + secs(60), "mini")) == incident_id_for("e2")
    other = signal(agg, timeout("e3", T0 + secs(10), "o1", failure_type="exception"))
    assert other == incident_id_for("e3")
    assert agg.incidents[first].fingerprints == ["openai/gpt-4o/timeout"]


def test_storm_merge_skips_resolved_incidents_and_incidents_that_start_later() -> None:
    agg = aggregator()
    first = signal(agg, timeout("e1", T0 + secs(100), "a"))
    assert signal(agg, timeout("e2", T0 + secs(50), "b")) == incident_id_for("e2")  # J starts after
    ok(agg, command("c1", first, "resolve", at=T0 + secs(101)))
    assert signal(agg, timeout("e3", T0 + secs(105), "c")) == incident_id_for("e2")


def test_storm_merge_picks_the_incident_that_started_last() -> None:
    agg = aggregator()
    later = signal(agg, timeout("e1", T0 + secs(100), "a"))
    earlier = signal(agg, timeout("e2", T0 + secs(50), "b"))
    assert earlier != later
    assert signal(agg, timeout("e3", T0 + secs(105), "c")) == later
    assert agg.incidents[later].fingerprints == ["openai/a/timeout", "openai/c/timeout"]
    assert agg.incidents[earlier].fingerprints == ["openai/b/timeout"]


def test_storm_merge_joins_an_acked_incident() -> None:
    agg = aggregator()
    first = signal(agg, timeout("e1", T0, "a"))
    ok(agg, command("c1", first, at=T0 + secs(1)))
    assert signal(agg, timeout("e2", T0 + secs(2), "b")) == first


def test_storm_merge_never_targets_the_overflow_incident() -> None:
    agg = aggregator(max_incidents_per_tenant_per_hour=1)
    signal(agg, timeout("e1", T0, "a"))
    overflow = signal(agg, timeout("e2", T0 + secs(100), "b"))
    assert agg.incidents[overflow].is_overflow
    assert signal(agg, timeout("e3", T0 + secs(110), "c")) == overflow
    assert agg.incidents[overflow].fingerprints == ["*"]
    assert "fingerprint_merged" not in [kind for kind, _, _ in timeline(agg)]
    assert ("acme", "llm_failure", "openai/c/timeout") not in agg.keys


# -- rule 5: rate limit --------------------------------------------------------------------------


def test_rate_limit_sends_events_past_the_cap_to_the_overflow_incident() -> None:
    agg = aggregator(max_incidents_per_tenant_per_hour=3, auto_resolve_after_seconds=100_000)
    own = [signal(agg, timeout(f"e{n}", T0 + secs(100 * n), f"m{n}")) for n in range(3)]
    assert own == [incident_id_for(f"e{n}") for n in range(3)]
    overflow = signal(agg, timeout("o1", T0 + secs(300), "m3", cost_usd="0.1"))
    assert overflow == incident_id_for("o1")
    assert signal(agg, timeout("o2", T0 + secs(310), "m4", cost_usd="0.2")) == overflow
    assert signal(agg, timeout("o3", T0 + secs(320), "m3")) == overflow
    assert signal(agg, violation("o4", at=T0 + secs(330), cause_type="HUMAN")) == overflow
    assert signal(agg, timeout("e4", T0 + secs(340), "m0")) == own[0]  # join comes first
    incident = agg.incidents[overflow]
    assert (
        incident.title,
        incident.category,
        incident.severity,
        incident.fingerprints,
        incident.trigger_type,
        incident.fingerprint,
        incident.cause_type,
    ) == (
        "Incident rate limit reached: events aggregated",
        "RATE_LIMIT_OVERFLOW",
        "high",
        ["*"],
        "rate_limit_overflow",
        "*",
        "LLM_RUN",
    )
    assert incident.calls_affected == 4
    assert incident.cost_usd == Decimal("0.3")
    assert incident.absorbed == {
        "llm_failure": {"openai/m3/timeout": 2, "openai/m4/timeout": 1},
        "policy_violation": {"pii-policy": 1},
    }
    assert agg.keys[OVERFLOW_KEY] == overflow
    assert set(agg.keys) == {OVERFLOW_KEY} | {
        ("acme", "llm_failure", f"openai/m{n}/timeout") for n in range(3)
    }
    assert timeline(agg, overflow) == [("overflow_started", T0 + secs(300), {"cap": 3})]


def test_overflow_takes_the_cause_type_of_the_event_that_opens_it() -> None:
    agg = aggregator(max_incidents_per_tenant_per_hour=1)
    signal(agg, timeout("e1", T0))
    overflow = signal(agg, violation("v1", at=T0 + secs(1), cause_type="HUMAN"))
    assert agg.incidents[overflow].cause_type == "HUMAN"
    assert agg.incidents[overflow].severity == "high"


def test_rate_limit_hour_window_slides() -> None:
    agg = aggregator(max_incidents_per_tenant_per_hour=3, auto_resolve_after_seconds=100_000)
    for n in range(3):
        signal(agg, timeout(f"e{n}", T0 + secs(100 * n), f"m{n}"))
    overflow = signal(agg, timeout("o1", T0 + secs(3599), "late"))
    assert agg.incidents[overflow].is_overflow
    fresh = signal(agg, timeout("f1", T0 + secs(3600), "fresh"))
    assert fresh == incident_id_for("f1")
    assert agg.keys[("acme", "llm_failure", "openai/fresh/timeout")] == fresh
    assert (
        signal(agg, timeout("o2", T0 + secs(3601), "again", failure_type="exception")) == overflow
    )


def test_rate_limit_is_per_tenant_and_storm_merges_do_not_count() -> None:
    agg = aggregator(max_incidents_per_tenant_per_hour=2)
    first = signal(agg, timeout("e1", T0, "a"))
    assert signal(agg, timeout("e2", T0 + secs(10), "b")) == first  # merged: no new start
    second = signal(agg, timeout("e3", T0 + secs(20), failure_type="exception"))
    assert second == incident_id_for("e3")
    assert agg.incidents[
        signal(agg, timeout("e4", T0 + secs(30), "c", failure_type="rate_limited"))
    ].is_overflow
    other = signal(agg, failure("g1", "globex", T0 + secs(40), failure_type="rate_limited"))
    assert not agg.incidents[other].is_overflow


def test_rate_limit_counts_a_reopened_incident_once() -> None:
    agg = aggregator(max_incidents_per_tenant_per_hour=2)
    first = signal(agg, timeout("e1", T0, "a"))
    ok(agg, command("c1", first, "resolve", at=T0 + secs(10)))
    assert signal(agg, timeout("e2", T0 + secs(100), "a")) == first
    assert agg.incidents[first].reopen_count == 1
    second = signal(agg, timeout("e3", T0 + secs(200), "b"))
    assert second == incident_id_for("e3")
    assert agg.incidents[signal(agg, timeout("e4", T0 + secs(300), "c"))].is_overflow


def test_a_late_event_cannot_open_an_incident_inside_a_full_hour() -> None:
    """aggregation.md caps new incidents "in any hour" (configuration); rule 5's own window is
    `(t - 1h, t]`, empty here. The code keeps the cap on every hour holding t: overflow."""
    agg = aggregator(max_incidents_per_tenant_per_hour=2)
    signal(agg, timeout("e1", T0 + secs(1000), "a"))
    signal(agg, timeout("e2", T0 + secs(2000), "b", failure_type="exception"))
    late = signal(agg, timeout("e3", T0 + secs(500), "c", failure_type="rate_limited"))
    assert agg.incidents[late].is_overflow


def test_the_cap_counts_an_incident_when_it_was_opened_not_its_moved_start() -> None:
    """A late join moves `started_at` earlier but not `opened`, the time the cap counts."""
    agg = aggregator(max_incidents_per_tenant_per_hour=1)
    first = signal(agg, timeout("e1", T0 + secs(4000), "a"))
    assert signal(agg, timeout("e2", T0 + secs(100), "a")) == first
    incident = agg.incidents[first]
    assert (incident.started_at, incident.opened) == (T0 + secs(100), T0 + secs(4000))
    second = signal(agg, timeout("e3", T0 + secs(150), "b", failure_type="exception"))
    assert second == incident_id_for("e3")


def test_overflow_follows_join_reopen_late_join_and_auto_resolve() -> None:
    agg = aggregator(max_incidents_per_tenant_per_hour=1)
    signal(agg, timeout("e1", T0, "a"))
    overflow = signal(agg, timeout("o1", T0 + secs(100), "b"))
    ok(agg, command("c1", overflow, "resolve", at=T0 + secs(150)))
    assert signal(agg, timeout("o2", T0 + secs(200), "c")) == overflow
    incident = agg.incidents[overflow]
    assert (incident.lifecycle_state.value, incident.reopen_count) == ("ACTIVE", 1)
    signal(agg, failure("x1", "globex", T0 + secs(1100)))
    assert resolution(incident) == ("RESOLVED", T0 + secs(1100), "system", "auto")
    assert signal(agg, timeout("o3", T0 + secs(1050), "d")) == overflow  # late join
    assert resolution(incident) == ("ACTIVE", None, None, None)
    assert (incident.reopen_count, incident.calls_affected) == (1, 3)
    assert incident.absorbed == {
        "llm_failure": {"openai/b/timeout": 1, "openai/c/timeout": 1, "openai/d/timeout": 1}
    }
    kinds = [kind for kind, _, _ in timeline(agg, overflow)]
    assert kinds == ["overflow_started", "resolved", "reopened", "auto_resolved"]


def test_a_new_overflow_incident_after_the_window() -> None:
    agg = aggregator(max_incidents_per_tenant_per_hour=1)
    signal(agg, timeout("e1", T0, "a"))
    overflow = signal(agg, timeout("o1", T0 + secs(100), "b"))
    ok(agg, command("c1", overflow, "resolve", at=T0 + secs(110)))
    newer = signal(agg, timeout("o2", T0 + secs(410), "c"))
    assert newer == incident_id_for("o2") != overflow
    assert agg.keys[OVERFLOW_KEY] == newer
    assert agg.incidents[overflow].calls_affected == 1
    assert agg.incidents[newer].is_overflow


# -- the watermark and auto-resolve --------------------------------------------------------------


def test_auto_resolve_when_the_watermark_passes_last_event_plus_r() -> None:
    agg = aggregator()
    first = signal(agg, timeout("e1", T0))
    signal(agg, timeout("e2", T0 + secs(100)))
    signal(agg, failure("x1", "globex", T0 + secs(999)))
    assert agg.incidents[first].lifecycle_state.value == "ACTIVE"
    assert agg.watermark == T0 + secs(999)
    signal(agg, failure("x2", "globex", T0 + secs(1000)))
    assert resolution(agg.incidents[first]) == ("RESOLVED", T0 + secs(1000), "system", "auto")
    assert timeline(agg, first)[-1] == ("auto_resolved", T0 + secs(1000), {})


def test_idle_advance_resolves_and_the_watermark_never_moves_back() -> None:
    agg = aggregator()
    first = signal(agg, timeout("e1", T0))
    agg.advance_watermark(T0 + secs(5000))
    assert resolution(agg.incidents[first]) == ("RESOLVED", T0 + secs(900), "system", "auto")
    agg.advance_watermark(T0)
    assert agg.watermark == T0 + secs(5000)
    signal(agg, failure("x1", "globex", T0 + secs(10)))
    assert agg.watermark == T0 + secs(5000)


def test_acked_incidents_never_auto_resolve() -> None:
    agg = aggregator()
    first = signal(agg, timeout("e1", T0))
    ok(agg, command("c1", first, at=T0 + secs(10)))
    agg.advance_watermark(T0 + timedelta(days=3))
    incident = agg.incidents[first]
    assert resolution(incident) == ("ACKED", None, None, None)
    assert signal(agg, timeout("e2", T0 + timedelta(days=3))) == first


def test_the_sweep_runs_before_every_event_even_when_the_watermark_stays() -> None:
    """An incident opened by an event later than R is ACTIVE only until the next event's sweep."""
    agg = aggregator()
    signal(agg, failure("x1", "globex", T0 + secs(5000)))
    late = signal(agg, timeout("e1", T0 + secs(1000), "a"))
    assert agg.incidents[late].lifecycle_state.value == "ACTIVE"
    other = signal(agg, timeout("e2", T0 + secs(1010), "b"))  # same category, inside C
    assert resolution(agg.incidents[late]) == ("RESOLVED", T0 + secs(1900), "system", "auto")
    assert other == incident_id_for("e2")
    assert agg.incidents[late].fingerprints == ["openai/a/timeout"]
    assert rejected(agg, command("c1", late)) is DeadLetterReason.INVALID_TRANSITION


# -- time guards ---------------------------------------------------------------------------------


def test_future_timestamp_is_relative_to_now_and_does_not_move_the_watermark() -> None:
    agg = aggregator()
    signal(agg, timeout("e1", T0))
    outcome = agg.apply_signal(timeout("e2", NOW + secs(301)), NOW)
    assert isinstance(outcome, Rejection)
    assert outcome.reason is DeadLetterReason.FUTURE_TIMESTAMP
    assert agg.watermark == T0
    assert len(agg.incidents) == 1
    assert agg.take_changes().incidents.keys() == {incident_id_for("e1")}
    assert isinstance(agg.apply_signal(timeout("e3", NOW + secs(300)), NOW), uuid.UUID)
    assert agg.watermark == NOW + secs(300)


def test_too_late_is_relative_to_the_watermark_and_does_not_move_it() -> None:
    agg = aggregator()
    assert isinstance(agg.apply_signal(timeout("e0", T0 - timedelta(days=20)), NOW), uuid.UUID)
    mark = T0 + timedelta(days=10)
    signal(agg, failure("x1", "globex", mark))
    outcome = agg.apply_signal(timeout("e1", mark - timedelta(days=7) - secs(1)), NOW)
    assert isinstance(outcome, Rejection)
    assert outcome.reason is DeadLetterReason.TOO_LATE
    assert agg.watermark == mark
    assert not agg.knows(incident_id_for("e1"))
    assert signal(agg, timeout("e2", mark - timedelta(days=7), "b")) == incident_id_for("e2")
    assert agg.watermark == mark


# -- lifecycle commands --------------------------------------------------------------------------


def test_acknowledge_then_resolve() -> None:
    agg = aggregator()
    first = signal(agg, timeout("e1", T0))
    ok(agg, command("c1", first, at=T0 + secs(5), issued_by="bob", note="on it"))
    incident = agg.incidents[first]
    assert (incident.lifecycle_state.value, incident.acked_at, incident.acked_by) == (
        "ACKED",
        T0 + secs(5),
        "bob",
    )
    ok(agg, command("c2", first, "resolve", at=T0 + secs(9), resolution_method="manual_closure"))
    assert resolution(incident) == ("RESOLVED", T0 + secs(9), "alice", "manual_closure")
    assert incident.acked_at == T0 + secs(5)
    assert timeline(agg, first)[1:] == [
        ("acknowledged", T0 + secs(5), {"by": "bob", "note": "on it"}),
        ("resolved", T0 + secs(9), {"by": "alice", "method": "manual_closure", "note": None}),
    ]
    assert agg.watermark == T0  # commands do not move it


@pytest.mark.parametrize("method", ["manual", "rollback", "manual_closure"])
def test_resolve_active_with_each_method(method: str) -> None:
    agg = aggregator()
    first = signal(agg, timeout("e1", T0))
    ok(agg, command("c1", first, "resolve", at=T0 + secs(1), resolution_method=method))
    assert resolution(agg.incidents[first]) == ("RESOLVED", T0 + secs(1), "alice", method)


def test_commands_for_unknown_incidents_are_rejected() -> None:
    agg = aggregator()
    first = signal(agg, timeout("e1", T0))
    signal(agg, failure("g1", "globex", T0))
    for target, tenant in [
        (uuid.uuid4(), "acme"),
        (incident_id_for("g1"), "acme"),
        ("not-a-uuid", "acme"),
        (first, "globex"),
    ]:
        for action in ("acknowledge", "resolve"):
            cmd = command("c1", target, action, tenant=tenant)
            assert rejected(agg, cmd) is DeadLetterReason.UNKNOWN_INCIDENT
    assert agg.incidents[first].lifecycle_state.value == "ACTIVE"
    assert agg.incidents[incident_id_for("g1")].lifecycle_state.value == "ACTIVE"


def test_commands_that_do_not_fit_the_state_are_rejected_without_effect() -> None:
    agg = aggregator()
    first = signal(agg, timeout("e1", T0))
    ok(agg, command("c1", first, at=T0 + secs(1)))
    agg.take_changes()
    before = agg.incidents[first].snapshot()
    assert (
        rejected(agg, command("c2", first, at=T0 + secs(2))) is DeadLetterReason.INVALID_TRANSITION
    )
    ok(agg, command("c3", first, "resolve", at=T0 + secs(3)))
    agg.take_changes()
    after = agg.incidents[first].snapshot()
    assert after["version"] == before["version"] + 1
    for action in ("acknowledge", "resolve"):
        cmd = command("c4", first, action, at=T0 + secs(4))
        assert rejected(agg, cmd) is DeadLetterReason.INVALID_TRANSITION
    assert agg.incidents[first].snapshot() == after
    changes = agg.take_changes()
    assert (changes.incidents, changes.timeline) == ({}, [])


# -- ids, call ids, cost, versions ---------------------------------------------------------------


def test_incident_id_is_uuid5_of_the_first_event_id() -> None:
    expected = uuid.uuid5(uuid.NAMESPACE_URL, "incidentflow:evt-42")
    agg = aggregator()
    assert signal(agg, timeout("evt-42", T0 + secs(10))) == expected
    assert signal(agg, timeout("evt-41", T0)) == expected  # earlier in time, applied later
    assert incident_id_for("evt-42") == expected


def test_related_call_ids_are_capped_while_counts_stay_exact() -> None:
    agg = aggregator(max_related_calls_per_incident=3)
    first = signal(agg, timeout("e1", T0, call_id="call-a"))
    signal(agg, timeout("e2", T0 + secs(1), call_id="call-a"))
    signal(agg, timeout("e3", T0 + secs(2)))
    signal(agg, timeout("e4", T0 + secs(3), call_id="call-b"))
    signal(agg, timeout("e5", T0 + secs(4), call_id="call-c"))
    incident = agg.incidents[first]
    assert incident.related_call_ids == ["call-a", "e3", "call-b"]
    assert incident.calls_affected == 5
    assert len(incident.run_ids) == 3


def test_violations_list_their_event_id_as_call_id() -> None:
    agg = aggregator()
    first = signal(agg, violation("v1"))
    assert agg.incidents[first].related_call_ids == ["v1"]


def test_cost_is_an_exact_decimal_sum() -> None:
    agg = aggregator()
    first = signal(agg, timeout("e1", T0, cost_usd="0.1"))
    signal(agg, timeout("e2", T0 + secs(1), cost_usd="0.2"))
    signal(agg, timeout("e3", T0 + secs(2), cost_usd="0.000000015"))  # quantized half-even
    signal(agg, timeout("e4", T0 + secs(3)))
    cost = agg.incidents[first].cost_usd
    assert cost == Decimal("0.30000002")
    assert agg.incidents[first].snapshot()["cost_usd"] == "0.30000002"


def test_version_counts_each_change() -> None:
    agg = aggregator()
    first = signal(agg, timeout("e1", T0))
    incident = agg.incidents[first]
    assert incident.version == 1
    signal(agg, timeout("e2", T0 + secs(1), "b"))  # storm merge + apply: one change
    assert incident.version == 2
    ok(agg, command("c1", first, "resolve", at=T0 + secs(2)))
    assert incident.version == 3
    rejected(agg, command("c2", first, "resolve", at=T0 + secs(3)))
    assert incident.version == 3
    signal(agg, timeout("e3", T0 + secs(4)))  # reopen + apply: one change
    assert incident.version == 4
    signal(agg, failure("x1", "globex", T0 + secs(2000)))  # auto-resolve
    assert incident.version == 5
    signal(agg, timeout("e4", T0 + secs(3)))  # late join revisiting the auto-resolution
    assert incident.version == 6


# -- evict and take_changes ----------------------------------------------------------------------


def _resolved_at(resolve_after: int, watermark: int) -> tuple[PartitionAggregator, uuid.UUID]:
    agg = aggregator(
        max_lateness_seconds=1000,
        max_incidents_per_tenant_per_hour=1,
        auto_resolve_after_seconds=100_000,
    )
    first = signal(agg, timeout("e1", T0, "a"))
    assert signal(agg, timeout("e2", T0 + secs(30), "b")) == first  # a merged key
    ok(agg, command("c1", first, "resolve", at=T0 + secs(resolve_after)))
    signal(agg, failure("x1", "globex", T0 + secs(watermark)))
    return agg, first


def test_evict_keeps_an_incident_whose_start_still_counts_for_the_rate_limit() -> None:
    agg, first = _resolved_at(10, 4599)
    assert agg.evict() == []
    # An event at the horizon is still accepted, and the start of `first` still counts for it.
    assert agg.incidents[
        signal(agg, timeout("e3", T0 + secs(3599), "z", failure_type="exception"))
    ].is_overflow
    agg, first = _resolved_at(10, 4600)
    assert agg.evict() == [first]
    assert not agg.knows(first)
    assert first not in agg.incidents
    assert not any(target == first for target in agg.keys.values())
    outcome = agg.apply_signal(timeout("e3", T0 + secs(3599), "z"), NOW)
    assert isinstance(outcome, Rejection)
    assert outcome.reason is DeadLetterReason.TOO_LATE


def test_evict_keeps_an_incident_that_a_late_event_could_reopen() -> None:
    agg, first = _resolved_at(3500, 4799)
    assert agg.evict() == []
    assert signal(agg, timeout("e3", T0 + secs(3799), "b")) == first
    assert agg.incidents[first].reopen_count == 1
    agg, first = _resolved_at(3500, 4800)
    assert agg.evict() == [first]
    assert agg.keys == {("globex", "llm_failure", "openai/gpt-4o/timeout"): incident_id_for("x1")}
    assert rejected(agg, command("c2", first, "resolve")) is DeadLetterReason.UNKNOWN_INCIDENT


def test_evict_never_drops_open_incidents() -> None:
    agg = aggregator(max_lateness_seconds=10)
    assert agg.evict() == []  # no watermark yet
    acked = signal(agg, timeout("e1", T0))
    ok(agg, command("c1", acked, at=T0))
    signal(agg, failure("x1", "globex", T0 + timedelta(days=2)))
    assert agg.evict() == []
    assert agg.knows(acked)


def test_restore_brings_back_an_evicted_incident_for_a_command() -> None:
    agg, first = _resolved_at(10, 4600)
    incident = agg.incidents[first]
    agg.evict()
    agg.restore(incident)
    assert agg.knows(first)
    assert rejected(agg, command("c2", first, "resolve")) is DeadLetterReason.INVALID_TRANSITION


def test_take_changes_returns_each_touched_incident_once_then_starts_afresh() -> None:
    agg = aggregator()
    first = signal(agg, timeout("e1", T0))
    second = signal(agg, timeout("e2", T0 + secs(1), failure_type="exception"))
    signal(agg, timeout("e3", T0 + secs(2)))
    changes = agg.take_changes()
    assert list(changes.incidents) == [first, second]
    assert changes.incidents[first] is agg.incidents[first]
    assert changes.incidents[first].version == 2
    assert [(entry.incident_id, entry.kind.value) for entry in changes.timeline] == [
        (first, "created"),
        (second, "created"),
    ]
    empty = agg.take_changes()
    assert (empty.incidents, empty.timeline) == ({}, [])
    ok(agg, command("c1", second, at=T0 + secs(3)))
    assert list(agg.take_changes().incidents) == [second]


# -- TimeMerge -----------------------------------------------------------------------------------


def _pending(source: int, offset: int, at: datetime | None) -> Pending[str]:
    return Pending(at, source, offset, f"{source}:{offset}")


def test_merge_takes_the_earliest_head_and_breaks_ties_by_topic_then_offset() -> None:
    merge: TimeMerge[str] = TimeMerge()
    for source in (2, 1, 0):
        merge.push(_pending(source, 0, T0))
        merge.push(_pending(source, 1, T0))
    merge.push(_pending(2, 2, T0 - secs(1)))  # behind a later head: offset order wins
    order = []
    while (pending := merge.pop(lambda source: False)) is not None:
        order.append(pending.item)
    assert order == ["0:0", "0:1", "1:0", "1:1", "2:0", "2:1", "2:2"]


def test_merge_takes_an_unparseable_head_at_once_even_while_waiting() -> None:
    merge: TimeMerge[str] = TimeMerge()
    merge.push(_pending(0, 0, T0))
    merge.push(_pending(2, 0, None))
    merge.push(_pending(2, 1, T0 - secs(5)))
    asked: list[int] = []

    def waiting(source: int) -> bool:
        asked.append(source)
        return True

    first = merge.pop(waiting)
    assert first is not None
    assert first.item == "2:0"
    assert merge.pop(waiting) is None  # source 1 is empty and may still deliver
    assert asked == [1]
    assert len(merge) == 2
    second = merge.pop(lambda source: False)
    assert second is not None
    assert second.item == "2:1"


def test_merge_waits_on_an_empty_source_only_when_told() -> None:
    merge: TimeMerge[str] = TimeMerge()
    assert merge.pop(lambda source: True) is None
    assert merge.pop(lambda source: False) is None
    merge.push(_pending(1, 0, T0))
    assert merge.pop(lambda source: source == 0) is None
    assert merge.buffered(1) == 1
    assert merge.pop(lambda source: source == 2) is None
    pending = merge.pop(lambda source: False)
    assert pending is not None
    assert pending.item == "1:0"


def test_merge_complete_interleaves_sources_by_time() -> None:
    sources = [
        [_pending(0, 0, T0 + secs(2)), _pending(0, 1, T0 + secs(5))],
        [_pending(1, 0, T0 + secs(2)), _pending(1, 1, None)],
        [_pending(2, 0, T0 + secs(1))],
    ]
    assert [entry.item for entry in merge_complete(sources)] == ["2:0", "0:0", "1:0", "1:1", "0:1"]


# -- replay and apply_message --------------------------------------------------------------------


def test_replay_skips_duplicates_and_dead_letters_invalid_messages() -> None:
    first = timeout("e1", T0)
    ack = command("c1", incident_id_for("e1"), at=T0 + secs(1))
    log = {
        3: [
            [wire(first), wire(first), b"{not json", wire(timeout("e2", T0 + secs(2)))],
            [wire(violation("e1", at=T0 + secs(1))), b'{"event_id": "v"}'],
            [wire(ack), wire(ack), wire(command("c0", incident_id_for("e9"), at=T0 - secs(1)))],
        ]
    }
    result = replay(log, AggregationConfig(), NOW)
    incident = result.incidents[incident_id_for("e1")]
    assert incident.calls_affected == 2
    assert incident.lifecycle_state.value == "ACKED"
    assert result.event_incidents == {"e1": incident.incident_id, "e2": incident.incident_id}
    assert result.applied_commands == ["c1"]
    assert [(d.source, d.partition, d.offset, d.rejection.reason) for d in result.dead_letters] == [
        (0, 3, 2, DeadLetterReason.INVALID_JSON),
        (1, 3, 1, DeadLetterReason.SCHEMA_VIOLATION),
        (2, 3, 2, DeadLetterReason.UNKNOWN_INCIDENT),
    ]
    assert result.watermarks == {3: T0 + secs(2)}
    assert [entry.kind.value for entry in result.timeline] == ["created", "acknowledged"]


def test_apply_message_routes_rejections_duplicates_and_messages() -> None:
    agg = aggregator()
    bad = Rejection(DeadLetterReason.INVALID_JSON, "x")
    assert apply_message(agg, bad, NOW, lambda message: False) is bad
    assert apply_message(agg, timeout("e1", T0), NOW, lambda message: True) is Skipped.DUPLICATE
    assert agg.incidents == {}
    assert apply_message(agg, timeout("e1", T0), NOW, lambda message: False) == incident_id_for(
        "e1"
    )
    ack = command("c1", incident_id_for("e1"))
    assert apply_message(agg, ack, NOW, lambda message: False) is None
