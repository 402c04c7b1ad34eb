"""Prometheus metrics of the two worker processes, and the HTTP server that exposes them.

Each metrics object owns its `CollectorRegistry` (no process-global collectors), so several
workers can live in one process (tests, `incidentflow dev`). Every recording method is meant to
be called once per batch, never per message. Consumer lag is never reported below zero: tansu
reports as end offset the last batch's base offset + 1, which can be below an offset committed
after that batch, and a negative backlog means nothing.
"""

from __future__ import annotations

import errno
import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    start_http_server,
)

from workers.guard import DeadLetterGuard, GuardReport

log = logging.getLogger("incidentflow.metrics")

SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
INGEST_BATCH_BUCKETS = (1, 10, 50, 100, 500, 1000, 2500, 5000, 10000, 20000)
PROCESSOR_BATCH_BUCKETS = (1, 5, 10, 25, 50, 100, 250, 500)


class WorkerMetrics:
    """What both worker processes record per batch, named `incidentflow_<process>_...`: its
    size (`batch_unit` per batch) and duration (`batch_time` says what it covers), its
    PostgreSQL transaction, retries and rebalances; and the process's own collector."""

    def __init__(
        self, process: str, *, batch_unit: str, batch_time: str, buckets: tuple[int, ...]
    ) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        prefix = f"incidentflow_{process}"
        self._batch_messages = Histogram(
            f"{prefix}_batch_messages",
            f"{batch_unit} per batch.",
            buckets=buckets,
            registry=self.registry,
        )
        self._batch_seconds = _seconds(
            self.registry, f"{prefix}_batch_duration_seconds", batch_time
        )
        self._transaction_seconds = _seconds(
            self.registry,
            f"{prefix}_transaction_duration_seconds",
            "A batch's PostgreSQL transaction.",
        )
        self._retries = _counter(
            self.registry,
            f"{prefix}_retries",
            "Retries after a failure, by operation.",
            "operation",
        )
        self._rebalances = _counter(
            self.registry, f"{prefix}_rebalances", "Partition assignments received."
        )

    def batch(self, messages: int, seconds: float, transaction_seconds: float) -> None:
        self._batch_messages.observe(messages)
        self._batch_seconds.observe(seconds)
        self._transaction_seconds.observe(transaction_seconds)

    def retry(self, operation: str) -> None:
        """One retry of `operation` (e.g. `database`, `broker`, `publish`)."""
        self._retries.labels(operation).inc()

    def rebalance(self) -> None:
        self._rebalances.inc()


class IngestMetrics(WorkerMetrics):
    """The collectors of one ingest worker."""

    def __init__(self) -> None:
        super().__init__(
            "ingest",
            batch_unit="Messages",
            batch_time="Seconds per batch: its build, transaction and publish.",
            buckets=INGEST_BATCH_BUCKETS,
        )
        self._read = _counter(
            self.registry, "incidentflow_ingest_messages_read", "Messages fetched.", "topic"
        )
        self._applied = _counter(
            self.registry,
            "incidentflow_ingest_messages_applied",
            "Events and commands applied.",
            "topic",
        )
        self._duplicates = _counter(
            self.registry,
            "incidentflow_ingest_messages_duplicates",
            "Messages already applied: no effect.",
            "topic",
        )
        self._dead_letters = _counter(
            self.registry,
            "incidentflow_ingest_dead_letters",
            "Messages dead-lettered, by reason.",
            "topic",
            "reason",
        )
        self._lag = _gauge(
            self.registry,
            "incidentflow_ingest_consumer_lag",
            "End offset minus the offset stored in PostgreSQL, per partition and input topic.",
            "partition",
            "topic",
        )
        self._watermark = _gauge(
            self.registry,
            "incidentflow_ingest_watermark_timestamp_seconds",
            "A partition's watermark (event time) in unix seconds; absent while unknown.",
            "partition",
        )
        self._dead_letter_ratio = _gauge(
            self.registry,
            "incidentflow_ingest_dead_letter_ratio",
            "Share of dead letters among a partition's recent messages (the guard's window).",
            "partition",
        )
        self._guard = _counter(
            self.registry,
            "incidentflow_ingest_dead_letter_guard",
            "Times the dead-letter guard fired on a partition (its share over the limit).",
            "partition",
        )
        self._lag_topics: dict[int, set[str]] = {}

    def read(self, topic: str, count: int) -> None:
        self._read.labels(topic).inc(count)

    def applied(self, topic: str, count: int) -> None:
        self._applied.labels(topic).inc(count)

    def duplicates(self, topic: str, count: int) -> None:
        self._duplicates.labels(topic).inc(count)

    def dead_lettered(self, topic: str, reason: str, count: int) -> None:
        self._dead_letters.labels(topic, reason).inc(count)

    def partition(
        self,
        partition: int,
        lag: Mapping[str, int],
        watermark: datetime | None,
        dead_letter_share: float,
    ) -> None:
        """Set a partition's gauges: lag per input topic (a topic left out loses its series),
        the watermark (None removes it) and the dead-letter share."""
        label = str(partition)
        known = self._lag_topics.setdefault(partition, set())
        for topic in known - lag.keys():
            self._lag.remove(label, topic)
        for topic, value in lag.items():
            self._lag.labels(label, topic).set(max(value, 0))
        known.clear()
        known.update(lag)
        if watermark is None:
            self._watermark.remove(label)
        else:
            self._watermark.labels(label).set(watermark.timestamp())
        self._dead_letter_ratio.labels(label).set(dead_letter_share)

    def forget_partition(self, partition: int) -> None:
        """Drop a revoked partition's gauges. Its guard counter stays: a counter is this
        process's running total, and dropping it would lose an increase not yet scraped."""
        label = str(partition)
        for topic in self._lag_topics.pop(partition, set()):
            self._lag.remove(label, topic)
        self._watermark.remove(label)
        self._dead_letter_ratio.remove(label)

    def guard_fired(self, partition: int) -> None:
        self._guard.labels(str(partition)).inc()


class ProcessorMetrics(WorkerMetrics):
    """The collectors of one stream processors worker.

    The processors' dead-letter share is only observed (nothing acts on it), so the
    `DeadLetterGuard` that keeps each partition's recent outcomes lives here.
    """

    def __init__(self, guard: DeadLetterGuard) -> None:
        super().__init__(
            "processors",
            batch_unit="Change messages",
            batch_time="A batch from decoding to its commit.",
            buckets=PROCESSOR_BATCH_BUCKETS,
        )
        self.guard = guard
        self._read = _counter(
            self.registry, "incidentflow_processors_messages_read", "Change messages consumed."
        )
        self._applied = _counter(
            self.registry,
            "incidentflow_processors_snapshots_applied",
            "Snapshots newer than the processor's stored version, applied.",
            "processor",
        )
        self._stale = _counter(
            self.registry,
            "incidentflow_processors_snapshots_stale",
            "Snapshots skipped: not newer than the stored or an in-batch version.",
            "processor",
        )
        self._dead_letters = _counter(
            self.registry,
            "incidentflow_processors_dead_letters",
            "Change messages dead-lettered, by reason.",
            "reason",
        )
        self._lesson_commands = _counter(
            self.registry,
            "incidentflow_processors_lesson_commands",
            "Lesson commands consumed, by outcome: applied, duplicate, or a dead-letter reason.",
            "outcome",
        )
        self._lag = _gauge(
            self.registry,
            "incidentflow_processors_consumer_lag",
            "End offset minus the group's committed offset, per partition of the changes topic.",
            "partition",
        )
        self._dead_letter_ratio = _gauge(
            self.registry,
            "incidentflow_processors_dead_letter_ratio",
            "Share of dead letters among a partition's recent change messages.",
            "partition",
        )
        self._lag_partitions: set[int] = set()
        self._windows: set[int] = set()

    def read(self, count: int) -> None:
        self._read.inc(count)

    def applied(self, processor: str, count: int) -> None:
        self._applied.labels(processor).inc(count)

    def stale(self, processor: str, count: int) -> None:
        self._stale.labels(processor).inc(count)

    def dead_lettered(self, reason: str, count: int) -> None:
        self._dead_letters.labels(reason).inc(count)

    def lesson_commands(self, outcome: str, count: int) -> None:
        self._lesson_commands.labels(outcome).inc(count)

    def lags(self, lags: Mapping[int, int]) -> None:
        """Replace the lag gauges: partitions left out (no longer assigned) lose their series."""
        for partition in self._lag_partitions - lags.keys():
            self._lag.remove(str(partition))
        for partition, lag in lags.items():
            self._lag.labels(str(partition)).set(max(lag, 0))
        self._lag_partitions = set(lags)

    def outcomes(self, partition: int, outcomes: list[str | None]) -> GuardReport:
        """Add a batch's outcomes on `partition` (a dead-letter reason, or None) to its window,
        set its dead-letter share, and return the guard's report."""
        report = self.guard.record(partition, outcomes)
        self._windows.add(partition)
        self._dead_letter_ratio.labels(str(partition)).set(report.share)
        return report

    def keep_partitions(self, partitions: Iterable[int]) -> None:
        """Forget the dead-letter windows and gauges of every partition not in `partitions`."""
        kept = set(partitions)
        for partition in self._windows - kept:
            self.guard.forget(partition)
            self._dead_letter_ratio.remove(str(partition))
        for partition in self._lag_partitions - kept:
            self._lag.remove(str(partition))
        self._windows &= kept
        self._lag_partitions &= kept


@dataclass
class MetricsServer:
    """A running `/metrics` endpoint; `stop()` (or leaving the `with` block) shuts it down."""

    url: str
    _server: WSGIServer
    _thread: threading.Thread

    def stop(self) -> None:
        """Stop serving and close the socket (blocks up to half a second)."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def serve_metrics(registry: CollectorRegistry, host: str, port: int) -> MetricsServer:
    """Serve `registry` on `http://host:port/metrics` from a daemon thread.

    Port 0 picks a free port; a configured port that is taken is replaced by a free one, with a
    warning (several workers share one machine in tests and in `incidentflow dev`). Logs one
    line `metrics on URL`. Raises OSError naming the address if it cannot bind at all.
    """
    try:
        try:
            server, thread = start_http_server(port, addr=host, registry=registry)
        except OSError as error:
            if port == 0 or error.errno != errno.EADDRINUSE:
                raise
            log.warning("metrics port %s:%d is taken; serving on a free port instead", host, port)
            server, thread = start_http_server(0, addr=host, registry=registry)
    except OSError as error:
        detail = error.strerror or error
        raise OSError(error.errno, f"cannot serve metrics on {host}:{port}: {detail}") from error
    url = metrics_url(host, server.server_port)
    log.info("metrics on %s", url)
    return MetricsServer(url, server, thread)


def metrics_url(host: str, port: int) -> str:
    """`http://host:port/metrics`, an IPv6 host in brackets."""
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/metrics"


def _counter(registry: CollectorRegistry, name: str, doc: str, *labels: str) -> Counter:
    """Exposed as `<name>_total`."""
    return Counter(name, doc, labels, registry=registry)


def _gauge(registry: CollectorRegistry, name: str, doc: str, *labels: str) -> Gauge:
    return Gauge(name, doc, labels, registry=registry)


def _seconds(registry: CollectorRegistry, name: str, doc: str) -> Histogram:
    return Histogram(name, doc, buckets=SECONDS_BUCKETS, registry=registry)
