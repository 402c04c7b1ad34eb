"""What a replay of the log exercises: counts per rule, command case and dead-letter reason, and the
intended against the actual outcome of every scripted command.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence

from domain.contracts import DeadLetterReason
from domain.incidents import TimelineKind
from domain.replay import Replay
from tests.scenario.log import INTENT_PREFIX, ScenarioMessage, json_object, partition_log


def coverage(result: Replay, messages: Sequence[ScenarioMessage] | None = None) -> dict[str, int]:
    """Counts of what `result` exercises, as flat `name` or `name:detail` keys.

    `incidents`, `incidents:<tenant>`, `tenants`, `overflow_incidents`, `merged_incidents`,
    `reopens`, `state:<STATE>`, `severity:<severity>`, `category:<CATEGORY>`, `timeline:<kind>`
    (every kind, zero included), `escalated_to:<severity>`, `dead_letter:<reason>` (every
    reason, zero included), `resolution:<method>` (from the timeline, `auto` included),
    `late_join_reactivations`, `applied_events`, `applied_commands`; with `messages` also
    `messages`, `duplicates` (messages that had no effect and were not dead-lettered),
    `duplicate_events` and `duplicate_commands` (ids re-sent among the parseable messages).
    """
    counts: Counter[str] = Counter()
    for kind in TimelineKind:
        counts[f"timeline:{kind.value}"] = 0
    for reason in DeadLetterReason:
        counts[f"dead_letter:{reason.value}"] = 0
    for incident in result.incidents.values():
        counts["incidents"] += 1
        counts[f"incidents:{incident.tenant_id}"] += 1
        counts["overflow_incidents"] += incident.is_overflow
        counts["merged_incidents"] += len(incident.fingerprints) > 1
        counts["reopens"] += incident.reopen_count
        counts[f"state:{incident.lifecycle_state.value}"] += 1
        counts[f"severity:{incident.severity}"] += 1
        counts[f"category:{incident.category}"] += 1
    counts["tenants"] = len({incident.tenant_id for incident in result.incidents.values()})
    for entry in result.timeline:
        counts[f"timeline:{entry.kind.value}"] += 1
        if entry.kind is TimelineKind.SEVERITY_ESCALATED:
            counts[f"escalated_to:{entry.data['to']}"] += 1
        elif entry.kind is TimelineKind.RESOLVED:
            counts[f"resolution:{entry.data['method']}"] += 1
        elif entry.kind is TimelineKind.AUTO_RESOLVED:
            counts["resolution:auto"] += 1
    for dead in result.dead_letters:
        counts[f"dead_letter:{dead.rejection.reason.value}"] += 1
    counts["late_join_reactivations"] = late_join_reactivations(result)
    counts["applied_events"] = len(result.event_incidents)
    counts["applied_commands"] = len(result.applied_commands)
    if messages is not None:
        counts["messages"] = len(messages)
        counts["duplicates"] = (
            len(messages)
            - len(result.event_incidents)
            - len(result.applied_commands)
            - len(result.dead_letters)
        )
        events, commands = resent_ids(messages)
        counts["duplicate_events"] = events
        counts["duplicate_commands"] = commands
    return dict(counts)


def late_join_reactivations(result: Replay) -> int:
    """Auto-resolutions undone by a late event (rule 2), which writes no timeline entry.

    Seen as an `auto_resolved` entry followed, without a `reopened` in between, by another
    `auto_resolved`, an `acknowledged` or a `resolved` entry, or by the incident ending open.
    """
    by_incident: dict[uuid.UUID, list[TimelineKind]] = {}
    for entry in result.timeline:
        by_incident.setdefault(entry.incident_id, []).append(entry.kind)
    ends_state = {
        TimelineKind.AUTO_RESOLVED,
        TimelineKind.ACKNOWLEDGED,
        TimelineKind.RESOLVED,
    }
    count = 0
    for incident_id, kinds in by_incident.items():
        auto_resolved = False
        for kind in kinds:
            if auto_resolved and kind in ends_state:
                count += 1
            if kind is TimelineKind.REOPENED:
                auto_resolved = False
            elif kind in ends_state:
                auto_resolved = kind is TimelineKind.AUTO_RESOLVED
        incident = result.incidents.get(incident_id)
        if auto_resolved and incident is not None and incident.is_open:
            count += 1
    return count


def resent_ids(messages: Sequence[ScenarioMessage]) -> tuple[int, int]:
    """How many parseable messages repeat an earlier event_id / command_id (same partition)."""
    seen: set[tuple[bytes, str, str]] = set()
    events = commands = 0
    for message in messages:
        body = json_object(message.value)
        if body is None:
            continue
        is_command = message.topic_kind == "commands"
        identifier = body.get("command_id" if is_command else "event_id")
        if not isinstance(identifier, str):
            continue
        marker = (message.key, "command" if is_command else "event", identifier)
        if marker in seen:
            commands += is_command
            events += not is_command
        seen.add(marker)
    return events, commands


def command_outcomes(
    messages: Sequence[ScenarioMessage], partitions: int, result: Replay
) -> list[tuple[str, str, str]]:
    """(command_id, intended, actual) for every command that states its intent in `note`.

    Outcomes: `applied`, `duplicate` (a re-sent command that was applied before: its intent is
    `duplicate` too), or a dead-letter reason; `missing` when a command vanished.
    """
    dead = {(d.partition, d.offset): d for d in result.dead_letters if d.source == 2}
    applied = set(result.applied_commands)
    outcomes: list[tuple[str, str, str]] = []
    for partition, (_, _, commands) in partition_log(messages, partitions).items():
        done: set[str] = set()
        for offset, value in enumerate(commands):
            body = json_object(value)
            note = body.get("note") if body else None
            if not (body and isinstance(note, str) and note.startswith(INTENT_PREFIX)):
                continue
            command_id = body["command_id"]
            intended = note.removeprefix(INTENT_PREFIX)
            if command_id in done:
                intended = "duplicate"
            if (partition, offset) in dead:
                actual = dead[(partition, offset)].rejection.reason.value
            elif command_id in done:
                actual = "duplicate"
            else:
                actual = "applied" if command_id in applied else "missing"
                done.add(command_id)
            outcomes.append((command_id, intended, actual))
    return outcomes
