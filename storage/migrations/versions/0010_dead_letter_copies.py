"""Dead-letter copies survive a crash: each partition keeps its last batch's dead letters; and
a partition's reachable incidents are found by their creation time.

A worker publishes a batch's dead letters to the dead-letter topic after the batch commits. If it
dies in between, the next owner of the partition publishes them again from the `dead_letters`
table, as it does with the last batch's incident changes: `ingest_partitions` now names them
(`[[source_topic, source_offset], ...]`), and `dead_letters.payload_bytes` keeps the size of the
original value, so that a copy made from the stored payload (its first 64 KiB) says it was cut.

A worker loading a partition keeps the incidents the hourly cap can still count: those created
(`opened_at`) less than an hour before the lateness horizon, as the aggregator's eviction does;
`ix_incidents_partition_opened` serves that condition.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "ingest_partitions",
        sa.Column(
            "last_batch_dead_letters",
            postgresql.JSONB(),
            nullable=False,
            server_default=sa.text("'[]'::jsonb"),
        ),
    )
    op.add_column("dead_letters", sa.Column("payload_bytes", sa.Integer(), nullable=True))
    op.create_index("ix_incidents_partition_opened", "incidents", ["partition", "opened_at"])


def downgrade() -> None:
    op.drop_index("ix_incidents_partition_opened", table_name="incidents")
    op.drop_column("dead_letters", "payload_bytes")
    op.drop_column("ingest_partitions", "last_batch_dead_letters")
