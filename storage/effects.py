"""What the workers hand to storage and get back: one batch's effects, frozen into rows; the dead
letters of the ingest worker and of the processors; a partition's state as the last committed
batch left it (`IngestStore.load_partition`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain.contracts import LifecycleCommand, LlmCallFailure, PolicyViolation
from domain.incidents import Incident, Key, TimelineEntry
from storage import schema


@dataclass(slots=True)
class StoredPartition:
    """The state of one partition as the last committed batch left it."""

    partition: int
    watermark: datetime | None
    incidents: list[Incident]
    keys: dict[Key, uuid.UUID]
    next_offsets: dict[str, int]
    last_batch_incident_ids: list[uuid.UUID]
    last_batch_dead_letters: list[DeadLetterRow] = field(default_factory=list)
    """The last batch's dead letters as stored (payload cut to what the table keeps)."""


@dataclass(frozen=True, slots=True)
class DeadLetterRow:
    source_topic: str
    source_partition: int
    source_offset: int
    message_key: bytes | None
    reason: str
    detail: str
    payload: bytes | None
    payload_bytes: int | None = None
    """The size of the original value when `payload` holds only its first bytes (None: whole)."""

    @property
    def truncated(self) -> bool:
        return (
            self.payload is not None
            and self.payload_bytes is not None
            and self.payload_bytes > len(self.payload)
        )


def dead_letter_values(row: DeadLetterRow) -> dict[str, Any]:
    """The `dead_letters` columns of `row`, its payload cut to what is kept (`received_at` is the
    caller's, or the database's now())."""
    payload = row.payload[: schema.MAX_DEAD_LETTER_PAYLOAD] if row.payload is not None else None
    size = row.payload_bytes if row.payload_bytes is not None else None
    if size is None and row.payload is not None:
        size = len(row.payload)
    return {
        "source_topic": row.source_topic,
        "source_partition": row.source_partition,
        "source_offset": row.source_offset,
        "message_key": row.message_key,
        "reason": row.reason,
        "detail": row.detail,
        "payload": payload,
        "payload_bytes": size,
    }


@dataclass(slots=True)
class PartitionEffects:
    """What one batch changed on one partition, frozen: rows, not live incidents."""

    partition: int
    watermark: datetime | None
    incident_rows: list[dict[str, Any]] = field(default_factory=list)
    appended_incident_rows: list[dict[str, Any]] = field(default_factory=list)
    """Rows of incidents already stored whose id lists hold only the ids to append."""
    incident_ids: list[uuid.UUID] = field(default_factory=list)
    dead_letters: list[tuple[str, int]] = field(default_factory=list)
    """(source topic, offset) of the batch's dead letters on this partition."""
    timeline: list[TimelineEntry] = field(default_factory=list)
    keys: dict[Key, uuid.UUID] = field(default_factory=dict)
    next_offsets: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class BatchEffects:
    """Everything one batch writes, committed atomically by `IngestStore.save`."""

    received_at: datetime
    failures: list[tuple[LlmCallFailure, uuid.UUID]] = field(default_factory=list)
    violations: list[tuple[PolicyViolation, uuid.UUID]] = field(default_factory=list)
    commands: list[LifecycleCommand] = field(default_factory=list)
    dead_letters: list[DeadLetterRow] = field(default_factory=list)
    partitions: list[PartitionEffects] = field(default_factory=list)
