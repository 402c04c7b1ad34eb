"""The incidents of a window, the tail of the current bucket, and the bind parameters of both.

The processors' tables are bucketed (hour or UTC day), while a window ends at `as_of`, inside the
last bucket; incidents of that bucket may start after `as_of` (in partitions whose watermark is
ahead). So a select reads the processors' table for the buckets before the one holding `as_of`,
and the `incidents` of the rest of the window with the same contribution in SQL
(`storage.rules`): the tail `[start of as_of's bucket, as_of]`, a few rows of one tenant.

Indexes relied on: the processors' tables' primary keys (tenant first, then the time bucket),
`ix_incidents_tenant_state_started` (reached with `lifecycle_state IN (<all states>)` so that the
started_at range is an index range per state), `ix_recurrence_fingerprints_tenant_started` and
`ix_pattern_members_tenant_type_started` (with `pattern_type IN (<all types>)`).

The analytics selects are built once, with these bind parameters, and reused: building one per
request costs more CPU than the database spends on it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Date, Text, and_, bindparam

from storage.rules import ALL_STATES
from storage.schema import Timestamp, incidents

TENANT = bindparam("tenant", type_=Text())
START = bindparam("start", type_=Timestamp)
"""Where the window starts."""
TAIL = bindparam("tail", type_=Timestamp)
"""Where the bucket holding `as_of` starts (an hour or a UTC day)."""
AS_OF = bindparam("as_of", type_=Timestamp)
START_DAY = bindparam("start_day", type_=Date())
TAIL_DAY = bindparam("tail_day", type_=Date())


def window(tenant: str, start: datetime, as_of: datetime, tail: datetime) -> dict[str, Any]:
    """Values of the window's bind parameters."""
    return {
        "tenant": tenant,
        "start": start,
        "as_of": as_of,
        "tail": tail,
        "start_day": start.date(),
        "tail_day": tail.date(),
    }


def started_between(tenant: Any, start: Any, end: Any) -> ColumnElement[bool]:
    """The tenant's incidents started in [start, end], by ix_incidents_tenant_state_started."""
    return and_(
        incidents.c.tenant_id == tenant,
        incidents.c.lifecycle_state.in_(ALL_STATES),
        incidents.c.started_at >= start,
        incidents.c.started_at <= end,
    )
