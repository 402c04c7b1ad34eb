"""The PostgreSQL tables, as SQLAlchemy Core metadata.

This module is the reference the queries are written against; the Alembic migrations in
`storage/migrations/versions/` create the same tables, and an integration test compares the two
(`alembic.autogenerate.compare_metadata`) so that they cannot drift apart. Every index, unique and
check constraint has an explicit name. The stream processors' tables are in
`storage.analytics_schema`, on the same `metadata`: import that module too for every table.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import (
    DDL,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Identity,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    event,
    false,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, BYTEA, JSONB, NUMERIC, TIMESTAMP, UUID

from storage.rules import ALL_STATES, SEVERITIES, SEVERITY_RANK_SQL

metadata = MetaData()

Timestamp = TIMESTAMP(timezone=True)
Money: NUMERIC[Decimal] = NUMERIC(20, 8)
"""One event's cost: below 10^12 (`domain.contracts.COST_LIMIT`), 8 decimal places."""
Total: NUMERIC[Decimal] = NUMERIC(38, 8)
"""A sum of many costs or durations (an incident's cost, the rollups): 30 integer digits."""
NOW = text("now()")
EMPTY_JSON = text("'{}'::jsonb")
EMPTY_TEXTS = text("'{}'::text[]")
ZERO = text("0")


def _in(column: str, values: list[str]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


LISTING_COLUMNS = (
    "incident_id", "started_at", "resolved_at", "last_event_at", "calls_affected", "cost_usd",
    "severity", "category", "cause_type", "trigger_type", "is_synthetic",
)  # fmt: skip
"""What `/v1/incidents` filters and sorts on: covered by an index, a page is chosen from the index
alone and only its rows are read (a tenant's incidents lie on as many heap pages as rows)."""

LISTING_SORTS: dict[str, Any] = {
    "calls": "calls_affected",
    "cost": "cost_usd",
    "severity": text(f"({SEVERITY_RANK_SQL})"),
}
"""Sorts of a listing with an index of their own per tenant and state (started_at has one
already), by index name suffix: a page of one state is read in order, stopping after LIMIT rows."""

METRICS_COLUMNS = ("lifecycle_state", "severity", "acked_at", "resolved_at")
"""What `/v1/incidents/metrics` reads of the incidents started in a window, beside started_at:
covered by an index, a window is read from it alone (14 ms of database time, then 5.5)."""

CONTEXT_TEXT_COLUMNS = (
    "description", "source_run_id", "synthetic_scenario_id",
    "first_error_code", "first_error_message", "latest_error_code", "latest_error_message",
    "first_policy_id", "first_violation_id", "first_violated_rule", "first_action_taken",
    "latest_policy_id", "latest_violation_id", "latest_violated_rule", "latest_action_taken",
)  # fmt: skip
"""What on-call reads first (migration 0011): nullable text, null where the incident never saw
that kind of event (and `description` on rows written before it existed, until their next
change)."""

incidents = Table(
    "incidents",
    metadata,
    Column("incident_id", UUID(as_uuid=True), primary_key=True),
    Column("partition", Integer, nullable=False),
    Column("tenant_id", Text, nullable=False),
    Column("trigger_type", Text, nullable=False),
    Column("fingerprint", Text, nullable=False),
    Column("fingerprints", ARRAY(Text), nullable=False, server_default=EMPTY_TEXTS),
    Column("category", Text, nullable=False),
    Column("cause_type", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("severity", Text, nullable=False),
    Column("lifecycle_state", Text, nullable=False),
    Column("started_at", Timestamp, nullable=False),
    Column("opened_at", Timestamp, nullable=False),
    Column("last_event_at", Timestamp, nullable=False),
    Column("acked_at", Timestamp),
    Column("acked_by", Text),
    Column("resolved_at", Timestamp),
    Column("resolved_by", Text),
    Column("resolution_method", Text),
    Column("calls_affected", Integer, nullable=False, server_default=ZERO),
    Column("related_call_ids", ARRAY(Text), nullable=False, server_default=EMPTY_TEXTS),
    Column("run_ids", ARRAY(Text), nullable=False, server_default=EMPTY_TEXTS),
    Column("cost_usd", Total, nullable=False, server_default=ZERO),
    Column("reopen_count", Integer, nullable=False, server_default=ZERO),
    Column("absorbed", JSONB, nullable=False, server_default=EMPTY_JSON),
    Column("breakdown", JSONB, nullable=False, server_default=EMPTY_JSON),
    Column("is_synthetic", Boolean, nullable=False, server_default=false()),
    Column("version", BigInteger, nullable=False, server_default=ZERO),
    Column("updated_at", Timestamp, nullable=False, server_default=NOW),
    *(Column(name, Text) for name in CONTEXT_TEXT_COLUMNS),
    Column("agent_ids", ARRAY(Text), nullable=False, server_default=EMPTY_TEXTS),
    # The event time the ingest worker created the incident at (`storage.ingest_store._stamped`),
    # never changed; a listing at `as_of` leaves out the incidents stamped at or after it (README,
    # "Paging"). Null: written before migration 0013 (or by a bulk load), in every listing.
    Column("created_watermark", Timestamp),
    CheckConstraint(_in("lifecycle_state", list(ALL_STATES)), name="ck_incidents_lifecycle_state"),
    CheckConstraint(_in("severity", list(SEVERITIES)), name="ck_incidents_severity"),
    Index("ix_incidents_tenant_state_started", "tenant_id", "lifecycle_state", "started_at"),
    Index("ix_incidents_tenant_resolved", "tenant_id", "resolved_at"),
    Index("ix_incidents_tenant_last_event", "tenant_id", "last_event_at"),
    Index("ix_incidents_partition_state", "partition", "lifecycle_state"),
    Index("ix_incidents_partition_resolved", "partition", "resolved_at"),
    Index("ix_incidents_partition_started", "partition", "started_at"),
    Index("ix_incidents_partition_opened", "partition", "opened_at"),
    Index(
        "ix_incidents_tenant_state_listing",
        "tenant_id",
        "lifecycle_state",
        postgresql_include=list(LISTING_COLUMNS),
    ),
    Index("ix_incidents_tenant_created_watermark", "tenant_id", "created_watermark",
          postgresql_where=text("created_watermark IS NOT NULL")),
    Index("ix_incidents_tenant_started_metrics", "tenant_id", "started_at",
          postgresql_include=list(METRICS_COLUMNS)),
    *(
        Index(f"ix_incidents_tenant_state_{name}", "tenant_id", "lifecycle_state", sort,
              "incident_id")
        for name, sort in LISTING_SORTS.items()
    ),
)  # fmt: skip

UNCOMPRESSED_INCIDENT_COLUMNS = ("related_call_ids", "run_ids", "breakdown", "absorbed")
"""Rewritten with the incident on every batch that touches it: stored out of line without
compression, which costs less CPU than pglz on each rewrite (migration 0004)."""

for _name in UNCOMPRESSED_INCIDENT_COLUMNS:
    event.listen(
        incidents,
        "after_create",
        DDL(f"ALTER TABLE incidents ALTER COLUMN {_name} SET STORAGE EXTERNAL"),  # type: ignore[no-untyped-call]
    )


incident_counts = Table(
    "incident_counts",
    metadata,
    Column("tenant_id", Text, nullable=False),
    Column("lifecycle_state", Text, nullable=False),
    Column("incidents", BigInteger, nullable=False),
    PrimaryKeyConstraint("tenant_id", "lifecycle_state"),
)
"""How many incidents each tenant has in each lifecycle state, kept exact by triggers on
`incidents` whoever writes it: a listing's total without counting a tenant's incidents (which
grew with the tenant: 1.5 ms of database time per page at 4,000 resolved incidents)."""

COUNT_INCIDENTS_FUNCTION = """
CREATE OR REPLACE FUNCTION count_incidents() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM incident_counts;
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE incident_counts SET incidents = incidents - 1
        WHERE tenant_id = OLD.tenant_id AND lifecycle_state = OLD.lifecycle_state;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO incident_counts AS counted (tenant_id, lifecycle_state, incidents)
        VALUES (NEW.tenant_id, NEW.lifecycle_state, 1)
        ON CONFLICT (tenant_id, lifecycle_state)
        DO UPDATE SET incidents = counted.incidents + 1;
    END IF;
    RETURN NULL;
END
$$
"""
"""The trigger function behind `incident_counts` (migration 0008 holds the same text)."""

COUNT_INCIDENTS_TRIGGERS = (
    "CREATE TRIGGER incidents_counted_on_insert_or_delete AFTER INSERT OR DELETE ON incidents"
    " FOR EACH ROW EXECUTE FUNCTION count_incidents()",
    # Only a change of state moves a count: the ingest worker rewrites every touched incident on
    # every batch, and the WHEN keeps those rewrites from calling the function.
    "CREATE TRIGGER incidents_counted_on_state_change"
    " AFTER UPDATE OF tenant_id, lifecycle_state ON incidents FOR EACH ROW"
    " WHEN (OLD.tenant_id IS DISTINCT FROM NEW.tenant_id"
    " OR OLD.lifecycle_state IS DISTINCT FROM NEW.lifecycle_state)"
    " EXECUTE FUNCTION count_incidents()",
    "CREATE TRIGGER incidents_counted_on_truncate AFTER TRUNCATE ON incidents"
    " FOR EACH STATEMENT EXECUTE FUNCTION count_incidents()",
)

RECOUNT_INCIDENTS = (
    "DELETE FROM incident_counts",
    "INSERT INTO incident_counts (tenant_id, lifecycle_state, incidents)"
    " SELECT tenant_id, lifecycle_state, count(*) FROM incidents GROUP BY 1, 2",
)
"""Statements that fill `incident_counts` from scratch. A bulk load runs them after writing
`incidents` with the triggers disabled (`ALTER TABLE incidents DISABLE TRIGGER USER`): in one
transaction the triggers would update a tenant's count row once per incident, each update a new
row version that the next one walks past."""

for _statement in (COUNT_INCIDENTS_FUNCTION, *COUNT_INCIDENTS_TRIGGERS):
    event.listen(incidents, "after_create", DDL(_statement))  # type: ignore[no-untyped-call]


incident_keys = Table(
    "incident_keys",
    metadata,
    Column("tenant_id", Text, nullable=False),
    Column("trigger_type", Text, nullable=False),
    Column("fingerprint", Text, nullable=False),
    Column("partition", Integer, nullable=False),
    Column("incident_id", UUID(as_uuid=True), nullable=False),
    PrimaryKeyConstraint("tenant_id", "trigger_type", "fingerprint"),
    Index("ix_incident_keys_partition", "partition"),
)


def _event_columns() -> list[Column[Any]]:
    """The fields common to both signal contracts, in contract order."""
    return [
        Column("event_id", Text, primary_key=True),
        Column("tenant_id", Text, nullable=False),
        Column("occurred_at", Timestamp, nullable=False),
        Column("schema_version", Integer, nullable=False, server_default=text("1")),
        Column("fingerprint", Text),
        Column("is_synthetic", Boolean, nullable=False, server_default=false()),
        Column("synthetic_scenario_id", Text),
        Column("metadata", JSONB),
        Column("run_id", Text, nullable=False),
    ]


def _stored_columns() -> list[Column[Any]]:
    """Columns every stored event ends with: arrival time and the incident it was applied to."""
    return [
        Column("received_at", Timestamp, nullable=False, server_default=NOW),
        Column("incident_id", UUID(as_uuid=True)),
    ]


llm_call_failures = Table(
    "llm_call_failures",
    metadata,
    *_event_columns(),
    Column("call_id", Text),
    Column("agent_id", Text),
    Column("integration_id", Text),
    Column("provider", Text, nullable=False),
    Column("model", Text, nullable=False),
    Column("failure_type", Text, nullable=False),
    Column("error_code", Text),
    Column("error_message", Text),
    Column("request_id", Text),
    Column("duration_ms", Integer),
    Column("tokens_in", Integer, nullable=False, server_default=ZERO),
    Column("tokens_out", Integer, nullable=False, server_default=ZERO),
    Column("cost_usd", Money, nullable=False, server_default=ZERO),
    *_stored_columns(),
    Index("ix_llm_call_failures_tenant_run", "tenant_id", "run_id"),
    Index("ix_llm_call_failures_incident_occurred", "incident_id", "occurred_at"),
)

policy_violations = Table(
    "policy_violations",
    metadata,
    *_event_columns(),
    Column("violation_id", Text),
    Column("policy_id", Text, nullable=False),
    Column("policy_type", Text),
    Column("violated_rule", Text, nullable=False),
    Column("severity", Text, nullable=False),
    Column("action_taken", Text),
    Column("reason", Text),
    Column("evaluated_value", Text),
    Column("threshold_condition", Text),
    Column("agent_id", Text),
    Column("cause_type", Text, nullable=False),
    Column("cost_usd", Money, nullable=False, server_default=ZERO),
    Column("evidence", JSONB),
    *_stored_columns(),
    Index("ix_policy_violations_tenant_run", "tenant_id", "run_id"),
    Index("ix_policy_violations_incident_occurred", "incident_id", "occurred_at"),
)

incident_commands = Table(
    "incident_commands",
    metadata,
    Column("command_id", Text, primary_key=True),
    Column("tenant_id", Text, nullable=False),
    Column("incident_id", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("issued_at", Timestamp, nullable=False),
    Column("issued_by", Text),
    Column("resolution_method", Text),
    Column("note", Text),
    Column("received_at", Timestamp, nullable=False, server_default=NOW),
)

incident_timeline = Table(
    "incident_timeline",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("incident_id", UUID(as_uuid=True), nullable=False),
    Column("tenant_id", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("at", Timestamp, nullable=False),
    Column("data", JSONB, nullable=False, server_default=EMPTY_JSON),
    Index("ix_incident_timeline_incident_at", "incident_id", "at"),
    Index("ix_incident_timeline_tenant_at", "tenant_id", "at"),
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("source_topic", Text, nullable=False),
    Column("source_partition", Integer, nullable=False),
    Column("source_offset", BigInteger, nullable=False),
    Column("message_key", BYTEA),
    Column("reason", Text, nullable=False),
    Column("detail", Text, nullable=False, server_default=text("''")),
    Column("payload", BYTEA),
    Column("payload_bytes", Integer),
    Column("received_at", Timestamp, nullable=False, server_default=NOW),
    UniqueConstraint(
        "source_topic", "source_partition", "source_offset", name="uq_dead_letters_source"
    ),
    Index("ix_dead_letters_reason", "reason"),
    Index("ix_dead_letters_received_at", "received_at"),
)
MAX_DEAD_LETTER_PAYLOAD = 64 * 1024
"""The worker keeps at most this many bytes of a dead-lettered message in `payload`;
`payload_bytes` is the size of the whole value (null when there was none)."""

ingest_partitions = Table(
    "ingest_partitions",
    metadata,
    Column("partition", Integer, primary_key=True, autoincrement=False),
    Column("watermark", Timestamp),
    Column(
        "last_batch_incident_ids",
        ARRAY(UUID(as_uuid=True)),
        nullable=False,
        server_default=text("'{}'::uuid[]"),
    ),
    Column("last_batch_dead_letters", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("updated_at", Timestamp, nullable=False, server_default=NOW),
)

ingest_offsets = Table(
    "ingest_offsets",
    metadata,
    Column("topic", Text, nullable=False),
    Column("partition", Integer, nullable=False, autoincrement=False),
    Column("next_offset", BigInteger, nullable=False),
    PrimaryKeyConstraint("topic", "partition"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_hash", Text, primary_key=True),
    Column("key_id", Text, nullable=False),
    Column("tenant_id", Text),
    Column("is_ops", Boolean, nullable=False, server_default=false()),
    Column("name", Text, nullable=False, server_default=text("''")),
    Column("created_at", Timestamp, nullable=False, server_default=NOW),
    Column("revoked_at", Timestamp),
    CheckConstraint("(tenant_id IS NULL) = is_ops", name="ck_api_keys_tenant_xor_ops"),
    UniqueConstraint("key_id", name="uq_api_keys_key_id"),
)
