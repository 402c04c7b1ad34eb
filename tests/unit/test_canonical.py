"""The canonical JSON form: what it writes, and what it refuses with its place."""

from __future__ import annotations

import enum
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from domain.canonical import (
    MAX_SAFE_INTEGER,
    CanonicalFormError,
    canonical,
    format_time,
    plain_json,
)

T = datetime(2026, 11, 22, 10, 0, 0, 37000, tzinfo=UTC)


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


class Colour(enum.StrEnum):
    RED = "red"


def test_keys_are_sorted_by_code_point_and_nothing_is_spaced() -> None:
    value = {"b": 1, "a": [1, 2], "Z": None, "é": True, "\U0001f600": False, "\uffff": "x"}
    assert canonical(value) == (
        b'{"Z":null,"a":[1,2],"b":1,"\xc3\xa9":true,"\xef\xbf\xbf":"x","\xf0\x9f\x98\x80":false}'
    )


def test_strings_are_escaped_only_where_json_requires() -> None:
    text = 'q"b\\s/é\u2028\x7f\x00\x08\t\n\x0b\x0c\r\x1f'
    assert canonical(text) == (
        b'"q\\"b\\\\s/\xc3\xa9\xe2\x80\xa8\x7f\\u0000\\b\\t\\n\\u000b\\f\\r\\u001f"'
    )


def test_decimals_uuids_times_and_subclasses_have_one_written_form() -> None:
    offset = timezone(timedelta(hours=2))
    value = {
        "money": Decimal("0.42000000"),
        "big": Decimal("1E+3"),
        "id": uuid.UUID("6F1D2C3B-4A59-5E6F-8A7B-9C0D1E2F3A4B"),
        "at": datetime(2026, 11, 22, 12, 0, tzinfo=offset),
        "early": datetime(1, 1, 1, tzinfo=UTC),
        "colour": Colour.RED,
        Colour.RED: (1, -MAX_SAFE_INTEGER),
    }
    assert json.loads(canonical(value)) == {
        "money": "0.42000000",
        "big": "1000",
        "id": "6f1d2c3b-4a59-5e6f-8a7b-9c0d1e2f3a4b",
        "at": "2026-11-22T10:00:00.000000Z",
        "early": "0001-01-01T00:00:00.000000Z",
        "colour": "red",
        "red": [1, -MAX_SAFE_INTEGER],
    }


@pytest.mark.parametrize(
    ("value", "path", "reason"),
    [
        ({"a": [1, {"b": 1.5}]}, "$.a[1].b", "float"),
        ({"a": float("nan")}, "$.a", "float"),
        ({"a": {1: 2}}, "$.a", "not a string"),
        ({"t": datetime(2026, 1, 1)}, "$.t", "naive"),
        ({"t": datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1)))}, "$.t", "years"),
        ({"n": MAX_SAFE_INTEGER + 1}, "$.n", "2**53"),
        ({"n": [-(2**64)]}, "$.n[0]", "2**53"),
        ({"d": Decimal("NaN")}, "$.d", "non-finite"),
        ({"d": Decimal("-Infinity")}, "$.d", "non-finite"),
        ({"s": {1, 2}}, "$.s", "set"),
        ({"b": b"x"}, "$.b", "bytes"),
        ({"s": "\ud800"}, "$", "surrogates"),
        ({"deep": _nested(254)}, "$", "nested deeper than 254 levels"),
        ({"deeper": _nested(5000)}, "$", "nested deeper than 254 levels"),
    ],
)
def test_what_the_form_cannot_represent_is_refused_with_its_place(
    value: Any, path: str, reason: str
) -> None:
    with pytest.raises(CanonicalFormError) as raised:
        canonical(value)
    assert raised.value.path == path
    assert reason in raised.value.reason


def test_nesting_up_to_the_limit_is_written() -> None:
    assert canonical(_nested(254)) == b"[" * 254 + b"]" * 254


def test_times_have_six_fractional_digits_in_utc() -> None:
    assert format_time(T) == "2026-11-22T10:00:00.037000Z"
    assert format_time(datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)).endswith(
        "59.999999Z"
    )


def test_free_form_json_numbers_become_decimal_strings() -> None:
    value = {"a": 1.5, "b": [1e-07, 2, 2**60, True], "c": {"d": -0.0}, "e": "x"}
    assert plain_json(value) == {
        "a": "1.5",
        "b": ["0.0000001", 2, str(2**60), True],
        "c": {"d": "-0.0"},
        "e": "x",
    }
    unchanged = {"a": [1, "x", None]}
    assert plain_json(unchanged) is unchanged
    canonical(plain_json(value))


def test_the_fast_path_and_the_converting_walk_write_the_same_bytes() -> None:
    class Text(str):
        pass

    plain = {"a": [1, "x"], "b": {"c": Decimal("1.50"), "t": T}}
    converted = {Text("a"): (1, Text("x")), "b": {"c": Decimal("1.50"), "t": T}}
    assert canonical(converted) == canonical(plain)
