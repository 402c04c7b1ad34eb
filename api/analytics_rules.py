"""The pure rules of the analytics endpoints: buckets, rounding, trend, cost texts.

Day-based windows are UTC calendar days: the last N days, the current one up to `as_of`. Unit-tested
directly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from typing import TypeVar

from api.analytics_queries import days_before
from api.cost_models import CostDriver, DriverType, Period, Trend
from api.cost_queries import KeySpend
from api.history_models import Granularity

TOP_DRIVERS = 10
MIN_ELAPSED = timedelta(hours=1)
PERIOD_DAYS = {Period.TODAY: 1, Period.SEVEN_DAYS: 7, Period.THIRTY_DAYS: 30}

T = TypeVar("T")


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


def round_half_up(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP)


def percentage(part: Decimal | int, whole: Decimal | int, places: int) -> float:
    """part / whole * 100 rounded half up to `places`; 0 when whole is 0."""
    if not whole:
        return 0.0
    return float(round_half_up(Decimal(part) * 100 / Decimal(whole), places))


def money(value: Decimal, places: int = 8) -> str:
    """USD as a decimal string: 8 places (stored precision, half-even) or fewer (half up)."""
    rounding = ROUND_HALF_EVEN if places == 8 else ROUND_HALF_UP
    return f"{value.quantize(Decimal(1).scaleb(-places), rounding):f}"


def cents(usd: Decimal) -> int:
    return int(round_half_up(usd * 100, 0))


def mean_ms(seconds: Decimal, count: int) -> int | None:
    """Mean duration in whole milliseconds (half up); None without durations."""
    return int(round_half_up(seconds * 1000 / count, 0)) if count else None


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
    """The seed's wording, N rendered with 0 decimals."""
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


def model_display_name(key: str) -> str:
    """`anthropic/claude-3-haiku` -> `Claude 3 Haiku` (the seed's rule, provider dropped)."""
    name = key.rsplit("/", 1)[-1].replace("claude-", "Claude ")
    return name.replace("-", " ").title()


def period_start(period: Period, at: datetime) -> datetime:
    return days_before(at, PERIOD_DAYS[period] - 1)


def spend_summary_text(
    total: Decimal, top_category: KeySpend | None, top_model: KeySpend | None
) -> str:
    """The seed's summary rules, with category standing in for its `feature`."""
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


def largest_driver(
    tops: Sequence[tuple[DriverType, list[CostDriver]]],
) -> tuple[DriverType, CostDriver] | None:
    """The top driver with the largest share; ties go to the first dimension listed."""
    best: tuple[DriverType, CostDriver] | None = None
    for dimension, drivers in tops:
        if drivers and (best is None or drivers[0].pct_of_total > best[1].pct_of_total):
            best = (dimension, drivers[0])
    return best
