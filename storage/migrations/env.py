"""Alembic environment: runs the migrations in `versions/` against one PostgreSQL database.

The database comes from `config.attributes["connection"]` (an open sync Connection), else
`config.attributes["database_url"]`, else the `sqlalchemy.url` main option; plain libpq URLs are
accepted. There is no alembic.ini: `storage.migrate` builds the Config in code. Migrations run in
one transaction that first takes an advisory lock, so concurrent `upgrade` calls serialise and the
later ones find nothing left to do.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, text

from storage import analytics_schema  # noqa: F401  (adds the processors' tables to `metadata`)
from storage.engine import create_sync_db_engine, normalize_url
from storage.schema import metadata

MIGRATION_LOCK_ID = 0x1BC1DE7F  # arbitrary, fixed: the advisory lock key for migrations


def _database_url() -> str:
    config = context.config
    url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL: set config.attributes['database_url']")
    return str(url)


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata)
    with context.begin_transaction():
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_ID})
        context.run_migrations()


def run_offline() -> None:
    """Emit the migration SQL without a database (`alembic upgrade --sql`)."""
    context.configure(
        url=normalize_url(_database_url()), target_metadata=metadata, literal_binds=True
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_sync_db_engine(_database_url(), pool_pre_ping=False)
    try:
        with engine.connect() as connection:
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
