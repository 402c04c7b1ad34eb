"""The cost guard's rules: the spend lost in a period, its trend against the days before it, and
what drives it. Pure functions over the per-day and per-key spend the queries read.

Periods are UTC days up to `as_of` (today, or the last 7 or 30); a period's daily average is its
spend per elapsed day (at least an hour's worth), compared with the daily average of the
`BASELINE_DAYS` days before it.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Literal, Protocol, TypeVar

from domain.buckets import day_start, days_before
from domain.rounding import percentage, round_half_up

Trend = Literal["normal", "rising", "spike"]
TOP_DRIVERS = 10
MIN_ELAPSED = timedelta(hours=1)
BASELINE_DAYS = 30
"""A trend compares against the daily average of this many days before the period."""


class Period(StrEnum):
    TODAY = "today"
    SEVEN_DAYS = "7d"
    THIRTY_DAYS = "30d"


PERIOD_DAYS = {Period.TODAY: 1, Period.SEVEN_DAYS: 7, Period.THIRTY_DAYS: 30}


@dataclass(frozen=True, slots=True)
class DaySpend:
    """Incidents started on a UTC day and their cost."""

    day: date
    incidents: int
    cost_usd: Decimal


@dataclass(frozen=True, slots=True)
class KeySpend:
    """One key of a cost dimension: its period totals and its baseline cost before the period."""

    dimension: str
    key: str
    incidents: int
    calls: int
    cost_usd: Decimal
    baseline_cost_usd: Decimal


@dataclass(frozen=True, slots=True)
class SpendSummary:
    """A period's spend (USD) and how it compares; `deviation` is in percent (None without a
    baseline)."""

    start: datetime
    total: Decimal
    incidents: int
    today: Decimal
    seven_days: Decimal
    month_to_date: Decimal
    projected_month_end: Decimal
    daily_average: Decimal
    baseline_daily_average: Decimal
    deviation: Decimal | None


def period_start(period: Period, at: datetime) -> datetime:
    return days_before(at, PERIOD_DAYS[period] - 1)


def baseline_start(period: Period, at: datetime) -> datetime:
    return period_start(period, at) - timedelta(days=BASELINE_DAYS)


def first_day_summarized(period: Period, at: datetime) -> date:
    """The first day `summarize_spend` reads: the baseline's or the month's, if earlier."""
    return min(baseline_start(period, at).date(), at.date().replace(day=1))


def elapsed_days(start: datetime, end: datetime) -> Decimal:
    """Days from start to end, at least one hour's worth (a rate over minutes means nothing)."""
    span = max(end - start, MIN_ELAPSED)
    return Decimal(span // timedelta(microseconds=1)) / Decimal(86_400_000_000)


def deviation_pct(daily: Decimal, baseline_daily: Decimal) -> Decimal | None:
    """How far `daily` is above (or below) the baseline, in percent; None without baseline."""
    if baseline_daily <= 0:
        return None
    return (daily - baseline_daily) / baseline_daily * 100


def trend_of(deviation: Decimal | None) -> Trend:
    """spike above +200%, rising above +50%, else normal."""
    if deviation is not None and deviation > 200:
        return "spike"
    if deviation is not None and deviation > 50:
        return "rising"
    return "normal"


def trend_message(deviation: Decimal | None) -> str:
    """The trend in words, N rendered with 0 decimals."""
    if deviation is None:
        return "Spending is within normal range"
    n = round_half_up(abs(deviation), 0)
    if deviation > 200:
        return f"Spending is {n}% above your usual level"
    if deviation > 50:
        return f"Spending has increased {n}% from baseline"
    if deviation < -30:
        return f"Spending is {n}% below your usual level"
    return "Spending is within normal range"


def summarize_spend(days: Sequence[DaySpend], period: Period, as_of: datetime) -> SpendSummary:
    """The period's spend and trend from the per-day spend since `first_day_summarized`."""
    start, baseline = period_start(period, as_of), baseline_start(period, as_of)
    month_start = as_of.date().replace(day=1)

    def spend(since: date, until: date = date.max) -> Decimal:
        return sum((d.cost_usd for d in days if since <= d.day < until), Decimal(0))

    total = spend(start.date())
    daily = total / elapsed_days(start, as_of)
    baseline_daily = spend(baseline.date(), start.date()) / BASELINE_DAYS
    month_to_date = spend(month_start)
    month_days = calendar.monthrange(as_of.year, as_of.month)[1]
    return SpendSummary(
        start=start,
        total=total,
        incidents=sum(d.incidents for d in days if d.day >= start.date()),
        today=spend(as_of.date()),
        seven_days=spend(period_start(Period.SEVEN_DAYS, as_of).date()),
        month_to_date=month_to_date,
        projected_month_end=month_to_date
        / elapsed_days(day_start(month_start), as_of)
        * month_days,
        daily_average=daily,
        baseline_daily_average=baseline_daily,
        deviation=deviation_pct(daily, baseline_daily),
    )


def key_trend(key: KeySpend, elapsed: Decimal) -> Trend:
    """A key's trend: its daily average over `elapsed` days against its own baseline."""
    return trend_of(deviation_pct(key.cost_usd / elapsed, key.baseline_cost_usd / BASELINE_DAYS))


def model_display_name(key: str) -> str:
    """`anthropic/claude-3-haiku` -> `Claude 3 Haiku` (the provider dropped)."""
    name = key.rsplit("/", 1)[-1].replace("claude-", "Claude ")
    return name.replace("-", " ").title()


def spend_summary_text(
    total: Decimal, top_category: KeySpend | None, top_model: KeySpend | None
) -> str:
    """Where most of the spend comes from, in words."""
    if total == 0:
        return "No spending recorded for this period"
    if top_model is not None:
        pct, name = percentage(top_model.cost_usd, total, 0), model_display_name(top_model.key)
        if top_category is not None:
            return f"{pct:.0f}% of your spend is from {name} usage in {top_category.key}"
        return f"Most of your spend ({pct:.0f}%) is from {name}"
    if top_category is not None:
        pct = percentage(top_category.cost_usd, total, 0)
        return f"Most of your spend ({pct:.0f}%) is from {top_category.key}"
    return f"Your total spend for this period is ${round_half_up(total, 2)}"


def top_spenders(keys: Iterable[KeySpend], dimension: str) -> list[KeySpend]:
    """The dimension's 10 costliest keys (ties by name)."""
    rows = [key for key in keys if key.dimension == dimension]
    return sorted(rows, key=lambda key: (-key.cost_usd, key.key))[:TOP_DRIVERS]


class Share(Protocol):
    """What `largest_driver` reads of a driver: its share of the total spend, in percent."""

    @property
    def pct_of_total(self) -> float: ...


D = TypeVar("D", bound=str)
S = TypeVar("S", bound=Share)


def largest_driver(tops: Sequence[tuple[D, Sequence[S]]]) -> tuple[D, S] | None:
    """The top driver (the first of each dimension's) with the largest share; ties go to the
    first dimension listed."""
    best: tuple[D, S] | None = None
    for dimension, drivers in tops:
        if drivers and (best is None or drivers[0].pct_of_total > best[1].pct_of_total):
            best = (dimension, drivers[0])
    return best
