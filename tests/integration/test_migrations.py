"""storage.migrate against a real PostgreSQL: the migrations build exactly `storage.schema`."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import CheckConstraint, Column, Engine, inspect, text

from storage import analytics_schema  # noqa: F401  (adds the processors' tables to `metadata`)
from storage.engine import create_async_db_engine, create_sync_db_engine, normalize_url
from storage.migrate import alembic_config, current_revision, head_revision, is_current, upgrade
from storage.schema import UNCOMPRESSED_INCIDENT_COLUMNS, metadata
from tests.support import fresh_database

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


@pytest.fixture
def engine(raw_database_url: str) -> Iterator[Engine]:
    engine = create_sync_db_engine(raw_database_url)
    yield engine
    engine.dispose()


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def test_fresh_database_is_not_current(raw_database_url: str) -> None:
    assert current_revision(raw_database_url) is None
    assert not is_current(raw_database_url)


def test_upgrade_creates_every_table(raw_database_url: str, engine: Engine) -> None:
    upgrade(raw_database_url)
    assert _tables(engine) == set(metadata.tables) | {"alembic_version"}
    assert current_revision(raw_database_url) == head_revision()
    assert is_current(raw_database_url)


def test_upgrade_twice_is_a_no_op(raw_database_url: str, engine: Engine) -> None:
    upgrade(raw_database_url)
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO ingest_offsets VALUES ('t', 0, 42)"))
    upgrade(raw_database_url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT next_offset FROM ingest_offsets")).scalar() == 42
    assert is_current(raw_database_url)


def _in_created_database(postgres_url: str, read: Callable[[str], T]) -> T:
    """`read` of a fresh database built by `metadata.create_all`: what the migrations must equal
    where `compare_metadata` does not look."""
    with fresh_database(postgres_url) as reference_url:
        reference = create_sync_db_engine(reference_url)
        try:
            metadata.create_all(reference)
        finally:
            reference.dispose()
        return read(reference_url)


def _not_an_expression_index(item: Any, name: Any, kind: str, reflected: bool, other: Any) -> bool:
    """Alembic compares an expression index by its text, which PostgreSQL reformats: those are
    compared by `test_indexes_match_metadata` instead."""
    return not (kind == "index" and any(not isinstance(e, Column) for e in item.expressions))


def test_migrated_schema_matches_metadata(raw_database_url: str, engine: Engine) -> None:
    upgrade(raw_database_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                "compare_server_default": True,
                "include_object": _not_an_expression_index,
            },
        )
        assert compare_metadata(context, metadata) == []


def _indexes(url: str) -> dict[str, str]:
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
            " AND tablename <> 'alembic_version'"
        ).fetchall()
    return dict(rows)


def test_indexes_match_metadata(raw_database_url: str, postgres_url: str) -> None:
    """Every index, expression indexes included, as PostgreSQL itself renders it."""
    upgrade(raw_database_url)
    expected = _in_created_database(postgres_url, _indexes)
    assert "ix_incidents_tenant_state_severity" in expected
    assert _indexes(raw_database_url) == expected


def _check_constraints(url: str) -> dict[tuple[str, str], str]:
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)"
            " FROM pg_constraint WHERE contype = 'c' AND conrelid <> 0"
            " AND connamespace = 'public'::regnamespace"
        ).fetchall()
    return {(table, name): definition for table, name, definition in rows}


def test_check_constraints_match_metadata(raw_database_url: str, postgres_url: str) -> None:
    """compare_metadata ignores CHECK constraints: compare PostgreSQL's own rendering of them
    in a migrated database and in one built by `metadata.create_all`."""
    upgrade(raw_database_url)
    expected = _in_created_database(postgres_url, _check_constraints)
    assert len(expected) == sum(
        isinstance(constraint, CheckConstraint)
        for table in metadata.tables.values()
        for constraint in table.constraints
    )
    assert _check_constraints(raw_database_url) == expected


@pytest.mark.parametrize(
    ("statement", "constraint"),
    [
        (
            "INSERT INTO incidents (incident_id, partition, tenant_id, trigger_type, fingerprint,"
            " category, cause_type, title, severity, lifecycle_state, started_at, opened_at,"
            " last_event_at)"
            " VALUES (gen_random_uuid(), 0, 't', 'x', 'f', 'c', 'LLM_RUN', 'T', 'low', 'OPEN',"
            " now(), now(), now())",
            "ck_incidents_lifecycle_state",
        ),
        (
            "INSERT INTO incidents (incident_id, partition, tenant_id, trigger_type, fingerprint,"
            " category, cause_type, title, severity, lifecycle_state, started_at, opened_at,"
            " last_event_at)"
            " VALUES (gen_random_uuid(), 0, 't', 'x', 'f', 'c', 'LLM_RUN', 'T', 'huge', 'ACTIVE',"
            " now(), now(), now())",
            "ck_incidents_severity",
        ),
        (
            "INSERT INTO api_keys (key_hash, key_id, tenant_id, is_ops)"
            " VALUES ('h', 'k', 't', true)",
            "ck_api",
        ),
        (
            "INSERT INTO api_keys (key_hash, key_id, tenant_id, is_ops)"
            " VALUES ('h', 'k', NULL, false)",
            "ck_api",
        ),
    ],
)
def test_check_constraints_reject_bad_rows(
    raw_database_url: str, statement: str, constraint: str
) -> None:
    upgrade(raw_database_url)
    with (
        psycopg.connect(raw_database_url) as connection,
        pytest.raises(psycopg.errors.CheckViolation, match=constraint),
    ):
        connection.execute(statement)


def test_defaults_fill_a_minimal_incident(raw_database_url: str, engine: Engine) -> None:
    upgrade(raw_database_url)
    with engine.begin() as connection:
        row = (
            connection.execute(
                text(
                    "INSERT INTO incidents (incident_id, partition, tenant_id, trigger_type,"
                    " fingerprint, category, cause_type, title, severity, lifecycle_state,"
                    " started_at, opened_at, last_event_at) VALUES (gen_random_uuid(), 0, 't',"
                    " 'x', 'f', 'c', 'LLM_RUN', 'T', 'low', 'ACTIVE', now(), now(), now())"
                    " RETURNING *"
                )
            )
            .mappings()
            .one()
        )
    assert row["absorbed"] == {}
    assert row["fingerprints"] == []
    assert row["version"] == 0
    assert row["updated_at"] is not None


def test_downgrade_to_base_drops_everything(raw_database_url: str, engine: Engine) -> None:
    upgrade(raw_database_url)
    command.downgrade(alembic_config(raw_database_url), "base")
    assert _tables(engine) <= {"alembic_version"}
    assert current_revision(raw_database_url) is None


def test_concurrent_upgrades_in_threads(raw_database_url: str) -> None:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            upgrade(raw_database_url)
        except BaseException as error:  # re-raised in the test thread below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert is_current(raw_database_url)


def test_concurrent_upgrades_in_processes(raw_database_url: str) -> None:
    code = "import sys; from storage.migrate import upgrade; upgrade(sys.argv[1])"
    processes = [
        subprocess.Popen([sys.executable, "-c", code, raw_database_url], cwd=ROOT) for _ in range(3)
    ]
    assert [process.wait(timeout=60) for process in processes] == [0, 0, 0]
    assert is_current(raw_database_url)


def test_every_accepted_url_form_reaches_the_database(raw_database_url: str) -> None:
    """DATABASE_URL may be libpq (incl. `postgres://` and `?host=/socket`) or SQLAlchemy form."""
    upgrade(raw_database_url.replace("postgresql://", "postgres://", 1))
    assert is_current(normalize_url(raw_database_url))


async def test_async_engine_reaches_the_database(raw_database_url: str) -> None:
    engine = create_async_db_engine(raw_database_url)
    try:
        async with engine.connect() as connection:
            assert (await connection.execute(text("SELECT 1"))).scalar() == 1
    finally:
        await engine.dispose()


def _column_storage(url: str) -> dict[tuple[str, str], str]:
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "SELECT attrelid::regclass::text, attname, attstorage FROM pg_attribute"
            " JOIN pg_class ON pg_class.oid = attrelid"
            " WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' AND attnum > 0"
            " AND NOT attisdropped AND attrelid::regclass::text <> 'alembic_version'"
        ).fetchall()
    return {(table, column): storage for table, column, storage in rows}


def test_column_storage_matches_metadata(raw_database_url: str, postgres_url: str) -> None:
    """compare_metadata ignores storage: the incident lists are uncompressed both ways."""
    upgrade(raw_database_url)
    expected = _in_created_database(postgres_url, _column_storage)
    assert {expected[("incidents", name)] for name in UNCOMPRESSED_INCIDENT_COLUMNS} == {"e"}
    assert _column_storage(raw_database_url) == expected


def _triggers(url: str) -> dict[str, str]:
    with psycopg.connect(url) as connection:
        triggers = connection.execute(
            "SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal"
        ).fetchall()
        functions = connection.execute(
            "SELECT proname, prosrc FROM pg_proc WHERE pronamespace = 'public'::regnamespace"
        ).fetchall()
    return dict(triggers) | {f"function {name}": source.strip() for name, source in functions}


def test_triggers_match_metadata(raw_database_url: str, postgres_url: str) -> None:
    """compare_metadata ignores triggers and functions: `incident_counts` is kept the same way."""
    upgrade(raw_database_url)
    expected = _in_created_database(postgres_url, _triggers)
    assert "incidents_counted_on_state_change" in expected
    assert _triggers(raw_database_url) == expected
