"""`incident_counts` against a real PostgreSQL: the triggers keep it equal to a count of
`incidents` through every kind of write, and migration 0008 counts the incidents already there."""

from __future__ import annotations

import random
import uuid

import psycopg
from alembic import command

from storage.migrate import alembic_config, upgrade
from storage.schema import RECOUNT_INCIDENTS

STATES = ("ACTIVE", "ACKED", "RESOLVED")

INSERT = (
    "INSERT INTO incidents (incident_id, partition, tenant_id, trigger_type, fingerprint, category,"
    " cause_type, title, severity, lifecycle_state, started_at, opened_at, last_event_at)"
    " VALUES (%s, 0, %s, 'x', 'f', 'c', 'LLM_RUN', 'T', 'low', %s, now(), now(), now())"
)
# The ingest worker's write: every column of a touched incident again, on conflict.
UPSERT = (
    INSERT + " ON CONFLICT (incident_id) DO UPDATE SET tenant_id = excluded.tenant_id,"
    " lifecycle_state = excluded.lifecycle_state, calls_affected = incidents.calls_affected + 1"
)


def kept(connection: psycopg.Connection) -> dict[tuple[str, str], int]:
    rows = connection.execute(
        "SELECT tenant_id, lifecycle_state, incidents FROM incident_counts WHERE incidents <> 0"
    ).fetchall()
    return {(tenant, state): count for tenant, state, count in rows}


def counted(connection: psycopg.Connection) -> dict[tuple[str, str], int]:
    rows = connection.execute(
        "SELECT tenant_id, lifecycle_state, count(*) FROM incidents GROUP BY 1, 2"
    ).fetchall()
    return {(tenant, state): count for tenant, state, count in rows}


def test_every_kind_of_write_keeps_the_counts_exact(database_url: str) -> None:
    rng = random.Random(8)
    ids: list[uuid.UUID] = []
    with psycopg.connect(database_url) as connection:
        for step in range(400):
            action = rng.choice(("insert", "upsert", "upsert", "delete", "move"))
            if action == "insert" or not ids:
                ids.append(uuid.uuid4())
                connection.execute(INSERT, (ids[-1], rng.choice("ab"), rng.choice(STATES)))
            elif action == "upsert":
                connection.execute(UPSERT, (rng.choice(ids), rng.choice("ab"), rng.choice(STATES)))
            elif action == "delete":
                connection.execute("DELETE FROM incidents WHERE incident_id = %s", (ids.pop(),))
            else:  # another tenant: an UPDATE that is no upsert
                connection.execute(
                    "UPDATE incidents SET tenant_id = %s WHERE incident_id = %s",
                    (rng.choice("abc"), rng.choice(ids)),
                )
            if step % 50 == 0:
                connection.commit()
        connection.commit()
        assert sum(counted(connection).values()) == len(ids) > 0
        assert kept(connection) == counted(connection)
        before = kept(connection)
        for statement in RECOUNT_INCIDENTS:  # what a bulk load runs: the same counts
            connection.execute(statement)
        assert kept(connection) == before

        connection.execute("TRUNCATE incidents CASCADE")
        assert kept(connection) == {}


def test_a_rolled_back_write_leaves_the_counts_alone(database_url: str) -> None:
    with psycopg.connect(database_url) as connection:
        connection.execute(INSERT, (uuid.uuid4(), "a", "ACTIVE"))
        connection.commit()
        connection.execute(INSERT, (uuid.uuid4(), "a", "ACTIVE"))
        connection.rollback()
        assert kept(connection) == {("a", "ACTIVE"): 1}


def test_the_migration_counts_the_incidents_already_there(raw_database_url: str) -> None:
    command.upgrade(alembic_config(raw_database_url), "0007")
    with psycopg.connect(raw_database_url) as connection:
        existing = [("a", "ACTIVE"), ("a", "RESOLVED"), ("a", "RESOLVED"), ("b", "ACKED")]
        for tenant, state in existing:
            connection.execute(INSERT, (uuid.uuid4(), tenant, state))
        connection.commit()
    upgrade(raw_database_url)
    with psycopg.connect(raw_database_url) as connection:
        assert kept(connection) == {("a", "ACTIVE"): 1, ("a", "RESOLVED"): 2, ("b", "ACKED"): 1}
        connection.execute(UPSERT, (uuid.uuid4(), "b", "ACKED"))
        assert kept(connection) == counted(connection)


def test_downgrade_drops_the_triggers_and_their_function(database_url: str) -> None:
    command.downgrade(alembic_config(database_url), "0007")
    with psycopg.connect(database_url) as connection:
        connection.execute(INSERT, (uuid.uuid4(), "a", "ACTIVE"))  # no trigger left to fail
        functions = connection.execute(
            "SELECT count(*) FROM pg_proc WHERE proname = 'count_incidents'"
        ).fetchone()
    assert functions == (0,)
