"""Properties of the aggregation rules over generated partition logs (hypothesis).

A log is one partition's three sources (failures, violations, commands) of wire messages for a few
tenants, with late and duplicate events, commands for existing and missing incidents, and a few
messages that cannot be applied. The config is small so that every rule fires often.
"""

from __future__ import annotations

import copy
import json
import os
import random
import subprocess
import sys
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.aggregation import PartitionAggregator
from domain.config import AggregationConfig
from domain.contracts import (
    FailureType,
    LlmCallFailure,
    Message,
    PolicyViolation,
    Rejection,
    Signal,
)
from domain.descriptions import describe_incident
from domain.incidents import (
    SEVERITY_RANK,
    Incident,
    LifecycleState,
    TimelineEntry,
    classify,
    incident_id_for,
)
from domain.merge import Pending, merge_complete
from domain.replay import Outcome, Skipped, apply_message, message_id, pending_message, replay
from tests.builders import T0, command, failure, secs, violation, wire

ROOT = str(Path(__file__).resolve().parents[2])
H = 3
CONFIG = AggregationConfig(
    auto_resolve_after_seconds=900,
    aggregation_window_seconds=300,
    incident_cooldown_seconds=60,
    max_incidents_per_tenant_per_hour=H,
    max_related_calls_per_incident=4,
    severity_thresholds=(3, 6, 12),
    max_lateness_seconds=7200,
)
NOW = T0 + timedelta(days=30)
HOUR = timedelta(hours=1)
TENANTS = ["t1", "t2", "t3", "t4"]
STEPS = [0, 1, 5, 10, 20, 30, 59, 60, 61, 120, 299, 300, 301, 600, 899, 900, 901, 1800, 3600]
LATENESS = [0, 0, 0, 0, 0, 0, 30, 200, 600, 1000, 2000, 8000]
FAILURE_TYPES = [member.value for member in FailureType]
AGENTS = [f"agent-{n}" for n in range(12)]
BAD = [b"{oops", b"{}", b'{"event_id": "x", "tenant_id": "t1"}', b"[]"]
SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass
class Log:
    sources: tuple[list[bytes], list[bytes], list[bytes]] = field(
        default_factory=lambda: ([], [], [])
    )
    events: dict[str, Signal] = field(default_factory=dict)
    at_offset: dict[tuple[int, int], str] = field(default_factory=dict)

    def emit(self, source: int, value: bytes, event_id: str | None = None) -> None:
        if event_id is not None:
            self.at_offset[(source, len(self.sources[source]))] = event_id
        self.sources[source].append(value)

    def entries(self) -> list[Pending[Message | Rejection]]:
        """The messages in the order the worker applies them."""
        parsed = [
            [
                pending_message(source, offset, value, NOW, CONFIG)
                for offset, value in enumerate(values)
            ]
            for source, values in enumerate(self.sources)
        ]
        return list(merge_complete(parsed))


@st.composite
def logs(draw: st.DrawFn, in_order: bool = False) -> Log:
    log = Log()
    tenants = TENANTS[: draw(st.integers(1, 4))]
    # A few failure types per log, so that storms of one category happen often.
    failure_types = draw(
        st.lists(st.sampled_from(FAILURE_TYPES), min_size=1, max_size=3, unique=True)
    )
    clock = 0
    for index in range(draw(st.integers(1, 45))):
        clock += draw(st.sampled_from(STEPS))
        lateness = 0 if in_order else draw(st.sampled_from(LATENESS))
        at = T0 + secs(clock - lateness)
        tenant = draw(st.sampled_from(tenants))
        kind = draw(
            st.sampled_from(["failure"] * 5 + ["violation"] * 2 + ["command"] * 2 + ["dup", "bad"])
        )
        if kind == "dup" and log.events:
            event_id = draw(st.sampled_from(sorted(log.events)))
            event = log.events[event_id]
            log.emit(0 if isinstance(event, LlmCallFailure) else 1, wire(event), event_id)
        elif kind == "bad":
            log.emit(draw(st.integers(0, 2)), draw(st.sampled_from(BAD)))
        elif kind == "command":
            log.emit(2, wire(_command(draw, log, f"c{index}", tenant, at, tenants)))
        else:
            if not in_order and draw(st.integers(0, 30)) == 0:
                at = NOW + secs(400)  # future_timestamp
            event_id = f"e{index}"
            if kind == "failure":
                event = _failure(draw, event_id, tenant, at, failure_types)
            else:
                event = _violation(draw, event_id, tenant, at)
            log.events[event_id] = event
            log.emit(0 if kind == "failure" else 1, wire(event), event_id)
    return log


def _failure(
    draw: st.DrawFn, event_id: str, tenant: str, at: datetime, failure_types: list[str]
) -> Signal:
    return failure(
        event_id,
        tenant,
        at,
        provider=draw(st.sampled_from(["p1", "p2"])),
        model=draw(st.sampled_from(["m1", "m2", "m3"])),
        failure_type=draw(st.sampled_from(failure_types)),
        fingerprint=draw(st.sampled_from([None, None, None, None, "custom"])),
        call_id=draw(st.sampled_from([None, None, "call-1", "call-2"])),
        cost_usd=draw(st.sampled_from(["0", "0.1", "0.25", "1.00000001"])),
        error_code=draw(st.sampled_from([None, None, "429", "504"])),
        error_message=draw(st.sampled_from([None, None, "slow down", "gateway timeout"])),
        **_signal_context(draw),
    )


def _signal_context(draw: st.DrawFn) -> dict[str, Any]:
    """Fields of both signals that only the incident's context reads."""
    scenario = draw(st.sampled_from([None, None, "drill-1", "drill-2"]))
    return {
        "agent_id": draw(st.sampled_from([None, *AGENTS])),
        "is_synthetic": scenario is not None,
        "synthetic_scenario_id": scenario,
    }


def _violation(draw: st.DrawFn, event_id: str, tenant: str, at: datetime) -> Signal:
    return violation(
        event_id,
        tenant,
        at,
        policy_id=draw(st.sampled_from(["pol-a", "pol-b"])),
        policy_type=draw(st.sampled_from([None, "pii"])),
        severity=draw(st.sampled_from(["low", "medium", "high", "critical"])),
        cause_type=draw(st.sampled_from(["LLM_RUN", "HUMAN"])),
        cost_usd=draw(st.sampled_from(["0", "0.3"])),
        violated_rule=draw(st.sampled_from(["no emails", "no phone numbers"])),
        violation_id=draw(st.sampled_from([None, None, "V-1", "V-2"])),
        action_taken=draw(st.sampled_from([None, "blocked", "flagged"])),
        **_signal_context(draw),
    )


def _command(
    draw: st.DrawFn, log: Log, command_id: str, tenant: str, at: datetime, tenants: list[str]
) -> Any:
    target: object
    choice = draw(st.sampled_from(["event"] * 6 + ["other-tenant", "random", "not-a-uuid"]))
    if log.events and choice in ("event", "other-tenant"):
        event = log.events[draw(st.sampled_from(sorted(log.events)))]
        target = incident_id_for(event.event_id)
        tenant = event.tenant_id if choice == "event" else draw(st.sampled_from(tenants))
    elif choice == "not-a-uuid":
        target = "not-a-uuid"
    else:
        target = uuid.UUID(int=draw(st.integers(0, 2**128 - 1)))
    return command(
        command_id,
        target,
        draw(st.sampled_from(["acknowledge", "resolve"])),
        tenant,
        at - secs(draw(st.sampled_from([0, 10, 400]))),
        resolution_method=draw(st.sampled_from(["manual", "rollback", "manual_closure"])),
    )


# -- running a log through a PartitionAggregator -------------------------------------------------


@dataclass
class Run:
    aggregator: PartitionAggregator
    incidents: dict[uuid.UUID, Incident]
    timeline: list[TimelineEntry]


def feed(
    entries: list[Pending[Message | Rejection]],
    cuts: frozenset[int] = frozenset(),
    restarts: frozenset[int] = frozenset(),
    evict: bool = False,
    observe: Callable[[PartitionAggregator, Message | Rejection, Outcome], None] | None = None,
) -> Run:
    """Apply `entries` as the worker does: batches end at `cuts`, where it may evict or restart."""
    agg = PartitionAggregator(CONFIG)
    applied: set[tuple[str, str]] = set()
    evicted: dict[uuid.UUID, Incident] = {}
    timeline: list[TimelineEntry] = []
    for index, pending in enumerate(entries):
        if index in cuts:
            timeline.extend(agg.take_changes().timeline)
            if evict:
                known = dict(agg.incidents)
                evicted.update({incident_id: known[incident_id] for incident_id in agg.evict()})
            if index in restarts:
                agg = PartitionAggregator(
                    CONFIG,
                    watermark=agg.watermark,
                    incidents=copy.deepcopy(list(agg.incidents.values())),
                    keys=copy.deepcopy(dict(agg.keys)),
                )
        item = pending.item
        outcome = apply_message(agg, item, NOW, lambda message: message_id(message) in applied)
        if not isinstance(outcome, Rejection) and outcome is not Skipped.DUPLICATE:
            assert not isinstance(item, Rejection)
            applied.add(message_id(item))
        if observe is not None:
            observe(agg, item, outcome)
    timeline.extend(agg.take_changes().timeline)
    return Run(agg, {**evicted, **agg.incidents}, timeline)


def snapshots(incidents: dict[uuid.UUID, Incident]) -> dict[str, dict[str, Any]]:
    return {str(incident_id): incident.snapshot() for incident_id, incident in incidents.items()}


def entry_tuples(timeline: list[TimelineEntry]) -> list[tuple[str, ...]]:
    return sorted(
        (
            str(entry.incident_id),
            entry.tenant_id,
            entry.kind.value,
            entry.at.isoformat(),
            json.dumps(entry.data, sort_keys=True),
        )
        for entry in timeline
    )


# -- properties ----------------------------------------------------------------------------------


@SETTINGS
@given(logs())
def test_every_applied_event_is_counted_once_by_its_incident(log: Log) -> None:
    result = replay({0: log.sources}, CONFIG, NOW)
    members: defaultdict[uuid.UUID, list[Signal]] = defaultdict(list)
    for event_id, incident_id in result.event_incidents.items():
        members[incident_id].append(log.events[event_id])
    assert set(members) <= set(result.incidents)
    for incident_id, incident in result.incidents.items():
        events = members[incident_id]
        assert incident.calls_affected == len(events) > 0
        assert incident_id in {incident_id_for(event.event_id) for event in events}
        assert incident.started_at == min(event.occurred_at for event in events)
        assert incident.last_event_at == max(event.occurred_at for event in events)
        assert incident.cost_usd == sum((event.cost_usd for event in events), Decimal(0))
        call_ids = {event.effective_call_id for event in events}
        assert len(incident.related_call_ids) == min(len(call_ids), 4)
        assert set(incident.related_call_ids) <= call_ids
        assert len(set(incident.related_call_ids)) == len(incident.related_call_ids)
        assert all(event.tenant_id == incident.tenant_id for event in events)
        kinds = [classify(event) for event in events]
        if incident.is_overflow:
            absorbed = Counter((kind.trigger_type, kind.fingerprint) for kind in kinds)
            assert {
                (trigger, fingerprint): count
                for trigger, counts in incident.absorbed.items()
                for fingerprint, count in counts.items()
            } == dict(absorbed)
        else:
            assert incident.absorbed == {}
            # The key has no category: one policy_id with and without policy_type, or a custom
            # fingerprint over several failure types, joins one incident of the first category.
            assert {kind.trigger_type for kind in kinds} == {incident.trigger_type}
            assert incident.category in {kind.category for kind in kinds}
            assert {kind.fingerprint for kind in kinds} <= set(incident.fingerprints)
        _check_lifecycle(incident)
    # Every valid signal message was applied or dead-lettered, never silently dropped.
    dead = {(letter.source, letter.offset) for letter in result.dead_letters}
    for where, event_id in log.at_offset.items():
        assert event_id in result.event_incidents or where in dead


def _check_lifecycle(incident: Incident) -> None:
    resolved = (incident.resolved_at, incident.resolved_by, incident.resolution_method)
    if incident.lifecycle_state is LifecycleState.RESOLVED:
        assert None not in resolved
        assert incident.resolution_method in {"auto", "manual", "rollback", "manual_closure"}
        if incident.resolution_method == "auto":
            assert incident.resolved_at == incident.last_event_at + CONFIG.auto_resolve_after
            assert incident.resolved_by == "system"
    else:
        assert resolved == (None, None, None)
    if incident.lifecycle_state is LifecycleState.ACKED:
        assert incident.acked_at is not None
        assert incident.acked_by is not None


@SETTINGS
@given(logs())
def test_per_tenant_calls_and_cost_add_up_to_the_applied_events(log: Log) -> None:
    result = replay({0: log.sources}, CONFIG, NOW)
    calls: Counter[str] = Counter()
    cost: defaultdict[str, Decimal] = defaultdict(Decimal)
    for incident in result.incidents.values():
        calls[incident.tenant_id] += incident.calls_affected
        cost[incident.tenant_id] += incident.cost_usd
    applied = [log.events[event_id] for event_id in result.event_incidents]
    assert calls == Counter(event.tenant_id for event in applied)
    expected: defaultdict[str, Decimal] = defaultdict(Decimal)
    for event in applied:
        expected[event.tenant_id] += event.cost_usd
    assert cost == expected
    for key, incident_id in _keys_after(log).items():
        incident = result.incidents[incident_id]
        assert not incident.is_overflow or key[1] == "rate_limit_overflow"
        assert key[0] == incident.tenant_id
        assert key[2] in incident.fingerprints


def _keys_after(log: Log) -> dict[tuple[str, str, str], uuid.UUID]:
    return dict(feed(log.entries()).aggregator.keys)


def _in_hour(times: list[datetime], at: datetime) -> int:
    """How many of `times` lie in `(at - 1h, at]`: rule 5's window."""
    return sum(1 for time in times if at - HOUR < time <= at)


def _fullest_hour_around(times: list[datetime], at: datetime) -> int:
    """The most of `times` in one hour-long window that also holds `at`."""
    lefts = [time for time in times if at - HOUR < time <= at] + [at]
    return max(sum(1 for time in times if left <= time < left + HOUR) for left in lefts)


def _opened(agg: PartitionAggregator, tenant: str) -> list[datetime]:
    return [
        incident.opened
        for incident in agg.incidents.values()
        if incident.tenant_id == tenant and not incident.is_overflow
    ]


@SETTINGS
@given(st.booleans().flatmap(lambda in_order: st.tuples(st.just(in_order), logs(in_order))))
def test_rule_5_creates_below_the_cap_and_overflows_only_at_it(case: tuple[bool, Log]) -> None:
    """Checked as each event is routed. Each incident counts once, when it was created (`opened`).

    aggregation.md counts starts in `(t - 1h, t]` (rule 5) but caps new incidents "in any hour"
    (configuration table); the two differ only for late events, and the code takes the latter.
    """
    in_order, log = case
    agg = PartitionAggregator(CONFIG)
    applied: set[tuple[str, str]] = set()
    for pending in log.entries():
        item = pending.item
        if isinstance(item, LlmCallFailure | PolicyViolation):
            known = set(agg.incidents)
            opened = _opened(agg, item.tenant_id)
        outcome = apply_message(agg, item, NOW, lambda message: message_id(message) in applied)
        if isinstance(outcome, Rejection) or outcome is Skipped.DUPLICATE:
            continue
        assert not isinstance(item, Rejection)
        applied.add(message_id(item))
        if not isinstance(outcome, uuid.UUID):
            continue
        assert isinstance(item, LlmCallFailure | PolicyViolation)
        at = item.occurred_at
        target = agg.incidents[outcome]
        if outcome not in known and not target.is_overflow:
            assert _fullest_hour_around(opened, at) < H
            assert target.opened == at
        if target.is_overflow:
            assert _fullest_hour_around(opened, at) >= H
            if in_order:
                assert _in_hour(opened, at) >= H
        for tenant in {incident.tenant_id for incident in agg.incidents.values()}:
            times = _opened(agg, tenant)
            assert all(_in_hour(times, time) <= H for time in times)


@SETTINGS
@given(logs(in_order=True))
def test_no_more_than_h_incidents_start_in_any_hour_of_an_in_order_log(log: Log) -> None:
    """On `started_at` this holds when events come in time order; a late event moves a start
    earlier, so for late logs the cap is kept on creation times (the property above)."""
    result = replay({0: log.sources}, CONFIG, NOW)
    by_tenant: defaultdict[str, list[datetime]] = defaultdict(list)
    for incident in result.incidents.values():
        if not incident.is_overflow:
            assert incident.started_at == incident.opened
            by_tenant[incident.tenant_id].append(incident.started_at)
    for starts in by_tenant.values():
        assert all(_in_hour(starts, start) <= H for start in starts)


@SETTINGS
@given(logs())
def test_severity_never_falls(log: Log) -> None:
    seen: dict[uuid.UUID, int] = {}

    def observe(agg: PartitionAggregator, item: object, outcome: Outcome) -> None:
        for incident_id, incident in agg.incidents.items():
            rank = SEVERITY_RANK[incident.severity]
            assert rank >= seen.get(incident_id, 0)
            seen[incident_id] = rank

    run = feed(log.entries(), observe=observe)
    escalations = [entry for entry in run.timeline if entry.kind.value == "severity_escalated"]
    for entry in escalations:
        assert SEVERITY_RANK[entry.data["to"]] > SEVERITY_RANK[entry.data["from"]]
    for incident_id, incident in run.incidents.items():
        steps = [entry.data["to"] for entry in escalations if entry.incident_id == incident_id]
        assert steps == sorted(steps, key=SEVERITY_RANK.__getitem__)
        if steps:
            assert steps[-1] == incident.severity


@SETTINGS
@given(logs())
def test_the_sweep_leaves_no_active_incident_past_its_auto_resolve_time(log: Log) -> None:
    """Before each applied event every due ACTIVE incident resolves; only that event's own
    incident (opened or reopened by an event later than R) may be due until the next one."""
    last: dict[str, uuid.UUID] = {}

    def observe(agg: PartitionAggregator, item: object, outcome: Outcome) -> None:
        if isinstance(outcome, uuid.UUID):
            last["target"] = outcome
        for incident in agg.incidents.values():
            if incident.lifecycle_state is LifecycleState.ACTIVE:
                due = incident.last_event_at + CONFIG.auto_resolve_after
                assert due > agg.watermark or incident.incident_id == last.get("target")

    feed(log.entries(), observe=observe)


@SETTINGS
@given(logs(), st.data())
def test_batch_cuts_restarts_and_eviction_do_not_change_the_result(
    log: Log, data: st.DataObject
) -> None:
    entries = log.entries()
    whole = feed(entries)
    positions = st.integers(0, len(entries))
    cuts = frozenset(data.draw(st.sets(positions, max_size=8), label="cuts"))
    restarts = frozenset(data.draw(st.sets(st.sampled_from(sorted(cuts or {0}))), label="restarts"))
    for evict in (False, True):
        cut = feed(entries, cuts, restarts & cuts, evict=evict)
        assert snapshots(cut.incidents) == snapshots(whole.incidents)
        assert entry_tuples(cut.timeline) == entry_tuples(whole.timeline)
        assert cut.aggregator.watermark == whole.aggregator.watermark
        if not evict:
            assert dict(cut.aggregator.keys) == dict(whole.aggregator.keys)
    assert [entry_tuples([entry]) for entry in whole.timeline] == [
        entry_tuples([entry]) for entry in replay({0: log.sources}, CONFIG, NOW).timeline
    ]


def _expected_context(applied: list[tuple[Signal, uuid.UUID]]) -> dict[uuid.UUID, dict[str, Any]]:
    """The context fields each incident must hold, from its events in the order applied."""
    expected: dict[uuid.UUID, dict[str, Any]] = {}
    for event, incident_id in applied:
        context = expected.setdefault(
            incident_id,
            {
                "source_run_id": event.run_id,
                "synthetic_scenario_id": event.synthetic_scenario_id,
                "agent_ids": [],
                "errors": [],
                "violations": [],
            },
        )
        if event.agent_id and event.agent_id not in context["agent_ids"]:
            context["agent_ids"].append(event.agent_id)
        if isinstance(event, PolicyViolation):
            action = event.action_taken.value if event.action_taken else None
            context["violations"].append(
                (event.policy_id, event.violation_id or event.event_id, event.violated_rule, action)
            )
        elif event.error_code is not None or event.error_message is not None:
            context["errors"].append((event.error_code, event.error_message))
    return {
        incident_id: {
            "source_run_id": context["source_run_id"],
            "synthetic_scenario_id": context["synthetic_scenario_id"],
            "agent_ids": context["agent_ids"][:10],
            "first_error": context["errors"][0] if context["errors"] else (None, None),
            "latest_error": context["errors"][-1] if context["errors"] else (None, None),
            "first_violation": context["violations"][0] if context["violations"] else (None,) * 4,
            "latest_violation": context["violations"][-1] if context["violations"] else (None,) * 4,
        }
        for incident_id, context in expected.items()
    }


def _context_of(incident: Incident) -> dict[str, Any]:
    def fields(which: str, *names: str) -> tuple[Any, ...]:
        return tuple(getattr(incident, f"{which}_{name}") for name in names)

    violation = ("policy_id", "violation_id", "violated_rule", "action_taken")
    return {
        "source_run_id": incident.source_run_id,
        "synthetic_scenario_id": incident.synthetic_scenario_id,
        "agent_ids": incident.agent_ids,
        "first_error": fields("first", "error_code", "error_message"),
        "latest_error": fields("latest", "error_code", "error_message"),
        "first_violation": fields("first", *violation),
        "latest_violation": fields("latest", *violation),
    }


@SETTINGS
@given(logs(), st.data())
def test_the_context_follows_the_order_of_application_however_the_log_is_batched(
    log: Log, data: st.DataObject
) -> None:
    """First and latest error and violation, agents, source run and scenario: as the events were
    applied, with or without batch cuts, restarts and eviction; the description is the text of
    the incident's final state."""
    applied: list[tuple[Signal, uuid.UUID]] = []

    def observe(agg: PartitionAggregator, item: object, outcome: Outcome) -> None:
        if isinstance(outcome, uuid.UUID):
            assert isinstance(item, LlmCallFailure | PolicyViolation)
            applied.append((item, outcome))

    entries = log.entries()
    whole = feed(entries, observe=observe)
    cuts = frozenset(data.draw(st.sets(st.integers(0, len(entries)), max_size=8), label="cuts"))
    restarts = frozenset(data.draw(st.sets(st.sampled_from(sorted(cuts or {0}))), label="restarts"))
    cut = feed(entries, cuts, restarts & cuts, evict=True)
    expected = _expected_context(applied)
    assert set(whole.incidents) == set(cut.incidents) == set(expected)
    for incident_id, context in expected.items():
        for run in (whole, cut):
            incident = run.incidents[incident_id]
            assert _context_of(incident) == context
            assert incident.description == describe_incident(incident)
        assert cut.incidents[incident_id].description == whole.incidents[incident_id].description


@SETTINGS
@given(logs())
def test_replay_is_deterministic(log: Log) -> None:
    first = replay({0: log.sources}, CONFIG, NOW)
    second = replay({0: copy.deepcopy(log.sources)}, CONFIG, NOW)
    assert snapshots(first.incidents) == snapshots(second.incidents)
    assert first.event_incidents == second.event_incidents
    assert first.dead_letters == second.dead_letters
    assert first.applied_commands == second.applied_commands
    assert entry_tuples(first.timeline) == entry_tuples(second.timeline)
    assert first.watermarks == second.watermarks


def _seeded_log(seed: int) -> Log:
    """A fixed storm-heavy log: many fingerprints of two categories, with equal start times."""
    rng = random.Random(seed)
    log = Log()
    for index in range(300):
        at = T0 + secs(rng.choice([0, 0, 30, 60, 90]) + 120 * (index // 10))
        event = failure(
            f"e{index}",
            rng.choice(TENANTS),
            at,
            model=f"m{rng.randrange(6)}",
            failure_type=rng.choice(["timeout", "exception"]),
        )
        log.emit(0, wire(event), event.event_id)
    return log


def replay_digest() -> str:
    """The replay of `_seeded_log` as JSON (run in a subprocess by the test below)."""
    result = replay({0: _seeded_log(7).sources}, CONFIG, NOW)
    return json.dumps([snapshots(result.incidents), entry_tuples(result.timeline)], sort_keys=True)


def test_replay_does_not_depend_on_the_hash_seed() -> None:
    script = (
        "from tests.unit.test_aggregation_properties import replay_digest; print(replay_digest())"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": ROOT},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outputs) == 1
    assert json.loads(outputs.pop()) == json.loads(replay_digest())
