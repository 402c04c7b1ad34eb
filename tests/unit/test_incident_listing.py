"""api.incidents.listing: pagination, the default sort per topic, range checks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.errors import ApiError
from api.incidents.listing import SortField, Topic, check_order, default_sort, page_of


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
