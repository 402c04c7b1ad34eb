"""Lessons through the real pipeline: scenario log -> ingest -> processors -> lessons -> API.

The module publishes the scenario log (plus a tenant whose fingerprint recurs), runs ingest to
the end and keeps `incidentflow processors` running for its three tests:

1. the `lessons` table equals the lessons computed here from the final `incidents` rows, by the
   rules as documented, written independently of `domain.lessons`;
2. every lesson command case on the real broker (published as `incidentflow command` and raw):
   valid, duplicate, impossible transition, unknown lesson, another tenant's lesson, and records
   that are no command; the effects in PostgreSQL, the dead-letter copies on the topic, and what
   the API answers;
3. every change message published again, newest first, then stale altered copies, leaves the
   lesson tables as they were (a sentinel tenant's snapshots end each round, as in
   `test_processors`).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import psycopg
import pytest_asyncio
from aiokafka import AIOKafkaProducer
from psycopg.rows import dict_row

from api.app import create_app
from domain.settings import Settings
from incidentflow.publisher import lesson_command_payload
from storage.engine import create_async_db_engine
from storage.keys import create_key
from storage.migrate import upgrade
from tests.e2e.pipeline import PARTITIONS, Topics, publish_scenario, run_ingest_to_end
from tests.integration.test_processors import (
    SENTINEL_TENANT,
    expected_versions,
    final_snapshots,
    processors,
    publish_then_wait,
    read_topic,
    sentinel_snapshots,
    stored_versions,
)
from tests.scenario import ScenarioMessage, build_scenario, partition_for
from tests.support import fresh_database, wait_until

NOW = datetime.now(UTC).replace(microsecond=0)
RECUR_TENANT = "lesson-recur"
SPAN = timedelta(days=7)
SEVERE = ("high", "critical")
LESSON_TABLES = ("lessons", "lesson_members", "lesson_triage", "lesson_commands")


def recurring_messages() -> list[ScenarioMessage]:
    """Four incidents of `fp-recurring` three hours apart (a recurring lesson) and two of
    `fp-twice` (none), two failures each, inside the scenario's span."""
    start = NOW - timedelta(hours=40)
    plan = [("fp-recurring", k, 0) for k in range(4)] + [("fp-twice", k, 30) for k in range(2)]
    messages = []
    for n, (fingerprint, k, minutes) in enumerate(plan):
        for e in range(2):
            at = start + timedelta(hours=3 * k, minutes=minutes + e)
            body = {
                "event_id": f"recur-{n}-{e}", "tenant_id": RECUR_TENANT,
                "occurred_at": at.isoformat(), "run_id": f"recur-run-{n}", "provider": "openai",
                "model": "gpt-4o",
                "failure_type": "timeout", "fingerprint": fingerprint,
            }  # fmt: skip
            messages.append(
                ScenarioMessage("failures", RECUR_TENANT.encode(), json.dumps(body).encode())
            )
    return messages


@dataclass
class Run:
    url: str
    bootstrap: str
    topics: Topics
    env: dict[str, str]

    @property
    def lesson_topic(self) -> str:
        return self.env["INCIDENTFLOW_LESSON_COMMANDS_TOPIC"]


@pytest_asyncio.fixture(scope="module")
async def run(
    postgres_url: str, bootstrap_servers: str, tmp_path_factory: Any
) -> AsyncIterator[Run]:
    with fresh_database(postgres_url) as url:
        upgrade(url)
        topics = await publish_scenario(
            bootstrap_servers, build_scenario(7, now=NOW) + recurring_messages()
        )
        env = topics.env(
            url,
            bootstrap_servers,
            INCIDENTFLOW_PROCESSORS_GROUP=f"{topics.prefix}processors",
            INCIDENTFLOW_LESSON_COMMANDS_TOPIC=f"{topics.prefix}lesson.commands",
            INCIDENTFLOW_PROCESSORS_METRICS_PORT="0",
        )
        run_ingest_to_end(env)
        log = tmp_path_factory.mktemp("lessons") / "processors.log"
        with processors(env, log) as worker:
            final = final_snapshots(url)
            await wait_until(
                lambda: stored_versions(url) == expected_versions(final),
                timeout=90,
                message="the processors never applied every incident at its final version",
            )
            yield Run(url, bootstrap_servers, topics, env)
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=30)
        assert worker.returncode == 0, log.read_text()[-4000:]


# -- the expected lessons, from the incidents table --------------------------------------------


def expected_id(kind: str, tenant: str, subject: str) -> uuid.UUID:
    name = json.dumps([kind, tenant, subject], separators=(",", ":"), ensure_ascii=False)
    return uuid.uuid5(uuid.NAMESPACE_URL, "incidentflow:lesson:" + name)


def expected_lessons(incidents: list[dict[str, Any]]) -> dict[uuid.UUID, tuple[Any, ...]]:
    """lesson id -> (tenant, kind, subject, incident ids by start, first seen, last seen)."""
    found: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    by_fingerprint: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in incidents:
        mine = str(row["incident_id"])
        resolved = row["lifecycle_state"] == "RESOLVED" and row["resolved_at"] is not None
        overflow = row["trigger_type"] == "rate_limit_overflow"
        if resolved and row["severity"] in SEVERE:
            found[(row["tenant_id"], "severe_incident_resolved", mine)] = [row]
        if row["reopen_count"] > 0:
            found[(row["tenant_id"], "reopened", mine)] = [row]
        if overflow:
            found[(row["tenant_id"], "overflow", mine)] = [row]
            continue  # the overflow incident recurs with nothing: it holds unrelated events
        for fingerprint in {row["fingerprint"], *row["fingerprints"]} - {""}:
            by_fingerprint.setdefault((row["tenant_id"], fingerprint), []).append(row)
    for (tenant, fingerprint), rows in by_fingerprint.items():
        behind = [
            row for row in rows
            if any(
                start["started_at"] <= row["started_at"] <= start["started_at"] + SPAN
                and sum(start["started_at"] <= o["started_at"] <= start["started_at"] + SPAN
                        for o in rows) >= 3
                for start in rows
            )
        ]  # fmt: skip
        if behind:
            found[(tenant, "recurring_fingerprint", fingerprint)] = behind
    return {
        expected_id(kind, tenant, subject): (
            tenant,
            kind,
            subject,
            [
                r["incident_id"]
                for r in sorted(rows, key=lambda r: (r["started_at"], str(r["incident_id"])))
            ],
            min(r["started_at"] for r in rows),
            max(r["last_event_at"] for r in rows),
        )
        for (tenant, kind, subject), rows in found.items()
    }


def read(url: str, query: str, *params: Any) -> list[dict[str, Any]]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute(query, params).fetchall()


def stored_lessons(url: str) -> dict[uuid.UUID, tuple[Any, ...]]:
    return {
        row["lesson_id"]: (
            row["tenant_id"], row["kind"], row["subject"], row["incident_ids"], row["first_seen"],
            row["last_seen"],
        )
        for row in read(url, "SELECT * FROM lessons WHERE tenant_id <> %s", SENTINEL_TENANT)
    }  # fmt: skip


def lesson_tables(url: str) -> dict[str, list[str]]:
    """Every lesson table but the sentinel tenant's rows, comparable."""
    return {
        table: sorted(
            str(row)
            for row in read(url, f"SELECT * FROM {table} WHERE tenant_id <> %s", SENTINEL_TENANT)
        )
        for table in LESSON_TABLES
    }


async def test_the_lessons_equal_the_rules_over_the_incidents_table(run: Run) -> None:
    incidents = read(run.url, "SELECT * FROM incidents")
    expected = expected_lessons(incidents)
    assert stored_lessons(run.url) == expected
    kinds = {kind for _, kind, *_ in expected.values()}
    assert kinds == {"severe_incident_resolved", "reopened", "overflow", "recurring_fingerprint"}
    (recurring,) = [v for v in expected.values() if v[1] == "recurring_fingerprint"]
    assert (recurring[0], recurring[2], len(recurring[3])) == (RECUR_TENANT, "fp-recurring", 4)
    rows = read(run.url, "SELECT * FROM lessons")
    titles = {row["incident_id"]: row["title"] for row in incidents}
    for row in rows:
        assert row["incident_count"] == len(row["incident_ids"])
        if row["kind"] in ("severe_incident_resolved", "reopened"):
            assert titles[row["incident_ids"][0]] in row["proposed_action"], row
        if row["kind"] == "overflow":  # the processors name the rules they were given
            assert row["proposed_action"].startswith("The cap of 5 new incidents per hour"), row
    assert (
        "fingerprint fp-recurring"
        in next(r for r in rows if r["subject"] == "fp-recurring")["proposed_action"]
    )


# -- commands ------------------------------------------------------------------------------------


def command(
    command_id: str, tenant: str, lesson: uuid.UUID, action: str, at: datetime, **fields: Any
) -> bytes:
    return orjson.dumps(
        lesson_command_payload(
            command_id=command_id, tenant_id=tenant, lesson_id=str(lesson), action=action,
            issued_at=at, issued_by="alice", **fields,
        )
    )  # fmt: skip


async def send(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        for key, value in records:
            await producer.send(topic, key=key, value=value)
        await producer.flush()
    finally:
        await producer.stop()


async def lessons_api(
    url: str, tenants: list[str]
) -> tuple[httpx.AsyncClient, dict[str, str], Any]:
    engine = create_async_db_engine(url, pool_size=2)
    async with engine.begin() as conn:
        keys = {tenant: (await create_key(conn, tenant_id=tenant))[1] for tenant in tenants}
    app = create_app(Settings(database_url=url), engine=engine)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")
    return client, keys, engine


async def test_every_lesson_command_case_on_the_real_broker(run: Run) -> None:
    lessons = read(run.url, "SELECT * FROM lessons ORDER BY first_seen, lesson_id")
    initech = [row["lesson_id"] for row in lessons if row["tenant_id"] == "initech"]
    assert len(initech) >= 4
    a, b, c, d = initech[:4]
    theirs = next(row["lesson_id"] for row in lessons if row["tenant_id"] == "acme")
    (as_of,) = read(run.url, "SELECT min(watermark) AS at FROM ingest_partitions")
    at = as_of["at"] - timedelta(hours=10)
    key = b"initech"
    records = [
        command("defer-a", "initech", a, "defer", at, until=at + timedelta(days=1)),
        command("defer-a", "initech", a, "dismiss", at),  # the same id: a duplicate
        command("dismiss-a-early", "initech", a, "dismiss", at + timedelta(hours=1)),
        command("reactivate-a", "initech", a, "reactivate", at + timedelta(hours=2)),
        command(
            "convert-a",
            "initech",
            a,
            "convert",
            at + timedelta(hours=3),
            policy_draft="cap retries",
        ),
        command("dismiss-a-late", "initech", a, "dismiss", at + timedelta(hours=4)),
        command("nobody", "initech", uuid.uuid4(), "dismiss", at),
        command("theirs", "initech", theirs, "dismiss", at),
        b"{not json",
        b'{"command_id": "bad", "tenant_id": "initech", "action": "dismiss"}',
        command("defer-b", "initech", b, "defer", at, until=as_of["at"] - timedelta(hours=1)),
        command("defer-c", "initech", c, "defer", at, until=as_of["at"] + timedelta(days=1)),
        command("convert-a", "initech", a, "convert", at, policy_draft="sent again"),
    ]
    await send(run.bootstrap, run.lesson_topic, [(key, value) for value in records])
    # Last on the partition, by the command line: once it is applied, everything before it was.
    published = subprocess.run(
        [sys.executable, "-m", "incidentflow", "command", "dismiss", str(d), "--tenant", "initech",
         "--by", "bob", "--note", "not ours"],
        env=run.env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert published.returncode == 0, published.stderr
    assert published.stdout.startswith(f"published dismiss {d} (")

    def applied() -> set[str]:
        return {
            row["command_id"] for row in read(run.url, "SELECT command_id FROM lesson_commands")
        }

    await wait_until(
        lambda: len(applied()) == 6, timeout=60, message="the commands were not applied"
    )
    cli_id = published.stdout.rsplit("(", 1)[1].rstrip(")\n")
    assert applied() == {"defer-a", "reactivate-a", "convert-a", "defer-b", "defer-c", cli_id}
    states = {row["lesson_id"]: row for row in read(run.url, "SELECT * FROM lesson_triage")}
    assert set(states) == {a, b, c, d}
    assert (states[a]["state"], states[a]["policy_draft"], states[a]["commands"]) == (
        "converted",
        "cap retries",
        3,
    )
    assert (states[b]["state"], states[c]["state"], states[d]["state"]) == (
        "deferred",
        "deferred",
        "dismissed",
    )
    assert (states[d]["changed_by"], states[d]["note"]) == ("bob", "not ours")

    expected_dead = {
        2: "invalid_transition", 5: "invalid_transition", 6: "unknown_lesson", 7: "unknown_lesson",
        8: "invalid_json", 9: "schema_violation",
    }  # fmt: skip
    dead = read(run.url, "SELECT * FROM dead_letters WHERE source_topic = %s", run.lesson_topic)
    assert {row["source_offset"]: row["reason"] for row in dead} == expected_dead
    details = {row["source_offset"]: row["detail"] for row in dead}
    assert details[2] == "action: cannot dismiss a lesson that is deferred"
    assert details[7] == f"lesson_id: no lesson {theirs} in tenant initech"
    assert {row["source_offset"]: bytes(row["payload"]) for row in dead}[7] == records[7]

    copies = await wait_until(
        lambda: _copies(run.bootstrap, run.topics.deadletter, run.lesson_topic, len(expected_dead)),
        timeout=30,
        message="the dead-letter copies did not reach the topic",
    )
    assert {offset: reason for offset, reason, _ in copies} == expected_dead
    assert {offset: value for offset, _, value in copies}[6] == records[6]

    client, keys, engine = await lessons_api(run.url, ["initech", "acme"])
    try:
        auth = {t: {"Authorization": f"Bearer {k}"} for t, k in keys.items()}
        detail = (await client.get(f"/v1/lessons/{a}", headers=auth["initech"])).json()
        assert (detail["state"], detail["policy_draft"]) == ("converted", "cap retries")
        assert [h["command_id"] for h in detail["history"]] == [
            "defer-a",
            "reactivate-a",
            "convert-a",
        ]
        assert (await client.get(f"/v1/lessons/{a}", headers=auth["acme"])).status_code == 404
        assert (
            await client.get(f"/v1/lessons/{theirs}", headers=auth["initech"])
        ).status_code == 404
        listed = {
            state: {item["lesson_id"] for item in (await client.get(
                "/v1/lessons", params={"state": state, "limit": 100}, headers=auth["initech"]
            )).json()["items"]}
            for state in ("pending", "deferred", "dismissed", "converted")
        }  # fmt: skip
        assert listed["deferred"] == {str(c)}  # b's deferral ended before as_of: pending
        assert str(b) in listed["pending"] and not {str(a), str(c), str(d)} & listed["pending"]
        assert (listed["dismissed"], listed["converted"]) == ({str(d)}, {str(a)})
        stats = (await client.get("/v1/lessons/stats", headers=auth["initech"])).json()
        assert stats["by_state"]["converted"] == 1 and stats["total"] == len(initech)
        assert (await client.get("/v1/lessons/stats", headers=auth["acme"])).json()["by_state"][
            "converted"
        ] == 0
    finally:
        await client.aclose()
        await engine.dispose()


async def _copies(
    bootstrap: str, topic: str, source: str, wanted: int
) -> list[tuple[int, str, bytes]] | None:
    records = [
        r for r in await read_topic(bootstrap, topic)
        if dict(r.headers).get("x-source-topic") == source.encode()
    ]  # fmt: skip
    if len(records) < wanted:
        return None
    return [
        (
            int(dict(r.headers)["x-source-offset"]),
            dict(r.headers)["x-error-reason"].decode(),
            r.value,
        )
        for r in records
    ]


# -- replays -------------------------------------------------------------------------------------


async def test_replayed_changes_leave_the_lessons_unchanged(run: Run) -> None:
    before = lesson_tables(run.url)
    expected = expected_lessons(read(run.url, "SELECT * FROM incidents"))
    records = await read_topic(run.bootstrap, run.topics.changes)
    again = [(r.partition, r.key, r.value) for r in reversed(records)]
    await publish_then_wait(
        run.bootstrap,
        run.topics.changes,
        again,
        sentinel_snapshots(NOW, version=1),
        wait_until,
        run.url,
    )
    assert lesson_tables(run.url) == before

    final = final_snapshots(run.url)
    stale = [
        dict(s, version=s["version"] - 1, severity="critical", reopen_count=s["reopen_count"] + 1,
             lifecycle_state="RESOLVED", resolved_at=s["last_event_at"],
             started_at=s["last_event_at"])
        for s in final
        if s["version"] > 1 and s["tenant_id"] != SENTINEL_TENANT
    ]  # fmt: skip
    values = [
        (
            partition_for(s["tenant_id"].encode(), PARTITIONS),
            s["tenant_id"].encode(),
            orjson.dumps(s),
        )
        for s in stale
    ]
    await publish_then_wait(
        run.bootstrap,
        run.topics.changes,
        values,
        sentinel_snapshots(NOW, version=2),
        wait_until,
        run.url,
    )
    assert lesson_tables(run.url) == before
    assert stored_lessons(run.url) == expected
    sentinel = read(run.url, "SELECT kind FROM lessons WHERE tenant_id = %s", SENTINEL_TENANT)
    assert [row["kind"] for row in sentinel] == ["severe_incident_resolved"] * PARTITIONS
