"""Lesson rules, each snapshot's contribution (new - old) and the assembly of lessons."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from domain import analytics
from domain.analytics import FingerprintMember
from domain.config import AggregationConfig
from domain.incidents import LifecycleState
from domain.lessons import (
    Lesson,
    LessonKind,
    LessonMember,
    assemble_lessons,
    lesson_id,
    lesson_members,
    member_delta,
    recurring_incidents,
)
from domain.metrics import SlaTargets
from domain.snapshot import IncidentSnapshot
from tests.builders import incident

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
ID = uuid.UUID("00000000-0000-0000-0000-0000000000a1")
RULES = AggregationConfig()
DAY = timedelta(days=1)


def snap(version: int = 1, **fields: Any) -> IncidentSnapshot:
    given: dict[str, Any] = {
        "incident_id": ID,
        "title": "LLM call failures: openai/gpt-4o/timeout",
        "started_at": T0,
        "last_event_at": T0 + timedelta(minutes=40),
        "calls_affected": 250,
        "version": version,
    }
    return IncidentSnapshot.model_validate(incident(**(given | fields)).snapshot())


def resolved(**fields: Any) -> IncidentSnapshot:
    given: dict[str, Any] = {
        "severity": "high",
        "lifecycle_state": LifecycleState.RESOLVED,
        "resolved_at": T0 + timedelta(minutes=47),
        "resolved_by": "alice",
        "resolution_method": "manual",
    }
    return snap(**(given | fields))


def kinds(snapshot: IncidentSnapshot) -> list[str]:
    return [member.kind for member in lesson_members(snapshot)]


def lessons_of(*snapshots: IncidentSnapshot) -> list[Lesson]:
    return assemble_lessons(
        (member for snapshot in snapshots for member in lesson_members(snapshot)), (), RULES
    )


def test_a_resolved_high_or_critical_incident_is_a_lesson() -> None:
    assert kinds(resolved()) == ["severe_incident_resolved"]
    assert kinds(resolved(severity="critical")) == ["severe_incident_resolved"]
    assert kinds(resolved(severity="medium")) == []
    assert kinds(snap(severity="critical")) == []
    assert kinds(snap(severity="high", lifecycle_state=LifecycleState.ACKED, acked_at=T0)) == []


def test_a_reopened_incident_is_a_lesson_however_often_it_reopened() -> None:
    assert kinds(snap(reopen_count=1)) == ["reopened"]
    assert kinds(snap(reopen_count=4)) == ["reopened"]
    assert kinds(snap(reopen_count=0)) == []


def test_the_overflow_incident_is_a_lesson() -> None:
    overflow = snap(
        trigger_type="rate_limit_overflow",
        category="RATE_LIMIT_OVERFLOW",
        fingerprint="*",
        severity="high",
    )
    assert kinds(overflow) == ["overflow"]


def test_one_incident_can_teach_several_lessons_each_once() -> None:
    many = resolved(
        trigger_type="rate_limit_overflow",
        category="RATE_LIMIT_OVERFLOW",
        fingerprint="*",
        reopen_count=2,
    )
    assert kinds(many) == ["severe_incident_resolved", "reopened", "overflow"]
    found = lessons_of(many, many)
    assert len(found) == 3
    assert len({lesson.lesson_id for lesson in found}) == 3
    assert all(lesson.incident_ids == (ID,) for lesson in found)


def test_lesson_ids_are_deterministic_and_unambiguous() -> None:
    assert lesson_id("reopened", "acme", str(ID)) == lesson_id(LessonKind.REOPENED, "acme", str(ID))
    assert lesson_id("reopened", "a:b", "c") != lesson_id("reopened", "a", "b:c")
    assert lesson_id("reopened", "acme", "x") != lesson_id("overflow", "acme", "x")
    assert lesson_id("reopened", "acme", "x") != lesson_id("reopened", "other", "x")
    assert lesson_id("reopened", "acme", "x").version == 5
    (lesson,) = lessons_of(snap(reopen_count=1))
    assert lesson.lesson_id == lesson_id("reopened", "acme", str(ID))


def test_proposed_actions_are_generated_from_the_incident_and_the_rules() -> None:
    (severe,) = lessons_of(resolved())
    assert severe.proposed_action == (
        'Review the high incident "LLM call failures: openai/gpt-4o/timeout" (250 calls, '
        "resolved by hand after 47 min): record its cause and add a guard (a policy, an alert or "
        "a fallback) so that it does not happen again."
    )
    (reopened,) = lessons_of(snap(reopen_count=1))
    assert (
        "was reopened once after it resolved: auto-resolve after 900 s may be too short, or "
        "the fix did not hold." in reopened.proposed_action
    )
    (twice,) = assemble_lessons(
        lesson_members(snap(reopen_count=2)), (), AggregationConfig(auto_resolve_after_seconds=60)
    )
    assert "reopened 2 times" in twice.proposed_action
    assert "auto-resolve after 60 s" in twice.proposed_action
    overflow = snap(
        trigger_type="rate_limit_overflow", category="RATE_LIMIT_OVERFLOW", fingerprint="*"
    )
    (capped,) = lessons_of(overflow)
    assert capped.proposed_action.startswith(
        "The cap of 20 new incidents per hour hid detail: 250 calls went into the overflow "
        "incident from 2026-11-22 10:00 UTC on."
    )
    auto = lessons_of(resolved(resolution_method="auto", resolved_by="system"))[0]
    assert "resolved automatically after 47 min" in auto.proposed_action


def test_first_and_last_seen_are_event_times() -> None:
    (lesson,) = lessons_of(resolved())
    assert lesson.first_seen == T0
    assert lesson.last_seen == T0 + timedelta(minutes=40)


def test_the_contribution_is_replaced_so_redelivery_and_replay_change_nothing() -> None:
    first, same = snap(version=1), snap(version=1)
    assert member_delta(None, first).added == frozenset()
    versions = [
        snap(version=1),
        resolved(version=2),
        snap(version=3, severity="high", reopen_count=1),
        resolved(version=4, reopen_count=1),
    ]
    assert member_delta(first, same) == (frozenset(), frozenset())
    table: set[LessonMember] = set()
    applied: IncidentSnapshot | None = None
    for snapshot in [*versions, *versions[1:3], versions[-1]]:  # redeliveries, replays
        if applied is not None and snapshot.version <= applied.version:
            continue  # the processor's version check, as for the other processors
        delta = member_delta(applied, snapshot)
        table -= delta.removed
        table |= delta.added
        applied = snapshot
    assert table == set(lesson_members(versions[-1]))
    assert {lesson.kind for lesson in assemble_lessons(table, (), RULES)} == {
        "severe_incident_resolved",
        "reopened",
    }


def test_a_reopened_severe_incident_leaves_its_resolved_lesson_until_it_resolves_again() -> None:
    delta = member_delta(resolved(version=2), snap(version=3, severity="high", reopen_count=1))
    assert [member.kind for member in delta.removed] == ["severe_incident_resolved"]
    assert [member.kind for member in delta.added] == ["reopened"]


def fingerprints(
    *starts: timedelta,
    tenant: str = "acme",
    category: str = "LLM_TIMEOUT",
    fingerprint: str = "openai/gpt-4o/timeout",
) -> list[FingerprintMember]:
    rows = []
    for index, start in enumerate(starts):
        snapshot = snap(
            incident_id=uuid.UUID(int=index + 1),
            tenant_id=tenant,
            category=category,
            fingerprint=fingerprint,
            started_at=T0 + start,
            last_event_at=T0 + start + timedelta(minutes=5),
        )
        members = analytics.contribution(analytics.RECURRENCE, snapshot, SlaTargets()).members
        rows.extend(member for member in members if isinstance(member, FingerprintMember))
    return rows


def recurring(rows: Iterable[FingerprintMember]) -> list[Lesson]:
    return assemble_lessons((), rows, RULES)


def test_three_incidents_of_a_fingerprint_within_seven_days_are_one_lesson() -> None:
    (lesson,) = recurring(fingerprints(timedelta(0), 3 * DAY, 7 * DAY))
    assert lesson.kind is LessonKind.RECURRING_FINGERPRINT
    assert lesson.subject == "openai/gpt-4o/timeout"
    assert lesson.lesson_id == lesson_id("recurring_fingerprint", "acme", "openai/gpt-4o/timeout")
    assert lesson.incident_ids == (uuid.UUID(int=1), uuid.UUID(int=2), uuid.UUID(int=3))
    assert lesson.first_seen == T0
    assert lesson.last_seen == T0 + 7 * DAY + timedelta(minutes=5)
    assert lesson.proposed_action.startswith(
        "3 incidents of fingerprint openai/gpt-4o/timeout (LLM_TIMEOUT) started between "
        "2026-11-22 10:00 UTC and 2026-11-29 10:00 UTC"
    )
    assert "longer aggregation window (now 300 s)" in lesson.proposed_action


def test_fewer_than_three_or_further_apart_is_no_lesson() -> None:
    assert recurring(fingerprints(timedelta(0), DAY)) == []
    assert recurring(fingerprints(timedelta(0), 4 * DAY, 8 * DAY)) == []
    assert recurring(fingerprints(timedelta(0), 4 * DAY, 7 * DAY + timedelta(seconds=1))) == []


def test_the_recurring_lesson_grows_with_incidents_that_recur_and_not_with_others() -> None:
    rows = fingerprints(timedelta(0), 3 * DAY, 7 * DAY, 9 * DAY, 40 * DAY)
    (lesson,) = recurring(rows)
    assert lesson.incident_ids == tuple(uuid.UUID(int=index) for index in (1, 2, 3, 4))
    assert [row.incident_id for row in recurring_incidents(reversed(rows))] == list(
        lesson.incident_ids
    )


def test_recurrence_is_per_tenant_and_fingerprint_and_leaves_out_overflow() -> None:
    rows = [
        *fingerprints(timedelta(0), DAY, tenant="acme"),
        *fingerprints(2 * DAY, tenant="globex"),
        *fingerprints(timedelta(0), DAY, 2 * DAY, category="RATE_LIMIT_OVERFLOW", fingerprint="*"),
        *fingerprints(timedelta(0), DAY, 2 * DAY, fingerprint="other"),
    ]
    (lesson,) = recurring(rows + rows)
    assert (lesson.tenant_id, lesson.subject) == ("acme", "other")
    assert len(lesson.incident_ids) == 3


def test_lessons_are_ordered_by_tenant_kind_and_first_seen() -> None:
    found = assemble_lessons(
        [
            *lesson_members(snap(reopen_count=1)),
            *lesson_members(
                resolved(
                    incident_id=uuid.UUID(int=9),
                    tenant_id="aaa",
                    started_at=T0 - DAY,
                    last_event_at=T0 - DAY,
                )
            ),
        ],
        fingerprints(timedelta(0), DAY, 2 * DAY),
        RULES,
    )
    assert [(lesson.tenant_id, lesson.kind.value) for lesson in found] == [
        ("aaa", "severe_incident_resolved"),
        ("acme", "recurring_fingerprint"),
        ("acme", "reopened"),
    ]


def test_the_lessons_processor_contributes_the_member_rows() -> None:
    snapshot = resolved(reopen_count=1)
    part = analytics.contribution(analytics.LESSONS, snapshot, SlaTargets())
    assert part.counters == {} and part.members == lesson_members(snapshot)
    assert analytics.LESSONS in analytics.PROCESSORS
