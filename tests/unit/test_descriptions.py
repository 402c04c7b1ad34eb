"""The one-line description of an incident, and durations and times in words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from domain.descriptions import describe, describe_row, format_duration, format_minute
from tests.evidence_rows import incident_row

T0 = datetime(2026, 11, 22, 10, 0, 42, tzinfo=UTC)


def line(**fields: Any) -> str:
    given: dict[str, Any] = {
        "trigger_type": "llm_failure",
        "category": "LLM_TIMEOUT",
        "fingerprint": "openai/gpt-4o/timeout",
        "calls_affected": 12,
        "started_at": T0,
        "model_calls": {"openai/gpt-4o": 12},
    }
    return describe(**(given | fields))


def test_what_where_how_many_and_since_when() -> None:
    assert line() == "Timeouts on openai/gpt-4o: 12 calls since 2026-11-22 10:00 UTC"


def test_one_call_is_singular_and_thousands_are_grouped() -> None:
    assert line(calls_affected=1).endswith(": 1 call since 2026-11-22 10:00 UTC")
    assert ": 12,345 calls since" in line(calls_affected=12_345)


def test_the_model_with_most_calls_is_where_and_the_others_are_counted() -> None:
    models = {"openai/gpt-4o": 3, "openai/gpt-4o-mini": 9, "anthropic/claude": 9}
    assert line(model_calls=models).startswith("Timeouts on anthropic/claude and 2 other models:")
    assert line(model_calls={"a/b": 1, "c/d": 1}).startswith("Timeouts on a/b and 1 other model:")
    crowded = {f"p/m{index:02d}": 1 for index in range(50)} | {"other": 7}
    assert "on p/m00 and more than 49 other models:" in line(model_calls=crowded)


def test_without_a_breakdown_the_fingerprint_says_where() -> None:
    assert line(model_calls={}, fingerprint="checkout-flow").startswith(
        "Timeouts on checkout-flow:"
    )


@pytest.mark.parametrize(
    ("trigger_type", "category", "opening"),
    [
        ("llm_failure", "LLM_ERROR", "Errors on openai/gpt-4o"),
        ("llm_failure", "PROVIDER_OUTAGE", "Provider unavailable on openai/gpt-4o"),
        ("rate_limit", "RATE_LIMIT", "Rate limiting on openai/gpt-4o"),
        ("budget_breach", "BUDGET_EXCEEDED", "Budget exceeded on openai/gpt-4o"),
        ("content_policy", "CONTENT_POLICY", "Content filtered on openai/gpt-4o"),
        ("llm_failure", "SOMETHING_NEW", "Incidents (SOMETHING_NEW) on openai/gpt-4o"),
    ],
)
def test_each_category_reads_as_what_happened(
    trigger_type: str, category: str, opening: str
) -> None:
    assert line(trigger_type=trigger_type, category=category).startswith(opening + ":")


def test_a_policy_violation_names_its_policy_type_and_fingerprint() -> None:
    text = line(trigger_type="policy_violation", category="POLICY_PII", fingerprint="pii-guard")
    assert text == "Policy violations (PII) on pii-guard: 12 calls since 2026-11-22 10:00 UTC"
    plain = line(trigger_type="policy_violation", category="POLICY_VIOLATION", fingerprint="p1")
    assert plain.startswith("Policy violations on p1:")


def test_the_overflow_incident_has_no_single_place() -> None:
    text = line(trigger_type="rate_limit_overflow", category="RATE_LIMIT_OVERFLOW", fingerprint="*")
    assert text == "Events past the hourly incident cap: 12 calls since 2026-11-22 10:00 UTC"


def test_a_row_is_described_from_its_columns() -> None:
    assert describe_row(incident_row()) == line(started_at=datetime(2026, 11, 22, 10, tzinfo=UTC))
    assert describe_row(incident_row(breakdown={})).startswith("Timeouts on openai/gpt-4o/timeout:")


def test_times_are_to_the_minute_in_utc() -> None:
    paris = datetime(2026, 11, 22, 11, 59, 59, tzinfo=timezone(timedelta(hours=1)))
    assert format_minute(paris) == "2026-11-22 10:59 UTC"
    assert format_minute(datetime(999, 1, 2, 3, 4, tzinfo=UTC)) == "0999-01-02 03:04 UTC"


@pytest.mark.parametrize(
    ("duration", "words"),
    [
        (timedelta(seconds=-5), "0 s"),
        (timedelta(seconds=59, microseconds=999_999), "59 s"),
        (timedelta(minutes=12, seconds=30), "12 min"),
        (timedelta(hours=3), "3 h"),
        (timedelta(hours=3, minutes=5), "3 h 5 min"),
        (timedelta(hours=47, minutes=59), "47 h 59 min"),
        (timedelta(days=2, hours=4), "2 d 4 h"),
        (timedelta(days=9), "9 d"),
    ],
)
def test_durations_in_words(duration: timedelta, words: str) -> None:
    assert format_duration(duration) == words
