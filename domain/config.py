"""The knobs of the aggregation rules (docs/aggregation.md), with their defaults."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True, slots=True)
class AggregationConfig:
    """The knobs of docs/aggregation.md, in seconds and counts."""

    auto_resolve_after_seconds: int = 900
    aggregation_window_seconds: int = 300
    incident_cooldown_seconds: int = 60
    max_incidents_per_tenant_per_hour: int = 20
    max_related_calls_per_incident: int = 1000
    severity_thresholds: tuple[int, int, int] = (10, 50, 200)
    max_future_skew_seconds: int = 300
    max_lateness_seconds: int = 7 * 24 * 3600

    @property
    def auto_resolve_after(self) -> timedelta:
        return timedelta(seconds=self.auto_resolve_after_seconds)

    @property
    def window(self) -> timedelta:
        return timedelta(seconds=self.aggregation_window_seconds)

    @property
    def cooldown(self) -> timedelta:
        return timedelta(seconds=self.incident_cooldown_seconds)

    @property
    def max_future_skew(self) -> timedelta:
        return timedelta(seconds=self.max_future_skew_seconds)

    @property
    def max_lateness(self) -> timedelta:
        return timedelta(seconds=self.max_lateness_seconds)
