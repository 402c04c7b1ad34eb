"""Response bodies of the incident analytics endpoints: patterns, recurrence and cost impact.

Conventions shared with the incident endpoints: money in USD is a decimal string, times are ISO
8601 with offset, every body carries `as_of`. Percentages are numbers rounded half up.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from api.models import EXAMPLE_AS_OF, EXAMPLE_ID, AsOf, Money, examples


class Pattern(BaseModel):
    pattern_type: Literal["category_cluster", "severity_spike", "cascade_failure"]
    dimension: str = Field(description="The category, severity or run id the incidents share.")
    count: int = Field(ge=1)
    incident_ids: list[uuid.UUID] = Field(description="At most 10, newest first.")
    confidence: float = Field(ge=0, le=1)


class Patterns(BaseModel):
    """Patterns among the incidents started in (as_of - window_hours, as_of]."""

    model_config = examples(
        {
            "patterns": [
                {
                    "pattern_type": "category_cluster",
                    "dimension": "LLM_TIMEOUT",
                    "count": 4,
                    "incident_ids": [EXAMPLE_ID],
                    "confidence": 0.6,
                }
            ],
            "incidents_analyzed": 12,
            "window_hours": 24,
            "window_start": "2024-04-30T10:05:00Z",
            "window_end": EXAMPLE_AS_OF,
            "as_of": EXAMPLE_AS_OF,
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

    model_config = examples(
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
                    "recent_incident_ids": [EXAMPLE_ID],
                }
            ],
            "fingerprints": [
                {
                    "fingerprint": "openai/gpt-4o/timeout",
                    "occurrences": 5,
                    "reopens": 2,
                    "first_seen": "2024-04-02T08:00:00Z",
                    "last_seen": "2024-04-30T22:25:00Z",
                    "recent_incident_ids": [EXAMPLE_ID],
                }
            ],
            "baseline_days": 30,
            "recurrence_threshold": 3,
            "window_start": "2024-04-02T00:00:00Z",
            "total_recurring": 9,
            "total_groups": 1,
            "total_fingerprints": 1,
            "generated_at": EXAMPLE_AS_OF,
            "as_of": EXAMPLE_AS_OF,
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
    generated_at: datetime = Field(description="Equals as_of (kept from the seed).")
    as_of: AsOf
