"""Response bodies of the analytics endpoints (patterns, recurrence, cost, history, cost guard).

Conventions shared with the incident endpoints: money in USD is a decimal string, times are ISO
8601 with offset, every body carries `as_of`. The cost guard views keep the seed's whole-cent
integers (`*_cents`). Percentages are numbers rounded half up (2 decimals, cost drivers 1).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.models import AsOf, Money

_ID = "0b5c2f8e-8d8a-5b6e-9a53-7c1f1f4f8a10"
_AS_OF = "2024-05-01T10:05:00Z"


def _examples(example: dict[str, Any]) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": [example]})


class Granularity(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


class Period(StrEnum):
    TODAY = "today"
    SEVEN_DAYS = "7d"
    THIRTY_DAYS = "30d"


Trend = Literal["normal", "rising", "spike"]
DriverType = Literal["category", "model", "agent"]


class Pattern(BaseModel):
    pattern_type: Literal["category_cluster", "severity_spike", "cascade_failure"]
    dimension: str = Field(description="The category, severity or run id the incidents share.")
    count: int = Field(ge=1)
    incident_ids: list[uuid.UUID] = Field(description="At most 10, newest first.")
    confidence: float = Field(ge=0, le=1)


class Patterns(BaseModel):
    """Patterns among the incidents started in (as_of - window_hours, as_of]."""

    model_config = _examples(
        {
            "patterns": [
                {
                    "pattern_type": "category_cluster",
                    "dimension": "LLM_TIMEOUT",
                    "count": 4,
                    "incident_ids": [_ID],
                    "confidence": 0.6,
                }
            ],
            "incidents_analyzed": 12,
            "window_hours": 24,
            "window_start": "2024-04-30T10:05:00Z",
            "window_end": _AS_OF,
            "as_of": _AS_OF,
        }
    )

    patterns: list[Pattern]
    incidents_analyzed: int = Field(ge=0, description="Incidents started in the window.")
    window_hours: int
    window_start: datetime
    window_end: datetime
    as_of: AsOf


class RecurrenceGroup(BaseModel):
    category: str
    resolution_method: str = Field(description="`unresolved` while the incident is open.")
    total_occurrences: int
    distinct_days: int = Field(description="UTC days with at least one occurrence.")
    occurrences_per_day: float = Field(description="total / max(distinct_days, 1), 2 dp")
    first_occurrence: datetime
    last_occurrence: datetime
    recent_incident_ids: list[uuid.UUID] = Field(description="The 5 newest by started_at.")


class FingerprintRecurrence(BaseModel):
    fingerprint: str
    occurrences: int = Field(description="Incidents started in the window with this fingerprint.")
    reopens: int = Field(description="Sum of those incidents' reopen counts.")
    first_seen: datetime = Field(description="Earliest started_at of those incidents.")
    last_seen: datetime = Field(description="Latest last_event_at of those incidents.")
    recent_incident_ids: list[uuid.UUID]


class Recurring(BaseModel):
    """(category, resolution method) groups and fingerprints seen at least `threshold` times."""

    model_config = _examples(
        {
            "groups": [
                {
                    "category": "LLM_TIMEOUT",
                    "resolution_method": "auto",
                    "total_occurrences": 9,
                    "distinct_days": 4,
                    "occurrences_per_day": 2.25,
                    "first_occurrence": "2024-04-02T08:00:00Z",
                    "last_occurrence": "2024-04-30T22:10:00Z",
                    "recent_incident_ids": [_ID],
                }
            ],
            "fingerprints": [
                {
                    "fingerprint": "openai/gpt-4o/timeout",
                    "occurrences": 5,
                    "reopens": 2,
                    "first_seen": "2024-04-02T08:00:00Z",
                    "last_seen": "2024-04-30T22:25:00Z",
                    "recent_incident_ids": [_ID],
                }
            ],
            "baseline_days": 30,
            "recurrence_threshold": 3,
            "window_start": "2024-04-02T00:00:00Z",
            "total_recurring": 9,
            "total_groups": 1,
            "total_fingerprints": 1,
            "generated_at": _AS_OF,
            "as_of": _AS_OF,
        }
    )

    groups: list[RecurrenceGroup]
    fingerprints: list[FingerprintRecurrence]
    baseline_days: int
    recurrence_threshold: int
    window_start: datetime = Field(description="Midnight UTC, baseline_days - 1 days before as_of.")
    total_recurring: int = Field(description="Occurrences over ALL groups meeting the threshold.")
    total_groups: int = Field(description="Groups meeting the threshold (all pages).")
    total_fingerprints: int = Field(description="Fingerprints meeting the threshold.")
    generated_at: datetime = Field(description="Equals as_of (kept from the seed).")
    as_of: AsOf


class CostImpactGroup(BaseModel):
    category: str
    resolution_method: str
    incident_count: int
    total_cost_impact: Money
    avg_cost_impact: Money


class CostImpact(BaseModel):
    """Cost of the incidents with a cost, by category and resolution method, largest first."""

    model_config = _examples(
        {
            "summaries": [
                {
                    "category": "BUDGET_EXCEEDED",
                    "resolution_method": "manual",
                    "incident_count": 3,
                    "total_cost_impact": "42.00000000",
                    "avg_cost_impact": "14.00000000",
                }
            ],
            "total_cost_impact": "57.50000000",
            "total_incidents": 7,
            "total_groups": 2,
            "baseline_days": 30,
            "window_start": "2024-04-02T00:00:00Z",
            "generated_at": _AS_OF,
            "as_of": _AS_OF,
        }
    )

    summaries: list[CostImpactGroup]
    total_cost_impact: Money = Field(description="Over ALL groups, not only the returned ones.")
    total_incidents: int = Field(description="Over ALL groups.")
    total_groups: int
    baseline_days: int
    window_start: datetime
    generated_at: datetime = Field(description="Equals as_of (kept from the seed).")
    as_of: AsOf


class TrendPoint(BaseModel):
    period: date = Field(description="Bucket start (weeks start on Monday).")
    incident_count: int
    resolved_count: int
    avg_resolution_time_ms: int | None


class HistoricalTrend(BaseModel):
    """Incidents per bucket of started_at (UTC), every bucket of the window, empty ones as 0."""

    model_config = _examples(
        {
            "data_points": [
                {
                    "period": "2024-04-29",
                    "incident_count": 12,
                    "resolved_count": 10,
                    "avg_resolution_time_ms": 1260000,
                }
            ],
            "granularity": "week",
            "window_days": 90,
            "window_start": "2024-02-02T00:00:00Z",
            "total_incidents": 12,
            "generated_at": _AS_OF,
            "as_of": _AS_OF,
        }
    )

    data_points: list[TrendPoint]
    granularity: Granularity
    window_days: int
    window_start: datetime
    total_incidents: int
    generated_at: datetime = Field(description="Equals as_of (kept from the seed).")
    as_of: AsOf


class DistributionEntry(BaseModel):
    dimension: Literal["category", "severity", "cause_type"]
    value: str
    count: int
    percentage: float = Field(description="count / total * 100, 2 dp; 0 when total is 0")


class HistoricalDistribution(BaseModel):
    model_config = _examples(
        {
            "by_category": [
                {"dimension": "category", "value": "LLM_TIMEOUT", "count": 3, "percentage": 75.0}
            ],
            "by_severity": [
                {"dimension": "severity", "value": "high", "count": 3, "percentage": 75.0}
            ],
            "by_cause_type": [
                {"dimension": "cause_type", "value": "LLM_RUN", "count": 4, "percentage": 100.0}
            ],
            "window_days": 90,
            "window_start": "2024-02-02T00:00:00Z",
            "total_incidents": 4,
            "generated_at": _AS_OF,
            "as_of": _AS_OF,
        }
    )

    by_category: list[DistributionEntry]
    by_severity: list[DistributionEntry]
    by_cause_type: list[DistributionEntry]
    window_days: int
    window_start: datetime
    total_incidents: int
    generated_at: datetime = Field(description="Equals as_of (kept from the seed).")
    as_of: AsOf


class CostTrendPoint(BaseModel):
    period: date
    total_cost: Money = Field(description="USD, 2 dp")
    incident_count: int
    avg_cost_per_incident: Money = Field(description="USD, 2 dp; 0 without incidents")


class HistoricalCostTrend(BaseModel):
    model_config = _examples(
        {
            "data_points": [
                {
                    "period": "2024-04-29",
                    "total_cost": "12.40",
                    "incident_count": 4,
                    "avg_cost_per_incident": "3.10",
                }
            ],
            "granularity": "week",
            "window_days": 90,
            "window_start": "2024-02-02T00:00:00Z",
            "total_cost": "12.40",
            "total_incidents": 4,
            "generated_at": _AS_OF,
            "as_of": _AS_OF,
        }
    )

    data_points: list[CostTrendPoint]
    granularity: Granularity
    window_days: int
    window_start: datetime
    total_cost: Money
    total_incidents: int
    generated_at: datetime = Field(description="Equals as_of (kept from the seed).")
    as_of: AsOf


class CostSummary(BaseModel):
    """Spend lost to failures and violations (by incident start day), and its trend."""

    model_config = _examples(
        {
            "period": "7d",
            "period_start": "2024-04-25T00:00:00Z",
            "period_end": _AS_OF,
            "total_spend_cents": 4210,
            "incident_count": 31,
            "spend_today_cents": 350,
            "spend_7d_cents": 4210,
            "spend_mtd_cents": 350,
            "projected_month_end_cents": 10290,
            "daily_average_cents": 661,
            "baseline_daily_average_cents": 400,
            "deviation_pct": 65.3,
            "trend": "rising",
            "trend_message": "Spending has increased 65% from baseline",
            "last_updated": _AS_OF,
            "as_of": _AS_OF,
        }
    )

    period: Period
    period_start: datetime
    period_end: datetime
    total_spend_cents: int
    incident_count: int
    spend_today_cents: int
    spend_7d_cents: int
    spend_mtd_cents: int
    projected_month_end_cents: int = Field(
        description="Month-to-date daily rate times the days of this month."
    )
    daily_average_cents: int = Field(description="Period spend per elapsed day of the period.")
    baseline_daily_average_cents: int = Field(
        description="Daily average over the 30 days before the period."
    )
    deviation_pct: float | None = Field(
        description="(daily average - baseline) / baseline * 100, 1 dp; null without baseline"
    )
    trend: Trend = Field(description="spike above +200%, rising above +50%, else normal")
    trend_message: str
    last_updated: datetime
    as_of: AsOf


class CostDriver(BaseModel):
    name: str
    display_name: str | None = Field(description="Models only: e.g. `Claude 3 Haiku`.")
    spend_cents: int
    request_count: int = Field(description="Calls lost.")
    incident_count: int
    pct_of_total: float = Field(ge=0, description="spend / total * 100, 1 dp")
    trend: Trend = Field(description="Its daily average against its own 30-day baseline.")


class CostExplained(BaseModel):
    """The top 10 drivers of the period's spend by category, model and agent."""

    model_config = _examples(
        {
            "period": "7d",
            "period_start": "2024-04-25T00:00:00Z",
            "period_end": _AS_OF,
            "total_spend_cents": 4210,
            "by_category": [
                {
                    "name": "LLM_TIMEOUT",
                    "display_name": None,
                    "spend_cents": 2100,
                    "request_count": 800,
                    "incident_count": 12,
                    "pct_of_total": 49.9,
                    "trend": "normal",
                }
            ],
            "by_model": [
                {
                    "name": "anthropic/claude-3-haiku",
                    "display_name": "Claude 3 Haiku",
                    "spend_cents": 1900,
                    "request_count": 700,
                    "incident_count": 10,
                    "pct_of_total": 45.1,
                    "trend": "rising",
                }
            ],
            "by_agent": [],
            "largest_driver_type": "category",
            "largest_driver_name": "LLM_TIMEOUT",
            "largest_driver_pct": 49.9,
            "summary": "45% of your spend is from Claude 3 Haiku usage in LLM_TIMEOUT",
            "as_of": _AS_OF,
        }
    )

    period: Period
    period_start: datetime
    period_end: datetime
    total_spend_cents: int
    by_category: list[CostDriver]
    by_model: list[CostDriver]
    by_agent: list[CostDriver]
    largest_driver_type: DriverType | None
    largest_driver_name: str | None
    largest_driver_pct: float
    summary: str
    as_of: AsOf
