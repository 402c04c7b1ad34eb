"""Apply and inspect the Alembic migrations, without an alembic.ini.

Every function takes a database URL (plain libpq or SQLAlchemy form), opens its own short-lived
sync engine, and disposes of it before returning. `upgrade` is idempotent and safe to run from
several processes at once (the migration environment serialises them on an advisory lock) and
from several threads (Alembic's `context` and `op` are process-global, so calls into Alembic are
serialised on a lock here).
"""

from __future__ import annotations

import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from storage.engine import create_sync_db_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_alembic_lock = threading.Lock()


def alembic_config(database_url: str | None = None) -> Config:
    """An Alembic Config pointing at `storage/migrations`, with the URL in its attributes."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if database_url is not None:
        config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str) -> None:
    """Bring the database to the head revision; a no-op when it is already there."""
    with _alembic_lock:
        command.upgrade(alembic_config(database_url), "head")


def head_revision() -> str:
    """The newest revision in `storage/migrations/versions` (there is a single head)."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def current_revision(database_url: str) -> str | None:
    """The revision the database is at, or None if no migration was ever applied."""
    engine = create_sync_db_engine(database_url, pool_pre_ping=False)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def is_current(database_url: str) -> bool:
    """True when the database is at the head revision."""
    return current_revision(database_url) == head_revision()
