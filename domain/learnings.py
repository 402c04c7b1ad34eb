"""Insights of an incident's learnings: what similar resolved incidents suggest. Pure functions.

- response: the incident has a resolution method that n >= 1 similar incidents share;
  confidence min(0.5 + 0.1 n, 0.9).
- detection: k >= 2 of the incidents have a resolution time; their average is reported;
  confidence min(0.5 + 0.1 k, 0.8). A resolution time of exactly 0 ms counts as 0.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS


@dataclass(frozen=True, slots=True)
class Resolved:
    """What the insights read of one incident."""

    incident_id: uuid.UUID
    resolution_method: str | None
    time_to_resolution_ms: int | None


@dataclass(frozen=True, slots=True)
class Insight:
    insight_type: str
    description: str
    confidence: float
    supporting_incident_ids: list[uuid.UUID]


def format_duration(ms: float) -> str:
    """Whole minutes under an hour, hours with one decimal under a day, else days."""
    if ms < HOUR_MS:
        return f"{int(ms // MINUTE_MS)} minutes"
    if ms < DAY_MS:
        return f"{ms / HOUR_MS:.1f} hours"
    return f"{ms / DAY_MS:.1f} days"


def response_insight(target: Resolved, similar: Sequence[Resolved]) -> Insight | None:
    method = target.resolution_method
    matching = [s for s in similar if method is not None and s.resolution_method == method]
    if not matching:
        return None
    n = len(matching)
    return Insight(
        "response",
        f"Resolution method '{method}' was used in {n + 1} similar incidents",
        round(min(0.5 + 0.1 * n, 0.9), 2),
        [target.incident_id, *(s.incident_id for s in matching)],
    )


def detection_insight(target: Resolved, similar: Sequence[Resolved]) -> Insight | None:
    timed = [s for s in (target, *similar) if s.time_to_resolution_ms is not None]
    k = len(timed)
    if k < 2:
        return None
    average = sum(s.time_to_resolution_ms or 0 for s in timed) / k
    return Insight(
        "detection",
        f"Average resolution time for similar incidents: {format_duration(average)}",
        round(min(0.5 + 0.1 * k, 0.8), 2),
        [s.incident_id for s in timed],
    )


def insights(target: Resolved, similar: Sequence[Resolved]) -> list[Insight]:
    """The insights that apply, in the order response, detection."""
    found = (rule(target, similar) for rule in (response_insight, detection_insight))
    return [insight for insight in found if insight is not None]
