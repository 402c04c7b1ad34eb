"""The response body of `/v1/incidents/patterns`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from api.bodies import EXAMPLE_AS_OF, EXAMPLE_ID, AsOfTime, examples


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
    as_of: AsOfTime
