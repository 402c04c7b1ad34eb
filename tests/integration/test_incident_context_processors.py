"""The stream processors over snapshots with and without the incident's context fields.

A processor stores the last snapshot it applied per incident and subtracts that snapshot's
contribution from the next one's. Snapshots stored before the context fields existed lack them:
they must still be read, and the processors' tables must not depend on fields they do not read.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from domain.aggregation import PartitionAggregator
from domain.config import AggregationConfig
from domain.settings import Settings
from domain.snapshot import IncidentSnapshot
from storage.analytics_store import COUNTER_TABLES, MEMBER_TABLES, AnalyticsStore
from storage.engine import create_async_db_engine
from storage.migrate import upgrade
from tests.builders import failure
from tests.support import fresh_database

T0 = datetime(2024, 11, 22, 14, 0, tzinfo=UTC)
CONTEXT = (
    "description", "source_run_id", "agent_ids", "synthetic_scenario_id", "first_error_code",
    "first_error_message", "latest_error_code", "latest_error_message", "first_policy_id",
    "first_violation_id", "first_violated_rule", "first_action_taken", "latest_policy_id",
    "latest_violation_id", "latest_violated_rule", "latest_action_taken",
)  # fmt: skip
TIMES = {"updated_at", "created_at", "received_at"}
"""Columns written with the database's clock: not compared."""


def _snapshots() -> tuple[IncidentSnapshot, IncidentSnapshot]:
    """One incident after its first event, then after three more (escalated, with context)."""
    agg = PartitionAggregator(AggregationConfig(severity_thresholds=(2, 3, 4)))
    now = T0 + timedelta(days=1)
    taken = []
    for n in range(4):
        at = T0 + timedelta(seconds=n)
        agg.apply_signal(failure(f"e{n}", at=at, agent_id=f"bot-{n}", error_code="504"), now)
        if n in (0, 3):
            (incident,) = agg.take_changes().incidents.values()
            taken.append(IncidentSnapshot.model_validate(incident.snapshot()))
    first, last = taken
    assert (first.severity, last.severity) == ("low", "critical")
    assert last.agent_ids == ["bot-0", "bot-1", "bot-2", "bot-3"]
    return first, last


async def _apply(url: str, *batches: list[IncidentSnapshot], strip_after_first: bool) -> None:
    engine = create_async_db_engine(url, pool_size=1)
    try:
        store = AnalyticsStore(engine, Settings().sla_targets())
        for index, batch in enumerate(batches):
            await store.apply(batch)
            if index == 0 and strip_after_first:
                _strip_context(url)
    finally:
        await engine.dispose()


def _strip_context(url: str) -> None:
    """Make the stored snapshots what a processor wrote before the context fields existed."""
    removed = " - ".join(f"'{name}'" for name in CONTEXT)
    with psycopg.connect(url) as conn:
        conn.execute(f"UPDATE processor_snapshots SET snapshot = snapshot - {removed}")


def _tables(url: str) -> dict[str, list[dict[str, Any]]]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return {
            table.name: sorted(
                (
                    {k: v for k, v in row.items() if k not in TIMES}
                    for row in conn.execute(f"SELECT * FROM {table.name}")
                ),
                key=repr,
            )
            for table in (*COUNTER_TABLES.values(), *MEMBER_TABLES.values())
        }


def _stored(url: str) -> list[dict[str, Any]]:
    with psycopg.connect(url) as conn:
        return [row[0] for row in conn.execute("SELECT snapshot FROM processor_snapshots")]


async def test_a_snapshot_stored_without_the_context_is_replaced_as_any(postgres_url: str) -> None:
    first, last = _snapshots()
    with fresh_database(postgres_url) as old, fresh_database(postgres_url) as fresh:
        for url in (old, fresh):
            upgrade(url)
        await _apply(old, [first], [last], strip_after_first=True)
        await _apply(fresh, [last], strip_after_first=False)
        assert _tables(old) == _tables(fresh)
        assert any(rows for rows in _tables(fresh).values())
        stored = _stored(old)
        assert stored and all(s["agent_ids"] == last.agent_ids for s in stored)
        assert all(s["first_error_code"] == "504" for s in stored)
