"""The scripted episodes: each plays one story of the rules for one tenant (lifecycle commands,
storms, the hourly cap, policies, failure types, dead letters) and checks it at its checkpoints.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

from domain.contracts import MAX_MESSAGE_BYTES
from domain.incidents import LifecycleState
from tests.scenario.builder import MIN, SEC, Builder, Episode, ScenarioError
from tests.scenario.log import SCENARIO_CONFIG


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
