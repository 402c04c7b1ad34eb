"""The analytics pipeline, run once for every API test module that asks for it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest_asyncio

from api.app import create_app
from domain.settings import Settings
from storage.engine import create_async_db_engine
from storage.keys import create_key
from storage.migrate import upgrade
from tests.integration.api.analytics_expected import (
    TENANTS,
    Pipeline,
    read_incidents,
    run_pipeline,
)
from tests.support import fresh_database


@pytest_asyncio.fixture(scope="package")
async def pipeline(postgres_url: str, bootstrap_servers: str) -> AsyncIterator[Pipeline]:
    """A database filled by the real pipeline, and a client of the API over it."""
    with fresh_database(postgres_url) as url:
        upgrade(url)
        await run_pipeline(url, bootstrap_servers)
        rows, as_of = read_incidents(url)
        engine = create_async_db_engine(url, pool_size=4)
        try:
            async with engine.begin() as conn:
                keys = {t: (await create_key(conn, tenant_id=t))[1] for t in TENANTS}
            app = create_app(Settings(database_url=url), engine=engine)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
                yield Pipeline(client, rows, as_of, keys)
        finally:
            await engine.dispose()
