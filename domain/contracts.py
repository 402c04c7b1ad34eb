"""Event contracts (schema_version 1) for the three input topics.

The models validate wire JSON at the edge; `parse_message` turns raw bytes into a contract or a
`Rejection` naming the dead-letter reason and the offending field. Unknown fields are ignored and an
optional field set to `null` is the same as an absent one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    ValidationError,
    ValidationInfo,
    field_validator,
)

MAX_MESSAGE_BYTES = 1024 * 1024
MAX_METADATA_BYTES = 8 * 1024
MAX_EVIDENCE_BYTES = 16 * 1024
TENANT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"
COST_QUANTUM = Decimal("0.00000001")


class DeadLetterReason(StrEnum):
    """Why a message was not applied. Stored in `dead_letters.reason` and `x-error-reason`."""

    INVALID_JSON = "invalid_json"
    SCHEMA_VIOLATION = "schema_violation"
    TOO_LARGE = "too_large"
    FUTURE_TIMESTAMP = "future_timestamp"
    TOO_LATE = "too_late"
    UNKNOWN_INCIDENT = "unknown_incident"
    INVALID_TRANSITION = "invalid_transition"


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


def _json_size(limit: int, name: str) -> AfterValidator:
    def check(value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and len(json.dumps(value, separators=(",", ":"))) > limit:
            raise ValueError(f"{name} is larger than {limit} bytes as JSON")
        return value

    return AfterValidator(check)


def _quantize_cost(value: Decimal) -> Decimal:
    return value.quantize(COST_QUANTUM, rounding=ROUND_HALF_EVEN)


Cost = Annotated[Decimal, Field(ge=0, allow_inf_nan=False), AfterValidator(_quantize_cost)]
UtcDatetime = Annotated[AwareDatetime, AfterValidator(lambda value: value.astimezone(UTC))]
TenantId = Annotated[str, Field(min_length=1, max_length=100, pattern=TENANT_PATTERN)]
Identifier = Annotated[str, Field(min_length=1, max_length=128)]
ShortText = Annotated[str, Field(max_length=256)]


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


class SignalEvent(_Contract):
    """Fields common to both signal events."""

    event_id: Identifier
    tenant_id: TenantId
    occurred_at: UtcDatetime
    schema_version: Literal[1] = 1
    run_id: Identifier
    fingerprint: Annotated[str, Field(min_length=1, max_length=512)] | None = None
    is_synthetic: bool = False
    synthetic_scenario_id: ShortText | None = None
    metadata: Annotated[dict[str, Any] | None, _json_size(MAX_METADATA_BYTES, "metadata")] = None
    agent_id: ShortText | None = None
    cost_usd: Cost = Decimal(0)


class LlmCallFailure(SignalEvent):
    """A failed LLM call, published on `llm.call.failures`."""

    _nulls = null_means_default(
        "schema_version", "is_synthetic", "cost_usd", "tokens_in", "tokens_out"
    )

    call_id: Identifier | None = None
    integration_id: ShortText | None = None
    provider: Annotated[str, Field(min_length=1, max_length=100)]
    model: Annotated[str, Field(min_length=1, max_length=200)]
    failure_type: FailureType
    error_code: ShortText | None = None
    error_message: Annotated[str, Field(max_length=4000)] | None = None
    request_id: ShortText | None = None
    duration_ms: NonNegativeInt | None = None
    tokens_in: NonNegativeInt = 0
    tokens_out: NonNegativeInt = 0

    @property
    def effective_call_id(self) -> str:
        return self.call_id or self.event_id


class PolicyViolation(SignalEvent):
    """A policy violation, published on `policy.violations`."""

    _nulls = null_means_default(
        "schema_version", "is_synthetic", "cost_usd", "severity", "cause_type"
    )

    violation_id: Identifier | None = None
    policy_id: Annotated[str, Field(min_length=1, max_length=200)]
    policy_type: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    violated_rule: Annotated[str, Field(min_length=1, max_length=1000)]
    severity: Severity = Severity.MEDIUM
    action_taken: ActionTaken | None = None
    reason: Annotated[str, Field(max_length=4000)] | None = None
    evaluated_value: Annotated[str, Field(max_length=4000)] | None = None
    threshold_condition: Annotated[str, Field(max_length=1000)] | None = None
    cause_type: CauseType = CauseType.LLM_RUN
    evidence: Annotated[dict[str, Any] | None, _json_size(MAX_EVIDENCE_BYTES, "evidence")] = None

    @property
    def effective_call_id(self) -> str:
        return self.event_id


class LifecycleCommand(_Contract):
    """An acknowledge or resolve command, published on `incident.commands`."""

    _nulls = null_means_default("schema_version", "issued_by", "resolution_method")

    command_id: Identifier
    tenant_id: TenantId
    incident_id: Annotated[str, Field(min_length=1, max_length=64)]
    action: CommandAction
    issued_at: UtcDatetime
    issued_by: Annotated[str, Field(min_length=1, max_length=200)] = "unknown"
    resolution_method: ResolutionMethod = ResolutionMethod.MANUAL
    note: Annotated[str, Field(max_length=4000)] | None = None
    schema_version: Literal[1] = 1


Signal = LlmCallFailure | PolicyViolation
Message = LlmCallFailure | PolicyViolation | LifecycleCommand


@dataclass(frozen=True, slots=True)
class Rejection:
    """A message that cannot be applied: the dead-letter reason and a human-readable detail."""

    reason: DeadLetterReason
    detail: str


def describe_validation_error(error: ValidationError) -> Rejection:
    """Map a pydantic error to `invalid_json` or `schema_violation`, naming the first bad field."""
    first = error.errors(include_url=False)[0]
    if first["type"] == "json_invalid":
        return Rejection(DeadLetterReason.INVALID_JSON, f"invalid JSON: {first['msg']}")
    field = ".".join(str(part) for part in first["loc"]) or "(message)"
    return Rejection(DeadLetterReason.SCHEMA_VIOLATION, f"{field}: {first['msg']}")


def parse_message(model: type[Message], raw: bytes | None) -> Message | Rejection:
    """Validate one raw Kafka value against `model`; never raises."""
    if raw is None:
        return Rejection(DeadLetterReason.INVALID_JSON, "empty message value")
    if len(raw) > MAX_MESSAGE_BYTES:
        return Rejection(
            DeadLetterReason.TOO_LARGE, f"{len(raw)} bytes exceeds the {MAX_MESSAGE_BYTES} limit"
        )
    try:
        return model.model_validate_json(raw)
    except ValidationError as error:
        return describe_validation_error(error)
    except (ValueError, UnicodeDecodeError) as error:  # e.g. non-UTF-8 bytes
        return Rejection(DeadLetterReason.INVALID_JSON, f"invalid JSON: {error}")


def message_time(message: Message) -> datetime:
    """The event time a message is ordered by: `occurred_at`, or a command's `issued_at`."""
    if isinstance(message, LifecycleCommand):
        return message.issued_at
    return message.occurred_at
