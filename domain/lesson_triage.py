"""Triage of lessons: the state machine, the command that drives it, and counts. Pure.

States and transitions (anything else is an impossible transition):

| from | `defer` (until T) | `dismiss` | `convert` (to a policy draft) | `reactivate` |
|---|---|---|---|---|
| `pending` | `deferred` until T | `dismissed` | `converted` | impossible |
| `deferred` | impossible | impossible | impossible | `pending` |
| `dismissed`, `converted` | final: impossible | | | |

A deferred lesson is also `pending` again once its time has come, by event time: its *effective*
state at a time `at` is `pending` when `deferred_until <= at` (`effective_state`), so replays
agree and nothing needs to run when the time passes. A command is evaluated against the effective
state at its own `issued_at`: deferring a lesson whose deferral ran out is allowed, reactivating
it is not (it is pending already).

Commands arrive on Kafka as `LessonCommand` JSON (`parse_command` reads the wire bytes); the
consumer applies each `command_id` of a tenant once (it keeps the applied ids, as the aggregator
does for lifecycle commands), calls `apply_command` for a new one and dead-letters the `Rejection`
it returns, `invalid_transition` or `unknown_lesson` (also for another tenant's lesson: existence
is not revealed). Only applied commands are kept: a rejected one sent again is evaluated again.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from domain.contracts import (
    DeadLetterReason,
    Rejection,
    TenantId,
    UtcDatetime,
    null_means_default,
    parse_message,
)
from domain.lessons import LessonKind

NO_NUL = r"^[^\x00]*$"
"""PostgreSQL text cannot hold U+0000: such a value is a schema violation, not a crash later."""


class LessonState(StrEnum):
    PENDING = "pending"
    DEFERRED = "deferred"
    DISMISSED = "dismissed"
    CONVERTED = "converted"


FINAL_STATES = (LessonState.DISMISSED, LessonState.CONVERTED)


class LessonAction(StrEnum):
    DEFER = "defer"
    DISMISS = "dismiss"
    CONVERT = "convert"
    REACTIVATE = "reactivate"


_TRANSITIONS: dict[tuple[LessonState, LessonAction], LessonState] = {
    (LessonState.PENDING, LessonAction.DEFER): LessonState.DEFERRED,
    (LessonState.PENDING, LessonAction.DISMISS): LessonState.DISMISSED,
    (LessonState.PENDING, LessonAction.CONVERT): LessonState.CONVERTED,
    (LessonState.DEFERRED, LessonAction.REACTIVATE): LessonState.PENDING,
}


Text = Annotated[str, Field(min_length=1, max_length=200, pattern=NO_NUL)]


class LessonCommand(BaseModel):
    """A triage command for one lesson (schema_version 1), published on the lesson commands
    topic keyed by `tenant_id`. `command_id` is the idempotency key within the tenant. `until`
    (the end of a deferral) is given with `defer` only and must be after `issued_at`;
    `policy_draft` (a policy name or text) with `convert` only. Unknown fields are ignored; an
    optional field set to null is absent."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    _nulls = null_means_default("issued_by", "schema_version")

    command_id: Annotated[str, Field(min_length=1, max_length=128, pattern=NO_NUL)]
    tenant_id: TenantId
    lesson_id: uuid.UUID
    action: LessonAction
    issued_at: UtcDatetime
    issued_by: Text = "unknown"
    until: UtcDatetime | None = None
    policy_draft: Annotated[str, Field(min_length=1, max_length=4000, pattern=NO_NUL)] | None = None
    note: Annotated[str, Field(max_length=4000, pattern=NO_NUL)] | None = None
    schema_version: Literal[1] = 1

    @model_validator(mode="after")
    def _fields_of_the_action(self) -> LessonCommand:
        if self.action is LessonAction.DEFER:
            if self.until is None:
                raise ValueError("until: required to defer")
            if self.until <= self.issued_at:
                raise ValueError("until: must be after issued_at")
        elif self.until is not None:
            raise ValueError(f"until: only with defer, not {self.action.value}")
        if self.action is LessonAction.CONVERT and self.policy_draft is None:
            raise ValueError("policy_draft: required to convert")
        if self.action is not LessonAction.CONVERT and self.policy_draft is not None:
            raise ValueError(f"policy_draft: only with convert, not {self.action.value}")
        return self


@dataclass(frozen=True, slots=True)
class Triage:
    """The triage state of one lesson, as the lesson state table keeps it. A lesson that no
    command touched yet is `Triage(lesson_id, tenant_id)`: pending."""

    lesson_id: uuid.UUID
    tenant_id: str
    state: LessonState = LessonState.PENDING
    deferred_until: datetime | None = None
    policy_draft: str | None = None
    changed_at: datetime | None = None
    changed_by: str | None = None
    note: str | None = None
    commands: int = 0
    """Commands applied so far: a version, for readers that cache."""

    def effective_state(self, at: datetime) -> LessonState:
        return effective_state(self.state, self.deferred_until, at)


def effective_state(state: str, deferred_until: datetime | None, at: datetime) -> LessonState:
    """The state at event time `at`: a deferral whose time has come is `pending` again."""
    current = LessonState(state)
    if current is LessonState.DEFERRED and deferred_until is not None and deferred_until <= at:
        return LessonState.PENDING
    return current


def parse_command(raw: bytes | None) -> LessonCommand | Rejection:
    """Validate one lesson commands topic value (None: a message without one) as the input
    topics' values are (`parse_message`); never raises.

    Not JSON (or no value) is `invalid_json`, over `MAX_MESSAGE_BYTES` `too_large`, not a command
    `schema_violation`, the detail naming the first field at fault.
    """
    return parse_message(LessonCommand, raw)


def apply_command(triage: Triage | None, command: LessonCommand) -> Triage | Rejection:
    """The lesson's new triage state after a new (not duplicate) `command`, or why not.

    `triage` is the state of the lesson named by the command, or None when no lesson of that id
    exists. A lesson of another tenant is `unknown_lesson`, as if it did not exist.
    """
    if (
        triage is None
        or triage.lesson_id != command.lesson_id
        or triage.tenant_id != command.tenant_id
    ):
        return Rejection(
            DeadLetterReason.UNKNOWN_LESSON,
            f"lesson_id: no lesson {command.lesson_id} in tenant {command.tenant_id}",
        )
    current = triage.effective_state(command.issued_at)
    target = _TRANSITIONS.get((current, command.action))
    if target is None:
        return Rejection(
            DeadLetterReason.INVALID_TRANSITION,
            f"action: cannot {command.action.value} a lesson that is {current.value}",
        )
    return replace(
        triage,
        state=target,
        deferred_until=command.until if target is LessonState.DEFERRED else None,
        policy_draft=command.policy_draft if target is LessonState.CONVERTED else None,
        changed_at=command.issued_at,
        changed_by=command.issued_by,
        note=command.note,
        commands=triage.commands + 1,
    )


class TriageRecord(Protocol):
    """What `lesson_stats` reads of a lesson (a joined lessons / lesson states row qualifies)."""

    @property
    def kind(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def deferred_until(self) -> datetime | None: ...


@dataclass(frozen=True, slots=True)
class LessonStats:
    """Counts of lessons by effective state and by kind; every state and kind is present."""

    total: int = 0
    by_state: dict[str, int] = field(default_factory=dict)
    by_kind: dict[str, int] = field(default_factory=dict)
    by_kind_and_state: dict[str, dict[str, int]] = field(default_factory=dict)


def lesson_stats(lessons: Iterable[TriageRecord], at: datetime) -> LessonStats:
    """Count `lessons` by their effective state at `at` and by kind (a fold: any order)."""
    counts = Counter(
        (lesson.kind, effective_state(lesson.state, lesson.deferred_until, at).value)
        for lesson in lessons
    )
    return stats_of_counts(counts)


def stats_of_counts(counts: Mapping[tuple[str, str], int]) -> LessonStats:
    """The stats of lessons counted by (kind, effective state), as a query groups them."""
    states = [state.value for state in LessonState]
    kinds = [kind.value for kind in LessonKind]
    matrix = {kind: dict.fromkeys(states, 0) for kind in kinds}
    for (kind, state), count in counts.items():
        matrix.setdefault(kind, dict.fromkeys(states, 0))[state] += count
    by_state = {state: sum(row[state] for row in matrix.values()) for state in states}
    by_kind = {kind: sum(row.values()) for kind, row in matrix.items()}
    return LessonStats(sum(by_kind.values()), by_state, by_kind, matrix)
