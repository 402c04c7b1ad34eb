"""Pattern detection: thresholds, confidences, ordering and the window."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from domain.analytics import PatternMember
from domain.patterns import MIN_PATTERN_SIZE, PATTERN_TYPES, confidence, detect_patterns

END = datetime(2024, 11, 22, 12, tzinfo=UTC)
START = END - timedelta(hours=24)


def members(
    pattern_type: str, dimension: str, count: int, *, start: int = 0
) -> list[PatternMember]:
    """`count` members, the i-th started i minutes before END (offset by `start`)."""
    return [
        PatternMember(
            "acme",
            pattern_type,
            dimension,
            uuid.UUID(int=start + i + 1),
            END - timedelta(minutes=start + i),
        )
        for i in range(count)
    ]


def detect(found: list[PatternMember], limit: int = 10) -> list[tuple[str, str, int, float]]:
    return [
        (p.pattern_type, p.dimension, p.count, p.confidence)
        for p in detect_patterns(found, START, END, limit)
    ]


@pytest.mark.parametrize(
    ("count", "expected"), [(2, None), (3, 0.5), (4, 0.6), (7, 0.9), (8, 0.95), (30, 0.95)]
)
def test_category_cluster_threshold_and_confidence(count: int, expected: float | None) -> None:
    found = detect(members("category_cluster", "LLM_TIMEOUT", count))
    assert found == (
        [] if expected is None else [("category_cluster", "LLM_TIMEOUT", count, expected)]
    )


@pytest.mark.parametrize(
    ("severity", "count", "expected"),
    [
        ("high", 2, None),
        ("high", 3, 0.7),
        ("high", 4, 0.75),
        ("critical", 3, 0.8),
        ("critical", 6, 0.95),
        ("critical", 7, 0.98),
        ("high", 20, 0.98),
    ],
)
def test_severity_spike_threshold_and_confidence(
    severity: str, count: int, expected: float | None
) -> None:
    found = detect(members("severity_spike", severity, count))
    assert found == ([] if expected is None else [("severity_spike", severity, count, expected)])


@pytest.mark.parametrize(
    ("count", "expected"), [(1, None), (2, 0.75), (3, 0.85), (4, 0.95), (9, 0.95)]
)
def test_cascade_failure_threshold_and_confidence(count: int, expected: float | None) -> None:
    found = detect(members("cascade_failure", "run-9", count))
    assert found == ([] if expected is None else [("cascade_failure", "run-9", count, expected)])


def test_confidences_are_exact_to_two_decimals() -> None:
    assert [confidence("category_cluster", "x", n) for n in range(3, 9)] == [
        0.5, 0.6, 0.7, 0.8, 0.9, 0.95,
    ]  # fmt: skip
    with pytest.raises(ValueError, match="unknown pattern type"):
        confidence("resolution_pattern", "x", 3)


def test_ordering_per_type_and_types_in_fixed_order() -> None:
    found = (
        members("cascade_failure", "run-b", 2)
        + members("cascade_failure", "run-a", 2, start=100)
        + members("cascade_failure", "run-c", 3, start=200)
        + members("severity_spike", "high", 5, start=300)
        + members("severity_spike", "critical", 3, start=400)
        + members("category_cluster", "B", 3, start=500)
        + members("category_cluster", "A", 3, start=600)
        + members("category_cluster", "C", 4, start=700)
    )
    assert [(p[0], p[1]) for p in detect(found)] == [
        ("category_cluster", "C"),
        ("category_cluster", "A"),
        ("category_cluster", "B"),
        ("severity_spike", "critical"),
        ("severity_spike", "high"),
        ("cascade_failure", "run-c"),
        ("cascade_failure", "run-a"),
        ("cascade_failure", "run-b"),
    ]
    assert [(p[0], p[1]) for p in detect(found, limit=1)] == [
        ("category_cluster", "C"),
        ("severity_spike", "critical"),
        ("cascade_failure", "run-c"),
    ]


def test_only_members_started_in_the_window_count() -> None:
    inside = members("severity_spike", "high", 2)
    on_start = PatternMember("acme", "severity_spike", "high", uuid.UUID(int=99), START)
    before = PatternMember(
        "acme", "severity_spike", "high", uuid.UUID(int=98), START - timedelta(seconds=1)
    )
    after = PatternMember(
        "acme", "severity_spike", "high", uuid.UUID(int=97), END + timedelta(seconds=1)
    )
    assert detect([*inside, before, after]) == []
    assert detect([*inside, on_start, before, after]) == [("severity_spike", "high", 3, 0.7)]


def test_incident_ids_are_the_ten_newest_newest_first() -> None:
    found = members("category_cluster", "X", 12)
    # Two incidents started at the same time: the larger id counts as newer.
    tie = PatternMember("acme", "category_cluster", "X", uuid.UUID(int=500), END)
    (pattern,) = detect_patterns([*found, tie], START, END, 10)
    assert pattern.count == 13
    assert pattern.incident_ids == (
        str(uuid.UUID(int=500)),
        *(str(uuid.UUID(int=i)) for i in range(1, 10)),
    )


def test_string_incident_ids_are_accepted() -> None:
    found = [m._replace(incident_id=str(m.incident_id)) for m in members("cascade_failure", "r", 2)]
    (pattern,) = detect_patterns(found, START, END, 5)  # type: ignore[arg-type]
    assert pattern.incident_ids == (str(uuid.UUID(int=1)), str(uuid.UUID(int=2)))


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="limit"):
        detect_patterns([], START, END, 0)
    with pytest.raises(ValueError, match="window_end"):
        detect_patterns([], END, START, 1)


@pytest.mark.parametrize("pattern_type", PATTERN_TYPES)
def test_groups_of_one_never_form_a_pattern(pattern_type: str) -> None:
    """The candidates select leaves out (type, dimension) groups below MIN_PATTERN_SIZE."""
    at = datetime(2024, 6, 1, tzinfo=UTC)
    below = [
        PatternMember("t", pattern_type, "high", uuid.uuid4(), at)
        for _ in range(MIN_PATTERN_SIZE - 1)
    ]
    assert detect_patterns(below, at - timedelta(hours=1), at, 50) == []
