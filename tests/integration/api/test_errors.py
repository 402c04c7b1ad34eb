"""Error bodies of the API (`api.errors`): bad parameters are a 422 naming the field, unknown
paths and methods answer JSON."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.integration.api_dataset import Client, assert_error


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/v1/incidents", {"limit": 0}, "limit"),
        ("/v1/incidents", {"limit": 101}, "limit"),
        ("/v1/incidents", {"offset": -1}, "offset"),
        ("/v1/incidents", {"topic": "ACTIVE"}, "topic"),
        ("/v1/incidents", {"severity": "urgent"}, "severity"),
        ("/v1/incidents", {"sort_by": "created_at"}, "sort_by"),
        ("/v1/incidents", {"sort_order": "up"}, "sort_order"),
        ("/v1/incidents", {"retention_days": 6}, "retention_days"),
        ("/v1/incidents", {"is_synthetic": "maybe"}, "is_synthetic"),
        ("/v1/incidents", {"started_after": "yesterday"}, "started_after"),
        ("/v1/incidents", {"started_after": "2024-11-01T00:00:00"}, "started_after"),
        (
            "/v1/incidents",
            {"started_after": "2024-11-02T00:00:00Z", "started_before": "2024-11-01T00:00:00Z"},
            "started_before",
        ),
        ("/v1/incidents", {"category": "a\x00b"}, "category"),
        ("/v1/incidents", {"tenant_id": "no spaces"}, "tenant_id"),
        ("/v1/incidents/metrics", {"window_days": 91}, "window_days"),
        ("/v1/incidents/not-a-uuid", {}, "incident_id"),
        ("/v1/incidents/{a1}/events", {"limit": 1000}, "limit"),
        ("/v1/incidents", {"sort": "severity"}, "sort"),  # unknown: sort_by was meant
        ("/v1/incidents/{a1}", {"limit": 5}, "limit"),
        ("/v1/costs/summary", {"period": "7d", "window_days": 7}, "window_days"),
    ],
)
async def test_bad_parameters_are_422_naming_the_field(
    api: Client, path: str, params: dict[str, Any], field: str
) -> None:
    client, data = api
    url = path.replace("{a1}", data.id("a1"))
    response = await client.get(url, params=params, headers=data.auth("acme"))
    assert assert_error(response, 422, "invalid_parameter")["field"] == field


async def test_unknown_paths_and_methods_answer_json(api: Client) -> None:
    client, data = api
    assert_error(await client.get("/v1/nothing", headers=data.auth("acme")), 404, "not_found")
    response = await client.post("/v1/incidents", headers=data.auth("acme"))
    assert_error(response, 405, "method_not_allowed")
    missing = await client.get(
        "/v1/incidents/00000000-0000-0000-0000-000000000000", headers=data.auth("acme")
    )
    assert_error(missing, 404, "not_found")
    assert re.fullmatch(r"[^\n]*", missing.json()["error"]["message"])
