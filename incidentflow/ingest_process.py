"""The wiring of the ingest process (`incidentflow ingest`): topics, metrics, engine, producer,
consumer, signals and the `IngestWorker`, in one place.

It imports nothing of the processors (faust) or of the API (FastAPI): both weigh seconds of CPU
at start-up.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from contextlib import AsyncExitStack

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.coordinator.assignors.range import RangePartitionAssignor

from domain.settings import Settings
from storage.engine import create_async_db_engine
from storage.ingest_store import IngestStore
from workers.faults import Outage, keep_trying
from workers.ingest import IngestWorker
from workers.telemetry import IngestMetrics, serve_metrics
from workers.topics import ensure_topics

log = logging.getLogger("incidentflow.ingest")

MAX_FETCH_BYTES = 4 * 1024 * 1024
"""Above the 1 MiB message limit, so an oversized message is fetched and dead-lettered."""
PRODUCER_TIMEOUT_MS = 15_000
"""A send the broker does not answer fails after this long, and is retried (outage counted)."""
STOP_TIMEOUT = 10.0


async def run_ingest(
    settings: Settings,
    *,
    stop_when_caught_up: bool = False,
    on_started: asyncio.Future[IngestWorker] | None = None,
) -> int:
    """Run the ingest worker until SIGTERM/SIGINT (or caught up); returns the exit code.

    Raises `WorkerStop` (one line for the operator) when the broker or PostgreSQL stays
    unreachable for `outage_seconds`, or the dead-letter guard is set to stop.
    """
    if not settings.database_url or not settings.kafka_bootstrap_servers:
        raise ValueError("ingest needs DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS")
    bootstrap, database_url = settings.kafka_bootstrap_servers, settings.database_url
    broker = Outage("the broker", settings.outage_seconds, time.monotonic)
    await keep_trying(
        lambda: ensure_topics(
            bootstrap,
            [*settings.input_topics, settings.changes_topic, settings.deadletter_topic],
            settings.topic_partitions,
            co_partitioned=settings.input_topics,
        ),
        broker,
        "creating topics",
    )
    async with AsyncExitStack() as stack:
        metrics = IngestMetrics()
        server = serve_metrics(
            metrics.registry, settings.metrics_host, settings.ingest_metrics_port
        )
        stack.callback(server.stop)
        engine = create_async_db_engine(database_url, pool_size=4)
        stack.push_async_callback(engine.dispose)
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            linger_ms=5,
            max_request_size=MAX_FETCH_BYTES,
            acks="all",
            request_timeout_ms=PRODUCER_TIMEOUT_MS,
        )
        await keep_trying(producer.start, broker, "starting the producer")
        stack.push_async_callback(lambda: asyncio.wait_for(producer.stop(), STOP_TIMEOUT))
        worker = IngestWorker(
            settings, IngestStore(engine, settings.aggregation()), producer, metrics=metrics
        )
        worker.metrics_url = server.url
        await worker.join(lambda: _consumer(settings))
        stack.push_async_callback(worker.close)
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


def _consumer(settings: Settings) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
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
