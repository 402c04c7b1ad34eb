"""Bundle files: the integrity block and a streaming writer. Pure functions.

A bundle file is the canonical form of `{"bundle": <bundle>, "integrity": {"algorithm":
"sha256", "form": "incidentflow-canonical-json/1", "hash": "<64 lower-case hex>"}}`, where the hash
is the SHA-256 of the canonical bytes of the `bundle` value alone. The file as written is thus
canonical itself; `domain.verification.verify` accepts any JSON text of the same value
(re-indented, say), because it recomputes the canonical bytes from the parsed bundle.

Large bundles never need to be held in memory: `BundleEncoder` (and `stream_bundle`,
`astream_bundle`, `digest_bundle`, `adigest_bundle` over it) takes the small parts of a bundle
and its events one at a time, writes the `events` array where its key sorts among the others, and
hashes as it goes. Its output equals `bundle_file` of the same bundle byte for byte.

Values are written in the canonical form of `domain.canonical`.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from domain.canonical import FORM, CanonicalFormError, canonical, object_key

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
    then `tail()` give the file's bytes. `head()` writes the parts whose keys sort before
    `events`, `tail()` those after, each read from `parts` then (so a reader may add the latter
    while the events go by). After `tail()`, `hexdigest` is the integrity hash and `count` the
    number of events. Raises `CanonicalFormError` (from the call that met it) for a part or an
    event the canonical form cannot represent, and `ValueError` if `parts` has an `events` key.
    """

    def __init__(self, parts: Mapping[str, Any]) -> None:
        if EVENTS in parts:
            raise ValueError(f"parts must not hold {EVENTS!r}: the encoder writes them")
        self._parts = parts
        self._hash = hashlib.sha256()
        self.count = 0
        self.hexdigest: str | None = None

    def head(self) -> bytes:
        members = [self._member(key) for key in self._keys() if key < EVENTS]
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
        members = b"".join(b"," + self._member(key) for key in self._keys() if key > EVENTS)
        self._hashed(b"]" + members + b"}")
        self.hexdigest = self._hash.hexdigest()
        integrity = canonical(integrity_block(self.hexdigest))
        return b"]" + members + b'},"integrity":' + integrity + b"}"

    def _keys(self) -> list[str]:
        return sorted(object_key(key) for key in self._parts)

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
