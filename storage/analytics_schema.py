"""The tables the stream processors keep (README, "Tables"), on `storage.schema.metadata`.

Importing this module adds them to that metadata; the Alembic environment and the schema tests
import it so that `metadata` holds every table.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    Index,
    Integer,
    PrimaryKeyConstraint,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, NUMERIC, UUID

from storage.schema import NOW, ZERO, Timestamp, Total, metadata

processor_snapshots = Table(
    "processor_snapshots",
    metadata,
    Column("processor", Text, nullable=False),
    Column("incident_id", UUID(as_uuid=True), nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("snapshot", JSONB, nullable=False),
    Column("updated_at", Timestamp, nullable=False, server_default=NOW),
    PrimaryKeyConstraint("processor", "incident_id"),
)
"""The last incident snapshot each processor applied: the base of its next difference."""

HISTORY_ROLLUP_COLUMNS = (
    "category", "severity", "cause_type", "started", "resolved", "resolution_seconds_sum",
    "resolution_count", "cost_usd",
)  # fmt: skip
"""What the historical endpoints read of a tenant's hourly rollups: covered by an index, a window
is read from it alone (a tenant's rollup rows lie on as many heap pages as rows)."""

incident_rollups_hourly = Table(
    "incident_rollups_hourly",
    metadata,
    Column("tenant_id", Text, nullable=False),
    Column("hour", Timestamp, nullable=False),
    Column("category", Text, nullable=False),
    Column("severity", Text, nullable=False),
    Column("cause_type", Text, nullable=False),
    Column("trigger_type", Text, nullable=False),
    Column("started", Integer, nullable=False, server_default=ZERO),
    Column("acknowledged", Integer, nullable=False, server_default=ZERO),
    Column("resolved", Integer, nullable=False, server_default=ZERO),
    Column("calls", BigInteger, nullable=False, server_default=ZERO),
    Column("cost_usd", Total, nullable=False, server_default=ZERO),
    Column("containment_seconds_sum", Total, nullable=False, server_default=ZERO),
    Column("containment_count", Integer, nullable=False, server_default=ZERO),
    Column("resolution_seconds_sum", Total, nullable=False, server_default=ZERO),
    Column("resolution_count", Integer, nullable=False, server_default=ZERO),
    Column("sla_met", Integer, nullable=False, server_default=ZERO),
    Column("sla_breached", Integer, nullable=False, server_default=ZERO),
    PrimaryKeyConstraint("tenant_id", "hour", "category", "severity", "cause_type", "trigger_type"),
    Index(
        "ix_incident_rollups_hourly_history",
        "tenant_id",
        "hour",
        postgresql_include=list(HISTORY_ROLLUP_COLUMNS),
    ),
)
"""Per tenant and start hour (UTC) and the incident's current category, severity, cause and
trigger: incidents started, acknowledged, resolved, their calls and cost, sums and counts of time
to containment and resolution (seconds), and SLA met / breached among the resolved ones."""

recurrence_daily = Table(
    "recurrence_daily",
    metadata,
    Column("tenant_id", Text, nullable=False),
    Column("day", Date, nullable=False),
    Column("category", Text, nullable=False),
    Column("resolution_method", Text, nullable=False),
    Column("incidents", Integer, nullable=False, server_default=ZERO),
    Column("reopens", Integer, nullable=False, server_default=ZERO),
    PrimaryKeyConstraint("tenant_id", "day", "category", "resolution_method"),
)
"""Per tenant, start day (UTC), category and resolution method (`unresolved` while open)."""

recurrence_fingerprints = Table(
    "recurrence_fingerprints",
    metadata,
    Column("tenant_id", Text, nullable=False),
    Column("fingerprint", Text, nullable=False),
    Column("incident_id", UUID(as_uuid=True), nullable=False),
    Column("category", Text, nullable=False),
    Column("started_at", Timestamp, nullable=False),
    Column("last_event_at", Timestamp, nullable=False),
    Column("reopen_count", Integer, nullable=False, server_default=ZERO),
    PrimaryKeyConstraint("tenant_id", "fingerprint", "incident_id"),
    Index("ix_recurrence_fingerprints_tenant_started", "tenant_id", "started_at"),
)
"""One row per incident and each of its fingerprints: occurrences, reopens, first and last seen
and the recent incident ids of a fingerprint are aggregates over these rows."""

pattern_members = Table(
    "pattern_members",
    metadata,
    Column("tenant_id", Text, nullable=False),
    Column("pattern_type", Text, nullable=False),
    Column("dimension", Text, nullable=False),
    Column("incident_id", UUID(as_uuid=True), nullable=False),
    Column("started_at", Timestamp, nullable=False),
    PrimaryKeyConstraint("tenant_id", "pattern_type", "dimension", "incident_id"),
    Index("ix_pattern_members_tenant_type_started", "tenant_id", "pattern_type", "started_at"),
)
"""Which incidents count toward which pattern: `category_cluster` by category, `severity_spike`
by severity (high and critical only), `cascade_failure` by run id."""

detected_patterns = Table(
    "detected_patterns",
    metadata,
    Column("tenant_id", Text, nullable=False),
    Column("pattern_type", Text, nullable=False),
    Column("dimension", Text, nullable=False),
    Column("count", Integer, nullable=False),
    Column("incident_ids", ARRAY(UUID(as_uuid=True)), nullable=False),
    Column("confidence", NUMERIC(4, 2), nullable=False),
    Column("window_hours", Integer, nullable=False),
    Column("detected_at", Timestamp, nullable=False),
    PrimaryKeyConstraint("tenant_id", "pattern_type", "dimension"),
    Index("ix_detected_patterns_tenant_detected", "tenant_id", "detected_at"),
)
"""Patterns as the processor last detected them over the default window (24 h before the
incident change that triggered the detection)."""

cost_daily = Table(
    "cost_daily",
    metadata,
    Column("tenant_id", Text, nullable=False),
    Column("day", Date, nullable=False),
    Column("dimension", Text, nullable=False),
    Column("key", Text, nullable=False),
    Column("incidents", Integer, nullable=False, server_default=ZERO),
    Column("calls", BigInteger, nullable=False, server_default=ZERO),
    Column("cost_usd", Total, nullable=False, server_default=ZERO),
    PrimaryKeyConstraint("tenant_id", "day", "dimension", "key"),
)
"""Per tenant, start day (UTC) and dimension (`category`, `model`, `agent`) and its key: incidents,
calls and cost lost to failures and violations."""
