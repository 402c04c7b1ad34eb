"""The domain rules that queries also evaluate in SQL, each built from the domain's own constants.

Every expression here is the SQL twin of one pure rule; `tests/integration/test_rule_parity.py`
evaluates both on the same generated incidents in PostgreSQL and requires equal answers:

| SQL here | Python rule |
|---|---|
| `ALL_STATES`, `OPEN_STATES`, `RESOLVED_STATES` | `LifecycleState`, `Incident.is_open` |
| `SEVERITIES`, `SEVERITY_RANK_SQL`, `severity_rank` | `Severity`, `SEVERITY_RANK` |
| `utc_hour`, `utc_day` | `domain.buckets.utc_hour`, `utc_day` |
| `time_to_containment`, `time_to_resolution` | `domain.metrics`, same names |
| `sla_target`, `sla_met`, `sla_breached`, `sla_status` | `SlaTargets.for_severity`, `sla_status` |
| `is_resolved`, `resolution_method` | `snapshot.resolved_at`, `analytics.recurrence_method` |
| `lesson_state` | `domain.lesson_triage.effective_state` |
| `rollup_rows`, `recurrence_rows`, `cost_rows` | `domain.analytics` contributions |

The last three give, for the incidents matching a condition, the rows their contributions add to
`incident_rollups_hourly`, `recurrence_daily` and `cost_daily` (one row per incident and key,
column names as the tables'): a query reads a processor's table for whole buckets and these for
the current bucket, which the processors may not have reached yet.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    Numeric,
    Select,
    Table,
    and_,
    case,
    cast,
    extract,
    func,
    literal,
    literal_column,
    or_,
    select,
    true,
)

from domain.analytics import COST_DIMENSIONS, UNRESOLVED
from domain.contracts import Severity
from domain.incidents import SEVERITY_RANK, LifecycleState
from domain.lesson_triage import LessonState
from domain.metrics import SlaStatus, SlaTargets

ALL_STATES = tuple(state.value for state in LifecycleState)
RESOLVED_STATES = (LifecycleState.RESOLVED.value,)
OPEN_STATES = tuple(state for state in ALL_STATES if state not in RESOLVED_STATES)
"""An open incident is one not resolved: ACTIVE or ACKED."""
SEVERITIES = tuple(severity.value for severity in Severity)

SEVERITY_RANK_SQL = (
    "CASE severity "
    + " ".join(f"WHEN '{name}' THEN {rank}" for name, rank in SEVERITY_RANK.items())
    + " ELSE -1 END"
)
"""The severity as its rank (low 0 ... critical 3), as SQL: lists sort by it, and an index holds it.
Queries must use this exact text (constants, not parameters) for PostgreSQL to use the index."""


def _incidents() -> Table:
    # Imported here: storage.schema builds its check constraints and indexes from the constants
    # above, so it imports this module.
    from storage.schema import incidents

    return incidents


def severity_rank() -> ColumnElement[int]:
    """`SEVERITY_RANK_SQL` as a column: the very expression the listing indexes hold."""
    return literal_column(f"({SEVERITY_RANK_SQL})", Integer)


def utc_hour(column: Any) -> ColumnElement[datetime]:
    return func.date_trunc("hour", column, "UTC")


def utc_day(column: Any) -> ColumnElement[Any]:
    return func.date(func.timezone("UTC", column))


def epoch_seconds(interval: Any) -> ColumnElement[Any]:
    """The exact seconds of an interval (numeric: microseconds kept)."""
    return extract("epoch", interval)


def time_to_containment() -> ColumnElement[timedelta]:
    i = _incidents().c
    return func.coalesce(i.acked_at, i.resolved_at) - i.started_at


def time_to_resolution() -> ColumnElement[timedelta]:
    i = _incidents().c
    return i.resolved_at - i.started_at


def sla_target(targets: SlaTargets) -> ColumnElement[timedelta]:
    """The incident's time to resolution allowed by its severity."""
    i = _incidents().c
    return case({name: targets.for_severity(name) for name in SEVERITIES}, value=i.severity)


def sla_met(targets: SlaTargets) -> ColumnElement[bool]:
    i = _incidents().c
    return and_(i.resolved_at.is_not(None), i.resolved_at <= i.started_at + sla_target(targets))


def sla_breached(targets: SlaTargets, as_of: datetime | ColumnElement[Any]) -> ColumnElement[bool]:
    i = _incidents().c
    deadline = i.started_at + sla_target(targets)
    return or_(
        and_(i.resolved_at.is_not(None), i.resolved_at > deadline),
        and_(i.resolved_at.is_(None), deadline < as_of),
    )


def sla_status(targets: SlaTargets, as_of: datetime | ColumnElement[Any]) -> ColumnElement[str]:
    return case(
        (sla_met(targets), SlaStatus.MET.value),
        (sla_breached(targets, as_of), SlaStatus.BREACHED.value),
        else_=SlaStatus.PENDING.value,
    )


def is_resolved() -> ColumnElement[bool]:
    i = _incidents().c
    return and_(i.lifecycle_state.in_(RESOLVED_STATES), i.resolved_at.is_not(None))


def resolution_method() -> ColumnElement[str]:
    """The method if resolved (and named), else `unresolved`."""
    i = _incidents().c
    method = func.coalesce(func.nullif(i.resolution_method, ""), UNRESOLVED)
    return case((is_resolved(), method), else_=literal(UNRESOLVED))


def lesson_state(
    state: ColumnElement[Any], deferred_until: ColumnElement[Any], at: datetime | ColumnElement[Any]
) -> ColumnElement[str]:
    """A lesson's triage state at event time `at`: a deferral whose time has come is `pending`
    again. A lesson no command touched (`state` null: no `lesson_triage` row) is `pending`."""
    stored = func.coalesce(state, LessonState.PENDING.value)
    expired = and_(stored == LessonState.DEFERRED.value, deferred_until <= at)
    return case((expired, literal(LessonState.PENDING.value)), else_=stored)


def _resolved_at() -> ColumnElement[datetime]:
    i = _incidents().c
    return case((is_resolved(), i.resolved_at))


def rollup_rows(*where: ColumnElement[bool]) -> Select[Any]:
    """`incident_rollups_hourly` rows of the incidents matching `where`."""
    i = _incidents().c
    resolved = is_resolved()
    return select(
        i.tenant_id,
        utc_hour(i.started_at).label("hour"),
        i.category,
        i.severity,
        i.cause_type,
        literal(1, Integer).label("started"),
        _count(resolved).label("resolved"),
        i.cost_usd,
        _seconds(_resolved_at() - i.started_at).label("resolution_seconds_sum"),
        _count(resolved).label("resolution_count"),
    ).where(*where)


def _count(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return cast(condition, Integer)


def _seconds(interval: ColumnElement[Any]) -> ColumnElement[Any]:
    """Exact seconds of an interval, 0 for null (as a contribution sums them)."""
    return func.coalesce(epoch_seconds(interval), literal(0, Numeric))


def recurrence_rows(*where: ColumnElement[bool]) -> Select[Any]:
    """`recurrence_daily` rows of the incidents matching `where`."""
    i = _incidents().c
    return select(
        i.tenant_id,
        utc_day(i.started_at).label("day"),
        i.category,
        resolution_method().label("resolution_method"),
        literal(1, Integer).label("incidents"),
    ).where(*where)


def cost_rows(*where: ColumnElement[bool]) -> list[Select[Any]]:
    """`cost_daily` rows of the incidents matching `where`: one select per dimension (category,
    then the model and agent keys of the breakdown), to be combined with UNION ALL."""
    i = _incidents().c
    selects = [
        select(
            i.tenant_id,
            utc_day(i.started_at).label("day"),
            literal(COST_DIMENSIONS[0]).label("dimension"),
            i.category.label("key"),
            literal(1, Integer).label("incidents"),
            cast(i.calls_affected, BigInteger).label("calls"),
            i.cost_usd,
        ).where(*where)
    ]
    for dimension in COST_DIMENSIONS[1:]:
        entry = func.jsonb_each(i.breakdown.op("->")(dimension)).table_valued("key", "value")
        selects.append(
            select(
                i.tenant_id,
                utc_day(i.started_at).label("day"),
                literal(dimension).label("dimension"),
                entry.c.key,
                literal(1, Integer).label("incidents"),
                cast(entry.c.value.op("->>")("calls"), BigInteger).label("calls"),
                cast(entry.c.value.op("->>")("cost_usd"), Numeric).label("cost_usd"),
            )
            .select_from(_incidents().join(entry, true()))
            .where(*where)
        )
    return selects
