"""Workers of one group come and go mid-stream, and replays of a written log agree.

- Rebalances: workers are started, added, killed (SIGKILL) and stopped (SIGTERM) while they
  consume one log; the tables they leave must equal those of one uninterrupted worker, which are
  those of the pure replay.
- Determinism: the same fully written log, replayed on fresh databases while other processes
  load the CPU, gives identical tables every time (the merge waits for a partition that is a
  fetch away however long the fetch takes, with the default `max_task_idle_ms`).
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator

import psycopg
import pytest

from storage.migrate import upgrade
from tests.e2e.pipeline import (
    PARTITIONS,
    Worker,
    applied_events,
    assert_same_tables,
    expected_tables,
    publish_scenario,
    read_tables,
    run_ingest_to_end,
)
from tests.scenario import partition_log
from tests.support import fresh_database


def stored_offsets(database_url: str) -> Counter[tuple[str, int]]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT topic, partition, next_offset FROM ingest_offsets")
        return Counter({(topic, partition): offset for topic, partition, offset in rows})


@pytest.mark.slow
async def test_workers_added_killed_and_stopped_mid_stream_leave_the_same_tables(
    scenario, database_url, bootstrap_servers, wait_until
):
    messages, result = scenario
    topics = await publish_scenario(bootstrap_servers, messages)
    env = topics.env(
        database_url, bootstrap_servers,
        INCIDENTFLOW_INGEST_MAX_BATCH="5", INCIDENTFLOW_STARTUP_TIMEOUT_SECONDS="20",
    )  # fmt: skip
    total = len(result.event_incidents)
    log = partition_log(messages, PARTITIONS)
    end = Counter(
        {(name, p): len(log[p][source]) for p in log for source, name in enumerate(topics.inputs)}
    )
    end = +end  # topic partitions without messages store no offset

    async def reach(fraction: float) -> None:
        await wait_until(lambda: applied_events(database_url) >= fraction * total, timeout=180,
                         message=f"{fraction:.0%} of the events never applied")  # fmt: skip
        assert applied_events(database_url) < total, "the log was consumed before the step"

    first = Worker(env)
    await reach(0.1)
    second = Worker(env)  # joins: a rebalance
    await reach(0.3)
    first.process.send_signal(signal.SIGKILL)  # dies mid-batch, its partitions move
    first.finish()
    await reach(0.5)
    third = Worker(env)
    await reach(0.7)
    second.process.send_signal(signal.SIGTERM)  # leaves cleanly
    code, stderr = second.finish(timeout=60)
    assert code == 0, stderr[-2000:]
    await wait_until(lambda: +stored_offsets(database_url) == end, timeout=180,
                     message="the last worker never reached the end of the log")  # fmt: skip
    third.process.send_signal(signal.SIGTERM)
    code, stderr = third.finish(timeout=60)
    assert code == 0, stderr[-2000:]

    assert_same_tables(read_tables(database_url), expected_tables(result, topics))


@pytest.fixture
def busy_cpu() -> Iterator[None]:
    """Two processes spinning on the two cores, for as long as the test runs."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


@pytest.mark.slow
async def test_replays_of_a_written_log_under_cpu_load_give_identical_tables(
    scenario, postgres_url, bootstrap_servers, busy_cpu
):
    messages, result = scenario
    topics = await publish_scenario(bootstrap_servers, messages)
    tables = []
    for run in range(3):
        with fresh_database(postgres_url) as database_url:
            upgrade(database_url)
            group = f"{topics.prefix}replay-{run}"
            run_ingest_to_end(
                topics.env(database_url, bootstrap_servers, INCIDENTFLOW_CONSUMER_GROUP=group),
                timeout=600,
            )
            tables.append(read_tables(database_url))
    for replayed in tables:
        assert_same_tables(replayed, tables[0])
    assert_same_tables(tables[0], expected_tables(result, topics))
