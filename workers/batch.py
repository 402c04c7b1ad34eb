"""Turning the messages taken from the merges into one batch of effects.

`build_batch` runs every taken message through the rules (`domain.replay.apply_message`) and
freezes what changed into rows and change-feed values at once: the next batch mutates the same
incidents while this one is being written, so nothing here may refer to live state.

A message that PostgreSQL refused for a data reason (found by halving failed batches, see
`workers.ingest`) is named in `refused`: it is dead-lettered as `storage_rejected` instead of
being applied.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain.contracts import (
    DeadLetterReason,
    LifecycleCommand,
    LlmCallFailure,
    Message,
    PolicyViolation,
    Rejection,
)
from domain.merge import Pending
from domain.replay import Skipped, apply_message, message_id
from storage.effects import BatchEffects, DeadLetterRow, PartitionEffects
from storage.rows import incident_row
from workers.changes import change_message
from workers.feed import Fetched, PartitionFeed

Taken = Sequence[tuple[PartitionFeed, Pending[Fetched]]]
Source = tuple[str, int, int]
"""Where a message was read: (topic, partition, offset)."""


@dataclass(slots=True)
class Outcomes:
    """What became of a batch's messages, counted per input topic (for metrics and the guard)."""

    applied: Counter[str] = field(default_factory=Counter)
    duplicates: Counter[str] = field(default_factory=Counter)
    dead_letters: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(topic, reason) -> count."""
    by_partition: dict[int, list[str | None]] = field(default_factory=dict)
    """Per partition, each message's dead-letter reason or None, in order."""


@dataclass(slots=True)
class Batch:
    """A computed batch: what to write, what to publish afterwards, and its ids."""

    effects: BatchEffects
    sources: list[Source] = field(default_factory=list)
    """Every message of the batch, in the order it was applied."""
    changes: list[tuple[bytes, bytes]] = field(default_factory=list)
    event_ids: set[str] = field(default_factory=set)
    command_ids: set[str] = field(default_factory=set)
    outcomes: Outcomes = field(default_factory=Outcomes)

    @property
    def messages(self) -> int:
        return len(self.sources)


def ids_of(taken: Taken) -> tuple[list[str], list[str]]:
    """The event ids and command ids of the parsed messages taken."""
    event_ids: list[str] = []
    command_ids: list[str] = []
    for _, pending in taken:
        message = pending.item.message
        if isinstance(message, LifecycleCommand):
            command_ids.append(message.command_id)
        elif not isinstance(message, Rejection):
            event_ids.append(message.event_id)
    return event_ids, command_ids


def named_incidents(taken: Taken) -> dict[uuid.UUID, tuple[PartitionFeed, str]]:
    """Incidents that commands name but their partition's aggregator does not hold."""
    wanted: dict[uuid.UUID, tuple[PartitionFeed, str]] = {}
    for feed, pending in taken:
        message = pending.item.message
        if isinstance(message, LifecycleCommand):
            try:
                incident_id = uuid.UUID(message.incident_id)
            except ValueError:
                continue
            if not feed.aggregator.knows(incident_id):
                wanted[incident_id] = (feed, message.tenant_id)
    return wanted


def build_batch(
    taken: Taken,
    idle: Sequence[PartitionFeed],
    *,
    now: datetime,
    applied_events: set[str],
    applied_commands: set[str],
    refused: Mapping[Source, str] | None = None,
) -> Batch:
    """Apply the taken messages in order; `applied_*` hold the ids applied before this batch,
    `refused` the messages PostgreSQL refused (with the database's message)."""
    batch = Batch(BatchEffects(received_at=now))
    effects, outcomes = batch.effects, batch.outcomes
    refused = refused or {}

    def is_duplicate(message: Message) -> bool:
        kind, identifier = message_id(message)
        if kind == "command":
            return identifier in applied_commands or identifier in batch.command_ids
        return identifier in applied_events or identifier in batch.event_ids

    for feed, pending in taken:
        topic = feed.topics[pending.source]
        source = (topic, feed.partition, pending.offset)
        batch.sources.append(source)
        message = pending.item.message
        refusal = refused.get(source)
        if refusal is not None:
            outcome: Any = Rejection(DeadLetterReason.STORAGE_REJECTED, refusal)
        else:
            outcome = apply_message(feed.aggregator, message, now, is_duplicate)
        reason: str | None = None
        if isinstance(outcome, Rejection):
            reason = outcome.reason.value
            effects.dead_letters.append(_dead_letter(source, pending, outcome))
            outcomes.dead_letters[(topic, reason)] += 1
        elif outcome is Skipped.DUPLICATE:
            outcomes.duplicates[topic] += 1
        elif isinstance(message, LifecycleCommand):
            batch.command_ids.add(message.command_id)
            effects.commands.append(message)
            outcomes.applied[topic] += 1
        elif isinstance(outcome, uuid.UUID):
            if isinstance(message, LlmCallFailure):
                effects.failures.append((message, outcome))
            elif isinstance(message, PolicyViolation):
                effects.violations.append((message, outcome))
            batch.event_ids.add(message.event_id)  # type: ignore[union-attr]
            outcomes.applied[topic] += 1
        outcomes.by_partition.setdefault(feed.partition, []).append(reason)
    for feed in dict.fromkeys([feed for feed, _ in taken] + list(idle)):
        effects.partitions.append(_freeze(feed, batch))
    return batch


def _freeze(feed: PartitionFeed, batch: Batch) -> PartitionEffects:
    changes = feed.aggregator.take_changes()
    incidents = list(changes.incidents.values())
    rows: list[dict[str, Any]] = []
    appended: list[dict[str, Any]] = []
    for incident in incidents:
        snapshot = incident.snapshot()
        batch.changes.append((incident.tenant_id.encode(), change_message(snapshot)))
        # The id lists only grow: a stored incident gets just their new tail, not up to M ids.
        stored = feed.stored_sizes.get(incident.incident_id)
        row = incident_row(
            incident, feed.partition, lists_from=stored or (0, 0), breakdown=snapshot["breakdown"]
        )
        (rows if stored is None else appended).append(row)
        feed.stored_sizes[incident.incident_id] = (
            len(incident.related_call_ids),
            len(incident.run_ids),
        )
    dead_letters = [
        (row.source_topic, row.source_offset)
        for row in batch.effects.dead_letters
        if row.source_partition == feed.partition
    ]
    return PartitionEffects(
        partition=feed.partition,
        watermark=feed.aggregator.watermark,
        incident_rows=rows,
        appended_incident_rows=appended,
        incident_ids=[incident.incident_id for incident in incidents],
        dead_letters=dead_letters,
        timeline=changes.timeline,
        keys=changes.keys,
        next_offsets=feed.offsets_to_store(),
    )


def _dead_letter(source: Source, pending: Pending[Fetched], rejection: Rejection) -> DeadLetterRow:
    topic, partition, offset = source
    return DeadLetterRow(
        source_topic=topic,
        source_partition=partition,
        source_offset=offset,
        message_key=pending.item.key,
        reason=rejection.reason.value,
        detail=rejection.detail,
        payload=pending.item.value,
    )
