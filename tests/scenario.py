"""A deterministic test log for the end-to-end and crash tests of the ingest worker.

`build_scenario` returns the messages in publish order; `partition_log` lays them out as a producer
keyed by tenant does (aiokafka's default partitioner); `expected` is what the worker must end with
(`domain.replay.replay` over that layout with `SCENARIO_CONFIG`); `coverage` counts what a result
exercises, so a test can check that every rule, command case and dead-letter reason is hit.

The log is written in phases. Background traffic (a steady failure and violation stream per
tenant, with stragglers and re-sent duplicates) is planned for the whole span first; scripted
episodes then plan their events and, to aim commands at real incidents, pause at checkpoints where
the partial log of the tenant's partition is replayed. Every command carries its intended outcome
in `note` (`scenario expects <outcome>`), checked by `command_outcomes` against a replay.

Event times lie between `now - 2 days` and `now - 18 hours`, except the deliberate future and
too-late events, so the future guard fires only where meant to. Rejected on purpose: invalid JSON,
schema violations (missing field, bad enum, naive timestamp, ...), exactly one value over 1 MiB, a
future and a 10-day-old event, unknown incidents and invalid transitions.
"""

from __future__ import annotations

import heapq
import itertools
import json
import random
import uuid
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from functools import partial
from typing import Any

from aiokafka.partitioner import murmur2

from domain.aggregation import AggregationConfig
from domain.contracts import MAX_MESSAGE_BYTES, DeadLetterReason
from domain.incidents import Incident, LifecycleState, TimelineKind
from domain.replay import Replay, replay

SCENARIO_PARTITIONS = 8
"""The partition count the tests create their topics with."""

SCENARIO_CONFIG = AggregationConfig(
    auto_resolve_after_seconds=900,
    aggregation_window_seconds=300,
    incident_cooldown_seconds=60,
    max_incidents_per_tenant_per_hour=5,
    max_related_calls_per_incident=50,
    severity_thresholds=(10, 50, 200),
    max_future_skew_seconds=300,
    max_lateness_seconds=7 * 24 * 3600,
)

TOPIC_KINDS = ("failures", "violations", "commands")
"""Topic kinds in merge tie-break order: index = source number in `domain.replay`."""

TENANT_NAMES = (
    "acme",
    "globex",
    "initech",
    "umbrella",
    "hooli",
    "stark",
    "wayne",
    "wonka",
    "cyberdyne",
    "tyrell",
)
"""Role tenants first (acme lifecycle, globex storms, initech hourly cap, umbrella policies and
cross-tenant commands, hooli failure types, stark dead letters); initech and umbrella share
partition 2 of 8. More tenants than names are called `tenant-NN`."""

SPAN = timedelta(hours=30)
STRAGGLER_RATE = 0.01
ADJACENT_DUPLICATE_RATE = 0.01
FAR_DUPLICATE_RATE = 0.003

MIN = timedelta(minutes=1)
SEC = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class ScenarioMessage:
    """One message as published: its topic kind, key (the tenant id) and value."""

    topic_kind: str  # "failures" | "violations" | "commands"
    key: bytes
    value: bytes


class ScenarioError(RuntimeError):
    """The scripted story did not unfold as planned (a rule changed, or the script is wrong)."""


def partition_for(key: bytes, partitions: int) -> int:
    """aiokafka's DefaultPartitioner: `(murmur2(key) & 0x7FFFFFFF) % partitions`."""
    hashed: int = murmur2(key)
    return (hashed & 0x7FFFFFFF) % partitions


def partition_log(
    messages: Iterable[ScenarioMessage], partitions: int
) -> dict[int, list[list[bytes]]]:
    """Every partition (even an empty one) -> [failures, violations, commands] in publish order."""
    log: dict[int, list[list[bytes]]] = {p: [[], [], []] for p in range(partitions)}
    for message in messages:
        source = TOPIC_KINDS.index(message.topic_kind)
        log[partition_for(message.key, partitions)][source].append(message.value)
    return log


def expected(messages: Sequence[ScenarioMessage], partitions: int, now: datetime) -> Replay:
    """What a worker must end with after reading every message (idle advance off)."""
    return replay(partition_log(messages, partitions), SCENARIO_CONFIG, now)


def scenario_env() -> dict[str, str]:
    """`SCENARIO_CONFIG` as the INCIDENTFLOW_* environment of a worker, idle advance off."""
    config = SCENARIO_CONFIG
    return {
        "INCIDENTFLOW_AUTO_RESOLVE_AFTER_SECONDS": str(config.auto_resolve_after_seconds),
        "INCIDENTFLOW_AGGREGATION_WINDOW_SECONDS": str(config.aggregation_window_seconds),
        "INCIDENTFLOW_INCIDENT_COOLDOWN_SECONDS": str(config.incident_cooldown_seconds),
        "INCIDENTFLOW_MAX_INCIDENTS_PER_TENANT_PER_HOUR": str(
            config.max_incidents_per_tenant_per_hour
        ),
        "INCIDENTFLOW_MAX_RELATED_CALLS_PER_INCIDENT": str(config.max_related_calls_per_incident),
        "INCIDENTFLOW_SEVERITY_THRESHOLDS": json.dumps(list(config.severity_thresholds)),
        "INCIDENTFLOW_MAX_FUTURE_SKEW_SECONDS": str(config.max_future_skew_seconds),
        "INCIDENTFLOW_MAX_LATENESS_SECONDS": str(config.max_lateness_seconds),
        "INCIDENTFLOW_IDLE_WATERMARK_ADVANCE": "false",
    }


def tenant_names(count: int) -> list[str]:
    names = list(TENANT_NAMES[:count])
    names += [f"tenant-{index:02d}" for index in range(len(names) + 1, count + 1)]
    return names


# -- coverage ---------------------------------------------------------------------------------


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
        body = _json_object(message.value)
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
            body = _json_object(value)
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


def _json_object(value: bytes) -> dict[str, Any] | None:
    if len(value) > MAX_MESSAGE_BYTES:
        return None
    try:
        body = json.loads(value)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


# -- building ---------------------------------------------------------------------------------

INTENT_PREFIX = "scenario expects "

Checkpoint = tuple[datetime, str]
"""An episode pauses until (event time, tenant): the tenant's partition is then replayed."""
Episode = Generator[Checkpoint, "View", None]


class View:
    """The replayed state of one partition at a checkpoint, for an episode to aim commands."""

    def __init__(self, result: Replay, at: datetime) -> None:
        self.result = result
        self.at = at

    def incident(self, event_id: str) -> Incident:
        """The incident an applied event went to."""
        incident_id = self.result.event_incidents.get(event_id)
        if incident_id is None:
            raise ScenarioError(f"{self.at}: event {event_id} was not applied")
        return self.result.incidents[incident_id]

    def expect(self, event_id: str, state: LifecycleState, **fields: Any) -> Incident:
        """The incident of `event_id`, which must be in `state` with the given field values."""
        incident = self.incident(event_id)
        actual = {"lifecycle_state": incident.lifecycle_state}
        actual |= {name: getattr(incident, name) for name in fields}
        wanted = {"lifecycle_state": state} | fields
        if actual != wanted:
            raise ScenarioError(
                f"{self.at}: incident of {event_id}: expected {wanted}, found {actual}"
            )
        return incident


class Builder:
    """Plans messages by publish time and replays the partial log at checkpoints."""

    def __init__(self, seed: int, now: datetime, tenants: list[str], partitions: int) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.now = now
        self.t0 = (now - timedelta(days=2)).astimezone(UTC)
        self.t0 = self.t0.replace(second=0, microsecond=0)
        self.end = self.t0 + SPAN
        self.tenants = tenants
        self.partitions = partitions
        self.log: list[ScenarioMessage] = []
        self.flushed: datetime | None = None
        self.sent: dict[str, ScenarioMessage] = {}
        self.background: dict[str, tuple[str, str]] = {}
        self.first_background: dict[str, str] = {}
        self.known: dict[str, uuid.UUID] = {}
        self._planned: list[tuple[datetime, int, ScenarioMessage]] = []
        self._seq = itertools.count()
        self._ids = itertools.count(1)
        self._commands = itertools.count(1)

    def m(self, minutes: float, seconds: float = 0) -> datetime:
        """The event time `minutes` (and `seconds`) after the scenario start."""
        return self.t0 + timedelta(minutes=minutes, seconds=seconds)

    # -- planning -------------------------------------------------------------------------------

    def plan(self, publish_at: datetime, kind: str, tenant: str, value: bytes) -> ScenarioMessage:
        if self.flushed is not None and publish_at <= self.flushed:
            raise ScenarioError(f"planned at {publish_at}, already published up to {self.flushed}")
        message = ScenarioMessage(kind, tenant.encode(), value)
        heapq.heappush(self._planned, (publish_at, next(self._seq), message))
        return message

    def event_id(self) -> str:
        return f"ev-{self.seed}-{next(self._ids):05d}"

    def failure(
        self,
        tenant: str,
        at: datetime,
        model: str,
        failure_type: str,
        *,
        publish_at: datetime | None = None,
        **fields: Any,
    ) -> str:
        """Plan an LLM call failure of `model` ("provider/model"); return its event_id."""
        provider, _, model_name = model.partition("/")
        event_id = fields.pop("event_id", None) or self.event_id()
        body: dict[str, Any] = {
            "event_id": event_id,
            "tenant_id": tenant,
            "occurred_at": _rfc3339(at, self.rng),
            "run_id": fields.pop("run_id", None) or f"run-{tenant}-{event_id[-5:-1]}",
            "provider": provider,
            "model": model_name,
            "failure_type": failure_type,
            "agent_id": f"agent-{self.rng.randrange(4)}",
            "duration_ms": self.rng.randrange(50, 60_000),
            "tokens_in": self.rng.randrange(0, 4000),
            "tokens_out": self.rng.randrange(0, 800),
            "cost_usd": _cost(self.rng),
        } | fields
        self._send(event_id, publish_at or at, "failures", tenant, body)
        return event_id

    def violation(
        self,
        tenant: str,
        at: datetime,
        policy_id: str,
        *,
        publish_at: datetime | None = None,
        **fields: Any,
    ) -> str:
        """Plan a policy violation of `policy_id`; `policy_type`, `severity` etc. in `fields`."""
        event_id = fields.pop("event_id", None) or self.event_id()
        body: dict[str, Any] = {
            "event_id": event_id,
            "tenant_id": tenant,
            "occurred_at": _rfc3339(at, self.rng),
            "run_id": f"run-{tenant}-{event_id[-5:-1]}",
            "policy_id": policy_id,
            "violated_rule": f"rule {policy_id} must hold",
            "action_taken": self.rng.choice(["blocked", "redacted", "flagged", "allowed"]),
            "cost_usd": _cost(self.rng),
        } | fields
        self._send(event_id, publish_at or at, "violations", tenant, body)
        return event_id

    def command(
        self,
        tenant: str,
        at: datetime,
        incident_id: uuid.UUID | str,
        action: str,
        *,
        expect: str,
        **fields: Any,
    ) -> str:
        """Plan a lifecycle command issued at `at` whose intended outcome is `expect`."""
        command_id = f"cmd-{self.seed}-{next(self._commands):03d}"
        body: dict[str, Any] = {
            "command_id": command_id,
            "tenant_id": tenant,
            "incident_id": str(incident_id),
            "action": action,
            "issued_at": _rfc3339(at, None),
            "issued_by": "oncall@" + tenant,
            "note": INTENT_PREFIX + expect,
        } | fields
        self._send(command_id, at, "commands", tenant, body)
        return command_id

    def raw(self, publish_at: datetime, kind: str, tenant: str, value: bytes) -> None:
        self.plan(publish_at, kind, tenant, value)

    def resend(self, identifier: str, publish_at: datetime) -> None:
        """Publish the exact bytes of an earlier message again (a redelivery)."""
        message = self.sent[identifier]
        self.plan(publish_at, message.topic_kind, message.key.decode(), message.value)

    def tick(self, tenant: str, at: datetime) -> str:
        """One extra event of the tenant's background failure stream (moves its watermark)."""
        model, failure_type = self.background[tenant]
        return self.failure(tenant, at, model, failure_type)

    def _send(
        self, identifier: str, publish_at: datetime, kind: str, tenant: str, body: dict[str, Any]
    ) -> None:
        value = json.dumps(body, separators=(",", ":")).encode()
        self.sent[identifier] = self.plan(publish_at, kind, tenant, value)

    # -- running --------------------------------------------------------------------------------

    def flush(self, until: datetime | None) -> None:
        """Publish everything planned up to `until` (everything when None)."""
        while self._planned and (until is None or self._planned[0][0] <= until):
            self.log.append(heapq.heappop(self._planned)[2])
        if until is not None:
            self.flushed = until

    def view(self, at: datetime, tenant: str) -> View:
        partition = partition_for(tenant.encode(), self.partitions)
        log = partition_log(self.log, self.partitions)
        return View(replay({partition: log[partition]}, SCENARIO_CONFIG, self.now), at)

    def run(self, episodes: Iterable[Episode]) -> None:
        """Drive the episodes through their checkpoints in time order."""
        waiting: list[tuple[datetime, int, str, Episode]] = []

        def advance(index: int, episode: Episode, view: View | None) -> None:
            try:
                at, tenant = episode.send(view) if view is not None else next(episode)
            except StopIteration:
                return
            heapq.heappush(waiting, (at, index, tenant, episode))

        for index, episode in enumerate(episodes):
            advance(index, episode, None)
        while waiting:
            at, index, tenant, episode = heapq.heappop(waiting)
            self.flush(at)
            advance(index, episode, self.view(at, tenant))
        self.flush(None)


def _rfc3339(at: datetime, rng: random.Random | None) -> str:
    """RFC 3339 with an offset: mostly +00:00, sometimes `Z` or another zone."""
    draw = rng.random() if rng is not None else 0.5
    if draw < 0.03:
        return at.astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat()
    if draw < 0.10:
        return at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return at.astimezone(UTC).isoformat()


def _cost(rng: random.Random) -> str | float | int:
    draw = rng.random()
    if draw < 0.2:
        return 0
    if draw < 0.3:
        return round(rng.random(), 2)
    return f"{rng.random() / 10:.10f}"  # 10 places: rounded half-even to 8 on parse


# -- the story --------------------------------------------------------------------------------

BACKGROUND_FAILURES = (
    ("openai/gpt-4o-mini", "exception"),
    ("azure/gpt-4o", "invalid_output"),
    ("cohere/command-r", "exception"),
    ("anthropic/claude-3-haiku", "rate_limited"),
    ("mistral/mistral-large", "exception"),
    ("openai/gpt-4o", "invalid_output"),
)


def plan_background(b: Builder, min_events: int) -> None:
    """A steady failure stream and a slower violation stream per tenant over the whole span.

    Gaps stay under R, so each stream is one ACTIVE incident that escalates to critical. About 1%
    of the events are stragglers (published minutes late), 1% are re-sent at once and 0.3% hours
    later.
    """
    span = SPAN.total_seconds()
    interval = len(b.tenants) * span * 1.25 / (min_events * 1.05)
    interval = min(max(interval, 5.0), 180.0)
    for index, tenant in enumerate(b.tenants):
        b.background[tenant] = BACKGROUND_FAILURES[index % len(BACKGROUND_FAILURES)]
        start = b.t0 + timedelta(seconds=7 * index)
        model, failure_type = b.background[tenant]
        for n, at in enumerate(_steady(b.rng, start, b.end, interval)):
            event_id = _background_event(
                b,
                at,
                partial(b.failure, tenant, model=model, failure_type=failure_type),
            )
            if n == 0:
                b.first_background[tenant] = event_id
        policy_type = None if index == 2 else ["TONE", "SAFETY", "PII"][index % 3]
        for at in _steady(b.rng, start + 30 * SEC, b.end, 4 * interval):
            _background_event(
                b,
                at,
                partial(
                    b.violation,
                    tenant,
                    policy_id=f"{tenant}-guardrail",
                    policy_type=policy_type,
                    severity="low",
                ),
            )


def _steady(rng: random.Random, start: datetime, end: datetime, interval: float) -> list[datetime]:
    times = []
    at = start
    while at < end:
        times.append(at)
        at += timedelta(seconds=round(interval * rng.uniform(0.8, 1.2), 3))
    return times


def _background_event(b: Builder, at: datetime, make: Callable[..., str]) -> str:
    draw = b.rng.random()
    if draw < STRAGGLER_RATE:
        return make(at=at, publish_at=at + timedelta(seconds=b.rng.randrange(30, 240)))
    event_id = make(at=at, publish_at=None)
    if draw < STRAGGLER_RATE + ADJACENT_DUPLICATE_RATE:
        b.resend(event_id, at)
    elif draw < STRAGGLER_RATE + ADJACENT_DUPLICATE_RATE + FAR_DUPLICATE_RATE:
        b.resend(event_id, at + timedelta(hours=b.rng.randrange(1, 6)))
    return event_id


def acme_lifecycle(b: Builder) -> Episode:
    """Ack ACTIVE, ack ACKED, resolve ACKED (rollback), late join into it, reopen within W,
    auto-resolve, a new incident after W, resolve ACTIVE (manual_closure), commands on RESOLVED."""
    tenant, model = "acme", "anthropic/claude-3-5-sonnet"
    first = [b.failure(tenant, b.m(60, 20 * i), model, "timeout") for i in range(30)]
    view = yield b.m(71), tenant
    incident_id = view.expect(first[0], LifecycleState.ACTIVE, severity="medium").incident_id
    ack = b.command(tenant, b.m(71, 1), incident_id, "acknowledge", expect="applied")
    b.resend(ack, b.m(71, 2))
    b.resend(first[0], b.m(71, 3))
    for i in range(24):
        b.failure(tenant, b.m(72, 20 * i), model, "timeout")
    view = yield b.m(81), tenant
    view.expect(first[0], LifecycleState.ACKED, calls_affected=54, severity="high")
    b.command(tenant, b.m(81, 1), incident_id, "acknowledge", expect="invalid_transition")
    b.command(
        tenant,
        b.m(82, 1),
        incident_id,
        "resolve",
        resolution_method="rollback",
        expect="applied",
    )
    b.tick(tenant, b.m(82, 30))
    late = b.failure(tenant, b.m(79, 50), model, "timeout", publish_at=b.m(83))
    view = yield b.m(83, 10), tenant
    view.expect(late, LifecycleState.RESOLVED, calls_affected=55, reopen_count=0)
    for i in range(15):
        b.failure(tenant, b.m(85, 20 * i), model, "timeout")
    view = yield b.m(90, 30), tenant
    view.expect(first[0], LifecycleState.ACTIVE, reopen_count=1)
    b.resend(first[5], b.m(600))
    again = [b.failure(tenant, b.m(112, 20 * i), model, "timeout") for i in range(10)]
    view = yield b.m(116), tenant
    view.expect(first[0], LifecycleState.RESOLVED, resolution_method="auto")
    second = view.expect(again[0], LifecycleState.ACTIVE, reopen_count=0).incident_id
    if second == incident_id:
        raise ScenarioError("an event after W joined the old incident")
    b.command(
        tenant,
        b.m(116, 1),
        second,
        "resolve",
        resolution_method="manual_closure",
        expect="applied",
    )
    b.command(tenant, b.m(117, 1), second, "resolve", expect="invalid_transition")
    b.command(tenant, b.m(118, 1), second, "acknowledge", expect="invalid_transition")


def acme_policy(b: Builder) -> Episode:
    """Resolve ACTIVE (manual), a far-apart duplicate command, a new incident after W."""
    tenant = "acme"
    first = [
        b.violation(tenant, b.m(65, 30 * i), "pii-redaction", policy_type="PII", severity="medium")
        for i in range(12)
    ]
    view = yield b.m(76), tenant
    incident = view.expect(first[0], LifecycleState.ACTIVE, category="POLICY_PII")
    resolve = b.command(
        tenant,
        b.m(76, 1),
        incident.incident_id,
        "resolve",
        resolution_method="manual",
        expect="applied",
    )
    b.resend(resolve, b.m(200))
    later = [
        b.violation(tenant, b.m(90, 30 * i), "pii-redaction", policy_type="PII", severity="high")
        for i in range(6)
    ]
    view = yield b.m(120), tenant
    view.expect(first[0], LifecycleState.RESOLVED, resolution_method="manual")
    view.expect(later[0], LifecycleState.RESOLVED, resolution_method="auto", severity="high")


def acme_late_joins(b: Builder) -> Episode:
    """Late joins into an auto-resolved incident: one keeps it resolved, one re-activates it."""
    tenant, model = "acme", "google/gemini-1.5-pro"
    first = [b.failure(tenant, b.m(180, 30 * i), model, "invalid_output") for i in range(21)]
    b.tick(tenant, b.m(207, 30))
    kept = b.failure(tenant, b.m(191), model, "invalid_output", publish_at=b.m(208))
    view = yield b.m(208, 2), tenant
    view.expect(kept, LifecycleState.RESOLVED, resolved_at=b.m(206), resolution_method="auto")
    woken = b.failure(tenant, b.m(194), model, "invalid_output", publish_at=b.m(208, 5))
    view = yield b.m(208, 15), tenant
    incident = view.expect(woken, LifecycleState.ACTIVE, resolved_at=None, reopen_count=0)
    if view.incident(first[0]) is not incident:
        raise ScenarioError("late events went to another incident")
    b.command(tenant, b.m(208, 30), incident.incident_id, "acknowledge", expect="applied")
    view = yield b.m(230), tenant
    view.expect(woken, LifecycleState.ACKED)
    b.command(tenant, b.m(230, 1), incident.incident_id, "resolve", expect="applied")


def globex_storms(b: Builder) -> Episode:
    """Storm merge across models, a new incident just past C, reopen through a merged key,
    resolve with the default method, and a rate-limit storm; a budget breach is critical."""
    tenant = "globex"
    models = ["openai/gpt-4o", "openai/gpt-4o-mini", "openai/gpt-4-turbo", "openai/gpt-4.1"]
    starts = [b.m(120), b.m(120, 20), b.m(120, 45), b.m(121, 30)]
    heads = [
        b.failure(tenant, at, model, "timeout") for at, model in zip(starts, models, strict=True)
    ]
    for i in range(24):
        for j, model in enumerate(models):
            b.failure(tenant, b.m(122, 20 * i + 3 * j), model, "timeout")
    view = yield b.m(131), tenant
    storm = view.expect(
        heads[0], LifecycleState.ACTIVE, fingerprints=[f"{model}/timeout" for model in models[:3]]
    )
    b.known["globex_storm"] = storm.incident_id
    for head in heads[1:3]:
        if view.incident(head) is not storm:
            raise ScenarioError("storm merge did not happen")
    other = view.expect(heads[3], LifecycleState.ACTIVE, fingerprints=[f"{models[3]}/timeout"])
    b.command(tenant, b.m(135), other.incident_id, "resolve", expect="applied")
    reopen_at = storm.last_event_at + SCENARIO_CONFIG.auto_resolve_after + 2 * MIN
    b.failure(tenant, reopen_at, models[1], "timeout")
    view = yield reopen_at + 10 * SEC, tenant
    view.expect(heads[0], LifecycleState.ACTIVE, reopen_count=1)
    for i in range(5):
        b.failure(tenant, b.m(240, 40 * i), "openai/gpt-4o", "budget_exceeded")
        b.failure(tenant, b.m(250, 10 * i), "openai/gpt-4o", "rate_limited")
        b.failure(tenant, b.m(250, 10 * i + 5), "openai/o1", "rate_limited")


def initech_cap(b: Builder) -> Episode:
    """Past the hourly cap: overflow created, joined, escalated, auto-resolved, reopened and
    created anew; a reopen while capped; ack and resolve of the overflow incident."""
    tenant, c0 = "initech", 300
    keys = [
        b.failure(tenant, b.m(c0 + 2 * k, 20 * i), f"vertex/gemini-flash-{k}", "timeout")
        for k in range(5)
        for i in range(3)
    ]
    overflow = b.failure(tenant, b.m(c0 + 10), "vertex/palm-2", "exception")
    b.violation(tenant, b.m(c0 + 11), "initech-pii", policy_type="PII", severity="low")
    b.failure(tenant, b.m(c0 + 12), "vertex/gemini-ultra", "budget_exceeded")
    for i in range(6):
        b.failure(tenant, b.m(c0 + 12, 30 + 20 * i), "vertex/text-bison", "content_filtered")
    b.failure(tenant, b.m(c0 + 15), "vertex/palm-2", "exception")
    b.tick(tenant, b.m(c0 + 15, 50))
    view = yield b.m(c0 + 16), tenant
    view.expect(overflow, LifecycleState.ACTIVE, is_overflow=True, severity="critical")
    view.expect(keys[0], LifecycleState.RESOLVED, resolution_method="auto")
    b.failure(tenant, b.m(c0 + 18), "vertex/gemini-flash-0", "timeout")
    for i in range(5):
        b.failure(tenant, b.m(c0 + 32, 30 * i), "vertex/chat-bison", "invalid_output")
    view = yield b.m(c0 + 35), tenant
    view.expect(keys[0], LifecycleState.RESOLVED, reopen_count=1, resolution_method="auto")
    first = view.expect(overflow, LifecycleState.ACTIVE, reopen_count=1)
    renewed = [
        b.failure(tenant, b.m(c0 + 56, 30 * i), "vertex/codey", "provider_unavailable")
        for i in range(5)
    ]
    view = yield b.m(c0 + 58, 30), tenant
    second = view.expect(renewed[0], LifecycleState.ACTIVE, is_overflow=True)
    view.expect(overflow, LifecycleState.RESOLVED, resolution_method="auto")
    if second is first:
        raise ScenarioError("the overflow incident was not created anew")
    b.command(tenant, b.m(c0 + 58, 40), second.incident_id, "acknowledge", expect="applied")
    b.failure(tenant, b.m(c0 + 70), "vertex/imagen", "exception")
    view = yield b.m(c0 + 71), tenant
    view.expect(renewed[0], LifecycleState.ACKED)
    b.command(
        tenant,
        b.m(c0 + 71, 1),
        second.incident_id,
        "resolve",
        resolution_method="rollback",
        expect="applied",
    )


def umbrella_policies(b: Builder) -> Episode:
    """Violations with and without policy_type, custom fingerprints, every severity and cause,
    a violation storm; commands naming unknown or another tenant's incidents."""
    tenant = "umbrella"
    for i in range(12):
        b.violation(
            tenant,
            b.m(360, 30 * i),
            "pii-guard",
            policy_type="PII",
            severity="low",
            evidence={"field": "email", "sample": f"u{i}@example.com"},
        )
    for i, severity in enumerate(["low", "low", "medium", "high", "low"]):
        b.violation(
            tenant,
            b.m(375, 40 * i),
            "toxicity-filter",
            policy_type="SAFETY",
            severity=severity,
            cause_type="HUMAN",
            reason="toxic reply",
        )
    legacy = b.violation(
        tenant,
        b.m(390),
        "legacy-rule",
        severity="critical",
        cause_type="SYSTEM",
        policy_type=None,
        action_taken=None,
    )
    for i in range(1, 4):
        b.violation(
            tenant, b.m(390, 45 * i), "legacy-rule", severity="critical", cause_type="SYSTEM"
        )
    for i in range(10):
        policy = "acc-numbers" if i % 2 else "acc-dates"
        b.violation(
            tenant,
            b.m(405, 30 * i),
            policy,
            policy_type="CONTENT_ACCURACY",
            fingerprint="accuracy-cluster",
            evaluated_value="42",
            threshold_condition="== 41",
        )
    for i in range(8):
        model = "openai/gpt-4o" if i % 2 else "anthropic/claude-3-opus"
        b.failure(
            tenant,
            b.m(420, 30 * i),
            model,
            ["timeout", "exception"][i % 2],
            fingerprint="checkout-flow",
            call_id=f"call-umbrella-{i // 2}",
        )
    email = b.violation(tenant, b.m(435), "pii-email", policy_type="PII", severity="high")
    phone = b.violation(tenant, b.m(435, 30), "pii-phone", policy_type="PII", severity="medium")
    view = yield b.m(436), tenant
    view.expect(legacy, LifecycleState.RESOLVED, category="POLICY_VIOLATION", cause_type="SYSTEM")
    merged = view.expect(email, LifecycleState.ACTIVE, fingerprints=["pii-email", "pii-phone"])
    if view.incident(phone) is not merged:
        raise ScenarioError("violation storm did not merge")
    view = yield b.m(437), "initech"
    neighbour = view.incident(b.first_background["initech"]).incident_id
    b.command(tenant, b.m(437, 1), neighbour, "acknowledge", expect="unknown_incident")
    b.command("acme", b.m(437, 2), b.known["globex_storm"], "resolve", expect="unknown_incident")
    missing = uuid.uuid5(uuid.NAMESPACE_URL, f"incidentflow:missing-{b.seed}")
    b.command("acme", b.m(437, 3), missing, "acknowledge", expect="unknown_incident")
    b.command("acme", b.m(437, 4), "not-a-uuid", "resolve", expect="unknown_incident")


def hooli_failure_types(b: Builder) -> Episode:
    """Every failure_type (one new key each 15 minutes: under the cap), shared call ids,
    a custom failure fingerprint across models."""
    tenant = "hooli"
    kinds = [
        ("openai/gpt-4o", "timeout", 12),
        ("openai/gpt-4o", "exception", 8),
        ("openai/gpt-4o", "invalid_output", 8),
        ("openai/gpt-4o", "rate_limited", 8),
        ("openai/gpt-4o", "budget_exceeded", 3),
        ("anthropic/claude-3-opus", "content_filtered", 6),
        ("google/gemini-1.5-pro", "provider_unavailable", 60),
    ]
    heads: dict[str, str] = {}
    for slot, (model, failure_type, count) in enumerate(kinds):
        for i in range(count):
            fields: dict[str, Any] = {"metadata": {"region": "eu-west-1", "try": i}}
            if failure_type == "timeout":
                fields["call_id"] = f"call-hooli-{i // 3}"
            event_id = b.failure(
                tenant, b.m(480 + 15 * slot, 600 * i / count), model, failure_type, **fields
            )
            heads.setdefault(failure_type, event_id)
    for i in range(9):
        model = ["openai/gpt-4o", "anthropic/claude-3-opus", "google/gemini-1.5-pro"][i % 3]
        b.failure(tenant, b.m(585, 20 * i), model, "timeout", fingerprint="hooli-search")
    view = yield b.m(590), tenant
    view.expect(heads["budget_exceeded"], LifecycleState.RESOLVED, severity="critical")
    view.expect(
        heads["timeout"],
        LifecycleState.RESOLVED,
        related_call_ids=[f"call-hooli-{n}" for n in range(4)],
        calls_affected=12,
    )
    view.expect(heads["provider_unavailable"], LifecycleState.ACTIVE, severity="high")


def stark_dead_letters(b: Builder) -> Episode:
    """Every dead-letter reason of a message: invalid JSON, schema violations, one value over
    1 MiB, an event more than the lateness behind the watermark."""
    tenant = "stark"
    raw = [
        ("failures", b'{"event_id": "ev-broken", "tenant_id": "stark", "occurred_at": '),
        ("violations", b""),
        ("failures", b"\xff\xfe\x00 not utf-8"),
        ("commands", b"{'command_id': 'single-quoted'}"),
        ("failures", b"[1, 2, 3]"),
    ]
    for n, (kind, value) in enumerate(raw):
        b.raw(b.m(90 + n), kind, tenant, value)
    at = b.m(100)
    good: dict[str, Any] = {
        "event_id": "ev-template",
        "tenant_id": tenant,
        "occurred_at": at.isoformat(),
        "run_id": "run-stark-bad",
        "provider": "openai",
        "model": "gpt-4o",
        "failure_type": "timeout",
    }
    broken = [
        {k: v for k, v in good.items() if k != "run_id"},
        good | {"failure_type": "meltdown"},
        good | {"occurred_at": at.replace(tzinfo=None).isoformat()},
        good | {"tenant_id": "no spaces allowed"},
        good | {"metadata": {"blob": "m" * 9000}},
        good | {"cost_usd": "-1"},
        good | {"schema_version": 2},
    ]
    for n, body in enumerate(broken):
        body = body | {"event_id": f"ev-{b.seed}-bad-failure-{n}"}
        b.raw(b.m(100, 10 * n + 5), "failures", tenant, json.dumps(body).encode())
    violation: dict[str, Any] = {
        "event_id": f"ev-{b.seed}-bad-violation",
        "tenant_id": tenant,
        "occurred_at": at.isoformat(),
        "run_id": "run-stark-bad",
        "policy_id": "p1",
        "violated_rule": "r1",
    }
    for n, body in enumerate([violation | {"severity": "urgent"}, violation | {"policy_id": None}]):
        body = body | {"event_id": f"ev-{b.seed}-bad-violation-{n}"}
        b.raw(b.m(102, 10 * n), "violations", tenant, json.dumps(body).encode())
    command: dict[str, Any] = {
        "command_id": f"cmd-{b.seed}-bad",
        "tenant_id": tenant,
        "incident_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"incidentflow:bad-{b.seed}")),
        "action": "escalate",
        "issued_at": at.isoformat(),
    }
    naive = command | {"action": "acknowledge", "issued_at": at.replace(tzinfo=None).isoformat()}
    for n, body in enumerate([command, naive]):
        body = body | {"command_id": f"cmd-{b.seed}-bad-{n}"}
        b.raw(b.m(103, 10 * n), "commands", tenant, json.dumps(body).encode())
    huge = good | {"event_id": f"ev-{b.seed}-huge", "occurred_at": b.m(110).isoformat()}
    filler = int(MAX_MESSAGE_BYTES * 1.05) - len(json.dumps(huge | {"metadata": {"blob": ""}}))
    huge["metadata"] = {"blob": "x" * filler}
    b.raw(b.m(110), "failures", tenant, json.dumps(huge).encode())
    ancient = b.failure(
        tenant, b.now - timedelta(days=10), "openai/gpt-4o", "timeout", publish_at=b.m(20 * 60)
    )
    view = yield b.m(20 * 60, 10), tenant
    if ancient in view.result.event_incidents:
        raise ScenarioError("the 10-day-old event was applied")


def build_scenario(
    seed: int = 7,
    *,
    now: datetime,
    tenants: int = 6,
    min_events: int = 5000,
    partitions: int = SCENARIO_PARTITIONS,
) -> list[ScenarioMessage]:
    """The scenario's messages in publish order; `partitions` is the layout commands aim at.

    Deterministic for the same arguments. Needs at least the six role tenants.
    """
    if tenants < 6:
        raise ValueError("the scenario needs at least 6 tenants")
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    b = Builder(seed, now, tenant_names(tenants), partitions)
    plan_background(b, min_events)
    b.run(
        episode(b)
        for episode in (
            acme_lifecycle,
            acme_policy,
            acme_late_joins,
            globex_storms,
            initech_cap,
            umbrella_policies,
            hooli_failure_types,
            stark_dead_letters,
        )
    )
    future = b.now + timedelta(days=2)
    b.failure("acme", future, "openai/gpt-4o", "timeout", publish_at=future)
    b.violation("stark", future, "stark-guardrail", publish_at=future + SEC)
    b.flush(None)
    events = signal_event_count(b.log)
    if events < min_events:
        raise ScenarioError(f"only {events} signal events, wanted {min_events}")
    return b.log


def signal_event_count(messages: Sequence[ScenarioMessage]) -> int:
    """Distinct event ids among the parseable failure and violation messages."""
    ids = set()
    for message in messages:
        if message.topic_kind != "commands":
            body = _json_object(message.value)
            if body is not None and isinstance(body.get("event_id"), str):
                ids.add(body["event_id"])
    return len(ids)
