"""Migration 0011 fills the incident's context of rows written before it from their events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from alembic import command
from psycopg.rows import dict_row

from storage.migrate import alembic_config, upgrade

T0 = datetime(2024, 11, 22, 14, 0, tzinfo=UTC)
BATCH_1, BATCH_2 = T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)


def _incident(conn: psycopg.Connection[Any], incident_id: uuid.UUID, run_ids: list[str]) -> None:
    conn.execute(
        "INSERT INTO incidents (incident_id, partition, tenant_id, trigger_type, fingerprint,"
        " category, cause_type, title, severity, lifecycle_state, started_at, opened_at,"
        " last_event_at, run_ids) VALUES (%s, 0, 'acme', 'llm_failure', 'f', 'LLM_TIMEOUT',"
        " 'LLM_RUN', 'T', 'low', 'ACTIVE', %s, %s, %s, %s)",
        (incident_id, T0, T0, T0, run_ids),
    )


def _failure(
    conn: psycopg.Connection[Any],
    event_id: str,
    incident_id: uuid.UUID,
    at: datetime,
    received_at: datetime,
    **fields: Any,
) -> None:
    values = {
        "event_id": event_id,
        "tenant_id": "acme",
        "occurred_at": at,
        "run_id": f"run-{event_id}",
        "provider": "openai",
        "model": "gpt-4o",
        "failure_type": "timeout",
        "received_at": received_at,
        "incident_id": incident_id,
    } | fields
    conn.execute(
        f"INSERT INTO llm_call_failures ({', '.join(values)})"
        f" VALUES ({', '.join(['%s'] * len(values))})",
        list(values.values()),
    )


def _violation(
    conn: psycopg.Connection[Any],
    event_id: str,
    incident_id: uuid.UUID,
    at: datetime,
    received_at: datetime,
    **fields: Any,
) -> None:
    values = {
        "event_id": event_id,
        "tenant_id": "acme",
        "occurred_at": at,
        "run_id": f"run-{event_id}",
        "policy_id": "pii",
        "violated_rule": "no emails",
        "severity": "low",
        "cause_type": "LLM_RUN",
        "received_at": received_at,
        "incident_id": incident_id,
    } | fields
    conn.execute(
        f"INSERT INTO policy_violations ({', '.join(values)})"
        f" VALUES ({', '.join(['%s'] * len(values))})",
        list(values.values()),
    )


def test_rows_written_before_the_context_get_it_from_their_events(raw_database_url: str) -> None:
    command.upgrade(alembic_config(raw_database_url), "0010")
    failures, policy, bare = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    with psycopg.connect(raw_database_url) as conn:
        _incident(conn, failures, ["run-a", "run-b"])
        _incident(conn, policy, ["run-p"])
        _incident(conn, bare, [])
        at = T0 + timedelta(seconds=30)
        _failure(conn, "a", failures, T0, BATCH_1, agent_id="bot-1", synthetic_scenario_id="s1")
        _failure(conn, "b", failures, at, BATCH_1, agent_id="bot-2", error_code="504")
        _failure(conn, "c", failures, at, BATCH_1, agent_id="bot-1", error_message="slow")
        # Earlier in time, in a later batch: applied after the others.
        _failure(conn, "d", failures, T0, BATCH_2, agent_id="bot-3", error_code="429")
        _failure(conn, "e", failures, at, BATCH_2)
        for n in range(12):
            _failure(conn, f"z{n:02d}", failures, at, BATCH_2, agent_id=f"bot-z{n:02d}")
        _violation(conn, "v1", policy, T0, BATCH_1, violation_id="V-1", action_taken="blocked")
        _violation(conn, "v2", policy, at, BATCH_1, violated_rule="no phones", agent_id="bot-9")
        conn.commit()

    upgrade(raw_database_url)

    with psycopg.connect(raw_database_url, row_factory=dict_row) as conn:
        rows = {row["incident_id"]: row for row in conn.execute("SELECT * FROM incidents")}
    row = rows[failures]
    assert (row["source_run_id"], row["synthetic_scenario_id"]) == ("run-a", "s1")
    assert row["agent_ids"] == ["bot-1", "bot-2", "bot-3", *(f"bot-z{n:02d}" for n in range(7))]
    assert (row["first_error_code"], row["first_error_message"]) == ("504", None)
    assert (row["latest_error_code"], row["latest_error_message"]) == ("429", None)
    assert row["first_policy_id"] is None and row["latest_action_taken"] is None
    assert row["description"] is None  # only the application writes it, at the next change
    row = rows[policy]
    assert (row["first_policy_id"], row["first_violation_id"]) == ("pii", "V-1")
    assert (row["first_violated_rule"], row["first_action_taken"]) == ("no emails", "blocked")
    assert (row["latest_violation_id"], row["latest_violated_rule"]) == ("v2", "no phones")
    assert (row["latest_action_taken"], row["agent_ids"]) == (None, ["bot-9"])
    assert row["first_error_code"] is None and row["source_run_id"] == "run-p"
    row = rows[bare]
    assert (row["source_run_id"], row["agent_ids"], row["first_error_code"]) == (None, [], None)
