"""UTC time buckets: the hour and the day an incident counts in, and the periods of a window.

The stream processors bucket incidents by the UTC hour and UTC day of their start; the API's
windows of days are UTC calendar days ending at `as_of` (the last N days, the current one up to
`as_of`), and its trends fold days into buckets of a granularity. Pure functions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import TypeVar

T = TypeVar("T")


class Granularity(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


def utc_hour(at: datetime) -> datetime:
    """The start of the UTC hour holding `at`."""
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def utc_day(at: datetime) -> date:
    """The UTC calendar day of `at`."""
    return at.astimezone(UTC).date()


def day_start(day: date) -> datetime:
    """Midnight UTC at the start of `day`."""
    return datetime.combine(day, time(), UTC)


def utc_midnight(at: datetime) -> datetime:
    """Midnight UTC at the start of at's UTC day."""
    return day_start(utc_day(at))


def days_before(at: datetime, days: int) -> datetime:
    """Midnight UTC `days` days before at's UTC day."""
    return utc_midnight(at) - timedelta(days=days)


def bucket_of(day: date, granularity: Granularity) -> date:
    """The start of the bucket holding `day`: itself, its week's Monday, or its month's 1st."""
    if granularity is Granularity.WEEK:
        return day - timedelta(days=day.weekday())
    if granularity is Granularity.MONTH:
        return day.replace(day=1)
    return day


def bucket_starts(first: date, last: date, granularity: Granularity) -> list[date]:
    """Every bucket start from the bucket of `first` to the bucket of `last`, ascending."""
    starts, at, end = [], bucket_of(first, granularity), bucket_of(last, granularity)
    while at <= end:
        starts.append(at)
        at = _next_bucket(at, granularity)
    return starts


def _next_bucket(start: date, granularity: Granularity) -> date:
    if granularity is Granularity.MONTH:
        return (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    return start + timedelta(days=7 if granularity is Granularity.WEEK else 1)


def fold_days(
    days: Mapping[date, T],
    first: date,
    last: date,
    granularity: Granularity,
    zero: T,
    add: Callable[[T, T], T],
) -> list[tuple[date, T]]:
    """Per-day values summed into every bucket of [first, last]; empty buckets hold `zero`."""
    totals = dict.fromkeys(bucket_starts(first, last, granularity), zero)
    for day, value in days.items():
        if first <= day <= last:
            bucket = bucket_of(day, granularity)
            totals[bucket] = add(totals[bucket], value)
    return sorted(totals.items())
