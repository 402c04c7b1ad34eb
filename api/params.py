"""Query parameters shared by several routes, each name with one meaning and one range."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from domain.buckets import Granularity
from domain.spend import Period

Limit = Annotated[int, Query(ge=1, le=100, description="Page size, 1-100.", examples=[20])]
Offset = Annotated[
    int,
    Query(ge=0, le=2_147_483_647, description="Rows to skip, >= 0.", examples=[0]),
]
MetricsWindowDays = Annotated[
    int,
    Query(
        ge=1,
        le=90,
        description="Incidents started in the last N days up to as_of (1-90).",
        examples=[30],
    ),
]
HistoryWindowDays = Annotated[
    int, Query(ge=7, le=365, description="UTC days up to as_of (7-365).", examples=[90])
]
WindowHours = Annotated[
    int, Query(ge=1, le=168, description="Hours before as_of (1-168).", examples=[24])
]
BaselineDays = Annotated[
    int, Query(ge=1, le=90, description="UTC days up to as_of (1-90).", examples=[30])
]
PatternLimit = Annotated[int, Query(ge=1, le=50, description="Patterns per type (1-50).")]
GroupLimit = Annotated[int, Query(ge=1, le=50, description="Groups returned (1-50).")]
Threshold = Annotated[
    int, Query(ge=2, le=100, description="Least occurrences of a recurring group (2-100).")
]
GranularityParam = Annotated[
    Granularity, Query(description="Bucket of started_at (UTC); weeks start on Monday.")
]
PeriodParam = Annotated[
    Period, Query(description="today, or the last 7 or 30 UTC days, up to as_of.")
]
