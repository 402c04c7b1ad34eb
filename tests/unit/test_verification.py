"""Verification of bundle files: what it accepts, what it detects, and how it reads."""

from __future__ import annotations

import hashlib
import json
import random
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.bundles import bundle_file
from domain.canonical import FORM, canonical_hash
from domain.verification import Outcome, verify
from tests.unit.test_bundles import events_strategy, parts_strategy

T = datetime(2026, 11, 22, 10, 0, 0, 37000, tzinfo=UTC)


def _small_file() -> bytes:
    bundle = {
        "kind": "evidence",
        "bundle_id": "EVD-0123456789ab",
        "as_of": T,
        "incident": {"title": "Tab\there, é, \x01", "calls": 12, "cost_usd": Decimal("0.42")},
        "events": [{"event_id": f"e{index}", "n": index} for index in range(3)],
    }
    return bundle_file(bundle)


def test_verify_accepts_the_untouched_file_and_a_reindented_copy() -> None:
    data = _small_file()
    result = verify(data)
    assert result.outcome is Outcome.INTACT
    assert result.canonical_bytes
    assert result.bundle_id == "EVD-0123456789ab"
    assert result.kind == "evidence"
    assert result.stated_hash == result.computed_hash
    reindented = json.dumps(json.loads(data), indent=2, ensure_ascii=True).encode()
    again = verify(reindented + b"\n")
    assert again.intact
    assert not again.canonical_bytes


def test_verify_detects_every_single_changed_byte_inside_the_bundle() -> None:
    """Every byte of the bundle, changed to each of a few other bytes, is detected, except a
    change of letter case in the hex digits of a \\u escape, which spells the same text (the
    file then verifies, but is no longer byte for byte as exported)."""
    data = _small_file()
    end = data.index(b',"integrity":')
    escape_hex = {data.index(b"\\u0001") + offset for offset in range(2, 6)}
    for position in range(len(b'{"bundle":'), end):
        for replacement in {data[position] ^ 0x01, data[position] ^ 0x20, ord("0"), ord(" ")}:
            if replacement == data[position]:
                continue
            changed = data[:position] + bytes([replacement]) + data[position + 1 :]
            result = verify(changed)
            if position in escape_hex and chr(replacement).lower() == chr(data[position]).lower():
                assert result.intact and not result.canonical_bytes
            else:
                assert not result.intact, (position, chr(replacement))


@pytest.mark.parametrize(
    ("data", "outcome", "detail"),
    [
        (b"\xff\xfe", Outcome.UNREADABLE, "UTF-8"),
        (b'{"bundle": {', Outcome.UNREADABLE, "JSON"),
        (b"[]", Outcome.NOT_A_BUNDLE, "exactly"),
        (
            b'{"bundle":{},"integrity":{"algorithm":"md5","form":"x","hash":"0"}}',
            Outcome.NOT_A_BUNDLE,
            "unsupported",
        ),
        (
            b'{"bundle":{},"integrity":{"algorithm":"sha256","form":"'
            + FORM.encode()
            + b'","hash":"ABC"}}',
            Outcome.NOT_A_BUNDLE,
            "hex",
        ),
        (b'{"bundle":{"a":1.0},"integrity":{}}', Outcome.ALTERED, "not an integer"),
        (b'{"bundle":{"a":NaN},"integrity":{}}', Outcome.ALTERED, "not an integer"),
        (b'{"bundle":{"a":1,"a":2},"integrity":{}}', Outcome.ALTERED, "twice"),
        (
            b'{"bundle":{"a":' + b"[" * 900 + b"]" * 900 + b'},"integrity":{"algorithm":"sha256",'
            b'"form":"' + FORM.encode() + b'","hash":"' + b"0" * 64 + b'"}}',
            Outcome.ALTERED,
            "nested deeper",
        ),
        (b"[" * 100_000 + b"]" * 100_000, Outcome.UNREADABLE, "recursion"),
        (b'{"bundle":{"a":' + b"1" * 5000 + b'},"integrity":{}}', Outcome.UNREADABLE, "digits"),
    ],
)
def test_verify_names_what_is_wrong_with_a_file(data: bytes, outcome: Outcome, detail: str) -> None:
    result = verify(data)
    assert result.outcome is outcome
    assert detail in result.detail


def test_verify_refuses_a_bundle_holding_what_no_export_writes() -> None:
    data = _small_file()
    bundle = json.loads(data)
    bundle["bundle"]["events"][1]["n"] = 2**60
    result = verify(json.dumps(bundle).encode())
    assert result.outcome is Outcome.ALTERED
    assert "events[1].n" in result.detail
    forged = json.loads(data)
    forged["bundle"]["incident"]["calls"] = 13
    forged_result = verify(json.dumps(forged).encode())
    assert forged_result.outcome is Outcome.ALTERED
    assert forged_result.computed_hash != forged_result.stated_hash


def _shuffled(value: Any, rng: random.Random) -> Any:
    """`value` with the members of every object in a random order."""
    if isinstance(value, dict):
        keys = list(value)
        rng.shuffle(keys)
        return {key: _shuffled(value[key], rng) for key in keys}
    if isinstance(value, list):
        return [_shuffled(item, rng) for item in value]
    return value


@settings(max_examples=150, deadline=None)
@given(
    parts=parts_strategy,
    events=events_strategy,
    seed=st.integers(0, 2**32),
    indent=st.sampled_from([None, 0, 2]),
)
def test_any_key_order_and_whitespace_of_the_same_bundle_verify_as_the_export(
    parts: dict[str, Any], events: list[dict[str, Any]], seed: int, indent: int | None
) -> None:
    exported = bundle_file({**parts, "events": events})
    document = _shuffled(json.loads(exported), random.Random(seed))
    text = json.dumps(document, indent=indent, ensure_ascii=seed % 2 == 0).encode()
    result = verify(b" \n" + text + b"\n")
    assert result.intact, result.detail
    assert result.computed_hash == canonical_hash(json.loads(exported)["bundle"])
    assert result.canonical_bytes is False
    if events:
        document["bundle"]["events"][-1]["added"] = 1
        assert verify(json.dumps(document).encode()).outcome is Outcome.ALTERED


def test_events_before_the_members_that_sort_before_them_are_hashed_in_canonical_order() -> None:
    data = _small_file()
    document = json.loads(data)
    bundle = document["bundle"]
    reordered = {"events": bundle["events"]} | {k: v for k, v in bundle.items() if k != "events"}
    result = verify(json.dumps({"integrity": document["integrity"], "bundle": reordered}).encode())
    assert result.intact and not result.canonical_bytes
    reordered["events"][0]["n"] = 7
    assert verify(json.dumps({"bundle": reordered, **document}).encode()).outcome is Outcome.ALTERED


@pytest.mark.parametrize(
    ("data", "outcome", "detail"),
    [
        (b'{"bundle":{"events":[1,]},"integrity":{}}', Outcome.UNREADABLE, "Expecting value"),
        (b'{"bundle":{"events":[1 2]},"integrity":{}}', Outcome.UNREADABLE, "delimiter"),
        (b'{"bundle":{"events" []},"integrity":{}}', Outcome.UNREADABLE, "':'"),
        (b'{"bundle":{"events":[]},"integrity":{}} x', Outcome.UNREADABLE, "Extra data"),
        (b'{"bundle":{"events":[{"a":1.5}]},"integrity":{}}', Outcome.ALTERED, "not an integer"),
        (b'{"bundle":{"events":[],"events":[]},"integrity":{}}', Outcome.ALTERED, "twice"),
        (b'{"bundle":{},"bundle":{},"integrity":{}}', Outcome.ALTERED, "twice"),
        (b'{"bundle":{"events":[' + str(2**60).encode() + b"]}} x", Outcome.UNREADABLE, "Extra"),
        (b'{"bundle":[],"integrity":{}}', Outcome.NOT_A_BUNDLE, "bundle is not an object"),
    ],
)
def test_errors_are_found_in_the_files_order_whatever_the_hashing_met_first(
    data: bytes, outcome: Outcome, detail: str
) -> None:
    result = verify(data)
    assert result.outcome is outcome
    assert detail in result.detail


@settings(max_examples=150, deadline=None)
@given(parts=parts_strategy, events=events_strategy)
def test_the_hash_is_recomputed_by_hand_as_the_documentation_says(
    parts: dict[str, Any], events: list[dict[str, Any]]
) -> None:
    """docs/exports.md: the standard library's JSON with sorted keys, no whitespace and UTF-8
    writes the canonical bytes of a bundle; an exported file's bundle is its bytes from the 11th
    to the 150th from the end (`tail -c +11 | head -c -149`)."""
    exported = bundle_file({**parts, "events": events})
    document = json.loads(exported)
    text = json.dumps(document["bundle"], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    stated = document["integrity"]["hash"]
    assert hashlib.sha256(text.encode()).hexdigest() == stated
    assert hashlib.sha256(exported[10:-149]).hexdigest() == stated
