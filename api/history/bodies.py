"""Response bodies of `/v1/incidents/historical`: trend, cost trend and distribution per UTC
bucket. Money in USD is a decimal string (2 decimals here), percentages are rounded half up to 2
decimals.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from api.bodies import EXAMPLE_AS_OF, AsOfTime, GeneratedAt, Money, examples
from domain.buckets import Granularity


class TrendPoint(BaseModel):
    period: date = Field(description="Bucket start (weeks start on Monday).")
    incident_count: int
    resolved_count: int
    avg_resolution_time_ms: int | None


class HistoricalTrend(BaseModel):
    """Incidents per bucket of started_at (UTC), every bucket of the window, empty ones as 0."""

    model_config = examples(
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
            "generated_at": EXAMPLE_AS_OF,
            "as_of": EXAMPLE_AS_OF,
        }
    )

    data_points: list[TrendPoint]
    granularity: Granularity
    window_days: int
    window_start: datetime
    total_incidents: int
    generated_at: GeneratedAt
    as_of: AsOfTime


class DistributionEntry(BaseModel):
    dimension: Literal["category", "severity", "cause_type"]
    value: str
    count: int
    percentage: float = Field(description="count / total * 100, 2 dp; 0 when total is 0")


class HistoricalDistribution(BaseModel):
    model_config = examples(
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
            "generated_at": EXAMPLE_AS_OF,
            "as_of": EXAMPLE_AS_OF,
        }
    )

    by_category: list[DistributionEntry]
    by_severity: list[DistributionEntry]
    by_cause_type: list[DistributionEntry]
    window_days: int
    window_start: datetime
    total_incidents: int
    generated_at: GeneratedAt
    as_of: AsOfTime


class CostTrendPoint(BaseModel):
    period: date
    total_cost: Money = Field(description="USD, 2 dp")
    incident_count: int
    avg_cost_per_incident: Money = Field(description="USD, 2 dp; 0 without incidents")


class HistoricalCostTrend(BaseModel):
    model_config = examples(
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
            "generated_at": EXAMPLE_AS_OF,
            "as_of": EXAMPLE_AS_OF,
        }
    )

    data_points: list[CostTrendPoint]
    granularity: Granularity
    window_days: int
    window_start: datetime
    total_cost: Money
    total_incidents: int
    generated_at: GeneratedAt
    as_of: AsOfTime
