"""The select behind `/v1/incidents/cost-impact`: the incidents with a cost started in a window,
grouped by (category, resolution method) (built once, see `api.windows`)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Integer, Select, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from api.ranked import Ranked, ranked, totals
from api.windows import AS_OF, START, TENANT, started_between, window
from storage import rules
from storage.schema import incidents


@dataclass(frozen=True, slots=True)
class CostGroupRow:
    category: str
    resolution_method: str
    incident_count: int
    total_cost: Decimal


@functools.cache
def _cost_groups() -> Select[Any]:
    i, method = incidents, rules.resolution_method()
    count, cost = func.count(), func.sum(i.c.cost_usd)
    return (
        select(
            i.c.category,
            method,
            count,
            cost,
            *totals(count, cost),
        )
        .where(started_between(TENANT, START, AS_OF), i.c.cost_usd > 0)
        .group_by(i.c.category, method)
        .order_by(cost.desc(), i.c.category, method)
        .limit(bindparam("limit", type_=Integer()))
    )


async def cost_groups(
    conn: AsyncConnection, tenant: str, start: datetime, as_of: datetime, limit: int
) -> Ranked:
    """Incidents with a cost, started in [start, as_of], by (category, method), costliest first."""
    parameters = window(tenant, start, as_of, tail=as_of) | {"limit": limit}
    return await ranked(
        conn,
        _cost_groups(),
        parameters,
        4,
        lambda c, m, n, s: CostGroupRow(c, m, int(n), Decimal(s)),
    )
