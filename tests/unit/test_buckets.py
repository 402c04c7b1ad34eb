"""domain.buckets: UTC buckets of days, weeks and months, and folding days into them."""

from __future__ import annotations

from datetime import date

from domain import buckets as b
from domain.buckets import Granularity


def test_weeks_start_on_monday_and_months_on_the_first() -> None:
    sunday, monday = date(2024, 6, 2), date(2024, 6, 3)
    assert b.bucket_of(sunday, Granularity.WEEK) == date(2024, 5, 27)
    assert b.bucket_of(monday, Granularity.WEEK) == monday
    assert b.bucket_of(sunday, Granularity.MONTH) == date(2024, 6, 1)
    assert b.bucket_of(sunday, Granularity.DAY) == sunday


def test_bucket_starts_cover_the_window_across_years() -> None:
    months = b.bucket_starts(date(2023, 11, 15), date(2024, 2, 1), Granularity.MONTH)
    assert months == [date(2023, 11, 1), date(2023, 12, 1), date(2024, 1, 1), date(2024, 2, 1)]
    weeks = b.bucket_starts(date(2024, 6, 2), date(2024, 6, 10), Granularity.WEEK)
    assert weeks == [date(2024, 5, 27), date(2024, 6, 3), date(2024, 6, 10)]
    assert len(b.bucket_starts(date(2024, 1, 1), date(2024, 12, 31), Granularity.DAY)) == 366


def test_fold_days_returns_empty_buckets_as_zeros() -> None:
    days = {date(2024, 6, 3): 2, date(2024, 6, 5): 3, date(2024, 6, 17): 1, date(2024, 7, 1): 9}
    folded = b.fold_days(
        days, date(2024, 6, 1), date(2024, 6, 20), Granularity.WEEK, 0, int.__add__
    )
    assert folded == [
        (date(2024, 5, 27), 0),
        (date(2024, 6, 3), 5),
        (date(2024, 6, 10), 0),
        (date(2024, 6, 17), 1),
    ]
    daily = b.fold_days({}, date(2024, 6, 1), date(2024, 6, 3), Granularity.DAY, 0, int.__add__)
    assert daily == [(date(2024, 6, 1), 0), (date(2024, 6, 2), 0), (date(2024, 6, 3), 0)]
