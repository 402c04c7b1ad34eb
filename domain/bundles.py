"""Bundle files: the integrity block, a streaming writer and verification. Pure functions.

A bundle file is the canonical form of `{"bundle": <bundle>, "integrity": {"algorithm":
"sha256", "form": "incidentflow-canonical-json/1", "hash": "<64 lower-case hex>"}}`, where the hash
is the SHA-256 of the canonical bytes of the `bundle` value alone. The file as written is thus
canonical itself; `verify` accepts any JSON text of the same value (re-indented, say), because it
recomputes the canonical bytes from the parsed bundle.

Large bundles never need to be held in memory: `BundleEncoder` (and `stream_bundle`,
`astream_bundle`, `digest_bundle`, `adigest_bundle` over it) takes the small parts of a bundle
and its events one at a time, writes the `events` array where its key sorts among the others, and
hashes as it goes. Its output equals `bundle_file` of the same bundle byte for byte.

Values are written in the canonical form of `domain.canonical`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from domain.canonical import FORM, CanonicalFormError, canonical, canonical_hash, object_key

ALGORITHM = "sha256"
EVENTS = "events"
"""The key of a bundle's events array: the one part that is streamed."""
CHUNK_BYTES = 64 * 1024
"""`stream_bundle` yields chunks of at least this size (but the last)."""

_FILE_PREFIX = b'{"bundle":'


def integrity_block(digest: str) -> dict[str, str]:
    """The `integrity` value of a bundle file whose bundle hashes to `digest`."""
    return {"algorithm": ALGORITHM, "form": FORM, "hash": digest}


def bundle_file(bundle: Mapping[str, Any]) -> bytes:
    """The bundle file of a whole bundle held in memory (module docstring)."""
    body = canonical(bundle)
    digest = hashlib.sha256(body).hexdigest()
    return b"".join(
        (_FILE_PREFIX, body, b',"integrity":', canonical(integrity_block(digest)), b"}")
    )


class BundleEncoder:
    """Writes one bundle file piece by piece, hashing the bundle's bytes as they are written.

    `parts` is the bundle without its `events`; `head()`, then `event(e)` per event in order,
    then `tail()` give the file's bytes. After `tail()`, `hexdigest` is the integrity hash and
    `count` the number of events. Raises `CanonicalFormError` (from the call that met it) for a
    part or an event the canonical form cannot represent, and `ValueError` if `parts` has an
    `events` key.
    """

    def __init__(self, parts: Mapping[str, Any]) -> None:
        if EVENTS in parts:
            raise ValueError(f"parts must not hold {EVENTS!r}: the encoder writes them")
        keys = sorted(object_key(key) for key in parts)
        self._before = [key for key in keys if key < EVENTS]
        self._after = [key for key in keys if key > EVENTS]
        self._parts = parts
        self._hash = hashlib.sha256()
        self.count = 0
        self.hexdigest: str | None = None

    def head(self) -> bytes:
        members = [self._member(key) for key in self._before]
        members.append(b'"events":[')
        return _FILE_PREFIX + self._hashed(b"{" + b",".join(members))

    def event(self, event: Mapping[str, Any]) -> bytes:
        try:
            body = canonical(event)
        except CanonicalFormError as error:
            raise error.within(f".{EVENTS}[{self.count}]") from None
        self.count += 1
        return self._hashed(body if self.count == 1 else b"," + body)

    def tail(self) -> bytes:
        members = b"".join(b"," + self._member(key) for key in self._after)
        self._hashed(b"]" + members + b"}")
        self.hexdigest = self._hash.hexdigest()
        integrity = canonical(integrity_block(self.hexdigest))
        return b"]" + members + b'},"integrity":' + integrity + b"}"

    def _member(self, key: str) -> bytes:
        try:
            value = canonical(self._parts[key])
        except CanonicalFormError as error:
            raise error.within(f".{key}") from None
        return canonical(key) + b":" + value

    def _hashed(self, data: bytes) -> bytes:
        self._hash.update(data)
        return data


class _Chunks:
    """Gathers small pieces into chunks of at least `CHUNK_BYTES`."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def add(self, data: bytes) -> bytes | None:
        """A full chunk, or None while fewer than `CHUNK_BYTES` are gathered."""
        self._buffer += data
        if len(self._buffer) < CHUNK_BYTES:
            return None
        return self.close(b"")

    def close(self, data: bytes) -> bytes:
        """Everything gathered, with `data` last."""
        self._buffer += data
        chunk, self._buffer = bytes(self._buffer), bytearray()
        return chunk


def stream_bundle(parts: Mapping[str, Any], events: Iterable[Mapping[str, Any]]) -> Iterator[bytes]:
    """The bundle file of `parts` plus `events` (the `events` array), in chunks; see
    `BundleEncoder` for what it raises. Holds one chunk and one event at a time."""
    encoder, chunks = BundleEncoder(parts), _Chunks()
    chunk = chunks.add(encoder.head())
    if chunk is not None:
        yield chunk
    for event in events:
        chunk = chunks.add(encoder.event(event))
        if chunk is not None:
            yield chunk
    yield chunks.close(encoder.tail())


async def astream_bundle(
    parts: Mapping[str, Any], events: AsyncIterable[Mapping[str, Any]]
) -> AsyncIterator[bytes]:
    """`stream_bundle` over an async iterator of events (a server-side database cursor)."""
    encoder, chunks = BundleEncoder(parts), _Chunks()
    chunk = chunks.add(encoder.head())
    if chunk is not None:
        yield chunk
    async for event in events:
        chunk = chunks.add(encoder.event(event))
        if chunk is not None:
            yield chunk
    yield chunks.close(encoder.tail())


@dataclass(frozen=True, slots=True)
class BundleDigest:
    """What a renderer needs of a streamed bundle without its bytes: the integrity hash, the
    number of events and the first `sample` of them (as given)."""

    hexdigest: str
    event_count: int
    sample: tuple[Mapping[str, Any], ...] = ()


def digest_bundle(
    parts: Mapping[str, Any], events: Iterable[Mapping[str, Any]], sample: int = 0
) -> BundleDigest:
    """The integrity hash of `parts` plus `events`, keeping the first `sample` events."""
    encoder, kept = BundleEncoder(parts), _Sample(sample)
    encoder.head()
    for event in events:
        encoder.event(event)
        kept.add(event)
    return kept.digest(encoder)


async def adigest_bundle(
    parts: Mapping[str, Any], events: AsyncIterable[Mapping[str, Any]], sample: int = 0
) -> BundleDigest:
    """`digest_bundle` over an async iterator of events."""
    encoder, kept = BundleEncoder(parts), _Sample(sample)
    encoder.head()
    async for event in events:
        encoder.event(event)
        kept.add(event)
    return kept.digest(encoder)


@dataclass(slots=True)
class _Sample:
    size: int
    events: list[Mapping[str, Any]] = field(default_factory=list)

    def add(self, event: Mapping[str, Any]) -> None:
        if len(self.events) < self.size:
            self.events.append(event)

    def digest(self, encoder: BundleEncoder) -> BundleDigest:
        encoder.tail()
        assert encoder.hexdigest is not None
        return BundleDigest(encoder.hexdigest, encoder.count, tuple(self.events))


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


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) < len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Unwritten(f"key {key!r} appears twice in one object")
            seen.add(key)
    return result


def _no_fraction(text: str) -> Any:
    raise _Unwritten(f"number {text} is not an integer")


def verify(data: bytes) -> Verification:
    """Whether a bundle file's bundle still hashes to its stated integrity hash.

    Parses `data` (any JSON text: whitespace is free), recomputes the canonical bytes of the
    `bundle` value and compares their SHA-256 with `integrity.hash`. Never raises.
    """
    try:
        document = json.loads(
            data.decode("utf-8"),
            object_pairs_hook=_unique_keys,
            parse_float=_no_fraction,
            parse_constant=_no_fraction,
        )
    except _Unwritten as error:
        return Verification(Outcome.ALTERED, f"{error}; no export writes this")
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        return Verification(Outcome.UNREADABLE, f"not JSON in UTF-8: {error}")
    shape = _shape_problem(document)
    if shape is not None:
        return Verification(Outcome.NOT_A_BUNDLE, shape)
    bundle = document["bundle"]
    found = {
        "stated_hash": document["integrity"]["hash"],
        "bundle_id": _text(bundle.get("bundle_id")),
        "kind": _text(bundle.get("kind")),
    }
    try:
        computed, same_bytes = _rehash(bundle, data)
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


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _shape_problem(document: Any) -> str | None:
    if not isinstance(document, dict) or set(document) != {"bundle", "integrity"}:
        return 'the file is not an object of exactly "bundle" and "integrity"'
    integrity = document["integrity"]
    if not isinstance(document["bundle"], dict):
        return "bundle is not an object"
    if not isinstance(integrity, dict) or set(integrity) != {"algorithm", "form", "hash"}:
        return 'integrity is not an object of exactly "algorithm", "form" and "hash"'
    if integrity["algorithm"] != ALGORITHM or integrity["form"] != FORM:
        return f"integrity: unsupported algorithm or form (expected {ALGORITHM}, {FORM})"
    digest = integrity["hash"]
    if not isinstance(digest, str) or len(digest) != 64 or digest.strip("0123456789abcdef"):
        return "integrity.hash is not 64 lower-case hex digits"
    return None


def _rehash(bundle: dict[str, Any], data: bytes) -> tuple[str, bool]:
    """The bundle's hash, computed event by event, and whether `data` is exactly the file."""
    events = bundle.get(EVENTS)
    if not isinstance(events, list):
        return canonical_hash(bundle), data == bundle_file(bundle)
    encoder = BundleEncoder({key: value for key, value in bundle.items() if key != EVENTS})
    view, position, same = memoryview(data), 0, True
    for piece in _pieces(encoder, events):
        same = same and view[position : position + len(piece)] == piece
        position += len(piece)
    assert encoder.hexdigest is not None
    return encoder.hexdigest, same and position == len(data)


def _pieces(encoder: BundleEncoder, events: list[Any]) -> Iterator[bytes]:
    yield encoder.head()
    for event in events:
        yield encoder.event(event)
    yield encoder.tail()
