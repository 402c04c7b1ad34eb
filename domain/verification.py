"""Verification of bundle files (`domain.bundles`): is the bundle still the one exported? Pure.

`verify` parses a file, recomputes the SHA-256 of the canonical form of its `bundle` and compares
it with the stated `integrity.hash`. It reads the `events` array one event at a time.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from domain.bundles import ALGORITHM, EVENTS, BundleEncoder, bundle_file
from domain.canonical import FORM, CanonicalFormError, canonical_hash
from domain.json_text import JsonCursor


class Outcome(StrEnum):
    INTACT = "intact"
    """The hash over the canonical form of the bundle equals the stated one."""
    ALTERED = "altered"
    """The hash differs, or the bundle holds what no export writes (a float, a repeated key,
    an integer beyond the exact range)."""
    UNREADABLE = "unreadable"
    """Not JSON in UTF-8."""
    NOT_A_BUNDLE = "not_a_bundle"
    """JSON, but not `{"bundle": ..., "integrity": {...}}` with a known algorithm and form."""


@dataclass(frozen=True, slots=True)
class Verification:
    """The result of `verify`. `canonical_bytes` says whether the file is byte for byte as an
    export writes it (False for a re-indented but unaltered file)."""

    outcome: Outcome
    detail: str
    stated_hash: str | None = None
    computed_hash: str | None = None
    canonical_bytes: bool = False
    bundle_id: str | None = None
    kind: str | None = None

    @property
    def intact(self) -> bool:
        return self.outcome is Outcome.INTACT


class _Unwritten(ValueError):
    """JSON that no export writes: a repeated key, a number that is not an integer."""


def _repeated(key: str) -> _Unwritten:
    return _Unwritten(f"key {key!r} appears twice in one object")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) < len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _repeated(key)
            seen.add(key)
    return result


def _no_fraction(text: str) -> Any:
    raise _Unwritten(f"number {text} is not an integer")


_DECODER = json.JSONDecoder(
    object_pairs_hook=_unique_keys, parse_float=_no_fraction, parse_constant=_no_fraction
)


def verify(data: bytes) -> Verification:
    """Whether a bundle file's bundle still hashes to its stated integrity hash.

    Parses `data` (any JSON text: whitespace and key order are free), recomputes the canonical
    bytes of the `bundle` value and compares their SHA-256 with `integrity.hash`. The `events`
    array is read and hashed one event at a time: beside `data` and its text, memory holds one
    event and the rest of the bundle. Never raises.
    """
    try:
        cursor = JsonCursor(data.decode("utf-8"), _DECODER, _repeated)
        document = _read_file(cursor, data)
    except _Unwritten as error:
        return Verification(Outcome.ALTERED, f"{error}; no export writes this")
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        return Verification(Outcome.UNREADABLE, f"not JSON in UTF-8: {error}")
    shape = _shape_problem(document)
    if shape is not None:
        return Verification(Outcome.NOT_A_BUNDLE, shape)
    bundle: _BundleHash = document["bundle"]
    found = {
        "stated_hash": document["integrity"]["hash"],
        "bundle_id": _text(bundle.parts.get("bundle_id")),
        "kind": _text(bundle.parts.get("kind")),
    }
    try:
        computed, same_bytes = bundle.result(cursor)
    except CanonicalFormError as error:
        detail = f"bundle{error.path[1:]}: {error.reason}; no export writes this"
        return Verification(Outcome.ALTERED, detail, **found)
    if computed != found["stated_hash"]:
        detail = "the bundle's SHA-256 differs from the stated hash: the bundle was altered"
        return Verification(Outcome.ALTERED, detail, computed_hash=computed, **found)
    detail = "the bundle's SHA-256 equals the stated hash"
    if not same_bytes:
        detail += " (not byte for byte as exported, e.g. re-indented, but the same bundle)"
    return Verification(
        Outcome.INTACT, detail, computed_hash=computed, canonical_bytes=same_bytes, **found
    )


def _read_file(cursor: JsonCursor, data: bytes) -> Any:
    """The file's top-level value; the `bundle` object, if there is one, as a `_BundleHash`."""
    if cursor.peek() != "{":
        document = cursor.value()
    else:
        document = {}
        for key in cursor.members():
            if key == "bundle" and cursor.peek() == "{":
                document[key] = _BundleHash.read(cursor, data)
            else:
                document[key] = cursor.value()
    cursor.end()
    return document


class _BundleHash:
    """A bundle read from a file, its `events` array hashed as it goes by and never kept.

    The hash is computed in one pass when every member that sorts before `events` precedes it
    in the file (always so in an exported file); otherwise the array is read again once the
    whole bundle is known. A part the canonical form refuses is kept and raised by `result`,
    after the whole file has been read (a syntax error further on makes the file unreadable).
    """

    def __init__(self, data: bytes) -> None:
        self.parts: dict[str, Any] = {}
        self._data = memoryview(data)
        self._events_at: int | None = None
        self._encoder: BundleEncoder | None = None
        self._late = False
        self._written = 0
        self._same = True
        self._error: CanonicalFormError | None = None

    @classmethod
    def read(cls, cursor: JsonCursor, data: bytes) -> _BundleHash:
        bundle = cls(data)
        for key in cursor.members():
            if key == EVENTS and cursor.peek() == "[":
                bundle._events_at = cursor.position
                bundle._encoder = BundleEncoder(bundle.parts)
                bundle._hash(bundle._encoder.head)
                for event in cursor.items():
                    bundle._hash(bundle._encoder.event, event)
            else:
                bundle._late = bundle._late or (bundle._encoder is not None and key < EVENTS)
                bundle.parts[key] = cursor.value()
        return bundle

    def _hash(self, write: Callable[..., bytes], *event: Any) -> None:
        if self._error is not None or self._late:
            return
        try:
            piece = write(*event)
        except CanonicalFormError as error:
            self._error = error
            return
        end = self._written + len(piece)
        self._same = self._same and self._data[self._written : end] == piece
        self._written = end

    def result(self, cursor: JsonCursor) -> tuple[str, bool]:
        """The bundle's hash and whether the file is byte for byte the exported one; raises
        `CanonicalFormError`."""
        if self._encoder is None:
            return canonical_hash(self.parts), self._data == bundle_file(self.parts)
        if self._late:
            assert self._events_at is not None
            cursor.position = self._events_at
            encoder = BundleEncoder(self.parts)
            encoder.head()
            for event in cursor.items():
                encoder.event(event)
            encoder.tail()
            assert encoder.hexdigest is not None
            return encoder.hexdigest, False
        if self._error is not None:
            raise self._error
        self._hash(self._encoder.tail)
        if self._error is not None:
            raise self._error
        assert self._encoder.hexdigest is not None
        return self._encoder.hexdigest, self._same and self._written == len(self._data)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _shape_problem(document: Any) -> str | None:
    if not isinstance(document, dict) or set(document) != {"bundle", "integrity"}:
        return 'the file is not an object of exactly "bundle" and "integrity"'
    integrity = document["integrity"]
    if not isinstance(document["bundle"], _BundleHash):
        return "bundle is not an object"
    if not isinstance(integrity, dict) or set(integrity) != {"algorithm", "form", "hash"}:
        return 'integrity is not an object of exactly "algorithm", "form" and "hash"'
    if integrity["algorithm"] != ALGORITHM or integrity["form"] != FORM:
        return f"integrity: unsupported algorithm or form (expected {ALGORITHM}, {FORM})"
    digest = integrity["hash"]
    if not isinstance(digest, str) or len(digest) != 64 or digest.strip("0123456789abcdef"):
        return "integrity.hash is not 64 lower-case hex digits"
    return None
