"""`/v1/incidents/recurring` over the real pipeline, against a direct computation."""

from __future__ import annotations

import pytest

from api.recurrence import bodies as rm
from tests.integration.api.analytics_expected import (
    EDGE,
    TENANTS,
    Pipeline,
    expected_patterns,
    expected_recurring,
)


async def test_the_scenario_gives_the_endpoints_something_to_show(pipeline: Pipeline) -> None:
    mine = [r for r in pipeline.rows if r.started_at <= pipeline.as_of]
    assert len({r.tenant_id for r in mine}) >= len(TENANTS)
    assert any(r.resolved for r in mine) and any(r.cost_usd > 0 for r in mine)
    assert pipeline.as_of == EDGE
    late = {r.tenant_id for r in pipeline.rows if r.started_at > pipeline.as_of}
    assert len(late) >= 2, "as_of should fall inside the other tenants' data"
    hour = pipeline.as_of.replace(minute=0)
    assert sum(r.started_at >= hour for r in mine) >= 2, "nothing in as_of's own hour"
    recurring = [expected_recurring(pipeline, t, 90, 2, 50) for t in TENANTS]
    assert any(r.groups for r in recurring) and any(r.fingerprints for r in recurring)
    assert any(expected_patterns(pipeline, t, 168, 50).patterns for t in TENANTS)


@pytest.mark.parametrize(("days", "threshold", "limit"), [(1, 2, 20), (30, 3, 20), (90, 5, 1)])
async def test_recurring(pipeline: Pipeline, days: int, threshold: int, limit: int) -> None:
    for tenant in TENANTS:
        got = await pipeline.get(
            rm.Recurring,
            "/v1/incidents/recurring",
            tenant,
            baseline_days=days,
            recurrence_threshold=threshold,
            limit=limit,
        )
        assert got == expected_recurring(pipeline, tenant, days, threshold, limit), tenant
