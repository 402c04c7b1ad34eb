"""tests.scenario: the end-to-end log is deterministic, large enough and covers every rule."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from aiokafka.partitioner import DefaultPartitioner

from domain.contracts import (
    MAX_MESSAGE_BYTES,
    PROCESSOR_REASONS,
    STORAGE_REASONS,
    DeadLetterReason,
    FailureType,
)
from domain.incidents import TimelineKind
from domain.replay import Replay
from tests.scenario import (
    SCENARIO_CONFIG,
    SCENARIO_PARTITIONS,
    ScenarioMessage,
    build_scenario,
    command_outcomes,
    coverage,
    expected,
    partition_for,
    partition_log,
    scenario_env,
    signal_event_count,
)

NOW = datetime(2025, 3, 14, 12, 34, 56, 789000, tzinfo=UTC)


@pytest.fixture(scope="module")
def messages() -> list[ScenarioMessage]:
    return build_scenario(now=NOW)


@pytest.fixture(scope="module")
def result(messages: list[ScenarioMessage]) -> Replay:
    return expected(messages, SCENARIO_PARTITIONS, NOW)


@pytest.fixture(scope="module")
def counts(result: Replay, messages: list[ScenarioMessage]) -> dict[str, int]:
    return coverage(result, messages)


def _bodies(messages: list[ScenarioMessage], kind: str) -> list[dict[str, object]]:
    bodies = []
    for message in messages:
        if message.topic_kind != kind or len(message.value) > MAX_MESSAGE_BYTES:
            continue
        try:
            body = json.loads(message.value)
        except ValueError:
            continue
        if isinstance(body, dict):
            bodies.append(body)
    return bodies


def test_the_scenario_is_deterministic(messages: list[ScenarioMessage]) -> None:
    assert build_scenario(now=NOW) == messages


def test_it_has_enough_events_over_enough_tenants(messages: list[ScenarioMessage]) -> None:
    assert signal_event_count(messages) >= 5000
    tenants = {m.key for m in messages if m.topic_kind != "commands"}
    assert len(tenants) >= 5


def test_tenants_spread_over_partitions_as_aiokafka_places_them(
    messages: list[ScenarioMessage],
) -> None:
    partitions = list(range(SCENARIO_PARTITIONS))
    keys = {m.key for m in messages}
    for key in keys:
        assert partition_for(key, SCENARIO_PARTITIONS) == DefaultPartitioner()(
            key, partitions, partitions
        )
    assert len({partition_for(key, SCENARIO_PARTITIONS) for key in keys}) >= 3


def test_partition_log_keeps_publish_order_per_topic(messages: list[ScenarioMessage]) -> None:
    log = partition_log(messages, SCENARIO_PARTITIONS)
    assert sorted(log) == list(range(SCENARIO_PARTITIONS))
    for partition, sources in log.items():
        for source, kind in enumerate(("failures", "violations", "commands")):
            assert sources[source] == [
                m.value
                for m in messages
                if m.topic_kind == kind and partition_for(m.key, SCENARIO_PARTITIONS) == partition
            ]


def test_every_timeline_kind_and_dead_letter_reason(counts: dict[str, int]) -> None:
    assert {kind.value for kind in TimelineKind} == {
        key.removeprefix("timeline:") for key in counts if key.startswith("timeline:")
    }
    assert all(counts[f"timeline:{kind.value}"] > 0 for kind in TimelineKind), counts
    reasons = set(DeadLetterReason) - STORAGE_REASONS - PROCESSOR_REASONS  # the rules' own
    assert all(counts[f"dead_letter:{reason.value}"] > 0 for reason in reasons), counts
    assert counts["dead_letter:future_timestamp"] == 2
    assert counts["dead_letter:too_late"] == 1
    assert counts["dead_letter:too_large"] == 1


def test_every_resolution_and_lifecycle_case(counts: dict[str, int]) -> None:
    for method in ("manual", "rollback", "manual_closure", "auto"):
        assert counts.get(f"resolution:{method}", 0) > 0, method
    assert counts["reopens"] >= 3
    assert counts["overflow_incidents"] >= 2
    assert counts["merged_incidents"] >= 2
    assert counts["late_join_reactivations"] >= 1
    assert counts["escalated_to:critical"] >= 1
    assert counts["tenants"] >= 5
    assert counts["duplicate_events"] >= 2
    assert counts["duplicate_commands"] >= 2
    assert counts["duplicates"] == counts["duplicate_events"] + counts["duplicate_commands"]


def test_every_category(counts: dict[str, int], messages: list[ScenarioMessage]) -> None:
    failure_types = {body.get("failure_type") for body in _bodies(messages, "failures")}
    assert {kind.value for kind in FailureType} <= failure_types
    for category in (
        "LLM_TIMEOUT",
        "LLM_ERROR",
        "INVALID_OUTPUT",
        "PROVIDER_OUTAGE",
        "RATE_LIMIT",
        "BUDGET_EXCEEDED",
        "CONTENT_POLICY",
        "POLICY_PII",
        "POLICY_VIOLATION",
        "POLICY_CONTENT_ACCURACY",
        "RATE_LIMIT_OVERFLOW",
    ):
        assert counts.get(f"category:{category}", 0) > 0, category


def test_commands_have_their_intended_outcome(
    messages: list[ScenarioMessage], result: Replay
) -> None:
    outcomes = command_outcomes(messages, SCENARIO_PARTITIONS, result)
    assert [o for o in outcomes if o[1] != o[2]] == []
    intended = {o[1] for o in outcomes}
    assert {"applied", "duplicate", "unknown_incident", "invalid_transition"} <= intended
    actions = {(b["action"], b.get("resolution_method")) for b in _bodies(messages, "commands")}
    assert ("resolve", None) in actions  # the default method


def test_exactly_one_value_is_too_large(messages: list[ScenarioMessage]) -> None:
    sizes = [len(m.value) for m in messages if len(m.value) > MAX_MESSAGE_BYTES]
    assert len(sizes) == 1
    assert sizes[0] < 1.1 * MAX_MESSAGE_BYTES
    assert max(len(m.value) for m in messages if len(m.value) <= MAX_MESSAGE_BYTES) < 16_384


def test_only_the_deliberate_events_are_in_the_future(messages: list[ScenarioMessage]) -> None:
    times = [
        datetime.fromisoformat(str(body["occurred_at"]))
        for kind in ("failures", "violations")
        for body in _bodies(messages, kind)
        if isinstance(body.get("occurred_at"), str)
    ]
    future = [at for at in times if at.tzinfo is not None and at > NOW]
    assert len(future) == 2
    assert all(at.tzinfo is None or at < NOW or at in future for at in times)


def test_the_scenario_works_for_other_seeds_and_layouts(
    messages: list[ScenarioMessage],
) -> None:
    now = datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC)
    other = build_scenario(3, now=now, tenants=7, partitions=3)
    assert other[:100] != messages[:100]
    messages = other
    result = expected(messages, 3, now)
    counts = coverage(result, messages)
    assert all(counts[f"timeline:{kind.value}"] > 0 for kind in TimelineKind)
    assert [o for o in command_outcomes(messages, 3, result) if o[1] != o[2]] == []


def test_too_few_tenants_is_refused() -> None:
    with pytest.raises(ValueError):
        build_scenario(now=NOW, tenants=5)


def test_scenario_env_gives_the_scenario_config(monkeypatch: pytest.MonkeyPatch) -> None:
    from incidentflow.environment import read_settings

    for name, value in scenario_env().items():
        monkeypatch.setenv(name, value)
    settings = read_settings()
    assert settings.aggregation() == SCENARIO_CONFIG
    assert settings.idle_watermark_advance is False
