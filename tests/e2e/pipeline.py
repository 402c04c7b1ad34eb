"""Helpers of the end-to-end tests: publish a scenario, run the worker, read back the tables."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from aiokafka import AIOKafkaProducer
from psycopg.rows import dict_row

from domain.replay import Replay
from storage.rows import incident_from_row
from tests.scenario import ScenarioMessage, partition_for, scenario_env
from workers.topics import ensure_topics

PARTITIONS = 8
REPO = Path(__file__).resolve().parents[2]
KINDS = ("failures", "violations", "commands")


@dataclass(frozen=True)
class Topics:
    """Fresh topic names for one test, and the worker environment that uses them."""

    prefix: str

    @property
    def by_kind(self) -> dict[str, str]:
        return {
            "failures": f"{self.prefix}llm.call.failures",
            "violations": f"{self.prefix}policy.violations",
            "commands": f"{self.prefix}incident.commands",
        }

    @property
    def inputs(self) -> list[str]:
        return [self.by_kind[kind] for kind in KINDS]

    @property
    def changes(self) -> str:
        return f"{self.prefix}incident.changes"

    @property
    def deadletter(self) -> str:
        return f"{self.prefix}incidentflow.deadletter"

    def env(self, database_url: str, bootstrap: str, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            **scenario_env(),
            "DATABASE_URL": database_url,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "INCIDENTFLOW_FAILURES_TOPIC": self.by_kind["failures"],
            "INCIDENTFLOW_VIOLATIONS_TOPIC": self.by_kind["violations"],
            "INCIDENTFLOW_COMMANDS_TOPIC": self.by_kind["commands"],
            "INCIDENTFLOW_CHANGES_TOPIC": self.changes,
            "INCIDENTFLOW_DEADLETTER_TOPIC": self.deadletter,
            "INCIDENTFLOW_TOPIC_PARTITIONS": str(PARTITIONS),
            "INCIDENTFLOW_CONSUMER_GROUP": f"{self.prefix}ingest",
            "INCIDENTFLOW_INGEST_METRICS_PORT": "0",
            **extra,
        }


async def publish(
    bootstrap: str, topics: Topics, messages: list[ScenarioMessage], layout: dict[bytes, int]
) -> None:
    """Send in order, each to the partition `layout` gives its key (as the test computed)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=5, max_request_size=4 * 1024 * 1024
    )
    await producer.start()
    try:
        for message in messages:
            await producer.send(
                topics.by_kind[message.topic_kind],
                key=message.key,
                value=message.value,
                partition=layout[message.key],
            )
        await producer.flush()
    finally:
        await producer.stop()


async def publish_scenario(bootstrap: str, messages: list[ScenarioMessage]) -> Topics:
    """Create fresh topics (PARTITIONS each) and publish `messages` keyed as a producer would."""
    topics = Topics(new_prefix())
    names = [*topics.inputs, topics.changes, topics.deadletter]
    await ensure_topics(bootstrap, names, PARTITIONS, topics.inputs)
    layout = {message.key: partition_for(message.key, PARTITIONS) for message in messages}
    await publish(bootstrap, topics, messages, layout)
    return topics


def applied_events(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM llm_call_failures)"
            " + (SELECT count(*) FROM policy_violations)"
        ).fetchone()
    return int(row[0]) if row else 0


class Worker:
    """`incidentflow ingest` as a subprocess, its standard error kept in a file (a pipe nobody
    reads would fill and block the worker)."""

    def __init__(self, env: dict[str, str], *flags: str) -> None:
        handle, name = tempfile.mkstemp(prefix="ingest-", suffix=".log")
        self._path = Path(name)
        with open(handle, "wb") as log:
            self.process = subprocess.Popen(
                ingest_command(*flags), env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=log
            )

    def running(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        """What it has written to standard error so far."""
        return self._path.read_bytes().decode(errors="replace")

    def finish(self, timeout: float = 240) -> tuple[int, str]:
        """Wait for the exit (killing it after `timeout`); the exit status and standard error."""
        try:
            self.process.wait(timeout=timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
        stderr = self.log()
        self._path.unlink(missing_ok=True)
        return self.process.returncode, stderr


def ingest_command(*flags: str) -> list[str]:
    return [sys.executable, "-m", "incidentflow", "ingest", *flags]


def run_ingest_to_end(env: dict[str, str], timeout: float = 240) -> None:
    result = subprocess.run(
        ingest_command("--stop-when-caught-up"),
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        check=False,
    )
    assert result.returncode == 0, f"ingest exited {result.returncode}:\n{result.stderr[-4000:]}"


@dataclass
class Tables:
    """What the worker left in PostgreSQL, in comparable form."""

    incidents: dict[str, dict[str, Any]]
    event_incidents: dict[str, str]
    dead_letters: Counter[tuple[str, int, int, str]]
    timeline: Counter[tuple[str, str, str, str]]
    commands: set[str]
    state_counts: Counter[tuple[str, str]]
    """`incident_counts` (kept by triggers), or the expected count per tenant and state."""


def read_tables(database_url: str) -> Tables:
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        incidents = {
            str(row["incident_id"]): incident_from_row(row).snapshot()
            for row in conn.execute("SELECT * FROM incidents")
        }
        events = {
            row["event_id"]: str(row["incident_id"])
            for table in ("llm_call_failures", "policy_violations")
            for row in conn.execute(f"SELECT event_id, incident_id FROM {table}")
        }
        dead = Counter(
            (row["source_topic"], row["source_partition"], row["source_offset"], row["reason"])
            for row in conn.execute("SELECT * FROM dead_letters")
        )
        timeline = Counter(
            (str(row["incident_id"]), row["kind"], row["at"].isoformat(), _canonical(row["data"]))
            for row in conn.execute("SELECT * FROM incident_timeline")
        )
        commands = {row["command_id"] for row in conn.execute("SELECT * FROM incident_commands")}
        state_counts = Counter(
            {
                (row["tenant_id"], row["lifecycle_state"]): row["incidents"]
                for row in conn.execute("SELECT * FROM incident_counts WHERE incidents <> 0")
            }
        )
    return Tables(incidents, events, dead, timeline, commands, state_counts)


def expected_tables(replay: Replay, topics: Topics) -> Tables:
    names = topics.inputs
    return Tables(
        incidents={str(i): incident.snapshot() for i, incident in replay.incidents.items()},
        event_incidents={event: str(i) for event, i in replay.event_incidents.items()},
        dead_letters=Counter(
            (names[dead.source], dead.partition, dead.offset, dead.rejection.reason.value)
            for dead in replay.dead_letters
        ),
        timeline=Counter(
            (str(entry.incident_id), entry.kind.value, entry.at.isoformat(), _canonical(entry.data))
            for entry in replay.timeline
        ),
        commands=set(replay.applied_commands),
        state_counts=Counter(
            (incident.tenant_id, incident.lifecycle_state.value)
            for incident in replay.incidents.values()
        ),
    )


def _canonical(data: dict[str, Any]) -> str:
    import json

    return json.dumps(data, sort_keys=True, default=str)


def assert_same_tables(actual: Tables, expected: Tables) -> None:
    """Compare table by table, reporting the first differences readably."""
    missing = expected.incidents.keys() - actual.incidents.keys()
    extra = actual.incidents.keys() - expected.incidents.keys()
    assert not missing and not extra, (
        f"incidents missing {sorted(missing)[:5]}, extra {sorted(extra)[:5]}"
    )
    for incident_id, snapshot in expected.incidents.items():
        got = actual.incidents[incident_id]
        diff = {k: (got.get(k), v) for k, v in snapshot.items() if got.get(k) != v}
        assert not diff, f"incident {incident_id} differs (actual, expected): {diff}"
    assert actual.event_incidents == expected.event_incidents
    assert actual.dead_letters == expected.dead_letters
    assert actual.timeline == expected.timeline
    assert actual.commands == expected.commands
    assert actual.state_counts == expected.state_counts


def new_prefix() -> str:
    return f"e{uuid.uuid4().hex[:8]}."
