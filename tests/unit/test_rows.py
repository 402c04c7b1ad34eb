"""storage.rows: Incident <-> incidents row translation."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from domain.incidents import Incident, LifecycleState
from domain.snapshot import SNAPSHOT_FIELDS, IncidentSnapshot
from storage.rows import INCIDENT_COLUMNS, incident_from_row, incident_row
from storage.schema import incidents
from tests.builders import INCIDENT_CONTEXT, incident

T0 = datetime(2024, 11, 22, 14, 0, tzinfo=UTC)


def _minimal() -> Incident:
    return incident()


def _full() -> Incident:
    return incident(
        trigger_type="rate_limit_overflow",
        fingerprint="*",
        category="RATE_LIMIT_OVERFLOW",
        cause_type="SYSTEM",
        title="Incident rate limit reached: events aggregated",
        severity="critical",
        last_event_at=T0 + timedelta(minutes=5),
        is_synthetic=True,
        fingerprints=["*", "a/b/c"],
        lifecycle_state=LifecycleState.RESOLVED,
        acked_at=T0 + timedelta(minutes=1),
        acked_by="ops@acme",
        resolved_at=T0 + timedelta(minutes=6),
        resolved_by="ops@acme",
        resolution_method="rollback",
        calls_affected=42,
        related_call_ids=["c1", "c2"],
        run_ids=["r1"],
        cost_usd=Decimal("12.34567891"),
        reopen_count=2,
        absorbed={"llm_failure": {"x": 40, "y": 1}, "rate_limit": {"z": 2}},
        **INCIDENT_CONTEXT,
        version=57,
    )


@pytest.mark.parametrize("incident", [_minimal(), _full()], ids=["minimal", "full"])
def test_round_trip_keeps_every_field(incident: Incident) -> None:
    back = incident_from_row(incident_row(incident, partition=3))
    assert back.snapshot() == incident.snapshot()
    for f in fields(Incident):
        assert getattr(back, f.name) == getattr(incident, f.name), f.name
    assert back.lifecycle_state is incident.lifecycle_state


def test_row_has_every_column_but_updated_at() -> None:
    row = incident_row(_full(), partition=5)
    stamped = {"updated_at", "created_watermark"}  # by the database, by the ingest store
    assert set(row) == {column.name for column in incidents.columns} - stamped
    assert row["partition"] == 5
    assert row["lifecycle_state"] == "RESOLVED"
    assert isinstance(row["absorbed"], dict)


@pytest.mark.parametrize("incident", [_minimal(), _full()], ids=["minimal", "full"])
def test_the_snapshot_the_row_and_the_table_hold_one_record(incident: Incident) -> None:
    columns = {column.name for column in incidents.columns}
    assert set(SNAPSHOT_FIELDS) == columns - {"partition", "updated_at", "created_watermark"}
    assert list(incident.snapshot()) == list(SNAPSHOT_FIELDS)
    row = incident_row(incident, partition=5)
    assert set(row) == set(INCIDENT_COLUMNS)
    in_row = IncidentSnapshot.model_validate({name: row[name] for name in SNAPSHOT_FIELDS})
    assert in_row == IncidentSnapshot.model_validate(incident.snapshot())


def test_row_does_not_share_mutable_state() -> None:
    incident = _full()
    row = incident_row(incident, partition=0)
    row["fingerprints"].append("zzz")
    row["absorbed"]["new"] = {}
    row["absorbed"]["llm_failure"]["x"] = 0
    assert "zzz" not in incident.fingerprints
    assert "new" not in incident.absorbed
    assert incident.absorbed["llm_failure"]["x"] == 40


def test_from_row_accepts_database_shapes() -> None:
    """Rows as a driver might return them: str uuid, numeric as str, extra columns."""
    incident = _full()
    row = incident_row(incident, partition=1) | {
        "incident_id": str(incident.incident_id),
        "cost_usd": "12.34567891",
        "updated_at": T0,
    }
    back = incident_from_row(row)
    assert back.incident_id == incident.incident_id
    assert back.cost_usd == Decimal("12.34567891")
    assert isinstance(back.cost_usd, Decimal)
