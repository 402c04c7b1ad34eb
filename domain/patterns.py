"""Pattern detection over pattern members. Pure functions.

A member says "incident I, started at T, counts toward (pattern_type, dimension)"; the stream
processor keeps them in `pattern_members` (`domain.analytics.pattern_contribution`). Detection
counts the members started within a window per (pattern_type, dimension):

| pattern_type | dimension | threshold | confidence |
|---|---|---|---|
| category_cluster | category | >= 3 | min(0.5 + 0.1 (n - 3), 0.95) |
| severity_spike | `high` or `critical` | >= 3 | 0.7 high / 0.8 critical + 0.05 (n - 3), <= 0.98 |
| cascade_failure | run id | >= 2 | min(0.75 + 0.1 (n - 2), 0.95) |

Severity spikes use the same window as the other types, and count incidents in every lifecycle
state.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from domain.analytics import CASCADE_FAILURE, CATEGORY_CLUSTER, SEVERITY_SPIKE

PATTERN_TYPES = (CATEGORY_CLUSTER, SEVERITY_SPIKE, CASCADE_FAILURE)
"""Pattern types in output order."""
MAX_INCIDENT_IDS = 10
DEFAULT_WINDOW_HOURS = 24
THRESHOLDS = {CATEGORY_CLUSTER: 3, SEVERITY_SPIKE: 3, CASCADE_FAILURE: 2}
"""Least incidents of a pattern, per type."""
MIN_PATTERN_SIZE = min(THRESHOLDS.values())
"""A (pattern_type, dimension) with fewer members in the window can form no pattern."""


class MemberRecord(Protocol):
    """What detection reads of a member; `domain.analytics.PatternMember` and rows of
    `pattern_members` (`tenant_id` aside) qualify. `incident_id` is a UUID or its string."""

    @property
    def pattern_type(self) -> str: ...
    @property
    def dimension(self) -> str: ...
    @property
    def incident_id(self) -> object: ...
    @property
    def started_at(self) -> datetime: ...


@dataclass(frozen=True, slots=True)
class Pattern:
    """A detected pattern. `incident_ids` are strings, newest first (at most 10)."""

    pattern_type: str
    dimension: str
    count: int
    incident_ids: tuple[str, ...]
    confidence: float


def detect_patterns(
    members: Iterable[MemberRecord],
    window_start: datetime,
    window_end: datetime,
    limit: int,
) -> list[Pattern]:
    """The patterns formed by the members started in `[window_start, window_end]` (both ends in).

    `members` are one tenant's (the caller filters by tenant; pre-filtering by window is allowed
    but not required) and hold each (pattern_type, dimension, incident) once. Returns up to `limit`
    patterns per type, the types in `PATTERN_TYPES` order: category clusters and cascades by count
    descending then dimension, severity spikes critical first then by count descending.
    `count` is the number of incidents in the window; `incident_ids` are the 10 newest of them by
    (started_at, incident id), newest first; `confidence` is rounded to 2 decimals.
    Raises ValueError if `limit < 1` or the window ends before it starts.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    if window_end < window_start:
        raise ValueError("window_end is before window_start")
    groups: dict[tuple[str, str], list[tuple[datetime, str]]] = defaultdict(list)
    for member in members:
        if window_start <= member.started_at <= window_end:
            key = (member.pattern_type, member.dimension)
            groups[key].append((member.started_at, str(member.incident_id)))
    patterns: list[Pattern] = []
    for pattern_type in PATTERN_TYPES:
        found = [
            _pattern(pattern_type, dimension, incidents)
            for (kind, dimension), incidents in groups.items()
            if kind == pattern_type and len(incidents) >= THRESHOLDS[pattern_type]
        ]
        patterns.extend(sorted(found, key=_ORDER[pattern_type])[:limit])
    return patterns


def confidence(pattern_type: str, dimension: str, count: int) -> float:
    """The confidence of a pattern of `count` incidents, rounded to 2 decimals."""
    if pattern_type == CATEGORY_CLUSTER:
        value = min(Decimal("0.5") + Decimal("0.1") * (count - 3), Decimal("0.95"))
    elif pattern_type == SEVERITY_SPIKE:
        base = Decimal("0.8") if dimension == "critical" else Decimal("0.7")
        value = min(base + Decimal("0.05") * (count - 3), Decimal("0.98"))
    elif pattern_type == CASCADE_FAILURE:
        value = min(Decimal("0.75") + Decimal("0.1") * (count - 2), Decimal("0.95"))
    else:
        raise ValueError(f"unknown pattern type {pattern_type!r}")
    return float(value.quantize(Decimal("0.01")))


def _pattern(pattern_type: str, dimension: str, incidents: list[tuple[datetime, str]]) -> Pattern:
    newest = sorted(incidents, reverse=True)[:MAX_INCIDENT_IDS]
    return Pattern(
        pattern_type,
        dimension,
        len(incidents),
        tuple(incident_id for _, incident_id in newest),
        confidence(pattern_type, dimension, len(incidents)),
    )


def _by_count(pattern: Pattern) -> tuple[int, str]:
    return (-pattern.count, pattern.dimension)


def _critical_first(pattern: Pattern) -> tuple[bool, int, str]:
    return (pattern.dimension != "critical", -pattern.count, pattern.dimension)


_ORDER = {CATEGORY_CLUSTER: _by_count, SEVERITY_SPIKE: _critical_first, CASCADE_FAILURE: _by_count}
