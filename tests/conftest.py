"""Session-wide infrastructure (one PostgreSQL, one broker) and per-test isolation fixtures.

The infrastructure comes from `incidentflow.infra` in the mode named by INCIDENTFLOW_TEST_INFRA
(auto|embedded|containers|external; default auto: Docker if it answers, embedded otherwise).
Tests isolate themselves with a fresh database (`database_url`, `raw_database_url`) and fresh
topic names (`topic_prefix`), never by sharing state.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from incidentflow.infra import infra_mode_from_env, provide_broker, provide_postgres
from tests.support import fresh_database
from tests.support import wait_until as _wait_until


@pytest.fixture(scope="session")
def infra_mode() -> str:
    """The infrastructure mode of this session (validated)."""
    return infra_mode_from_env()


@pytest.fixture(scope="session")
def postgres_url(infra_mode: str) -> Iterator[str]:
    """libpq URL of the session's PostgreSQL server (its default database; do not write to it)."""
    with provide_postgres(infra_mode) as url:
        yield url


@pytest.fixture(scope="session")
def bootstrap_servers(infra_mode: str) -> Iterator[str]:
    """Bootstrap servers of the session's broker; use `topic_prefix` for fresh topic names."""
    with provide_broker(infra_mode) as servers:
        yield servers


@pytest.fixture
def raw_database_url(postgres_url: str) -> Iterator[str]:
    """URL of a fresh, empty database (not migrated), dropped after the test."""
    with fresh_database(postgres_url) as url:
        yield url


@pytest.fixture
def database_url(raw_database_url: str) -> str:
    """URL of a fresh database migrated to the latest schema, dropped after the test."""
    from storage.migrate import upgrade

    upgrade(raw_database_url)
    return raw_database_url


@pytest.fixture
def topic_prefix() -> str:
    """A unique prefix for topic names (and consumer groups) of one test, e.g. `t1a2b3c4d.`."""
    return f"t{uuid.uuid4().hex[:8]}."


@pytest.fixture
def wait_until() -> Callable[..., Awaitable[Any]]:
    """`await wait_until(predicate, timeout=..., interval=0.05, message=...)`; see tests.support."""
    return _wait_until
