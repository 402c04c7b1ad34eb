"""`/v1/incidents`: the `lifecycle_state` filter, and paging at a fixed `as_of` while incidents
arrive (seeded database; the ingest worker's own stamping is in tests/e2e/test_listing_paging.py).

Arrivals are inserted as the ingest worker writes them: stamped (`created_watermark`) with the
event time they were created at, which is at or after the `as_of` every partition had already
reached, whatever their `started_at`. The seeded incidents have no stamp: written before paging
existed, they belong to every listing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import Engine, insert, update

from domain.incidents import Incident, LifecycleState
from storage.engine import create_sync_db_engine
from storage.rows import incident_row
from storage.schema import incidents, ingest_partitions
from tests.integration.api_dataset import AS_OF, Client, D, H, api_client, assert_error, get
from tests.integration.api_dataset import incident as build

LIST = "/v1/incidents"


@pytest_asyncio.fixture
async def api(database_url: str) -> AsyncIterator[Client]:
    """A fresh seeded database per test: the tests add incidents and move watermarks."""
    async with api_client(database_url) as pair:
        yield pair


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_sync_db_engine(database_url)
    yield engine
    engine.dispose()


def arrive(engine: Engine, *created: tuple[Incident, datetime]) -> None:
    """Write incidents as the ingest worker does, each with the event time it was created at."""
    with engine.begin() as conn:
        conn.execute(
            insert(incidents),
            [incident_row(item, 0) | {"created_watermark": at} for item, at in created],
        )


def advance_watermarks(engine: Engine, to: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(update(ingest_partitions).values(watermark=to))


def ids(body: dict[str, Any]) -> list[str]:
    return [item["incident_id"] for item in body["items"]]


async def walk(api: Client, limit: int, **params: Any) -> tuple[list[str], set[int]]:
    """Every page from offset 0: the ids in order, and the totals the pages reported."""
    seen: list[str] = []
    totals: set[int] = set()
    offset: int | None = 0
    while offset is not None:
        page = await get(api, LIST, limit=limit, offset=offset, **params)
        seen += ids(page)
        totals.add(page["total"])
        offset = page["next_offset"]
    return seen, totals


async def test_acked_alone_and_a_state_within_its_topic(api: Client) -> None:
    _, data = api
    acked = await get(api, LIST, lifecycle_state="ACKED")
    assert ids(acked) == [data.id("a2")] and acked["total"] == 1
    assert acked["filters_applied"]["lifecycle_state"] == "ACKED"
    active = await get(api, LIST, topic="active", lifecycle_state="ACTIVE")
    assert ids(active) == [data.id("a3"), data.id("a1")] and active["total"] == 2
    assert ids(await get(api, LIST, topic="active", lifecycle_state="ACKED")) == [data.id("a2")]
    old = await get(api, LIST, topic="historical", lifecycle_state="RESOLVED")
    assert ids(old) == [data.id("r1")]
    filtered = await get(api, LIST, lifecycle_state="RESOLVED", severity="low")
    assert set(ids(filtered)) == {data.id("r1"), data.id("r4")} and filtered["total"] == 2
    other = await get(api, LIST, who="globex", lifecycle_state="ACKED")
    assert other["items"] == [] and other["total"] == 0


@pytest.mark.parametrize(
    ("topic", "state"),
    [("resolved", "ACTIVE"), ("historical", "ACKED"), ("active", "RESOLVED")],
)
async def test_a_state_the_topic_does_not_have_is_a_422(
    api: Client, topic: str, state: str
) -> None:
    client, data = api
    response = await client.get(
        LIST, params={"topic": topic, "lifecycle_state": state}, headers=data.auth("acme")
    )
    assert assert_error(response, 422, "invalid_parameter")["field"] == "lifecycle_state"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("lifecycle_state", "acked"),
        ("lifecycle_state", "OPEN"),
        ("as_of", "yesterday"),
        ("as_of", "2024-11-22T13:00:00"),  # no offset
        ("as_of", (AS_OF + timedelta(microseconds=1)).isoformat()),  # after the current as_of
        ("as_of", "2024-11-22T15:00:00+00:00"),
    ],
)
async def test_bad_states_and_as_ofs_are_422s_naming_them(
    api: Client, field: str, value: str
) -> None:
    client, data = api
    for path in (LIST, "/v1/costs/incidents"):
        if field == "lifecycle_state" and path != LIST:
            continue
        response = await client.get(path, params={field: value}, headers=data.auth("acme"))
        assert assert_error(response, 422, "invalid_parameter")["field"] == field, path


async def test_pages_at_an_as_of_leave_out_the_incidents_created_since(
    api: Client, engine: Engine
) -> None:
    first = await get(api, LIST, limit=3)
    assert first["as_of"].startswith("2024-11-22T14:00:00")
    everything, totals = await walk(api, 3, as_of=first["as_of"])
    assert everything[:3] == ids(first) and totals == {7}
    # Arrivals: a late event's incident started ten days ago (it would sort among the first
    # pages' rows), one started just before as_of, and one of the future partition's, after it.
    late = build("n1", started_at=AS_OF - 10 * D, cost_usd=Decimal("99"))
    close = build("n2", started_at=AS_OF - timedelta(seconds=1))
    ahead = build("n3", started_at=AS_OF + timedelta(minutes=20))
    arrive(engine, (late, AS_OF), (close, AS_OF), (ahead, AS_OF + timedelta(minutes=20)))
    again, totals = await walk(api, 3, as_of=first["as_of"])
    assert again == everything and totals == {7}
    by_cost, _ = await walk(api, 2, as_of=first["as_of"], sort_by="cost_usd")
    assert len(by_cost) == 7 and str(late.incident_id) not in by_cost
    filtered, totals = await walk(api, 2, as_of=first["as_of"], is_synthetic="false")
    assert len(filtered) == 5 and totals == {5}
    # Until every partition's watermark passes them, the current as_of does not list them either.
    assert (await get(api, LIST))["total"] == 7
    advance_watermarks(engine, AS_OF + 2 * H)
    now = await get(api, LIST, limit=100)
    assert now["total"] == 10 and len(now["items"]) == 10
    assert {str(i.incident_id) for i in (late, close, ahead)} <= set(ids(now))
    costliest = await get(api, LIST, sort_by="cost_usd", limit=1)
    assert ids(costliest) == [str(late.incident_id)]
    still, totals = await walk(api, 3, as_of=first["as_of"])
    assert still == everything and totals == {7}


async def test_an_as_of_pages_the_kept_totals_of_one_state(api: Client, engine: Engine) -> None:
    _, data = api
    first = await get(api, LIST, lifecycle_state="ACKED", limit=1)
    acked = {"lifecycle_state": LifecycleState.ACKED, "acked_by": "ops", "acked_at": AS_OF}
    arrive(engine, (build("n4", started_at=AS_OF - 3 * H, **acked), AS_OF))
    advance_watermarks(engine, AS_OF + H)
    fixed = await get(api, LIST, lifecycle_state="ACKED", as_of=first["as_of"])
    assert ids(fixed) == [data.id("a2")] and fixed["total"] == 1
    current = await get(api, LIST, lifecycle_state="ACKED")
    assert current["total"] == 2 and current["as_of"].startswith("2024-11-22T15:00:00")


async def test_unstamped_incidents_are_in_every_listing(api: Client) -> None:
    long_ago = await get(api, LIST, as_of="2000-01-01T00:00:00Z")
    assert long_ago["total"] == 7 and long_ago["as_of"].startswith("2000-01-01T00:00:00")
    historical = await get(api, LIST, topic="historical", as_of=(AS_OF - 5 * D).isoformat())
    cutoff = historical["filters_applied"]["cutoff_date"]
    assert cutoff == (AS_OF - 35 * D).isoformat() and historical["total"] == 1
