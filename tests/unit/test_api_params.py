"""Pure helpers of the API: pagination, default sort, range checks, insights, key format."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.errors import ApiError
from api.learnings import Resolved, format_duration, insights
from api.params import SortField, Topic, check_order, default_sort, page_of
from domain.contracts import Severity
from domain.incidents import SEVERITY_RANK
from storage.keys import PREFIX, hash_key, new_key


@given(st.integers(0, 1000), st.integers(0, 1000), st.integers(1, 100))
def test_pages_cover_the_total_exactly_once(total: int, offset: int, limit: int) -> None:
    returned = max(0, min(limit, total - offset))
    page = page_of(total, offset, returned)
    assert page.has_more == (offset + returned < total)
    assert page.next_offset == (offset + returned if page.has_more else None)


def test_default_sort_follows_the_topic() -> None:
    assert default_sort(None) is SortField.STARTED_AT
    assert default_sort(Topic.ACTIVE) is SortField.STARTED_AT
    assert default_sort(Topic.RESOLVED) is SortField.RESOLVED_AT
    assert default_sort(Topic.HISTORICAL) is SortField.RESOLVED_AT


def test_severity_rank_is_not_lexical() -> None:
    ranked = sorted(SEVERITY_RANK, key=SEVERITY_RANK.__getitem__)
    assert ranked == ["low", "medium", "high", "critical"] != sorted(SEVERITY_RANK)
    assert set(SEVERITY_RANK) == {severity.value for severity in Severity}


def test_an_empty_range_names_its_upper_bound() -> None:
    early, late = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 2, tzinfo=UTC)
    check_order(early, late, "a", "b")
    check_order(None, early, "a", "b")
    with pytest.raises(ApiError) as raised:
        check_order(late, early, "started_after", "started_before")
    assert (raised.value.status, raised.value.field) == (422, "started_before")


def _resolved(method: str | None, ms: int | None) -> Resolved:
    return Resolved(uuid.uuid4(), method, ms)


def test_insights_follow_the_seed_rules() -> None:
    target = _resolved("manual", 0)
    similar = [_resolved("manual", 120_000), _resolved("rollback", None)]
    found = {insight.insight_type: insight for insight in insights(target, similar)}
    assert set(found) == {"response", "detection"}  # no recovery is ever recorded
    assert found["response"].confidence == 0.6
    assert found["response"].supporting_incident_ids == [target.incident_id, similar[0].incident_id]
    assert found["detection"].confidence == 0.7  # k = 2: a 0 ms resolution counts (seed: null)
    assert "1 minutes" in found["detection"].description
    assert insights(_resolved(None, None), []) == []


def test_recovery_insight_applies_when_a_source_exists() -> None:
    target = Resolved(uuid.uuid4(), None, None, recovery_attempted=True)
    found = insights(target, [Resolved(uuid.uuid4(), None, None, recovery_attempted=True)])
    assert [(i.insight_type, i.confidence) for i in found] == [("prevention", 0.76)]


@pytest.mark.parametrize(
    ("ms", "text"),
    [(59 * 60_000, "59 minutes"), (90 * 60_000, "1.5 hours"), (36 * 3_600_000, "1.5 days")],
)
def test_durations_read_naturally(ms: int, text: str) -> None:
    assert format_duration(ms) == text


def test_keys_embed_their_id_and_only_the_hash_is_kept() -> None:
    key_id, key = new_key()
    prefix, embedded, secret = key.split("_", 2)
    assert (prefix, embedded) == (PREFIX, key_id) and len(secret) >= 40
    assert hash_key(key) != key and len(hash_key(key)) == 64
    assert new_key()[1] != key
