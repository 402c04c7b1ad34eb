"""Tables of the stream processors: snapshots, hourly rollups, recurrence, patterns, daily cost.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = pg.TIMESTAMP(timezone=True)
MONEY: pg.NUMERIC[Decimal] = pg.NUMERIC(20, 8)
ZERO = sa.text("0")


def _uuid() -> pg.UUID[Any]:
    return pg.UUID(as_uuid=True)


def _counter(name: str, kind: Any = sa.Integer) -> sa.Column[Any]:
    return sa.Column(name, kind(), nullable=False, server_default=ZERO)


def _money(name: str) -> sa.Column[Any]:
    return sa.Column(name, MONEY, nullable=False, server_default=ZERO)


def upgrade() -> None:
    op.create_table(
        "processor_snapshots",
        sa.Column("processor", sa.Text(), nullable=False),
        sa.Column("incident_id", _uuid(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("snapshot", pg.JSONB(), nullable=False),
        sa.Column("updated_at", TS, nullable=False, server_default=sa.text("now()")),
        sa.PrimaryKeyConstraint("processor", "incident_id"),
    )
    op.create_table(
        "incident_rollups_hourly",
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("hour", TS, nullable=False),
        sa.Column("category", sa.Text(), nullable=False),
        sa.Column("severity", sa.Text(), nullable=False),
        sa.Column("cause_type", sa.Text(), nullable=False),
        sa.Column("trigger_type", sa.Text(), nullable=False),
        _counter("started"),
        _counter("acknowledged"),
        _counter("resolved"),
        _counter("calls", sa.BigInteger),
        _money("cost_usd"),
        _money("containment_seconds_sum"),
        _counter("containment_count"),
        _money("resolution_seconds_sum"),
        _counter("resolution_count"),
        _counter("sla_met"),
        _counter("sla_breached"),
        sa.PrimaryKeyConstraint(
            "tenant_id", "hour", "category", "severity", "cause_type", "trigger_type"
        ),
    )
    op.create_table(
        "recurrence_daily",
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("category", sa.Text(), nullable=False),
        sa.Column("resolution_method", sa.Text(), nullable=False),
        _counter("incidents"),
        _counter("reopens"),
        sa.PrimaryKeyConstraint("tenant_id", "day", "category", "resolution_method"),
    )
    op.create_table(
        "recurrence_fingerprints",
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.Text(), nullable=False),
        sa.Column("incident_id", _uuid(), nullable=False),
        sa.Column("category", sa.Text(), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("last_event_at", TS, nullable=False),
        _counter("reopen_count"),
        sa.PrimaryKeyConstraint("tenant_id", "fingerprint", "incident_id"),
    )
    op.create_index(
        "ix_recurrence_fingerprints_tenant_started",
        "recurrence_fingerprints",
        ["tenant_id", "started_at"],
    )
    op.create_table(
        "pattern_members",
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("pattern_type", sa.Text(), nullable=False),
        sa.Column("dimension", sa.Text(), nullable=False),
        sa.Column("incident_id", _uuid(), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "pattern_type", "dimension", "incident_id"),
    )
    op.create_index(
        "ix_pattern_members_tenant_type_started",
        "pattern_members",
        ["tenant_id", "pattern_type", "started_at"],
    )
    op.create_table(
        "detected_patterns",
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("pattern_type", sa.Text(), nullable=False),
        sa.Column("dimension", sa.Text(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("incident_ids", pg.ARRAY(_uuid()), nullable=False),
        sa.Column("confidence", pg.NUMERIC(4, 2), nullable=False),
        sa.Column("window_hours", sa.Integer(), nullable=False),
        sa.Column("detected_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "pattern_type", "dimension"),
    )
    op.create_index(
        "ix_detected_patterns_tenant_detected", "detected_patterns", ["tenant_id", "detected_at"]
    )
    op.create_table(
        "cost_daily",
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("dimension", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        _counter("incidents"),
        _counter("calls", sa.BigInteger),
        _money("cost_usd"),
        sa.PrimaryKeyConstraint("tenant_id", "day", "dimension", "key"),
    )


def downgrade() -> None:
    for table in (
        "cost_daily",
        "detected_patterns",
        "pattern_members",
        "recurrence_fingerprints",
        "recurrence_daily",
        "incident_rollups_hourly",
        "processor_snapshots",
    ):
        op.drop_table(table)
