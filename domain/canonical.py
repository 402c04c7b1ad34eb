"""The canonical JSON form of bundles and its SHA-256. Pure functions.

The canonical form `incidentflow-canonical-json/1` (`FORM`) of a value is its JSON text with:

- UTF-8 bytes, no byte order mark, no insignificant whitespace (`{"a":[1,2]}`);
- object keys sorted by Unicode code point (the same as sorting their UTF-8 bytes), each once;
- strings escaped only where JSON requires: `"` and `\\` as `\\"` and `\\\\`, the control
  characters U+0008, U+0009, U+000A, U+000C, U+000D as `\\b \\t \\n \\f \\r`, the other ones
  below U+0020 as `\\u00xx` (lower-case hex); everything else, `/`, U+007F, U+2028 and non-ASCII
  included, as its own UTF-8 bytes. Strings are not Unicode-normalised;
- integers in decimal without leading zeros or `+`, within +-(2**53 - 1) so that every JSON reader
  holds them exactly; **no other numbers**: money, confidences and other decimals are strings;
- `true`, `false`, `null`.

Python values map to it as follows: `str` (subclasses such as enum members as their plain
string), `int`, `bool`, `None`, `list` and `tuple` as arrays, `dict` with `str` keys as objects;
`Decimal` (finite) as a string in plain notation (`f"{value:f}"`, scale kept: `"0.42000000"`);
`uuid.UUID` as its lower-case hyphenated string; an aware `datetime` as RFC 3339 in UTC with
exactly six fractional digits and `Z` (`2026-11-22T10:00:00.000000Z`). Anything else (floats,
naive datetimes, non-`str` keys, sets, bytes, strings with lone surrogates, larger integers,
nesting deeper than `MAX_DEPTH`) is refused with `CanonicalFormError`: a value the form cannot
represent exactly is never written.
Free-form JSON read back from the database (event metadata, evidence, timeline data) can hold
floats; `plain_json` makes it representable first.

On the values it admits, the form agrees with the JSON Canonicalization Scheme (RFC 8785), so
that any JCS library can check a bundle, but for one case: JCS orders keys by UTF-16 code units,
which differs from code point order only between characters above U+FFFF and those from U+E000
to U+FFFF. orjson (`OPT_SORT_KEYS`, `OPT_STRICT_INTEGER`) writes the bytes; a check that builds
nothing admits the common types first, and only other values take the converting walk.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

FORM = "incidentflow-canonical-json/1"
MAX_SAFE_INTEGER = 2**53 - 1
"""The largest integer magnitude written: every JSON reader holds up to this exactly."""
MAX_DEPTH = 254
"""The deepest nesting of arrays and objects written (orjson's limit)."""

_DUMP_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER | orjson.OPT_PASSTHROUGH_DATETIME


class CanonicalFormError(ValueError):
    """A value that the canonical form cannot represent exactly; `path` locates it (`$` is the
    value given, `$.a[2]` an item within it)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason

    def within(self, step: str) -> CanonicalFormError:
        """The same error, located one `step` (`.key` or `[index]`) deeper."""
        return CanonicalFormError(f"${step}{self.path[1:]}", self.reason)


def format_time(value: datetime) -> str:
    """An aware datetime as the canonical form writes it: `YYYY-MM-DDTHH:MM:SS.ffffffZ` in UTC.

    Raises `CanonicalFormError` for a naive datetime, or one outside years 1-9999 in UTC.
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise CanonicalFormError("$", "naive datetime (no UTC offset)")
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        raise CanonicalFormError("$", "datetime outside years 1-9999 in UTC") from None
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T"
        f"{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}.{utc.microsecond:06d}Z"
    )


def canonical(value: Any) -> bytes:
    """The canonical bytes of `value` (module docstring); raises `CanonicalFormError`."""
    try:
        if not _dumpable(value):
            value = _plain(value)
        try:
            return orjson.dumps(value, default=_default, option=_DUMP_OPTIONS)
        except orjson.JSONEncodeError as error:
            if str(error) == "Recursion limit reached":
                raise RecursionError from None
            _plain(value)  # raises the error, located, unless only a string is wrong
            raise CanonicalFormError("$", str(error)) from None  # a lone surrogate: not UTF-8
    except RecursionError:
        raise CanonicalFormError("$", f"nested deeper than {MAX_DEPTH} levels") from None


def _dumpable(value: Any) -> bool:
    """Whether orjson can write `value` as it is: only exact dicts with `str` keys, lists,
    tuples, `str`, `bool`, `None`, exact `int` in range, aware `datetime`, finite `Decimal` and
    `UUID`. Anything else (subclasses included) goes the slow way, `_plain`, which converts what
    it can and locates what it refuses. This check builds nothing: it is the hot path of an
    export (a fifth of the CPU time of converting, measured on event rows)."""
    kind = type(value)
    if kind is dict:
        for key in value:
            if type(key) is not str:
                return False
        items: Any = value.values()
    elif kind is list or kind is tuple:
        items = value
    else:
        items = None
    if items is not None:
        for item in items:
            kind = type(item)
            if kind is str or item is None or kind is bool:
                continue
            if kind is int:
                if -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER:
                    continue
                return False
            if not _dumpable(item):
                return False
        return True
    if kind is str or value is None or kind is bool or kind is uuid.UUID:
        return True
    if kind is int:
        return bool(-MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER)
    if kind is datetime:
        return value.utcoffset() is not None and _in_utc_range(value)
    if kind is Decimal:
        return bool(value.is_finite())
    return False


def _in_utc_range(value: datetime) -> bool:
    try:
        value.astimezone(UTC)
    except OverflowError:
        return False
    return True


def _default(value: Any) -> Any:
    """How orjson writes what `_dumpable` admitted beyond JSON (datetimes reach it through
    `OPT_PASSTHROUGH_DATETIME`)."""
    if type(value) is Decimal:
        return f"{value:f}"
    if type(value) is datetime:
        return format_time(value)
    raise TypeError(f"{type(value).__name__} has no canonical form")


def canonical_hash(value: Any) -> str:
    """The SHA-256 (lower-case hex) of the canonical bytes of `value`."""
    return hashlib.sha256(canonical(value)).hexdigest()


def plain_json(value: Any) -> Any:
    """Free-form JSON made representable: every non-integer number, and every integer beyond
    +-(2**53 - 1), becomes a decimal string in plain notation (`1.5` -> `"1.5"`, `1e-07` ->
    `"0.0000001"`: the shortest digits that read back as the same float). The rest is unchanged;
    a value with nothing to change is returned as it is (not copied)."""
    if isinstance(value, dict):
        changed = {key: plain_json(item) for key, item in value.items()}
        return value if all(changed[key] is item for key, item in value.items()) else changed
    if isinstance(value, list | tuple):
        items = [plain_json(item) for item in value]
        return value if all(new is old for new, old in zip(items, value, strict=True)) else items
    if isinstance(value, float):
        return f"{Decimal(repr(value)):f}"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_SAFE_INTEGER:
        return str(value)
    return value


def _plain(value: Any) -> Any:
    """`value` as only dict / list / str / int / bool / None, checked for the canonical form.

    It builds no location on the way down: an error is located on its way out.
    """
    kind = type(value)
    if kind is str or value is None or kind is bool:
        return value
    if kind is int:
        if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            return value
        raise CanonicalFormError("$", f"integer beyond +-(2**53 - 1): {value}")
    if kind is dict or isinstance(value, Mapping):
        try:
            return {object_key(key): _plain(item) for key, item in value.items()}
        except CanonicalFormError:
            raise _member_error(value) from None
    if kind is list or kind is tuple or isinstance(value, list | tuple):
        try:
            return [_plain(item) for item in value]
        except CanonicalFormError:
            raise _item_error(value) from None
    for base, convert in _CONVERSIONS:
        if isinstance(value, base):
            return convert(value)
    raise CanonicalFormError("$", f"{kind.__name__} has no canonical form")


def _member_error(mapping: Mapping[Any, Any]) -> CanonicalFormError:
    """The error of the first member of `mapping` that fails, located at it."""
    for key, item in mapping.items():
        name = object_key(key)  # raises, located at the object, for a key that is not a string
        try:
            _plain(item)
        except CanonicalFormError as error:
            return error.within(f".{name}")
    raise AssertionError("no member fails")


def _item_error(items: Iterable[Any]) -> CanonicalFormError:
    """The error of the first item that fails, located at it."""
    for index, item in enumerate(items):
        try:
            _plain(item)
        except CanonicalFormError as error:
            return error.within(f"[{index}]")
    raise AssertionError("no item fails")


def object_key(key: Any) -> str:
    """An object key as written: a `str` (a subclass as its plain value), or refused."""
    if type(key) is str:
        return key
    if isinstance(key, str):
        return str.__str__(key)
    raise CanonicalFormError("$", f"object key {key!r} is not a string")


def _decimal(value: Decimal) -> str:
    if not value.is_finite():
        raise CanonicalFormError("$", f"non-finite decimal {value}")
    return f"{value:f}"


def _refuse_float(value: float) -> Any:
    raise CanonicalFormError("$", f"float {value!r} (write decimals as strings)")


def _integer(value: int) -> int:
    return int(_plain(int(value)))


_CONVERSIONS: tuple[tuple[type, Callable[[Any], Any]], ...] = (
    (str, str.__str__),
    (datetime, format_time),
    (Decimal, _decimal),
    (uuid.UUID, str),
    (float, _refuse_float),
    (int, _integer),
)
"""Types beyond plain JSON, and subclasses of the JSON types (enum members, say), in the order
they are tried: a `str` or `int` subclass is written as its plain value."""
