"""`/v1/incidents/cost-impact` over the real pipeline, against a direct computation."""

from __future__ import annotations

import pytest

from api.cost_impact import bodies as ci
from tests.integration.api.analytics_expected import TENANTS, Pipeline, expected_cost_impact


@pytest.mark.parametrize(("days", "limit"), [(1, 20), (30, 1), (90, 50)])
async def test_cost_impact(pipeline: Pipeline, days: int, limit: int) -> None:
    for tenant in TENANTS:
        got = await pipeline.get(
            ci.CostImpact, "/v1/incidents/cost-impact", tenant, baseline_days=days, limit=limit
        )
        assert got == expected_cost_impact(pipeline, tenant, days, limit), tenant
