"""`/v1/incidents/metrics` over the seeded database: equal to a direct computation in Python."""

from __future__ import annotations

import statistics
from datetime import timedelta
from typing import Any

import pytest

from domain.incidents import Incident
from domain.metrics import SlaStatus, sla_status, time_to_containment, time_to_resolution
from domain.settings import Settings
from tests.integration.api_dataset import AS_OF, Client, get


def expected_metrics(items: list[Incident], window_days: int) -> dict[str, Any]:
    """The metrics computed in Python from the incidents, as the endpoint should."""
    start = AS_OF - timedelta(days=window_days)
    chosen = [i for i in items if start <= i.started_at <= AS_OF]
    targets = Settings().sla_targets()
    statuses = [sla_status(i.severity, i.started_at, i.resolved_at, AS_OF, targets) for i in chosen]
    met, breached = statuses.count(SlaStatus.MET), statuses.count(SlaStatus.BREACHED)

    def ms(values: list[timedelta | None]) -> tuple[int | None, int | None]:
        known = [v / timedelta(milliseconds=1) for v in values if v is not None]
        if not known:
            return None, None
        return round(statistics.fmean(known)), round(statistics.median(known))

    ttc = ms([time_to_containment(i.started_at, i.acked_at, i.resolved_at) for i in chosen])
    ttr = ms([time_to_resolution(i.started_at, i.resolved_at) for i in chosen])
    states = [i.lifecycle_state.value for i in chosen]
    return {
        "total_count": len(chosen),
        "active_count": states.count("ACTIVE") + states.count("ACKED"),
        "acked_count": states.count("ACKED"),
        "resolved_count": states.count("RESOLVED"),
        **{f"{s}_count": [i.severity for i in chosen].count(s) for s in ("low", "medium", "high",
                                                                           "critical")},
        "avg_time_to_containment_ms": ttc[0],
        "median_time_to_containment_ms": ttc[1],
        "avg_time_to_resolution_ms": ttr[0],
        "median_time_to_resolution_ms": ttr[1],
        "sla_met_count": met,
        "sla_breached_count": breached,
        "sla_compliance_rate": round(met / (met + breached) * 100, 2) if met + breached else None,
    }  # fmt: skip


@pytest.mark.parametrize("window_days", [1, 2, 7, 30, 90])
async def test_metrics_equal_a_direct_computation(api: Client, window_days: int) -> None:
    _, data = api
    body = await get(api, "/v1/incidents/metrics", window_days=window_days)
    expected = expected_metrics(data.of("acme"), window_days)
    assert {key: body[key] for key in expected} == expected
    assert body["window_days"] == window_days
