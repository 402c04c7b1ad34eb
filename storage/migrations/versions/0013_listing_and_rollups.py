"""Deterministic listing pages, and the processors' figures that no endpoint read.

`incidents.created_watermark`: the event time the ingest worker created the incident at (the time
of its first event, or its partition's committed watermark if that was later). A listing read at
`as_of` leaves out the incidents stamped at or after it, so a page read later at the same `as_of`
leaves out every incident created since (README, "Paging").
Rows written before this revision keep it null (they belong to every listing), so adding the
column rewrites no row. `ix_incidents_tenant_created_watermark` (partial: stamped rows only) finds
a tenant's incidents stamped at or after an `as_of`.

`ix_cost_daily_tenant_day_spend` covers what `/v1/costs` reads of a window of days (its cost
incidents read the trend of their categories on every page).

Dropped, because no endpoint read them: `detected_patterns` (`/v1/incidents/patterns` detects
patterns from `pattern_members` over any window up to `as_of`, which one stored 24 h detection
ending at the processor's newest event could not serve); of `incident_rollups_hourly` the key
column `trigger_type` and the counters `acknowledged`, `calls`, `containment_seconds_sum`,
`containment_count`, `sla_met` and `sla_breached`; `recurrence_daily.reopens`. The rollup rows that
differed only by `trigger_type` are summed into one.

The downgrade rebuilds what was dropped from the processors' stored snapshots (a processor's
tables are the sum of the contributions of its `processor_snapshots`), `sla_met` and `sla_breached`
with the SLA targets that were the defaults at this revision (critical 1 h, high 4 h, medium 24 h,
low 72 h); `detected_patterns` comes back empty and the patterns processor refills each tenant's
with its next change.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLLUP_KEY = ("tenant_id", "hour", "category", "severity", "cause_type")
KEPT_COUNTERS = ("started", "resolved", "cost_usd", "resolution_seconds_sum", "resolution_count")
DROPPED_COUNTERS = {
    "acknowledged": "integer",
    "calls": "bigint",
    "containment_seconds_sum": "numeric(38, 8)",
    "containment_count": "integer",
    "sla_met": "integer",
    "sla_breached": "integer",
}


def upgrade() -> None:
    op.execute("ALTER TABLE incidents ADD COLUMN created_watermark timestamptz")
    op.execute(
        "CREATE INDEX ix_incidents_tenant_created_watermark"
        " ON incidents (tenant_id, created_watermark) WHERE created_watermark IS NOT NULL"
    )
    op.execute(
        "CREATE INDEX ix_cost_daily_tenant_day_spend ON cost_daily (tenant_id, day)"
        " INCLUDE (dimension, key, incidents, calls, cost_usd)"
    )
    _merge_rollups_by_trigger_type()
    op.execute("ALTER TABLE recurrence_daily DROP COLUMN reopens")
    op.execute("DROP TABLE detected_patterns")


def _merge_rollups_by_trigger_type() -> None:
    key, kept = ", ".join(ROLLUP_KEY), ", ".join(KEPT_COUNTERS)
    sums = ", ".join(f"sum({name}) AS {name}" for name in KEPT_COUNTERS)
    op.execute(
        f"CREATE TEMPORARY TABLE merged_rollups AS SELECT {key}, {sums}"
        f" FROM incident_rollups_hourly GROUP BY {key}"
    )
    op.execute("TRUNCATE incident_rollups_hourly")
    drops = ", ".join(f"DROP COLUMN {name}" for name in ("trigger_type", *DROPPED_COUNTERS))
    op.execute(
        f"ALTER TABLE incident_rollups_hourly DROP CONSTRAINT incident_rollups_hourly_pkey, {drops}"
    )
    op.execute(f"ALTER TABLE incident_rollups_hourly ADD PRIMARY KEY ({key})")
    op.execute(
        f"INSERT INTO incident_rollups_hourly ({key}, {kept})"
        f" SELECT {key}, {kept} FROM merged_rollups"
    )
    op.execute("DROP TABLE merged_rollups")


STORED = """
    SELECT snapshot->>'tenant_id' AS tenant_id,
           (snapshot->>'started_at')::timestamptz AS started_at,
           (snapshot->>'acked_at')::timestamptz AS acked_at,
           CASE WHEN snapshot->>'lifecycle_state' = 'RESOLVED'
                THEN (snapshot->>'resolved_at')::timestamptz END AS resolved_at,
           snapshot->>'resolution_method' AS resolution_method,
           snapshot->>'category' AS category,
           snapshot->>'severity' AS severity,
           snapshot->>'cause_type' AS cause_type,
           snapshot->>'trigger_type' AS trigger_type,
           (snapshot->>'calls_affected')::bigint AS calls_affected,
           (snapshot->>'cost_usd')::numeric AS cost_usd,
           (snapshot->>'reopen_count')::integer AS reopen_count
    FROM processor_snapshots WHERE processor = '{processor}'
"""
"""The incidents a processor last applied, as the columns its contributions read."""

OLD_ROLLUP_COLUMNS = (
    *ROLLUP_KEY, "trigger_type", "started", "acknowledged", "resolved", "calls", "cost_usd",
    "containment_seconds_sum", "containment_count", "resolution_seconds_sum", "resolution_count",
    "sla_met", "sla_breached",
)  # fmt: skip

ROLLUPS_FROM_SNAPSHOTS = f"""
INSERT INTO incident_rollups_hourly ({", ".join(OLD_ROLLUP_COLUMNS)})
WITH stored AS ({STORED.format(processor="rollups")}),
     timed AS (
         SELECT *, coalesce(acked_at, resolved_at) - started_at AS containment,
                resolved_at - started_at AS resolution,
                started_at + CASE severity WHEN 'critical' THEN interval '1 hour'
                                           WHEN 'high' THEN interval '4 hours'
                                           WHEN 'medium' THEN interval '24 hours'
                                           ELSE interval '72 hours' END AS deadline
         FROM stored)
SELECT tenant_id, date_trunc('hour', started_at, 'UTC'), category, severity, cause_type,
       trigger_type, count(*), count(acked_at), count(resolved_at), sum(calls_affected),
       sum(cost_usd), coalesce(sum(extract(epoch FROM containment)), 0), count(containment),
       coalesce(sum(extract(epoch FROM resolution)), 0), count(resolution),
       count(*) FILTER (WHERE resolved_at <= deadline),
       count(*) FILTER (WHERE resolved_at > deadline)
FROM timed GROUP BY 1, 2, 3, 4, 5, 6
"""

REOPENS_FROM_SNAPSHOTS = f"""
UPDATE recurrence_daily AS daily SET reopens = stored_rows.reopens
FROM (SELECT tenant_id, date(timezone('UTC', started_at)) AS day, category,
             CASE WHEN resolved_at IS NOT NULL
                  THEN coalesce(nullif(resolution_method, ''), 'unresolved')
                  ELSE 'unresolved' END AS resolution_method,
             sum(reopen_count) AS reopens
      FROM ({STORED.format(processor="recurrence")}) AS stored
      GROUP BY 1, 2, 3, 4) AS stored_rows
WHERE daily.tenant_id = stored_rows.tenant_id AND daily.day = stored_rows.day
  AND daily.category = stored_rows.category
  AND daily.resolution_method = stored_rows.resolution_method
"""


def downgrade() -> None:
    op.execute(
        "CREATE TABLE detected_patterns ("
        " tenant_id text NOT NULL, pattern_type text NOT NULL, dimension text NOT NULL,"
        " count integer NOT NULL, incident_ids uuid[] NOT NULL, confidence numeric(4, 2) NOT NULL,"
        " window_hours integer NOT NULL, detected_at timestamptz NOT NULL,"
        " PRIMARY KEY (tenant_id, pattern_type, dimension))"
    )
    op.execute(
        "CREATE INDEX ix_detected_patterns_tenant_detected"
        " ON detected_patterns (tenant_id, detected_at)"
    )
    op.execute("ALTER TABLE recurrence_daily ADD COLUMN reopens integer NOT NULL DEFAULT 0")
    op.execute(REOPENS_FROM_SNAPSHOTS)
    op.execute("TRUNCATE incident_rollups_hourly")
    op.execute(
        "ALTER TABLE incident_rollups_hourly DROP CONSTRAINT incident_rollups_hourly_pkey,"
        " ADD COLUMN trigger_type text NOT NULL"
    )
    op.execute(
        "ALTER TABLE incident_rollups_hourly "
        + ", ".join(
            f"ADD COLUMN {name} {kind} NOT NULL DEFAULT 0"
            for name, kind in DROPPED_COUNTERS.items()
        )
    )
    op.execute(
        "ALTER TABLE incident_rollups_hourly ADD PRIMARY KEY"
        f" ({', '.join(ROLLUP_KEY)}, trigger_type)"
    )
    op.execute(ROLLUPS_FROM_SNAPSHOTS)
    op.execute("DROP INDEX ix_cost_daily_tenant_day_spend")
    op.execute("DROP INDEX ix_incidents_tenant_created_watermark")
    op.execute("ALTER TABLE incidents DROP COLUMN created_watermark")
