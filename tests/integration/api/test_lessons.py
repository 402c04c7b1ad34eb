"""`/v1/lessons`, `/v1/lessons/stats` and `/v1/lessons/{lesson_id}` over the seeded database.

The seeded incidents give acme one lesson through the processors (r3, a resolved critical
incident); `triaged` adds lessons of every kind and triage state beside it, written as the
processors and the lesson commands consumer write them, with deferrals on both sides of `as_of`.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import insert

from domain.lessons import lesson_id
from storage.analytics_schema import lesson_commands, lesson_triage, lessons
from storage.engine import create_async_db_engine
from tests.integration.api_dataset import AS_OF, Client, assert_error, get

H = timedelta(hours=1)


def _lesson(name: str, kind: str, first_seen: datetime, tenant: str = "acme") -> dict[str, Any]:
    incident_ids = [uuid.uuid5(uuid.NAMESPACE_URL, f"lesson-test:{name}:{n}") for n in range(12)]
    return {
        "lesson_id": lesson_id(kind, tenant, name),
        "tenant_id": tenant,
        "kind": kind,
        "subject": name,
        "incident_ids": incident_ids,
        "incident_count": len(incident_ids),
        "proposed_action": f"do something about {name}",
        "first_seen": first_seen,
        "last_seen": first_seen + H,
    }


def _triage(lesson: dict[str, Any], state: str, **fields: Any) -> dict[str, Any]:
    return {
        "lesson_id": lesson["lesson_id"],
        "tenant_id": lesson["tenant_id"],
        "state": state,
        "changed_at": AS_OF - 5 * H,
        "changed_by": "alice",
        "commands": 1,
        "deferred_until": None,
        "policy_draft": None,
        "note": None,
        **fields,
    }


LATER = _lesson("later", "reopened", AS_OF - 10 * H)
EXPIRED = _lesson("expired", "overflow", AS_OF - 9 * H)
DISMISSED = _lesson("fp-noisy", "recurring_fingerprint", AS_OF - 8 * H)
CONVERTED = _lesson("converted", "reopened", AS_OF - 7 * H)
GLOBEX = _lesson("theirs", "reopened", AS_OF - 6 * H, tenant="globex")


@pytest_asyncio.fixture(scope="module")
async def triaged(api: Client, module_database: str) -> AsyncIterator[Client]:
    engine = create_async_db_engine(module_database, pool_size=1)
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(lessons), [LATER, EXPIRED, DISMISSED, CONVERTED, GLOBEX])
            await conn.execute(
                insert(lesson_triage),
                [
                    _triage(LATER, "deferred", deferred_until=AS_OF + H),
                    _triage(EXPIRED, "deferred", deferred_until=AS_OF),
                    _triage(DISMISSED, "dismissed", note="noise"),
                    _triage(CONVERTED, "converted", policy_draft="cap retries", commands=2),
                    _triage(GLOBEX, "dismissed"),
                ],
            )
            await conn.execute(
                insert(lesson_commands),
                [
                    {
                        "tenant_id": "acme",
                        "command_id": command_id,
                        "lesson_id": CONVERTED["lesson_id"],
                        "action": action,
                        "issued_at": at,
                        "issued_by": "alice",
                        "until": None,
                        "policy_draft": None,
                        "note": None,
                        **fields,
                    }
                    for command_id, action, at, fields in (
                        ("c-2", "reactivate", AS_OF - 6 * H, {}),
                        ("c-1", "defer", AS_OF - 7 * H, {"until": AS_OF - 6.5 * H}),
                        ("c-3", "convert", AS_OF - 5 * H, {"policy_draft": "cap retries"}),
                    )
                ],
            )
    finally:
        await engine.dispose()
    yield api


def lesson_ids(body: dict[str, Any]) -> list[uuid.UUID]:
    return [uuid.UUID(item["lesson_id"]) for item in body["items"]]


async def test_the_processors_made_the_lesson_of_the_resolved_critical_incident(
    api: Client,
) -> None:
    _, data = api
    r3 = data.incidents["r3"]
    body = await get(api, "/v1/lessons", kind="severe_incident_resolved")
    (item,) = body["items"]
    assert item["lesson_id"] == str(lesson_id("severe_incident_resolved", "acme", data.id("r3")))
    assert (item["subject"], item["incident_ids"], item["incident_count"]) == (
        data.id("r3"), [data.id("r3")], 1,
    )  # fmt: skip
    assert item["state"] == "pending" and item["changed_at"] is None
    assert item["proposed_action"].startswith('Review the critical incident "incident r3"')
    assert datetime.fromisoformat(item["first_seen"]) == r3.started_at
    assert (await get(api, "/v1/lessons", who="globex"))["total"] == 0


async def test_the_list_pages_newest_first_and_filters_by_state_at_as_of(triaged: Client) -> None:
    _, data = triaged
    r3 = lesson_id("severe_incident_resolved", "acme", data.id("r3"))
    newest_first = [*(x["lesson_id"] for x in (CONVERTED, DISMISSED, EXPIRED, LATER)), r3]
    everything = await get(triaged, "/v1/lessons")
    assert lesson_ids(everything) == newest_first
    assert (everything["total"], everything["has_more"], everything["next_offset"]) == (
        5,
        False,
        None,
    )
    first = await get(triaged, "/v1/lessons", limit=2)
    second = await get(triaged, "/v1/lessons", limit=2, offset=first["next_offset"])
    last = await get(triaged, "/v1/lessons", limit=2, offset=second["next_offset"])
    assert lesson_ids(first) + lesson_ids(second) + lesson_ids(last) == newest_first
    assert (first["has_more"], last["has_more"], last["next_offset"]) == (True, False, None)
    assert (await get(triaged, "/v1/lessons", offset=50))["total"] == 5

    by_state = {
        state: lesson_ids(await get(triaged, "/v1/lessons", state=state))
        for state in ("pending", "deferred", "dismissed", "converted")
    }
    assert by_state == {
        "pending": [EXPIRED["lesson_id"], r3],  # deferred until as_of: pending at as_of
        "deferred": [LATER["lesson_id"]],
        "dismissed": [DISMISSED["lesson_id"]],
        "converted": [CONVERTED["lesson_id"]],
    }
    reopened = await get(triaged, "/v1/lessons", kind="reopened", state="deferred")
    assert lesson_ids(reopened) == [LATER["lesson_id"]]
    assert reopened["filters_applied"] == {
        "tenant_id": "acme",
        "kind": "reopened",
        "state": "deferred",
    }
    item = {x["lesson_id"]: x for x in everything["items"]}
    assert item[str(LATER["lesson_id"])]["deferred_until"] is not None
    assert item[str(EXPIRED["lesson_id"])]["deferred_until"] is None
    assert len(item[str(LATER["lesson_id"])]["incident_ids"]) == 10
    assert item[str(LATER["lesson_id"])]["incident_count"] == 12


async def test_stats_count_by_state_at_as_of_and_kind(triaged: Client) -> None:
    stats = await get(triaged, "/v1/lessons/stats")
    assert stats["total"] == 5
    assert stats["by_state"] == {"pending": 2, "deferred": 1, "dismissed": 1, "converted": 1}
    assert stats["by_kind"] == {
        "severe_incident_resolved": 1,
        "reopened": 2,
        "recurring_fingerprint": 1,
        "overflow": 1,
    }
    assert stats["by_kind_and_state"]["reopened"] == {
        "pending": 0, "deferred": 1, "dismissed": 0, "converted": 1,
    }  # fmt: skip
    theirs = await get(triaged, "/v1/lessons/stats", who="globex")
    assert (theirs["total"], theirs["by_state"]["dismissed"]) == (1, 1)


async def test_the_detail_has_every_incident_the_triage_record_and_the_history(
    triaged: Client,
) -> None:
    body = await get(triaged, f"/v1/lessons/{CONVERTED['lesson_id']}")
    assert body["state"] == "converted" and body["policy_draft"] == "cap retries"
    assert body["incident_ids"] == [str(i) for i in CONVERTED["incident_ids"]]
    assert body["commands"] == 2 and body["changed_by"] == "alice"
    assert [entry["command_id"] for entry in body["history"]] == ["c-1", "c-2", "c-3"]
    assert body["history"][0]["until"] is not None and body["as_of"].startswith("2024-11-22T14")
    fresh = await get(triaged, f"/v1/lessons/{EXPIRED['lesson_id']}")
    assert (fresh["state"], fresh["deferred_until"], fresh["history"]) == ("pending", None, [])


async def test_another_tenants_lesson_is_not_found(triaged: Client) -> None:
    client, data = triaged
    theirs = f"/v1/lessons/{GLOBEX['lesson_id']}"
    assert_error(await client.get(theirs, headers=data.auth("acme")), 404, "not_found")
    for who, params in (("acme", {"tenant_id": "globex"}), ("ops", {"tenant_id": "acme"})):
        response = await client.get(theirs, params=params, headers=data.auth(who))
        assert_error(response, 404, "not_found")
    assert (await get(triaged, theirs, who="globex"))["state"] == "dismissed"
    missing = await client.get(f"/v1/lessons/{uuid.uuid4()}", headers=data.auth("acme"))
    assert_error(missing, 404, "not_found")


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/v1/lessons", {"state": "open"}, "state"),
        ("/v1/lessons", {"kind": "resolved"}, "kind"),
        ("/v1/lessons", {"limit": "0"}, "limit"),
        ("/v1/lessons", {"limit": "101"}, "limit"),
        ("/v1/lessons", {"offset": "-1"}, "offset"),
        ("/v1/lessons", {"sort_by": "state"}, "sort_by"),
        ("/v1/lessons/stats", {"state": "pending"}, "state"),
        ("/v1/lessons/not-a-uuid", {}, "lesson_id"),
        ("/v1/lessons/" + "0" * 33, {}, "lesson_id"),
    ],
)
async def test_bad_parameters_are_422_naming_the_field(
    api: Client, path: str, params: dict[str, str], field: str
) -> None:
    client, data = api
    response = await client.get(path, params=params, headers=data.auth("acme"))
    assert assert_error(response, 422, "invalid_parameter")["field"] == field


async def test_no_key_is_401(api: Client) -> None:
    client, _ = api
    for path in ("/v1/lessons", "/v1/lessons/stats", f"/v1/lessons/{LATER['lesson_id']}"):
        assert_error(await client.get(path), 401, "unauthorized")
