"""Sums in NUMERIC(38,8): an incident's cost, and the rollups' cost and seconds, cannot overflow.

One event's cost is below 10^12 and fits NUMERIC(20,8); an incident adds up its events, an hour's
rollup its incidents' costs and times to containment and resolution (each up to about 2.2 * 10^11
seconds between 1970 and 9000), a day's cost its incidents: a dozen maximal values overflowed
NUMERIC(20,8) and PostgreSQL refused the batch. With 30 integer digits, more than 10^18 maximal
values fit. The event tables keep NUMERIC(20,8).

A larger precision with the same scale changes no stored value: PostgreSQL 16 rewrites neither
the tables nor their indexes (relfilenodes unchanged), and holds each table's ACCESS EXCLUSIVE lock
only for the catalog update. The downgrade narrows them back and fails if a total no longer fits.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = {
    "incidents": ("cost_usd",),
    "incident_rollups_hourly": ("cost_usd", "containment_seconds_sum", "resolution_seconds_sum"),
    "cost_daily": ("cost_usd",),
}


def _retype(numeric: str) -> None:
    for table, columns in COLUMNS.items():
        changes = ", ".join(f"ALTER COLUMN {column} TYPE {numeric}" for column in columns)
        op.execute(f"ALTER TABLE {table} {changes}")


def upgrade() -> None:
    _retype("NUMERIC(38, 8)")


def downgrade() -> None:
    _retype("NUMERIC(20, 8)")
