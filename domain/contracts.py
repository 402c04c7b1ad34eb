"""Event contracts (schema_version 1) for the three input topics.

The models validate wire JSON at the edge; `parse_message` turns raw bytes into a contract or a
`Rejection` naming the dead-letter reason and the offending field, and never raises. Unknown fields
are ignored (whatever they hold) and an optional field set to `null` is the same as an absent one.

A contract accepts only what PostgreSQL stores and the rules can compute with; docs/contracts.md
lists every field and these decisions in full:
- text holds no U+0000 (object keys too, at any depth); lone surrogates are invalid JSON (and,
  from Python, invalid strings);
- integers are JSON integers within int4 (never strings or floats); booleans are `true`/`false`;
  `cost_usd` is a number or a decimal string, rounded half-even to 8 places, in [0, 10^12);
  NaN and Infinity are refused everywhere, metadata included;
- times are RFC 3339 strings with an offset, in [`EARLIEST_TIME`, `LATEST_TIME`) once in UTC;
- a UTF-8 byte-order mark is invalid JSON, a duplicate key keeps its last value, nesting deeper
  than the JSON parser's limit is invalid JSON, and a `schema_version` other than 1 is a schema
  violation.
"""

from __future__ import annotations

import re
from codecs import BOM_UTF8
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from domain.storable import NUL_REFUSED, NulFree, TimeText, json_object, refusal

MAX_MESSAGE_BYTES = 1024 * 1024
MAX_METADATA_BYTES = 8 * 1024
MAX_EVIDENCE_BYTES = 16 * 1024
MAX_DETAIL_BYTES = 2048
"""A rejection's detail is at most this many bytes of UTF-8 (it goes to a Kafka header)."""
TENANT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"
COST_QUANTUM = Decimal("0.00000001")
COST_LIMIT = Decimal(10**12)
"""A cost is below this once rounded: the event tables hold it as NUMERIC(20,8)."""
INT4_MAX = 2**31 - 1
"""The largest `tokens_in`, `tokens_out` and `duration_ms`: their columns are int4."""
EARLIEST_TIME = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_TIME = datetime(9000, 1, 1, tzinfo=UTC)
"""Event and command times lie in [EARLIEST_TIME, LATEST_TIME) in UTC."""
LONGEST_DURATION_SECONDS = 100 * 365 * 24 * 3600
"""The longest duration a setting of the rules may have (100 years).

The rules add to or subtract from a time at most a few settings and an hour; with times in
[1970, 9000) no chain of fewer than 9 such durations reaches `datetime`'s years 1 or 9999."""


class DeadLetterReason(StrEnum):
    """Why a message was not applied. Stored in `dead_letters.reason` and `x-error-reason`."""

    INVALID_JSON = "invalid_json"
    SCHEMA_VIOLATION = "schema_violation"
    TOO_LARGE = "too_large"
    FUTURE_TIMESTAMP = "future_timestamp"
    TOO_LATE = "too_late"
    UNKNOWN_INCIDENT = "unknown_incident"
    INVALID_TRANSITION = "invalid_transition"
    STORAGE_REJECTED = "storage_rejected"
    """The database refused a message the contract accepted; the detail is its message."""
    UNKNOWN_LESSON = "unknown_lesson"
    """A lesson command names no lesson of its tenant (another tenant's lesson is unknown too)."""


STORAGE_REASONS = frozenset({DeadLetterReason.STORAGE_REJECTED})
"""Reasons the database gives, outside the rules: a replay of a log never gives them."""
PROCESSOR_REASONS = frozenset({DeadLetterReason.UNKNOWN_LESSON})
"""Reasons only the stream processors give (to lesson commands, which have a topic of their own):
the ingest worker never reads a lesson command, so a replay of its log never gives them."""


class FailureType(StrEnum):
    TIMEOUT = "timeout"
    EXCEPTION = "exception"
    INVALID_OUTPUT = "invalid_output"
    RATE_LIMITED = "rate_limited"
    BUDGET_EXCEEDED = "budget_exceeded"
    CONTENT_FILTERED = "content_filtered"
    PROVIDER_UNAVAILABLE = "provider_unavailable"


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class CauseType(StrEnum):
    LLM_RUN = "LLM_RUN"
    HUMAN = "HUMAN"
    SYSTEM = "SYSTEM"


class ActionTaken(StrEnum):
    BLOCKED = "blocked"
    REDACTED = "redacted"
    FLAGGED = "flagged"
    ALLOWED = "allowed"


class CommandAction(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    RESOLVE = "resolve"


class ResolutionMethod(StrEnum):
    MANUAL = "manual"
    ROLLBACK = "rollback"
    MANUAL_CLOSURE = "manual_closure"


_UNPRINTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_ELLIPSIS = "\u2026"
_BACKSLASH = ord("\\")


def printable(text: str, limit: int = MAX_DETAIL_BYTES) -> str:
    """`text` made fit for a `text` column and a Kafka header.

    Control characters other than tab, line feed and carriage return, and lone surrogates, become
    U+FFFD; a text longer than `limit` bytes of UTF-8 is cut at a character boundary and ends
    with an ellipsis, so that the result is at most `limit` bytes (`limit` >= 3).
    """
    text = _UNPRINTABLE.sub("\ufffd", text)
    encoded = text.encode()
    if len(encoded) <= limit:
        return text
    return encoded[: limit - len(_ELLIPSIS.encode())].decode(errors="ignore") + _ELLIPSIS


def _round_cost(value: Decimal) -> Decimal:
    rounded = value.quantize(COST_QUANTUM, rounding=ROUND_HALF_EVEN)
    if rounded >= COST_LIMIT:
        raise refusal("cost must be below 1000000000000 once rounded to 8 decimal places")
    return rounded.copy_abs() if rounded.is_signed() else rounded  # -0 is stored as 0


Cost = Annotated[
    Decimal, Field(ge=0, lt=COST_LIMIT, allow_inf_nan=False), AfterValidator(_round_cost)
]
UtcDatetime = Annotated[
    AwareDatetime,
    Field(ge=EARLIEST_TIME, lt=LATEST_TIME),
    TimeText,
    AfterValidator(lambda value: value.astimezone(UTC)),
]
Count = Annotated[int, Strict(), Field(ge=0, le=INT4_MAX)]
Flag = Annotated[bool, Strict()]
TenantId = Annotated[str, Field(min_length=1, max_length=100, pattern=TENANT_PATTERN)]
Identifier = Annotated[str, Field(min_length=1, max_length=128), NulFree]
ShortText = Annotated[str, Field(max_length=256), NulFree]
LongText = Annotated[str, Field(max_length=4000), NulFree]


def _default_if_null(cls: type[BaseModel], value: Any, info: ValidationInfo) -> Any:
    """An optional field set to null means "absent": fall back to the field's default."""
    if value is None and info.field_name is not None:
        return cls.model_fields[info.field_name].get_default(call_default_factory=True)
    return value


def null_means_default(*names: str) -> Any:
    """A before-validator for the optional fields whose default is not None.

    Fields defaulting to None accept null as it is; a validator on every field would cost more
    than the rest of validation, so only these few get one.
    """
    return field_validator(*names, mode="before")(_default_if_null)


class _Contract(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    @field_validator("schema_version", mode="before", check_fields=False)
    @classmethod
    def _version_is_an_integer(cls, value: Any) -> Any:
        if value is None:
            return 1
        if type(value) is not int:  # lax Literal[1] would take 1.0, true and "1"
            raise refusal("Input should be 1")
        return value


class SignalEvent(_Contract):
    """Fields common to both signal events."""

    event_id: Identifier
    tenant_id: TenantId
    occurred_at: UtcDatetime
    schema_version: Literal[1] = 1
    run_id: Identifier
    fingerprint: Annotated[str, Field(min_length=1, max_length=512), NulFree] | None = None
    is_synthetic: Flag = False
    synthetic_scenario_id: ShortText | None = None
    metadata: Annotated[dict[str, Any] | None, json_object(MAX_METADATA_BYTES, "metadata")] = None
    agent_id: ShortText | None = None
    # The default is rounded too (0E-8): a sum of costs then has the scale PostgreSQL returns.
    cost_usd: Annotated[Cost, Field(validate_default=True)] = Decimal(0)


class LlmCallFailure(SignalEvent):
    """A failed LLM call, published on `llm.call.failures`."""

    _nulls = null_means_default("is_synthetic", "cost_usd", "tokens_in", "tokens_out")

    call_id: Identifier | None = None
    integration_id: ShortText | None = None
    provider: Annotated[str, Field(min_length=1, max_length=100), NulFree]
    model: Annotated[str, Field(min_length=1, max_length=200), NulFree]
    failure_type: FailureType
    error_code: ShortText | None = None
    error_message: LongText | None = None
    request_id: ShortText | None = None
    duration_ms: Count | None = None
    tokens_in: Count = 0
    tokens_out: Count = 0

    @property
    def effective_call_id(self) -> str:
        return self.call_id or self.event_id


class PolicyViolation(SignalEvent):
    """A policy violation, published on `policy.violations`."""

    _nulls = null_means_default("is_synthetic", "cost_usd", "severity", "cause_type")

    violation_id: Identifier | None = None
    policy_id: Annotated[str, Field(min_length=1, max_length=200), NulFree]
    policy_type: Annotated[str, Field(min_length=1, max_length=100), NulFree] | None = None
    violated_rule: Annotated[str, Field(min_length=1, max_length=1000), NulFree]
    severity: Severity = Severity.MEDIUM
    action_taken: ActionTaken | None = None
    reason: LongText | None = None
    evaluated_value: LongText | None = None
    threshold_condition: Annotated[str, Field(max_length=1000), NulFree] | None = None
    cause_type: CauseType = CauseType.LLM_RUN
    evidence: Annotated[dict[str, Any] | None, json_object(MAX_EVIDENCE_BYTES, "evidence")] = None

    @property
    def effective_call_id(self) -> str:
        return self.event_id


class LifecycleCommand(_Contract):
    """An acknowledge or resolve command, published on `incident.commands`."""

    _nulls = null_means_default("issued_by", "resolution_method")

    command_id: Identifier
    tenant_id: TenantId
    incident_id: Annotated[str, Field(min_length=1, max_length=64), NulFree]
    action: CommandAction
    issued_at: UtcDatetime
    issued_by: Annotated[str, Field(min_length=1, max_length=200), NulFree] = "unknown"
    resolution_method: ResolutionMethod = ResolutionMethod.MANUAL
    note: LongText | None = None
    schema_version: Literal[1] = 1


Signal = LlmCallFailure | PolicyViolation
Message = LlmCallFailure | PolicyViolation | LifecycleCommand


@dataclass(frozen=True, slots=True)
class Rejection:
    """A message that cannot be applied: the dead-letter reason and a human-readable detail.

    The detail is made `printable` on construction: no U+0000, no lone surrogate, at most
    `MAX_DETAIL_BYTES` bytes of UTF-8, whoever builds it.
    """

    reason: DeadLetterReason
    detail: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "detail", printable(self.detail))


def _field_name(part: str | int) -> str:
    name = str(part)
    return name if len(name) <= 40 else name[:40] + _ELLIPSIS


def describe_validation_error(error: ValidationError) -> Rejection:
    """Map a pydantic error to `invalid_json` or `schema_violation`, naming the first bad field."""
    first = error.errors(include_url=False)[0]
    if first["type"] == "json_invalid":
        return Rejection(DeadLetterReason.INVALID_JSON, f"invalid JSON: {first['msg']}")
    path = (*first["loc"], *first.get("ctx", {}).get("path", ()))
    field = ".".join(_field_name(part) for part in path) or "(message)"
    return Rejection(DeadLetterReason.SCHEMA_VIOLATION, f"{field}: {first['msg']}")


Parsed = TypeVar("Parsed", bound=BaseModel)


def parse_message(model: type[Parsed], raw: bytes | None) -> Parsed | Rejection:
    """Validate one raw Kafka value against `model` (an input contract, or any other message
    model such as a lesson command); never raises.

    This is how wire bytes are read: it refuses U+0000 in the text fields, which the models
    check themselves only when validating Python objects (see `domain.storable.NulFree`).
    """
    if raw is None:
        return Rejection(DeadLetterReason.INVALID_JSON, "empty message value")
    if len(raw) > MAX_MESSAGE_BYTES:
        return Rejection(
            DeadLetterReason.TOO_LARGE, f"{len(raw)} bytes exceeds the {MAX_MESSAGE_BYTES} limit"
        )
    try:
        message = model.model_validate_json(raw)
    except ValidationError as error:
        rejection = describe_validation_error(error)
        if rejection.reason is DeadLetterReason.INVALID_JSON and raw.startswith(BOM_UTF8):
            return Rejection(
                DeadLetterReason.INVALID_JSON,
                "invalid JSON: the value starts with a UTF-8 byte-order mark, which JSON text "
                "must not (RFC 8259, section 8.1)",
            )
        return rejection
    except (ValueError, UnicodeDecodeError) as error:  # e.g. non-UTF-8 bytes
        return Rejection(DeadLetterReason.INVALID_JSON, f"invalid JSON: {error}")
    except Exception as error:  # a validator's oversight must dead-letter, not stop the worker
        return Rejection(
            DeadLetterReason.SCHEMA_VIOLATION,
            f"(message): not validated: {type(error).__name__}: {error}",
        )
    # JSON text can only spell U+0000 as the escape `\u0000`, and most values hold no backslash at
    # all: `int in bytes` is one memchr, a tenth of the time of searching for the escape.
    if _BACKSLASH in raw and raw.find(b"\\u0000") != -1:
        return _first_nul_field(message) or message
    return message


def _first_nul_field(message: BaseModel) -> Rejection | None:
    """The first text field holding U+0000 (metadata and evidence check their own content)."""
    for name in type(message).model_fields:
        value = getattr(message, name)
        if isinstance(value, str) and "\x00" in value:
            return Rejection(DeadLetterReason.SCHEMA_VIOLATION, f"{name}: {NUL_REFUSED}")
    return None


def message_time(message: Message) -> datetime:
    """The event time a message is ordered by: `occurred_at`, or a command's `issued_at`."""
    if isinstance(message, LifecycleCommand):
        return message.issued_at
    return message.occurred_at
