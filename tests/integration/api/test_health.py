"""`/healthz`, `/readyz` and `/metrics` of the API over the seeded database."""

from __future__ import annotations

from tests.integration.api_dataset import Client


async def test_health_endpoints(api: Client) -> None:
    client, _ = api
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["migrations_current"] is True
    await client.get("/v1/incidents")
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert 'incidentflow_api_requests_total{method="GET",route="/v1/incidents",status="401"}' in (
        metrics.text
    )
    assert 'incidentflow_ingest_watermark_age_seconds{partition="1"}' in metrics.text
