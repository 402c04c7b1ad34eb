"""The builder of the log: plans messages by publish time and replays the partial log at the
checkpoints where an episode pauses to aim its commands at real incidents.
"""

from __future__ import annotations

import heapq
import itertools
import json
import random
import uuid
import zlib
from collections.abc import Generator, Iterable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from domain.incidents import Incident, LifecycleState
from domain.replay import Replay, replay
from tests.scenario.log import (
    INTENT_PREFIX,
    SCENARIO_CONFIG,
    ScenarioMessage,
    partition_for,
    partition_log,
)

SPAN = timedelta(hours=30)
SYNTHETIC_TENANT = "hooli"
"""Its traffic is synthetic: every event carries `is_synthetic` and a `synthetic_scenario_id`."""
ERROR_CODES = ("429", "500", "503", "504", "context_length_exceeded")
MIN = timedelta(minutes=1)
SEC = timedelta(seconds=1)


class ScenarioError(RuntimeError):
    """The scripted story did not unfold as planned (a rule changed, or the script is wrong)."""


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
            **_error(event_id),
            **_synthetic(tenant, event_id),
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
            "agent_id": f"guard-{_draw(event_id) % 3}",
            **_synthetic(tenant, event_id),
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


def _draw(event_id: str) -> int:
    """A number from the event id, for fields added to the log after it was first written: drawn
    from the builder's random stream, they would change every message after them."""
    return zlib.crc32(event_id.encode())


def _error(event_id: str) -> dict[str, str]:
    """A failure's error code and message: most have both, some one of them, some none."""
    draw = _draw(event_id)
    code = ERROR_CODES[draw // 6 % len(ERROR_CODES)]
    return [
        {},
        {"error_code": code},
        {"error_message": f"upstream error, attempt {draw % 3 + 1}"},
        {"error_code": code, "error_message": f"provider answered {code}"},
    ][min(draw % 6, 3)]


def _synthetic(tenant: str, event_id: str) -> dict[str, Any]:
    if tenant != SYNTHETIC_TENANT:
        return {}
    return {"is_synthetic": True, "synthetic_scenario_id": f"drill-{_draw(event_id) % 3}"}


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
