"""Contributions of incident snapshots to the processors' tables, and their differences."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from domain import analytics
from domain.analytics import (
    CostKey,
    PatternMember,
    RecurrenceKey,
    RollupKey,
    contribution,
    counter_delta,
    drop_zero_rows,
    newer_snapshots,
)
from domain.incidents import BreakdownEntry, LifecycleState
from domain.metrics import SlaTargets
from domain.snapshot import IncidentSnapshot
from tests.builders import incident

T0 = datetime(2024, 11, 22, 14, 25, 30, tzinfo=UTC)
HOUR = datetime(2024, 11, 22, 14, tzinfo=UTC)
SLA = SlaTargets()
ID = uuid.UUID("00000000-0000-0000-0000-000000000001")


def snapshot(version: int = 1, **fields: Any) -> IncidentSnapshot:
    built = incident(
        incident_id=ID,
        started_at=T0,
        last_event_at=T0 + timedelta(minutes=3),
        fingerprints=["openai/gpt-4o/timeout"],
        calls_affected=4,
        cost_usd=Decimal("0.12000000"),
        run_ids=["run-1", "run-2"],
        version=version,
        breakdown={
            "model": {"openai/gpt-4o": BreakdownEntry(4, Decimal("0.12"))},
            "agent": {"a1": BreakdownEntry(3, Decimal("0.1")), "unknown": BreakdownEntry(1)},
        },
    )
    for name, value in fields.items():
        setattr(built, name, value)
    return IncidentSnapshot.model_validate(built.snapshot())


def rollup(snap: IncidentSnapshot) -> dict[Any, Any]:
    return contribution(analytics.ROLLUPS, snap, SLA).counters


def test_an_open_incident_counts_as_started_with_its_cost() -> None:
    counters = rollup(snapshot())
    key = RollupKey("acme", HOUR, "LLM_TIMEOUT", "low", "LLM_RUN")
    assert counters == {
        key: {
            "started": 1,
            "resolved": 0,
            "cost_usd": Decimal("0.12"),
            "resolution_seconds_sum": 0,
            "resolution_count": 0,
        }
    }


def test_resolution_adds_its_duration() -> None:
    acked = snapshot(2, lifecycle_state=LifecycleState.ACKED, acked_at=T0 + timedelta(seconds=90))
    resolved = snapshot(
        3,
        lifecycle_state=LifecycleState.RESOLVED,
        acked_at=T0 + timedelta(seconds=90),
        resolved_at=T0 + timedelta(hours=2, microseconds=500_000),
        resolution_method="manual",
    )
    delta = counter_delta(contribution(analytics.ROLLUPS, acked, SLA), rollup_of(resolved))
    (row,) = delta.values()
    assert row == {
        "resolved": 1,
        "resolution_seconds_sum": Decimal("7200.5"),
        "resolution_count": 1,
    }
    late = snapshot(
        3,
        lifecycle_state=LifecycleState.RESOLVED,
        resolved_at=T0 + timedelta(hours=73),
        resolution_method="auto",
    )
    (row,) = rollup(late).values()
    assert (row["resolved"], row["resolution_seconds_sum"]) == (1, 73 * 3600)


def rollup_of(snap: IncidentSnapshot) -> analytics.Contribution:
    return contribution(analytics.ROLLUPS, snap, SLA)


def test_an_escalation_moves_the_incident_between_rollup_rows() -> None:
    low, high = snapshot(1), snapshot(2, severity="high", calls_affected=60)
    delta = counter_delta(rollup_of(low), rollup_of(high))
    low_key = RollupKey("acme", HOUR, "LLM_TIMEOUT", "low", "LLM_RUN")
    high_key = low_key._replace(severity="high")
    assert delta[low_key] == {"started": -1, "cost_usd": Decimal("-0.12")}
    assert delta[high_key] == {"started": 1, "cost_usd": Decimal("0.12")}


def test_the_same_snapshot_twice_changes_nothing() -> None:
    for processor in analytics.PROCESSORS:
        same = contribution(processor, snapshot(), SLA)
        assert counter_delta(same, same) == {}


def test_a_reopen_moves_recurrence_back_to_unresolved_and_counts_the_reopen() -> None:
    resolved = snapshot(
        2, lifecycle_state=LifecycleState.RESOLVED, resolved_at=T0 + timedelta(minutes=20),
        resolution_method="auto",
    )  # fmt: skip
    reopened = snapshot(3, reopen_count=1)
    old = contribution(analytics.RECURRENCE, resolved, SLA)
    new = contribution(analytics.RECURRENCE, reopened, SLA)
    day = date(2024, 11, 22)
    assert counter_delta(old, new) == {
        RecurrenceKey("acme", day, "LLM_TIMEOUT", "auto"): {"incidents": -1},
        RecurrenceKey("acme", day, "LLM_TIMEOUT", "unresolved"): {"incidents": 1},
    }
    (member,) = new.members
    assert member.reopen_count == 1 and member.fingerprint == "openai/gpt-4o/timeout"


def test_fingerprint_members_cover_every_fingerprint_once() -> None:
    snap = snapshot(fingerprints=["openai/gpt-4o/timeout", "custom-fp"])
    members = contribution(analytics.RECURRENCE, snap, SLA).members
    assert sorted(m.fingerprint for m in members) == ["custom-fp", "openai/gpt-4o/timeout"]


def test_cost_rows_by_category_model_and_agent() -> None:
    counters = contribution(analytics.COSTS, snapshot(), SLA).counters
    day = date(2024, 11, 22)
    assert counters == {
        CostKey("acme", day, "category", "LLM_TIMEOUT"): {
            "incidents": 1, "calls": 4, "cost_usd": Decimal("0.12"),
        },
        CostKey("acme", day, "model", "openai/gpt-4o"): {
            "incidents": 1, "calls": 4, "cost_usd": Decimal("0.12"),
        },
        CostKey("acme", day, "agent", "a1"): {
            "incidents": 1, "calls": 3, "cost_usd": Decimal("0.1"),
        },
        CostKey("acme", day, "agent", "unknown"): {
            "incidents": 1, "calls": 1, "cost_usd": Decimal(0),
        },
    }  # fmt: skip


def test_pattern_members_by_category_severity_and_run() -> None:
    members = contribution(analytics.PATTERNS, snapshot(severity="critical"), SLA).members
    assert set(members) == {
        PatternMember("acme", "category_cluster", "LLM_TIMEOUT", ID, T0),
        PatternMember("acme", "severity_spike", "critical", ID, T0),
        PatternMember("acme", "cascade_failure", "run-1", ID, T0),
        PatternMember("acme", "cascade_failure", "run-2", ID, T0),
    }
    low = contribution(analytics.PATTERNS, snapshot(severity="medium"), SLA).members
    assert {m.pattern_type for m in low} == {"category_cluster", "cascade_failure"}


def test_the_overflow_incident_counts_in_rollups_but_is_no_pattern_member() -> None:
    overflow = snapshot(trigger_type="rate_limit_overflow", category="RATE_LIMIT_OVERFLOW")
    assert contribution(analytics.PATTERNS, overflow, SLA).members == ()
    ((key, row),) = rollup(overflow).items()
    assert key.category == "RATE_LIMIT_OVERFLOW" and row["started"] == 1


def test_only_the_newest_version_newer_than_stored_is_kept() -> None:
    other = snapshot(5).model_copy(update={"incident_id": uuid.uuid4()})
    batch = [snapshot(3), snapshot(7), snapshot(5), other]
    newer = newer_snapshots(batch, {ID: 6, other.incident_id: 5})
    assert [s.version for s in newer.values()] == [7]
    assert newer_snapshots(batch, {ID: 7, other.incident_id: 5}) == {}


def test_changes_arriving_in_any_order_sum_to_the_final_contribution() -> None:
    versions = [
        snapshot(1),
        snapshot(2, severity="medium", calls_affected=12),
        snapshot(3, severity="high", calls_affected=55, lifecycle_state=LifecycleState.ACKED,
                 acked_at=T0 + timedelta(minutes=9)),
        snapshot(4, severity="high", calls_affected=55, lifecycle_state=LifecycleState.RESOLVED,
                 acked_at=T0 + timedelta(minutes=9), resolved_at=T0 + timedelta(minutes=30),
                 resolution_method="rollback"),
    ]  # fmt: skip
    for processor in analytics.PROCESSORS:
        for order in ([0, 1, 2, 3], [2, 0, 3, 1], [3, 2, 1, 0], [1, 1, 3, 3]):
            totals: dict[Any, Any] = {}
            stored: IncidentSnapshot | None = None
            for index in order:
                newer = newer_snapshots([versions[index]], {} if stored is None else {
                    ID: stored.version})  # fmt: skip
                for snap in newer.values():
                    old = contribution(processor, stored, SLA) if stored else None
                    delta = counter_delta(old, contribution(processor, snap, SLA))
                    analytics.add_counters(totals, delta)
                    stored = snap
            expected = contribution(processor, versions[max(order)], SLA).counters
            assert drop_zero_rows(totals) == drop_zero_rows(expected), (processor, order)
