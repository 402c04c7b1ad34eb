"""`/v1/incidents` and the per-incident routes over a small seeded database (real PostgreSQL,
ASGI transport)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio

from tests.integration.api_dataset import AS_OF, Client, D, api_client, get


@pytest_asyncio.fixture
async def api(database_url: str) -> AsyncIterator[Client]:
    """A fresh database per test (overrides the module-scoped `api` of conftest)."""
    async with api_client(database_url) as pair:
        yield pair


def ids(body: dict[str, Any], key: str = "items") -> list[str]:
    return [item["incident_id"] for item in body[key]]


async def test_topics_select_by_state_and_retention(api: Client) -> None:
    _, data = api
    active = await get(api, "/v1/incidents", topic="active")
    assert ids(active) == [data.id(n) for n in ("a3", "a1", "a2")]  # started_at desc
    resolved = await get(api, "/v1/incidents", topic="resolved")
    assert ids(resolved) == [data.id(n) for n in ("r2", "r4", "r3", "r1")]  # resolved_at desc
    # Unfiltered totals come from incident_counts, other tenants' incidents not among them.
    assert (active["total"], resolved["total"]) == (3, 4)
    historical = await get(api, "/v1/incidents", topic="historical")
    assert ids(historical) == [data.id("r1")]
    assert historical["filters_applied"]["retention_days"] == 30
    assert historical["filters_applied"]["cutoff_date"] == (AS_OF - 30 * D).isoformat()
    assert (await get(api, "/v1/incidents", topic="historical", retention_days=365))["total"] == 0
    assert active["as_of"].startswith("2024-11-22T14:00:00")


async def test_severity_sorts_by_rank(api: Client) -> None:
    body = await get(api, "/v1/incidents", sort_by="severity", sort_order="asc", limit=100)
    ranks = {"low": 0, "medium": 1, "high": 2, "critical": 3}
    severities = [ranks[item["severity"]] for item in body["items"]]
    assert severities == sorted(severities)
    assert body["total"] == 7


async def test_pagination_walks_every_row_once(api: Client) -> None:
    seen: list[str] = []
    offset: int | None = 0
    while offset is not None:
        page = await get(api, "/v1/incidents", sort_by="cost_usd", limit=3, offset=offset)
        assert page["total"] == 7
        assert page["has_more"] == (page["next_offset"] is not None)
        seen += ids(page)
        offset = page["next_offset"]
    assert len(seen) == len(set(seen)) == 7
    past_end = await get(api, "/v1/incidents", offset=50)
    assert past_end["items"] == [] and past_end["total"] == 7 and not past_end["has_more"]


async def test_filters(api: Client) -> None:
    _, data = api
    synthetic = await get(api, "/v1/incidents", is_synthetic="true")
    assert set(ids(synthetic)) == {data.id("a3"), data.id("r3")}
    crit = await get(api, "/v1/incidents", severity="critical", cause_type="HUMAN")
    assert ids(crit) == [data.id("r3")]
    assert crit["filters_applied"]["severity"] == "critical"
    window = await get(
        api,
        "/v1/incidents",
        started_after=(AS_OF - 4 * D).isoformat(),
        started_before=(AS_OF - D).isoformat(),
    )
    assert set(ids(window)) == {data.id("r2"), data.id("r4")}
    resolved = await get(
        api,
        "/v1/incidents",
        resolved_after=(AS_OF - 6 * D).isoformat(),
        resolved_before=(AS_OF - 2 * D).isoformat(),
    )
    assert set(ids(resolved)) == {data.id("r3"), data.id("r4")}
    by_trigger = await get(api, "/v1/incidents", trigger_type="budget_breach", category="x")
    assert by_trigger["total"] == 0


async def test_detail_derives_times_and_sla(api: Client) -> None:
    _, data = api
    body = await get(api, f"/v1/incidents/{data.id('r4')}")
    assert body["time_to_containment_ms"] == 3_600_000
    assert body["time_to_resolution_ms"] == 7_200_000
    assert body["sla"] == {"target_seconds": 72 * 3600, "status": "met"}
    a2 = await get(api, f"/v1/incidents/{data.id('a2')}")
    assert a2["sla"]["status"] == "breached"  # open past its 1 h target at as_of
    assert a2["time_to_containment_ms"] == 1_800_000 and a2["time_to_resolution_ms"] is None
    a1 = await get(api, f"/v1/incidents/{data.id('a1')}")
    assert a1["sla"]["status"] == "pending"
    assert a1["related_call_ids_count"] == 3 and a1["run_ids"] == ["run-1", "run-2"]
    assert a1["cost_usd"] == "1.50000000" and a1["fingerprints"] == ["fp-a1"]


async def test_timeline_and_events(api: Client) -> None:
    _, data = api
    timeline = await get(api, f"/v1/incidents/{data.id('a1')}/timeline")
    assert [entry["kind"] for entry in timeline["entries"]] == ["created", "severity_escalated"]
    first = await get(api, f"/v1/incidents/{data.id('a1')}/events", limit=3)
    assert [e["event_id"] for e in first["items"]] == ["e-0", "e-1", "e-2"]
    assert first["items"][0]["type"] == "policy_violation"
    assert first["items"][1]["type"] == "llm_call_failure"
    assert first["total"] == 4 and first["next_offset"] == 3
    rest = await get(api, f"/v1/incidents/{data.id('a1')}/events", limit=3, offset=3)
    assert [e["event_id"] for e in rest["items"]] == ["e-3"] and not rest["has_more"]


async def test_by_run_uses_the_tenants_events_only(api: Client) -> None:
    _, data = api
    body = await get(api, "/v1/incidents/by-run/run-1")
    assert ids(body, "incidents") == [data.id("a1")] and body["total"] == 1
    other = await get(api, "/v1/incidents/by-run/run-1", who="globex")
    assert ids(other, "incidents") == [data.id("g1")]
    assert (await get(api, "/v1/incidents/by-run/nothing"))["total"] == 0


async def test_learnings(api: Client) -> None:
    _, data = api
    body = await get(api, f"/v1/incidents/{data.id('r2')}/learnings")
    summary = body["resolution_summary"]
    assert summary["evidence_count"] == 0 and summary["recovery_attempted"] is False
    assert summary["time_to_resolution_ms"] == 1_800_000
    assert [s["incident_id"] for s in body["similar_incidents"]] == [data.id("r4"), data.id("r1")]
    insights = {insight["insight_type"]: insight for insight in body["insights"]}
    assert set(insights) == {"response", "detection"}
    assert insights["response"]["confidence"] == 0.7  # two similar incidents share "manual"
    assert "was used in 3 similar incidents" in insights["response"]["description"]
    assert insights["detection"]["confidence"] == 0.8  # min(0.5 + 0.1 * 3, 0.8)
    evidence = await get(api, f"/v1/incidents/{data.id('a1')}/learnings")
    assert evidence["resolution_summary"]["evidence_count"] == 4


async def test_an_ops_key_names_the_tenant(api: Client) -> None:
    _, data = api
    body = await get(api, "/v1/incidents", who="ops", tenant_id="globex")
    assert set(ids(body)) == {data.id("g1"), data.id("g2")}
    assert body["filters_applied"]["tenant_id"] == "globex"


async def test_the_detail_has_the_whole_context_and_the_list_its_short_fields(api: Client) -> None:
    _, data = api
    a1 = await get(api, f"/v1/incidents/{data.id('a1')}")
    assert (a1["first_error_code"], a1["first_error_message"]) == ("504", "gateway timeout")
    assert (a1["latest_error_code"], a1["latest_error_message"]) == ("429", "slow down")
    assert (a1["source_run_id"], a1["agent_ids"]) == ("run-1", ["bot"])
    assert a1["description"] == "Timeouts on fp-a1: 30 calls since 2024-11-22 12:00 UTC"
    assert a1["first_policy_id"] is None and a1["latest_action_taken"] is None
    r3 = await get(api, f"/v1/incidents/{data.id('r3')}")
    assert (r3["first_violated_rule"], r3["latest_action_taken"]) == ("no emails", "redacted")
    assert r3["synthetic_scenario_id"] == "drill-1" and r3["agent_ids"] == []
    listed = {item["incident_id"]: item for item in (await get(api, "/v1/incidents"))["items"]}
    short = listed[data.id("a1")]
    assert (short["first_error_code"], short["latest_error_code"]) == ("504", "429")
    assert short["description"] == a1["description"] and short["agent_ids"] == ["bot"]
    assert "first_error_message" not in short and "first_violated_rule" not in short
    policy = listed[data.id("r3")]
    assert (policy["first_policy_id"], policy["latest_violation_id"]) == ("pii", "latest-violation")
