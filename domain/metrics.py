"""Derived times and SLA of an incident. Pure functions.

Time to containment and to resolution are measured from `started_at`; the SLA is met when the
incident is resolved within its severity's target, breached when resolved later or still open past
it, and pending while open within it. `storage.rules` holds the same rules in SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class SlaTargets:
    """Time to resolution allowed per severity; configurable, these are the defaults."""

    critical: timedelta = timedelta(hours=1)
    high: timedelta = timedelta(hours=4)
    medium: timedelta = timedelta(hours=24)
    low: timedelta = timedelta(hours=72)

    def for_severity(self, severity: str) -> timedelta:
        target: timedelta = getattr(self, severity)
        return target


class SlaStatus(StrEnum):
    MET = "met"
    BREACHED = "breached"
    PENDING = "pending"
    """Still open and within its target."""


def time_to_containment(
    started_at: datetime, acked_at: datetime | None, resolved_at: datetime | None
) -> timedelta | None:
    """`(acked_at or resolved_at) - started_at`, or None while neither happened."""
    contained = acked_at or resolved_at
    return contained - started_at if contained is not None else None


def time_to_resolution(started_at: datetime, resolved_at: datetime | None) -> timedelta | None:
    return resolved_at - started_at if resolved_at is not None else None


MILLISECOND = timedelta(milliseconds=1)


def whole_ms(value: timedelta | None) -> int | None:
    """A duration in whole milliseconds (rounded half even), as the API reports durations."""
    return None if value is None else round(value / MILLISECOND)


def sla_status(
    severity: str,
    started_at: datetime,
    resolved_at: datetime | None,
    now: datetime,
    targets: SlaTargets,
) -> SlaStatus:
    """Met when resolved within the target; breached when resolved later or open past it."""
    deadline = started_at + targets.for_severity(severity)
    if resolved_at is not None:
        return SlaStatus.MET if resolved_at <= deadline else SlaStatus.BREACHED
    return SlaStatus.BREACHED if now > deadline else SlaStatus.PENDING


def sla_compliance_rate(met: int, breached: int) -> float | None:
    """met / (met + breached) * 100, 2 decimals; None when no incident has an outcome."""
    return round(met / (met + breached) * 100, 2) if met + breached else None
