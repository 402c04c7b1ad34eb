"""The select behind `/v1/incidents/metrics`: one aggregate over the incidents started in a window,
read from `ix_incidents_tenant_started_metrics` alone (built once per SLA targets, with the bind
parameters of `api.windows`)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import BIGINT, ColumnElement, Select, cast, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from api.windows import AS_OF, START, TENANT, window
from domain.incidents import LifecycleState
from domain.metrics import SlaTargets
from storage import rules
from storage.schema import incidents


def _ms(interval: ColumnElement[Any]) -> ColumnElement[Any]:
    return rules.epoch_seconds(interval) * 1000


def _as_ms(value: ColumnElement[Any]) -> ColumnElement[int]:
    return cast(func.round(value), BIGINT)


@functools.lru_cache(maxsize=8)
def _metrics(targets: SlaTargets) -> Select[Any]:
    """The select for `targets`, with the bind parameters `tenant`, `start` and `as_of`."""
    c = incidents.c
    containment = _ms(rules.time_to_containment())
    resolution = _ms(rules.time_to_resolution())
    columns: list[Any] = [
        func.count().label("total_count"),
        func.count().filter(c.lifecycle_state.in_(rules.OPEN_STATES)).label("active_count"),
        func.count().filter(c.lifecycle_state == LifecycleState.ACKED.value).label("acked_count"),
        func.count().filter(c.lifecycle_state.in_(rules.RESOLVED_STATES)).label("resolved_count"),
        *(
            func.count().filter(c.severity == name).label(f"{name}_count")
            for name in rules.SEVERITIES
        ),
        _as_ms(func.avg(containment)).label("avg_time_to_containment_ms"),
        _as_ms(func.percentile_cont(0.5).within_group(containment)).label(
            "median_time_to_containment_ms"
        ),
        _as_ms(func.avg(resolution)).label("avg_time_to_resolution_ms"),
        _as_ms(func.percentile_cont(0.5).within_group(resolution)).label(
            "median_time_to_resolution_ms"
        ),
        func.count().filter(rules.sla_met(targets)).label("sla_met_count"),
        func.count().filter(rules.sla_breached(targets, AS_OF)).label("sla_breached_count"),
    ]
    return select(*columns).where(
        c.tenant_id == TENANT, c.started_at >= START, c.started_at <= AS_OF
    )


async def incident_metrics(
    conn: AsyncConnection, tenant_id: str, start: datetime, as_of: datetime, targets: SlaTargets
) -> Mapping[Any, Any]:
    """Counts, average and median times (ms) and SLA of incidents started in [start, as_of]."""
    parameters = window(tenant_id, start, as_of, tail=as_of)
    row: Mapping[Any, Any] = (await conn.execute(_metrics(targets), parameters)).mappings().one()
    return row
