"""`/v1/incidents/historical` over the real pipeline, against a direct computation."""

from __future__ import annotations

import pytest

from api.history import bodies as hm
from tests.integration.api.analytics_expected import (
    TENANTS,
    Pipeline,
    expected_cost_trend,
    expected_distribution,
    expected_trend,
)


@pytest.mark.parametrize(("days", "granularity"), [(7, "day"), (90, "week"), (365, "month")])
async def test_historical_trend_and_cost_trend(
    pipeline: Pipeline, days: int, granularity: str
) -> None:
    params = {"window_days": days, "granularity": granularity}
    for tenant in TENANTS:
        trend = await pipeline.get(
            hm.HistoricalTrend, "/v1/incidents/historical/trend", tenant, **params
        )
        assert trend == expected_trend(pipeline, tenant, days, granularity), tenant
        cost = await pipeline.get(
            hm.HistoricalCostTrend, "/v1/incidents/historical/cost-trend", tenant, **params
        )
        assert cost == expected_cost_trend(pipeline, tenant, days, granularity), tenant


@pytest.mark.parametrize("days", [7, 365])
async def test_historical_distribution(pipeline: Pipeline, days: int) -> None:
    for tenant in TENANTS:
        got = await pipeline.get(
            hm.HistoricalDistribution,
            "/v1/incidents/historical/distribution",
            tenant,
            window_days=days,
        )
        assert got == expected_distribution(pipeline, tenant, days), tenant
