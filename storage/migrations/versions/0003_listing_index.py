"""A covering index for incident listings: filter, sort and count from the index alone.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LISTING_COLUMNS = [
    "incident_id", "started_at", "resolved_at", "last_event_at", "calls_affected", "cost_usd",
    "severity", "category", "cause_type", "trigger_type", "is_synthetic",
]  # fmt: skip


def upgrade() -> None:
    op.create_index(
        "ix_incidents_tenant_state_listing",
        "incidents",
        ["tenant_id", "lifecycle_state"],
        postgresql_include=LISTING_COLUMNS,
    )


def downgrade() -> None:
    op.drop_index("ix_incidents_tenant_state_listing", table_name="incidents")
