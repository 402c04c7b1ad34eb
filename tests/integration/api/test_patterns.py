"""`/v1/incidents/patterns` over the real pipeline, against a direct computation."""

from __future__ import annotations

import pytest

from api.patterns import bodies as pm
from tests.integration.api.analytics_expected import TENANTS, Pipeline, expected_patterns


@pytest.mark.parametrize(("hours", "limit"), [(1, 10), (24, 10), (168, 1), (168, 50)])
async def test_patterns(pipeline: Pipeline, hours: int, limit: int) -> None:
    for tenant in TENANTS:
        got = await pipeline.get(
            pm.Patterns, "/v1/incidents/patterns", tenant, window_hours=hours, limit=limit
        )
        assert got == expected_patterns(pipeline, tenant, hours, limit), tenant
