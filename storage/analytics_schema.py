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
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

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
    Column("started", Integer, nullable=False, server_default=ZERO),
    Column("resolved", Integer, nullable=False, server_default=ZERO),
    Column("cost_usd", Total, nullable=False, server_default=ZERO),
    Column("resolution_seconds_sum", Total, nullable=False, server_default=ZERO),
    Column("resolution_count", Integer, nullable=False, server_default=ZERO),
    PrimaryKeyConstraint("tenant_id", "hour", "category", "severity", "cause_type"),
    Index(
        "ix_incident_rollups_hourly_history",
        "tenant_id",
        "hour",
        postgresql_include=list(HISTORY_ROLLUP_COLUMNS),
    ),
)
"""Per tenant and start hour (UTC) and the incident's current category, severity and cause:
incidents started and resolved, their cost, and the sum and count of their times to resolution
(seconds): what `/v1/incidents/historical/*` read (migration 0013 dropped the rest)."""

recurrence_daily = Table(
    "recurrence_daily",
    metadata,
    Column("tenant_id", Text, nullable=False),
    Column("day", Date, nullable=False),
    Column("category", Text, nullable=False),
    Column("resolution_method", Text, nullable=False),
    Column("incidents", Integer, nullable=False, server_default=ZERO),
    PrimaryKeyConstraint("tenant_id", "day", "category", "resolution_method"),
)
"""Per tenant, start day (UTC), category and resolution method (`unresolved` while open): the
incidents of `/v1/incidents/recurring`'s groups (reopens are summed from
`recurrence_fingerprints`)."""

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
    Index("ix_cost_daily_tenant_day_spend", "tenant_id", "day",
          postgresql_include=["dimension", "key", "incidents", "calls", "cost_usd"]),
)  # fmt: skip
"""Per tenant, start day (UTC) and dimension (`category`, `model`, `agent`) and its key: incidents,
calls and cost lost to failures and violations. `/v1/costs` reads a window of days from its
covering index alone (a tenant's rows lie on as many heap pages as rows)."""

lesson_members = Table(
    "lesson_members",
    metadata,
    Column("tenant_id", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("incident_id", UUID(as_uuid=True), nullable=False),
    Column("title", Text, nullable=False),
    Column("category", Text, nullable=False),
    Column("severity", Text, nullable=False),
    Column("started_at", Timestamp, nullable=False),
    Column("last_event_at", Timestamp, nullable=False),
    Column("resolved_at", Timestamp),
    Column("resolution_method", Text),
    Column("calls_affected", Integer, nullable=False),
    Column("reopen_count", Integer, nullable=False),
    PrimaryKeyConstraint("tenant_id", "kind", "subject", "incident_id"),
)
"""The incident behind each per-incident lesson (`severe_incident_resolved`, `reopened`,
`overflow`; subject: the incident id), with what the lesson's text reads of it."""

lessons = Table(
    "lessons",
    metadata,
    Column("lesson_id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("incident_ids", ARRAY(UUID(as_uuid=True)), nullable=False),
    Column("incident_count", Integer, nullable=False),
    Column("proposed_action", Text, nullable=False),
    Column("first_seen", Timestamp, nullable=False),
    Column("last_seen", Timestamp, nullable=False),
    Index("ix_lessons_tenant_first_seen", "tenant_id", "first_seen", "lesson_id"),
    Index("ix_lessons_tenant_kind_first_seen", "tenant_id", "kind", "first_seen", "lesson_id"),
)
"""The lessons whose rule holds now, assembled from `lesson_members` and, for
`recurring_fingerprint`, from `recurrence_fingerprints`; `incident_ids` by start. A lesson whose
rule stops holding is deleted; its triage state stays in `lesson_triage`."""

lesson_triage = Table(
    "lesson_triage",
    metadata,
    Column("lesson_id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("deferred_until", Timestamp),
    Column("policy_draft", Text),
    Column("changed_at", Timestamp, nullable=False),
    Column("changed_by", Text, nullable=False),
    Column("note", Text),
    Column("commands", Integer, nullable=False),
    Index("ix_lesson_triage_tenant", "tenant_id"),
)
"""The triage state each lesson commands left, by lesson id (no row: `pending`). The state is
as stored: a `deferred` lesson whose `deferred_until` has passed reads as `pending`."""

lesson_commands = Table(
    "lesson_commands",
    metadata,
    Column("tenant_id", Text, nullable=False),
    Column("command_id", Text, nullable=False),
    Column("lesson_id", UUID(as_uuid=True), nullable=False),
    Column("action", Text, nullable=False),
    Column("issued_at", Timestamp, nullable=False),
    Column("issued_by", Text, nullable=False),
    Column("until", Timestamp),
    Column("policy_draft", Text),
    Column("note", Text),
    Column("received_at", Timestamp, nullable=False, server_default=NOW),
    PrimaryKeyConstraint("tenant_id", "command_id"),
    Index("ix_lesson_commands_lesson_issued", "lesson_id", "issued_at"),
)
"""Applied lesson commands: a command id of a tenant is applied once (rejected commands are
dead letters, not kept here)."""
