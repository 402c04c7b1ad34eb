"""`incident_counts`: each tenant's incidents per lifecycle state, kept by triggers.

A listing's `total` counted the tenant's matching incidents on every page: 1.5 ms of database time
at 4,000 resolved incidents, growing with the tenant. Without filters it is now read from this
table. The triggers are created before the counts are filled, in one transaction: their lock on
`incidents` holds writers off until both are done, so no change is counted twice or missed.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTION = """
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
TRIGGERS = {
    "incidents_counted_on_insert_or_delete": "AFTER INSERT OR DELETE ON incidents FOR EACH ROW",
    "incidents_counted_on_state_change": (
        "AFTER UPDATE OF tenant_id, lifecycle_state ON incidents FOR EACH ROW"
        " WHEN (OLD.tenant_id IS DISTINCT FROM NEW.tenant_id"
        " OR OLD.lifecycle_state IS DISTINCT FROM NEW.lifecycle_state)"
    ),
    "incidents_counted_on_truncate": "AFTER TRUNCATE ON incidents FOR EACH STATEMENT",
}


def upgrade() -> None:
    op.create_table(
        "incident_counts",
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("lifecycle_state", sa.Text(), nullable=False),
        sa.Column("incidents", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "lifecycle_state"),
    )
    op.execute(FUNCTION)
    for name, when in TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} {when} EXECUTE FUNCTION count_incidents()")
    op.execute(
        "INSERT INTO incident_counts (tenant_id, lifecycle_state, incidents)"
        " SELECT tenant_id, lifecycle_state, count(*) FROM incidents"
        " GROUP BY tenant_id, lifecycle_state"
    )


def downgrade() -> None:
    for name in TRIGGERS:
        op.execute(f"DROP TRIGGER {name} ON incidents")
    op.execute("DROP FUNCTION count_incidents()")
    op.drop_table("incident_counts")
