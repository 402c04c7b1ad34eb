"""A covering index for `/v1/incidents/metrics`: a tenant's incidents started in a window.

The 30-day window of a tenant on 1,000,000 incidents read about 2,500 rows, each on its own heap
page: 14 ms of database time per request (33 ms cold). From the index alone: 5.5 ms.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_incidents_tenant_started_metrics",
        "incidents",
        ["tenant_id", "started_at"],
        postgresql_include=["lifecycle_state", "severity", "acked_at", "resolved_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_incidents_tenant_started_metrics", table_name="incidents")
