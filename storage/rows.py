"""Translate between `Incident` and rows of the `incidents` table.

`incident_row` gives every column except `updated_at` (the database sets it), ready for an insert
or upsert; `incident_from_row` is its inverse and accepts any mapping holding at least the
`Incident` fields (extra columns such as `partition` and `updated_at` are ignored). Values keep
their Python types: UUIDs, aware datetimes, Decimal cost, lists and a dict for `absorbed`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from domain.incidents import Incident, LifecycleState, breakdown_from_json, breakdown_json


def incident_row(
    incident: Incident,
    partition: int,
    *,
    lists_from: tuple[int, int] = (0, 0),
    breakdown: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The `incidents` row for `incident` stored on Kafka partition `partition`.

    `lists_from` cuts `related_call_ids` and `run_ids` to their tails from those positions (for
    appending to a stored row). `breakdown` is `breakdown_json(incident.breakdown)` if the caller
    already has it: the ingest worker computes it once for the row and the change message.
    """
    calls_from, runs_from = lists_from
    return {
        "incident_id": incident.incident_id,
        "partition": partition,
        "tenant_id": incident.tenant_id,
        "trigger_type": incident.trigger_type,
        "fingerprint": incident.fingerprint,
        "fingerprints": list(incident.fingerprints),
        "category": incident.category,
        "cause_type": incident.cause_type,
        "title": incident.title,
        "severity": incident.severity,
        "lifecycle_state": incident.lifecycle_state.value,
        "started_at": incident.started_at,
        "opened_at": incident.opened,
        "last_event_at": incident.last_event_at,
        "acked_at": incident.acked_at,
        "acked_by": incident.acked_by,
        "resolved_at": incident.resolved_at,
        "resolved_by": incident.resolved_by,
        "resolution_method": incident.resolution_method,
        "calls_affected": incident.calls_affected,
        "related_call_ids": incident.related_call_ids[calls_from:],
        "run_ids": incident.run_ids[runs_from:],
        "cost_usd": incident.cost_usd,
        "reopen_count": incident.reopen_count,
        "absorbed": {trigger: dict(counts) for trigger, counts in incident.absorbed.items()},
        "is_synthetic": incident.is_synthetic,
        "breakdown": breakdown_json(incident.breakdown) if breakdown is None else breakdown,
        "version": incident.version,
    }


def _uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _decimal(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _absorbed(value: Mapping[str, Mapping[str, Any]] | None) -> dict[str, dict[str, int]]:
    return {
        str(trigger): {str(fingerprint): int(calls) for fingerprint, calls in counts.items()}
        for trigger, counts in (value or {}).items()
    }


def incident_from_row(row: Mapping[Any, Any]) -> Incident:
    """The `Incident` a row of the `incidents` table holds (inverse of `incident_row`)."""
    return Incident(
        incident_id=_uuid(row["incident_id"]),
        tenant_id=row["tenant_id"],
        trigger_type=row["trigger_type"],
        fingerprint=row["fingerprint"],
        category=row["category"],
        cause_type=row["cause_type"],
        title=row["title"],
        severity=row["severity"],
        started_at=row["started_at"],
        opened_at=row["opened_at"],
        last_event_at=row["last_event_at"],
        is_synthetic=bool(row["is_synthetic"]),
        fingerprints=list(row["fingerprints"] or ()),
        lifecycle_state=LifecycleState(row["lifecycle_state"]),
        acked_at=row["acked_at"],
        acked_by=row["acked_by"],
        resolved_at=row["resolved_at"],
        resolved_by=row["resolved_by"],
        resolution_method=row["resolution_method"],
        calls_affected=int(row["calls_affected"]),
        related_call_ids=list(row["related_call_ids"] or ()),
        run_ids=list(row["run_ids"] or ()),
        cost_usd=_decimal(row["cost_usd"]),
        reopen_count=int(row["reopen_count"]),
        absorbed=_absorbed(row["absorbed"]),
        version=int(row["version"]),
        breakdown=breakdown_from_json(row["breakdown"]),
    )
