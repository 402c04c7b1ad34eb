"""`/v1/costs` over the real pipeline, against a direct computation."""

from __future__ import annotations

import pytest

from api.costs import bodies as cm
from tests.integration.api.analytics_expected import (
    TENANTS,
    Pipeline,
    expected_explained,
    expected_summary,
)


@pytest.mark.parametrize("period", ["today", "7d", "30d"])
async def test_cost_summary_and_explained(pipeline: Pipeline, period: str) -> None:
    for tenant in TENANTS:
        summary = await pipeline.get(cm.CostSummary, "/v1/costs/summary", tenant, period=period)
        assert summary == expected_summary(pipeline, tenant, period), tenant
        explained = await pipeline.get(
            cm.CostExplained, "/v1/costs/explained", tenant, period=period
        )
        assert explained == expected_explained(pipeline, tenant, period), tenant
