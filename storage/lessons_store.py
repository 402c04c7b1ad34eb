"""The lessons processor's assembly of `lessons`, inside the stream processors' transaction.

`refresh_lessons` runs in `storage.analytics_store`'s transaction, after the batch's member rows
are written: it rebuilds the `lessons` rows that the batch's changes can have changed, from the
`lesson_members` rows that came and went and, for `recurring_fingerprint`, from every
`recurrence_fingerprints` row of the fingerprints involved. A lesson whose rule no longer holds is
deleted (its triage state stays in `lesson_triage`); an unchanged one is not rewritten.

The fingerprints are locked first (transaction-scoped advisory locks, sorted, in a key space of
their own: the two-integer form never meets the incidents' one-integer locks), so that two
workers applying incidents of one fingerprint during a rebalance serialise instead of each
writing a recurring lesson that misses the other's incident.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, or_, select, text, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.config import AggregationConfig
from domain.lessons import (
    Lesson,
    LessonKind,
    LessonMember,
    assemble_lessons,
    incident_lesson,
    lesson_id,
)
from storage.analytics_schema import lessons, recurrence_fingerprints

FINGERPRINT_LOCKS = 12_001
"""Advisory lock class of a (tenant, fingerprint) whose recurring lesson is rebuilt."""

_LESSON_COLUMNS = [column.name for column in lessons.columns if not column.primary_key]


def lock_key(*parts: str) -> int:
    """A stable signed 32-bit key (Python's `hash` differs between processes)."""
    digest = hashlib.blake2b("\x00".join(parts).encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big", signed=True)


async def lock(conn: AsyncConnection, lock_class: int, keys: Iterable[int]) -> None:
    """Take the transaction's advisory locks `(lock_class, key)`, in key order (no deadlock
    between transactions that lock overlapping sets)."""
    ordered = sorted(set(keys))
    if ordered:
        await conn.execute(
            text("SELECT pg_advisory_xact_lock(:class, k) FROM unnest(CAST(:keys AS int[])) AS k"),
            {"class": lock_class, "keys": ordered},
        )


@dataclass(slots=True)
class LessonChanges:
    """What a batch of the lessons processor changed: member rows and fingerprints."""

    removed: set[LessonMember] = field(default_factory=set)
    added: set[LessonMember] = field(default_factory=set)
    fingerprints: set[tuple[str, str]] = field(default_factory=set)
    """(tenant, fingerprint) of the old and new snapshots' `recurrence_fingerprints` rows."""

    def __bool__(self) -> bool:
        return bool(self.removed or self.added or self.fingerprints)


async def refresh_lessons(
    conn: AsyncConnection, changes: LessonChanges, rules: AggregationConfig
) -> None:
    """Rebuild the lessons `changes` touch (see the module docstring)."""
    if not changes:
        return
    assembled = [incident_lesson(member, rules) for member in changes.added]
    kept = {lesson.lesson_id for lesson in assembled}
    gone = {lesson_id(m.kind, m.tenant_id, m.subject) for m in changes.removed} - kept
    if changes.fingerprints:
        await lock(conn, FINGERPRINT_LOCKS, (lock_key(*pair) for pair in changes.fingerprints))
        recurring = assemble_lessons((), await _fingerprint_rows(conn, changes.fingerprints), rules)
        assembled += recurring
        recurring_ids = {lesson.lesson_id for lesson in recurring}
        kind = LessonKind.RECURRING_FINGERPRINT
        gone |= {lesson_id(kind, *pair) for pair in changes.fingerprints} - recurring_ids
    if gone:
        await conn.execute(delete(lessons).where(lessons.c.lesson_id.in_(sorted(gone))))
    await _upsert_lessons(conn, assembled)


async def _fingerprint_rows(conn: AsyncConnection, pairs: set[tuple[str, str]]) -> list[Any]:
    rf = recurrence_fingerprints.c
    rows = await conn.execute(
        select(
            rf.tenant_id, rf.fingerprint, rf.incident_id, rf.category, rf.started_at,
            rf.last_event_at,
        ).where(tuple_(rf.tenant_id, rf.fingerprint).in_(sorted(pairs)))
    )  # fmt: skip
    return list(rows)


def lesson_row(lesson: Lesson) -> dict[str, Any]:
    """The `lessons` row of an assembled lesson."""
    return {
        "lesson_id": lesson.lesson_id,
        "tenant_id": lesson.tenant_id,
        "kind": lesson.kind.value,
        "subject": lesson.subject,
        "incident_ids": list(lesson.incident_ids),
        "incident_count": len(lesson.incident_ids),
        "proposed_action": lesson.proposed_action,
        "first_seen": lesson.first_seen,
        "last_seen": lesson.last_seen,
    }


async def _upsert_lessons(conn: AsyncConnection, assembled: Sequence[Lesson]) -> None:
    if not assembled:
        return
    rows = sorted((lesson_row(lesson) for lesson in assembled), key=lambda row: row["lesson_id"])
    statement = insert(lessons)
    excluded = statement.excluded
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=["lesson_id"],
            set_={name: excluded[name] for name in _LESSON_COLUMNS},
            where=or_(
                *(lessons.c[name].is_distinct_from(excluded[name]) for name in _LESSON_COLUMNS)
            ),
        ),
        rows,
    )
