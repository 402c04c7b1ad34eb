"""The workers' metrics: values read back from their registries, the sink's per-batch recording,
and the HTTP endpoint (scraped over a real socket)."""

from __future__ import annotations

import logging
import socket
from collections.abc import Sequence
from datetime import UTC, datetime

import httpx
import orjson
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.exc import OperationalError

from domain.snapshot import IncidentSnapshot
from incidentflow.infra import free_port
from storage.analytics_store import AppliedBatch
from storage.effects import DeadLetterRow
from tests.builders import incident
from workers.guard import DeadLetterGuard
from workers.processors import ChangeMessage, ChangeSink
from workers.telemetry import IngestMetrics, ProcessorMetrics, metrics_url, serve_metrics

FAILURES, COMMANDS = "llm.call.failures", "incident.commands"


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def series(registry: CollectorRegistry, name: str) -> list[dict[str, str]]:
    return [
        sample.labels
        for family in registry.collect()
        for sample in family.samples
        if sample.name == name
    ]


# -- the ingest worker --------------------------------------------------------------------------


def test_ingest_counters_add_up_per_topic_reason_and_operation() -> None:
    metrics = IngestMetrics()
    for _ in range(2):
        metrics.read(FAILURES, 10)
        metrics.applied(FAILURES, 7)
        metrics.duplicates(FAILURES, 2)
        metrics.dead_lettered(FAILURES, "invalid_json", 1)
    metrics.read(COMMANDS, 3)
    metrics.dead_lettered(COMMANDS, "unknown_incident", 3)
    metrics.retry("database")
    metrics.retry("database")
    metrics.retry("publish")
    metrics.rebalance()
    metrics.guard_fired(4)
    r = metrics.registry
    assert value(r, "incidentflow_ingest_messages_read_total", topic=FAILURES) == 20
    assert value(r, "incidentflow_ingest_messages_read_total", topic=COMMANDS) == 3
    assert value(r, "incidentflow_ingest_messages_applied_total", topic=FAILURES) == 14
    assert value(r, "incidentflow_ingest_messages_duplicates_total", topic=FAILURES) == 4
    dead = "incidentflow_ingest_dead_letters_total"
    assert value(r, dead, topic=FAILURES, reason="invalid_json") == 2
    assert value(r, dead, topic=COMMANDS, reason="unknown_incident") == 3
    assert value(r, "incidentflow_ingest_retries_total", operation="database") == 2
    assert value(r, "incidentflow_ingest_retries_total", operation="publish") == 1
    assert value(r, "incidentflow_ingest_rebalances_total") == 1
    assert value(r, "incidentflow_ingest_dead_letter_guard_total", partition="4") == 1


def test_ingest_batches_are_histograms_of_size_and_durations() -> None:
    metrics = IngestMetrics()
    metrics.batch(messages=40, seconds=0.3, transaction_seconds=0.1)
    metrics.batch(messages=4000, seconds=1.2, transaction_seconds=0.6)
    r = metrics.registry
    assert value(r, "incidentflow_ingest_batch_messages_count") == 2
    assert value(r, "incidentflow_ingest_batch_messages_sum") == 4040
    assert value(r, "incidentflow_ingest_batch_messages_bucket", le="50.0") == 1
    assert value(r, "incidentflow_ingest_batch_duration_seconds_sum") == pytest.approx(1.5)
    assert value(r, "incidentflow_ingest_transaction_duration_seconds_sum") == pytest.approx(0.7)
    assert value(r, "incidentflow_ingest_transaction_duration_seconds_bucket", le="0.25") == 1


def test_a_partition_sets_lag_per_topic_watermark_and_share() -> None:
    metrics = IngestMetrics()
    watermark = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    metrics.partition(3, {FAILURES: 120, COMMANDS: -4}, watermark, 0.25)
    r = metrics.registry
    lag = "incidentflow_ingest_consumer_lag"
    assert value(r, lag, partition="3", topic=FAILURES) == 120
    assert value(r, lag, partition="3", topic=COMMANDS) == 0, "a negative lag reads as 0"
    assert value(r, "incidentflow_ingest_watermark_timestamp_seconds", partition="3") == (
        watermark.timestamp()
    )
    assert value(r, "incidentflow_ingest_dead_letter_ratio", partition="3") == 0.25

    metrics.partition(3, {FAILURES: 5}, None, 0.0)
    assert value(r, lag, partition="3", topic=FAILURES) == 5
    assert value(r, lag, partition="3", topic=COMMANDS) is None, "a topic left out is dropped"
    assert series(r, "incidentflow_ingest_watermark_timestamp_seconds") == [], "unknown: absent"


def test_forgetting_a_partition_drops_its_gauges_but_keeps_its_guard_count() -> None:
    metrics = IngestMetrics()
    at = datetime(2026, 11, 22, tzinfo=UTC)
    metrics.partition(1, {FAILURES: 1, COMMANDS: 2}, at, 0.9)
    metrics.partition(2, {FAILURES: 7}, at, 0.1)
    metrics.guard_fired(1)
    metrics.forget_partition(1)
    metrics.forget_partition(5)  # never seen: nothing to drop
    r = metrics.registry
    assert series(r, "incidentflow_ingest_consumer_lag") == [{"partition": "2", "topic": FAILURES}]
    assert series(r, "incidentflow_ingest_watermark_timestamp_seconds") == [{"partition": "2"}]
    assert series(r, "incidentflow_ingest_dead_letter_ratio") == [{"partition": "2"}]
    assert value(r, "incidentflow_ingest_dead_letter_guard_total", partition="1") == 1


def test_each_worker_has_its_own_registry() -> None:
    first, second = IngestMetrics(), IngestMetrics()
    first.read(FAILURES, 5)
    assert value(second.registry, "incidentflow_ingest_messages_read_total", topic=FAILURES) is None
    ProcessorMetrics(DeadLetterGuard(0.5, 100))
    ProcessorMetrics(DeadLetterGuard(0.5, 100))


# -- the stream processors ----------------------------------------------------------------------


def test_processor_lags_replace_the_previous_assignment() -> None:
    metrics = ProcessorMetrics(DeadLetterGuard(0.5, 100))
    metrics.lags({0: 12, 1: -3})
    r = metrics.registry
    assert value(r, "incidentflow_processors_consumer_lag", partition="0") == 12
    assert value(r, "incidentflow_processors_consumer_lag", partition="1") == 0
    metrics.lags({1: 4})
    assert series(r, "incidentflow_processors_consumer_lag") == [{"partition": "1"}]
    assert value(r, "incidentflow_processors_consumer_lag", partition="1") == 4


def test_processor_dead_letter_share_is_over_the_recent_window_and_forgotten_on_revoke() -> None:
    metrics = ProcessorMetrics(DeadLetterGuard(0.5, 10))
    metrics.outcomes(0, ["invalid_json", None, None, None])
    report = metrics.outcomes(0, [None] * 8)  # the window keeps the last 10 outcomes
    assert report.share == pytest.approx(0.0)
    report = metrics.outcomes(1, ["invalid_json", "schema_violation", None, None])
    r = metrics.registry
    assert value(r, "incidentflow_processors_dead_letter_ratio", partition="1") == 0.5
    assert not report.firing
    metrics.lags({0: 1, 1: 1})
    metrics.keep_partitions([1])
    assert series(r, "incidentflow_processors_dead_letter_ratio") == [{"partition": "1"}]
    assert series(r, "incidentflow_processors_consumer_lag") == [{"partition": "1"}]
    assert metrics.outcomes(0, ["invalid_json"]).share == 1.0, "partition 0 starts afresh"


class FakeWriter:
    """Fails the first `failures` calls with a database error; then reports every snapshot as
    applied by `rollups`, and as stale by `costs`."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures

    async def apply(
        self, snapshots: Sequence[IncidentSnapshot], dead_letters: Sequence[DeadLetterRow] = ()
    ) -> AppliedBatch:
        if self.failures:
            self.failures -= 1
            raise OperationalError("SELECT 1", {}, ConnectionError("server closed"))
        return AppliedBatch(
            applied={"rollups": len(snapshots), "costs": 0},
            stale={"rollups": 0, "costs": len(snapshots)},
        )


class Ticks:
    """A clock that advances one second per reading."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def change(partition: int, offset: int, value: bytes) -> ChangeMessage:
    return ChangeMessage("incident.changes", partition, offset, b"acme", value)


async def test_the_sink_records_each_committed_batch_once() -> None:
    async def sleep(seconds: float) -> None:
        pass

    metrics = ProcessorMetrics(DeadLetterGuard(0.5, 100))
    sink = ChangeSink(
        FakeWriter(failures=1), retry_delays=(0.1,), sleep=sleep, metrics=metrics, clock=Ticks()
    )
    valid = orjson.dumps(incident().snapshot())
    await sink.apply(
        [change(0, 0, valid), change(0, 1, b"{oops"), change(1, 0, valid), change(1, 1, valid)]
    )
    r = metrics.registry
    assert value(r, "incidentflow_processors_messages_read_total") == 4
    applied, stale = (
        "incidentflow_processors_snapshots_applied_total",
        "incidentflow_processors_snapshots_stale_total",
    )
    assert value(r, applied, processor="rollups") == 3
    assert value(r, applied, processor="costs") == 0
    assert value(r, stale, processor="costs") == 3
    assert value(r, "incidentflow_processors_dead_letters_total", reason="invalid_json") == 1
    assert value(r, "incidentflow_processors_retries_total", operation="database") == 1
    assert value(r, "incidentflow_processors_batch_messages_count") == 1
    assert value(r, "incidentflow_processors_batch_messages_sum") == 4
    # Clock readings: start, the failed attempt, the second attempt, its commit.
    assert value(r, "incidentflow_processors_batch_duration_seconds_sum") == 3
    assert value(r, "incidentflow_processors_transaction_duration_seconds_sum") == 1
    assert value(r, "incidentflow_processors_dead_letter_ratio", partition="0") == 0.5
    assert value(r, "incidentflow_processors_dead_letter_ratio", partition="1") == 0.0


async def test_a_failed_batch_counts_its_messages_read_and_nothing_applied() -> None:
    async def sleep(seconds: float) -> None:
        pass

    metrics = ProcessorMetrics(DeadLetterGuard(0.5, 100))
    sink = ChangeSink(FakeWriter(failures=2), retry_delays=(0.1,), sleep=sleep, metrics=metrics)
    with pytest.raises(OperationalError):
        await sink.apply([change(0, 0, b"{oops")])
    r = metrics.registry
    assert value(r, "incidentflow_processors_messages_read_total") == 1
    assert value(r, "incidentflow_processors_retries_total", operation="database") == 1
    assert value(r, "incidentflow_processors_batch_messages_count") == 0
    assert series(r, "incidentflow_processors_dead_letters_total") == []


# -- the endpoint -------------------------------------------------------------------------------


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = httpx.get(url, timeout=5)
    response.raise_for_status()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def test_the_server_serves_the_registry_and_logs_its_url(caplog) -> None:
    metrics = IngestMetrics()
    metrics.read(FAILURES, 42)
    with caplog.at_level(logging.INFO, "incidentflow.metrics"):
        server = serve_metrics(metrics.registry, "127.0.0.1", 0)
    with server:
        port = int(server.url.rsplit(":", 1)[1].removesuffix("/metrics"))
        assert port > 0
        assert server.url == f"http://127.0.0.1:{port}/metrics"
        assert [record.getMessage() for record in caplog.records] == [f"metrics on {server.url}"]
        samples = scrape(server.url)
        assert samples[("incidentflow_ingest_messages_read_total", (("topic", FAILURES),))] == 42
        assert ("process_cpu_seconds_total", ()) in samples
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url, timeout=5)


def test_a_taken_port_is_replaced_by_a_free_one_with_a_warning(caplog) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        metrics = ProcessorMetrics(DeadLetterGuard(0.5, 100))
        metrics.read(3)
        with caplog.at_level(logging.INFO, "incidentflow.metrics"):
            server = serve_metrics(metrics.registry, "127.0.0.1", port)
        with server:
            assert not server.url.endswith(f":{port}/metrics")
            warning, info = caplog.records
            assert warning.levelno == logging.WARNING and f"127.0.0.1:{port}" in warning.message
            assert info.getMessage() == f"metrics on {server.url}"
            assert scrape(server.url)[("incidentflow_processors_messages_read_total", ())] == 3


def test_two_servers_on_port_zero_get_different_ports() -> None:
    with (
        serve_metrics(IngestMetrics().registry, "127.0.0.1", 0) as first,
        serve_metrics(IngestMetrics().registry, "127.0.0.1", 0) as second,
    ):
        assert first.url != second.url


def test_an_address_that_cannot_be_bound_is_a_clear_error() -> None:
    with pytest.raises(OSError, match=r"cannot serve metrics on 203\.0\.113\.9:9101"):
        serve_metrics(IngestMetrics().registry, "203.0.113.9", 9101)


def test_dev_tells_the_processors_the_configured_port_when_free_else_another() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    assert free_port("127.0.0.1", free) == free
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        other = free_port("127.0.0.1", port)
        assert other not in (port, 0)
        with serve_metrics(IngestMetrics().registry, "127.0.0.1", other) as server:
            assert server.url == metrics_url("127.0.0.1", other)
    assert metrics_url("::1", 9102) == "http://[::1]:9102/metrics"
