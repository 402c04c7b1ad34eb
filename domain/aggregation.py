"""The aggregation rules of docs/aggregation.md, for the tenants of one Kafka partition.

`PartitionAggregator` holds the state the rules read (incidents, the key map, the rate-limit starts,
the watermark) and applies signal events and lifecycle commands in the order it is given them.
It does no I/O: wall-clock time is an argument, duplicates are filtered by the caller (it knows
what was applied before), and what changed is collected until `take_changes()`.

The same messages in the same order give the same incidents, whatever batches the caller cuts.
"""

from __future__ import annotations

import heapq
import uuid
from bisect import bisect_left, bisect_right, insort
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from domain.config import AggregationConfig
from domain.contracts import (
    CommandAction,
    DeadLetterReason,
    LifecycleCommand,
    LlmCallFailure,
    Message,
    Rejection,
    Signal,
)
from domain.descriptions import describe_incident
from domain.incidents import (
    AGENT_IDS_LIMIT,
    OVERFLOW_CATEGORY,
    OVERFLOW_FINGERPRINT,
    OVERFLOW_TITLE,
    OVERFLOW_TRIGGER,
    SEVERITY_RANK,
    TITLE_LABELS,
    UNKNOWN_AGENT,
    Classification,
    Incident,
    Key,
    LifecycleState,
    TimelineEntry,
    TimelineKind,
    add_to_breakdown,
    classify,
    incident_id_for,
    threshold_severity,
)

HOUR = timedelta(hours=1)
SYSTEM_ACTOR = "system"


@dataclass(slots=True)
class Changes:
    """What the aggregator changed since the last `take_changes()`.

    `incidents` holds each touched incident once, in the order it was first touched; `keys` the
    key-map entries that were set.
    """

    incidents: dict[uuid.UUID, Incident] = field(default_factory=dict)
    timeline: list[TimelineEntry] = field(default_factory=list)
    keys: dict[Key, uuid.UUID] = field(default_factory=dict)


class PartitionAggregator:
    """Applies the rules to the messages of one partition; see the module docstring."""

    def __init__(
        self,
        config: AggregationConfig,
        *,
        watermark: datetime | None = None,
        incidents: Iterable[Incident] = (),
        keys: Mapping[Key, uuid.UUID] | None = None,
    ) -> None:
        self.config = config
        self.watermark = watermark
        # The config's timedeltas, built once: they are read for every event.
        self._resolve_after = config.auto_resolve_after
        self._window = config.window
        self._cooldown = config.cooldown
        self._lateness = config.max_lateness
        self._skew = config.max_future_skew
        self._incidents: dict[uuid.UUID, Incident] = {}
        self._keys: dict[Key, uuid.UUID] = dict(keys or {})
        # Open non-overflow incidents by (tenant, trigger_type, category): storm-merge candidates.
        self._open: defaultdict[tuple[str, str, str], set[uuid.UUID]] = defaultdict(set)
        # Sorted start times of each tenant's non-overflow incidents: the hourly cap.
        self._starts: defaultdict[str, list[datetime]] = defaultdict(list)
        # (due time, id) of ACTIVE incidents; entries go stale and are re-checked when popped.
        self._due: list[tuple[datetime, uuid.UUID]] = []
        self._related: dict[uuid.UUID, set[str]] = {}
        self._runs: dict[uuid.UUID, set[str]] = {}
        self._changes = Changes()
        for incident in incidents:
            self.restore(incident)

    # -- state ---------------------------------------------------------------------------------

    @property
    def incidents(self) -> Mapping[uuid.UUID, Incident]:
        return self._incidents

    @property
    def keys(self) -> Mapping[Key, uuid.UUID]:
        return self._keys

    def knows(self, incident_id: uuid.UUID) -> bool:
        return incident_id in self._incidents

    def restore(self, incident: Incident) -> None:
        """Add an incident loaded from storage (it keeps its key mapping, if any, as given)."""
        if incident.incident_id in self._incidents:
            return
        self._incidents[incident.incident_id] = incident
        if not incident.is_overflow:
            insort(self._starts[incident.tenant_id], incident.opened)
        if incident.is_open:
            self._index_open(incident)

    def take_changes(self) -> Changes:
        """Return what changed since the last call and start collecting afresh.

        This is where a touched incident is frozen into its row and snapshot: its `description`
        is written here from its state, once per incident per call rather than per event. The
        state does not depend on how the log was cut, so neither does the final text.
        """
        changes, self._changes = self._changes, Changes()
        for incident in changes.incidents.values():
            incident.description = describe_incident(incident)
        return changes

    def evict(self) -> list[uuid.UUID]:
        """Forget resolved incidents that no accepted event can reach any more.

        An accepted event has `t >= watermark - max_lateness`; it cannot join, late-join or reopen
        an incident resolved `max_lateness + window` before the watermark, nor count against a
        start older than `max_lateness` plus an hour. Commands for evicted incidents need the
        caller to `restore` them first (`knows` tells).
        """
        if self.watermark is None:
            return []
        horizon = self.watermark - self._lateness
        gone = [
            incident.incident_id
            for incident in self._incidents.values()
            if incident.resolved_at is not None
            and incident.lifecycle_state is LifecycleState.RESOLVED
            and incident.resolved_at + self._window <= horizon
            and incident.opened + HOUR <= horizon
        ]
        for incident_id in gone:
            incident = self._incidents.pop(incident_id)
            if not incident.is_overflow:
                self._drop_start(incident.tenant_id, incident.opened)
            if self._keys.get(incident.key()) == incident_id:
                del self._keys[incident.key()]
            self._related.pop(incident_id, None)
            self._runs.pop(incident_id, None)
        # Keys merged into an evicted incident point nowhere now: drop them too.
        for key in [key for key, target in self._keys.items() if target not in self._incidents]:
            del self._keys[key]
        return gone

    # -- signal events -------------------------------------------------------------------------

    def apply_signal(self, event: Signal, now: datetime) -> uuid.UUID | Rejection:
        """Apply one new (not duplicate) signal event; return its incident id or a rejection.

        The worker and `domain.replay` check the future guard when a message is read, before the
        time merge (`future_rejection`); it is checked here again for callers that apply events
        directly, and then never fires for a message that passed it with an earlier `now`.
        """
        at = event.occurred_at
        future = future_rejection(event, now + self._skew, self.config)
        if future is not None:
            return future
        if self.watermark is not None and at < self.watermark - self._lateness:
            return Rejection(
                DeadLetterReason.TOO_LATE,
                f"occurred_at {at.isoformat()} is more than {self.config.max_lateness_seconds}s "
                f"behind the watermark {self.watermark.isoformat()}",
            )
        self.advance_watermark(at)
        kind = classify(event)
        incident = self._route(event, kind)
        self._apply(incident, event, kind)
        return incident.incident_id

    def advance_watermark(self, to: datetime) -> None:
        """Move the watermark forward (never back) and auto-resolve what it has passed.

        The sweep runs even when the watermark stays: an incident opened or reopened by an event
        later than R is already due, and the rules resolve it before the next event.
        """
        if self.watermark is None or to > self.watermark:
            self.watermark = to
        to = self.watermark
        resolve_after = self._resolve_after
        while self._due and self._due[0][0] <= to:
            _, incident_id = heapq.heappop(self._due)
            incident = self._incidents.get(incident_id)
            if incident is None or incident.lifecycle_state is not LifecycleState.ACTIVE:
                continue
            due = incident.last_event_at + resolve_after
            if due > to:
                heapq.heappush(self._due, (due, incident_id))
                continue
            self._auto_resolve(incident, due)

    def _route(self, event: Signal, kind: Classification) -> Incident:
        """Pick the incident an event belongs to: rules 1 to 6, the first that applies."""
        at = event.occurred_at
        key = kind.key(event.tenant_id)
        mapped = self._follow(key, at)
        if mapped is not None:
            return mapped
        storm = self._storm_target(event.tenant_id, kind, at)
        if storm is not None:
            if kind.fingerprint not in storm.fingerprints:
                storm.fingerprints.append(kind.fingerprint)
            self._map(key, storm.incident_id)
            self._record(storm, TimelineKind.FINGERPRINT_MERGED, at, fingerprint=kind.fingerprint)
            return storm
        if self._cap_reached(event.tenant_id, at):
            overflow_key = (event.tenant_id, OVERFLOW_TRIGGER, OVERFLOW_FINGERPRINT)
            overflow = self._follow(overflow_key, at)
            return overflow if overflow is not None else self._create_overflow(event, kind)
        return self._create(event, kind)

    def _follow(self, key: Key, at: datetime) -> Incident | None:
        """Rules 1 to 3 for the incident `key` maps to: join, late join or reopen."""
        incident_id = self._keys.get(key)
        incident = self._incidents.get(incident_id) if incident_id is not None else None
        if incident is None:
            return None
        if incident.is_open:
            return incident
        assert incident.resolved_at is not None
        if at < incident.resolved_at:
            return incident  # late join: `_apply` revisits an auto-resolution
        if at < incident.resolved_at + self._window:
            self._reopen(incident, at)
            return incident
        return None

    def _storm_target(self, tenant_id: str, kind: Classification, at: datetime) -> Incident | None:
        """Rule 4: the open incident of the same trigger and category that started last in C."""
        since = at - self._cooldown
        best: Incident | None = None
        for incident_id in self._open.get((tenant_id, kind.trigger_type, kind.category), ()):
            incident = self._incidents[incident_id]
            if since < incident.started_at <= at and (
                best is None
                or (incident.started_at, incident.incident_id) > (best.started_at, best.incident_id)
            ):
                best = incident
        return best

    def _cap_reached(self, tenant_id: str, at: datetime) -> bool:
        """Rule 5: would a new incident at `at` make more than H starts in some hour?

        The rule counts starts in `(at - 1h, at]`. A late event also sees starts after `at`, so
        every hour-long window holding `at` is checked: those beginning at a start in
        `(at - 1h, at]`, and the one beginning at `at`. With events in time order this is
        exactly the rule's window; out of order, it keeps the cap on every hour.
        """
        starts = self._starts.get(tenant_id)
        if not starts:
            return False
        cap = self.config.max_incidents_per_tenant_per_hour
        lefts = starts[bisect_right(starts, at - HOUR) : bisect_right(starts, at)]
        return any(
            bisect_left(starts, left + HOUR) - bisect_left(starts, left) >= cap
            for left in [*lefts, at]
        )

    def _create(self, event: Signal, kind: Classification) -> Incident:
        incident = self._new_incident(
            event,
            trigger_type=kind.trigger_type,
            fingerprint=kind.fingerprint,
            category=kind.category,
            title=f"{TITLE_LABELS[kind.trigger_type]}: {kind.fingerprint}",
            severity=kind.severity,
            cause_type=kind.cause_type,
        )
        insort(self._starts[incident.tenant_id], incident.opened)
        self._record(incident, TimelineKind.CREATED, incident.started_at, severity=kind.severity)
        return incident

    def _create_overflow(self, event: Signal, kind: Classification) -> Incident:
        incident = self._new_incident(
            event,
            trigger_type=OVERFLOW_TRIGGER,
            fingerprint=OVERFLOW_FINGERPRINT,
            category=OVERFLOW_CATEGORY,
            title=OVERFLOW_TITLE,
            severity="high",
            cause_type=kind.cause_type,
        )
        self._record(
            incident,
            TimelineKind.OVERFLOW_STARTED,
            incident.started_at,
            cap=self.config.max_incidents_per_tenant_per_hour,
        )
        return incident

    def _new_incident(
        self,
        event: Signal,
        *,
        trigger_type: str,
        fingerprint: str,
        category: str,
        title: str,
        severity: str,
        cause_type: str,
    ) -> Incident:
        incident = Incident(
            incident_id=incident_id_for(event.event_id),
            tenant_id=event.tenant_id,
            trigger_type=trigger_type,
            fingerprint=fingerprint,
            fingerprints=[fingerprint],
            category=category,
            cause_type=cause_type,
            title=title,
            severity=severity,
            started_at=event.occurred_at,
            last_event_at=event.occurred_at,
            is_synthetic=event.is_synthetic,
            source_run_id=event.run_id,
            synthetic_scenario_id=event.synthetic_scenario_id,
        )
        self._incidents[incident.incident_id] = incident
        self._map(incident.key(), incident.incident_id)
        self._index_open(incident)
        return incident

    def _apply(self, incident: Incident, event: Signal, kind: Classification) -> None:
        """Add one event to an incident: counts, ids, cost, times, severity and context."""
        at = event.occurred_at
        incident.calls_affected += 1
        limit = self.config.max_related_calls_per_incident
        self._remember(
            self._related,
            incident.incident_id,
            incident.related_call_ids,
            event.effective_call_id,
            limit,
        )
        self._remember(self._runs, incident.incident_id, incident.run_ids, event.run_id, limit)
        incident.cost_usd += event.cost_usd
        if isinstance(event, LlmCallFailure):
            add_to_breakdown(
                incident.breakdown, "model", f"{event.provider}/{event.model}", event.cost_usd
            )
            if event.error_code is not None or event.error_message is not None:
                incident.note_error(event.error_code, event.error_message)
        else:
            incident.note_violation(event)
        agent = event.agent_id
        add_to_breakdown(incident.breakdown, "agent", agent or UNKNOWN_AGENT, event.cost_usd)
        # The length first: once the list is full, no later event scans it.
        agents = incident.agent_ids
        if agent and len(agents) < AGENT_IDS_LIMIT and agent not in agents:
            agents.append(agent)
        if at < incident.started_at:
            incident.started_at = at
        if at > incident.last_event_at:
            incident.last_event_at = at
        if incident.is_overflow:
            counts = incident.absorbed.setdefault(kind.trigger_type, {})
            counts[kind.fingerprint] = counts.get(kind.fingerprint, 0) + 1
        severity = incident.severity
        if SEVERITY_RANK[kind.severity] > SEVERITY_RANK[severity]:
            severity = kind.severity
        # Counts only grow, so the threshold severity changes only when a threshold is reached.
        if incident.calls_affected in self.config.severity_thresholds:
            needed = threshold_severity(incident.calls_affected, self.config.severity_thresholds)
            if SEVERITY_RANK[needed] > SEVERITY_RANK[severity]:
                severity = needed
        if severity != incident.severity:
            self._record(
                incident,
                TimelineKind.SEVERITY_ESCALATED,
                at,
                **{"from": incident.severity, "to": severity},
            )
            incident.severity = severity
        if incident.resolution_method == "auto" and incident.resolved_at is not None:
            self._revisit_auto_resolution(incident)
        self._touch(incident)

    @staticmethod
    def _remember(
        seen: dict[uuid.UUID, set[str]],
        incident_id: uuid.UUID,
        kept: list[str],
        value: str,
        limit: int,
    ) -> None:
        """Append `value` to `kept` if it is new and `kept` holds fewer than `limit` values."""
        if len(kept) >= limit:
            return
        known = seen.get(incident_id)
        if known is None:
            known = seen[incident_id] = set(kept)
        if value not in known:
            known.add(value)
            kept.append(value)

    def _revisit_auto_resolution(self, incident: Incident) -> None:
        """Rule 2 on an auto-resolved incident: it resolves R after its (new) last event."""
        resolved_at = incident.last_event_at + self._resolve_after
        assert self.watermark is not None
        if resolved_at > self.watermark:
            self._clear_resolution(incident)
            self._index_open(incident)
        else:
            incident.resolved_at = resolved_at

    def _reopen(self, incident: Incident, at: datetime) -> None:
        self._clear_resolution(incident)
        incident.reopen_count += 1
        self._index_open(incident)
        self._record(incident, TimelineKind.REOPENED, at, reopen_count=incident.reopen_count)

    def _auto_resolve(self, incident: Incident, at: datetime) -> None:
        incident.lifecycle_state = LifecycleState.RESOLVED
        incident.resolved_at = at
        incident.resolved_by = SYSTEM_ACTOR
        incident.resolution_method = "auto"
        self._unindex_open(incident)
        self._record(incident, TimelineKind.AUTO_RESOLVED, at)
        self._touch(incident)

    # -- lifecycle commands --------------------------------------------------------------------

    def apply_command(self, command: LifecycleCommand) -> Rejection | None:
        """Apply a new (not duplicate) lifecycle command, or say why it is rejected."""
        incident = self._find(command.incident_id, command.tenant_id)
        if incident is None:
            return Rejection(
                DeadLetterReason.UNKNOWN_INCIDENT,
                f"incident_id: no incident {command.incident_id} in tenant {command.tenant_id}",
            )
        state = incident.lifecycle_state
        if command.action is CommandAction.ACKNOWLEDGE:
            if state is not LifecycleState.ACTIVE:
                return _invalid_transition(command, state)
            incident.lifecycle_state = LifecycleState.ACKED
            incident.acked_at = command.issued_at
            incident.acked_by = command.issued_by
            self._record(
                incident,
                TimelineKind.ACKNOWLEDGED,
                command.issued_at,
                by=command.issued_by,
                note=command.note,
            )
        else:
            if state is LifecycleState.RESOLVED:
                return _invalid_transition(command, state)
            incident.lifecycle_state = LifecycleState.RESOLVED
            incident.resolved_at = command.issued_at
            incident.resolved_by = command.issued_by
            incident.resolution_method = command.resolution_method.value
            self._unindex_open(incident)
            self._record(
                incident,
                TimelineKind.RESOLVED,
                command.issued_at,
                by=command.issued_by,
                method=incident.resolution_method,
                note=command.note,
            )
        self._touch(incident)
        return None

    def _find(self, raw_id: str, tenant_id: str) -> Incident | None:
        try:
            incident_id = uuid.UUID(raw_id)
        except ValueError:
            return None
        incident = self._incidents.get(incident_id)
        return incident if incident is not None and incident.tenant_id == tenant_id else None

    # -- bookkeeping ---------------------------------------------------------------------------

    def _clear_resolution(self, incident: Incident) -> None:
        incident.lifecycle_state = LifecycleState.ACTIVE
        incident.resolved_at = None
        incident.resolved_by = None
        incident.resolution_method = None

    def _index_open(self, incident: Incident) -> None:
        if not incident.is_overflow:
            self._open[(incident.tenant_id, incident.trigger_type, incident.category)].add(
                incident.incident_id
            )
        if incident.lifecycle_state is LifecycleState.ACTIVE:
            due = incident.last_event_at + self._resolve_after
            heapq.heappush(self._due, (due, incident.incident_id))

    def _unindex_open(self, incident: Incident) -> None:
        group = self._open.get((incident.tenant_id, incident.trigger_type, incident.category))
        if group is not None:
            group.discard(incident.incident_id)

    def _drop_start(self, tenant_id: str, started_at: datetime) -> None:
        starts = self._starts[tenant_id]
        index = bisect_right(starts, started_at) - 1
        if index >= 0 and starts[index] == started_at:
            del starts[index]

    def _record(self, incident: Incident, kind: TimelineKind, at: datetime, **data: object) -> None:
        self._changes.timeline.append(
            TimelineEntry(incident.incident_id, incident.tenant_id, kind, at, dict(data))
        )

    def _map(self, key: Key, incident_id: uuid.UUID) -> None:
        self._keys[key] = incident_id
        self._changes.keys[key] = incident_id

    def _touch(self, incident: Incident) -> None:
        """Count one change: versions grow per change, independent of how batches are cut."""
        incident.version += 1
        self._changes.incidents[incident.incident_id] = incident


def future_rejection(
    message: Message, latest: datetime, config: AggregationConfig
) -> Rejection | None:
    """The time guard against clocks ahead: a signal event later than `latest` (the wall clock
    plus `max_future_skew`, see `latest_accepted`) is rejected as `future_timestamp`. Commands are
    not guarded."""
    if isinstance(message, LifecycleCommand) or message.occurred_at <= latest:
        return None
    now = latest - config.max_future_skew
    return Rejection(
        DeadLetterReason.FUTURE_TIMESTAMP,
        f"occurred_at {message.occurred_at.isoformat()} is more than "
        f"{config.max_future_skew_seconds}s ahead of {now.isoformat()}",
    )


def latest_accepted(now: datetime, config: AggregationConfig) -> datetime:
    """The latest event time the future guard accepts at wall-clock time `now`."""
    return now + config.max_future_skew


def _invalid_transition(command: LifecycleCommand, state: LifecycleState) -> Rejection:
    return Rejection(
        DeadLetterReason.INVALID_TRANSITION,
        f"action: cannot {command.action.value} incident {command.incident_id} "
        f"in state {state.value}",
    )
