"""End to end: what on-call reads first, in the API's detail and list, equals what the log says.

The scenario log goes through `incidentflow ingest` on a real broker and PostgreSQL; the
expectation is computed here from the published messages: each partition's failure and violation
topics merged by event time as a fully written log is applied (heads compared by `occurred_at`,
failures first on ties; a message refused when read is taken at once and changes nothing, and the
commands topic does not reorder the other two), each event counted once where it was applied.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg

from api.app import create_app
from domain.contracts import LlmCallFailure, PolicyViolation, Rejection, parse_message
from domain.descriptions import CATEGORY_PHRASES
from domain.settings import Settings
from storage.engine import create_async_db_engine
from storage.keys import create_key
from tests.e2e.pipeline import PARTITIONS, publish_scenario, run_ingest_to_end
from tests.scenario import SCENARIO_CONFIG, ScenarioMessage, build_scenario, partition_log

NOW = datetime.now(UTC).replace(microsecond=0)
SHORT = (
    "source_run_id", "synthetic_scenario_id", "agent_ids", "first_error_code",
    "latest_error_code", "first_policy_id", "first_violation_id", "latest_policy_id",
    "latest_violation_id", "description",
)  # fmt: skip
"""What the list shows of the context (the detail shows all of it)."""

Event = LlmCallFailure | PolicyViolation


@dataclass
class Context:
    """An incident's events in the order they were applied, and what follows from them."""

    events: list[Event] = field(default_factory=list)

    def fields(self) -> dict[str, Any]:
        errors = [
            (e.error_code, e.error_message)
            for e in self.events
            if isinstance(e, LlmCallFailure)
            and (e.error_code is not None or e.error_message is not None)
        ]
        violations = [
            (e.policy_id, e.violation_id or e.event_id, e.violated_rule, _action(e))
            for e in self.events
            if isinstance(e, PolicyViolation)
        ]
        agents = list(dict.fromkeys(e.agent_id for e in self.events if e.agent_id))
        first, latest = _ends(errors, 2)
        first_violation, latest_violation = _ends(violations, 4)
        return {
            "source_run_id": self.events[0].run_id,
            "synthetic_scenario_id": self.events[0].synthetic_scenario_id,
            "agent_ids": agents[:10],
            "first_error_code": first[0],
            "first_error_message": first[1],
            "latest_error_code": latest[0],
            "latest_error_message": latest[1],
            **_named("first", first_violation),
            **_named("latest", latest_violation),
        }

    def description(self, row: dict[str, Any]) -> str:
        calls = len(self.events)
        started = min(e.occurred_at for e in self.events).astimezone(UTC)
        tail = f"{calls:,} call{'' if calls == 1 else 's'} since {started:%Y-%m-%d %H:%M} UTC"
        if row["trigger_type"] == "rate_limit_overflow":
            return f"Events past the hourly incident cap: {tail}"
        if row["trigger_type"] == "policy_violation":
            return f"{_policy_phrase(row['category'])} on {row['fingerprint']}: {tail}"
        models: defaultdict[str, int] = defaultdict(int)
        for e in self.events:
            assert isinstance(e, LlmCallFailure)
            models[f"{e.provider}/{e.model}"] += 1
        ranked = sorted(models, key=lambda name: (-models[name], name))
        others = len(ranked) - 1
        where = ranked[0] + (f" and {others} other model{'s' * (others > 1)}" if others else "")
        return f"{CATEGORY_PHRASES[row['category']]} on {where}: {tail}"


def _action(event: PolicyViolation) -> str | None:
    return event.action_taken.value if event.action_taken else None


def _ends(items: list[tuple[Any, ...]], width: int) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    return (items[0], items[-1]) if items else ((None,) * width, (None,) * width)


def _named(which: str, violation: tuple[Any, ...]) -> dict[str, Any]:
    names = ("policy_id", "violation_id", "violated_rule", "action_taken")
    return {f"{which}_{name}": value for name, value in zip(names, violation, strict=True)}


def _policy_phrase(category: str) -> str:
    policy_type = category.removeprefix("POLICY_")
    return (
        "Policy violations"
        if category == "POLICY_VIOLATION"
        else f"Policy violations ({policy_type})"
    )


def _readable(values: list[bytes], model: type[Event]) -> list[Event]:
    """The messages of one topic partition that are applied in time order: those refused when
    read (not an event, or beyond the future guard) are taken at once and reorder nothing."""
    latest = NOW + timedelta(seconds=SCENARIO_CONFIG.max_future_skew_seconds)
    parsed = (parse_message(model, value) for value in values)
    return [
        event
        for event in parsed
        if not isinstance(event, Rejection)
        and isinstance(event, model)
        and event.occurred_at <= latest
    ]


def _merged(failures: list[Event], violations: list[Event]) -> Iterator[Event]:
    """Two topic partitions' events by time: the earlier head first, a failure on a tie."""
    i = j = 0
    while i < len(failures) or j < len(violations):
        if j == len(violations) or (
            i < len(failures) and failures[i].occurred_at <= violations[j].occurred_at
        ):
            yield failures[i]
            i += 1
        else:
            yield violations[j]
            j += 1


def expected_contexts(
    messages: list[ScenarioMessage], applied_to: dict[str, str]
) -> dict[str, Context]:
    """Each incident's events, in the order applied (`applied_to`: event id -> incident id)."""
    contexts: defaultdict[str, Context] = defaultdict(Context)
    seen: set[str] = set()
    for failures, violations, _commands in partition_log(messages, PARTITIONS).values():
        merged = _merged(
            _readable(failures, LlmCallFailure), _readable(violations, PolicyViolation)
        )
        for event in merged:
            if event.event_id in applied_to and event.event_id not in seen:
                seen.add(event.event_id)
                contexts[applied_to[event.event_id]].events.append(event)
    return contexts


def _stored(database_url: str) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    """Where each event was applied, and each incident's identifying columns."""
    with psycopg.connect(database_url) as conn:
        applied_to = {
            event_id: str(incident_id)
            for table in ("llm_call_failures", "policy_violations")
            for event_id, incident_id in conn.execute(f"SELECT event_id, incident_id FROM {table}")
        }
        cursor = conn.execute(
            "SELECT incident_id, tenant_id, trigger_type, category, fingerprint FROM incidents"
        )
        names = [column.name for column in cursor.description or ()]
        rows = {str(row[0]): dict(zip(names, row, strict=True)) for row in cursor}
    return applied_to, rows


async def test_the_detail_and_the_list_say_what_the_log_says(
    database_url: str, bootstrap_servers: str
) -> None:
    messages = build_scenario(7, now=NOW)
    topics = await publish_scenario(bootstrap_servers, messages)
    run_ingest_to_end(topics.env(database_url, bootstrap_servers))
    applied_to, rows = _stored(database_url)
    contexts = expected_contexts(messages, applied_to)
    assert set(contexts) == set(rows)
    expected = {
        incident_id: context.fields() | {"description": context.description(rows[incident_id])}
        for incident_id, context in contexts.items()
    }
    _assert_the_log_exercises_the_context(expected, rows)

    engine = create_async_db_engine(database_url, pool_size=2)
    try:
        tenants = sorted({row["tenant_id"] for row in rows.values()})
        async with engine.begin() as conn:
            keys = {tenant: (await create_key(conn, tenant_id=tenant))[1] for tenant in tenants}
        app = create_app(Settings(database_url=database_url), engine=engine)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            for incident_id, want in expected.items():
                auth = {"Authorization": f"Bearer {keys[rows[incident_id]['tenant_id']]}"}
                response = await client.get(f"/v1/incidents/{incident_id}", headers=auth)
                assert response.status_code == 200, response.text
                body = response.json()
                assert {name: body[name] for name in want} == want, incident_id
            for tenant in tenants:
                auth = {"Authorization": f"Bearer {keys[tenant]}"}
                response = await client.get("/v1/incidents", params={"limit": 100}, headers=auth)
                assert response.status_code == 200, response.text
                for item in response.json()["items"]:
                    want = expected[item["incident_id"]]
                    assert {name: item[name] for name in SHORT} == {n: want[n] for n in SHORT}
    finally:
        await engine.dispose()


def _assert_the_log_exercises_the_context(
    expected: dict[str, dict[str, Any]], rows: dict[str, dict[str, Any]]
) -> None:
    """The scenario gives every field something to show, and first and latest differ somewhere."""
    values = list(expected.values())
    for name in ("first_error_code", "first_error_message", "first_policy_id", "first_action_taken",
                 "synthetic_scenario_id"):  # fmt: skip
        assert any(v[name] is not None for v in values), name
    assert any(v["first_error_code"] != v["latest_error_code"] for v in values)
    assert any(v["first_violation_id"] != v["latest_violation_id"] for v in values)
    assert any(len(v["agent_ids"]) > 1 for v in values)
    assert any(v["first_policy_id"] and v["first_error_code"] for v in values)  # the overflow
    triggers = {row["trigger_type"] for row in rows.values()}
    assert {"llm_failure", "policy_violation", "rate_limit_overflow"} <= triggers
