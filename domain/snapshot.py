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
an incident without them has (`opened_at` is then `started_at`; the context fields, which a
snapshot written before they existed lacks, are null or empty). Unknown fields are ignored.

"First" and "latest" in the context fields follow the order in which the rules apply events (the
time merge of a partition's topics), not `occurred_at`: a late event applied after others is the
latest even if it happened earlier. A reopen keeps them.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
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
    ActionTaken,
    DeadLetterReason,
    Rejection,
    Severity,
    describe_validation_error,
    null_means_default,
)
from domain.incidents import AGENT_IDS_LIMIT, LifecycleState


def _value_of(values: type[StrEnum]) -> tuple[StringConstraints, WithJsonSchema]:
    """A string that must be one of `values`' values (kept as the plain string), documented with
    the values in place. A pattern, so that pydantic checks it without calling Python."""
    names = [member.value for member in values]
    pattern = "^(" + "|".join(re.escape(name) for name in names) + ")$"
    return StringConstraints(pattern=pattern), WithJsonSchema({"enum": names, "type": "string"})


SeverityName = Annotated[str, *_value_of(Severity)]
StateName = Annotated[str, *_value_of(LifecycleState)]
ActionName = Annotated[str, *_value_of(ActionTaken)]


def _text_time(value: Any) -> Any:
    """Times are RFC 3339 strings: a number (which pydantic would read as unix seconds) is not."""
    if isinstance(value, int | float):
        raise ValueError("a time must be an RFC 3339 string with an offset")
    return value


Time = Annotated[AwareDatetime, BeforeValidator(_text_time)]
Count = Annotated[int, Field(ge=0, strict=True)]
Amount = Annotated[Decimal, Field(allow_inf_nan=False)]


def _error(which: str, part: str) -> Any:
    """A context field of the first or latest error: null by default."""
    return Field(
        default=None,
        description=f"error_{part} of the {which} LLM failure that carried an error_code or "
        "an error_message, in the order the rules applied events; null if none did.",
    )


def _violation(which: str, name: str) -> Any:
    """A context field of the first or latest policy violation: null by default."""
    default = " (default: its event_id)" if name == "violation_id" else ""
    return Field(
        default=None,
        description=f"{name}{default} of the {which} policy violation, in the order the rules "
        "applied events; null if the incident had none.",
    )


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
        "is_synthetic", "breakdown", "agent_ids",
    )  # fmt: skip

    incident_id: uuid.UUID
    tenant_id: str
    trigger_type: str
    fingerprint: str = ""
    fingerprints: list[str] = Field(default_factory=list)
    category: str
    cause_type: str
    title: str = ""
    description: str | None = Field(
        default=None,
        description="One line: what, where, how many calls, since when (UTC, to the minute). "
        "Written from the incident's state each time it changes, so a replay writes the same.",
    )
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
    source_run_id: str | None = Field(
        default=None, description="The run of the event that opened the incident."
    )
    agent_ids: list[str] = Field(
        default_factory=list,
        description=f"Affected agents: the first {AGENT_IDS_LIMIT} distinct agent_id values, in "
        "the order the rules applied their events (events without one add none).",
    )
    cost_usd: Amount
    reopen_count: Count
    absorbed: dict[str, dict[str, int]] = Field(
        default_factory=dict,
        description="Overflow incident only: calls per absorbed trigger type and fingerprint.",
    )
    is_synthetic: Annotated[bool, Field(strict=True)] = False
    synthetic_scenario_id: str | None = Field(
        default=None, description="The synthetic_scenario_id of the event that opened it."
    )
    breakdown: dict[str, dict[str, BreakdownShare]] = Field(
        default_factory=dict,
        description="Calls and cost by `model` (provider/model) and `agent`, top 50 + `other`.",
    )
    first_error_code: str | None = _error("first", "code")
    first_error_message: str | None = _error("first", "message")
    latest_error_code: str | None = _error("latest", "code")
    latest_error_message: str | None = _error("latest", "message")
    first_policy_id: str | None = _violation("first", "policy_id")
    first_violation_id: str | None = _violation("first", "violation_id")
    first_violated_rule: str | None = _violation("first", "violated_rule")
    first_action_taken: ActionName | None = _violation("first", "action_taken")
    latest_policy_id: str | None = _violation("latest", "policy_id")
    latest_violation_id: str | None = _violation("latest", "violation_id")
    latest_violated_rule: str | None = _violation("latest", "violated_rule")
    latest_action_taken: ActionName | None = _violation("latest", "action_taken")
    version: Count

    @field_validator("opened_at", mode="before")
    @classmethod
    def _opened_when_started(cls, value: Any, info: ValidationInfo) -> Any:
        return info.data.get("started_at") if value is None else value


SNAPSHOT_FIELDS: tuple[str, ...] = tuple(IncidentSnapshot.model_fields)
"""The incident record's field names, in snapshot order."""


def resolved_at(snapshot: IncidentSnapshot) -> datetime | None:
    """When the incident was resolved, if it is: RESOLVED with a resolution time."""
    if snapshot.lifecycle_state != LifecycleState.RESOLVED:
        return None
    return snapshot.resolved_at


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
