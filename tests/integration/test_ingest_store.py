"""`storage.ingest_store.IngestStore` on a real PostgreSQL: what a reloaded partition holds."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest_asyncio

from domain.aggregation import PartitionAggregator
from domain.config import AggregationConfig
from storage.effects import BatchEffects, PartitionEffects
from storage.engine import create_async_db_engine
from storage.ingest_store import IngestStore
from storage.rows import incident_row
from tests.builders import T0, failure, secs

CONFIG = AggregationConfig(max_lateness_seconds=7200)
TOPICS = ("failures", "violations", "commands")


@pytest_asyncio.fixture
async def store(database_url: str) -> AsyncIterator[IngestStore]:
    engine = create_async_db_engine(database_url)
    try:
        yield IngestStore(engine, CONFIG)
    finally:
        await engine.dispose()


async def test_a_partition_reloads_every_incident_the_hourly_cap_can_still_count(
    store: IngestStore,
) -> None:
    # An incident created at T0 whose start a late event moved 50 minutes earlier: the cap
    # counts it at its creation, so it must stay loaded while T0 + 1 h is past the horizon.
    aggregator = PartitionAggregator(CONFIG)
    incident_id = aggregator.apply_signal(failure("e1", at=T0), T0)
    aggregator.apply_signal(failure("e2", at=T0 - timedelta(minutes=50)), T0)
    mark = T0 + secs(7200 + 1800)  # horizon = T0 + 30 min: T0 - 50 min + 1 h is behind it
    aggregator.advance_watermark(mark)
    incident = aggregator.incidents[incident_id]
    assert incident.started_at + timedelta(hours=1) <= mark - CONFIG.max_lateness
    assert incident.opened + timedelta(hours=1) > mark - CONFIG.max_lateness
    assert incident_id not in aggregator.evict()  # the aggregator keeps it in memory ...
    await store.save(
        BatchEffects(
            received_at=T0,
            partitions=[
                PartitionEffects(
                    partition=3,
                    watermark=mark,
                    incident_rows=[incident_row(incident, 3)],
                    next_offsets={"failures": 2},
                )
            ],
        )
    )

    stored = await store.load_partition(3, TOPICS)

    assert [i.incident_id for i in stored.incidents] == [incident_id]  # ... and so does a reload
