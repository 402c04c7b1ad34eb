"""What a listing of incidents is asked and answers: topics, filters, sorts and pages.

Everything here is independent of the database and of HTTP handling, so it is unit-tested
directly: the default sort per topic, pagination arithmetic and range checks.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from fastapi import Path, Query
from pydantic import AwareDatetime

from api.errors import invalid_parameter


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


def default_sort(topic: Topic | None) -> SortField:
    """Active (and unfiltered) lists sort by start, resolved and historical by resolution."""
    if topic in (Topic.RESOLVED, Topic.HISTORICAL):
        return SortField.RESOLVED_AT
    return SortField.STARTED_AT


@dataclass(frozen=True, slots=True)
class IncidentFilters:
    """What `/v1/incidents` selects; None means "no condition"."""

    topic: Topic | None = None
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
