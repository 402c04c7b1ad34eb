"""The whole scenario: the role tenants, the background traffic, the episodes in order and the
closing future events.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from tests.scenario.background import plan_background
from tests.scenario.builder import SEC, Builder, ScenarioError
from tests.scenario.episodes import (
    acme_late_joins,
    acme_lifecycle,
    acme_policy,
    globex_storms,
    hooli_failure_types,
    initech_cap,
    stark_dead_letters,
    umbrella_policies,
)
from tests.scenario.log import SCENARIO_PARTITIONS, ScenarioMessage, signal_event_count

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


def tenant_names(count: int) -> list[str]:
    names = list(TENANT_NAMES[:count])
    names += [f"tenant-{index:02d}" for index in range(len(names) + 1, count + 1)]
    return names


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
