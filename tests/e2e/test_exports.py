"""Exports over the real pipeline: a generated log published, `incidentflow ingest` to the end,
then the API in-process over that database.

Two incidents of tenant `acme` are exported in every kind and format: a small one (policy
violations, acknowledged then resolved, free-form evidence with decimals) and one of 100,000 LLM
failures of a single key. The log is published and ingested once for the module.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import pytest_asyncio
from pypdf import PdfReader

from api.app import create_app
from domain.incidents import incident_id_for
from domain.json_text import JsonCursor
from domain.settings import Settings
from domain.verification import Verification, verify
from incidentflow.cli import main
from storage.engine import create_async_db_engine
from storage.keys import create_key
from storage.migrate import upgrade
from tests.e2e.pipeline import publish_scenario, run_ingest_to_end
from tests.scenario import SCENARIO_CONFIG, ScenarioMessage
from tests.support import fresh_database

LARGE_EVENTS = 100_000
END = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
LARGE_START = END - timedelta(seconds=LARGE_EVENTS * 0.005)
SMALL_START = LARGE_START - timedelta(minutes=30)
KINDS = ("evidence", "soc2", "debrief")
SMALL = incident_id_for("small-0")
LARGE = incident_id_for("large-000000")
OTHER = incident_id_for("other-0")


def _message(kind: str, body: dict[str, Any]) -> ScenarioMessage:
    value = json.dumps(body, separators=(",", ":")).encode()
    return ScenarioMessage(kind, body["tenant_id"].encode(), value)


def _at(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def log() -> list[ScenarioMessage]:
    """The small incident, the large one and another tenant's, in time order per topic."""
    messages = [
        _message(
            "violations",
            {
                "event_id": f"small-{n}",
                "tenant_id": "acme",
                "occurred_at": _at(SMALL_START + timedelta(seconds=20 * n)),
                "run_id": f"run-{n % 2}",
                "policy_id": "pii-email",
                "policy_type": "PII",
                "violated_rule": "no e-mail addresses in answers",
                "severity": "high",
                "action_taken": "redacted",
                "agent_id": "support-bot",
                "cost_usd": "0.01250000",
                "metadata": {"region": "eu-west-1", "latency_s": 1.25},
                "evidence": {"score": 0.93, "field": "output", "matches": ["a@b.example"]},
            },
        )
        for n in range(4)
    ]
    for n, (action, minutes) in enumerate((("acknowledge", 3), ("resolve", 9))):
        body = {
            "command_id": f"small-command-{n}",
            "tenant_id": "acme",
            "incident_id": str(SMALL),
            "action": action,
            "issued_at": _at(SMALL_START + timedelta(minutes=minutes)),
            "issued_by": "alice",
            "note": "rolled the prompt back" if action == "resolve" else None,
        }
        messages.append(
            _message("commands", body | ({"resolution_method": "rollback"} if n else {}))
        )
    messages += [
        _message(
            "failures",
            {
                "event_id": f"large-{n:06d}",
                "tenant_id": "acme",
                "occurred_at": _at(LARGE_START + timedelta(milliseconds=5 * n)),
                "run_id": f"run-{n % 7}",
                "call_id": f"call-{n}",
                "provider": "openai",
                "model": "gpt-4o",
                "failure_type": "timeout",
                "error_code": "ETIMEDOUT",
                "error_message": f"upstream timed out after 30 s (attempt {n % 3})",
                "duration_ms": 30000,
                "tokens_in": 812,
                "cost_usd": "0.00350000",
                "metadata": {"attempt": n % 3, "latency_s": 30.5},
            },
        )
        for n in range(LARGE_EVENTS)
    ]
    messages.append(
        _message(
            "failures",
            {
                "event_id": "other-0",
                "tenant_id": "globex",
                "occurred_at": _at(END),
                "run_id": "run-g",
                "provider": "anthropic",
                "model": "claude",
                "failure_type": "exception",
            },
        )
    )
    return messages


@dataclass
class Exports:
    client: httpx.AsyncClient
    keys: dict[str, str]
    folder: Path
    first: dict[tuple[uuid.UUID, str], tuple[httpx.Response, Verification]] = field(
        default_factory=dict
    )

    async def json_bundle(
        self, incident: uuid.UUID, kind: str
    ) -> tuple[httpx.Response, Verification]:
        """The first JSON export of (incident, kind) at the current as_of, and its verification
        (kept for the module: the large one takes seconds)."""
        if (incident, kind) not in self.first:
            response = await self.bundle(incident, kind=kind)
            self.first[incident, kind] = response, verify(response.content)
        return self.first[incident, kind]

    async def get(
        self, incident: uuid.UUID, who: str | None = "acme", **params: Any
    ) -> httpx.Response:
        headers = {} if who is None else {"Authorization": f"Bearer {self.keys[who]}"}
        return await self.client.get(
            f"/v1/incidents/{incident}/export", params=params, headers=headers
        )

    async def bundle(self, incident: uuid.UUID, **params: Any) -> httpx.Response:
        response = await self.get(incident, **params)
        assert response.status_code == 200, response.text
        return response

    def written(self, name: str, data: bytes) -> Path:
        path = self.folder / name
        path.write_bytes(data)
        return path


@pytest_asyncio.fixture(scope="module")
async def pipeline_database(postgres_url: str, bootstrap_servers: str) -> AsyncIterator[str]:
    """A database filled by publishing `log()` and running ingest to its end."""
    with fresh_database(postgres_url) as url:
        upgrade(url)
        topics = await publish_scenario(bootstrap_servers, log())
        run_ingest_to_end(topics.env(url, bootstrap_servers))
        yield url


@pytest_asyncio.fixture(scope="module")
async def exports(
    pipeline_database: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Exports]:
    # The API runs under the rules the worker ran under: bundles record that configuration.
    settings = Settings(database_url=pipeline_database, **asdict(SCENARIO_CONFIG))
    engine = create_async_db_engine(pipeline_database, pool_size=4)
    try:
        async with engine.begin() as conn:
            keys = {
                who: (await create_key(conn, tenant_id=tenant))[1]
                for who, tenant in (("acme", "acme"), ("globex", "globex"), ("ops", None))
            }
        transport = httpx.ASGITransport(app=create_app(settings, engine=engine))
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            yield Exports(client, keys, tmp_path_factory.mktemp("exports"))
    finally:
        await engine.dispose()


def cli_verify(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    status = main(["verify", str(path)])
    return status, capsys.readouterr().out.strip()


def changed_byte(data: bytes, marker: bytes) -> bytes:
    """`data` with the digit after the first `marker` changed (still JSON, one byte apart)."""
    position = data.index(marker) + len(marker)
    digit = data[position : position + 1]
    assert digit.isdigit(), (marker, digit)
    return data[:position] + (b"7" if digit != b"7" else b"8") + data[position + 1 :]


def stamp(as_of: str) -> str:
    return as_of.replace("-", "").replace(":", "")


def pdf_lines(data: bytes) -> list[str]:
    pages = PdfReader(io.BytesIO(data)).pages
    return [line for page in pages for line in page.extract_text().splitlines()]


def made_at(data: bytes) -> str:
    """The `as_of` of a bundle file: its bundle's first member (keys are sorted)."""
    cursor = JsonCursor(data.decode(), json.JSONDecoder(), ValueError)
    assert next(cursor.members()) == "bundle"
    assert next(cursor.members()) == "as_of"
    as_of: str = cursor.value()
    return as_of


def bundle_head(data: bytes) -> tuple[dict[str, Any], list[str]]:
    """The bundle's members but `events`, and its event ids, checked in (occurred_at, event_id)
    order; read with the JSON cursor, one event at a time."""
    cursor = JsonCursor(data.decode(), json.JSONDecoder(), ValueError)
    members: dict[str, Any] = {}
    ids: list[str] = []
    previous = ("", "")
    assert next(cursor.members()) == "bundle"
    for name in cursor.members():
        if name != "events":
            members[name] = cursor.value()
            continue
        for event in cursor.items():
            order = (event["occurred_at"], event["event_id"])
            assert order > previous, (order, previous)
            previous = order
            ids.append(event["event_id"])
    return members, ids


INCIDENTS = {"small": (SMALL, 4), "large": (LARGE, LARGE_EVENTS)}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("size", ["small", "large"])
async def test_json_bundles_verify_are_reproducible_and_detect_a_changed_byte(
    exports: Exports, size: str, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    incident, events = INCIDENTS[size]
    response, result = await exports.json_bundle(incident, kind)
    data = response.content
    assert result.intact and result.canonical_bytes, result.detail
    assert result.kind == kind
    members, ids = bundle_head(data)
    as_of = members["as_of"]
    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-disposition"] == (
        f'attachment; filename="{kind}-{incident}-{stamp(as_of)}.json"'
    )
    if kind == "debrief":
        assert ids == []
        assert members["calls_affected"] == events
    else:
        assert len(set(ids)) == len(ids) == events
        assert ids[0] == f"{size}-0" or ids[0] == "large-000000"
        assert members["incident"]["calls_affected"] == events
        assert members["configuration"]["aggregation"]["max_related_calls_per_incident"] == 50
    again = await exports.bundle(incident, kind=kind, as_of=as_of)
    assert again.content == data

    if size == "small":  # the command line runs the same verification as above
        path = exports.written(f"{size}-{kind}.json", data)
        assert cli_verify(path, capsys) == (0, f"intact: {result.computed_hash}")
    marker = b'"calls_affected":'
    altered = exports.written(f"{size}-{kind}-altered.json", changed_byte(data, marker))
    status, line = cli_verify(altered, capsys)
    assert status == 1
    assert line.startswith(f"altered: expected {result.computed_hash} got ")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("size", ["small", "large"])
async def test_pdfs_print_the_incident_and_the_hash_of_the_json_bundle(
    exports: Exports, size: str, kind: str
) -> None:
    incident, _ = INCIDENTS[size]
    json_bundle, verification = await exports.json_bundle(incident, kind)
    digest, as_of = verification.computed_hash, made_at(json_bundle.content)
    response = await exports.bundle(incident, kind=kind, format="pdf", as_of=as_of)
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"] == (
        f'attachment; filename="{kind}-{incident}-{stamp(as_of)}.pdf"'
    )
    lines = pdf_lines(response.content)
    assert f"Incident: {incident}" in lines
    assert f"Integrity (SHA-256): {digest}" in lines
    again = await exports.bundle(incident, kind=kind, format="pdf", as_of=as_of)
    assert again.content == response.content
    if size == "large" and kind != "debrief":
        text = " ".join(" ".join(lines).split())
        assert f"This PDF lists the first 100 of the incident's {LARGE_EVENTS:,} events" in text


async def test_the_small_bundle_holds_its_events_timeline_and_commands(exports: Exports) -> None:
    bundle = json.loads((await exports.bundle(SMALL, kind="soc2")).content)["bundle"]
    assert [event["event_id"] for event in bundle["events"]] == [f"small-{n}" for n in range(4)]
    assert {event["type"] for event in bundle["events"]} == {"policy_violation"}
    assert bundle["events"][0]["evidence"] == {
        "field": "output",
        "matches": ["a@b.example"],
        "score": "0.93",
    }
    assert "received_at" not in bundle["events"][0]
    kinds = [entry["kind"] for entry in bundle["timeline"]]
    assert kinds[0] == "created" and kinds[-2:] == ["acknowledged", "resolved"]
    assert bundle["incident"]["lifecycle_state"] == "RESOLVED"
    assert bundle["incident"]["resolution_method"] == "rollback"
    response = {control["control_id"]: control for control in bundle["controls"]}
    assert response["CC7.4"]["status"] == "demonstrated"
    assert response["CC7.4"]["facts"]["acknowledged_by"] == "alice"


async def test_an_earlier_as_of_makes_another_bundle_and_a_later_one_is_refused(
    exports: Exports,
) -> None:
    current = json.loads((await exports.bundle(SMALL)).content)["bundle"]["as_of"]
    earlier = "2020-01-01T00:00:00+01:00"
    bundle = json.loads((await exports.bundle(SMALL, as_of=earlier)).content)["bundle"]
    assert bundle["as_of"] == bundle["generated_at"] == "2019-12-31T23:00:00.000000Z"
    assert (
        bundle["bundle_id"]
        != json.loads((await exports.bundle(SMALL)).content)["bundle"]["bundle_id"]
    )
    later = datetime.fromisoformat(current) + timedelta(microseconds=1)
    response = await exports.get(SMALL, as_of=later.isoformat())
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "as_of"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("export_format", ["json", "pdf"])
async def test_another_tenants_key_gets_404_and_no_key_401(
    exports: Exports, kind: str, export_format: str
) -> None:
    params = {"kind": kind, "format": export_format}
    response = await exports.get(SMALL, who="globex", **params)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert "acme" not in response.text and str(SMALL) not in response.text
    named = await exports.get(SMALL, who="globex", tenant_id="acme", **params)
    assert named.status_code == 404
    assert (await exports.get(SMALL, who=None, **params)).status_code == 401
    assert (await exports.get(OTHER, who="globex", **params)).status_code == 200
    assert (await exports.get(SMALL, who="ops", tenant_id="acme", **params)).status_code == 200


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"kind": "postmortem"}, "kind"),
        ({"format": "docx"}, "format"),
        ({"as_of": "2026-01-01T00:00:00"}, "as_of"),
        ({"as_of": "yesterday"}, "as_of"),
        ({"as_of": "0001-01-01T00:00:00+01:00"}, "as_of"),
        ({"formats": "pdf"}, "formats"),
    ],
)
async def test_bad_parameters_are_422_naming_the_field(
    exports: Exports, params: dict[str, str], field: str
) -> None:
    response = await exports.get(SMALL, **params)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field


async def test_a_malformed_incident_id_is_422_naming_it(exports: Exports) -> None:
    response = await exports.client.get(
        "/v1/incidents/not-a-uuid/export",
        headers={"Authorization": f"Bearer {exports.keys['acme']}"},
    )
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "incident_id"


async def test_the_database_holds_what_the_bundles_were_checked_against(
    pipeline_database: str,
) -> None:
    with psycopg.connect(pipeline_database) as conn:
        rows = conn.execute(
            "SELECT incident_id, calls_affected FROM incidents WHERE tenant_id = 'acme'"
        ).fetchall()
    assert dict(rows) == {SMALL: 4, LARGE: LARGE_EVENTS}
