"""api.incidents.listing: pagination, the default sort per topic, the states a topic and a
lifecycle_state select, the as_of a page reads at, range checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.errors import ApiError
from api.incidents.listing import (
    SortField,
    Topic,
    check_order,
    default_sort,
    listed_states,
    page_of,
    paging_as_of,
)
from domain.incidents import LifecycleState


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


def test_an_empty_range_names_its_upper_bound() -> None:
    early, late = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 2, tzinfo=UTC)
    check_order(early, late, "a", "b")
    check_order(None, early, "a", "b")
    with pytest.raises(ApiError) as raised:
        check_order(late, early, "started_after", "started_before")
    assert (raised.value.status, raised.value.field) == (422, "started_before")


def test_a_lifecycle_state_narrows_the_topic_to_one_state() -> None:
    assert listed_states(None, None) == ("ACTIVE", "ACKED", "RESOLVED")
    assert listed_states(Topic.ACTIVE, None) == ("ACTIVE", "ACKED")
    assert listed_states(None, LifecycleState.ACKED) == ("ACKED",)
    assert listed_states(Topic.ACTIVE, LifecycleState.ACKED) == ("ACKED",)
    assert listed_states(Topic.HISTORICAL, LifecycleState.RESOLVED) == ("RESOLVED",)


@pytest.mark.parametrize(
    ("topic", "state"),
    [
        (Topic.RESOLVED, LifecycleState.ACTIVE),
        (Topic.HISTORICAL, LifecycleState.ACKED),
        (Topic.ACTIVE, LifecycleState.RESOLVED),
    ],
)
def test_a_state_outside_the_topic_is_a_422_naming_lifecycle_state(
    topic: Topic, state: LifecycleState
) -> None:
    with pytest.raises(ApiError) as raised:
        listed_states(topic, state)
    assert (raised.value.status, raised.value.field) == (422, "lifecycle_state")
    assert str(topic) in raised.value.message


def test_a_page_reads_at_the_as_of_it_is_given_never_a_later_one() -> None:
    current = datetime(2024, 11, 22, 14, tzinfo=UTC)
    assert paging_as_of(None, current) == current
    earlier = datetime(2024, 11, 22, 19, 29, 59, 999_999, tzinfo=timezone(timedelta(hours=5.5)))
    read = paging_as_of(earlier, current)
    assert read == earlier and read.tzinfo is UTC
    assert paging_as_of(current, current) == current
    with pytest.raises(ApiError) as raised:
        paging_as_of(current + timedelta(microseconds=1), current)
    assert (raised.value.status, raised.value.field) == (422, "as_of")
