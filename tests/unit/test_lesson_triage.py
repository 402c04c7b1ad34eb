"""The lesson state machine, its command contract and the counts by state and kind."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from domain.contracts import DeadLetterReason, Rejection
from domain.lesson_triage import (
    LessonAction,
    LessonCommand,
    LessonState,
    Triage,
    apply_command,
    effective_state,
    lesson_stats,
    parse_command,
    stats_of_counts,
)

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
LESSON = uuid.UUID("0b9a6a34-5c2e-5d7f-9a1b-2c3d4e5f6a7b")
HOUR = timedelta(hours=1)


def command(action: str, at: datetime = T0, **fields: Any) -> LessonCommand:
    """A valid command of `action` at `at` (a deferral of an hour, a conversion to a draft);
    `fields` override or add wire fields."""
    given: dict[str, Any] = {
        "command_id": f"cmd-{action}-{at.isoformat()}",
        "tenant_id": "acme",
        "lesson_id": str(LESSON),
        "action": action,
        "issued_at": at.isoformat(),
        "issued_by": "alice",
    }
    if action == "defer":
        given["until"] = (at + HOUR).isoformat()
    if action == "convert":
        given["policy_draft"] = "block prompts over 8k tokens"
    return LessonCommand.model_validate(given | fields)


def triage(state: LessonState = LessonState.PENDING, **fields: Any) -> Triage:
    return Triage(LESSON, "acme", state, **fields)


VALID = {
    (LessonState.PENDING, LessonAction.DEFER): LessonState.DEFERRED,
    (LessonState.PENDING, LessonAction.DISMISS): LessonState.DISMISSED,
    (LessonState.PENDING, LessonAction.CONVERT): LessonState.CONVERTED,
    (LessonState.DEFERRED, LessonAction.REACTIVATE): LessonState.PENDING,
}


@pytest.mark.parametrize("state", list(LessonState))
@pytest.mark.parametrize("action", list(LessonAction))
def test_every_transition_is_applied_or_rejected_as_impossible(
    state: LessonState, action: LessonAction
) -> None:
    deferred = {"deferred_until": T0 + 2 * HOUR} if state is LessonState.DEFERRED else {}
    result = apply_command(triage(state, **deferred), command(action.value))
    target = VALID.get((state, action))
    if target is None:
        assert result == Rejection(
            DeadLetterReason.INVALID_TRANSITION,
            f"action: cannot {action.value} a lesson that is {state.value}",
        )
    else:
        assert isinstance(result, Triage)
        assert result.state is target


def test_an_applied_command_records_what_and_who() -> None:
    deferred = apply_command(triage(), command("defer", note="after the release"))
    assert deferred == Triage(
        LESSON,
        "acme",
        LessonState.DEFERRED,
        deferred_until=T0 + HOUR,
        policy_draft=None,
        changed_at=T0,
        changed_by="alice",
        note="after the release",
        commands=1,
    )
    converted = apply_command(triage(), command("convert"))
    assert isinstance(converted, Triage)
    assert converted.policy_draft == "block prompts over 8k tokens"
    assert converted.deferred_until is None
    back = apply_command(
        triage(LessonState.DEFERRED, deferred_until=T0 + HOUR), command("reactivate")
    )
    assert isinstance(back, Triage)
    assert (back.state, back.deferred_until) == (LessonState.PENDING, None)


def test_a_deferral_ends_by_event_time() -> None:
    until = T0 + HOUR
    deferred = triage(LessonState.DEFERRED, deferred_until=until)
    assert deferred.effective_state(until - timedelta(microseconds=1)) is LessonState.DEFERRED
    assert deferred.effective_state(until) is LessonState.PENDING
    assert effective_state("deferred", until, until + HOUR) is LessonState.PENDING
    assert effective_state("dismissed", None, until) is LessonState.DISMISSED


def test_a_command_is_evaluated_by_its_own_issued_at() -> None:
    deferred = triage(LessonState.DEFERRED, deferred_until=T0 + HOUR)
    expired = T0 + HOUR
    redeferred = apply_command(deferred, command("defer", at=expired))
    assert isinstance(redeferred, Triage)
    assert redeferred.deferred_until == expired + HOUR
    dismissed = apply_command(deferred, command("dismiss", at=expired))
    assert isinstance(dismissed, Triage) and dismissed.state is LessonState.DISMISSED
    too_late = apply_command(deferred, command("reactivate", at=expired))
    assert too_late == Rejection(
        DeadLetterReason.INVALID_TRANSITION, "action: cannot reactivate a lesson that is pending"
    )
    still = apply_command(deferred, command("dismiss", at=expired - timedelta(seconds=1)))
    assert isinstance(still, Rejection)
    assert still.detail == "action: cannot dismiss a lesson that is deferred"


def test_dismissed_and_converted_are_final() -> None:
    for final in (LessonState.DISMISSED, LessonState.CONVERTED):
        for action in LessonAction:
            result = apply_command(triage(final), command(action.value, at=T0 + 100 * HOUR))
            assert isinstance(result, Rejection)
            assert result.reason is DeadLetterReason.INVALID_TRANSITION


def test_an_unknown_lesson_or_another_tenants_is_unknown() -> None:
    expected = Rejection(
        DeadLetterReason.UNKNOWN_LESSON, f"lesson_id: no lesson {LESSON} in tenant acme"
    )
    assert apply_command(None, command("dismiss")) == expected
    assert apply_command(Triage(LESSON, "globex"), command("dismiss")) == expected
    assert apply_command(Triage(uuid.uuid4(), "acme"), command("dismiss")) == expected


def test_the_command_contract_reads_wire_json() -> None:
    raw = (
        b'{"command_id":"c-1","tenant_id":"acme","lesson_id":"'
        + str(LESSON).encode()
        + b'","action":"defer","issued_at":"2026-11-22T11:00:00+01:00",'
        b'"until":"2026-11-23T10:00:00Z","issued_by":null,"note":null,"extra":{"x":1}}'
    )
    parsed = LessonCommand.model_validate_json(raw)
    assert parsed.issued_at == T0
    assert parsed.issued_at.tzinfo is UTC
    assert parsed.issued_by == "unknown"
    assert parsed.action is LessonAction.DEFER
    assert parsed.until == T0 + 24 * HOUR


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"action": "defer", "until": None}, "until: required to defer"),
        ({"action": "defer", "until": T0.isoformat()}, "until: must be after issued_at"),
        ({"action": "dismiss", "until": (T0 + HOUR).isoformat()}, "until: only with defer"),
        ({"action": "convert", "policy_draft": None}, "policy_draft: required to convert"),
        ({"action": "dismiss", "policy_draft": "x"}, "policy_draft: only with convert"),
        ({"action": "snooze"}, "action"),
        ({"lesson_id": "not-a-uuid"}, "lesson_id"),
        ({"tenant_id": "bad tenant"}, "tenant_id"),
        ({"command_id": ""}, "command_id"),
        ({"command_id": "c\x00"}, "command_id"),
        ({"issued_by": "al\x00ice"}, "issued_by"),
        ({"note": "x" * 4001}, "note"),
        ({"note": "\x00"}, "note"),
        ({"issued_at": "2026-11-22T10:00:00"}, "issued_at"),
        ({"issued_at": "0001-01-01T00:00:00+01:00"}, "issued_at"),
        ({"schema_version": 2}, "schema_version"),
    ],
)
def test_the_command_contract_refuses_bad_commands_naming_the_field(
    fields: dict[str, Any], message: str
) -> None:
    fields = dict(fields)
    action = fields.pop("action", "dismiss")
    with pytest.raises(ValidationError) as raised:
        command(action, **fields)
    assert message in str(raised.value)


@dataclass(frozen=True)
class Row:
    kind: str
    state: str
    deferred_until: datetime | None = None


def test_stats_count_effective_states_and_kinds() -> None:
    rows = [
        Row("reopened", "pending"),
        Row("reopened", "deferred", T0 - HOUR),
        Row("reopened", "deferred", T0 + HOUR),
        Row("overflow", "dismissed"),
        Row("severe_incident_resolved", "converted"),
    ]
    stats = lesson_stats(rows, at=T0)
    assert stats.total == 5
    assert stats.by_state == {"pending": 2, "deferred": 1, "dismissed": 1, "converted": 1}
    assert stats.by_kind == {
        "severe_incident_resolved": 1,
        "reopened": 3,
        "recurring_fingerprint": 0,
        "overflow": 1,
    }
    assert stats.by_kind_and_state["reopened"] == {
        "pending": 2,
        "deferred": 1,
        "dismissed": 0,
        "converted": 0,
    }
    assert lesson_stats(reversed(rows), at=T0) == stats
    empty = lesson_stats([], at=T0)
    assert empty.total == 0
    assert set(empty.by_kind) == {
        "severe_incident_resolved",
        "reopened",
        "recurring_fingerprint",
        "overflow",
    }


def test_wire_bytes_are_read_or_refused_with_a_reason() -> None:
    valid = command("defer").model_dump_json().encode()
    parsed = parse_command(valid)
    assert isinstance(parsed, LessonCommand) and parsed.until == T0 + HOUR
    assert parse_command(None) == Rejection(DeadLetterReason.INVALID_JSON, "empty message value")
    refused = {
        b"{nope": DeadLetterReason.INVALID_JSON,
        b"\xff\xfe": DeadLetterReason.INVALID_JSON,
        b" " * (1024 * 1024 + 1): DeadLetterReason.TOO_LARGE,
        b'{"command_id": "c", "tenant_id": "acme"}': DeadLetterReason.SCHEMA_VIOLATION,
        valid.replace(b'"alice"', b'"al\\u0000ice"'): DeadLetterReason.SCHEMA_VIOLATION,
    }
    for raw, reason in refused.items():
        rejection = parse_command(raw)
        assert isinstance(rejection, Rejection) and rejection.reason is reason, raw[:40]
    missing = parse_command(b'{"command_id": "c", "tenant_id": "acme"}')
    assert isinstance(missing, Rejection) and missing.detail.startswith("lesson_id: ")
    nul = parse_command(valid.replace(b'"alice"', b'"al\\u0000ice"'))
    assert isinstance(nul, Rejection) and nul.detail.startswith("issued_by: ")


def test_stats_of_grouped_counts_equal_the_fold() -> None:
    rows = [Row("reopened", "pending"), Row("reopened", "pending"), Row("overflow", "dismissed")]
    grouped = stats_of_counts({("reopened", "pending"): 2, ("overflow", "dismissed"): 1})
    assert grouped == lesson_stats(rows, at=T0)
    assert grouped.by_state["pending"] == 2 and grouped.total == 3
