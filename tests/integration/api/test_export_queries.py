"""The export's reads on a real PostgreSQL: one read-only snapshot, scoped by tenant, streamed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import pytest_asyncio
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.exports import queries
from storage.engine import create_async_db_engine
from storage.rows import incident_row
from storage.schema import incidents, llm_call_failures, policy_violations
from tests.integration.api_dataset import AS_OF, failure, incident, violation

SMALL = incident("a1")
OTHER = incident("x1", tenant="globex", fingerprint="fp-a1")
EARLIER = incident("x2", fingerprint="fp-a1", started_at=AS_OF - timedelta(days=3))
LONG_AGO = incident("x3", fingerprint="fp-a1", started_at=AS_OF - timedelta(days=40))


@pytest_asyncio.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    # As the API process creates it: no transaction around reads.
    engine = create_async_db_engine(database_url, pool_size=1, isolation_level="AUTOCOMMIT")
    async with engine.begin() as conn:
        rows = [incident_row(item, 0) for item in (SMALL, OTHER, EARLIER, LONG_AGO)]
        await conn.execute(insert(incidents), rows)
        start = AS_OF - timedelta(hours=1)
        await conn.execute(
            insert(llm_call_failures),
            [
                failure("e-2", SMALL.incident_id, start, "run-1"),
                failure("e-1", SMALL.incident_id, start, "run-1"),
                failure("g-1", OTHER.incident_id, start, "run-1", tenant="globex"),
            ],
        )
        await conn.execute(
            insert(policy_violations), [violation("e-0", SMALL.incident_id, start, "run-1")]
        )
    yield engine
    await engine.dispose()


async def test_the_snapshot_is_repeatable_read_and_read_only_then_reset(
    engine: AsyncEngine,
) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))  # as the key lookup does first
        snapshot = await queries.begin_snapshot(conn)
        found = (
            await conn.execute(text("SELECT current_setting('transaction_isolation'), "
                                    "current_setting('transaction_read_only')"))
        ).one()  # fmt: skip
        assert tuple(found) == ("repeatable read", "on")
        await snapshot.rollback()
    async with engine.connect() as conn:  # the same pooled connection, as the engine made it
        found = (await conn.execute(text("SHOW transaction_isolation"))).scalar_one()
        assert found == "read committed"
        await conn.execute(text("CREATE TEMPORARY TABLE written (n int)"))  # not read-only


async def test_events_stream_in_order_from_the_snapshot_whatever_commits_meanwhile(
    engine: AsyncEngine, database_url: str
) -> None:
    writer = create_async_db_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            snapshot = await queries.begin_snapshot(conn)
            assert await queries.load_incident(conn, "acme", SMALL.incident_id) is not None
            async with writer.begin() as other:
                late = failure("e-9", SMALL.incident_id, AS_OF - timedelta(hours=2), "run-1")
                await other.execute(insert(llm_call_failures), [late])
            events = [row async for row in queries.stream_events(conn, "acme", SMALL.incident_id)]
            await snapshot.rollback()
    finally:
        await writer.dispose()
    assert [(row["type"], row["event_id"]) for row in events] == [
        ("policy_violation", "e-0"),
        ("llm_call_failure", "e-1"),
        ("llm_call_failure", "e-2"),
    ]
    assert set(events[0]) == {"type", *(column.name for column in policy_violations.columns)}
    assert set(events[1]) == {"type", *(column.name for column in llm_call_failures.columns)}
    assert all(type(name) is str for name in events[1])


@pytest.mark.parametrize("tenant", ["globex", "nobody"])
async def test_another_tenants_incident_is_never_read(engine: AsyncEngine, tenant: str) -> None:
    async with engine.connect() as conn:
        snapshot = await queries.begin_snapshot(conn)
        assert await queries.load_incident(conn, tenant, SMALL.incident_id) is None
        assert await queries.load_timeline(conn, tenant, SMALL.incident_id) == []
        streamed = [row async for row in queries.stream_events(conn, tenant, SMALL.incident_id)]
        assert streamed == []
        await snapshot.rollback()


async def test_recurrence_counts_the_tenants_earlier_incidents_of_the_fingerprint_in_the_window(
    engine: AsyncEngine,
) -> None:
    async with engine.connect() as conn:
        row = await queries.load_incident(conn, "acme", SMALL.incident_id)
        assert row is not None
        # x2 started 3 days earlier (counted); x3 40 days earlier, x1 is another tenant's.
        assert await queries.count_recurrence(conn, row, timedelta(days=30)) == 1
        assert await queries.count_recurrence(conn, row, timedelta(days=60)) == 2
