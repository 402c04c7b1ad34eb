"""The shared query parameters (`api.params`): their defaults, and a value out of range is a 422
naming it, on every analytics route."""

from __future__ import annotations

from api.history import bodies as hm
from domain.buckets import Granularity
from tests.integration.api.analytics_expected import Pipeline


async def test_defaults_and_bad_parameters(pipeline: Pipeline) -> None:
    trend = await pipeline.get(hm.HistoricalTrend, "/v1/incidents/historical/trend", "acme")
    assert trend.granularity is Granularity.WEEK and trend.window_days == 90
    assert all(point.period.weekday() == 0 for point in trend.data_points)
    headers = {"Authorization": f"Bearer {pipeline.keys['acme']}"}
    for path, params, field in [
        ("/v1/incidents/patterns", {"window_hours": 169}, "window_hours"),
        ("/v1/incidents/patterns", {"limit": 0}, "limit"),
        ("/v1/incidents/recurring", {"recurrence_threshold": 1}, "recurrence_threshold"),
        ("/v1/incidents/cost-impact", {"baseline_days": 91}, "baseline_days"),
        ("/v1/incidents/historical/trend", {"granularity": "year"}, "granularity"),
        ("/v1/incidents/historical/distribution", {"window_days": 6}, "window_days"),
        ("/v1/costs/summary", {"period": "1y"}, "period"),
    ]:
        response = await pipeline.client.get(path, params=params, headers=headers)
        assert response.status_code == 422, (path, response.text)
        assert response.json()["error"]["field"] == field
    assert (await pipeline.client.get("/v1/costs/explained")).status_code == 401
