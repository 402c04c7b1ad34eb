"""Fixtures of the API tests that read one seeded database per test module.

`api` here is module-scoped over `module_database`; a module whose tests need a fresh database
each (as `api/test_incidents`) defines its own `api` over `database_url`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from storage.migrate import upgrade
from tests.integration.api_dataset import Client, api_client
from tests.support import fresh_database


@pytest.fixture(scope="module")
def module_database(postgres_url: str) -> Iterator[str]:
    """A fresh migrated database for one test module, dropped after it."""
    with fresh_database(postgres_url) as url:
        upgrade(url)
        yield url


@pytest_asyncio.fixture(scope="module")
async def api(module_database: str) -> AsyncIterator[Client]:
    """A client of the API over `module_database`, seeded once for the module."""
    async with api_client(module_database) as pair:
        yield pair
