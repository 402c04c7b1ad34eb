"""Realistic synthetic traffic: a seeded, clock-driven stream of events, commands and bad messages.

`demo_stream` is pure apart from its clock: a seed, tenant count and rate give the same messages
(byte for byte with a deterministic clock). Events are `is_synthetic` (`demo:<scenario>`). Over
background failures (all types but `provider_unavailable`) and violations, each `CYCLE_SECONDS`
tells one story: bad messages (invalid JSON, schema violations, a future timestamp, > 1 MiB), a
storm (timeouts on the models of one provider within a minute), a provider outage acknowledged then
resolved by on-call, a budget breach, a burst of violations, a command for an unknown incident,
and a runaway tenant opening incidents in many categories until it exceeds the hourly cap.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import itertools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson

from domain.contracts import DeadLetterReason
from domain.incidents import incident_id_for
from incidentflow.publisher import Outgoing, Publisher, PublishReport, TopicNames, topic_for

CYCLE_SECONDS = 600
FRESH_KEY_SECONDS = 900 + 300 + 60
"""A key unseen for longer than auto-resolve + window (+ margin) opens a new incident."""

TENANT_NAMES = ("acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "wonka")
MODELS: dict[str, tuple[str, ...]] = {
    "openai": ("gpt-4o", "gpt-4o-mini", "o3-mini"),
    "anthropic": ("claude-sonnet-4", "claude-3-5-haiku"),
    "google": ("gemini-1.5-pro", "gemini-2.0-flash"),
    "mistral": ("mistral-large", "mistral-small"),
}
AGENTS = ("support-bot", "sql-copilot", "doc-summarizer", "triage-agent", "code-reviewer")
PRICE_PER_1K = {"openai": "0.0050", "anthropic": "0.0030", "google": "0.0035", "mistral": "0.0020"}
BACKGROUND_FAILURES = {  # failure_type: (weight, error_code, error_message)
    "timeout": (30, "ETIMEDOUT", "request timed out after {ms} ms"),
    "rate_limited": (25, "429", "rate limit reached for requests per minute"),
    "invalid_output": (20, "SCHEMA_MISMATCH", "model output is not valid JSON for the tool schema"),
    "exception": (15, "500", "upstream returned an internal server error"),
    "content_filtered": (7, "CONTENT_FILTER", "the response was filtered by the provider"),
    "budget_exceeded": (3, "BUDGET_EXCEEDED", "monthly token budget exhausted"),
}
POLICIES = (  # policy_id, policy_type, violated_rule, severity, action_taken
    ("pii-email", "PII", "output contains an email address", "high", "redacted"),
    ("pii-card", "PII", "output contains a payment card number", "critical", "blocked"),
    ("safety-self-harm", "SAFETY", "self-harm instructions requested", "critical", "blocked"),
    ("safety-toxicity", "SAFETY", "toxicity score above threshold", "medium", "flagged"),
    ("accuracy-citation", "CONTENT_ACCURACY", "answer cites no retrieved source", "low", "flagged"),
    ("accuracy-grounding", "CONTENT_ACCURACY", "grounding score below 0.6", "medium", "allowed"),
)
RUNAWAY_POLICY_TYPES = (
    "PII", "SAFETY", "CONTENT_ACCURACY", "PROMPT_INJECTION", "TOXICITY", "SECRETS", "COPYRIGHT",
    "JAILBREAK", "DATA_RESIDENCY", "BIAS", "OFF_TOPIC", "FINANCIAL_ADVICE",
)  # fmt: skip

CAUSES = ("LLM_RUN",) * 8 + ("HUMAN",)
Factory = Callable[[datetime], "DemoMessage"]


@dataclass(frozen=True, slots=True)
class DemoMessage:
    """A message to publish (routing `type`, key, exact value bytes) and the dead-letter reason
    consumers should give it (`expected`, `None` when it is valid)."""

    type: str
    tenant_id: str
    value: bytes
    scenario: str
    expected: DeadLetterReason | None = None

    def outgoing(self, topics: TopicNames) -> Outgoing:
        return Outgoing(topic_for(self.type, topics), self.tenant_id.encode(), self.value)


@dataclass(frozen=True, slots=True)
class TenantProfile:
    tenant_id: str
    models: tuple[tuple[str, str], ...]
    agents: tuple[str, ...]
    failures: tuple[str, ...]
    policies: tuple[tuple[str, ...], ...]
    weight: int


@dataclass(slots=True)
class DemoWorld:
    """The tenants (the last one runs away) and what the stream remembers between messages."""

    rng: random.Random
    tenants: tuple[TenantProfile, ...]
    ordinary: tuple[TenantProfile, ...]
    runaway: TenantProfile
    outage_keys_seen: dict[tuple[str, str, str], datetime] = field(default_factory=dict)
    cycle: int = 0


def tenant_ids(count: int) -> list[str]:
    """`count` tenant ids: the demo names, then numbered ones (`acme-2`, ...)."""
    n = len(TENANT_NAMES)
    return [TENANT_NAMES[i % n] + (f"-{i // n + 1}" if i >= n else "") for i in range(count)]


def build_world(rng: random.Random, tenants: int) -> DemoWorld:
    """Tenants with two models, two agents, four failure types, three policies and a weight."""
    if tenants < 1:
        raise ValueError("the demo needs at least one tenant")
    profiles = []
    for tenant_id in tenant_ids(tenants):
        providers = rng.sample(sorted(MODELS), 2)
        models = tuple((provider, rng.choice(MODELS[provider])) for provider in providers)
        agents, policies = tuple(rng.sample(AGENTS, 2)), tuple(rng.sample(POLICIES, 3))
        failures = ("timeout", "rate_limited", *rng.sample(list(BACKGROUND_FAILURES)[2:], 2))
        profile = TenantProfile(tenant_id, models, agents, failures, policies, rng.randint(1, 4))
        profiles.append(profile)
    return DemoWorld(rng, tuple(profiles), tuple(profiles[:-1] or profiles), profiles[-1])


def _id(rng: random.Random, prefix: str) -> str:
    return f"{prefix}-{rng.getrandbits(64):016x}"


def _jittered(rng: random.Random, at: datetime) -> str:
    return (at - timedelta(milliseconds=rng.randint(0, 1500))).isoformat()


def _cost(provider: str, tokens: int, scale: int = 1) -> str:
    return str((Decimal(PRICE_PER_1K[provider]) * tokens * scale / 1000).quantize(Decimal("1e-6")))


def llm_failure(
    rng: random.Random, tenant: TenantProfile, at: datetime, provider: str, model: str,
    failure_type: str, scenario: str, **extra: Any,
) -> dict[str, Any]:  # fmt: skip
    """An `llm_call_failure` event as wire JSON (with its routing `type`)."""
    _, code, message = BACKGROUND_FAILURES.get(failure_type, (0, "503", "provider unavailable"))
    duration = rng.randint(30_000, 60_000) if failure_type == "timeout" else rng.randint(80, 9000)
    tokens_in, tokens_out = rng.randint(200, 6000), rng.choice((0, 0, rng.randint(10, 800)))
    scale = 40 if failure_type == "budget_exceeded" else 1
    event = {
        "type": "llm_call_failure", "event_id": _id(rng, "evt"), "tenant_id": tenant.tenant_id,
        "occurred_at": _jittered(rng, at), "run_id": _id(rng, "run"),
        "call_id": _id(rng, "call"), "agent_id": rng.choice(tenant.agents),
        "integration_id": f"{provider}-prod", "provider": provider, "model": model,
        "failure_type": failure_type, "error_code": code,
        "error_message": message.format(ms=duration), "request_id": _id(rng, "req"),
        "duration_ms": duration, "tokens_in": tokens_in, "tokens_out": tokens_out,
        "cost_usd": _cost(provider, tokens_in + tokens_out, scale), "is_synthetic": True,
        "synthetic_scenario_id": f"demo:{scenario}",
    }  # fmt: skip
    return event | extra


def policy_violation(
    rng: random.Random, tenant: TenantProfile, at: datetime, policy: tuple[str, ...],
    scenario: str, **extra: Any,
) -> dict[str, Any]:  # fmt: skip
    """A `policy_violation` event as wire JSON (with its routing `type`)."""
    policy_id, policy_type, rule, severity, action = policy
    event = {
        "type": "policy_violation", "event_id": _id(rng, "evt"), "tenant_id": tenant.tenant_id,
        "occurred_at": _jittered(rng, at), "run_id": _id(rng, "run"), "policy_id": policy_id,
        "policy_type": policy_type, "violated_rule": rule, "severity": severity,
        "action_taken": action, "reason": f"{policy_type.lower()} check failed: {rule}",
        "evaluated_value": f"score={rng.random():.3f}", "threshold_condition": "score > 0.5",
        "agent_id": rng.choice(tenant.agents), "cause_type": rng.choice(CAUSES),
        "cost_usd": _cost("openai", rng.randint(100, 2000)),
        "evidence": {"excerpt": "[redacted]", "detector": f"{policy_type.lower()}-detector-v2"},
        "is_synthetic": True, "synthetic_scenario_id": f"demo:{scenario}",
    }  # fmt: skip
    return event | extra


def command(tenant_id: str, at: datetime, incident_id: str, action: str,
            **extra: Any) -> dict[str, Any]:  # fmt: skip
    """An `incident_command` as wire JSON; its id is derived from the incident and action."""
    body = {
        "type": "incident_command", "command_id": f"demo-{action}-{incident_id}",
        "tenant_id": tenant_id, "incident_id": incident_id, "action": action,
        "issued_at": at.isoformat(), "issued_by": f"oncall@{tenant_id}",
    }  # fmt: skip
    return body | extra


def _message(document: dict[str, Any], scenario: str,
             expected: DeadLetterReason | None = None) -> DemoMessage:  # fmt: skip
    value = orjson.dumps(document)
    return DemoMessage(document["type"], document["tenant_id"], value, scenario, expected)


def background(world: DemoWorld, at: datetime) -> DemoMessage:
    """One everyday failure or violation of a tenant chosen by weight."""
    rng = world.rng
    tenant = rng.choices(world.tenants, weights=[t.weight for t in world.tenants])[0]
    if rng.random() < 0.2:
        return _violation(world, tenant, rng.choice(tenant.policies), "background")(at)
    weights = [BACKGROUND_FAILURES[kind][0] for kind in tenant.failures]
    failure = rng.choices(tenant.failures, weights=weights)[0]
    return _failure(world, tenant, *rng.choice(tenant.models), failure, "background")(at)


def _override(event: dict[str, Any], at: datetime, extra: dict[str, Any]) -> dict[str, Any]:
    """`event` with `extra` set (a `timedelta` means `at` + it), then without its `None` fields."""
    event |= {k: (at + v).isoformat() if isinstance(v, timedelta) else v for k, v in extra.items()}
    return {name: value for name, value in event.items() if value is not None}


def _failure(world: DemoWorld, tenant: TenantProfile, provider: str, model: str,
             failure_type: str, scenario: str, expected: DeadLetterReason | None = None,
             /, **extra: Any) -> Factory:  # fmt: skip
    def build(at: datetime) -> DemoMessage:
        event = llm_failure(world.rng, tenant, at, provider, model, failure_type, scenario)
        return _message(_override(event, at, extra), scenario, expected)

    return build


def _violation(world: DemoWorld, tenant: TenantProfile, policy: tuple[str, ...], scenario: str,
               expected: DeadLetterReason | None = None, /, **extra: Any) -> Factory:  # fmt: skip
    def build(at: datetime) -> DemoMessage:
        event = policy_violation(world.rng, tenant, at, policy, scenario)
        return _message(_override(event, at, extra), scenario, expected)

    return build


def _bad_messages(world: DemoWorld, oversized: bool) -> list[tuple[float, Factory]]:
    """Invalid JSON, schema violations, a future timestamp and (optionally) a > 1 MiB message."""
    tenant, reason = world.rng.choice(world.ordinary), DeadLetterReason
    bad = functools.partial(_failure, world, tenant, "openai", "gpt-4o", "timeout", "bad_message")

    def truncated(at: datetime) -> DemoMessage:
        value = bad()(at).value
        return DemoMessage("llm_call_failure", tenant.tenant_id, value[: len(value) // 2],
                           "bad_message", reason.INVALID_JSON)  # fmt: skip

    plan: list[tuple[float, Factory]] = [
        (2, truncated),
        (3, bad(reason.SCHEMA_VIOLATION, failure_type="meltdown")),
        (4, bad(reason.SCHEMA_VIOLATION, tokens_in=-5, provider=None)),
        (5, _violation(world, tenant, POLICIES[0], "bad_message", reason.SCHEMA_VIOLATION,
                       violated_rule=None, severity="catastrophic")),
        (6, bad(reason.FUTURE_TIMESTAMP, occurred_at=timedelta(hours=2))),
    ]  # fmt: skip
    if oversized:
        plan.append((7, bad(reason.TOO_LARGE, debug_dump="x" * (1024 * 1024 + 4096))))
    return plan


def _storm(world: DemoWorld) -> list[tuple[float, Factory]]:
    """Timeouts on every model of one provider, the models starting 12 s apart."""
    tenant, provider = world.rng.choice(world.ordinary), world.rng.choice(sorted(MODELS))
    return [
        (15 + index * 12 + repeat * 1.5,
         _failure(world, tenant, provider, model, "timeout", "model_storm"))
        for index, model in enumerate(MODELS[provider]) for repeat in range(6)
    ]  # fmt: skip


def _outage(world: DemoWorld) -> list[tuple[float, Factory]]:
    """60 `provider_unavailable` in 30 s, acknowledged, resolved: the commands name the incident of
    the first event if it surely opens a new key, else background messages take their place."""
    rng, tenant = world.rng, world.ordinary[world.cycle % len(world.ordinary)]
    models = MODELS[provider := rng.choice(sorted(MODELS))]
    opened: list[str] = []

    def failure(index: int) -> Factory:
        def build(at: datetime) -> DemoMessage:
            model = models[index // 5 % len(models)]  # a new model every 2.5 s, beyond jitter
            event = llm_failure(rng, tenant, at, provider, model, "provider_unavailable",
                                "provider_outage")  # fmt: skip
            key = (tenant.tenant_id, provider, model)
            last = world.outage_keys_seen.get(key)
            if index == 0:  # the earliest in event time (beyond the others' jitter) opens it
                event["occurred_at"] = (at - timedelta(seconds=2)).isoformat()
            if index == 0 and (last is None or (at - last).total_seconds() > FRESH_KEY_SECONDS):
                opened.append(str(incident_id_for(event["event_id"])))
            world.outage_keys_seen[key] = at
            return _message(event, "provider_outage")

        return build

    def lifecycle(action: str, **extra: Any) -> Factory:
        def build(at: datetime) -> DemoMessage:
            if not opened:
                return background(world, at)
            return _message(command(tenant.tenant_id, at, opened[0], action, **extra), "command")

        return build

    plan = [(60 + index * 0.5, failure(index)) for index in range(60)]
    plan.append((75, lifecycle("acknowledge", note="provider status page shows an incident")))
    plan.append((150, lifecycle("resolve", resolution_method="manual", note="provider recovered")))
    return plan


def _budget_and_violations(world: DemoWorld) -> list[tuple[float, Factory]]:
    """A budget breach, a burst of serious violations and a resolve of an unknown incident."""
    rng = world.rng
    tenant, victim = rng.choice(world.ordinary), rng.choice(world.ordinary)
    unknown = str(incident_id_for(_id(rng, "no-such-event")))
    budget = _failure(world, tenant, *tenant.models[0], "budget_exceeded", "budget_breach")
    plan: list[tuple[float, Factory]] = [(100 + i * 3.0, budget) for i in range(5)]
    plan += [(130 + i * 2.0, _violation(world, victim, rng.choice(POLICIES[1:3]), "policy_burst"))
             for i in range(8)]  # fmt: skip

    def stray(at: datetime) -> DemoMessage:
        body = command(victim.tenant_id, at, unknown, "resolve", resolution_method="rollback")
        return _message(body, "command", DeadLetterReason.UNKNOWN_INCIDENT)

    return [*plan, (160, stray)]


def _runaway(world: DemoWorld) -> list[tuple[float, Factory]]:
    """60 events in 18 categories over 150 s, each with a new fingerprint: past the hourly cap."""
    tenant, failures = world.runaway, list(BACKGROUND_FAILURES)
    kinds = len(RUNAWAY_POLICY_TYPES)
    plan: list[tuple[float, Factory]] = []
    for index in range(60):
        slot, generation = index % (kinds + len(failures)), f"c{world.cycle}-{index}"
        if slot < kinds:
            policy_type = RUNAWAY_POLICY_TYPES[slot]
            policy = (f"{policy_type.lower()}-{generation}", policy_type,
                      f"rule {generation} misfired", "medium", "flagged")  # fmt: skip
            factory = _violation(world, tenant, policy, "hourly_cap")
        else:
            provider, model = tenant.models[index % 2]
            fingerprint = f"{tenant.agents[0]}/{generation}"
            factory = _failure(world, tenant, provider, model, failures[slot - kinds],
                               "hourly_cap", fingerprint=fingerprint)  # fmt: skip
        plan.append((200 + index * 2.5, factory))
    return plan


def cycle_plan(world: DemoWorld, oversized: bool = True) -> list[tuple[float, Factory]]:
    """Every scripted message of one cycle, as (seconds into the cycle, factory)."""
    return sorted(
        _bad_messages(world, oversized) + _storm(world) + _outage(world)
        + _budget_and_violations(world) + _runaway(world),
        key=lambda item: item[0],
    )  # fmt: skip


def demo_stream(
    rng: random.Random, now_fn: Callable[[], datetime], tenants: int = 5, rate: float = 50.0,
    *, oversized: bool = True,
) -> Iterator[DemoMessage]:  # fmt: skip
    """An endless stream; message n is the one due at n / `rate` seconds of traffic.

    `now_fn` is read once per message and gives its time (events jitter up to 2 s before it).
    A scripted message takes the place of a background one when it is due.
    """
    if rate <= 0:
        raise ValueError("rate must be positive")
    world = build_world(rng, tenants)
    cycle_ticks = max(1, round(CYCLE_SECONDS * rate))
    pending: list[tuple[int, int, Factory]] = []
    sequence = itertools.count()
    for tick in itertools.count():
        if tick % cycle_ticks == 0:
            world.cycle = tick // cycle_ticks
            for offset, factory in cycle_plan(world, oversized):
                heapq.heappush(pending, (tick + round(offset * rate), next(sequence), factory))
        at = now_fn()
        if pending and pending[0][0] <= tick:
            yield heapq.heappop(pending)[2](at)
        else:
            yield background(world, at)


async def run_demo(
    publisher: Publisher, rate: float, tenants: int, duration: float | None, *,
    seed: int | None = None, on_progress: Callable[[PublishReport], None] | None = None,
) -> PublishReport:  # fmt: skip
    """Publish the demo stream in real time at about `rate` messages a second, for `duration`
    seconds or, when it is `None`, until cancelled; returns what was sent."""
    stream = demo_stream(random.Random(seed), lambda: datetime.now(UTC), tenants, rate)
    loop = asyncio.get_running_loop()
    start, sent, report = loop.time(), 0, PublishReport()
    while duration is None or loop.time() - start < duration:
        horizon = loop.time() - start + 0.2  # send in steps of 0.2 s
        due = int((horizon if duration is None else min(horizon, duration)) * rate) - sent
        batch = [message.outgoing(publisher.topics) for message in itertools.islice(stream, due)]
        report.merge(await publisher.send_all(batch))
        sent += len(batch)
        if on_progress is not None:
            on_progress(report)
        await asyncio.sleep(max(0.0, start + sent / rate - loop.time()))
    return report
