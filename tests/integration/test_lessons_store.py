"""The lessons processor's tables and the triage commands in a real PostgreSQL.

`AnalyticsStore.apply` keeps `lesson_members` and `lessons` with the other processors' tables (a
lesson follows its rule as incidents change; redelivery changes nothing); `TriageStore.apply`
applies lesson commands once per command id and dead-letters what it cannot apply.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest_asyncio
from psycopg.rows import dict_row
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.config import AggregationConfig
from domain.incidents import LifecycleState
from domain.lesson_triage import LessonCommand
from domain.lessons import lesson_id
from domain.metrics import SlaTargets
from domain.snapshot import IncidentSnapshot
from storage.analytics_store import AnalyticsStore
from storage.engine import create_async_db_engine
from storage.triage_store import CommandMessage, TriageStore
from tests.builders import incident

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
DAY = timedelta(days=1)
TOPIC = "lesson.commands"


@pytest_asyncio.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_db_engine(database_url, pool_size=2)
    yield engine
    await engine.dispose()


def snap(name: str, version: int, tenant: str = "acme", **fields: Any) -> IncidentSnapshot:
    given: dict[str, Any] = {
        "incident_id": uuid.uuid5(uuid.NAMESPACE_URL, f"lessons-store:{name}"),
        "tenant_id": tenant,
        "fingerprint": f"fp-{name}",
        "fingerprints": [f"fp-{name}"],
        "title": f"incident {name}",
        "severity": "critical",
        "started_at": T0,
        "last_event_at": T0 + timedelta(minutes=5),
        "version": version,
    }
    return IncidentSnapshot.model_validate(incident(**(given | fields)).snapshot())


def resolved(name: str, version: int, **fields: Any) -> IncidentSnapshot:
    at = fields.pop("started_at", T0)
    done = {"lifecycle_state": LifecycleState.RESOLVED, "resolved_at": at + timedelta(hours=1),
            "resolved_by": "alice", "resolution_method": "manual"}  # fmt: skip
    return snap(name, version, started_at=at, **(done | fields))


def tables(url: str) -> dict[str, Any]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return {
            table: sorted(map(str, conn.execute(f"SELECT * FROM {table}")))
            for table in ("lessons", "lesson_members", "lesson_triage", "lesson_commands")
        }


def lessons_by_kind(url: str) -> dict[tuple[str, str], dict[str, Any]]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        rows = conn.execute("SELECT * FROM lessons").fetchall()
    return {(row["kind"], row["subject"]): row for row in rows}


async def test_a_lesson_follows_its_rule_and_keeps_its_triage(
    engine: AsyncEngine, database_url: str
) -> None:
    store, triage = AnalyticsStore(engine, SlaTargets()), TriageStore(engine)
    first = resolved("a", 2)
    await store.apply([snap("a", 1), first])
    severe = lesson_id("severe_incident_resolved", "acme", str(first.incident_id))
    (only,) = lessons_by_kind(database_url).values()
    assert (only["lesson_id"], only["incident_ids"], only["incident_count"]) == (
        severe, [first.incident_id], 1,
    )  # fmt: skip
    assert "resolved by hand after 1 h" in only["proposed_action"]
    result = await triage.apply([message(0, "c-1", severe, "dismiss")])
    assert (result.applied, result.dead_letters) == (1, [])

    await store.apply([snap("a", 3, reopen_count=1, last_event_at=T0 + 2 * DAY)])
    reopened = lessons_by_kind(database_url)
    assert set(reopened) == {("reopened", str(first.incident_id))}
    assert reopened[("reopened", str(first.incident_id))]["last_seen"] == T0 + 2 * DAY
    gone = await triage.apply([message(1, "c-2", severe, "dismiss")])
    assert [row.reason for row in gone.dead_letters] == ["unknown_lesson"]

    again = resolved("a", 4, reopen_count=1, last_event_at=T0 + 2 * DAY)
    await store.apply([again])
    assert set(lessons_by_kind(database_url)) == {
        ("reopened", str(first.incident_id)),
        ("severe_incident_resolved", str(first.incident_id)),
    }
    before = tables(database_url)
    assert "'dismissed'" in before["lesson_triage"][0]  # the triage came back with the lesson
    await store.apply([snap("a", 1), first, again, again])  # redelivered and older versions
    assert tables(database_url) == before


async def test_recurring_lessons_grow_and_go_with_the_fingerprint_rows(
    engine: AsyncEngine, database_url: str
) -> None:
    store = AnalyticsStore(
        engine, SlaTargets(), rules=AggregationConfig(aggregation_window_seconds=60)
    )
    shared = {"fingerprint": "fp-shared", "fingerprints": ["fp-shared"], "severity": "low"}
    three = [snap(f"r{n}", 1, started_at=T0 + n * 3 * DAY, **shared) for n in range(3)]
    await store.apply(three[:2])
    assert lessons_by_kind(database_url) == {}
    await store.apply(three[2:])
    lesson = lessons_by_kind(database_url)[("recurring_fingerprint", "fp-shared")]
    assert lesson["incident_ids"] == [s.incident_id for s in three]
    assert lesson["lesson_id"] == lesson_id("recurring_fingerprint", "acme", "fp-shared")
    assert "now 60 s" in lesson["proposed_action"]
    assert (lesson["first_seen"], lesson["last_seen"]) == (T0, three[2].last_event_at)

    other_tenant = snap("g", 1, tenant="globex", started_at=T0 + DAY, **shared)
    fourth = snap("r3", 1, started_at=T0 + 7 * DAY, **shared)
    await store.apply([other_tenant, fourth])
    grown = lessons_by_kind(database_url)[("recurring_fingerprint", "fp-shared")]
    assert grown["incident_ids"] == [*(s.incident_id for s in three), fourth.incident_id]
    assert grown["tenant_id"] == "acme" and grown["incident_count"] == 4

    moved = snap("r1", 2, started_at=T0 + 30 * DAY, fingerprint="fp-other",
                 fingerprints=["fp-other"], severity="low")  # fmt: skip
    await store.apply([moved])
    left = lessons_by_kind(database_url)[("recurring_fingerprint", "fp-shared")]
    assert left["incident_ids"] == [three[0].incident_id, three[2].incident_id, fourth.incident_id]
    away = snap("r3", 2, started_at=T0 + 60 * DAY, **shared)
    await store.apply([away])
    assert ("recurring_fingerprint", "fp-shared") not in lessons_by_kind(database_url)


def message(
    offset: int, command_id: str, lesson: uuid.UUID, action: str, tenant: str = "acme",
    at: datetime = T0, **fields: Any,
) -> CommandMessage:  # fmt: skip
    command = LessonCommand.model_validate(
        {"command_id": command_id, "tenant_id": tenant, "lesson_id": str(lesson),
         "action": action, "issued_at": at.isoformat(), "issued_by": "alice", **fields}
    )  # fmt: skip
    return CommandMessage(TOPIC, 0, offset, tenant.encode(), command.model_dump_json().encode(),
                          command)  # fmt: skip


async def test_every_command_case_is_applied_once_or_dead_lettered(
    engine: AsyncEngine, database_url: str
) -> None:
    await AnalyticsStore(engine, SlaTargets()).apply(
        [resolved("mine", 1), resolved("theirs", 1, tenant="globex")]
    )
    mine = lesson_id("severe_incident_resolved", "acme", str(snap("mine", 1).incident_id))
    theirs = lesson_id("severe_incident_resolved", "globex", str(snap("theirs", 1).incident_id))
    until = (T0 + DAY).isoformat()
    batch = [
        message(0, "defer", mine, "defer", until=until),
        message(1, "defer", mine, "dismiss"),  # duplicate id in the batch: no effect
        message(2, "early", mine, "dismiss", at=T0 + timedelta(hours=1)),  # still deferred
        message(3, "late", mine, "defer", at=T0 + 2 * DAY, until=(T0 + 3 * DAY).isoformat()),
        message(4, "nobody", uuid.uuid4(), "dismiss"),
        message(5, "theirs", theirs, "dismiss"),  # acme naming globex's lesson
        message(6, "convert", mine, "convert", at=T0 + 4 * DAY, policy_draft="cap retries"),
        message(7, "final", mine, "reactivate", at=T0 + 5 * DAY),
    ]
    store = TriageStore(engine)
    result = await store.apply(batch)
    assert (result.applied, result.duplicates) == (3, 1)
    assert [(row.source_offset, row.reason) for row in result.dead_letters] == [
        (2, "invalid_transition"), (4, "unknown_lesson"), (5, "unknown_lesson"),
        (7, "invalid_transition"),
    ]  # fmt: skip
    assert result.dead_letters[0].detail == "action: cannot dismiss a lesson that is deferred"
    assert result.dead_letters[2].detail == f"lesson_id: no lesson {theirs} in tenant acme"
    assert result.dead_letters[0].payload == batch[2].value
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        (state,) = conn.execute("SELECT * FROM lesson_triage").fetchall()
        dead = conn.execute("SELECT source_offset, reason FROM dead_letters ORDER BY 1").fetchall()
        applied = conn.execute("SELECT command_id FROM lesson_commands ORDER BY issued_at")
        assert [row["command_id"] for row in applied] == ["defer", "late", "convert"]
    assert (state["lesson_id"], state["state"], state["policy_draft"]) == (
        mine, "converted", "cap retries",
    )  # fmt: skip
    assert (state["commands"], state["changed_at"], state["deferred_until"]) == (
        3,
        T0 + 4 * DAY,
        None,
    )
    assert [(row["source_offset"], row["reason"]) for row in dead] == [
        (2, "invalid_transition"), (4, "unknown_lesson"), (5, "unknown_lesson"),
        (7, "invalid_transition"),
    ]  # fmt: skip

    before = tables(database_url)
    redelivered = await store.apply(batch)
    assert (redelivered.applied, redelivered.duplicates) == (0, 4)
    assert tables(database_url) == before
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM dead_letters").fetchone() == (4,)
    same_id_other_tenant = await store.apply([message(9, "defer", theirs, "dismiss", "globex")])
    assert same_id_other_tenant.applied == 1
