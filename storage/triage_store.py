"""Lesson commands applied in PostgreSQL: one transaction per batch, idempotent by command id.

`TriageStore.apply` applies each command id of a tenant once (`lesson_commands` keeps the applied
ones), each against the lesson's triage state at its own `issued_at`
(`domain.lesson_triage.apply_command`), in the order given. What cannot be applied
(`unknown_lesson`, `invalid_transition`) is written to `dead_letters` with its reason and detail,
never applied. Nothing is written if anything fails, so the caller acks only after it returns.

The lessons are locked first (transaction-scoped advisory locks, sorted, in a key space of their
own), so that two workers applying commands of one lesson during a rebalance serialise.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from domain.contracts import Rejection
from domain.lesson_triage import LessonCommand, LessonState, Triage, apply_command
from storage.analytics_schema import lesson_commands, lesson_triage, lessons
from storage.analytics_store import save_dead_letters
from storage.effects import DeadLetterRow
from storage.lessons_store import lock, lock_key

TRIAGE_LOCKS = 12_002
"""Advisory lock class of a lesson whose triage commands are applied."""


@dataclass(frozen=True, slots=True)
class CommandMessage:
    """A consumed lesson commands record and the command it holds."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    command: LessonCommand


@dataclass(slots=True)
class TriageResult:
    """What `TriageStore.apply` did: commands applied, duplicates skipped, and every dead letter
    written (the rejected commands' and those given), for their copies on the topic."""

    applied: int = 0
    duplicates: int = 0
    dead_letters: list[DeadLetterRow] = field(default_factory=list)


class TriageStore:
    """The lesson commands consumer's view of PostgreSQL."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def apply(
        self, commands: Sequence[CommandMessage], dead_letters: Sequence[DeadLetterRow] = ()
    ) -> TriageResult:
        """Apply `commands` in order and record `dead_letters`, in one transaction."""
        result = TriageResult(dead_letters=list(dead_letters))
        async with self._engine.begin() as conn:
            if commands:
                keys = (lock_key(str(message.command.lesson_id)) for message in commands)
                await lock(conn, TRIAGE_LOCKS, keys)
                await self._apply(conn, commands, result)
            if result.dead_letters:
                await save_dead_letters(conn, result.dead_letters)
        return result

    async def _apply(
        self, conn: AsyncConnection, commands: Sequence[CommandMessage], result: TriageResult
    ) -> None:
        seen = await _applied_ids(conn, {_key(message.command) for message in commands})
        known = await _lesson_states(conn, {message.command.lesson_id for message in commands})
        changed: dict[uuid.UUID, Triage] = {}
        applied: list[dict[str, Any]] = []
        for message in commands:
            command = message.command
            if _key(command) in seen:
                result.duplicates += 1
                continue
            outcome = apply_command(known.get(command.lesson_id), command)
            if isinstance(outcome, Rejection):
                result.dead_letters.append(_rejected(message, outcome))
                continue
            seen.add(_key(command))
            known[command.lesson_id] = changed[command.lesson_id] = outcome
            applied.append(_command_row(command))
        result.applied = len(applied)
        if changed:
            await _save_triage(conn, list(changed.values()))
        if applied:
            await conn.execute(insert(lesson_commands).on_conflict_do_nothing(), applied)


def _key(command: LessonCommand) -> tuple[str, str]:
    """A command's idempotency key: its id within its tenant."""
    return (command.tenant_id, command.command_id)


async def _applied_ids(conn: AsyncConnection, keys: set[tuple[str, str]]) -> set[tuple[str, str]]:
    c = lesson_commands.c
    rows = await conn.execute(
        select(c.tenant_id, c.command_id).where(tuple_(c.tenant_id, c.command_id).in_(sorted(keys)))
    )
    return {(tenant, command_id) for tenant, command_id in rows}


async def _lesson_states(conn: AsyncConnection, ids: set[uuid.UUID]) -> dict[uuid.UUID, Triage]:
    """The triage state of each of the lessons that exists (of its own tenant)."""
    t = lesson_triage.c
    rows = await conn.execute(
        select(lessons.c.lesson_id, lessons.c.tenant_id, t.state, t.deferred_until,
               t.policy_draft, t.changed_at, t.changed_by, t.note, t.commands)
        .outerjoin_from(lessons, lesson_triage, t.lesson_id == lessons.c.lesson_id)
        .where(lessons.c.lesson_id.in_(sorted(ids)))
    )  # fmt: skip
    return {row.lesson_id: _triage(row) for row in rows}


def _triage(row: Any) -> Triage:
    if row.state is None:
        return Triage(row.lesson_id, row.tenant_id)
    return Triage(
        row.lesson_id, row.tenant_id, LessonState(row.state), row.deferred_until,
        row.policy_draft, row.changed_at, row.changed_by, row.note, row.commands,
    )  # fmt: skip


async def _save_triage(conn: AsyncConnection, states: list[Triage]) -> None:
    rows = [
        {
            "lesson_id": state.lesson_id,
            "tenant_id": state.tenant_id,
            "state": state.state.value,
            "deferred_until": state.deferred_until,
            "policy_draft": state.policy_draft,
            "changed_at": state.changed_at,
            "changed_by": state.changed_by,
            "note": state.note,
            "commands": state.commands,
        }
        for state in sorted(states, key=lambda state: state.lesson_id)
    ]
    statement = insert(lesson_triage)
    updated = [name for name in rows[0] if name != "lesson_id"]
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=["lesson_id"], set_={name: statement.excluded[name] for name in updated}
        ),
        rows,
    )


def _command_row(command: LessonCommand) -> dict[str, Any]:
    return {
        "tenant_id": command.tenant_id,
        "command_id": command.command_id,
        "lesson_id": command.lesson_id,
        "action": command.action.value,
        "issued_at": command.issued_at,
        "issued_by": command.issued_by,
        "until": command.until,
        "policy_draft": command.policy_draft,
        "note": command.note,
    }


def _rejected(message: CommandMessage, rejection: Rejection) -> DeadLetterRow:
    return DeadLetterRow(
        message.topic, message.partition, message.offset, message.key, rejection.reason.value,
        rejection.detail, message.value,
    )  # fmt: skip
