"""Bundle files: the streaming writer against the whole file, and verification."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.bundles import (
    CHUNK_BYTES,
    BundleEncoder,
    adigest_bundle,
    astream_bundle,
    bundle_file,
    digest_bundle,
    stream_bundle,
)
from domain.canonical import FORM, MAX_SAFE_INTEGER, CanonicalFormError, canonical, canonical_hash
from domain.verification import verify

T = datetime(2026, 11, 22, 10, 0, 0, 37000, tzinfo=UTC)


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
    | st.text(max_size=12)
    | st.decimals(allow_nan=False, allow_infinity=False, places=4)
    | st.datetimes(timezones=st.just(UTC))
    | st.uuids()
)
keys = st.sampled_from(["event", "events_", "eventt", "Events", "a", "é", "zz"]) | st.text(
    max_size=6
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=12,
)
parts_strategy = st.dictionaries(keys.filter(lambda key: key != "events"), json_values, max_size=6)
events_strategy = st.lists(st.dictionaries(keys, json_values, max_size=5), max_size=6)


@settings(max_examples=150, deadline=None)
@given(parts=parts_strategy, events=events_strategy)
def test_the_streamed_file_equals_the_whole_canonical_file(
    parts: dict[str, Any], events: list[dict[str, Any]]
) -> None:
    whole = bundle_file({**parts, "events": events})
    assert b"".join(stream_bundle(parts, iter(events))) == whole
    assert b"".join(asyncio.run(_collect(astream_bundle(parts, _async(events))))) == whole
    digest = digest_bundle(parts, iter(events), sample=2)
    assert digest.event_count == len(events)
    assert digest.sample == tuple(events[:2])
    assert digest.hexdigest == json.loads(whole)["integrity"]["hash"]
    assert digest.hexdigest == canonical_hash({**parts, "events": events})
    assert verify(whole).intact


async def _async(events: Iterable[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    for event in events:
        yield event


async def _collect(chunks: AsyncIterator[bytes]) -> list[bytes]:
    return [chunk async for chunk in chunks]


async def test_the_async_digest_matches_the_sync_one() -> None:
    events = [{"n": index} for index in range(5)]
    digest = await adigest_bundle({"kind": "evidence"}, _async(events), sample=3)
    assert digest == digest_bundle({"kind": "evidence"}, iter(events), sample=3)


def test_the_file_is_the_bundle_and_its_integrity_and_the_hash_covers_the_bundle_alone() -> None:
    bundle = {"kind": "evidence", "events": [{"a": 1}], "as_of": T}
    data = bundle_file(bundle)
    body = canonical(bundle)
    assert data == (
        b'{"bundle":'
        + body
        + b',"integrity":{"algorithm":"sha256","form":"'
        + FORM.encode()
        + b'","hash":"'
        + hashlib.sha256(body).hexdigest().encode()
        + b'"}}'
    )


def test_chunks_are_large_and_hold_one_event_at_a_time() -> None:
    events = ({"index": index, "text": "x" * 1000} for index in range(500))
    chunks = list(stream_bundle({"kind": "evidence"}, events))
    assert len(chunks) > 5
    assert all(CHUNK_BYTES <= len(chunk) < CHUNK_BYTES + 1100 for chunk in chunks[:-1])


def test_an_unrepresentable_event_is_refused_with_its_index() -> None:
    with pytest.raises(CanonicalFormError) as raised:
        list(stream_bundle({}, iter([{"a": 1}, {"b": [0.5]}])))
    assert raised.value.path == "$.events[1].b[0]"
    encoder = BundleEncoder({"a": {"y": 0.5}})
    with pytest.raises(CanonicalFormError) as part_error:
        encoder.head()
    assert part_error.value.path == "$.a.y"
    with pytest.raises(ValueError, match="events"):
        BundleEncoder({"events": []})
