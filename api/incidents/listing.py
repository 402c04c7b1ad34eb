"""What a listing of incidents is asked and answers: topics, states, filters, sorts and pages.

Everything here but `paged_as_of` (a dependency reading the request's `as_of`) is independent of
the database and of HTTP handling, so it is unit-tested directly: the default sort per topic, the
states a topic and a `lifecycle_state` select, pagination arithmetic and range checks.

A listing is read at an `as_of`: the current one (the lowest ingest watermark), or an earlier one
a previous page returned. It holds the incidents created before `as_of` in event time
(`incidents.created_watermark`, stamped by the ingest worker): a page read again at that `as_of`
leaves out every incident created since (README, "Paging").
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from fastapi import Depends, Path, Query
from pydantic import AwareDatetime

from api.auth import AsOf
from api.errors import invalid_parameter
from domain.incidents import LifecycleState
from storage.rules import ALL_STATES, OPEN_STATES, RESOLVED_STATES


class Topic(StrEnum):
    ACTIVE = "active"
    RESOLVED = "resolved"
    HISTORICAL = "historical"


class SortField(StrEnum):
    STARTED_AT = "started_at"
    RESOLVED_AT = "resolved_at"
    LAST_EVENT_AT = "last_event_at"
    CALLS_AFFECTED = "calls_affected"
    COST_USD = "cost_usd"
    SEVERITY = "severity"


class SortOrder(StrEnum):
    ASC = "asc"
    DESC = "desc"


TOPIC_STATES: dict[Topic | None, tuple[str, ...]] = {
    None: ALL_STATES,
    Topic.ACTIVE: OPEN_STATES,
    Topic.RESOLVED: RESOLVED_STATES,
    Topic.HISTORICAL: RESOLVED_STATES,
}
"""The lifecycle states of each topic (historical is also bounded by `resolved_at`)."""


def listed_states(topic: Topic | None, state: LifecycleState | None) -> tuple[str, ...]:
    """The lifecycle states a listing selects: the topic's, narrowed to `state` if given.

    Raises a 422 naming `lifecycle_state` when the topic has no such state (for example
    `topic=resolved&lifecycle_state=ACTIVE`): the listing would be empty by construction.
    """
    states = TOPIC_STATES[topic]
    if state is None:
        return states
    if state.value not in states:
        raise invalid_parameter(
            "lifecycle_state",
            f"lifecycle_state {state.value} is not a state of topic {topic}: "
            f"it has {', '.join(states)}",
        )
    return (state.value,)


def default_sort(topic: Topic | None) -> SortField:
    """Active (and unfiltered) lists sort by start, resolved and historical by resolution."""
    if topic in (Topic.RESOLVED, Topic.HISTORICAL):
        return SortField.RESOLVED_AT
    return SortField.STARTED_AT


@dataclass(frozen=True, slots=True)
class IncidentFilters:
    """What `/v1/incidents` selects; None means "no condition"."""

    topic: Topic | None = None
    lifecycle_state: LifecycleState | None = None
    retention_days: int = 30
    severity: str | None = None
    category: str | None = None
    cause_type: str | None = None
    trigger_type: str | None = None
    is_synthetic: bool | None = None
    started_after: datetime | None = None
    started_before: datetime | None = None
    resolved_after: datetime | None = None
    resolved_before: datetime | None = None


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a list: what the response says about the rest."""

    total: int
    has_more: bool
    next_offset: int | None


def page_of(total: int, offset: int, returned: int) -> Page:
    """`has_more` when rows remain after this page; `next_offset` is where the next page starts."""
    has_more = offset + returned < total
    return Page(total=total, has_more=has_more, next_offset=offset + returned if has_more else None)


def paging_as_of(requested: datetime | None, current: datetime) -> datetime:
    """The `as_of` a page is read at (UTC): `requested`, an `as_of` a previous page returned, or
    the current one. Raises a 422 naming `as_of` when `requested` is later than the current
    `as_of`: the tables are not complete up to it yet."""
    if requested is None:
        return current
    if requested > current:
        later = f"as_of {requested.isoformat()} is later than the current {current.isoformat()}"
        raise invalid_parameter("as_of", later)
    return requested.astimezone(UTC)


AsOfParam = Annotated[
    AwareDatetime | None,
    Query(
        description="Page over the set another page read at this `as_of` (its response's "
        "`as_of`): incidents created since are left out. Absent: the current `as_of`. ISO 8601 "
        "with offset, not later than the current `as_of`.",
        examples=["2024-05-01T10:05:00Z"],
    ),
]


async def paged_as_of(current: AsOf, as_of: AsOfParam = None) -> datetime:
    """The request's `as_of` (see `paging_as_of`)."""
    return paging_as_of(as_of, current)


PagedAsOf = Annotated[datetime, Depends(paged_as_of)]
"""Use as a parameter type after `tenant: Tenant`, in place of `AsOf`, on a paged listing: it
declares the `as_of` query parameter."""


def check_order(
    after: datetime | None, before: datetime | None, after_name: str, before_name: str
) -> None:
    """Raise a 422 naming `before_name` when the range is empty (after later than before)."""
    if after is not None and before is not None and after > before:
        raise invalid_parameter(before_name, f"{before_name} is earlier than {after_name}")


NO_NUL = r"^[^\x00]*$"
"""PostgreSQL text cannot hold NUL: such a value is a bad parameter, not a database error."""

IncidentId = Annotated[uuid.UUID, Path(description="The incident's UUID.")]
RunId = Annotated[str, Path(min_length=1, max_length=200, pattern=NO_NUL)]
TopicParam = Annotated[
    Topic | None,
    Query(description="active (ACTIVE, ACKED), resolved, historical; absent: all."),
]
LifecycleStateParam = Annotated[
    LifecycleState | None,
    Query(
        description="Only this state, which must be one of the topic's (a 422 otherwise, e.g. "
        "`topic=resolved&lifecycle_state=ACTIVE`); ACKED alone: acknowledged, not resolved.",
    ),
]
SortByParam = Annotated[
    SortField | None,
    Query(description="Default: started_at (resolved_at for resolved and historical)."),
]
RetentionDays = Annotated[
    int,
    Query(
        ge=7,
        le=365,
        description="historical only: resolved more than this many days before as_of (7-365).",
        examples=[30],
    ),
]
Since = Annotated[AwareDatetime | None, Query(description="Inclusive; ISO 8601 with offset.")]
TextFilter = Annotated[
    str | None,
    Query(min_length=1, max_length=200, pattern=NO_NUL, description="Exact match."),
]
