"""What on-call reads first, as the aggregator keeps it: first and latest error and violation,
affected agents, source run, synthetic scenario id and the one-line description."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from domain.aggregation import PartitionAggregator
from domain.config import AggregationConfig
from domain.contracts import Signal
from domain.descriptions import describe_incident
from domain.incidents import AGENT_IDS_LIMIT, Incident
from tests.builders import T0, command, failure, secs, violation

NOW = T0 + timedelta(days=30)
ERROR_FIELDS = (
    "first_error_code",
    "first_error_message",
    "latest_error_code",
    "latest_error_message",
)
VIOLATION_FIELDS = (
    "first_policy_id", "first_violation_id", "first_violated_rule", "first_action_taken",
    "latest_policy_id", "latest_violation_id", "latest_violated_rule", "latest_action_taken",
)  # fmt: skip


def aggregator(**config: Any) -> PartitionAggregator:
    return PartitionAggregator(AggregationConfig(**config))


def signal(agg: PartitionAggregator, event: Signal) -> Incident:
    outcome = agg.apply_signal(event, NOW)
    assert isinstance(outcome, uuid.UUID), outcome
    return agg.incidents[outcome]


def timeout(event_id: str, at: datetime, model: str = "gpt-4o", **overrides: Any) -> Signal:
    return failure(event_id, "acme", at, model=model, **overrides)


def errors(incident: Incident) -> tuple[str | None, ...]:
    return tuple(getattr(incident, name) for name in ERROR_FIELDS)


def violations(incident: Incident) -> tuple[str | None, ...]:
    return tuple(getattr(incident, name) for name in VIOLATION_FIELDS)


def test_first_and_latest_error_follow_the_order_the_events_are_applied() -> None:
    agg = aggregator()
    incident = signal(agg, timeout("e1", T0))
    assert errors(incident) == (None, None, None, None)
    signal(agg, timeout("e2", T0 + secs(10), error_code="504", error_message="gateway timeout"))
    assert errors(incident) == ("504", "gateway timeout", "504", "gateway timeout")
    signal(agg, timeout("e3", T0 + secs(20), error_code="429"))
    assert errors(incident) == ("504", "gateway timeout", "429", None)
    # Earlier in time but applied later: the latest, not the first.
    signal(agg, timeout("e4", T0 + secs(5), error_message="reset by peer"))
    assert errors(incident) == ("504", "gateway timeout", None, "reset by peer")
    signal(agg, timeout("e5", T0 + secs(30)))  # no error: the latest error stays
    assert errors(incident) == ("504", "gateway timeout", None, "reset by peer")
    assert violations(incident) == (None,) * 8


def test_first_and_latest_violation_of_a_policy_incident() -> None:
    agg = aggregator()
    incident = signal(agg, violation("v1", at=T0, violation_id="V-1", action_taken="redacted"))
    first = ("pii-policy", "V-1", "no emails in output", "redacted")
    assert violations(incident) == first * 2
    signal(agg, violation("v2", at=T0 + secs(10), violated_rule="no phone numbers"))
    # violation_id defaults to the event id; no action_taken is null.
    assert violations(incident) == (*first, "pii-policy", "v2", "no phone numbers", None)
    assert errors(incident) == (None, None, None, None)


def test_agents_are_the_first_distinct_ids_in_application_order_and_bounded() -> None:
    agg = aggregator()
    incident = signal(agg, timeout("e0", T0, agent_id="agent-0"))
    names = [f"agent-{n % 13}" for n in range(1, 40)]
    for n, name in enumerate(names, start=1):
        signal(agg, timeout(f"e{n}", T0 + secs(n), agent_id=name))
        blank = "" if n % 2 else None
        signal(agg, timeout(f"x{n}", T0 + secs(n), agent_id=blank))  # no agent: adds none
    assert incident.agent_ids == [f"agent-{n}" for n in range(AGENT_IDS_LIMIT)]
    assert len(incident.breakdown["agent"]) == 14  # 13 agents and "unknown": counted apart


def test_source_run_and_scenario_come_from_the_event_that_opened_the_incident() -> None:
    agg = aggregator()
    opening = timeout("e1", T0, run_id="run-a", is_synthetic=True, synthetic_scenario_id="drill-1")
    incident = signal(agg, opening)
    signal(agg, timeout("e2", T0 + secs(10), run_id="run-b", synthetic_scenario_id="drill-2"))
    signal(agg, timeout("e3", T0 - secs(10), run_id="run-c"))  # starts it earlier, applied later
    assert (incident.source_run_id, incident.synthetic_scenario_id) == ("run-a", "drill-1")
    assert incident.started_at == T0 - secs(10)
    assert incident.run_ids[0] == incident.source_run_id
    other = failure("p1", "acme", T0, failure_type="exception")  # another category: its own
    assert signal(agg, other).synthetic_scenario_id is None


def test_a_reopen_keeps_the_first_and_moves_the_latest() -> None:
    agg = aggregator()
    incident = signal(agg, timeout("e1", T0, error_code="500", agent_id="bot-a", run_id="r1"))
    assert (
        agg.apply_command(command("c1", incident.incident_id, "resolve", at=T0 + secs(60))) is None
    )
    assert incident.lifecycle_state.value == "RESOLVED"
    again = signal(agg, timeout("e2", T0 + secs(120), error_code="503", agent_id="bot-b"))
    assert again is incident and incident.reopen_count == 1
    assert errors(incident) == ("500", None, "503", None)
    assert (incident.agent_ids, incident.source_run_id) == (["bot-a", "bot-b"], "r1")


def test_a_storm_merge_brings_the_merged_events_context() -> None:
    agg = aggregator()
    incident = signal(agg, timeout("e1", T0, "gpt-4o", error_code="504", agent_id="bot-a"))
    merged = signal(agg, timeout("e2", T0 + secs(30), "gpt-4o-mini", error_code="429"))
    assert merged is incident and len(incident.fingerprints) == 2
    assert errors(incident) == ("504", None, "429", None)
    assert incident.agent_ids == ["bot-a"]
    agg.take_changes()
    assert incident.description == (
        f"Timeouts on openai/gpt-4o and 1 other model: 2 calls since {T0:%Y-%m-%d %H:%M} UTC"
    )


def test_the_overflow_incident_keeps_the_context_of_failures_and_violations() -> None:
    agg = aggregator(max_incidents_per_tenant_per_hour=1)
    own = signal(agg, timeout("e1", T0, error_code="500"))
    # Other categories than the first incident's: new incidents, past the cap of one.
    overflow = signal(
        agg,
        failure("o1", at=T0 + secs(1), failure_type="exception", run_id="run-o", error_code="429"),
    )
    signal(agg, violation("o2", at=T0 + secs(2), policy_id="tone", action_taken="flagged"))
    signal(
        agg,
        failure(
            "o3",
            at=T0 + secs(3),
            failure_type="invalid_output",
            error_message="quota",
            agent_id="bot-z",
        ),
    )
    assert overflow.is_overflow and overflow is not own
    assert errors(overflow) == ("429", None, None, "quota")
    assert violations(overflow) == ("tone", "o2", "no emails in output", "flagged") * 2
    assert (overflow.source_run_id, overflow.agent_ids) == ("run-o", ["bot-z"])
    assert errors(own) == ("500", None, "500", None)
    agg.take_changes()
    assert overflow.description == (
        f"Events past the hourly incident cap: 3 calls since {T0:%Y-%m-%d %H:%M} UTC"
    )


def test_the_description_is_written_when_the_changes_are_taken_not_per_event() -> None:
    agg = aggregator()
    incident = signal(agg, timeout("e1", T0 + secs(42)))
    other = signal(agg, failure("g1", "globex", T0))
    assert incident.description is None
    changes = agg.take_changes()
    assert set(changes.incidents) == {incident.incident_id, other.incident_id}
    since = f"since {T0:%Y-%m-%d %H:%M} UTC"
    text = f"Timeouts on openai/gpt-4o: 1 call {since}"
    assert incident.description == text
    for n in range(2, 13):
        signal(agg, timeout(f"e{n}", T0 + secs(60 + n)))
    assert incident.description == text  # applying events writes no text
    agg.take_changes()
    assert incident.description == f"Timeouts on openai/gpt-4o: 12 calls {since}"
    assert incident.description == describe_incident(incident)
    assert other.description == text  # untouched since: written once


def test_the_snapshot_carries_the_context() -> None:
    agg = aggregator()
    incident = signal(agg, timeout("e1", T0, error_code="504", agent_id="bot", run_id="r1"))
    agg.take_changes()
    snapshot = incident.snapshot()
    assert (snapshot["first_error_code"], snapshot["agent_ids"], snapshot["source_run_id"]) == (
        "504",
        ["bot"],
        "r1",
    )
    assert snapshot["description"] == incident.description
    assert snapshot["first_policy_id"] is None
