"""The response body of `/v1/incidents/metrics`."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from api.bodies import AsOfTime


class IncidentMetrics(BaseModel):
    """Counts, times and SLA of the incidents started in the window ending at as_of."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "window_days": 30,
                    "window_start": "2024-04-01T10:05:00Z",
                    "total_count": 40,
                    "active_count": 6,
                    "acked_count": 2,
                    "resolved_count": 34,
                    "critical_count": 1,
                    "high_count": 5,
                    "medium_count": 14,
                    "low_count": 20,
                    "avg_time_to_containment_ms": 512000,
                    "median_time_to_containment_ms": 300000,
                    "avg_time_to_resolution_ms": 1100000,
                    "median_time_to_resolution_ms": 900000,
                    "sla_met_count": 33,
                    "sla_breached_count": 2,
                    "sla_compliance_rate": 94.29,
                    "generated_at": "2024-05-01T10:05:00Z",
                    "as_of": "2024-05-01T10:05:00Z",
                }
            ]
        }
    )

    window_days: int
    window_start: datetime
    total_count: int
    active_count: int = Field(description="ACTIVE and ACKED")
    acked_count: int
    resolved_count: int
    critical_count: int
    high_count: int
    medium_count: int
    low_count: int
    avg_time_to_containment_ms: int | None
    median_time_to_containment_ms: int | None
    avg_time_to_resolution_ms: int | None
    median_time_to_resolution_ms: int | None
    sla_met_count: int
    sla_breached_count: int = Field(description="Resolved late, or still open past target.")
    sla_compliance_rate: float | None = Field(description="met / (met + breached) * 100, 2 dp")
    generated_at: datetime
    as_of: AsOfTime
