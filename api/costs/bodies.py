"""Response bodies of `/v1/costs`: the spend summary and its drivers.

Amounts are whole cents (`*_cents`), and a cost incident's cost also exact (`cost_usd`);
percentages are rounded half up (1 decimal).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from api.bodies import EXAMPLE_AS_OF, EXAMPLE_ID, AsOfTime, Money, examples
from domain.analytics import CostDimension
from domain.cost_incidents import CostStatus, Urgency
from domain.spend import Period, Trend


class CostSummary(BaseModel):
    """Spend lost to failures and violations (by incident start day), and its trend."""

    model_config = examples(
        {
            "period": "7d",
            "period_start": "2024-04-25T00:00:00Z",
            "period_end": EXAMPLE_AS_OF,
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
            "last_updated": EXAMPLE_AS_OF,
            "as_of": EXAMPLE_AS_OF,
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
    as_of: AsOfTime


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

    model_config = examples(
        {
            "period": "7d",
            "period_start": "2024-04-25T00:00:00Z",
            "period_end": EXAMPLE_AS_OF,
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
            "as_of": EXAMPLE_AS_OF,
        }
    )

    period: Period
    period_start: datetime
    period_end: datetime
    total_spend_cents: int
    by_category: list[CostDriver]
    by_model: list[CostDriver]
    by_agent: list[CostDriver]
    largest_driver_type: CostDimension | None
    largest_driver_name: str | None
    largest_driver_pct: float
    summary: str
    as_of: AsOfTime


class CostIncident(BaseModel):
    """An incident that cost money, as a customer reads it (`domain.cost_incidents`)."""

    incident_id: uuid.UUID
    title: str = Field(description="By trigger, in calm words: e.g. `Budget limit reached`.")
    status: CostStatus = Field(
        description="resolved: the incident is resolved; protected: open, and the budget limit "
        "refuses its calls (trigger budget_breach); attention_needed: open with any other trigger."
    )
    urgency: Urgency = Field(
        description="The severity: critical urgent, high action, medium attention, low info."
    )
    trigger_type: str
    category: str
    cost_usd: Money = Field(description="What its failed calls and violations cost (exact).")
    cost_cents: int = Field(description="cost_usd in whole cents, half up.")
    calls_affected: int
    trend: Trend = Field(
        description="Its category's trend as /v1/costs/explained shows it for 7d: the daily spend "
        "of the last 7 UTC days against the daily average of the 30 before (spike above +200%, "
        "rising above +50%, else normal; normal without spend in the 7 days)."
    )
    recommendation: str
    cause_explanation: str = Field(description="The incident's one-line description.")
    detected_at: datetime = Field(description="When the incident started (its first event).")
    last_event_at: datetime
    resolved_at: datetime | None


class CostIncidents(BaseModel):
    """One page of the tenant's incidents that cost money (cost_usd > 0), costliest first: by
    cost_usd descending, then incident_id descending."""

    model_config = examples(
        {
            "incidents": [
                {
                    "incident_id": EXAMPLE_ID,
                    "title": "Budget limit reached",
                    "status": "protected",
                    "urgency": "urgent",
                    "trigger_type": "budget_breach",
                    "category": "BUDGET_EXCEEDED",
                    "cost_usd": "12.00000000",
                    "cost_cents": 1200,
                    "calls_affected": 250,
                    "trend": "rising",
                    "recommendation": "Increase your budget or pause operations to resume spending",
                    "cause_explanation": "Budget exceeded on openai/gpt-4o: 250 calls since "
                    "2024-05-01 09:00 UTC",
                    "detected_at": "2024-05-01T09:00:00Z",
                    "last_event_at": "2024-05-01T10:04:10Z",
                    "resolved_at": None,
                }
            ],
            "total": 1,
            "total_cost_cents": 1200,
            "has_more": False,
            "next_offset": None,
            "limit": 20,
            "offset": 0,
            "include_resolved": False,
            "as_of": EXAMPLE_AS_OF,
        }
    )

    incidents: list[CostIncident]
    total: int = Field(ge=0, description="Incidents with a cost in this listing (all pages).")
    total_cost_cents: int = Field(ge=0, description="Their cost (all pages), in whole cents.")
    has_more: bool
    next_offset: int | None = Field(description="`offset` of the next page; null on the last.")
    limit: int
    offset: int
    include_resolved: bool
    as_of: AsOfTime
