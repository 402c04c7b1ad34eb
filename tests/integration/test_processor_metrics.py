"""`incidentflow processors` as a subprocess on a real broker and PostgreSQL serves its metrics.

Two snapshots, a redelivered copy of one and a message that is no JSON go to a two-partition
changes topic; the worker's `/metrics` (on a port of its choosing, found in its log line
`metrics on URL`) must show them read, applied, stale and dead-lettered, and the consumer lag of
both partitions fall to 0 once the offsets are committed.
"""

from __future__ import annotations

import os
import re
import signal
from datetime import timedelta
from pathlib import Path

import httpx
import orjson
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from tests.builders import T0, incident
from tests.integration.test_processors import processors
from workers.topics import ensure_topics

PARTITIONS = 2
METRICS_LINE = re.compile(r"metrics on (http://\S+/metrics)")

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def test_the_processors_serve_counts_dead_letters_and_lag(
    database_url, bootstrap_servers, topic_prefix, wait_until, tmp_path
):
    topic = f"{topic_prefix}incident.changes"
    await ensure_topics(bootstrap_servers, [topic], PARTITIONS, co_partitioned=[topic])
    first = incident(tenant_id="acme").snapshot()
    later = T0 + timedelta(minutes=5)
    second = incident(tenant_id="globex", started_at=later, last_event_at=later).snapshot()
    await publish(
        bootstrap_servers,
        topic,
        [(0, orjson.dumps(first)), (1, orjson.dumps(second)), (0, orjson.dumps(first)),
         (1, b"{not json")],
    )  # fmt: skip
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers,
        "INCIDENTFLOW_CHANGES_TOPIC": topic,
        "INCIDENTFLOW_TOPIC_PARTITIONS": str(PARTITIONS),
        "INCIDENTFLOW_PROCESSORS_GROUP": f"{topic_prefix}processors",
        "INCIDENTFLOW_METRICS_HOST": "127.0.0.1",
        "INCIDENTFLOW_PROCESSORS_METRICS_PORT": "0",
    }
    log = tmp_path / "processors.log"
    with processors(env, log) as worker:
        url = await wait_until(
            lambda: metrics_url(log), timeout=60, message="no `metrics on URL` line logged"
        )

        async def committed() -> Samples | None:
            samples = await scrape(url)
            batched = samples.get(("incidentflow_processors_batch_messages_sum", ()), 0)
            return samples if batched >= 4 else None

        samples = await wait_until(
            committed, timeout=60, message="the 4 messages were never committed"
        )
        for processor in ("rollups", "recurrence", "patterns", "costs"):
            labels = (("processor", processor),)
            assert samples[("incidentflow_processors_snapshots_applied_total", labels)] == 2
            assert samples[("incidentflow_processors_snapshots_stale_total", labels)] == 1
        dead = ("incidentflow_processors_dead_letters_total", (("reason", "invalid_json"),))
        assert samples[dead] == 1
        assert samples[("incidentflow_processors_messages_read_total", ())] == 4
        ratio = "incidentflow_processors_dead_letter_ratio"
        assert samples[(ratio, (("partition", "0"),))] == 0.0
        assert samples[(ratio, (("partition", "1"),))] == 0.5
        assert samples[("incidentflow_processors_rebalances_total", ())] >= 1
        assert samples[("incidentflow_processors_batch_messages_sum", ())] == 4

        async def caught_up() -> dict[str, float] | None:
            samples = await scrape(url)
            lags = {
                labels[0][1]: value
                for (name, labels), value in samples.items()
                if name == "incidentflow_processors_consumer_lag"
            }
            return lags if lags == {"0": 0.0, "1": 0.0} else None

        await wait_until(
            caught_up, timeout=60, message="the lag of both partitions never showed as 0"
        )
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    assert worker.returncode == 0, log.read_text()[-4000:]


async def publish(bootstrap: str, topic: str, values: list[tuple[int, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        for partition, value in values:
            await producer.send(topic, key=b"acme", value=value, partition=partition)
        await producer.flush()
    finally:
        await producer.stop()


def metrics_url(log: Path) -> str | None:
    match = METRICS_LINE.search(log.read_text(errors="replace"))
    return match.group(1) if match else None


async def scrape(url: str) -> Samples:
    async with httpx.AsyncClient() as client:
        response = await client.get(url, timeout=5)
    response.raise_for_status()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }
