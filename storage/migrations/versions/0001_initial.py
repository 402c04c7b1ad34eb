"""Initial schema: incidents, stored events, commands, timeline, dead letters, ingest state, keys.

Revision ID: 0001
Revises:
Create Date: 2024-11-22

Written out in full rather than derived from `storage.schema`, so that later edits to the schema
module cannot change what this revision did; a test asserts the two agree at head.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = pg.TIMESTAMP(timezone=True)
MONEY: pg.NUMERIC[Decimal] = pg.NUMERIC(20, 8)
NOW = sa.text("now()")
ZERO = sa.text("0")
EMPTY_JSON = sa.text("'{}'::jsonb")
EMPTY_TEXTS = sa.text("'{}'::text[]")


def _uuid() -> pg.UUID[Any]:
    return pg.UUID(as_uuid=True)


def _event_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("event_id", sa.Text(), primary_key=True),
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("occurred_at", TS, nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False, server_default=sa.text("1")),
        sa.Column("fingerprint", sa.Text()),
        sa.Column("is_synthetic", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("synthetic_scenario_id", sa.Text()),
        sa.Column("metadata", pg.JSONB()),
        sa.Column("run_id", sa.Text(), nullable=False),
    ]


def _stored_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("received_at", TS, nullable=False, server_default=NOW),
        sa.Column("incident_id", _uuid()),
    ]


def _create_incidents() -> None:
    op.create_table(
        "incidents",
        sa.Column("incident_id", _uuid(), primary_key=True),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("trigger_type", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.Text(), nullable=False),
        sa.Column("fingerprints", pg.ARRAY(sa.Text()), nullable=False, server_default=EMPTY_TEXTS),
        sa.Column("category", sa.Text(), nullable=False),
        sa.Column("cause_type", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("severity", sa.Text(), nullable=False),
        sa.Column("lifecycle_state", sa.Text(), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("opened_at", TS, nullable=False),
        sa.Column("last_event_at", TS, nullable=False),
        sa.Column("acked_at", TS),
        sa.Column("acked_by", sa.Text()),
        sa.Column("resolved_at", TS),
        sa.Column("resolved_by", sa.Text()),
        sa.Column("resolution_method", sa.Text()),
        sa.Column("calls_affected", sa.Integer(), nullable=False, server_default=ZERO),
        sa.Column(
            "related_call_ids", pg.ARRAY(sa.Text()), nullable=False, server_default=EMPTY_TEXTS
        ),
        sa.Column("run_ids", pg.ARRAY(sa.Text()), nullable=False, server_default=EMPTY_TEXTS),
        sa.Column("cost_usd", MONEY, nullable=False, server_default=ZERO),
        sa.Column("reopen_count", sa.Integer(), nullable=False, server_default=ZERO),
        sa.Column("absorbed", pg.JSONB(), nullable=False, server_default=EMPTY_JSON),
        sa.Column("breakdown", pg.JSONB(), nullable=False, server_default=EMPTY_JSON),
        sa.Column("is_synthetic", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("version", sa.BigInteger(), nullable=False, server_default=ZERO),
        sa.Column("updated_at", TS, nullable=False, server_default=NOW),
        sa.CheckConstraint(
            "lifecycle_state IN ('ACTIVE', 'ACKED', 'RESOLVED')",
            name="ck_incidents_lifecycle_state",
        ),
        sa.CheckConstraint(
            "severity IN ('low', 'medium', 'high', 'critical')", name="ck_incidents_severity"
        ),
    )
    for name, columns in [
        ("ix_incidents_tenant_state_started", ["tenant_id", "lifecycle_state", "started_at"]),
        ("ix_incidents_tenant_resolved", ["tenant_id", "resolved_at"]),
        ("ix_incidents_tenant_last_event", ["tenant_id", "last_event_at"]),
        ("ix_incidents_partition_state", ["partition", "lifecycle_state"]),
        ("ix_incidents_partition_resolved", ["partition", "resolved_at"]),
        ("ix_incidents_partition_started", ["partition", "started_at"]),
    ]:
        op.create_index(name, "incidents", columns)

    op.create_table(
        "incident_keys",
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("trigger_type", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.Text(), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("incident_id", _uuid(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "trigger_type", "fingerprint"),
    )
    op.create_index("ix_incident_keys_partition", "incident_keys", ["partition"])


def _create_events() -> None:
    op.create_table(
        "llm_call_failures",
        *_event_columns(),
        sa.Column("call_id", sa.Text()),
        sa.Column("agent_id", sa.Text()),
        sa.Column("integration_id", sa.Text()),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("failure_type", sa.Text(), nullable=False),
        sa.Column("error_code", sa.Text()),
        sa.Column("error_message", sa.Text()),
        sa.Column("request_id", sa.Text()),
        sa.Column("duration_ms", sa.Integer()),
        sa.Column("tokens_in", sa.Integer(), nullable=False, server_default=ZERO),
        sa.Column("tokens_out", sa.Integer(), nullable=False, server_default=ZERO),
        sa.Column("cost_usd", MONEY, nullable=False, server_default=ZERO),
        *_stored_columns(),
    )
    op.create_table(
        "policy_violations",
        *_event_columns(),
        sa.Column("violation_id", sa.Text()),
        sa.Column("policy_id", sa.Text(), nullable=False),
        sa.Column("policy_type", sa.Text()),
        sa.Column("violated_rule", sa.Text(), nullable=False),
        sa.Column("severity", sa.Text(), nullable=False),
        sa.Column("action_taken", sa.Text()),
        sa.Column("reason", sa.Text()),
        sa.Column("evaluated_value", sa.Text()),
        sa.Column("threshold_condition", sa.Text()),
        sa.Column("agent_id", sa.Text()),
        sa.Column("cause_type", sa.Text(), nullable=False),
        sa.Column("cost_usd", MONEY, nullable=False, server_default=ZERO),
        sa.Column("evidence", pg.JSONB()),
        *_stored_columns(),
    )
    for table in ("llm_call_failures", "policy_violations"):
        op.create_index(f"ix_{table}_tenant_run", table, ["tenant_id", "run_id"])
        op.create_index(f"ix_{table}_incident_occurred", table, ["incident_id", "occurred_at"])

    op.create_table(
        "incident_commands",
        sa.Column("command_id", sa.Text(), primary_key=True),
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("incident_id", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("issued_at", TS, nullable=False),
        sa.Column("issued_by", sa.Text()),
        sa.Column("resolution_method", sa.Text()),
        sa.Column("note", sa.Text()),
        sa.Column("received_at", TS, nullable=False, server_default=NOW),
    )


def _create_timeline_and_dead_letters() -> None:
    op.create_table(
        "incident_timeline",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("incident_id", _uuid(), nullable=False),
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("data", pg.JSONB(), nullable=False, server_default=EMPTY_JSON),
    )
    op.create_index("ix_incident_timeline_incident_at", "incident_timeline", ["incident_id", "at"])
    op.create_index("ix_incident_timeline_tenant_at", "incident_timeline", ["tenant_id", "at"])

    op.create_table(
        "dead_letters",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("source_topic", sa.Text(), nullable=False),
        sa.Column("source_partition", sa.Integer(), nullable=False),
        sa.Column("source_offset", sa.BigInteger(), nullable=False),
        sa.Column("message_key", pg.BYTEA()),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False, server_default=sa.text("''")),
        sa.Column("payload", pg.BYTEA()),
        sa.Column("received_at", TS, nullable=False, server_default=NOW),
        sa.UniqueConstraint(
            "source_topic", "source_partition", "source_offset", name="uq_dead_letters_source"
        ),
    )
    op.create_index("ix_dead_letters_reason", "dead_letters", ["reason"])
    op.create_index("ix_dead_letters_received_at", "dead_letters", ["received_at"])


def _create_ingest_state_and_keys() -> None:
    op.create_table(
        "ingest_partitions",
        sa.Column("partition", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("watermark", TS),
        sa.Column(
            "last_batch_incident_ids",
            pg.ARRAY(_uuid()),
            nullable=False,
            server_default=sa.text("'{}'::uuid[]"),
        ),
        sa.Column("updated_at", TS, nullable=False, server_default=NOW),
    )
    op.create_table(
        "ingest_offsets",
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("next_offset", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("topic", "partition"),
    )
    op.create_table(
        "api_keys",
        sa.Column("key_hash", sa.Text(), primary_key=True),
        sa.Column("key_id", sa.Text(), nullable=False),
        sa.Column("tenant_id", sa.Text()),
        sa.Column("is_ops", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("name", sa.Text(), nullable=False, server_default=sa.text("''")),
        sa.Column("created_at", TS, nullable=False, server_default=NOW),
        sa.Column("revoked_at", TS),
        sa.CheckConstraint("(tenant_id IS NULL) = is_ops", name="ck_api_keys_tenant_xor_ops"),
        sa.UniqueConstraint("key_id", name="uq_api_keys_key_id"),
    )


def upgrade() -> None:
    _create_incidents()
    _create_events()
    _create_timeline_and_dead_letters()
    _create_ingest_state_and_keys()


def downgrade() -> None:
    for table in (
        "api_keys",
        "ingest_offsets",
        "ingest_partitions",
        "dead_letters",
        "incident_timeline",
        "incident_commands",
        "policy_violations",
        "llm_call_failures",
        "incident_keys",
        "incidents",
    ):
        op.drop_table(table)
