"""Store the incident's growing lists and JSON out of line without compression.

Every batch rewrites each incident it touched. Compressing `related_call_ids` (up to 1,000 ids),
`run_ids`, `breakdown` and `absorbed` with pglz on each rewrite took about a fifth of the
database's CPU in `make bench` (12.4 s against 9.8 s for 300,000 events); pgserver's PostgreSQL
has no lz4. The columns cost more disk uncompressed; incidents are few next to events.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("related_call_ids", "run_ids", "breakdown", "absorbed")


def upgrade() -> None:
    for column in COLUMNS:
        op.execute(f"ALTER TABLE incidents ALTER COLUMN {column} SET STORAGE EXTERNAL")


def downgrade() -> None:
    for column in COLUMNS:
        op.execute(f"ALTER TABLE incidents ALTER COLUMN {column} SET STORAGE EXTENDED")
