"""The API served over a real socket by the embedded uvicorn server (as `incidentflow dev` does)."""

from __future__ import annotations

import httpx

from api.app import create_app
from domain.settings import Settings
from incidentflow.embedded_api import start_api
from incidentflow.infra import free_port


async def test_embedded_server_serves_and_stops(database_url: str) -> None:
    api = await start_api(create_app(Settings(database_url=database_url)), port=free_port())
    try:
        async with httpx.AsyncClient(base_url=api.url) as client:
            assert (await client.get("/healthz")).json() == {"status": "ok"}
            ready = await client.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert (await client.get("/v1/incidents")).status_code == 401
    finally:
        await api.stop()
    assert api.task.done()
