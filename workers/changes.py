"""What the ingest worker publishes: change-feed values, dead-letter records, running counts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from storage.effects import BatchEffects, DeadLetterRow

MAX_DETAIL_HEADER_BYTES = 4096


class IngestStats:
    """Running counts for the progress log and the dev summary."""

    def __init__(self) -> None:
        self.events = 0
        self.commands = 0
        self.dead_letters = 0
        self.batches = 0
        self.seconds: dict[str, float] = {}
        """Time spent per step: lookup (dedupe reads), apply, save, publish, wait (for the
        batch in flight while the next one is ready)."""

    def spent(self, step: str, seconds: float) -> None:
        self.seconds[step] = self.seconds.get(step, 0.0) + seconds

    def __str__(self) -> str:
        steps = ", ".join(f"{step} {seconds:.1f}s" for step, seconds in self.seconds.items())
        return (
            f"{self.events:,} events, {self.commands:,} commands, {self.dead_letters:,} dead "
            f"letters in {self.batches:,} batches ({steps})"
        )

    def record(self, batch: BatchEffects) -> None:
        self.events += len(batch.failures) + len(batch.violations)
        self.commands += len(batch.commands)
        self.dead_letters += len(batch.dead_letters)
        self.batches += 1


def change_message(snapshot: dict[str, Any]) -> bytes:
    """The `incident.changes` value: an incident's `snapshot()`, which holds its version."""
    return orjson.dumps(snapshot)


@dataclass(frozen=True, slots=True)
class DeadLetterRecord:
    """A dead letter as it goes to the dead-letter topic: the original key and value (an
    absent value becomes an empty one: Kafka needs a key or a value) and the headers."""

    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]


def dead_letter_record(row: DeadLetterRow) -> DeadLetterRecord:
    """The topic copy of `row`.

    Headers: `x-error-reason`, `x-error-detail` (at most 4 KiB), `x-source-topic`,
    `x-source-partition`, `x-source-offset`; `x-value-missing: true` when the message had no
    value; `x-payload-truncated: <original size>` when the value is the stored first 64 KiB of a
    larger one (a copy sent again by the next owner of the partition).
    """
    headers = [
        ("x-error-reason", row.reason.encode()),
        ("x-error-detail", row.detail.encode("utf-8", "replace")[:MAX_DETAIL_HEADER_BYTES]),
        ("x-source-topic", row.source_topic.encode()),
        ("x-source-partition", str(row.source_partition).encode()),
        ("x-source-offset", str(row.source_offset).encode()),
    ]
    if row.payload is None:
        headers.append(("x-value-missing", b"true"))
    elif row.truncated:
        headers.append(("x-payload-truncated", str(row.payload_bytes).encode()))
    return DeadLetterRecord(row.message_key, row.payload or b"", headers)
