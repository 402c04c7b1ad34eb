"""The JSON cursor: what it walks equals what `json.loads` reads, and it fails where that does."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.json_text import JsonCursor


class Repeated(ValueError):
    pass


DECODER = json.JSONDecoder()
values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=10,
)


def walk(cursor: JsonCursor) -> Any:
    """The value at the cursor, its objects and arrays walked by the cursor at every level."""
    kind = cursor.peek()
    if kind == "{":
        return {key: walk(cursor) for key in cursor.members()}
    if kind == "[":
        return list(cursor.items())
    return cursor.value()


def read(text: str) -> Any:
    cursor = JsonCursor(text, DECODER, Repeated)
    value = walk(cursor)
    cursor.end()
    return value


@given(value=values, indent=st.sampled_from([None, 0, 1, "\t"]))
def test_walking_reads_what_json_loads_reads(value: Any, indent: int | str | None) -> None:
    text = json.dumps(value, indent=indent)
    assert read(f" {text}\r\n") == json.loads(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"a":1,}', "property name"),
        ('{"a" 1}', "':'"),
        ('{"a":1 "b":2}', "delimiter"),
        ("[1,]", "Expecting value"),
        ("[1] [2]", "Extra data"),
        ('{"a":"\x01"}', "control character"),
        ("", "Expecting value"),
    ],
)
def test_it_fails_where_json_loads_fails(text: str, message: str) -> None:
    with pytest.raises(json.JSONDecodeError, match=message):
        read(text)
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


def test_a_repeated_key_of_a_walked_object_raises_the_callers_error() -> None:
    with pytest.raises(Repeated):
        read('{"a": 1, "a": 2}')
