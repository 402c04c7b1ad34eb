"""The pure helpers of the analytics endpoints: buckets, rounding, trend, cost texts."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from api import analytics_rules as a
from api.analytics_queries import MIN_PATTERN_SIZE
from api.cost_models import CostDriver, Period
from api.cost_queries import KeySpend
from api.history_models import Granularity
from domain.analytics import PatternMember
from domain.patterns import PATTERN_TYPES, detect_patterns


def test_weeks_start_on_monday_and_months_on_the_first() -> None:
    sunday, monday = date(2024, 6, 2), date(2024, 6, 3)
    assert a.bucket_of(sunday, Granularity.WEEK) == date(2024, 5, 27)
    assert a.bucket_of(monday, Granularity.WEEK) == monday
    assert a.bucket_of(sunday, Granularity.MONTH) == date(2024, 6, 1)
    assert a.bucket_of(sunday, Granularity.DAY) == sunday


def test_bucket_starts_cover_the_window_across_years() -> None:
    months = a.bucket_starts(date(2023, 11, 15), date(2024, 2, 1), Granularity.MONTH)
    assert months == [date(2023, 11, 1), date(2023, 12, 1), date(2024, 1, 1), date(2024, 2, 1)]
    weeks = a.bucket_starts(date(2024, 6, 2), date(2024, 6, 10), Granularity.WEEK)
    assert weeks == [date(2024, 5, 27), date(2024, 6, 3), date(2024, 6, 10)]
    assert len(a.bucket_starts(date(2024, 1, 1), date(2024, 12, 31), Granularity.DAY)) == 366


def test_fold_days_returns_empty_buckets_as_zeros() -> None:
    days = {date(2024, 6, 3): 2, date(2024, 6, 5): 3, date(2024, 6, 17): 1, date(2024, 7, 1): 9}
    folded = a.fold_days(
        days, date(2024, 6, 1), date(2024, 6, 20), Granularity.WEEK, 0, int.__add__
    )
    assert folded == [
        (date(2024, 5, 27), 0),
        (date(2024, 6, 3), 5),
        (date(2024, 6, 10), 0),
        (date(2024, 6, 17), 1),
    ]
    daily = a.fold_days({}, date(2024, 6, 1), date(2024, 6, 3), Granularity.DAY, 0, int.__add__)
    assert daily == [(date(2024, 6, 1), 0), (date(2024, 6, 2), 0), (date(2024, 6, 3), 0)]


@pytest.mark.parametrize(
    ("part", "whole", "places", "expected"),
    [(1, 3, 2, 33.33), (2, 3, 2, 66.67), (1, 8, 2, 12.5), (1, 8, 1, 12.5), (1, 16, 1, 6.3),
     (5, 0, 2, 0.0), (0, 7, 1, 0.0), (Decimal("0.125"), 1, 1, 12.5), (1, 200, 0, 1.0)],
)  # fmt: skip
def test_percentages_round_half_up(part: int, whole: int, places: int, expected: float) -> None:
    assert a.percentage(part, whole, places) == expected


def test_money_cents_and_means() -> None:
    assert a.money(Decimal("1.234567895")) == "1.23456790"  # half even at the stored scale
    assert a.money(Decimal("0.125"), 2) == "0.13"
    assert a.money(Decimal(0), 2) == "0.00"
    assert a.cents(Decimal("0.005")) == 1 and a.cents(Decimal("12.344")) == 1234
    assert a.mean_ms(Decimal("1.0005"), 1) == 1001
    assert a.mean_ms(Decimal(0), 0) is None


@pytest.mark.parametrize(
    ("deviation", "trend", "message"),
    [
        (None, "normal", "Spending is within normal range"),
        (Decimal("200.4"), "spike", "Spending is 200% above your usual level"),
        (Decimal("200"), "rising", "Spending has increased 200% from baseline"),
        (Decimal("50.5"), "rising", "Spending has increased 51% from baseline"),
        (Decimal("50"), "normal", "Spending is within normal range"),
        (Decimal("-30"), "normal", "Spending is within normal range"),
        (Decimal("-45.5"), "normal", "Spending is 46% below your usual level"),
    ],
)
def test_trend_classification(deviation: Decimal | None, trend: str, message: str) -> None:
    assert a.trend_of(deviation) == trend
    assert a.trend_message(deviation) == message


def test_deviation_compares_daily_averages() -> None:
    assert a.deviation_pct(Decimal(30), Decimal(10)) == 200
    assert a.deviation_pct(Decimal(5), Decimal(0)) is None
    start = datetime(2024, 6, 1, tzinfo=UTC)
    assert a.elapsed_days(start, start + timedelta(days=6, hours=12)) == Decimal("6.5")
    assert a.elapsed_days(start, start + timedelta(minutes=1)) == Decimal(1) / 24


def test_periods_are_utc_days_up_to_as_of() -> None:
    at = datetime(2024, 6, 10, 15, 30, tzinfo=UTC)
    assert a.period_start(Period.TODAY, at) == datetime(2024, 6, 10, tzinfo=UTC)
    assert a.period_start(Period.SEVEN_DAYS, at) == datetime(2024, 6, 4, tzinfo=UTC)
    assert a.period_start(Period.THIRTY_DAYS, at) == datetime(2024, 5, 12, tzinfo=UTC)


def test_model_display_names() -> None:
    assert a.model_display_name("anthropic/claude-3-haiku") == "Claude 3 Haiku"
    assert a.model_display_name("mistral/mistral-large") == "Mistral Large"
    assert a.model_display_name("other") == "Other"


def _spend(dimension: str, key: str, cost: str) -> KeySpend:
    return KeySpend(dimension, key, 1, 1, Decimal(cost), Decimal(0))


def test_summary_text_rules() -> None:
    category, model = _spend("category", "LLM_TIMEOUT", "6"), _spend("model", "openai/gpt-4o", "4")
    total = Decimal(10)
    assert a.spend_summary_text(Decimal(0), None, None) == "No spending recorded for this period"
    assert (
        a.spend_summary_text(total, category, model)
        == "40% of your spend is from Gpt 4O usage in LLM_TIMEOUT"
    )
    assert a.spend_summary_text(total, None, model) == "Most of your spend (40%) is from Gpt 4O"
    assert (
        a.spend_summary_text(total, category, None)
        == "Most of your spend (60%) is from LLM_TIMEOUT"
    )
    assert a.spend_summary_text(total, None, None) == "Your total spend for this period is $10.00"


def test_top_spenders_and_largest_driver() -> None:
    keys = [_spend("agent", f"a{n:02}", str(n)) for n in range(12)] + [_spend("model", "m", "9")]
    top = a.top_spenders(keys, "agent")
    assert [k.key for k in top] == [f"a{n:02}" for n in range(11, 1, -1)]

    def driver(name: str, pct: float) -> CostDriver:
        return CostDriver(
            name=name,
            display_name=None,
            spend_cents=1,
            request_count=1,
            incident_count=1,
            pct_of_total=pct,
            trend="normal",
        )

    tied = [("category", [driver("c", 40.0)]), ("model", [driver("m", 40.0)]), ("agent", [])]
    assert a.largest_driver(tied) == ("category", driver("c", 40.0))
    assert a.largest_driver([("category", []), ("model", [driver("m", 1.0)])])[1].name == "m"
    assert a.largest_driver([("category", [])]) is None


@pytest.mark.parametrize("pattern_type", PATTERN_TYPES)
def test_groups_of_one_never_form_a_pattern(pattern_type: str) -> None:
    """The candidates select leaves out (type, dimension) groups below MIN_PATTERN_SIZE."""
    at = datetime(2024, 6, 1, tzinfo=UTC)
    below = [
        PatternMember("t", pattern_type, "high", uuid.uuid4(), at)
        for _ in range(MIN_PATTERN_SIZE - 1)
    ]
    assert detect_patterns(below, at - timedelta(hours=1), at, 50) == []
