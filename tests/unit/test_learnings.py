"""domain.learnings: the insights of similar resolved incidents, and durations in words."""

from __future__ import annotations

import uuid

import pytest

from domain.learnings import Resolved, format_duration, insights


def _resolved(method: str | None, ms: int | None) -> Resolved:
    return Resolved(uuid.uuid4(), method, ms)


def test_insights_of_response_and_detection() -> None:
    target = _resolved("manual", 0)
    similar = [_resolved("manual", 120_000), _resolved("rollback", None)]
    found = {insight.insight_type: insight for insight in insights(target, similar)}
    assert set(found) == {"response", "detection"}  # no recovery is ever recorded
    assert found["response"].confidence == 0.6
    assert found["response"].supporting_incident_ids == [target.incident_id, similar[0].incident_id]
    assert found["detection"].confidence == 0.7  # k = 2: a 0 ms resolution counts
    assert "1 minutes" in found["detection"].description
    assert insights(_resolved(None, None), []) == []


@pytest.mark.parametrize(
    ("ms", "text"),
    [(59 * 60_000, "59 minutes"), (90 * 60_000, "1.5 hours"), (36 * 3_600_000, "1.5 days")],
)
def test_durations_read_naturally(ms: int, text: str) -> None:
    assert format_duration(ms) == text
