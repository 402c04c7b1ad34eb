"""`/v1/incidents/metrics` (GET): counts, times and SLA of the incidents started in a window of
`window_days` days ending at `as_of`."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter

from api.auth import AsOf, Tenant
from api.deps import AppSettings, Conn
from api.errors import ERROR_RESPONSES
from api.incident_metrics import queries
from api.incident_metrics.bodies import IncidentMetrics
from api.params import MetricsWindowDays
from domain.metrics import sla_compliance_rate

router = APIRouter(prefix="/v1/incidents/metrics", tags=["incidents"], responses=ERROR_RESPONSES)


@router.get("", response_model=IncidentMetrics, summary="Incident metrics and SLA")
async def incident_metrics(
    tenant: Tenant,
    conn: Conn,
    as_of: AsOf,
    settings: AppSettings,
    window_days: MetricsWindowDays = 30,
) -> IncidentMetrics:
    start = as_of - timedelta(days=window_days)
    row = await queries.incident_metrics(conn, tenant, start, as_of, settings.sla_targets())
    return IncidentMetrics.model_validate(
        {
            **row,
            "window_days": window_days,
            "window_start": start,
            "sla_compliance_rate": sla_compliance_rate(
                row["sla_met_count"], row["sla_breached_count"]
            ),
            "generated_at": as_of,
            "as_of": as_of,
        }
    )
