"""domain.contracts: the input contracts accept only what storage holds and the rules compute with.

One test per decided case; the wire cases go through `parse_message` as the worker does. The
storage side (PostgreSQL refusing nothing the contracts accept) is tests/integration/
test_contract_storage.py.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from domain.aggregation import PartitionAggregator
from domain.config import AggregationConfig
from domain.contracts import (
    EARLIEST_TIME,
    INT4_MAX,
    LATEST_TIME,
    LONGEST_DURATION_SECONDS,
    MAX_DETAIL_BYTES,
    MAX_MESSAGE_BYTES,
    DeadLetterReason,
    LifecycleCommand,
    LlmCallFailure,
    Message,
    PolicyViolation,
    Rejection,
    parse_message,
    printable,
)
from domain.settings import Settings
from tests.builders import command, failure, violation

FAILURE: dict[str, Any] = {
    "event_id": "evt-1",
    "tenant_id": "acme",
    "occurred_at": "2026-11-22T10:00:00Z",
    "run_id": "run-9",
    "provider": "openai",
    "model": "gpt-4o",
    "failure_type": "timeout",
    "cost_usd": "0.0042",
}
VIOLATION: dict[str, Any] = {
    "event_id": "evt-2",
    "tenant_id": "acme",
    "occurred_at": "2026-11-22T10:00:01Z",
    "run_id": "run-9",
    "policy_id": "pii-email",
    "violated_rule": "no e-mail addresses",
}
COMMAND: dict[str, Any] = {
    "command_id": "cmd-1",
    "tenant_id": "acme",
    "incident_id": "6f1c0f0e-8d7c-5a53-9a43-0c1a4d3c5a11",
    "action": "resolve",
    "issued_at": "2026-11-22T10:30:00Z",
    "issued_by": "oncall",
}
MODELS: dict[str, tuple[type[Message], dict[str, Any]]] = {
    "failure": (LlmCallFailure, FAILURE),
    "violation": (PolicyViolation, VIOLATION),
    "command": (LifecycleCommand, COMMAND),
}
BOM = b"\xef\xbb\xbf"


def wire(fields: dict[str, Any], **overrides: Any) -> bytes:
    return json.dumps(fields | overrides).encode()


def with_raw(fields: dict[str, Any], name: str, json_text: str) -> bytes:
    """The message with field `name` spelled as `json_text` (for what json.dumps cannot write)."""
    rest = {key: value for key, value in fields.items() if key != name}
    return json.dumps(rest)[:-1].encode() + f', "{name}": {json_text}}}'.encode()


def accepted(model: type[Message], raw: bytes) -> Any:
    parsed = parse_message(model, raw)
    assert isinstance(parsed, model), parsed
    return parsed


def refused(model: type[Message], raw: bytes) -> str:
    """The detail of a `schema_violation`."""
    parsed = parse_message(model, raw)
    assert isinstance(parsed, Rejection), parsed
    assert parsed.reason is DeadLetterReason.SCHEMA_VIOLATION, parsed
    return parsed.detail


def invalid_json(model: type[Message], raw: bytes) -> str:
    parsed = parse_message(model, raw)
    assert isinstance(parsed, Rejection), parsed
    assert parsed.reason is DeadLetterReason.INVALID_JSON, parsed
    return parsed.detail


# -- crashes: these raised out of parse_message before ---------------------------------------


@pytest.mark.parametrize(
    "at", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+23:59"]
)
@pytest.mark.parametrize("kind", ["failure", "violation", "command"])
def test_a_time_that_leaves_datetime_in_utc_is_refused_not_raised(kind: str, at: str) -> None:
    model, fields = MODELS[kind]
    name = "issued_at" if kind == "command" else "occurred_at"
    detail = refused(model, wire(fields, **{name: at}))
    assert detail.startswith(f"{name}: Input should be ")


@pytest.mark.parametrize("cost", ["1e400", "1E+999999999999999999", "9" * 30])
def test_a_cost_past_decimal_precision_is_refused_not_raised(cost: str) -> None:
    assert refused(LlmCallFailure, wire(FAILURE, cost_usd=cost)) == (
        "cost_usd: Input should be less than 1000000000000"
    )


# -- poison pills: accepted before, then refused by PostgreSQL forever -----------------------


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("failure", "event_id"),
        ("failure", "run_id"),
        ("failure", "error_message"),
        ("failure", "fingerprint"),
        ("failure", "agent_id"),
        ("failure", "provider"),
        ("violation", "violated_rule"),
        ("violation", "evaluated_value"),
        ("violation", "policy_type"),
        ("command", "note"),
        ("command", "issued_by"),
        ("command", "incident_id"),
        ("command", "command_id"),
    ],
)
def test_nul_in_a_text_field_is_refused_naming_the_field(kind: str, name: str) -> None:
    model, fields = MODELS[kind]
    assert refused(model, wire(fields, **{name: "a\x00b"})) == (
        f"{name}: text must not contain U+0000"
    )


@pytest.mark.parametrize(
    ("metadata", "path"),
    [
        ({"user": "a\x00"}, "metadata.user"),
        ({"a\x00": 1}, "metadata.a\ufffd"),
        ({"deep": [1, {"er\x00r": None}]}, "metadata.deep.1.er\ufffdr"),
        ({"deep": [1, {"x": ["ok", "\x00"]}]}, "metadata.deep.1.x.1"),
    ],
)
def test_nul_in_metadata_keys_and_values_at_any_depth_is_refused(
    metadata: dict[str, Any], path: str
) -> None:
    assert refused(LlmCallFailure, wire(FAILURE, metadata=metadata)) == (
        f"{path}: text must not contain U+0000"
    )


def test_nul_in_evidence_is_refused() -> None:
    raw = wire(VIOLATION, evidence={"quote": ["\x00"]})
    assert refused(PolicyViolation, raw) == "evidence.quote.0: text must not contain U+0000"


def test_an_escaped_backslash_before_u0000_is_no_nul() -> None:
    event = accepted(LlmCallFailure, with_raw(FAILURE, "error_message", r'"C:\\u0000"'))
    assert event.error_message == "C:\\u0000"


@pytest.mark.parametrize("name", ["tokens_in", "tokens_out", "duration_ms"])
@pytest.mark.parametrize("value", [2**31, 2**63, 10**400])
def test_an_integer_past_int4_is_refused(name: str, value: int) -> None:
    assert refused(LlmCallFailure, with_raw(FAILURE, name, str(value))) == (
        f"{name}: Input should be less than or equal to 2147483647"
    )


@pytest.mark.parametrize("name", ["tokens_in", "tokens_out", "duration_ms"])
def test_int4_max_is_accepted(name: str) -> None:
    assert getattr(accepted(LlmCallFailure, wire(FAILURE, **{name: INT4_MAX})), name) == INT4_MAX


@pytest.mark.parametrize("cost", ["1000000000000000", "1000000000000", 10**12])
def test_a_cost_past_the_event_column_is_refused(cost: object) -> None:
    assert (
        refused(LlmCallFailure, wire(FAILURE, cost_usd=cost))
        == "cost_usd: Input should be less than 1000000000000"
    )


def test_a_cost_that_rounds_up_to_the_limit_is_refused() -> None:
    detail = refused(LlmCallFailure, wire(FAILURE, cost_usd="999999999999.999999995"))
    assert detail == "cost_usd: cost must be below 1000000000000 once rounded to 8 decimal places"


@pytest.mark.parametrize(
    ("cost", "kept"),
    [
        ("999999999999.99999999", "999999999999.99999999"),
        ("999999999999.999999994", "999999999999.99999999"),
        ("1e-9", "0E-8"),
        ("0.000000005", "0E-8"),
        ("0.000000015", "2E-8"),
        ("-0", "0E-8"),
        ("-0.0", "0E-8"),
        ("1e-999999999999", "0E-8"),
    ],
)
def test_costs_at_the_edges_are_rounded_half_even(cost: str, kept: str) -> None:
    event = accepted(LlmCallFailure, wire(FAILURE, cost_usd=cost))
    assert str(event.cost_usd) == kept
    assert not event.cost_usd.is_signed()


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"])
def test_nan_and_infinity_in_metadata_are_refused(value: str) -> None:
    raw = with_raw(FAILURE, "metadata", f'{{"scores": [0.5, {{"p": {value}}}]}}')
    assert (
        refused(LlmCallFailure, raw) == "metadata.scores.1.p: NaN and Infinity are not JSON numbers"
    )


@pytest.mark.parametrize("value", ["NaN", "Infinity", "1e400"])
def test_nan_in_evidence_and_cost_is_refused(value: str) -> None:
    assert refused(PolicyViolation, with_raw(VIOLATION, "evidence", f'{{"x": {value}}}')) == (
        "evidence.x: NaN and Infinity are not JSON numbers"
    )
    assert refused(LlmCallFailure, with_raw(FAILURE, "cost_usd", value)) == (
        "cost_usd: Input should be a finite number"
    )


@pytest.mark.parametrize("at", ["1764000000", "1764000000.5", "0", "-1"])
@pytest.mark.parametrize("kind", ["failure", "command"])
def test_a_time_given_as_a_number_is_refused(kind: str, at: str) -> None:
    model, fields = MODELS[kind]
    name = "issued_at" if kind == "command" else "occurred_at"
    detail = (
        f"{name}: must be an RFC 3339 date-time string with an offset, e.g. 2026-01-01T00:00:00Z"
    )
    assert refused(model, with_raw(fields, name, at)) == detail
    assert refused(model, wire(fields, **{name: at})) == detail  # nor a string of digits


# -- the supported time range ----------------------------------------------------------------


@pytest.mark.parametrize(
    "at",
    [
        "1970-01-01T00:00:00Z",
        "1970-01-01T01:00:00+01:00",
        "8999-12-31T23:59:59.999999Z",
        "9000-01-01T00:59:59+01:00",
        "2026-11-22T10:00:00+23:59",
        "2026-11-22T10:00:00-23:59",
    ],
)
def test_times_at_the_edges_of_the_range_are_accepted_in_utc(at: str) -> None:
    event = accepted(LlmCallFailure, wire(FAILURE, occurred_at=at))
    assert event.occurred_at.tzinfo is UTC
    assert EARLIEST_TIME <= event.occurred_at < LATEST_TIME


@pytest.mark.parametrize(
    ("at", "message"),
    [
        ("1969-12-31T23:59:59.999999Z", "greater than or equal to 1970-01-01T00:00:00Z"),
        ("1970-01-01T00:59:59+01:00", "greater than or equal to 1970-01-01T00:00:00Z"),
        ("9000-01-01T00:00:00Z", "less than 9000-01-01T00:00:00Z"),
        ("8999-12-31T23:00:00-01:00", "less than 9000-01-01T00:00:00Z"),
    ],
)
def test_times_outside_the_range_are_refused(at: str, message: str) -> None:
    assert refused(LlmCallFailure, wire(FAILURE, occurred_at=at)) == (
        f"occurred_at: Input should be {message}"
    )


@pytest.mark.parametrize("at", ["2026-11-22T10:00:00+24:00", "2026-11-22T10:00:00", "2026-11-22"])
def test_an_offset_past_a_day_or_no_offset_is_refused(at: str) -> None:
    assert refused(LlmCallFailure, wire(FAILURE, occurred_at=at)).startswith("occurred_at: ")


def _longest_durations() -> Settings:
    bounds = {
        name: next(m.le for m in field.metadata if getattr(m, "le", None) is not None)
        for name, field in Settings.model_fields.items()
        if name.endswith("_seconds") and not name.startswith(("idle_", "outage", "startup"))
    }
    assert set(bounds) >= {"auto_resolve_after_seconds", "max_lateness_seconds"}
    assert set(bounds.values()) == {LONGEST_DURATION_SECONDS}
    return Settings(**bounds)


def test_duration_settings_are_bounded() -> None:
    with pytest.raises(ValidationError, match="max_lateness_seconds"):
        Settings(max_lateness_seconds=LONGEST_DURATION_SECONDS + 1)
    with pytest.raises(ValidationError, match="sla_low_seconds"):
        Settings(sla_low_seconds=LONGEST_DURATION_SECONDS + 1)


@pytest.mark.parametrize(
    "edge", [EARLIEST_TIME, LATEST_TIME - timedelta(microseconds=1)], ids=["earliest", "latest"]
)
def test_the_rules_at_the_edges_of_the_range_with_the_longest_durations_do_not_overflow(
    edge: datetime,
) -> None:
    config = _longest_durations().aggregation()
    aggregator = PartitionAggregator(config)
    now = edge
    first = aggregator.apply_signal(failure("e1", at=edge), now)
    second = aggregator.apply_signal(violation("e2", at=edge, fingerprint="other"), now)
    assert isinstance(first, type(second))
    assert not isinstance(first, Rejection), first
    assert aggregator.apply_command(command("c1", first, "acknowledge", at=edge)) is None
    assert aggregator.apply_command(command("c2", first, "resolve", at=edge)) is None
    aggregator.apply_signal(failure("e3", at=edge), now)  # reopens within the window
    aggregator.advance_watermark(edge)
    aggregator.evict()
    assert aggregator.take_changes().incidents


def test_durations_past_the_bound_would_overflow_at_the_latest_time() -> None:
    """Why the settings are bounded: R of 2,000 years cannot be added to a time in 8999."""
    aggregator = PartitionAggregator(
        AggregationConfig(auto_resolve_after_seconds=2000 * 365 * 24 * 3600)
    )
    at = LATEST_TIME - timedelta(microseconds=1)
    with pytest.raises(OverflowError):
        aggregator.apply_signal(failure("e1", at=at), at)


# -- decided cases ----------------------------------------------------------------------------


def test_a_byte_order_mark_is_invalid_json_and_says_so() -> None:
    detail = invalid_json(LlmCallFailure, BOM + wire(FAILURE))
    assert "byte-order mark" in detail


@pytest.mark.parametrize("version", ["2", "0", '"1"', "1.0", "true", '"v1"'])
def test_schema_version_other_than_the_integer_1_is_a_schema_violation(version: str) -> None:
    assert refused(LlmCallFailure, with_raw(FAILURE, "schema_version", version)) == (
        "schema_version: Input should be 1"
    )


@pytest.mark.parametrize("version", ["1", "null"])
def test_schema_version_1_or_null_is_accepted(version: str) -> None:
    assert (
        accepted(LlmCallFailure, with_raw(FAILURE, "schema_version", version)).schema_version == 1
    )


@pytest.mark.parametrize(
    "text", [r'"a\ud800"', r'"\udc00"', r'"\ud800\u0041"', r'"\uDBFF\uDBFF"'], ids=str
)
def test_a_lone_surrogate_on_the_wire_is_invalid_json(text: str) -> None:
    invalid_json(LlmCallFailure, with_raw(FAILURE, "error_message", text))
    invalid_json(LlmCallFailure, with_raw(FAILURE, "metadata", f"{{{text}: 1}}"))
    invalid_json(LlmCallFailure, with_raw(FAILURE, "zzz_unknown", text))
    invalid_json(LlmCallFailure, wire(FAILURE)[:-1] + b', "x": "\xed\xa0\x80"}')


def test_a_surrogate_pair_is_one_character() -> None:
    event = accepted(LlmCallFailure, with_raw(FAILURE, "error_message", r'"\ud83d\ude00"'))
    assert event.error_message == "\U0001f600"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"error_message": "a\ud800"}, "unable to parse raw data as a unicode string"),
        ({"metadata": {"k": "\udcff"}}, "text must not contain a lone surrogate"),
        ({"metadata": {"\ud800": 1}}, "text must not contain a lone surrogate"),
        ({"metadata": {"k": float("nan")}}, "NaN and Infinity are not JSON numbers"),
        ({"metadata": {"k": datetime(2026, 1, 1)}}, "not JSON data"),
        ({"run_id": "r\x00"}, "text must not contain U+0000"),
        ({"occurred_at": 1764000000}, "must be an RFC 3339 date-time string"),
    ],
)
def test_python_objects_get_the_same_contract(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        LlmCallFailure.model_validate(FAILURE | overrides)


def test_python_objects_may_give_times_as_datetimes_or_strings() -> None:
    at = datetime(2026, 11, 22, 11, tzinfo=UTC)
    assert failure("e1", at=at).occurred_at == at
    assert LlmCallFailure.model_validate(FAILURE).occurred_at == datetime(
        2026, 11, 22, 10, tzinfo=UTC
    )


def test_a_duplicate_key_keeps_its_last_value() -> None:
    raw = wire(FAILURE)[:-1] + b', "run_id": "run-last", "metadata": {"k": 1, "k": 2}}'
    event = accepted(LlmCallFailure, raw)
    assert (event.run_id, event.metadata) == ("run-last", {"k": 2})


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("tokens_in", '"5"', "Input should be a valid integer"),
        ("tokens_out", "5.0", "Input should be a valid integer"),
        ("duration_ms", "1e3", "Input should be a valid integer"),
        ("is_synthetic", '"true"', "Input should be a valid boolean"),
        ("is_synthetic", "1", "Input should be a valid boolean"),
        ("cost_usd", '"0x10"', "Input should be a valid decimal"),
    ],
)
def test_numbers_and_booleans_given_otherwise_are_refused(
    name: str, value: str, message: str
) -> None:
    assert refused(LlmCallFailure, with_raw(FAILURE, name, value)) == f"{name}: {message}"


@pytest.mark.parametrize(
    ("value", "kept"),
    [('"0.0042"', "0.00420000"), ("0.1", "0.10000000"), ("0.123456785", "0.12345678"), ("3", "3")],
)
def test_a_cost_is_a_number_or_a_decimal_string_kept_exactly(value: str, kept: str) -> None:
    event = accepted(LlmCallFailure, with_raw(FAILURE, "cost_usd", value))
    assert event.cost_usd == Decimal(kept)


def nested(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


def test_nesting_is_limited_to_200_levels_by_the_json_parser() -> None:
    """The message is level 1, `metadata` level 2: 198 more levels are the most."""
    deepest = with_raw(FAILURE, "metadata", f'{{"k": {nested(198)}}}')
    assert accepted(LlmCallFailure, deepest).metadata
    too_deep = with_raw(FAILURE, "metadata", f'{{"k": {nested(199)}}}')
    assert "recursion limit" in invalid_json(LlmCallFailure, too_deep)
    ignored = with_raw(FAILURE, "zzz", f'{{"k": {nested(199)}}}')
    assert "recursion limit" in invalid_json(LlmCallFailure, ignored)


def test_fingerprint_is_at_most_512_characters_of_any_width() -> None:
    widest = "\U0010fffd" * 512
    assert accepted(LlmCallFailure, wire(FAILURE, fingerprint=widest)).fingerprint == widest
    assert refused(LlmCallFailure, wire(FAILURE, fingerprint=widest + "a")) == (
        "fingerprint: String should have at most 512 characters"
    )


def test_size_limits() -> None:
    assert accepted(LlmCallFailure, wire(FAILURE, metadata={"k": "x" * 8000})).metadata
    assert refused(LlmCallFailure, wire(FAILURE, metadata={"k": "x" * 8200})) == (
        "metadata: Value error, metadata is larger than 8192 bytes as JSON"
    )
    assert refused(PolicyViolation, wire(VIOLATION, evidence={"k": "x" * 16400})) == (
        "evidence: Value error, evidence is larger than 16384 bytes as JSON"
    )
    assert refused(LlmCallFailure, wire(FAILURE, error_message="x" * 4001)) == (
        "error_message: String should have at most 4000 characters"
    )
    huge = wire(FAILURE, zzz="x" * MAX_MESSAGE_BYTES)
    parsed = parse_message(LlmCallFailure, huge)
    assert isinstance(parsed, Rejection) and parsed.reason is DeadLetterReason.TOO_LARGE


def test_unknown_fields_stay_ignored_whatever_they_hold() -> None:
    raw = wire(FAILURE)[:-1] + b', "zzz": "\\u0000", "yyy": NaN, "xxx": 1e400, "www": 5}'
    assert accepted(LlmCallFailure, raw).run_id == "run-9"


# -- rejection details -------------------------------------------------------------------------


def test_storage_rejected_is_a_reason() -> None:
    assert DeadLetterReason.STORAGE_REJECTED.value == "storage_rejected"


def test_printable_replaces_nul_surrogates_and_controls_and_keeps_the_rest() -> None:
    assert printable("a\x00b\ud800c\x1bd\te\nf\U0001f600 \u00e9") == (
        "a\ufffdb\ufffdc\ufffdd\te\nf\U0001f600 \u00e9"
    )
    assert printable("x" * 100, limit=100) == "x" * 100


@pytest.mark.parametrize("limit", [3, 4, 5, 6, 7, 100])
def test_printable_cuts_at_a_character_boundary_within_the_limit(limit: int) -> None:
    text = printable("\U0001f600" * 50, limit=limit)
    assert len(text.encode()) <= limit
    assert text.endswith("\u2026")
    assert text.rstrip("\u2026") == "\U0001f600" * ((limit - 3) // 4)


def test_a_rejection_detail_is_printable_whoever_builds_it() -> None:
    rejection = Rejection(DeadLetterReason.STORAGE_REJECTED, "bad\x00\udcff" + "y" * 10_000)
    assert rejection.detail.startswith("bad\ufffd\ufffdyyy")
    assert len(rejection.detail.encode()) <= MAX_DETAIL_BYTES


def test_a_long_metadata_key_is_shortened_in_the_detail() -> None:
    detail = refused(LlmCallFailure, wire(FAILURE, metadata={"k" * 5000 + "\x00": 1}))
    assert detail == "metadata." + "k" * 40 + "\u2026: text must not contain U+0000"


# -- parse_message never raises ----------------------------------------------------------------

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_text = st.text(
    st.characters(codec=None, exclude_categories=()), max_size=12
) | st.sampled_from(
    ["", "\x00", "\ud800", "\udfff", "\U0010ffff", "1700000000", "2026-11-22T10:00:00Z", "NaN"]
)
json_numbers = (
    st.integers()
    | st.integers(min_value=2**31 - 2, max_value=2**64)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([0, -0.0, 1e-9, 1e308, 10**4000])
)
json_values = st.recursive(
    st.none() | st.booleans() | json_numbers | json_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(json_text, inner, max_size=4),
    max_leaves=20,
)


def _dumps(value: object) -> bytes:
    """JSON text of any Python value, NaN and lone surrogates included (as escapes)."""
    try:
        return json.dumps(value).encode()
    except ValueError:  # an integer past Python's digit limit: write it anyway
        return repr(value).encode()


def assert_well_formed(parsed: object, model: type[Message]) -> None:
    if isinstance(parsed, Rejection):
        assert "not validated" not in parsed.detail, parsed.detail
        assert printable(parsed.detail) == parsed.detail
        assert len(parsed.detail.encode()) <= MAX_DETAIL_BYTES
    else:
        assert isinstance(parsed, model)


@FUZZ
@given(raw=st.binary(max_size=600), kind=st.sampled_from(sorted(MODELS)))
def test_parse_message_never_raises_on_arbitrary_bytes(raw: bytes, kind: str) -> None:
    model, _ = MODELS[kind]
    assert_well_formed(parse_message(model, raw), model)


@FUZZ
@given(value=json_values, kind=st.sampled_from(sorted(MODELS)))
def test_parse_message_never_raises_on_arbitrary_json(value: object, kind: str) -> None:
    model, _ = MODELS[kind]
    assert_well_formed(parse_message(model, _dumps(value)), model)


@FUZZ
@given(
    kind=st.sampled_from(sorted(MODELS)),
    replaced=st.dictionaries(
        st.sampled_from(
            sorted({*FAILURE, *VIOLATION, *COMMAND, "metadata", "evidence", "tokens_in",
                    "duration_ms", "is_synthetic", "schema_version", "fingerprint", "note"})
        ),
        json_values,
        min_size=1,
        max_size=3,
    ),
)  # fmt: skip
def test_parse_message_never_raises_on_valid_messages_with_arbitrary_fields(
    kind: str, replaced: dict[str, object]
) -> None:
    model, fields = MODELS[kind]
    assert_well_formed(parse_message(model, _dumps(fields | replaced)), model)
