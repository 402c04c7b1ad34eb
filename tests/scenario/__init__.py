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

from tests.scenario.coverage import command_outcomes, coverage
from tests.scenario.log import (
    SCENARIO_CONFIG,
    SCENARIO_PARTITIONS,
    ScenarioMessage,
    expected,
    partition_for,
    partition_log,
    scenario_env,
    signal_event_count,
)
from tests.scenario.story import build_scenario

__all__ = [
    "SCENARIO_CONFIG",
    "SCENARIO_PARTITIONS",
    "ScenarioMessage",
    "build_scenario",
    "command_outcomes",
    "coverage",
    "expected",
    "partition_for",
    "partition_log",
    "scenario_env",
    "signal_event_count",
]
