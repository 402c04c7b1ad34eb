"""A small data set for the API tests, inserted directly into a migrated database.

Two tenants (`acme`, `globex`), incidents in every state, events, timeline entries and ingest
watermarks, all relative to `AS_OF` (the minimum non-null watermark), plus one key per scope.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from api.app import create_app
from domain.incidents import Incident, LifecycleState
from domain.settings import Settings
from storage.engine import create_async_db_engine
from storage.keys import create_key
from storage.rows import incident_row
from storage.schema import (
    incident_timeline,
    incidents,
    ingest_partitions,
    llm_call_failures,
    policy_violations,
)

AS_OF = datetime(2024, 11, 22, 14, 0, tzinfo=UTC)
H = timedelta(hours=1)
D = timedelta(days=1)


def _id(name: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"api-test:{name}")


def incident(name: str, tenant: str = "acme", **fields: Any) -> Incident:
    started = fields.pop("started_at", AS_OF - H)
    defaults: dict[str, Any] = {
        "trigger_type": "llm_failure",
        "fingerprint": f"fp-{name}",
        "fingerprints": [f"fp-{name}"],
        "category": "LLM_TIMEOUT",
        "cause_type": "LLM_RUN",
        "title": f"incident {name}",
        "severity": "medium",
        "last_event_at": started + timedelta(minutes=5),
        "is_synthetic": False,
        "calls_affected": 3,
        "cost_usd": Decimal("0.30000000"),
        "version": 3,
    }
    return Incident(
        incident_id=_id(name), tenant_id=tenant, started_at=started, **(defaults | fields)
    )


def _resolved(started: datetime, after: timedelta, method: str = "manual") -> dict[str, Any]:
    return {
        "started_at": started,
        "lifecycle_state": LifecycleState.RESOLVED,
        "resolved_at": started + after,
        "resolved_by": "ops",
        "resolution_method": method,
    }


def _violations(policy_id: str, rule: str, action: str) -> dict[str, Any]:
    """The first and latest violation context of an incident of one policy's violations."""
    return {
        f"{which}_{name}": value
        for which in ("first", "latest")
        for name, value in (
            ("policy_id", policy_id),
            ("violation_id", f"{which}-violation"),
            ("violated_rule", rule),
            ("action_taken", action),
        )
    }


def build_incidents() -> dict[str, Incident]:
    acked = {"lifecycle_state": LifecycleState.ACKED, "acked_by": "ops"}
    items = [
        incident(
            "a1",
            severity="high",
            started_at=AS_OF - 2 * H,
            calls_affected=30,
            cost_usd=Decimal("1.50000000"),
            run_ids=["run-1", "run-2"],
            related_call_ids=["c1", "c2", "c3"],
            breakdown={},
            description="Timeouts on fp-a1: 30 calls since 2024-11-22 12:00 UTC",
            source_run_id="run-1",
            agent_ids=["bot"],
            first_error_code="504",
            first_error_message="gateway timeout",
            latest_error_code="429",
            latest_error_message="slow down",
        ),
        incident(
            "a2",
            severity="critical",
            category="BUDGET_EXCEEDED",
            trigger_type="budget_breach",
            started_at=AS_OF - 3 * H,
            acked_at=AS_OF - 2.5 * H,
            calls_affected=250,
            cost_usd=Decimal("12.00000000"),
            **acked,
        ),
        incident(
            "a3",
            severity="medium",
            started_at=AS_OF - timedelta(minutes=10),
            is_synthetic=True,
            calls_affected=12,
        ),
        incident(
            "r1",
            severity="low",
            calls_affected=1,
            cost_usd=Decimal("0.01000000"),
            **_resolved(AS_OF - 40 * D, D),
        ),
        incident(
            "r2",
            severity="medium",
            calls_affected=15,
            **_resolved(AS_OF - D, timedelta(minutes=30)),
        ),
        incident(
            "r3",
            severity="critical",
            category="POLICY_PII",
            cause_type="HUMAN",
            trigger_type="policy_violation",
            is_synthetic=True,
            calls_affected=200,
            cost_usd=Decimal("3.25000000"),
            synthetic_scenario_id="drill-1",
            **_violations("pii", "no emails", "redacted"),
            **_resolved(AS_OF - 5 * D, 2 * H, "rollback"),
        ),
        incident(
            "r4",
            severity="low",
            calls_affected=2,
            acked_at=AS_OF - 3 * D + H,
            **_resolved(AS_OF - 3 * D, 2 * H),
        ),
        incident("g1", tenant="globex", severity="high", run_ids=["run-1"]),
        incident("g2", tenant="globex", severity="low", **_resolved(AS_OF - 2 * D, H)),
    ]
    return {item.title.split()[-1]: item for item in items}


def _event(event_id: str, tenant: str, at: datetime, run_id: str) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "tenant_id": tenant,
        "occurred_at": at,
        "run_id": run_id,
        "received_at": at,
        "cost_usd": Decimal("0.10000000"),
    }


def failure(
    event_id: str, incident_id: uuid.UUID, at: datetime, run_id: str, tenant: str = "acme"
) -> dict[str, Any]:
    return _event(event_id, tenant, at, run_id) | {
        "incident_id": incident_id,
        "provider": "openai",
        "model": "gpt-4o",
        "failure_type": "timeout",
        "call_id": event_id,
        "agent_id": "bot",
    }


def violation(
    event_id: str, incident_id: uuid.UUID, at: datetime, run_id: str, tenant: str = "acme"
) -> dict[str, Any]:
    return _event(event_id, tenant, at, run_id) | {
        "incident_id": incident_id,
        "policy_id": "pii",
        "violated_rule": "no emails",
        "severity": "high",
        "cause_type": "LLM_RUN",
        "evidence": {"field": "output"},
    }


@dataclass
class Dataset:
    incidents: dict[str, Incident]
    keys: dict[str, str] = field(default_factory=dict)
    """Bearer keys: `acme`, `globex`, `ops`, `revoked`."""

    def id(self, name: str) -> str:
        return str(self.incidents[name].incident_id)

    def of(self, tenant: str) -> list[Incident]:
        return [item for item in self.incidents.values() if item.tenant_id == tenant]

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}


async def seed(engine: AsyncEngine) -> Dataset:
    data = Dataset(build_incidents())
    a1, g1 = data.incidents["a1"].incident_id, data.incidents["g1"].incident_id
    start = AS_OF - 2 * H
    async with engine.begin() as conn:
        await conn.execute(
            insert(incidents), [incident_row(item, 0) for item in data.incidents.values()]
        )
        await conn.execute(
            insert(llm_call_failures),
            [
                failure("e-2", a1, start, "run-1"),
                failure("e-1", a1, start, "run-2"),
                failure("e-3", a1, start + H, "run-2"),
                failure("g-1", g1, start, "run-1", tenant="globex"),
            ],
        )
        await conn.execute(insert(policy_violations), [violation("e-0", a1, start, "run-3")])
        await conn.execute(
            insert(incident_timeline),
            [
                {
                    "incident_id": a1,
                    "tenant_id": "acme",
                    "kind": "created",
                    "at": start,
                    "data": {},
                },
                {
                    "incident_id": a1,
                    "tenant_id": "acme",
                    "kind": "severity_escalated",
                    "at": start + H,
                    "data": {"to": "high"},
                },
                {
                    "incident_id": g1,
                    "tenant_id": "globex",
                    "kind": "created",
                    "at": start,
                    "data": {},
                },
            ],
        )
        await conn.execute(
            insert(ingest_partitions),
            [
                {"partition": 0, "watermark": AS_OF},
                {"partition": 1, "watermark": AS_OF + H},
                {"partition": 2, "watermark": None},
            ],
        )
        for who, tenant in (
            ("acme", "acme"),
            ("globex", "globex"),
            ("ops", None),
            ("revoked", "acme"),
        ):
            data.keys[who] = (await create_key(conn, tenant_id=tenant, name=who))[1]
        from storage.keys import revoke_key

        revoked_id = data.keys["revoked"].split("_")[1]
        await revoke_key(conn, revoked_id)
    await fill_processor_tables(engine, data)
    return data


async def fill_processor_tables(engine: AsyncEngine, data: Dataset) -> None:
    """The processors' tables, as the stream processors would fill them from the change feed."""
    from domain.snapshot import IncidentSnapshot
    from storage.analytics_store import AnalyticsStore

    snapshots = [
        IncidentSnapshot.model_validate(item.snapshot()) for item in data.incidents.values()
    ]
    await AnalyticsStore(engine, Settings().sla_targets()).apply(snapshots)


Client = tuple[httpx.AsyncClient, "Dataset"]
"""What the `api` fixtures yield: a client of the API and the dataset it was seeded with."""


@asynccontextmanager
async def api_client(database_url: str) -> AsyncIterator[Client]:
    """A client of the API over a seeded copy of `database_url` (already migrated)."""
    engine = create_async_db_engine(database_url, pool_size=4)
    try:
        data = await seed(engine)
        app = create_app(Settings(database_url=database_url), engine=engine)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            yield client, data
    finally:
        await engine.dispose()


async def get(api: Client, path: str, who: str = "acme", **params: Any) -> Any:
    """The JSON body of a GET that must answer 200."""
    client, data = api
    response = await client.get(path, params=params, headers=data.auth(who))
    assert response.status_code == 200, response.text
    return response.json()


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The error object of a response that must be an error with this status and code."""
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code and error["message"]
    return error
