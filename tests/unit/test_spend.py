"""domain.spend: trends, deviations, periods, display names, summary texts and drivers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from api.costs.bodies import CostDriver
from domain import spend as a
from domain.spend import DaySpend, KeySpend, Period


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


def test_a_summary_compares_the_period_with_the_days_before_it() -> None:
    at = datetime(2024, 6, 10, 12, tzinfo=UTC)
    days = [
        DaySpend(at.date() - timedelta(days=n), 1, Decimal(10)) for n in range(40)
    ]  # 10 USD a day
    summary = a.summarize_spend(days, Period.SEVEN_DAYS, at)
    assert a.first_day_summarized(Period.SEVEN_DAYS, at) == at.date() - timedelta(days=36)
    assert (summary.total, summary.incidents) == (Decimal(70), 7)
    assert summary.today == 10 and summary.month_to_date == 100
    assert summary.baseline_daily_average == 10
    assert summary.daily_average == Decimal(70) / Decimal("6.5")
    assert summary.projected_month_end == Decimal(100) / Decimal("9.5") * 30


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
