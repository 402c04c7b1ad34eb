"""The demo stream: deterministic for a seed, complete, and honest about its bad messages."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from domain.contracts import (
    DeadLetterReason,
    FailureType,
    LifecycleCommand,
    LlmCallFailure,
    PolicyViolation,
    Rejection,
    parse_message,
)
from domain.incidents import incident_id_for
from incidentflow.demo import CYCLE_SECONDS, DemoMessage, demo_stream, tenant_ids
from incidentflow.publisher import route_line

CONTRACTS = {
    "llm_call_failure": LlmCallFailure,
    "policy_violation": PolicyViolation,
    "incident_command": LifecycleCommand,
}
RATE = 5.0
START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
REJECTED_BY_PARSING = {
    DeadLetterReason.INVALID_JSON,
    DeadLetterReason.SCHEMA_VIOLATION,
    DeadLetterReason.TOO_LARGE,
}


def stepping_clock(step: timedelta = timedelta(seconds=1 / RATE)) -> Callable[[], datetime]:
    """A clock that advances `step` on every read, as real time would at `RATE` messages/s."""
    ticks = itertools.count()
    return lambda: START + next(ticks) * step


def take(seed: int, count: int, tenants: int = 5) -> list[DemoMessage]:
    stream = demo_stream(random.Random(seed), stepping_clock(), tenants, RATE)
    return list(itertools.islice(stream, count))


@pytest.fixture(scope="module")
def cycle() -> list[DemoMessage]:
    """One full story cycle (plus a margin) at `RATE` messages per second."""
    return take(seed=7, count=int(CYCLE_SECONDS * RATE) + 50)


def test_stream_is_deterministic_for_a_seed() -> None:
    assert take(seed=3, count=800) == take(seed=3, count=800)
    assert take(seed=3, count=800) != take(seed=4, count=800)


def test_every_failure_type_appears(cycle: list[DemoMessage]) -> None:
    parsed = [
        parse_message(LlmCallFailure, m.value)
        for m in cycle
        if m.expected is None and m.type == "llm_call_failure"
    ]
    seen = {event.failure_type for event in parsed if isinstance(event, LlmCallFailure)}
    assert seen == set(FailureType)


def test_violations_with_severities_actions_and_evidence(cycle: list[DemoMessage]) -> None:
    violations = [
        parse_message(PolicyViolation, m.value)
        for m in cycle
        if m.type == "policy_violation" and m.expected is None
    ]
    assert all(isinstance(v, PolicyViolation) for v in violations)
    assert {v.policy_type for v in violations} >= {"PII", "SAFETY", "CONTENT_ACCURACY"}
    assert len({v.severity for v in violations}) >= 3
    assert all(v.action_taken is not None and v.evidence for v in violations)


def test_at_least_the_requested_tenants(cycle: list[DemoMessage]) -> None:
    assert {m.tenant_id for m in cycle} == set(tenant_ids(5))
    assert len({m.tenant_id for m in take(seed=1, count=3000, tenants=9)}) == 9


def test_valid_messages_satisfy_the_contracts(cycle: list[DemoMessage]) -> None:
    for message in cycle:
        if message.expected in REJECTED_BY_PARSING:
            continue
        parsed = parse_message(CONTRACTS[message.type], message.value)
        assert not isinstance(parsed, Rejection), (message.scenario, parsed)
        assert parsed.tenant_id == message.tenant_id


def test_bad_messages_are_rejected_with_their_expected_reason(cycle: list[DemoMessage]) -> None:
    bad = [m for m in cycle if m.expected in REJECTED_BY_PARSING]
    assert {m.expected for m in bad} == REJECTED_BY_PARSING
    for message in bad:
        rejection = parse_message(CONTRACTS[message.type], message.value)
        assert isinstance(rejection, Rejection)
        assert rejection.reason == message.expected


def test_a_future_timestamp_is_in_the_stream(cycle: list[DemoMessage]) -> None:
    future = [m for m in cycle if m.expected == DeadLetterReason.FUTURE_TIMESTAMP]
    assert future
    for message in future:
        event = parse_message(LlmCallFailure, message.value)
        assert isinstance(event, LlmCallFailure)
        assert event.occurred_at > START + timedelta(seconds=CYCLE_SECONDS, hours=1)


def test_commands_name_the_incident_the_outage_opened(cycle: list[DemoMessage]) -> None:
    outage = [m for m in cycle if m.scenario == "provider_outage"]
    first = parse_message(LlmCallFailure, outage[0].value)
    assert isinstance(first, LlmCallFailure)
    later = [parse_message(LlmCallFailure, m.value) for m in outage[1:]]
    # The incident id comes from the first event in event time, whatever the jitter.
    assert all(isinstance(e, LlmCallFailure) and e.occurred_at > first.occurred_at for e in later)
    commands = [
        parse_message(LifecycleCommand, m.value)
        for m in cycle
        if m.type == "incident_command" and m.expected is None
    ]
    assert [c.action.value for c in commands if isinstance(c, LifecycleCommand)] == [
        "acknowledge",
        "resolve",
    ]
    assert {c.incident_id for c in commands if isinstance(c, LifecycleCommand)} == {
        str(incident_id_for(first.event_id))
    }
    assert all(c.issued_at > first.occurred_at for c in commands if isinstance(c, LifecycleCommand))


def test_the_outage_spans_a_providers_models(cycle: list[DemoMessage]) -> None:
    events = [
        parse_message(LlmCallFailure, m.value) for m in cycle if m.scenario == "provider_outage"
    ]
    failures = [e for e in events if isinstance(e, LlmCallFailure)]
    assert len(failures) == 60
    assert len({e.provider for e in failures}) == 1
    assert len({e.model for e in failures}) >= 2
    assert {e.failure_type for e in failures} == {FailureType.PROVIDER_UNAVAILABLE}


def test_the_runaway_tenant_opens_more_fingerprints_than_the_hourly_cap(
    cycle: list[DemoMessage],
) -> None:
    runaway = [m for m in cycle if m.scenario == "hourly_cap"]
    assert len({m.tenant_id for m in runaway}) == 1
    assert len(runaway) > 20


def test_events_carry_the_clock_time_with_small_jitter_and_exact_costs(
    cycle: list[DemoMessage],
) -> None:
    for index, message in enumerate(cycle[:500]):
        event = parse_message(CONTRACTS[message.type], message.value)
        if isinstance(event, LlmCallFailure | PolicyViolation) and message.expected is None:
            clock_time = START + timedelta(seconds=index / RATE)
            assert timedelta(0) <= clock_time - event.occurred_at <= timedelta(seconds=2)
            assert event.is_synthetic and event.synthetic_scenario_id
            assert isinstance(orjson.loads(message.value)["cost_usd"], str)  # exact decimals


def test_every_parseable_message_is_routable_by_its_type(cycle: list[DemoMessage]) -> None:
    class Topics:
        failures_topic, violations_topic, commands_topic = "f", "v", "c"

    for message in cycle:
        if message.expected is DeadLetterReason.INVALID_JSON:
            continue
        outgoing = route_line(message.value, Topics())
        assert outgoing == message.outgoing(Topics())


def test_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="rate"):
        next(demo_stream(random.Random(1), stepping_clock(), 5, 0))
