"""A hostile battery: valid traffic of a few tenants with hostile messages between them.

Every hostile message names the dead-letter reason it must get; "edge" messages are at a limit
but valid, and must be applied. They go to their tenant's partition, between the valid messages
of that tenant, so a worker that blocks or loses a partition on one of them fails the test.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from domain.incidents import incident_id_for

TENANTS = ("acme", "globex", "initech", "umbrella")
HOUR = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Message:
    """One message to publish. `reason` is its expected dead-letter reason (None: valid)."""

    kind: str  # "failures" | "violations" | "commands"
    tenant: str
    value: bytes | None
    reason: str | None = None
    what: str = "valid traffic"
    key: bytes | None = b""
    """The record key; b"" means the tenant id (None: no key)."""

    @property
    def record_key(self) -> bytes | None:
        return self.tenant.encode() if self.key == b"" else self.key


def _json(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


class Battery:
    """Builds the log: `valid(...)` traffic per tenant, then `hostile(...)` messages mixed in."""

    def __init__(self, now: datetime, seed: int = 11) -> None:
        self.now = now
        self.start = now - 3 * HOUR
        self.rng = random.Random(seed)
        self.streams: dict[str, list[Message]] = {tenant: [] for tenant in TENANTS}
        self.hostiles: dict[str, list[Message]] = {tenant: [] for tenant in TENANTS}
        self._count = 0

    def failure(self, tenant: str, at: datetime, **fields: Any) -> dict[str, Any]:
        self._count += 1
        return {
            "event_id": f"{tenant}-f{self._count}",
            "tenant_id": tenant,
            "occurred_at": at.isoformat(),
            "run_id": f"run-{self._count % 7}",
            "provider": "openai",
            "model": self.rng.choice(["gpt-4o", "gpt-4o-mini"]),
            "failure_type": self.rng.choice(["timeout", "rate_limited", "exception"]),
            "cost_usd": "0.0042",
            **fields,
        }

    def violation(self, tenant: str, at: datetime, **fields: Any) -> dict[str, Any]:
        self._count += 1
        return {
            "event_id": f"{tenant}-v{self._count}",
            "tenant_id": tenant,
            "occurred_at": at.isoformat(),
            "run_id": f"run-{self._count % 5}",
            "policy_id": self.rng.choice(["pii-email", "safety-toxicity"]),
            "policy_type": "PII",
            "violated_rule": "no e-mail addresses",
            "severity": "high",
            **fields,
        }

    def command(self, tenant: str, incident: object, action: str, at: datetime,
                **fields: Any) -> dict[str, Any]:  # fmt: skip
        self._count += 1
        return {
            "command_id": f"{tenant}-c{self._count}",
            "tenant_id": tenant,
            "incident_id": str(incident),
            "action": action,
            "issued_at": at.isoformat(),
            "issued_by": "oncall",
            **fields,
        }

    def valid(self, per_tenant: int) -> None:
        """Failures and violations every ~30 s, a resend now and then, an acknowledgement and a
        resolution of each tenant's first incident."""
        for tenant in TENANTS:
            stream = self.streams[tenant]
            at = self.start
            first: dict[str, Any] | None = None
            for index in range(per_tenant):
                at += timedelta(seconds=self.rng.randrange(5, 60))
                body = self.failure(tenant, at) if index % 4 else self.violation(tenant, at)
                kind = "failures" if "provider" in body else "violations"
                stream.append(Message(kind, tenant, _json(body)))
                first = first or body
                if index % 37 == 5:  # a producer retry: the same event again
                    stream.append(Message(kind, tenant, _json(body), None, "resent event"))
            assert first is not None
            incident = incident_id_for(first["event_id"])
            ack_at = self.start + timedelta(seconds=61)
            stream.insert(
                len(stream) // 3,
                Message(
                    "commands", tenant, _json(self.command(tenant, incident, "acknowledge", ack_at))
                ),
            )

    def hostile(self, message: Message) -> None:
        self.hostiles[message.tenant].append(message)

    def messages(self) -> list[Message]:
        """Each tenant's hostile messages at random places in its valid stream, tenants
        interleaved."""
        mixed: dict[str, list[Message]] = {}
        for tenant in TENANTS:
            stream = list(self.streams[tenant])
            for message in self.hostiles[tenant]:
                stream.insert(self.rng.randrange(1, len(stream)), message)
            mixed[tenant] = stream
        out: list[Message] = []
        while any(mixed.values()):
            tenant = self.rng.choice([t for t in TENANTS if mixed[t]])
            out.append(mixed[tenant].pop(0))
        return out

    def at(self, minutes: float) -> str:
        return (self.start + timedelta(minutes=minutes)).isoformat()


def build(now: datetime) -> list[Message]:
    """The battery: valid traffic and more than 60 hostile messages of every kind."""
    b = Battery(now)
    b.valid(per_tenant=160)
    t = TENANTS
    fail, viol, cmd = b.failure, b.violation, b.command
    s = b.start

    def f(tenant: str, reason: str | None, what: str, **fields: Any) -> Message:
        return Message(
            "failures",
            tenant,
            _json(fail(tenant, s + 30 * b.rng.random() * HOUR / 15, **fields)),
            reason,
            what,
        )

    def raw(tenant: str, kind: str, value: bytes | None, reason: str | None, what: str,
            key: bytes | None = b"") -> Message:  # fmt: skip
        return Message(kind, tenant, value, reason, what, key)

    cases = [
        # -- framing
        raw(t[0], "failures", None, "invalid_json", "no value"),
        raw(t[1], "failures", None, "invalid_json", "neither key nor value", key=None),
        raw(t[2], "violations", b"", "invalid_json", "empty value"),
        raw(t[3], "failures", b"\xff\xfe\xfd not utf-8", "invalid_json", "not UTF-8"),
        raw(t[0], "failures", b"\xef\xbb\xbf" + _json(fail(t[0], s)), "invalid_json", "UTF-8 BOM"),
        raw(t[1], "failures", b"{" + b" " * (1024 * 1024) + b"}", "too_large", "over 1 MiB"),
        raw(t[2], "commands", bytes(range(256)), "invalid_json", "binary garbage"),
        raw(t[3], "violations", b'{"event_id": "x", "tenant_id"', "invalid_json", "truncated"),
        raw(t[0], "failures", b"[1, 2, 3]", "schema_violation", "top-level array"),
        raw(t[1], "violations", b'"a string"', "schema_violation", "top-level string"),
        raw(t[2], "commands", b"null", "schema_violation", "top-level null"),
        raw(t[3], "failures", b"42", "schema_violation", "top-level number"),
        # -- JSON shape
        f(t[0], "schema_violation", "missing event_id", event_id=None),
        f(t[1], "schema_violation", "failure_type unknown", failure_type="meltdown"),
        f(t[2], "schema_violation", "event_id a number", event_id=123),
        f(t[3], "schema_violation", "metadata an array", metadata=[1, 2]),
        f(t[0], "schema_violation", "tenant id with a space", tenant_id="acme corp"),
        f(t[1], "schema_violation", "tenant id of 101 chars", tenant_id="g" * 101),
        f(t[2], "schema_violation", "empty event_id", event_id=""),
        f(t[3], "schema_violation", "event_id of 129 chars", event_id="e" * 129),
        f(t[0], "schema_violation", "schema_version 2", schema_version=2),
        raw(
            t[1],
            "violations",
            _json({k: v for k, v in viol(t[1], s).items() if k != "policy_id"}),
            "schema_violation",
            "missing policy_id",
        ),
        raw(
            t[2],
            "violations",
            _json(viol(t[2], s, evidence="not an object")),
            "schema_violation",
            "evidence a string",
        ),
        raw(
            t[3],
            "violations",
            _json(viol(t[3], s, severity="CRITICAL")),
            "schema_violation",
            "upper-case severity",
        ),
        # -- text
        f(t[0], "schema_violation", "NUL in error_message", error_message="a\u0000b"),
        f(t[1], "schema_violation", "NUL in run_id", run_id="r\u0000"),
        f(t[2], "schema_violation", "NUL in event_id", event_id="e\u0000x"),
        f(t[3], "schema_violation", "NUL in a metadata key", metadata={"k\u0000": 1}),
        f(t[0], "schema_violation", "NUL deep in metadata", metadata={"a": [{"b": "c\u0000"}]}),
        raw(
            t[1],
            "failures",
            _json(fail(t[1], s)).replace(b'"run-', b'"\\ud800run-'),
            "invalid_json",
            "lone surrogate",
        ),
        raw(
            t[2],
            "failures",
            _json(fail(t[2], s, metadata={"x": 1})).replace(b'"x"', b'"\\udfff"'),
            "invalid_json",
            "lone surrogate in a key",
        ),
        f(t[3], "schema_violation", "error_message of 4001 chars", error_message="m" * 4001),
        f(t[0], "schema_violation", "fingerprint of 513 chars", fingerprint="p" * 513),
        raw(
            t[1],
            "violations",
            _json(viol(t[1], s, violated_rule="r\u0000")),
            "schema_violation",
            "NUL in violated_rule",
        ),
        # -- numbers
        f(t[2], "schema_violation", "cost 1e400", cost_usd="1e400"),
        f(t[3], "schema_violation", "cost past NUMERIC(20,8)", cost_usd="1000000000000000"),
        f(t[0], "schema_violation", "negative cost", cost_usd=-0.01),
        f(t[1], "schema_violation", "cost 'NaN'", cost_usd="NaN"),
        f(t[2], "schema_violation", "cost 'Infinity'", cost_usd="Infinity"),
        raw(
            t[3],
            "failures",
            _json(fail(t[3], s)).replace(b'"0.0042"', b"NaN"),
            "schema_violation",
            "bare NaN",
        ),
        f(t[0], "schema_violation", "tokens_in 2^63", tokens_in=2**63),
        f(t[1], "schema_violation", "tokens_in 2^31", tokens_in=2**31),
        f(t[2], "schema_violation", "tokens_out -1", tokens_out=-1),
        f(t[3], "schema_violation", "tokens_in 1.5", tokens_in=1.5),
        f(t[0], "schema_violation", "tokens_in a string", tokens_in="5"),
        f(t[1], "schema_violation", "duration_ms 1e10", duration_ms=10_000_000_000),
        raw(
            t[2],
            "failures",
            _json(fail(t[2], s, metadata={"x": 1})).replace(b'"x":1', b'"x":NaN'),
            "schema_violation",
            "NaN in metadata",
        ),
        raw(
            t[3],
            "failures",
            _json(fail(t[3], s, metadata={"x": 1})).replace(b'"x":1', b'"x":1e400'),
            "schema_violation",
            "1e400 in metadata",
        ),
        # -- times
        f(t[0], "schema_violation", "naive time", occurred_at="2026-11-30T10:00:00"),
        f(t[1], "schema_violation", "time as a number", occurred_at=1_700_000_000),
        f(t[2], "schema_violation", "year 1 in UTC", occurred_at="0001-01-01T00:00:00+01:00"),
        f(
            t[3],
            "schema_violation",
            "past year 9999 in UTC",
            occurred_at="9999-12-31T23:59:59-01:00",
        ),
        f(t[0], "future_timestamp", "a day ahead", occurred_at=(b.now + 24 * HOUR).isoformat()),
        f(t[1], "too_late", "ten days behind", occurred_at=(s - timedelta(days=10)).isoformat()),
        f(t[2], "schema_violation", "30 February", occurred_at="2026-02-30T00:00:00Z"),
        f(t[3], "schema_violation", "before 1970", occurred_at="1969-12-31T23:59:59Z"),
        # -- sizes
        f(t[0], "schema_violation", "metadata over 8 KiB", metadata={"x": "y" * 9000}),
        raw(
            t[1],
            "violations",
            _json(viol(t[1], s, evidence={"x": "y" * 17000})),
            "schema_violation",
            "evidence over 16 KiB",
        ),
        raw(
            t[2],
            "failures",
            _json(fail(t[2], s, metadata={"x": 1})).replace(
                b'"x":1', b'"x":' + b"[" * 2000 + b"]" * 2000
            ),
            "invalid_json",
            "nesting 2000 deep",
        ),
        # -- commands
        raw(
            t[3],
            "commands",
            _json(cmd(t[3], uuid.uuid4(), "acknowledge", s)),
            "unknown_incident",
            "unknown incident",
        ),
        raw(
            t[0],
            "commands",
            _json(cmd(t[0], "not-a-uuid", "resolve", s)),
            "unknown_incident",
            "incident id not a UUID",
        ),
        raw(
            t[1],
            "commands",
            _json(cmd(t[1], uuid.uuid4(), "close", s)),
            "schema_violation",
            "action close",
        ),
        raw(
            t[2],
            "commands",
            _json(cmd(t[2], uuid.uuid4(), "resolve", s, resolution_method="yolo")),
            "schema_violation",
            "resolution method yolo",
        ),
        raw(
            t[3],
            "commands",
            _json(cmd(t[3], uuid.uuid4(), "resolve", s, issued_at="2026-11-30T10:00:00")),
            "schema_violation",
            "naive issued_at",
        ),
        raw(
            t[0],
            "commands",
            _json(cmd(t[0], uuid.uuid4(), "resolve", s, note="n\u0000")),
            "schema_violation",
            "NUL in note",
        ),
        raw(
            t[1],
            "commands",
            _json(cmd(t[1], uuid.uuid4(), "resolve", s, issued_at=1_700_000_000)),
            "schema_violation",
            "issued_at a number",
        ),
        # -- edges: valid, must be applied
        f(
            t[2],
            None,
            "edge: 512 four-byte characters of fingerprint",
            fingerprint="\U0001f525" * 512,
        ),
        f(t[3], None, "edge: 4000 chars of error_message", error_message="\u00e9" * 4000),
        f(t[0], None, "edge: the largest cost", cost_usd="999999999999.99999999"),
        f(t[1], None, "edge: tokens at int4's maximum", tokens_in=2**31 - 1, tokens_out=0),
        f(t[2], None, "edge: control characters", error_message="tab\tbell\u0007esc\u001b"),
        f(t[3], None, "edge: offset +14:00", occurred_at=(s + HOUR).astimezone().isoformat()),
        raw(
            t[0],
            "failures",
            _json(fail(t[0], s)).replace(b'{"event_id"', b'{"event_id":"dup-1","event_id"'),
            None,
            "edge: duplicate key, the last wins",
        ),
        raw(
            t[1],
            "failures",
            _json(fail(t[1], s)),
            None,
            "edge: a key that is no tenant",
            key=b"\xff\x00",
        ),
    ]
    # Commands about another tenant's incident are unknown to the tenant that sends them; a
    # second acknowledgement (after the valid one at start + 61 s) does not fit the state.
    first = json.loads(b.streams[t[2]][0].value or b"")
    theirs = incident_id_for(first["event_id"])
    again = cmd(t[2], theirs, "acknowledge", s + 2 * HOUR)
    cases.append(raw(t[2], "commands", _json(again), "invalid_transition", "acknowledged twice"))
    cases.append(
        raw(
            t[3],
            "commands",
            _json(cmd(t[3], theirs, "acknowledge", s)),
            "unknown_incident",
            "another tenant's incident",
        )
    )
    for message in cases:
        b.hostile(message)
    return b.messages()
