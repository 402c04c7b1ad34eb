"""One message through the rules, and the batch computation of a whole log.

`apply_message` is the single decision the ingest worker and `replay` share: a rejection is
dead-lettered, a duplicate has no effect, anything else goes to the aggregator. `replay` computes
from a fully written log what the worker must end with; tests compare the two.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

from domain.aggregation import PartitionAggregator, future_rejection, latest_accepted
from domain.config import AggregationConfig
from domain.contracts import (
    LifecycleCommand,
    LlmCallFailure,
    Message,
    PolicyViolation,
    Rejection,
    message_time,
    parse_message,
)
from domain.incidents import Incident, TimelineEntry
from domain.merge import Pending, merge_complete

SOURCE_MODELS: tuple[type[Message], ...] = (LlmCallFailure, PolicyViolation, LifecycleCommand)
"""The contract of each source, in merge tie-break order: failures, violations, commands."""


class Skipped(Enum):
    DUPLICATE = "duplicate"


Outcome = uuid.UUID | Rejection | Skipped | None
"""What became of a message: its incident id (signal), None (applied command), a rejection to
dead-letter, or `Skipped.DUPLICATE`."""


def message_id(message: Message) -> tuple[str, str]:
    """The idempotency key of a message: ("command", command_id) or ("event", event_id)."""
    if isinstance(message, LifecycleCommand):
        return ("command", message.command_id)
    return ("event", message.event_id)


def apply_message(
    aggregator: PartitionAggregator,
    message: Message | Rejection,
    now: datetime,
    is_duplicate: Callable[[Message], bool],
) -> Outcome:
    """Route one parsed message; `is_duplicate` says whether its id was applied before.

    Signal events share one id space (`event_id`), commands have their own (`command_id`).
    """
    if isinstance(message, Rejection):
        return message
    if is_duplicate(message):
        return Skipped.DUPLICATE
    if isinstance(message, LifecycleCommand):
        return aggregator.apply_command(message)
    return aggregator.apply_signal(message, now)


def read_message(
    source: int, value: bytes | None, latest: datetime, config: AggregationConfig
) -> tuple[datetime | None, Message | Rejection]:
    """A raw value of `source` as the merge receives it: parsed, and checked against the future
    guard when it is read (`latest`: `latest_accepted` of the wall clock then). The time is None
    for a rejection, which the merge takes as soon as it is at a head: a producer's clock far
    ahead must not hold back the messages behind it."""
    parsed = parse_message(SOURCE_MODELS[source], value)
    if isinstance(parsed, Rejection):
        return None, parsed
    future = future_rejection(parsed, latest, config)
    if future is not None:
        return None, future
    return message_time(parsed), parsed


def pending_message(
    source: int, offset: int, value: bytes | None, now: datetime, config: AggregationConfig
) -> Pending[Message | Rejection]:
    """A raw value of `source` read at wall-clock time `now`, as a merge entry."""
    time, parsed = read_message(source, value, latest_accepted(now, config), config)
    return Pending(time, source, offset, parsed)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message that was not applied, by where it was read and why."""

    source: int
    partition: int
    offset: int
    rejection: Rejection


@dataclass(slots=True)
class Replay:
    """Everything a log leads to."""

    incidents: dict[uuid.UUID, Incident] = field(default_factory=dict)
    event_incidents: dict[str, uuid.UUID] = field(default_factory=dict)
    applied_commands: list[str] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    timeline: list[TimelineEntry] = field(default_factory=list)
    watermarks: dict[int, datetime | None] = field(default_factory=dict)


def replay(
    log: Mapping[int, Sequence[Sequence[bytes | None]]],
    config: AggregationConfig,
    now: datetime,
) -> Replay:
    """Apply a fully written log: for each partition, its sources' values in offset order."""
    result = Replay()
    for partition, sources in sorted(log.items()):
        _replay_partition(result, partition, sources, config, now)
    return result


def _replay_partition(
    result: Replay,
    partition: int,
    sources: Sequence[Sequence[bytes | None]],
    config: AggregationConfig,
    now: datetime,
) -> None:
    aggregator = PartitionAggregator(config)
    applied: set[tuple[str, str]] = set()

    def seen(message: Message) -> bool:
        return message_id(message) in applied

    entries = [
        [pending_message(source, offset, value, now, config) for offset, value in enumerate(values)]
        for source, values in enumerate(sources)
    ]
    for pending in merge_complete(entries):
        outcome = apply_message(aggregator, pending.item, now, seen)
        if isinstance(outcome, Rejection):
            result.dead_letters.append(
                DeadLetter(pending.source, partition, pending.offset, outcome)
            )
        elif outcome is not Skipped.DUPLICATE:
            assert not isinstance(pending.item, Rejection)
            kind, identifier = message_id(pending.item)
            applied.add((kind, identifier))
            if isinstance(outcome, uuid.UUID):
                result.event_incidents[identifier] = outcome
            else:
                result.applied_commands.append(identifier)
    result.incidents.update(aggregator.incidents)
    result.timeline.extend(aggregator.take_changes().timeline)
    result.watermarks[partition] = aggregator.watermark
