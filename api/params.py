"""Query parameters of the incident endpoints and the pure helpers behind them.

Everything here is independent of the database and of HTTP, so it is unit-tested directly:
the default sort per topic, pagination arithmetic and range checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from fastapi import Query

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


Limit = Annotated[int, Query(ge=1, le=100, description="Page size, 1-100.", examples=[20])]
Offset = Annotated[
    int,
    Query(ge=0, le=2_147_483_647, description="Rows to skip, >= 0.", examples=[0]),
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
WindowDays = Annotated[
    int,
    Query(
        ge=1,
        le=90,
        description="Incidents started in the last N days up to as_of (1-90).",
        examples=[30],
    ),
]
NO_NUL = r"^[^\x00]*$"
"""PostgreSQL text cannot hold NUL: such a value is a bad parameter, not a database error."""
TextFilter = Annotated[
    str | None,
    Query(min_length=1, max_length=200, pattern=NO_NUL, description="Exact match."),
]
