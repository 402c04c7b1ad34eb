"""The `incident.changes` contract: one incident snapshot after a change.

`IncidentSnapshot` is the one definition of the incident record's fields: their names, order,
types and meaning. The aggregator writes the value with `Incident.snapshot()` (a plain dict, built
without validation on the hot path; a test proves that it validates); the stream processors and
any downstream consumer read it with `parse_snapshot`. The `incidents` table holds the same fields
(plus `partition` and `updated_at`), and the row mapping and the API's incident bodies take their
field names, and the API its types, from this model.

Times are RFC 3339 strings with an offset, counts are integers (not strings, not booleans) >= 0,
`cost_usd` is a finite decimal as a string or a number. Fields the
aggregator always writes but the processors never read may be absent or null: they take the value
an incident without them has (`opened_at` is then `started_at`). Unknown fields are ignored.
"""

from __future__ import annotations

import re
import uuid
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

from domain.contracts import (
    DeadLetterReason,
    Rejection,
    Severity,
    describe_validation_error,
    null_means_default,
)
from domain.incidents import LifecycleState


def _value_of(values: type[StrEnum]) -> tuple[StringConstraints, WithJsonSchema]:
    """A string that must be one of `values`' values (kept as the plain string), documented with
    the values in place. A pattern, so that pydantic checks it without calling Python."""
    names = [member.value for member in values]
    pattern = "^(" + "|".join(re.escape(name) for name in names) + ")$"
    return StringConstraints(pattern=pattern), WithJsonSchema({"enum": names, "type": "string"})


SeverityName = Annotated[str, *_value_of(Severity)]
StateName = Annotated[str, *_value_of(LifecycleState)]


def _text_time(value: Any) -> Any:
    """Times are RFC 3339 strings: a number (which pydantic would read as unix seconds) is not."""
    if isinstance(value, int | float):
        raise ValueError("a time must be an RFC 3339 string with an offset")
    return value


Time = Annotated[AwareDatetime, BeforeValidator(_text_time)]
Count = Annotated[int, Field(ge=0, strict=True)]
Amount = Annotated[Decimal, Field(allow_inf_nan=False)]


class BreakdownShare(BaseModel):
    """Calls and cost of one provider/model or agent within an incident."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    calls: Count
    cost_usd: Amount


class IncidentSnapshot(BaseModel):
    """An incident as the change feed carries it after each change; `version` orders them.

    `opened_at` is when the incident was created (absent or null: `started_at`).
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    _nulls = null_means_default(
        "fingerprint", "fingerprints", "title", "related_call_ids", "run_ids", "absorbed",
        "is_synthetic", "breakdown",
    )  # fmt: skip

    incident_id: uuid.UUID
    tenant_id: str
    trigger_type: str
    fingerprint: str = ""
    fingerprints: list[str] = Field(default_factory=list)
    category: str
    cause_type: str
    title: str = ""
    severity: SeverityName
    lifecycle_state: StateName
    started_at: Time
    opened_at: Time = Field(default=None, validate_default=True)
    last_event_at: Time
    acked_at: Time | None = None
    acked_by: str | None = None
    resolved_at: Time | None = None
    resolved_by: str | None = None
    resolution_method: str | None = None
    calls_affected: Count
    related_call_ids: list[str] = Field(default_factory=list)
    run_ids: list[str] = Field(
        default_factory=list, description="Run ids behind the incident (the first M)."
    )
    cost_usd: Amount
    reopen_count: Count
    absorbed: dict[str, dict[str, int]] = Field(
        default_factory=dict,
        description="Overflow incident only: calls per absorbed trigger type and fingerprint.",
    )
    is_synthetic: Annotated[bool, Field(strict=True)] = False
    breakdown: dict[str, dict[str, BreakdownShare]] = Field(
        default_factory=dict,
        description="Calls and cost by `model` (provider/model) and `agent`, top 50 + `other`.",
    )
    version: Count

    @field_validator("opened_at", mode="before")
    @classmethod
    def _opened_when_started(cls, value: Any, info: ValidationInfo) -> Any:
        return info.data.get("started_at") if value is None else value


SNAPSHOT_FIELDS: tuple[str, ...] = tuple(IncidentSnapshot.model_fields)
"""The incident record's field names, in snapshot order."""


def parse_snapshot(raw: bytes | str | None) -> IncidentSnapshot | Rejection:
    """Validate one `incident.changes` value (None: a message without one); never raises.

    A value that is not JSON is `invalid_json`, one that is not a snapshot `schema_violation`,
    with a detail naming the first field at fault.
    """
    try:
        return IncidentSnapshot.model_validate_json(raw or b"")
    except ValidationError as error:
        return describe_validation_error(error)
    except ValueError as error:  # e.g. bytes that are not UTF-8
        return Rejection(DeadLetterReason.INVALID_JSON, f"invalid JSON: {error}")
