"""End to end: a generated log through `incidentflow ingest` on a real broker and PostgreSQL.

The tables must equal what the pure aggregator computes from the same log (`domain.replay`), and
a worker killed with SIGKILL at several points and restarted must end with the same tables.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from tests.e2e.pipeline import (
    applied_events,
    assert_same_tables,
    expected_tables,
    ingest_command,
    publish_scenario,
    read_tables,
    run_ingest_to_end,
)
from tests.scenario import coverage

REPO = Path(__file__).resolve().parents[2]


async def test_ingest_equals_the_pure_aggregation(scenario, database_url, bootstrap_servers):
    messages, replay = scenario
    counts = coverage(replay)
    assert sum(1 for m in messages if m.topic_kind != "commands") >= 5000
    assert all(
        counts[f"dead_letter:{reason}"] > 0
        for reason in (
            "invalid_json",
            "schema_violation",
            "too_large",
            "future_timestamp",
            "too_late",
            "unknown_incident",
            "invalid_transition",
        )
    ), counts
    topics = await publish_scenario(bootstrap_servers, messages)

    run_ingest_to_end(topics.env(database_url, bootstrap_servers))

    assert_same_tables(read_tables(database_url), expected_tables(replay, topics))


async def test_a_second_run_changes_nothing(scenario, database_url, bootstrap_servers):
    messages, _ = scenario
    topics = await publish_scenario(bootstrap_servers, messages)
    env = topics.env(database_url, bootstrap_servers)
    run_ingest_to_end(env)
    first = read_tables(database_url)

    # A new consumer group re-reads everything from offset 0: stored offsets, event ids and
    # dead-letter sources must make that a no-op.
    run_ingest_to_end({**env, "INCIDENTFLOW_CONSUMER_GROUP": topics.prefix + "again"})

    assert_same_tables(read_tables(database_url), first)


@pytest.mark.slow
async def test_sigkill_mid_stream_then_restart_gives_the_same_tables(
    scenario, database_url, bootstrap_servers, wait_until
):
    messages, replay = scenario
    topics = await publish_scenario(bootstrap_servers, messages)
    # Small batches, so that the kills land between and inside many transactions.
    env = topics.env(database_url, bootstrap_servers, INCIDENTFLOW_INGEST_MAX_BATCH="150")
    total = len(replay.event_incidents)
    for fraction in (0.15, 0.4, 0.7):
        worker = subprocess.Popen(
            ingest_command(), env=env, cwd=REPO,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            await wait_until(
                lambda f=fraction: applied_events(database_url) >= f * total,
                timeout=120,
                message=f"the worker never applied {fraction:.0%} of the events",
            )
        finally:
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=30)
        assert applied_events(database_url) < total, "killed too late: the run had finished"

    run_ingest_to_end(env)

    assert_same_tables(read_tables(database_url), expected_tables(replay, topics))


async def test_sigterm_finishes_the_batch_and_exits_cleanly(
    scenario, database_url, bootstrap_servers, wait_until
):
    messages, replay = scenario
    topics = await publish_scenario(bootstrap_servers, messages)
    env = topics.env(database_url, bootstrap_servers, INCIDENTFLOW_INGEST_MAX_BATCH="300")
    worker = subprocess.Popen(
        ingest_command(), env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        await wait_until(
            lambda: applied_events(database_url) > 0, timeout=120, message="nothing applied"
        )
        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == 0, stderr.decode()[-2000:]

    # Whatever it had applied is consistent: a restart completes the log exactly.
    run_ingest_to_end(env)
    assert_same_tables(read_tables(database_url), expected_tables(replay, topics))
