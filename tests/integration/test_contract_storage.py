"""What the contracts accept, PostgreSQL stores: adversarial messages through the real storage path.

Each example builds a failure, a violation and a command with a few fields made adversarial (NUL,
surrogates, 4-byte and control characters, the longest allowed strings and one past, numbers at
and past every limit, times at the edges of the supported range and of the offset range, nested
metadata), parses them as the worker does, applies what is accepted with a `PartitionAggregator`
and saves the batch with `IngestStore.save` (events COPYed, incidents upserted, timeline, keys,
commands, dead letters): it must never raise, and the stored events read back equal.
"""

from __future__ import annotations

import itertools
import json
import random
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, get_args

import psycopg
import pytest
import pytest_asyncio
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from psycopg.rows import dict_row
from pydantic.fields import FieldInfo

from domain.aggregation import PartitionAggregator
from domain.config import AggregationConfig
from domain.contracts import (
    COST_LIMIT,
    EARLIEST_TIME,
    INT4_MAX,
    LATEST_TIME,
    LONGEST_DURATION_SECONDS,
    LifecycleCommand,
    LlmCallFailure,
    Message,
    PolicyViolation,
    Rejection,
    parse_message,
)
from storage.effects import BatchEffects, DeadLetterRow, PartitionEffects
from storage.engine import create_async_db_engine
from storage.ingest_store import IngestStore
from storage.rows import incident_row

CONFIG = AggregationConfig(
    max_future_skew_seconds=LONGEST_DURATION_SECONDS, max_lateness_seconds=LONGEST_DURATION_SECONDS
)
NOW = LATEST_TIME - timedelta(microseconds=1)
"""The wall clock of the examples: no time of the supported range is in its future."""
_numbers = itertools.count()


@dataclass(frozen=True)
class RawJson:
    """JSON text written as it is (numbers Python cannot hold, such as 1e400)."""

    text: str


def to_json(value: object, ensure_ascii: bool) -> bytes:
    """JSON of `value`; lone surrogates become `\\udXXX` escapes or raw (invalid UTF-8) bytes."""

    def write(item: object) -> str:
        if isinstance(item, RawJson):
            return item.text
        if isinstance(item, dict):
            pairs = (
                json.dumps(k, ensure_ascii=ensure_ascii) + ":" + write(v) for k, v in item.items()
            )
            return "{" + ",".join(pairs) + "}"
        if isinstance(item, list):
            return "[" + ",".join(write(v) for v in item) + "]"
        if isinstance(item, int) and not isinstance(item, bool):
            return str(item)
        return json.dumps(item, ensure_ascii=ensure_ascii)

    return write(value).encode("utf-8", "surrogatepass")


def _length_limits(field: FieldInfo) -> tuple[int, int]:
    """(min_length, max_length) of a text field, wherever pydantic keeps them."""
    found: dict[str, int] = {}

    def visit(item: object) -> None:
        for name in ("min_length", "max_length"):
            if isinstance(getattr(item, name, None), int):
                found[name] = getattr(item, name)
        for inner in getattr(item, "metadata", ()) or ():
            visit(inner)
        for arg in get_args(item):
            visit(arg)

    visit(field)
    visit(field.annotation)
    return found.get("min_length", 0), found.get("max_length", 4000)


WIDE = ["a", "\u00e9", "\u20ac", "\U0001f600", "\U0010fffd", "\u1ff7", "\x01", "\u2028", "\ufeff"]
"""One character of each UTF-8 width, one whose upper case is three (`POLICY_` categories), and
control and format characters."""
ANY_CHARACTER = st.characters(codec=None, exclude_categories=())
FOUR_BYTES = st.characters(min_codepoint=0x10000, max_codepoint=0x10FFFF, exclude_categories=())


def texts(limit: int) -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(ANY_CHARACTER, max_size=10),
        st.sampled_from(WIDE).map(lambda c: c * limit),
        st.sampled_from(WIDE).map(lambda c: c * (limit + 1)),
        st.text(FOUR_BYTES, min_size=limit, max_size=limit),
        st.sampled_from(["", "\x00", "a\x00b", "\ud800", "x\udfff", " ", "\\u0000"]),
    )


def _json_time(at: datetime, offset_minutes: int) -> str:
    if offset_minutes == 0:
        zone = "Z"
    else:
        sign, minutes = ("+" if offset_minutes > 0 else "-"), abs(offset_minutes)
        zone = f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"
    return (
        f"{at.year:04d}-{at.month:02d}-{at.day:02d}T{at.hour:02d}:{at.minute:02d}:"
        f"{at.second:02d}.{at.microsecond:06d}{zone}"
    )


def _near(edge: datetime) -> st.SearchStrategy[datetime]:
    naive = edge.replace(tzinfo=None)
    day = timedelta(days=1)
    return st.datetimes(min_value=naive - day, max_value=naive + day)


EDGE_TIMES = (
    "1970-01-01T00:00:00Z", "1969-12-31T23:59:59.999999Z", "8999-12-31T23:59:59.999999Z",
    "9000-01-01T00:00:00Z", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00",
    "2026-11-22T10:00:00+24:00", "2026-11-22T10:00:00", "1764000000",
)  # fmt: skip
EDGE_COSTS = (
    "0", "-0", "-0.0", "1e-9", "0.000000005", "999999999999.99999999", "999999999999.999999995",
    "1000000000000", "1e400", "1e-400", "NaN", "-1", "1E+999999999999999999", "1e-999999999999",
    "0." + "9" * 60, None,
)  # fmt: skip
TIMES = st.one_of(
    st.builds(
        _json_time,
        st.one_of(
            st.datetimes(),
            _near(EARLIEST_TIME),
            _near(LATEST_TIME),
            st.datetimes(datetime(1, 1, 1), datetime(1, 1, 2)),
            st.datetimes(datetime(9999, 12, 30), datetime(9999, 12, 31, 23, 59, 59)),
        ),
        st.sampled_from([0, 1, -1, 60, -60, 1439, -1439]) | st.integers(-1439, 1439),
    ),
    st.sampled_from(EDGE_TIMES),
    st.sampled_from([RawJson("1764000000"), RawJson("0"), RawJson("-1.5")]),
)
INTEGERS = st.one_of(
    st.sampled_from([0, -1, INT4_MAX, INT4_MAX + 1, 2**63 - 1, 2**63, 2**64, 10**30]),
    st.integers(-(2**64), 2**64),
    st.sampled_from([RawJson("-0"), RawJson("5.0"), RawJson("1e2"), "5", None, True]),
)
COSTS = st.one_of(
    st.sampled_from(EDGE_COSTS),
    st.sampled_from([RawJson("1e-9"), RawJson("-0"), RawJson("1e400"), RawJson("0.1"), 7]),
    st.decimals(min_value=0, max_value=COST_LIMIT, places=12).map(str),
    st.floats(min_value=0, max_value=2e12),
)
JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**40), 10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([-0.0, 5e-324, 1.7976931348623157e308, 10**4000]),
    st.sampled_from([RawJson("1e400"), RawJson("-1e400"), RawJson("1e-400")]),
    st.text(ANY_CHARACTER, max_size=6),
    st.sampled_from(WIDE),
)
JSON_OBJECTS = st.one_of(
    st.dictionaries(
        st.text(ANY_CHARACTER, max_size=6),
        st.recursive(
            JSON_SCALARS,
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(st.text(ANY_CHARACTER, max_size=4), inner, max_size=3)
            ),
            max_leaves=12,
        ),
        max_size=4,
    ),
    st.integers(1, 199).map(lambda depth: {"deep": json.loads("[" * depth + "1" + "]" * depth)}),
    st.sampled_from([4000, 8100, 8200, 16300, 16400]).map(lambda size: {"k": "x" * size}),
    st.sampled_from([{}, {"\x00": 1}, {"k": "\x00"}, {"\U0010fffd" * 100: "\u1ff7" * 100}]),
)

FIXED_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "tenant_id": st.sampled_from(["t" * 100, "t" * 101, "a.b:c-d_e", "-bad", "", "t\x00"]),
    "occurred_at": TIMES,
    "issued_at": TIMES,
    "schema_version": st.sampled_from([1, None, 2, "1", RawJson("1.0"), True]),
    "is_synthetic": st.sampled_from([True, False, None, "true", 1]),
    "cost_usd": COSTS,
    "metadata": JSON_OBJECTS | st.none(),
    "evidence": JSON_OBJECTS | st.none(),
    "duration_ms": INTEGERS,
    "tokens_in": INTEGERS,
    "tokens_out": INTEGERS,
    "failure_type": st.sampled_from(["timeout", "budget_exceeded", "TIMEOUT", "", "\x00"]),
    "severity": st.sampled_from(["critical", "low", "urgent", None]),
    "action_taken": st.sampled_from(["blocked", "allowed", "deleted", None]),
    "cause_type": st.sampled_from(["HUMAN", "SYSTEM", "llm_run", None]),
    "action": st.sampled_from(["acknowledge", "resolve", "close"]),
    "resolution_method": st.sampled_from(["rollback", "manual_closure", "auto", None]),
}
UNIQUE = {"event_id", "command_id"}


def adversarial(model: type[Message], name: str) -> st.SearchStrategy[Any]:
    if name in FIXED_VALUES:
        return FIXED_VALUES[name]
    _, limit = _length_limits(model.model_fields[name])
    return texts(limit) | st.none()


FULL_FAILURE: dict[str, Any] = {
    "tenant_id": "acme", "occurred_at": "2026-11-22T10:00:00Z", "schema_version": 1,
    "run_id": "run-1", "fingerprint": "fp-1", "is_synthetic": False,
    "synthetic_scenario_id": "demo:storm", "metadata": {"user": "u-1", "n": [1, 2.5, None]},
    "agent_id": "agent-1", "cost_usd": "0.0042", "call_id": "call-1", "integration_id": "int-1",
    "provider": "openai", "model": "gpt-4o", "failure_type": "timeout", "error_code": "E42",
    "error_message": "upstream failed", "request_id": "req-1", "duration_ms": 1200,
    "tokens_in": 300, "tokens_out": 20,
}  # fmt: skip
FULL_VIOLATION: dict[str, Any] = {
    "tenant_id": "acme", "occurred_at": "2026-11-22T10:00:01Z", "schema_version": 1,
    "run_id": "run-1", "fingerprint": "fp-2", "is_synthetic": True,
    "synthetic_scenario_id": "demo:pii", "metadata": {"k": "v"}, "agent_id": "agent-2",
    "cost_usd": 1, "violation_id": "v-1", "policy_id": "pii-email", "policy_type": "PII",
    "violated_rule": "no e-mail addresses", "severity": "high", "action_taken": "redacted",
    "reason": "an address", "evaluated_value": "a@b.c", "threshold_condition": "any",
    "cause_type": "LLM_RUN", "evidence": {"quote": "a@b.c"},
}  # fmt: skip
FULL_COMMAND: dict[str, Any] = {
    "tenant_id": "acme", "incident_id": "no-such-incident", "action": "resolve",
    "issued_at": "2026-11-22T10:30:00Z", "issued_by": "oncall", "resolution_method": "rollback",
    "note": "rolled back",
}  # fmt: skip


@st.composite
def messages(
    draw: Callable[..., Any], model: type[Message], full: dict[str, Any]
) -> tuple[dict[str, Any], bool]:
    """A complete message with one to four fields made adversarial, and its JSON's escaping."""
    names = sorted(model.model_fields)
    chosen = draw(st.lists(st.sampled_from(names), min_size=1, max_size=4, unique=True))
    fields = dict(full)
    for name in chosen:
        fields[name] = draw(adversarial(model, name))
    for name in UNIQUE & set(model.model_fields) - set(chosen):
        fields[name] = "id"
    return fields, draw(st.booleans())


def _unique(fields: dict[str, Any]) -> dict[str, Any]:
    """The message with its id made unique among the examples, keeping the id's length when it
    is a string at or past the limit (128)."""
    unique = dict(fields)
    for name in UNIQUE & set(fields):
        prefix, suffix = f"{next(_numbers)}:", fields[name]
        if isinstance(suffix, str):
            long = len(suffix) >= 128
            unique[name] = (prefix + suffix)[: len(suffix)] if long else prefix + suffix
    return unique


def _parse(model: type[Message], drawn: tuple[dict[str, Any], bool]) -> Message | Rejection:
    fields, ensure_ascii = drawn
    parsed = parse_message(model, to_json(_unique(fields), ensure_ascii))
    assert isinstance(parsed, model | Rejection), parsed
    return parsed


@pytest_asyncio.fixture
async def store(database_url: str) -> AsyncIterator[IngestStore]:
    engine = create_async_db_engine(database_url)
    yield IngestStore(engine, CONFIG)
    await engine.dispose()


def _dead_letter(offset: int, rejection: Rejection) -> DeadLetterRow:
    return DeadLetterRow(
        "contracts", 0, offset, b"acme", rejection.reason.value, rejection.detail, b"{}"
    )


async def _stored_events(url: str, table: str, event_id: str) -> list[dict[str, Any]]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cursor = conn.cursor(row_factory=dict_row)
        await cursor.execute(f"SELECT * FROM {table} WHERE event_id = %s", (event_id,))
        return await cursor.fetchall()


def _numbers_as_decimals(value: object) -> object:
    """JSON data with its numbers as exact decimals: jsonb keeps a number's decimal value, so
    1e300 comes back as the integer 10**300, equal to it but not to the float."""
    if isinstance(value, dict):
        return {key: _numbers_as_decimals(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_numbers_as_decimals(item) for item in value]
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    return value


def _same_as_stored(event: LlmCallFailure | PolicyViolation, row: dict[str, Any]) -> None:
    for name, value in event.model_dump().items():
        if name in row and name not in ("call_id", "violation_id"):
            assert _numbers_as_decimals(row[name]) == _numbers_as_decimals(value), name
    if isinstance(event, LlmCallFailure):
        assert row["call_id"] == event.effective_call_id
    else:
        assert row["violation_id"] == (event.violation_id or event.event_id)


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # one database for all examples; ids are unique
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
@given(
    failure=messages(LlmCallFailure, FULL_FAILURE),
    violation=messages(PolicyViolation, FULL_VIOLATION),
    command=messages(LifecycleCommand, FULL_COMMAND),
    names_the_incident=st.booleans(),
)
async def test_what_the_contracts_accept_postgresql_stores(
    store: IngestStore,
    database_url: str,
    failure: tuple[dict[str, Any], bool],
    violation: tuple[dict[str, Any], bool],
    command: tuple[dict[str, Any], bool],
    names_the_incident: bool,
) -> None:
    aggregator = PartitionAggregator(CONFIG)
    batch = BatchEffects(received_at=datetime.now(UTC))
    rejections: list[Rejection] = []
    incident_id: uuid.UUID | None = None
    for model, drawn in ((LlmCallFailure, failure), (PolicyViolation, violation)):
        signal = _parse(model, drawn)
        outcome = signal if isinstance(signal, Rejection) else aggregator.apply_signal(signal, NOW)
        if isinstance(outcome, Rejection):
            rejections.append(outcome)
        elif isinstance(signal, LlmCallFailure):
            batch.failures.append((signal, outcome))
            incident_id = outcome
        elif isinstance(signal, PolicyViolation):
            batch.violations.append((signal, outcome))
            incident_id = outcome
    fields, ensure_ascii = command
    if names_the_incident and incident_id is not None:
        fields = fields | {"incident_id": str(incident_id)}
    parsed = _parse(LifecycleCommand, (fields, ensure_ascii))
    applied = parsed if isinstance(parsed, Rejection) else aggregator.apply_command(parsed)
    if isinstance(applied, Rejection):
        rejections.append(applied)
    elif isinstance(parsed, LifecycleCommand):
        batch.commands.append(parsed)
    changes = aggregator.take_changes()
    offset = next(_numbers)
    batch.dead_letters.extend(_dead_letter(offset * 4 + i, r) for i, r in enumerate(rejections))
    batch.partitions.append(
        PartitionEffects(
            partition=0,
            watermark=aggregator.watermark,
            incident_rows=[incident_row(incident, 0) for incident in changes.incidents.values()],
            incident_ids=list(changes.incidents),
            timeline=changes.timeline,
            keys=changes.keys,
            next_offsets={"contracts": offset},
        )
    )

    event(f"events stored: {len(batch.failures) + len(batch.violations)}")
    event(f"command applied: {bool(batch.commands)}")
    await store.save(batch)

    for table, pairs in (
        ("llm_call_failures", batch.failures),
        ("policy_violations", batch.violations),
    ):
        for signal, _ in pairs:
            (row,) = await _stored_events(database_url, table, signal.event_id)
            _same_as_stored(signal, row)


def _random_text(rng: random.Random, alphabet: range, length: int) -> str:
    return "".join(chr(rng.choice(alphabet)) for _ in range(length))


async def test_the_longest_fingerprint_fits_every_btree_key_holding_it(
    store: IngestStore, database_url: str
) -> None:
    """512 incompressible 4-byte characters (2,048 bytes) with a 100-character tenant, in the keys
    of `incident_keys` and `recurrence_fingerprints`; a policy type whose upper case triples in
    the incidents' listing index. A btree entry must stay under 2,704 bytes: 700 such characters
    (2,800 bytes) are refused, so the test would see a fingerprint too long for its indexes."""
    rng = random.Random(2704)
    supplementary = range(0x10000, 0x10FFFF)
    fingerprint = _random_text(rng, supplementary, 512)
    tenant = "t" * 100
    raw = json.dumps(
        {
            "event_id": "longest",
            "tenant_id": tenant,
            "occurred_at": "2026-11-22T10:00:00Z",
            "run_id": _random_text(rng, supplementary, 128),
            "policy_id": _random_text(rng, supplementary, 200),
            "policy_type": "\u1ff7" * 100,
            "violated_rule": "r",
            "fingerprint": fingerprint,
        },
        ensure_ascii=False,
    ).encode()
    event = parse_message(PolicyViolation, raw)
    assert isinstance(event, PolicyViolation), event
    aggregator = PartitionAggregator(CONFIG)
    incident_id = aggregator.apply_signal(event, NOW)
    assert isinstance(incident_id, uuid.UUID)
    changes = aggregator.take_changes()
    await store.save(
        BatchEffects(
            received_at=NOW,
            violations=[(event, incident_id)],
            partitions=[
                PartitionEffects(
                    partition=0,
                    watermark=aggregator.watermark,
                    incident_rows=[incident_row(i, 0) for i in changes.incidents.values()],
                    incident_ids=list(changes.incidents),
                    timeline=changes.timeline,
                    keys=changes.keys,
                )
            ],
        )
    )
    recurrence = (
        "INSERT INTO recurrence_fingerprints (tenant_id, fingerprint, incident_id, category,"
        " started_at, last_event_at) VALUES (%s, %s, %s, 'c', now(), now())"
    )
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        await conn.execute(recurrence, (tenant, fingerprint, incident_id))
        stored = await conn.execute(
            "SELECT octet_length(k.fingerprint), octet_length(i.category) FROM incident_keys k"
            " JOIN incidents i USING (incident_id) WHERE k.tenant_id = %s",
            (tenant,),
        )
        assert await stored.fetchone() == (2048, len(("POLICY_" + "\u1ff7".upper() * 100).encode()))
        await conn.commit()
        too_long = _random_text(rng, supplementary, 700)
        with pytest.raises(psycopg.errors.ProgramLimitExceeded, match="btree"):
            await conn.execute(recurrence, (tenant, too_long, incident_id))
