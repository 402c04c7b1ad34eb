"""The response body of `/v1/incidents/cost-impact`."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from api.bodies import EXAMPLE_AS_OF, AsOfTime, GeneratedAt, Money, examples


class CostImpactGroup(BaseModel):
    category: str
    resolution_method: str
    incident_count: int
    total_cost_impact: Money
    avg_cost_impact: Money


class CostImpact(BaseModel):
    """Cost of the incidents with a cost, by category and resolution method, largest first."""

    model_config = examples(
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
            "generated_at": EXAMPLE_AS_OF,
            "as_of": EXAMPLE_AS_OF,
        }
    )

    summaries: list[CostImpactGroup]
    total_cost_impact: Money = Field(description="Over ALL groups, not only the returned ones.")
    total_incidents: int = Field(description="Over ALL groups.")
    total_groups: int
    baseline_days: int
    window_start: datetime
    generated_at: GeneratedAt
    as_of: AsOfTime
