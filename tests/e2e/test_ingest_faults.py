"""The ingest worker on a bad day, end to end: a failed first batch, a refused message, a
PostgreSQL restarted under it, a broker cut off, and outages longer than it may ride out.

Each test runs `incidentflow ingest` as a subprocess over real infrastructure and requires the
same tables as the pure replay of the log (`domain.replay`): nothing lost, nothing doubled.
PostgreSQL restarts use a server of the test's own (pgserver); the broker outage a broker of the
test's own behind a TCP proxy that the test cuts.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from domain.replay import replay
from incidentflow.infra import embedded_tansu, free_port
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
from tests.proxy import proxy
from tests.scenario import SCENARIO_CONFIG, build_scenario, partition_log
from tests.support import RestartablePostgres, restartable_postgres, with_database

NOW = datetime.now(UTC).replace(microsecond=0)


# -- a failed first batch, a refused message ---------------------------------------------------


async def test_a_failed_first_batch_is_read_again_and_every_message_applied_once(
    scenario, database_url, bootstrap_servers
):
    messages, result = scenario
    with psycopg.connect(database_url, autocommit=True) as conn:
        # The first row ever written fails its batch with a serialization failure (a sequence is
        # not transactional, so the retry of the same batch succeeds).
        conn.execute("CREATE SEQUENCE fault_once")
        conn.execute(
            "CREATE FUNCTION fail_once() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            " IF nextval('fault_once') = 1 THEN"
            " RAISE EXCEPTION 'injected' USING ERRCODE = '40001'; END IF; RETURN NEW; END $$"
        )
        for table in ("llm_call_failures", "policy_violations"):
            conn.execute(
                f"CREATE TRIGGER fail_once BEFORE INSERT ON {table} FOR EACH ROW"
                " EXECUTE FUNCTION fail_once()"
            )
    topics = await publish_scenario(bootstrap_servers, messages)

    run_ingest_to_end(topics.env(database_url, bootstrap_servers))

    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT last_value FROM fault_once").fetchone()[0] > 1  # it fired
    assert_same_tables(read_tables(database_url), expected_tables(result, topics))


async def test_a_message_postgresql_refuses_is_dead_lettered_and_the_rest_applied(
    database_url, bootstrap_servers
):
    messages = build_scenario(7, now=NOW)
    # A valid message that PostgreSQL refuses: a check constraint the contract knows nothing of.
    failures = [i for i, m in enumerate(messages) if m.topic_kind == "failures"]
    target = failures[len(failures) // 2]
    poisoned = messages[target].value.replace(b'"run_id":"', b'"run_id":"poison ')
    assert poisoned != messages[target].value
    messages[target] = dataclasses.replace(messages[target], value=poisoned)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "ALTER TABLE llm_call_failures ADD CONSTRAINT no_poison"
            " CHECK (run_id NOT LIKE 'poison %')"
        )
    topics = await publish_scenario(bootstrap_servers, messages)

    env = topics.env(database_url, bootstrap_servers, INCIDENTFLOW_INGEST_MAX_BATCH="500")
    run_ingest_to_end(env)

    # Expected: the replay of the same log with the poisoned message refused.
    log = partition_log(messages, PARTITIONS)
    partition = next(p for p, sources in log.items() if poisoned in sources[0])
    offset = log[partition][0].index(poisoned)
    log[partition][0][offset] = b"refused"
    want = expected_tables(replay(log, SCENARIO_CONFIG, NOW), topics)
    source = (topics.inputs[0], partition, offset)
    want.dead_letters = Counter(
        {(*key[:3], "storage_rejected" if key[:3] == source else key[3]): n
         for key, n in want.dead_letters.items()}
    )  # fmt: skip
    assert_same_tables(read_tables(database_url), want)
    with psycopg.connect(database_url) as conn:
        detail = conn.execute(
            "SELECT detail FROM dead_letters WHERE reason = 'storage_rejected'"
        ).fetchone()[0]
    assert "no_poison" in detail


# -- PostgreSQL restarted, or gone --------------------------------------------------------------


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[RestartablePostgres]:
    with restartable_postgres(tmp_path) as server:
        yield server


def fresh_database(server: RestartablePostgres) -> str:
    with psycopg.connect(server.url(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE faults")
    url = with_database(server.url(), "faults")
    upgrade(url)
    return url


async def test_postgresql_restarted_under_a_running_worker_loses_and_doubles_nothing(
    scenario, own_postgres, bootstrap_servers, wait_until
):
    messages, result = scenario
    database_url = fresh_database(own_postgres)
    topics = await publish_scenario(bootstrap_servers, messages)
    env = topics.env(database_url, bootstrap_servers, INCIDENTFLOW_INGEST_MAX_BATCH="20")
    total = len(result.event_incidents)
    process = Worker(env, "--stop-when-caught-up")
    recoveries = {}
    try:
        for mode, fraction in (("fast", 0.25), ("immediate", 0.6)):
            await wait_until(lambda f=fraction: applied_events(database_url) >= f * total,
                             timeout=120, message=f"{fraction:.0%} never applied")  # fmt: skip
            before = applied_events(database_url)
            assert before < total, "the worker finished before the restart"
            own_postgres.restart(mode)
            restarted = time.monotonic()
            await wait_until(lambda b=before: applied_events(database_url) > b, timeout=60,
                             message=f"no progress after a {mode} restart")  # fmt: skip
            recoveries[mode] = time.monotonic() - restarted
            assert process.running(), "the worker exited instead of riding the restart out"
    finally:
        code, stderr = process.finish()
    assert code == 0, stderr[-3000:]
    assert "PostgreSQL unavailable" in stderr  # each attempt is logged
    print(f"\nrecovered in-process after a restart: {recoveries}")
    assert_same_tables(read_tables(database_url), expected_tables(result, topics))


async def test_postgresql_gone_longer_than_the_outage_limit_stops_the_worker_clearly(
    scenario, own_postgres, bootstrap_servers, wait_until
):
    messages, _ = scenario
    database_url = fresh_database(own_postgres)
    topics = await publish_scenario(bootstrap_servers, messages)
    env = topics.env(
        database_url, bootstrap_servers,
        INCIDENTFLOW_INGEST_MAX_BATCH="20", INCIDENTFLOW_OUTAGE_SECONDS="4",
    )  # fmt: skip
    process = Worker(env)
    try:
        await wait_until(lambda: applied_events(database_url) > 0, timeout=120)
        own_postgres.stop("immediate")
        code, stderr = process.finish(timeout=120)
    finally:
        own_postgres.start()
    assert code == 1
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("incidentflow ingest: PostgreSQL unavailable for"), stderr[-2000:]
    assert "Traceback" not in stderr


# -- the broker cut off --------------------------------------------------------------------------


@pytest.fixture
def broker_behind_proxy() -> Iterator[tuple[str, object]]:
    """A broker of the test's own whose clients all connect through a proxy the test cuts."""
    port, front = free_port(), free_port()
    with proxy(front, port) as cutter, embedded_tansu(port=port, advertised_port=front) as address:
        yield address, cutter


async def test_a_broker_cut_off_for_a_while_is_ridden_through(
    scenario, database_url, broker_behind_proxy, wait_until
):
    messages, result = scenario
    bootstrap, cutter = broker_behind_proxy
    topics = await publish_scenario(bootstrap, messages)
    env = topics.env(database_url, bootstrap, INCIDENTFLOW_INGEST_MAX_BATCH="20")
    total = len(result.event_incidents)
    process = Worker(env, "--stop-when-caught-up")
    try:
        await wait_until(lambda: applied_events(database_url) >= 0.3 * total, timeout=120)
        cutter.cut()
        # The outage lasts until the worker has noticed it and logged a retry.
        await wait_until(lambda: "the broker unavailable" in process.log(), timeout=150,
                         interval=0.5, message="the worker never retried the broker")  # fmt: skip
        assert process.running(), "the worker exited during a short broker outage"
        assert applied_events(database_url) < total
    finally:
        cutter.restore()
        code, stderr = process.finish()
    assert code == 0, stderr[-3000:]
    assert "the broker available again after" in stderr
    assert_same_tables(read_tables(database_url), expected_tables(result, topics))


async def test_a_broker_gone_longer_than_the_outage_limit_stops_the_worker_clearly(
    scenario, database_url, broker_behind_proxy, wait_until
):
    messages, _ = scenario
    bootstrap, cutter = broker_behind_proxy
    topics = await publish_scenario(bootstrap, messages)
    env = topics.env(
        database_url, bootstrap,
        INCIDENTFLOW_INGEST_MAX_BATCH="20", INCIDENTFLOW_OUTAGE_SECONDS="5",
    )  # fmt: skip
    process = Worker(env)
    await wait_until(lambda: applied_events(database_url) > 0, timeout=120)
    cutter.cut()
    code, stderr = process.finish(timeout=120)
    assert code == 1, stderr[-2000:]
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("incidentflow ingest: the broker unavailable for"), stderr[-2000:]
