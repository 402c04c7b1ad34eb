"""The wiring of the processors process (`incidentflow processors`): its topics, one engine per
sink (the changes sink and the lesson commands sink), the faust app, its worker and its metrics,
in one place."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import faust

from domain.settings import Settings
from storage.analytics_store import AnalyticsStore
from storage.engine import create_async_db_engine
from storage.triage_store import TriageStore
from workers.guard import DeadLetterGuard
from workers.lesson_commands import CommandSink
from workers.processors import ChangeSink, DeadLetterSend, LessonCommandsInput
from workers.processors import create_app as create_processors_app
from workers.telemetry import MetricsServer, ProcessorMetrics, serve_metrics
from workers.topics import ensure_topics


def run_processors(settings: Settings, loglevel: str = "info") -> int:
    """Run the faust worker until SIGTERM/SIGINT; returns the exit status (1 after a crash).

    Its app id, which is also its consumer group, is `settings.processors_group`.
    """
    if not settings.database_url or not settings.kafka_bootstrap_servers:
        raise ValueError("processors need DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS")
    database_url, bootstrap = settings.database_url, settings.kafka_bootstrap_servers
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    # faust creates internal topics only: every topic it reads or writes must exist before the
    # worker starts (it would see a topic created later only after about 45 s).
    topic, commands = settings.changes_topic, settings.lesson_commands_topic
    topics = [topic, commands, settings.deadletter_topic]
    loop.run_until_complete(
        ensure_topics(bootstrap, topics, settings.topic_partitions, co_partitioned=[topic])
    )
    engines = []
    guard = DeadLetterGuard(settings.dead_letter_guard_share, settings.dead_letter_guard_window)
    metrics = ProcessorMetrics(guard)

    async def make_sink() -> ChangeSink:
        engine = create_async_db_engine(database_url, pool_size=2)
        engines.append(engine)
        store = AnalyticsStore(engine, settings.sla_targets(), rules=settings.aggregation())
        return ChangeSink(store, metrics=metrics)

    async def make_command_sink(send: DeadLetterSend) -> CommandSink:
        engine = create_async_db_engine(database_url, pool_size=1)
        engines.append(engine)
        return CommandSink(TriageStore(engine), send, metrics=metrics)

    async def close() -> None:
        while engines:
            await engines.pop().dispose()

    with tempfile.TemporaryDirectory(prefix="incidentflow-faust-") as datadir:
        # faust creates its data directories even without Tables: keep them out of the cwd.
        app = create_processors_app(
            settings.processors_group, bootstrap, topic, make_sink, close=close,
            datadir=Path(datadir), metrics=metrics,
            lesson_commands=LessonCommandsInput(
                commands, settings.deadletter_topic, make_command_sink
            ),
        )  # fmt: skip
        serve = partial(
            serve_metrics, metrics.registry, settings.metrics_host, settings.processors_metrics_port
        )
        worker = ProcessorsWorker(app, serve, loglevel=loglevel, loop=loop)
        try:
            worker.execute_from_commandline()
        except SystemExit as exit_:
            return exit_.code if isinstance(exit_.code, int) else 1
        finally:
            if worker.metrics_server is not None:
                worker.metrics_server.stop()
    return 0


class ProcessorsWorker(faust.Worker):
    """faust's worker, serving the metrics from the moment it has set up logging (so that the
    `metrics on URL` line is seen): before the group join, which can take long."""

    def __init__(self, app: faust.App, serve: Callable[[], MetricsServer], **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._serve = serve
        self.metrics_server: MetricsServer | None = None

    async def on_execute(self) -> None:
        await super().on_execute()
        self.metrics_server = self._serve()
