"""The JSON text written into `jsonb` columns (storage/engine.py)."""

from __future__ import annotations

import json

import pytest

from storage.engine import _json_text


@pytest.mark.parametrize(
    "value",
    [
        {"small": 1, "text": "é", "nested": [1.5, None, True]},
        {"past_64_bits": 2**64, "negative": -(2**63) - 1},
        {"long": int("9" * 4300)},
    ],
)
def test_json_text_keeps_every_integer_exactly(value: object) -> None:
    assert json.loads(_json_text(value)) == value


def test_json_text_refuses_nan_rather_than_writing_invalid_json() -> None:
    with pytest.raises((TypeError, ValueError)):
        _json_text({"big": 2**64, "nan": float("nan")})
