"""The response body of `/v1/incidents/recurring`."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from api.bodies import EXAMPLE_AS_OF, EXAMPLE_ID, AsOfTime, GeneratedAt, examples


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
    generated_at: GeneratedAt
    as_of: AsOfTime
