"""Wiring of the ingest process: engine, topics, consumer, producer, signals, worker."""

from __future__ import annotations

import asyncio
import logging
import signal
from contextlib import AsyncExitStack

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.coordinator.assignors.range import RangePartitionAssignor

from storage.engine import create_async_db_engine
from storage.ingest_store import IngestStore
from workers.ingest import IngestWorker
from workers.settings import Settings
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
