"""The wiring of each long-running process: what it connects to, in one place per process.

- `run_ingest`: topics, engine, producer, consumer, signals and the `IngestWorker`;
- `run_processors`: the changes topic, one engine per sink, the faust app and its worker;
- `api_from_environment`: the read API's app, the factory `incidentflow api` serves.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import tempfile
from contextlib import AsyncExitStack
from pathlib import Path

import faust
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from fastapi import FastAPI

from api.app import create_app
from domain.settings import Settings
from incidentflow.environment import read_settings
from storage.analytics_store import AnalyticsStore
from storage.engine import create_async_db_engine
from storage.ingest_store import IngestStore
from workers.ingest import IngestWorker
from workers.processors import ChangeSink
from workers.processors import create_app as create_processors_app
from workers.topics import ensure_topics

log = logging.getLogger("incidentflow.ingest")

MAX_FETCH_BYTES = 4 * 1024 * 1024
"""Above the 1 MiB message limit, so an oversized message is fetched and dead-lettered."""


async def run_ingest(
    settings: Settings,
    *,
    stop_when_caught_up: bool = False,
    on_started: asyncio.Future[IngestWorker] | None = None,
) -> int:
    """Run the ingest worker until SIGTERM/SIGINT (or caught up); returns the exit code."""
    if not settings.database_url or not settings.kafka_bootstrap_servers:
        raise ValueError("ingest needs DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS")
    await ensure_topics(
        settings.kafka_bootstrap_servers,
        [*settings.input_topics, settings.changes_topic, settings.deadletter_topic],
        settings.topic_partitions,
        co_partitioned=settings.input_topics,
    )
    async with AsyncExitStack() as stack:
        engine = create_async_db_engine(settings.database_url, pool_size=4)
        stack.push_async_callback(engine.dispose)
        producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            linger_ms=5,
            max_request_size=MAX_FETCH_BYTES,
            acks="all",
        )
        await producer.start()
        stack.push_async_callback(producer.stop)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            group_id=settings.consumer_group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            partition_assignment_strategy=(RangePartitionAssignor,),
            session_timeout_ms=settings.session_timeout_ms,
            heartbeat_interval_ms=settings.heartbeat_interval_ms,
            max_partition_fetch_bytes=MAX_FETCH_BYTES,
            fetch_max_bytes=4 * MAX_FETCH_BYTES,
        )
        worker = IngestWorker(
            settings, IngestStore(engine, settings.aggregation()), consumer, producer
        )
        consumer.subscribe(list(settings.input_topics), listener=worker.listener())
        await consumer.start()
        stack.push_async_callback(consumer.stop)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, worker.stop)
            stack.callback(loop.remove_signal_handler, signum)
        if on_started is not None:
            on_started.set_result(worker)
        log.info("ingest worker started (group %s)", settings.consumer_group)
        code = await worker.run(stop_when_caught_up=stop_when_caught_up)
        log.info("ingest worker stopping: %s", worker.stats)
        return code


def run_processors(settings: Settings, loglevel: str = "info") -> int:
    """Run the faust worker until SIGTERM/SIGINT; returns the exit status (1 after a crash).

    Its app id, which is also its consumer group, is `settings.processors_group`.
    """
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
        app = create_processors_app(
            settings.processors_group, bootstrap, topic, make_sink, close=close,
            datadir=Path(datadir),
        )  # fmt: skip
        worker = faust.Worker(app, loglevel=loglevel, loop=loop)
        try:
            worker.execute_from_commandline()
        except SystemExit as exit_:
            return exit_.code if isinstance(exit_.code, int) else 1
    return 0


def api_from_environment() -> FastAPI:
    """The read API configured from the environment: each server process builds its own."""
    return create_app(read_settings())
