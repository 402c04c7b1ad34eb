"""Background traffic: a steady failure and violation stream per tenant over the whole span, with
stragglers and re-sent duplicates.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial

from tests.scenario.builder import SEC, SPAN, Builder

STRAGGLER_RATE = 0.01
ADJACENT_DUPLICATE_RATE = 0.01
FAR_DUPLICATE_RATE = 0.003


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
