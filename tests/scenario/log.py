"""The published log: its messages, their partition layout, the configuration a worker reads it with
(`SCENARIO_CONFIG`, also as environment), and the replay a worker must end with.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiokafka.partitioner import murmur2

from domain.config import AggregationConfig
from domain.contracts import MAX_MESSAGE_BYTES
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

INTENT_PREFIX = "scenario expects "
"""Every scripted command's `note` starts with this, followed by its intended outcome."""


@dataclass(frozen=True, slots=True)
class ScenarioMessage:
    """One message as published: its topic kind, key (the tenant id) and value."""

    topic_kind: str  # "failures" | "violations" | "commands"
    key: bytes
    value: bytes


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


def json_object(value: bytes) -> dict[str, Any] | None:
    if len(value) > MAX_MESSAGE_BYTES:
        return None
    try:
        body = json.loads(value)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def signal_event_count(messages: Sequence[ScenarioMessage]) -> int:
    """Distinct event ids among the parseable failure and violation messages."""
    ids = set()
    for message in messages:
        if message.topic_kind != "commands":
            body = json_object(message.value)
            if body is not None and isinstance(body.get("event_id"), str):
                ids.add(body["event_id"])
    return len(ids)
