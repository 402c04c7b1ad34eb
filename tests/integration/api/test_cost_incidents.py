"""`/v1/costs/incidents` over the seeded database: which incidents, in which order, what they say,
their totals and pages (the real pipeline's is in tests/e2e/test_listing_paging.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest_asyncio
from sqlalchemy import insert

from domain.incidents import Incident, LifecycleState
from domain.settings import Settings
from domain.snapshot import IncidentSnapshot
from storage.analytics_store import AnalyticsStore
from storage.engine import create_async_db_engine
from storage.rows import incident_row
from storage.schema import incidents
from tests.integration.api_dataset import AS_OF, Client, D, api_client, assert_error, get
from tests.integration.api_dataset import incident as build

PATH = "/v1/costs/incidents"
FREE = build("z0", cost_usd=Decimal(0), calls_affected=7)
"""An incident that cost nothing: never a cost incident."""
BASELINE = build(
    "b1", started_at=AS_OF - 20 * D, cost_usd=Decimal("0.70000000"),
    lifecycle_state=LifecycleState.RESOLVED, resolved_at=AS_OF - 19 * D, resolution_method="auto",
)  # fmt: skip
"""An LLM_TIMEOUT incident in the 30 days before the trend's 7: that category's spend of the
last 7 days (2.40 over 6.58 days) is then far above its baseline (0.70 over 30): a spike."""


async def add(database_url: str, *items: Incident) -> None:
    """Incidents and their processors' rows, as the pipeline would write them."""
    engine = create_async_db_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(incidents), [incident_row(item, 0) for item in items])
        snapshots = [IncidentSnapshot.model_validate(item.snapshot()) for item in items]
        await AnalyticsStore(engine, Settings().sla_targets()).apply(snapshots)
    finally:
        await engine.dispose()


@pytest_asyncio.fixture(scope="module")
async def api(module_database: str) -> AsyncIterator[Client]:
    async with api_client(module_database) as pair:
        await add(module_database, FREE, BASELINE)
        pair[1].incidents |= {"z0": FREE, "b1": BASELINE}
        yield pair


def ids(body: dict[str, Any]) -> list[str]:
    return [item["incident_id"] for item in body["incidents"]]


def costliest_first(data: Any, names: list[str]) -> list[str]:
    chosen = [data.incidents[name] for name in names]
    ordered = sorted(chosen, key=lambda i: (i.cost_usd, str(i.incident_id)), reverse=True)
    return [str(i.incident_id) for i in ordered]


async def test_open_incidents_that_cost_money_costliest_first(api: Client) -> None:
    _, data = api
    body = await get(api, PATH)
    assert ids(body) == [data.id(n) for n in ("a2", "a1", "a3")]
    assert (body["total"], body["total_cost_cents"], body["has_more"]) == (3, 1380, False)
    assert body["include_resolved"] is False and body["as_of"].startswith("2024-11-22T14:00:00")
    a2, a1, _ = body["incidents"]
    assert a2 == {
        "incident_id": data.id("a2"),
        "title": "Budget limit reached",
        "status": "protected",
        "urgency": "urgent",
        "trigger_type": "budget_breach",
        "category": "BUDGET_EXCEEDED",
        "cost_usd": "12.00000000",
        "cost_cents": 1200,
        "calls_affected": 250,
        "trend": "normal",
        "recommendation": "Increase your budget or pause operations to resume spending",
        "cause_explanation": "Budget exceeded on fp-a2: 250 calls since 2024-11-22 11:00 UTC",
        "detected_at": "2024-11-22T11:00:00Z",
        "last_event_at": "2024-11-22T11:05:00Z",
        "resolved_at": None,
    }
    assert (a1["status"], a1["urgency"], a1["title"]) == (
        "attention_needed", "action", "Unusual spending detected"
    )  # fmt: skip
    assert a1["trend"] == "spike"  # LLM_TIMEOUT, against BASELINE


async def test_with_the_resolved_ones_and_their_calm_status(api: Client) -> None:
    _, data = api
    body = await get(api, PATH, include_resolved="true", limit=100)
    names = ["a1", "a2", "a3", "r1", "r2", "r3", "r4", "b1"]
    assert ids(body) == costliest_first(data, names)
    assert body["total"] == 8 and body["total_cost_cents"] == 1380 + 1 + 30 + 325 + 30 + 70
    status = {item["incident_id"]: item["status"] for item in body["incidents"]}
    assert status[data.id("r3")] == "resolved" and status[data.id("a2")] == "protected"
    r3 = next(item for item in body["incidents"] if item["incident_id"] == data.id("r3"))
    assert r3["recommendation"] == "No action needed: this incident no longer adds cost"
    assert r3["title"] == "Spending on calls that broke a policy"
    assert data.id("z0") not in ids(body)


async def test_each_trend_is_the_one_its_category_shows_in_cost_explained(api: Client) -> None:
    body = await get(api, PATH, include_resolved="true", limit=100)
    explained = await get(api, "/v1/costs/explained", period="7d")
    trends = {driver["name"]: driver["trend"] for driver in explained["by_category"]}
    assert trends["LLM_TIMEOUT"] == "spike"
    for item in body["incidents"]:
        assert item["trend"] == trends.get(item["category"], "normal"), item


async def test_pages_walk_every_cost_incident_once(api: Client) -> None:
    _, data = api
    seen: list[str] = []
    offset: int | None = 0
    first = await get(api, PATH, include_resolved="true", limit=3)
    while offset is not None:
        page = await get(
            api, PATH, include_resolved="true", limit=3, offset=offset, as_of=first["as_of"]
        )
        assert page["total"] == 8 and page["has_more"] == (page["next_offset"] is not None)
        seen += ids(page)
        offset = page["next_offset"]
    assert seen == costliest_first(data, ["a1", "a2", "a3", "r1", "r2", "r3", "r4", "b1"])
    past = await get(api, PATH, offset=10)
    assert past["incidents"] == [] and past["total"] == 3 and past["total_cost_cents"] == 1380


async def test_another_tenant_sees_only_its_own(api: Client) -> None:
    client, data = api
    body = await get(api, PATH, who="globex", include_resolved="true")
    assert ids(body) == costliest_first(data, ["g1", "g2"])
    response = await client.get(PATH, params={"tenant_id": "acme"}, headers=data.auth("globex"))
    assert_error(response, 404, "not_found")
    ops = await get(api, PATH, who="ops", tenant_id="globex")
    assert ids(ops) == [data.id("g1")]


async def test_bad_parameters_are_422s_naming_them(api: Client) -> None:
    client, data = api
    for params, field in (
        ({"include_resolved": "maybe"}, "include_resolved"),
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"offset": -1}, "offset"),
        ({"as_of": "not a time"}, "as_of"),
        ({"lifecycle_state": "ACKED"}, "lifecycle_state"),
    ):
        response = await client.get(PATH, params=params, headers=data.auth("acme"))
        assert assert_error(response, 422, "invalid_parameter")["field"] == field, params
    assert (await client.get(PATH)).status_code == 401
