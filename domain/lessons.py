"""Lessons learned from incidents: the rules, each snapshot's contribution, and the assembly.

A lesson is something an incident (or several) teaches that a person should act on. The rules:

- `severe_incident_resolved`: a `high` or `critical` incident that is RESOLVED; one lesson per
  incident (subject: the incident id);
- `reopened`: an incident reopened at least once (`reopen_count >= 1`); one per incident;
- `recurring_fingerprint`: a fingerprint behind at least `RECURRENCE_THRESHOLD` (3) incidents of
  the tenant that started within `RECURRENCE_SPAN` (7 days) of each other; one lesson per tenant
  and fingerprint (subject: the fingerprint), whose incidents grow as more recur;
- `overflow`: an overflow incident (`trigger_type` `rate_limit_overflow`: the hourly cap hid
  the detail of its events); one per incident.

A lesson's id is `uuid5(NAMESPACE_URL, "incidentflow:lesson:" + [kind, tenant, subject])`, the
list in canonical JSON (`domain.canonical`), so a replay rebuilds the same ids. Its text
(`proposed_action`) is generated from the incidents' own fields and the rules' configuration.
`first_seen` and `last_seen` are the earliest `started_at` and the latest `last_event_at` of its
incidents: event time, never the wall clock.

As in `domain.analytics` (whose `lessons` processor this is), a processor never gathers incidents
itself; each incident snapshot maps to its *contribution*, member rows that replace the incident's
previous ones (`new - old`, so a redelivered or replayed snapshot changes nothing and never
duplicates a lesson):

- `lesson_members(snapshot)` (a `domain.snapshot.IncidentSnapshot`): a `LessonMember` per
  per-incident rule that holds;
- recurrence reads the `recurrence_fingerprints` rows the recurrence processor already keeps
  (`domain.analytics.FingerprintMember`, one per incident and fingerprint); the overflow
  incident's rows are left out, as in pattern detection (it aggregates unrelated events).

`assemble_lessons` turns member rows into lessons. A lesson exists while its rule holds: a
resolved high incident that reopens leaves `severe_incident_resolved` until it resolves again (its
triage state, kept by lesson id, applies again then); the other rules only ever start to hold.

For `recurring_fingerprint`, the incidents behind the lesson are those that lie in some window
`[s, s + RECURRENCE_SPAN]` holding at least `RECURRENCE_THRESHOLD` incidents of the fingerprint;
a later incident within the span of two earlier ones joins the same lesson.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import NamedTuple, Protocol

from domain.canonical import canonical
from domain.config import AggregationConfig
from domain.descriptions import format_duration, format_minute
from domain.incidents import OVERFLOW_CATEGORY, OVERFLOW_TRIGGER
from domain.snapshot import IncidentSnapshot, resolved_at

RECURRENCE_THRESHOLD = 3
RECURRENCE_SPAN = timedelta(days=7)
SEVERE_SEVERITIES = ("high", "critical")
RESOLVED_HOW: dict[str, str] = {
    "auto": "automatically",
    "manual": "by hand",
    "rollback": "by a rollback",
    "manual_closure": "by manual closure",
}
"""How a resolution method reads in a proposed action."""


class LessonKind(StrEnum):
    SEVERE_INCIDENT_RESOLVED = "severe_incident_resolved"
    REOPENED = "reopened"
    RECURRING_FINGERPRINT = "recurring_fingerprint"
    OVERFLOW = "overflow"


PER_INCIDENT_KINDS = (LessonKind.SEVERE_INCIDENT_RESOLVED, LessonKind.REOPENED, LessonKind.OVERFLOW)


class LessonMember(NamedTuple):
    """A `lesson_members` row: the incident behind a per-incident lesson, with what its text
    reads. `subject` is the incident id (as text) for these kinds."""

    tenant_id: str
    kind: str
    subject: str
    incident_id: uuid.UUID
    title: str
    category: str
    severity: str
    started_at: datetime
    last_event_at: datetime
    resolved_at: datetime | None
    resolution_method: str | None
    calls_affected: int
    reopen_count: int


class FingerprintRecord(Protocol):
    """What recurrence reads of a `recurrence_fingerprints` row
    (`domain.analytics.FingerprintMember` and database rows qualify)."""

    @property
    def tenant_id(self) -> str: ...
    @property
    def fingerprint(self) -> str: ...
    @property
    def incident_id(self) -> uuid.UUID: ...
    @property
    def category(self) -> str: ...
    @property
    def started_at(self) -> datetime: ...
    @property
    def last_event_at(self) -> datetime: ...


@dataclass(frozen=True, slots=True)
class Lesson:
    """A lesson as assembled from member rows. `incident_ids` by start, then id."""

    lesson_id: uuid.UUID
    kind: LessonKind
    tenant_id: str
    subject: str
    incident_ids: tuple[uuid.UUID, ...]
    proposed_action: str
    first_seen: datetime
    last_seen: datetime


def lesson_id(kind: str, tenant_id: str, subject: str) -> uuid.UUID:
    """The deterministic id of the lesson of `kind` about `subject` in `tenant_id`."""
    name = canonical([str(kind), tenant_id, subject]).decode()
    return uuid.uuid5(uuid.NAMESPACE_URL, "incidentflow:lesson:" + name)


def lesson_members(snapshot: IncidentSnapshot) -> tuple[LessonMember, ...]:
    """The per-incident lesson rows of an incident snapshot: one per rule of
    `PER_INCIDENT_KINDS` that holds, in that order."""
    resolved = resolved_at(snapshot)
    holds = {
        LessonKind.SEVERE_INCIDENT_RESOLVED: resolved is not None
        and snapshot.severity in SEVERE_SEVERITIES,
        LessonKind.REOPENED: snapshot.reopen_count >= 1,
        LessonKind.OVERFLOW: snapshot.trigger_type == OVERFLOW_TRIGGER,
    }
    return tuple(
        LessonMember(
            snapshot.tenant_id,
            kind.value,
            str(snapshot.incident_id),
            snapshot.incident_id,
            snapshot.title or snapshot.category,
            snapshot.category,
            str(snapshot.severity),
            snapshot.started_at,
            snapshot.last_event_at,
            resolved,
            snapshot.resolution_method if resolved is not None else None,
            snapshot.calls_affected,
            snapshot.reopen_count,
        )
        for kind in PER_INCIDENT_KINDS
        if holds[kind]
    )


class MemberDelta(NamedTuple):
    """Rows to delete and rows to insert when an incident's snapshot replaces the previous one."""

    removed: frozenset[LessonMember]
    added: frozenset[LessonMember]


def member_delta(old: IncidentSnapshot | None, new: IncidentSnapshot) -> MemberDelta:
    """`new - old` of the incident's lesson rows (old None: nothing applied yet)."""
    before = frozenset(lesson_members(old)) if old is not None else frozenset()
    after = frozenset(lesson_members(new))
    return MemberDelta(before - after, after - before)


def assemble_lessons(
    members: Iterable[LessonMember],
    fingerprints: Iterable[FingerprintRecord],
    rules: AggregationConfig,
) -> list[Lesson]:
    """The lessons that `members` (`lesson_members` rows) and `fingerprints`
    (`recurrence_fingerprints` rows) show, by tenant, kind, first seen and id.

    Rows of any tenants may be mixed; each row is read once (repeats are ignored).
    """
    lessons = [incident_lesson(member, rules) for member in set(members)]
    groups: dict[tuple[str, str], dict[uuid.UUID, FingerprintRecord]] = defaultdict(dict)
    for row in fingerprints:
        if row.category != OVERFLOW_CATEGORY:
            groups[(row.tenant_id, row.fingerprint)][row.incident_id] = row
    for (tenant_id, fingerprint), rows in groups.items():
        lesson = recurring_lesson(tenant_id, fingerprint, rows.values(), rules)
        if lesson is not None:
            lessons.append(lesson)
    return sorted(lessons, key=_lesson_order)


def _lesson_order(lesson: Lesson) -> tuple[str, str, datetime, uuid.UUID]:
    return (lesson.tenant_id, lesson.kind, lesson.first_seen, lesson.lesson_id)


def incident_lesson(member: LessonMember, rules: AggregationConfig) -> Lesson:
    """The lesson a per-incident member row stands for."""
    kind = LessonKind(member.kind)
    return Lesson(
        lesson_id(kind, member.tenant_id, member.subject),
        kind,
        member.tenant_id,
        member.subject,
        (member.incident_id,),
        _PROPOSALS[kind](member, rules),
        member.started_at,
        member.last_event_at,
    )


def recurring_lesson(
    tenant_id: str,
    fingerprint: str,
    rows: Iterable[FingerprintRecord],
    rules: AggregationConfig,
) -> Lesson | None:
    """The `recurring_fingerprint` lesson of one tenant's fingerprint from its rows (one per
    incident), or None while no span of `RECURRENCE_SPAN` holds `RECURRENCE_THRESHOLD`."""
    behind = recurring_incidents(rows)
    if not behind:
        return None
    first, last = behind[0].started_at, max(row.last_event_at for row in behind)
    categories = ", ".join(sorted({row.category for row in behind}))
    action = (
        f"{len(behind)} incidents of fingerprint {fingerprint} ({categories}) started between "
        f"{format_minute(first)} and {format_minute(behind[-1].started_at)}: find and fix their "
        "common cause instead of resolving each one, or group them with a longer aggregation "
        f"window (now {rules.aggregation_window_seconds} s)."
    )
    kind = LessonKind.RECURRING_FINGERPRINT
    ids = tuple(row.incident_id for row in behind)
    return Lesson(
        lesson_id(kind, tenant_id, fingerprint),
        kind,
        tenant_id,
        fingerprint,
        ids,
        action,
        first,
        last,
    )


def recurring_incidents(rows: Iterable[FingerprintRecord]) -> list[FingerprintRecord]:
    """The rows (of one fingerprint) in some span `[s, s + RECURRENCE_SPAN]` that holds at
    least `RECURRENCE_THRESHOLD` of them, by start then incident id."""
    ordered: Sequence[FingerprintRecord] = sorted(
        rows, key=lambda row: (row.started_at, str(row.incident_id))
    )
    behind: set[int] = set()
    end = 0
    for start, row in enumerate(ordered):
        until = row.started_at + RECURRENCE_SPAN
        end = max(end, start)
        while end + 1 < len(ordered) and ordered[end + 1].started_at <= until:
            end += 1
        if end - start + 1 >= RECURRENCE_THRESHOLD:
            behind.update(range(start, end + 1))
    return [ordered[index] for index in sorted(behind)]


def _severe(member: LessonMember, rules: AggregationConfig) -> str:
    method = member.resolution_method or "unknown"
    how = RESOLVED_HOW.get(method, f"by {method}")
    took = (
        f" after {format_duration(member.resolved_at - member.started_at)}"
        if member.resolved_at is not None
        else ""
    )
    return (
        f'Review the {member.severity} incident "{member.title}" ({_calls(member)}, resolved '
        f"{how}{took}): record its cause and add a guard (a policy, an alert or a fallback) so "
        "that it does not happen again."
    )


def _reopened(member: LessonMember, rules: AggregationConfig) -> str:
    times = "once" if member.reopen_count == 1 else f"{member.reopen_count} times"
    return (
        f'"{member.title}" was reopened {times} after it resolved: auto-resolve after '
        f"{rules.auto_resolve_after_seconds} s may be too short, or the fix did not hold. Find "
        "out what brought it back before resolving it again."
    )


def _overflow(member: LessonMember, rules: AggregationConfig) -> str:
    return (
        f"The cap of {rules.max_incidents_per_tenant_per_hour} new incidents per hour hid detail: "
        f"{_calls(member)} went into the overflow incident from "
        f"{format_minute(member.started_at)} on. Raise the cap or quiet the noisiest sources, "
        "then review what the overflow incident absorbed."
    )


def _calls(member: LessonMember) -> str:
    return f"{member.calls_affected:,} call{'' if member.calls_affected == 1 else 's'}"


_PROPOSALS = {
    LessonKind.SEVERE_INCIDENT_RESOLVED: _severe,
    LessonKind.REOPENED: _reopened,
    LessonKind.OVERFLOW: _overflow,
}
