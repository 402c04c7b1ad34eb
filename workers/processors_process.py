"""Wiring of the processors process: topic check, engine, store, sink, faust app and worker."""

from __future__ import annotations

import asyncio
import logging
import tempfile
from pathlib import Path

import faust

from storage.analytics_store import AnalyticsStore
from storage.engine import create_async_db_engine
from workers.processors import ChangeSink, create_app
from workers.settings import Settings
from workers.topics import ensure_topics

log = logging.getLogger("incidentflow.processors")

DEFAULT_APP_ID = "incidentflow-processors"
"""The faust app id, which is also the processors' consumer group."""


def run_processors(settings: Settings, app_id: str = DEFAULT_APP_ID, loglevel: str = "info") -> int:
    """Run the faust worker until SIGTERM/SIGINT; returns the exit status (1 after a crash)."""
    if not settings.database_url or not settings.kafka_bootstrap_servers:
        raise ValueError("processors need DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS")
    database_url, bootstrap = settings.database_url, settings.kafka_bootstrap_servers
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    # faust creates internal topics only: the changes topic must exist before the worker starts.
    topic = settings.changes_topic
    loop.run_until_complete(
        ensure_topics(bootstrap, [topic], settings.topic_partitions, co_partitioned=[topic])
    )
    engines = []

    async def make_sink() -> ChangeSink:
        engine = create_async_db_engine(database_url, pool_size=2)
        engines.append(engine)
        return ChangeSink(AnalyticsStore(engine, settings.sla_targets()))

    async def close() -> None:
        while engines:
            await engines.pop().dispose()

    with tempfile.TemporaryDirectory(prefix="incidentflow-faust-") as datadir:
        # faust creates its data directories even without Tables: keep them out of the cwd.
        app = create_app(app_id, bootstrap, topic, make_sink, close=close, datadir=Path(datadir))
        worker = faust.Worker(app, loglevel=loglevel, loop=loop)
        try:
            worker.execute_from_commandline()
        except SystemExit as exit_:
            return exit_.code if isinstance(exit_.code, int) else 1
    return 0
