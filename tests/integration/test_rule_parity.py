"""Every rule of `storage.rules` gives in PostgreSQL what its Python twin gives.

Hypothesis generates incidents in every lifecycle state, severity and resolution method, with
times at and around their SLA deadlines and hour and day edges (in several UTC offsets), SLA
targets and an `as_of`; they are written to a real `incidents` table with the ingest worker's row
mapping, then each SQL twin is evaluated there and compared with the Python rule: per incident
(rank, states, times, SLA, method, buckets), and summed by row key for the processors'
contributions (rollups, recurrence, cost), which queries read back for the current bucket. A
lesson's triage state at a time is compared the same way, over `lessons` and `lesson_triage`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, insert, select

from domain import analytics
from domain.analytics import Contribution, RowKey, add_counters, contribution, drop_zero_rows
from domain.buckets import utc_day, utc_hour
from domain.contracts import Severity
from domain.incidents import SEVERITY_RANK, BreakdownEntry, Incident, LifecycleState
from domain.lesson_triage import LessonState, effective_state
from domain.metrics import SlaTargets, sla_status, time_to_containment, time_to_resolution
from domain.snapshot import IncidentSnapshot
from storage import rules
from storage.analytics_schema import lesson_triage, lessons
from storage.engine import create_sync_db_engine
from storage.rows import incident_row
from storage.schema import incidents

BASE = datetime(2024, 11, 22, tzinfo=UTC)
"""A Friday: the generated times fall on both sides of its midnights and hours."""
OFFSETS = [timezone(timedelta(hours=h, minutes=m)) for h, m in ((0, 0), (5, 30), (-8, 0))]
EDGES = [timedelta(0), timedelta(microseconds=1), timedelta(seconds=1), timedelta(minutes=30)]
METHODS = [None, "", "auto", "manual", "rollback", "manual_closure"]


@pytest.fixture(scope="module")
def engine(postgres_url: str) -> Iterator[Engine]:
    """One migrated database for every example (each starts by emptying `incidents`), read in a
    session time zone half an hour off UTC: the rules must not depend on it."""
    from storage.migrate import upgrade
    from tests.support import fresh_database

    with fresh_database(postgres_url) as url:
        upgrade(url)
        engine = create_sync_db_engine(url, connect_args={"options": "-c TimeZone=Asia/Kolkata"})
        try:
            yield engine
        finally:
            engine.dispose()


def near(at: datetime, edges: st.SearchStrategy[timedelta]) -> st.SearchStrategy[datetime]:
    """`at` plus or minus one of the edges, in one of the offsets."""
    return st.builds(
        lambda edge, sign, offset: (at + sign * edge).astimezone(offset),
        edges,
        st.sampled_from([1, -1]),
        st.sampled_from(OFFSETS),
    )


targets_strategy = st.builds(
    SlaTargets,
    critical=st.sampled_from([timedelta(hours=1), timedelta(minutes=7)]),
    high=st.sampled_from([timedelta(hours=4), timedelta(hours=2)]),
    medium=st.just(timedelta(hours=24)),
    low=st.sampled_from([timedelta(hours=72), timedelta(days=10)]),
)


@st.composite
def incident_strategy(draw: st.DrawFn, targets: SlaTargets) -> Incident:
    hour = BASE + timedelta(hours=draw(st.integers(-30, 30)))
    started = draw(near(hour, st.sampled_from(EDGES)))
    severity = draw(st.sampled_from([severity.value for severity in Severity]))
    deadline = started + targets.for_severity(severity)
    state = draw(st.sampled_from(list(LifecycleState)))
    resolved = draw(st.none() | near(deadline, st.sampled_from([*EDGES, timedelta(days=2)])))
    acked = draw(st.none() | near(started, st.sampled_from(EDGES[1:])))
    costs = st.decimals(min_value=0, max_value=1000, places=8, allow_nan=False)
    breakdown: dict[str, dict[str, BreakdownEntry]] = {}
    for dimension in ("model", "agent"):
        keys = draw(st.lists(st.sampled_from(["a", "b/c", "other"]), max_size=3, unique=True))
        breakdown[dimension] = {
            key: BreakdownEntry(draw(st.integers(0, 50)), draw(costs)) for key in keys
        }
    return Incident(
        incident_id=draw(st.uuids()),
        tenant_id=draw(st.sampled_from(["acme", "globex"])),
        trigger_type=draw(st.sampled_from(["llm_failure", "rate_limit_overflow"])),
        fingerprint="f",
        category=draw(st.sampled_from(["LLM_TIMEOUT", "POLICY_PII"])),
        cause_type=draw(st.sampled_from(["LLM_RUN", "HUMAN"])),
        title="t",
        severity=severity,
        started_at=started,
        last_event_at=started,
        is_synthetic=False,
        lifecycle_state=state,
        acked_at=acked,
        resolved_at=resolved,
        resolution_method=draw(st.sampled_from(METHODS)),
        calls_affected=draw(st.integers(0, 10_000)),
        cost_usd=draw(costs),
        reopen_count=draw(st.integers(0, 3)),
        breakdown=draw(st.sampled_from([{}, breakdown])),
    )


@st.composite
def cases(draw: st.DrawFn) -> tuple[list[Incident], SlaTargets, datetime]:
    targets = draw(targets_strategy)
    found = draw(st.lists(incident_strategy(targets), min_size=1, max_size=12))
    chosen = draw(st.sampled_from(found))
    deadline = chosen.started_at + targets.for_severity(chosen.severity)
    as_of = draw(near(deadline, st.sampled_from(EDGES)))
    return found, targets, as_of


def store(engine: Engine, found: list[Incident]) -> None:
    with engine.begin() as conn:
        conn.execute(delete(incidents))
        conn.execute(insert(incidents), [incident_row(item, partition=0) for item in found])


def per_incident(engine: Engine, targets: SlaTargets, as_of: datetime) -> dict[uuid.UUID, Any]:
    c = incidents.c
    query = select(
        c.incident_id,
        rules.severity_rank(),
        c.lifecycle_state.in_(rules.OPEN_STATES),
        c.lifecycle_state.in_(rules.ALL_STATES),
        rules.is_resolved(),
        rules.resolution_method(),
        rules.time_to_containment(),
        rules.time_to_resolution(),
        rules.sla_target(targets),
        rules.sla_status(targets, as_of),
        rules.utc_hour(c.started_at),
        rules.utc_day(c.started_at),
    )
    with engine.connect() as conn:
        return {row[0]: tuple(row[1:]) for row in conn.execute(query)}


def python_rules(item: Incident, targets: SlaTargets, as_of: datetime) -> tuple[Any, ...]:
    snapshot = IncidentSnapshot.model_validate(item.snapshot())
    return (
        SEVERITY_RANK[item.severity],
        item.is_open,
        True,
        analytics.resolved_at(snapshot) is not None,
        analytics.recurrence_method(snapshot),
        time_to_containment(item.started_at, item.acked_at, item.resolved_at),
        time_to_resolution(item.started_at, item.resolved_at),
        targets.for_severity(item.severity),
        sla_status(item.severity, item.started_at, item.resolved_at, as_of, targets).value,
        utc_hour(item.started_at),
        utc_day(item.started_at),
    )


KEY_COLUMNS = {
    analytics.ROLLUPS: analytics.RollupKey._fields,
    analytics.RECURRENCE: analytics.RecurrenceKey._fields,
    analytics.COSTS: analytics.CostKey._fields,
}
KEY_TYPES: dict[str, type[Any]] = {
    analytics.ROLLUPS: analytics.RollupKey,
    analytics.RECURRENCE: analytics.RecurrenceKey,
    analytics.COSTS: analytics.CostKey,
}


def sql_contributions(engine: Engine, processor: str, targets: SlaTargets) -> dict[RowKey, Any]:
    """The processor's rows as the SQL twin gives them, summed by row key."""
    if processor == analytics.ROLLUPS:
        selects = [rules.rollup_rows()]
    elif processor == analytics.RECURRENCE:
        selects = [rules.recurrence_rows()]
    else:
        selects = rules.cost_rows()
    totals: dict[RowKey, Any] = {}
    with engine.connect() as conn:
        for query in selects:
            for row in conn.execute(query).mappings():
                key = KEY_TYPES[processor](*(row[name] for name in KEY_COLUMNS[processor]))
                counters = {name: value for name, value in row.items() if name not in key._fields}
                add_counters(totals, {key: counters})
    return drop_zero_rows(totals)


def python_contributions(found: list[Incident], processor: str, targets: SlaTargets) -> Any:
    totals: dict[RowKey, Any] = {}
    for item in found:
        part: Contribution = contribution(
            processor, IncidentSnapshot.model_validate(item.snapshot()), targets
        )
        add_counters(totals, part.counters)
    return drop_zero_rows(totals)


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=cases())
def test_every_sql_twin_agrees_with_its_python_rule(
    engine: Engine, case: tuple[list[Incident], SlaTargets, datetime]
) -> None:
    found, targets, as_of = case
    store(engine, found)
    got = per_incident(engine, targets, as_of)
    for item in found:
        assert got[item.incident_id] == python_rules(item, targets, as_of), item
    for processor in (analytics.ROLLUPS, analytics.RECURRENCE, analytics.COSTS):
        expected = python_contributions(found, processor, targets)
        assert sql_contributions(engine, processor, targets) == expected, processor


def test_the_state_sets_and_the_severity_rank_cover_the_domain() -> None:
    assert set(rules.ALL_STATES) == {state.value for state in LifecycleState}
    assert set(rules.OPEN_STATES) == {s.value for s in LifecycleState if s.value != "RESOLVED"}
    assert (LifecycleState.RESOLVED.value,) == rules.RESOLVED_STATES
    assert tuple(SEVERITY_RANK) == rules.SEVERITIES
    assert all(f"WHEN '{name}' THEN {rank}" in rules.SEVERITY_RANK_SQL for name, rank in
               SEVERITY_RANK.items())  # fmt: skip


@st.composite
def triage_cases(draw: st.DrawFn) -> tuple[list[tuple[str | None, datetime | None]], datetime]:
    """Lessons' stored triage (state and deferral; None: no row) and an `as_of` at, before or
    after the deferrals' ends, in several offsets."""
    at = draw(near(BASE, st.sampled_from(EDGES)))
    until = st.none() | near(at, st.sampled_from(EDGES))
    state = st.sampled_from([None, *(state.value for state in LessonState)])
    return draw(st.lists(st.tuples(state, until), min_size=1, max_size=12)), at


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=triage_cases())
def test_the_lesson_state_twin_agrees_with_effective_state(
    engine: Engine, case: tuple[list[tuple[str | None, datetime | None]], datetime]
) -> None:
    stored, at = case
    ids = [uuid.uuid4() for _ in stored]
    with engine.begin() as conn:
        conn.execute(delete(lesson_triage))
        conn.execute(delete(lessons))
        conn.execute(insert(lessons), [_lesson_row(lesson) for lesson in ids])
        triaged = [
            {"lesson_id": lesson, "tenant_id": "acme", "state": state, "deferred_until": until,
             "changed_at": BASE, "changed_by": "t", "commands": 1}
            for lesson, (state, until) in zip(ids, stored, strict=True)
            if state is not None
        ]  # fmt: skip
        if triaged:
            conn.execute(insert(lesson_triage), triaged)
        t = lesson_triage.c
        query = select(lessons.c.lesson_id, rules.lesson_state(t.state, t.deferred_until, at))
        joined = query.outerjoin_from(lessons, lesson_triage, t.lesson_id == lessons.c.lesson_id)
        got = dict(conn.execute(joined).tuples().all())
    for lesson, (state, until) in zip(ids, stored, strict=True):
        expected = LessonState.PENDING if state is None else effective_state(state, until, at)
        assert got[lesson] == expected.value, (state, until, at)


def _lesson_row(lesson: uuid.UUID) -> dict[str, Any]:
    return {
        "lesson_id": lesson, "tenant_id": "acme", "kind": "reopened", "subject": str(lesson),
        "incident_ids": [lesson], "incident_count": 1, "proposed_action": "p",
        "first_seen": BASE, "last_seen": BASE,
    }  # fmt: skip
