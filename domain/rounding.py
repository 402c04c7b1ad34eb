"""How the API rounds what it reports: half up for shares and means, half even for stored money.

Pure functions over Decimal (never float arithmetic before the last step).
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Context, Decimal

STORED_PLACES = 8
"""Money is stored with 8 decimal places (NUMERIC(p, 8))."""
_EXACT = Context(prec=100)
"""Precision for quantizing money: the default 28 digits would refuse the widest stored sums."""


def round_half_up(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP)


def percentage(part: Decimal | int, whole: Decimal | int, places: int) -> float:
    """part / whole * 100 rounded half up to `places`; 0 when whole is 0."""
    if not whole:
        return 0.0
    return float(round_half_up(Decimal(part) * 100 / Decimal(whole), places))


def money(value: Decimal, places: int = STORED_PLACES) -> str:
    """USD as a decimal string: 8 places (stored precision, half-even) or fewer (half up)."""
    rounding = ROUND_HALF_EVEN if places == STORED_PLACES else ROUND_HALF_UP
    return f"{value.quantize(Decimal(1).scaleb(-places), rounding, _EXACT):f}"


def cents(usd: Decimal) -> int:
    """Whole cents, half up."""
    return int(round_half_up(usd * 100, 0))


def mean_ms(seconds: Decimal, count: int) -> int | None:
    """Mean duration in whole milliseconds (half up); None without durations."""
    return int(round_half_up(seconds * 1000 / count, 0)) if count else None
