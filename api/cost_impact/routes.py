"""`/v1/incidents/cost-impact` (GET): the cost of the incidents started in the last
`baseline_days` UTC days up to `as_of`, by category and resolution method."""

from __future__ import annotations

from fastapi import APIRouter

from api.auth import AsOf, Tenant
from api.cost_impact.bodies import CostImpact, CostImpactGroup
from api.cost_impact.queries import cost_groups
from api.deps import Conn
from api.errors import ERROR_RESPONSES
from api.params import BaselineDays, GroupLimit
from domain.buckets import days_before
from domain.rounding import money

router = APIRouter(
    prefix="/v1/incidents/cost-impact", tags=["analytics"], responses=ERROR_RESPONSES
)


@router.get("", response_model=CostImpact, summary="What failures cost")
async def get_cost_impact(
    tenant: Tenant,
    conn: Conn,
    as_of: AsOf,
    baseline_days: BaselineDays = 30,
    limit: GroupLimit = 20,
) -> CostImpact:
    """Incidents with a cost by (category, resolution method); totals cover every group."""
    start = days_before(as_of, baseline_days - 1)
    ranked = await cost_groups(conn, tenant, start, as_of, limit)
    return CostImpact(
        summaries=[
            CostImpactGroup(
                category=row.category,
                resolution_method=row.resolution_method,
                incident_count=row.incident_count,
                total_cost_impact=money(row.total_cost),
                avg_cost_impact=money(row.total_cost / row.incident_count),
            )
            for row in ranked.rows
        ],
        total_cost_impact=money(ranked.total_amount),
        total_incidents=ranked.total_count,
        total_groups=ranked.total_groups,
        baseline_days=baseline_days,
        window_start=start,
        generated_at=as_of,
        as_of=as_of,
    )
