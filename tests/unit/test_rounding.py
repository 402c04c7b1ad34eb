"""domain.rounding: percentages, money, cents and means."""

from __future__ import annotations

from decimal import Decimal

import pytest

from domain import rounding as a


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


def test_money_keeps_every_digit_of_the_widest_sums() -> None:
    assert a.money(Decimal("0E-8")) == "0.00000000"
    widest = "9" * 30 + ".12345678"
    assert a.money(Decimal(widest)) == widest
