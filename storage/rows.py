"""Translate between `Incident` and rows of the `incidents` table.

The columns are the incident record's fields (`domain.snapshot.SNAPSHOT_FIELDS`), plus
`partition`, `updated_at` and `created_watermark`: `incident_row` gives every column except
`updated_at` (the database sets it) and `created_watermark` (the ingest store stamps a new
incident), ready for an insert or upsert; `incident_from_row` is its inverse and accepts any
mapping holding at least the record's fields (extra columns such as `partition` are ignored).
Values keep their Python types: UUIDs, aware datetimes, Decimal cost, lists and a dict for
`absorbed`. A field is copied as the `Incident` attribute of its name unless `incident_row`
and `incident_from_row` convert it; a field added to the record and the table therefore needs no
change here when it is a plain value.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from decimal import Decimal
from operator import attrgetter, itemgetter
from typing import Any

from domain.incidents import Incident, LifecycleState, breakdown_from_json, breakdown_json
from domain.snapshot import SNAPSHOT_FIELDS

INCIDENT_COLUMNS = ("partition", *SNAPSHOT_FIELDS)
"""The columns `incident_row` gives."""

_CONVERTED = (
    "fingerprints", "lifecycle_state", "opened_at", "related_call_ids", "run_ids", "absorbed",
    "breakdown", "agent_ids",
)  # fmt: skip
"""The fields `incident_row` does not copy as they are (copies of mutable values, and values
that are computed or converted)."""
_COPIED = tuple(name for name in SNAPSHOT_FIELDS if name not in _CONVERTED)
_copied = attrgetter(*_COPIED)
_columns = itemgetter(*SNAPSHOT_FIELDS)


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
    # Called for every touched incident of every ingest batch: one C-level getter for the copied
    # fields, and item assignments for the rest, cost about what a dict literal does.
    calls_from, runs_from = lists_from
    row = dict(zip(_COPIED, _copied(incident), strict=True))
    row["partition"] = partition
    row["fingerprints"] = list(incident.fingerprints)
    row["lifecycle_state"] = incident.lifecycle_state.value
    row["opened_at"] = incident.opened
    row["related_call_ids"] = incident.related_call_ids[calls_from:]
    row["run_ids"] = incident.run_ids[runs_from:]
    row["absorbed"] = {trigger: dict(counts) for trigger, counts in incident.absorbed.items()}
    row["breakdown"] = breakdown_json(incident.breakdown) if breakdown is None else breakdown
    row["agent_ids"] = list(incident.agent_ids)
    return row


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
    fields = dict(zip(SNAPSHOT_FIELDS, _columns(row), strict=True))
    fields.update(
        incident_id=_uuid(row["incident_id"]),
        is_synthetic=bool(row["is_synthetic"]),
        fingerprints=list(row["fingerprints"] or ()),
        lifecycle_state=LifecycleState(row["lifecycle_state"]),
        calls_affected=int(row["calls_affected"]),
        related_call_ids=list(row["related_call_ids"] or ()),
        run_ids=list(row["run_ids"] or ()),
        cost_usd=_decimal(row["cost_usd"]),
        reopen_count=int(row["reopen_count"]),
        absorbed=_absorbed(row["absorbed"]),
        version=int(row["version"]),
        breakdown=breakdown_from_json(row["breakdown"]),
        agent_ids=list(row["agent_ids"] or ()),
    )
    return Incident(**fields)
