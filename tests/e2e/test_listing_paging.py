"""Paging at a fixed `as_of` on the real pipeline: ingest a log, read the first pages, publish and
ingest more incidents (late ones that started hours before `as_of` among them), and page again at
the `as_of` the first page returned: `/v1/incidents` and `/v1/costs/incidents` give the same items
and totals, and the new incidents join the listings once `as_of` has passed them.

Two tenants on two partitions: `acme`'s watermark stays the lowest, so it is `as_of`, and `globex`
has incidents created after it, which the first pages already leave out.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import psycopg
import pytest_asyncio
from psycopg.rows import dict_row

from api.app import create_app
from domain.settings import Settings
from storage.engine import create_async_db_engine
from storage.keys import create_key
from storage.migrate import upgrade
from tests.e2e.pipeline import PARTITIONS, Topics, publish, publish_scenario, run_ingest_to_end
from tests.scenario import ScenarioMessage, partition_for
from tests.support import fresh_database

START = (datetime.now(UTC) - timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
M = timedelta(minutes=1)
TENANTS = ("acme", "globex")


def failure(tenant: str, name: str, model: str, at: datetime, cost: str) -> ScenarioMessage:
    body = {
        "event_id": f"{tenant}-{name}",
        "tenant_id": tenant,
        "occurred_at": at.isoformat(),
        "run_id": f"run-{name}",
        "provider": "openai",
        "model": model,
        "failure_type": "timeout",
        "cost_usd": cost,
    }
    return ScenarioMessage("failures", tenant.encode(), json.dumps(body).encode())


def first_log() -> list[ScenarioMessage]:
    """acme: 12 incidents 15 minutes apart (4 an hour, under the cap of 5), each of two calls;
    globex: 4 incidents, the last ones started after acme's last event."""
    log = []
    for n in range(12):
        at = START + n * 15 * M
        log += [
            failure("acme", f"a{n}", f"model-{n}", at, f"0.{n + 10}"),
            failure("acme", f"a{n}-again", f"model-{n}", at + M, "0.01"),
        ]
    log += [failure("globex", f"g{n}", f"model-{n}", START + n * 70 * M, "0.5") for n in range(4)]
    return log


def second_log(acme_watermark: datetime, globex_watermark: datetime) -> list[ScenarioMessage]:
    """New incidents only (new models): acme's two late ones started long before as_of (each in an
    hour that had 4 creations) and the costliest of all, then in-order ones of both tenants."""
    return [
        failure("acme", "late-1", "late-model-1", START + 7 * M, "9.5"),
        failure("acme", "late-2", "late-model-2", START + 100 * M, "8.5"),
        failure("acme", "next-1", "next-model-1", acme_watermark + 5 * M, "0.2"),
        failure("acme", "next-2", "next-model-2", acme_watermark + 20 * M, "0.2"),
        failure("globex", "next-1", "next-model-1", globex_watermark + 5 * M, "0.2"),
    ]


@pytest_asyncio.fixture
async def database(postgres_url: str) -> AsyncIterator[str]:
    with fresh_database(postgres_url) as url:
        upgrade(url)
        yield url


async def client_of(url: str) -> tuple[httpx.AsyncClient, dict[str, str], Any]:
    engine = create_async_db_engine(url, pool_size=2)
    async with engine.begin() as conn:
        key = (await create_key(conn, tenant_id="acme"))[1]
    app = create_app(Settings(database_url=url), engine=engine)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")
    return client, {"Authorization": f"Bearer {key}"}, engine


async def walk(
    client: httpx.AsyncClient, headers: dict[str, str], path: str, **params: Any
) -> tuple[list[str], set[int], str]:
    """Every page of 4 from offset 0: the ids, the totals reported, and the first page's as_of."""
    key = "items" if path == "/v1/incidents" else "incidents"
    seen: list[str] = []
    totals: set[int] = set()
    offset: int | None = 0
    as_of = ""
    while offset is not None:
        response = await client.get(
            path, params={**params, "limit": 4, "offset": offset}, headers=headers
        )
        assert response.status_code == 200, response.text
        body = response.json()
        as_of = as_of or body["as_of"]
        seen += [item["incident_id"] for item in body[key]]
        totals.add(body["total"])
        offset = body["next_offset"]
    return seen, totals, as_of


def incidents_and_watermarks(url: str) -> tuple[list[dict[str, Any]], dict[int, datetime]]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        rows = list(conn.execute("SELECT * FROM incidents WHERE tenant_id = 'acme'"))
        marks = {
            r["partition"]: r["watermark"] for r in conn.execute("SELECT * FROM ingest_partitions")
        }
    return rows, marks


async def test_pages_at_an_as_of_stay_the_same_while_incidents_arrive(
    database: str, bootstrap_servers: str
) -> None:
    assert len({partition_for(t.encode(), PARTITIONS) for t in TENANTS}) == 2
    topics = await publish_scenario(bootstrap_servers, first_log())
    env = topics.env(database, bootstrap_servers)
    run_ingest_to_end(env)
    client, headers, engine = await client_of(database)
    try:
        before, marks = incidents_and_watermarks(database)
        acme_mark, globex_mark = (marks[partition_for(t.encode(), PARTITIONS)] for t in TENANTS)
        assert acme_mark < globex_mark and len(before) == 12
        listed, totals, as_of = await walk(client, headers, "/v1/incidents")
        assert datetime.fromisoformat(as_of) == acme_mark and totals == {len(listed)}
        by_start = sorted(before, key=lambda r: (r["started_at"], str(r["incident_id"])))
        assert listed == [str(r["incident_id"]) for r in reversed(by_start)]
        costly, cost_totals, _ = await walk(
            client, headers, "/v1/costs/incidents", include_resolved="true"
        )
        by_cost = sorted(before, key=lambda r: (r["cost_usd"], str(r["incident_id"])))
        assert costly == [str(r["incident_id"]) for r in reversed(by_cost)]

        await publish_more(bootstrap_servers, topics, second_log(acme_mark, globex_mark))
        run_ingest_to_end(env)
        after, _ = incidents_and_watermarks(database)
        new = [r for r in after if r["incident_id"] not in {b["incident_id"] for b in before}]
        late = [r for r in new if r["started_at"] < datetime.fromisoformat(as_of)]
        assert len(new) == 4 and len(late) == 2 and all(r["calls_affected"] == 1 for r in new)
        assert max(r["cost_usd"] for r in after) == Decimal("9.5")

        again, again_totals, again_as_of = await walk(client, headers, "/v1/incidents", as_of=as_of)
        assert (again, again_totals, again_as_of) == (listed, totals, as_of)
        costly_again, cost_totals_again, _ = await walk(
            client, headers, "/v1/costs/incidents", include_resolved="true", as_of=as_of
        )
        assert (costly_again, cost_totals_again) == (costly, cost_totals)

        now, now_totals, now_as_of = await walk(client, headers, "/v1/incidents")
        assert datetime.fromisoformat(now_as_of) > datetime.fromisoformat(as_of)
        assert {str(r["incident_id"]) for r in late} <= set(now)
        assert set(listed) < set(now) and now_totals == {len(now)}
    finally:
        await client.aclose()
        await engine.dispose()


async def publish_more(bootstrap: str, topics: Topics, messages: list[ScenarioMessage]) -> None:
    layout = {m.key: partition_for(m.key, PARTITIONS) for m in messages}
    await publish(bootstrap, topics, messages, layout)
