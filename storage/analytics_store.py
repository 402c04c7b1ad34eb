"""The stream processors' tables: a batch of incident snapshots applied in one transaction.

`AnalyticsStore.apply` takes the decoded change messages of a batch and, in one transaction:

1. locks the batch's incidents (transaction-scoped advisory locks, in id order), so that two
   workers applying the same incident during a rebalance serialise instead of double counting;
2. per processor (`domain.analytics.PROCESSORS`) loads its stored snapshots of those incidents and
   keeps per incident the highest version in the batch that is newer than the stored one;
3. adds the counter differences (`new - old`) with `INSERT ... ON CONFLICT DO UPDATE SET c = c +
   excluded.c`, deletes counter rows that no incident falls in any more, replaces the incidents'
   membership rows, and saves the new snapshots;
4. refreshes the `lessons` the batch's lesson members and fingerprints touch
   (`storage.lessons_store`);
5. records undecodable messages in `dead_letters`.

Nothing is written if anything fails, so the caller acks the messages only after `apply` returns.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import Table, Text, cast, delete, func, select, text, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from domain import analytics
from domain.analytics import (
    Contribution,
    Counters,
    FingerprintMember,
    Member,
    RowKey,
)
from domain.config import AggregationConfig
from domain.lessons import LessonMember
from domain.metrics import SlaTargets
from domain.snapshot import IncidentSnapshot
from storage import analytics_schema, schema
from storage.effects import DeadLetterRow, dead_letter_values
from storage.lessons_store import LessonChanges, refresh_lessons

COUNTER_TABLES: dict[str, Table] = {
    analytics.ROLLUPS: analytics_schema.incident_rollups_hourly,
    analytics.RECURRENCE: analytics_schema.recurrence_daily,
    analytics.COSTS: analytics_schema.cost_daily,
}
MEMBER_TABLES: dict[str, Table] = {
    analytics.RECURRENCE: analytics_schema.recurrence_fingerprints,
    analytics.PATTERNS: analytics_schema.pattern_members,
    analytics.LESSONS: analytics_schema.lesson_members,
}
OCCUPANCY_COLUMNS = {
    analytics_schema.incident_rollups_hourly.name: "started",
    analytics_schema.recurrence_daily.name: "incidents",
    analytics_schema.cost_daily.name: "incidents",
}
"""Per counter table, the counter that is zero exactly when no incident falls in the row."""


@dataclass(slots=True)
class AppliedBatch:
    """What `apply` did: per processor, how many snapshots it applied and how many it skipped."""

    applied: dict[str, int] = field(default_factory=dict)
    stale: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class _Plan:
    """The writes of one transaction, gathered before any is sent."""

    counters: dict[str, dict[RowKey, Counters]] = field(default_factory=dict)
    removed_members: dict[str, set[Member]] = field(default_factory=dict)
    added_members: dict[str, set[Member]] = field(default_factory=dict)
    snapshots: list[dict[str, Any]] = field(default_factory=list)
    lessons: LessonChanges = field(default_factory=LessonChanges)


class AnalyticsStore:
    """The processors' view of PostgreSQL. `rules` are the aggregation rules the lessons'
    proposed actions name (their settings, e.g. the hourly cap)."""

    def __init__(
        self,
        engine: AsyncEngine,
        sla: SlaTargets,
        processors: Sequence[str] = analytics.PROCESSORS,
        rules: AggregationConfig | None = None,
    ) -> None:
        self._engine = engine
        self._sla = sla
        self._processors = tuple(processors)
        self._rules = rules or AggregationConfig()

    async def apply(
        self,
        snapshots: Sequence[IncidentSnapshot],
        dead_letters: Sequence[DeadLetterRow] = (),
    ) -> AppliedBatch:
        """Apply the snapshots (any order, duplicates allowed) in one transaction."""
        result = AppliedBatch()
        ids = sorted({snapshot.incident_id for snapshot in snapshots})
        async with self._engine.begin() as conn:
            if ids:
                await _lock(conn, ids)
                stored = await _stored_snapshots(conn, self._processors, ids)
                plan = self._plan(snapshots, stored, result)
                await _write(conn, plan)
                await refresh_lessons(conn, plan.lessons, self._rules)
            if dead_letters:
                await save_dead_letters(conn, dead_letters)
        return result

    def _plan(
        self,
        snapshots: Sequence[IncidentSnapshot],
        stored: Mapping[tuple[str, uuid.UUID], IncidentSnapshot],
        result: AppliedBatch,
    ) -> _Plan:
        plan = _Plan()
        stored_json: dict[uuid.UUID, dict[str, Any]] = {}
        for processor in self._processors:
            versions = {
                incident_id: old.version
                for (name, incident_id), old in stored.items()
                if name == processor
            }
            newer = analytics.newer_snapshots(snapshots, versions)
            result.applied[processor] = len(newer)
            result.stale[processor] = len(snapshots) - len(newer)
            totals: dict[RowKey, Counters] = {}
            removed, added = set(), set()
            for incident_id, snapshot in newer.items():
                old_snapshot = stored.get((processor, incident_id))
                old = self._contribution(processor, old_snapshot)
                new = analytics.contribution(processor, snapshot, self._sla)
                analytics.add_counters(totals, analytics.counter_delta(old, new))
                removed |= set(old.members if old else ()) - set(new.members)
                added |= set(new.members) - set(old.members if old else ())
                plan.snapshots.append(_snapshot_row(processor, snapshot, stored_json))
                if processor == analytics.LESSONS:
                    self._touch_fingerprints(plan.lessons, old_snapshot, snapshot)
            plan.counters[processor] = analytics.drop_zero_rows(totals)
            plan.removed_members[processor] = removed
            plan.added_members[processor] = added
            if processor == analytics.LESSONS:
                plan.lessons.removed = {m for m in removed if isinstance(m, LessonMember)}
                plan.lessons.added = {m for m in added if isinstance(m, LessonMember)}
        return plan

    def _touch_fingerprints(
        self, changes: LessonChanges, old: IncidentSnapshot | None, new: IncidentSnapshot
    ) -> None:
        """Add the fingerprints the incident had and has: their recurring lessons may change."""
        for snapshot in (old, new):
            recurrence = self._contribution(analytics.RECURRENCE, snapshot)
            for member in recurrence.members if recurrence else ():
                if isinstance(member, FingerprintMember):
                    changes.fingerprints.add((member.tenant_id, member.fingerprint))

    def _contribution(
        self, processor: str, snapshot: IncidentSnapshot | None
    ) -> Contribution | None:
        if snapshot is None:
            return None
        return analytics.contribution(processor, snapshot, self._sla)


def _lock_key(incident_id: uuid.UUID) -> int:
    return int.from_bytes(incident_id.bytes[:8], "big", signed=True)


async def _lock(conn: AsyncConnection, ids: Sequence[uuid.UUID]) -> None:
    keys = sorted({_lock_key(incident_id) for incident_id in ids})
    await conn.execute(
        text("SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS bigint[])) AS k"),
        {"keys": keys},
    )


async def _stored_snapshots(
    conn: AsyncConnection, processors: Sequence[str], ids: Sequence[uuid.UUID]
) -> dict[tuple[str, uuid.UUID], IncidentSnapshot]:
    """The processors' stored snapshots of the incidents, validated like a change message.

    They are read as JSON text, which validates faster than the decoded JSONB; the processors
    usually hold the same text for an incident, and each distinct text is validated once.
    """
    table = analytics_schema.processor_snapshots
    rows = await conn.execute(
        select(table.c.processor, table.c.incident_id, cast(table.c.snapshot, Text)).where(
            table.c.processor.in_(processors), table.c.incident_id.in_(ids)
        )
    )
    parsed: dict[str, IncidentSnapshot] = {}
    stored = {}
    for processor, incident_id, value in rows:
        if value not in parsed:
            parsed[value] = IncidentSnapshot.model_validate_json(value)
        stored[(processor, incident_id)] = parsed[value]
    return stored


def _snapshot_row(
    processor: str, snapshot: IncidentSnapshot, dumped: dict[uuid.UUID, dict[str, Any]]
) -> dict[str, Any]:
    """The `processor_snapshots` row; `dumped` keeps each snapshot's JSON form for the other
    processors of the batch."""
    if snapshot.incident_id not in dumped:
        dumped[snapshot.incident_id] = snapshot.model_dump(mode="json")
    return {
        "processor": processor,
        "incident_id": snapshot.incident_id,
        "version": snapshot.version,
        "snapshot": dumped[snapshot.incident_id],
    }


async def _write(conn: AsyncConnection, plan: _Plan) -> None:
    for processor, table in COUNTER_TABLES.items():
        await _add_counters(conn, table, plan.counters.get(processor, {}))
    for processor, table in MEMBER_TABLES.items():
        await _delete_members(conn, table, plan.removed_members.get(processor, set()))
        await _upsert_members(conn, table, plan.added_members.get(processor, set()))
    await _save_snapshots(conn, plan.snapshots)


async def _add_counters(
    conn: AsyncConnection, table: Table, deltas: Mapping[RowKey, Counters]
) -> None:
    """Add the deltas to their rows (created at zero); then delete the rows left empty."""
    if not deltas:
        return
    counter_names = [column.name for column in table.columns if not column.primary_key]
    rows = [
        {**key._asdict(), **{name: delta.get(name, 0) for name in counter_names}}
        for key, delta in sorted(deltas.items())
    ]
    statement = insert(table)
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[column.name for column in table.primary_key.columns],
            set_={name: table.c[name] + statement.excluded[name] for name in counter_names},
        ),
        rows,
    )
    occupancy = OCCUPANCY_COLUMNS[table.name]
    emptied = [
        _key_tuple(table, key._asdict())
        for key, delta in deltas.items()
        if delta.get(occupancy, 0) < 0
    ]
    if emptied:
        await conn.execute(delete(table).where(_key_in(table, emptied), table.c[occupancy] == 0))


def _key_tuple(table: Table, row: Mapping[str, Any]) -> tuple[Any, ...]:
    """The primary key of `row` (a mapping of column names), in the table's key order."""
    return tuple(row[column.name] for column in table.primary_key.columns)


def _key_in(table: Table, keys: Sequence[tuple[Any, ...]]) -> Any:
    """`(primary key columns) IN (keys)`."""
    return tuple_(*table.primary_key.columns).in_(sorted(keys))


async def _delete_members(conn: AsyncConnection, table: Table, members: set[Member]) -> None:
    if not members:
        return
    keys = [_key_tuple(table, member._asdict()) for member in members]
    await conn.execute(delete(table).where(_key_in(table, keys)))


async def _upsert_members(conn: AsyncConnection, table: Table, members: set[Member]) -> None:
    if not members:
        return
    key_names = [column.name for column in table.primary_key.columns]
    rows = sorted((member._asdict() for member in members), key=lambda row: _key_tuple(table, row))
    statement = insert(table)
    updated = {name: statement.excluded[name] for name in rows[0] if name not in key_names}
    if updated:
        upsert = statement.on_conflict_do_update(index_elements=key_names, set_=updated)
    else:
        upsert = statement.on_conflict_do_nothing(index_elements=key_names)
    await conn.execute(upsert, rows)


async def _save_snapshots(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    table = analytics_schema.processor_snapshots
    statement = insert(table)
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=["processor", "incident_id"],
            set_={
                "version": statement.excluded.version,
                "snapshot": statement.excluded.snapshot,
                "updated_at": func.now(),
            },
        ),
        rows,
    )


async def save_dead_letters(conn: AsyncConnection, rows: Sequence[DeadLetterRow]) -> None:
    """Record `rows` in `dead_letters`; a source (topic, partition, offset) recorded before is
    left as it is, so a redelivered message adds none twice."""
    # A change message without a value is kept with an empty payload, not a null one.
    await conn.execute(
        insert(schema.dead_letters).on_conflict_do_nothing(constraint="uq_dead_letters_source"),
        [dead_letter_values(replace(row, payload=row.payload or b"")) for row in rows],
    )
