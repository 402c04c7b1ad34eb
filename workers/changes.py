"""What the ingest worker publishes: change-feed values, dead-letter headers, running counts."""

from __future__ import annotations

import time
from typing import Any

import orjson

from storage.ingest_store import BatchEffects, DeadLetterRow


class IngestStats:
    """Running counts for the progress log and the dev summary."""

    def __init__(self) -> None:
        self.messages = 0
        self.events = 0
        self.commands = 0
        self.dead_letters = 0
        self.batches = 0
        self.incident_changes = 0
        self.first_batch_at: float | None = None
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

    def record(self, batch: BatchEffects, messages: int) -> None:
        if self.first_batch_at is None:
            self.first_batch_at = time.perf_counter()
        self.messages += messages
        self.events += len(batch.failures) + len(batch.violations)
        self.commands += len(batch.commands)
        self.dead_letters += len(batch.dead_letters)
        self.batches += 1
        self.incident_changes += sum(len(effects.incident_ids) for effects in batch.partitions)


def change_message(snapshot: dict[str, Any]) -> bytes:
    """The `incident.changes` value: an incident's `snapshot()`, which holds its version."""
    return orjson.dumps(snapshot)


def dead_letter_headers(row: DeadLetterRow) -> list[tuple[str, bytes]]:
    return [
        ("x-error-reason", row.reason.encode()),
        ("x-error-detail", row.detail.encode()[:4096]),
        ("x-source-topic", row.source_topic.encode()),
        ("x-source-partition", str(row.source_partition).encode()),
        ("x-source-offset", str(row.source_offset).encode()),
    ]
