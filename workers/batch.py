"""Turning the messages taken from the merges into one batch of effects.

`build_batch` runs every taken message through the rules (`domain.replay.apply_message`) and
freezes what changed into rows and change-feed values at once: the next batch mutates the same
incidents while this one is being written, so nothing here may refer to live state.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain.contracts import LifecycleCommand, LlmCallFailure, Message, PolicyViolation, Rejection
from domain.merge import Pending
from domain.replay import Skipped, apply_message, message_id
from storage.ingest_store import BatchEffects, DeadLetterRow, PartitionEffects
from storage.rows import incident_row
from workers.changes import change_message
from workers.feed import Fetched, PartitionFeed

Taken = Sequence[tuple[PartitionFeed, Pending[Fetched]]]


@dataclass(slots=True)
class Batch:
    """A computed batch: what to write, what to publish afterwards, and its ids."""

    effects: BatchEffects
    messages: int
    changes: list[tuple[bytes, bytes]] = field(default_factory=list)
    event_ids: set[str] = field(default_factory=set)
    command_ids: set[str] = field(default_factory=set)


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
    topics: Sequence[str],
) -> Batch:
    """Apply the taken messages in order; `applied_*` hold the ids applied before this batch."""
    batch = Batch(BatchEffects(received_at=now), messages=len(taken))
    effects = batch.effects

    def is_duplicate(message: Message) -> bool:
        kind, identifier = message_id(message)
        if kind == "command":
            return identifier in applied_commands or identifier in batch.command_ids
        return identifier in applied_events or identifier in batch.event_ids

    for feed, pending in taken:
        message = pending.item.message
        outcome = apply_message(feed.aggregator, message, now, is_duplicate)
        if isinstance(outcome, Rejection):
            effects.dead_letters.append(_dead_letter(feed, pending, outcome, topics))
        elif outcome is Skipped.DUPLICATE:
            continue
        elif isinstance(message, LifecycleCommand):
            batch.command_ids.add(message.command_id)
            effects.commands.append(message)
        elif isinstance(outcome, uuid.UUID):
            if isinstance(message, LlmCallFailure):
                effects.failures.append((message, outcome))
            elif isinstance(message, PolicyViolation):
                effects.violations.append((message, outcome))
            batch.event_ids.add(message.event_id)  # type: ignore[union-attr]
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
    return PartitionEffects(
        partition=feed.partition,
        watermark=feed.aggregator.watermark,
        incident_rows=rows,
        appended_incident_rows=appended,
        incident_ids=[incident.incident_id for incident in incidents],
        timeline=changes.timeline,
        keys=changes.keys,
        next_offsets=feed.offsets_to_store(),
    )


def _dead_letter(
    feed: PartitionFeed, pending: Pending[Fetched], rejection: Rejection, topics: Sequence[str]
) -> DeadLetterRow:
    return DeadLetterRow(
        source_topic=topics[pending.source],
        source_partition=feed.partition,
        source_offset=pending.offset,
        message_key=pending.item.key,
        reason=rejection.reason.value,
        detail=rejection.detail,
        payload=pending.item.value,
    )
