"""Migration 0013 on a database with data: rollup rows that differed only by trigger type are
summed, the dropped figures go, and the downgrade rebuilds them from the processors' snapshots.

The downgrade's oracle is the old contribution, written out here from the incident's fields: per
(tenant, start hour, category, severity, cause, trigger) the incidents started, acknowledged and
resolved, their calls and cost, containment and resolution seconds and counts, and SLA met and
breached under the default targets.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from alembic import command
from psycopg.rows import dict_row

from domain import analytics
from domain.analytics import add_counters, contribution, drop_zero_rows
from domain.buckets import utc_day, utc_hour
from domain.incidents import Incident, LifecycleState
from domain.metrics import SlaStatus, SlaTargets, sla_status, time_to_containment
from domain.snapshot import IncidentSnapshot
from storage.analytics_store import AnalyticsStore
from storage.engine import create_async_db_engine
from storage.migrate import alembic_config, upgrade
from tests.builders import T0, incident
from tests.support import fresh_database

SLA = SlaTargets()
H = timedelta(hours=1)


@pytest.fixture
def url(postgres_url: str) -> Iterator[str]:
    with fresh_database(postgres_url) as url:
        yield url


def migrate(url: str, revision: str) -> None:
    config = alembic_config(url)
    if revision == "head":
        command.upgrade(config, revision)
    else:
        command.downgrade(config, revision)


def rows(url: str, table: str) -> list[dict[str, Any]]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return list(conn.execute(f"SELECT * FROM {table}"))


def columns(url: str, table: str) -> set[str]:
    with psycopg.connect(url) as conn:
        found = conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s", (table,)
        )
        return {name for (name,) in found}


OLD_ROLLUP = (
    "tenant_id, hour, category, severity, cause_type, trigger_type, started, acknowledged,"
    " resolved, calls, cost_usd, containment_seconds_sum, containment_count,"
    " resolution_seconds_sum, resolution_count, sla_met, sla_breached"
)


def test_the_upgrade_sums_rollups_across_trigger_types_and_drops_the_unread(url: str) -> None:
    command.upgrade(alembic_config(url), "0012")
    hour = utc_hour(T0)
    with psycopg.connect(url) as conn:
        for trigger, started, cost in (("llm_failure", 2, "1.5"), ("rate_limit", 1, "0.25")):
            conn.execute(
                f"INSERT INTO incident_rollups_hourly ({OLD_ROLLUP}) VALUES"
                " ('acme', %s, 'LLM_TIMEOUT', 'low', 'LLM_RUN', %s, %s, 1, 1, 9, %s, 60, 1,"
                " 120.5, 1, 1, 0)",
                (hour, trigger, started, cost),
            )
        conn.execute(
            f"INSERT INTO incident_rollups_hourly ({OLD_ROLLUP}) VALUES"
            " ('acme', %s, 'LLM_TIMEOUT', 'high', 'LLM_RUN', 'llm_failure', 1, 0, 0, 3, 2, 0, 0,"
            " 0, 0, 0, 0)",
            (hour,),
        )
        conn.execute(
            "INSERT INTO recurrence_daily VALUES ('acme', %s, 'LLM_TIMEOUT', 'auto', 3, 2)",
            (T0.date(),),
        )
    migrate(url, "head")
    merged = {row["severity"]: row for row in rows(url, "incident_rollups_hourly")}
    assert merged["low"] | {"hour": None} == {
        "tenant_id": "acme", "hour": None, "category": "LLM_TIMEOUT", "severity": "low",
        "cause_type": "LLM_RUN", "started": 3, "resolved": 2, "cost_usd": Decimal("1.75"),
        "resolution_seconds_sum": Decimal("241.0"), "resolution_count": 2,
    }  # fmt: skip
    assert merged["high"]["started"] == 1 and len(merged) == 2
    assert rows(url, "recurrence_daily") == [
        {"tenant_id": "acme", "day": T0.date(), "category": "LLM_TIMEOUT",
         "resolution_method": "auto", "incidents": 3}
    ]  # fmt: skip
    assert "detected_patterns" not in columns_of_tables(url)
    assert "created_watermark" in columns(url, "incidents")


def columns_of_tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        found = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {name for (name,) in found}


def incidents() -> list[Incident]:
    resolved = {"lifecycle_state": LifecycleState.RESOLVED, "resolution_method": "manual"}
    return [
        incident(calls_affected=4, cost_usd=Decimal("0.4")),
        incident(
            trigger_type="rate_limit", calls_affected=2, cost_usd=Decimal("0.25"),
            acked_at=T0 + timedelta(minutes=5), resolved_at=T0 + 80 * H, reopen_count=2,
            **resolved,
        ),
        incident(
            severity="critical", calls_affected=300, cost_usd=Decimal("3"),
            acked_at=T0 + timedelta(minutes=1), lifecycle_state=LifecycleState.ACKED,
        ),
        incident(
            started_at=T0 - 30 * H, last_event_at=T0 - 29 * H, resolved_at=T0 - 29 * H,
            reopen_count=1, **resolved,
        ),
    ]  # fmt: skip


def old_rollups(snapshots: list[IncidentSnapshot]) -> dict[tuple[Any, ...], dict[str, Any]]:
    expected: dict[tuple[Any, ...], dict[str, Any]] = defaultdict(lambda: defaultdict(int))
    for s in snapshots:
        resolved = s.resolved_at if s.lifecycle_state == LifecycleState.RESOLVED else None
        key = (s.tenant_id, utc_hour(s.started_at), s.category, s.severity, s.cause_type,
               s.trigger_type)  # fmt: skip
        containment = time_to_containment(s.started_at, s.acked_at, resolved)
        status = sla_status(s.severity, s.started_at, resolved, resolved, SLA) if resolved else None
        row = expected[key]
        row["started"] += 1
        row["acknowledged"] += s.acked_at is not None
        row["resolved"] += resolved is not None
        row["calls"] += s.calls_affected
        row["cost_usd"] += s.cost_usd
        row["containment_seconds_sum"] += containment.total_seconds() if containment else 0
        row["containment_count"] += containment is not None
        resolution = (resolved - s.started_at).total_seconds() if resolved else 0
        row["resolution_seconds_sum"] += resolution
        row["resolution_count"] += resolved is not None
        row["sla_met"] += status is SlaStatus.MET
        row["sla_breached"] += status is SlaStatus.BREACHED
    return {key: dict(row) for key, row in expected.items()}


async def test_the_downgrade_rebuilds_the_dropped_figures_from_the_snapshots(url: str) -> None:
    upgrade(url)
    snapshots = [IncidentSnapshot.model_validate(item.snapshot()) for item in incidents()]
    engine = create_async_db_engine(url)
    try:
        await AnalyticsStore(engine, SLA).apply(snapshots)
    finally:
        await engine.dispose()
    migrate(url, "0012")
    key_names = ("tenant_id", "hour", "category", "severity", "cause_type", "trigger_type")
    rebuilt = {
        tuple(row.pop(name) for name in key_names): {k: float(v) for k, v in row.items()}
        for row in rows(url, "incident_rollups_hourly")
    }
    expected = {
        key: {k: float(v) for k, v in row.items()} for key, row in old_rollups(snapshots).items()
    }
    assert rebuilt == expected and len(rebuilt) == 4
    assert any(row["sla_breached"] for row in rebuilt.values())
    assert any(row["containment_count"] for row in rebuilt.values())
    reopens = {(row["day"], row["resolution_method"]): row["reopens"] for row in
               rows(url, "recurrence_daily")}  # fmt: skip
    assert reopens == {
        (utc_day(T0), "unresolved"): 0,
        (utc_day(T0), "manual"): 2,
        (utc_day(T0 - 30 * H), "manual"): 1,
    }
    assert rows(url, "detected_patterns") == []
    assert "created_watermark" not in columns(url, "incidents")
    migrate(url, "head")
    totals: dict[Any, Any] = {}
    for snapshot in snapshots:
        add_counters(totals, contribution(analytics.ROLLUPS, snapshot, SLA).counters)
    again = {
        analytics.RollupKey(*(row.pop(name) for name in analytics.RollupKey._fields)): row
        for row in rows(url, "incident_rollups_hourly")
    }
    assert drop_zero_rows(again) == drop_zero_rows(totals)
