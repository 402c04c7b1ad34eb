"""Lessons learned and their triage: the lessons processor's member and lesson tables, the
triage state commands leave, and the applied commands.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UUID = postgresql.UUID(as_uuid=True)
TIMESTAMP = sa.TIMESTAMP(timezone=True)


def upgrade() -> None:
    op.create_table(
        "lesson_members",
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("incident_id", UUID, nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("category", sa.Text(), nullable=False),
        sa.Column("severity", sa.Text(), nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("last_event_at", TIMESTAMP, nullable=False),
        sa.Column("resolved_at", TIMESTAMP, nullable=True),
        sa.Column("resolution_method", sa.Text(), nullable=True),
        sa.Column("calls_affected", sa.Integer(), nullable=False),
        sa.Column("reopen_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "kind", "subject", "incident_id"),
    )
    op.create_table(
        "lessons",
        sa.Column("lesson_id", UUID, primary_key=True),
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("incident_ids", postgresql.ARRAY(UUID), nullable=False),
        sa.Column("incident_count", sa.Integer(), nullable=False),
        sa.Column("proposed_action", sa.Text(), nullable=False),
        sa.Column("first_seen", TIMESTAMP, nullable=False),
        sa.Column("last_seen", TIMESTAMP, nullable=False),
    )
    op.create_index(
        "ix_lessons_tenant_first_seen", "lessons", ["tenant_id", "first_seen", "lesson_id"]
    )
    op.create_index(
        "ix_lessons_tenant_kind_first_seen",
        "lessons",
        ["tenant_id", "kind", "first_seen", "lesson_id"],
    )
    op.create_table(
        "lesson_triage",
        sa.Column("lesson_id", UUID, primary_key=True),
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("deferred_until", TIMESTAMP, nullable=True),
        sa.Column("policy_draft", sa.Text(), nullable=True),
        sa.Column("changed_at", TIMESTAMP, nullable=False),
        sa.Column("changed_by", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("commands", sa.Integer(), nullable=False),
    )
    op.create_index("ix_lesson_triage_tenant", "lesson_triage", ["tenant_id"])
    op.create_table(
        "lesson_commands",
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("command_id", sa.Text(), nullable=False),
        sa.Column("lesson_id", UUID, nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("issued_at", TIMESTAMP, nullable=False),
        sa.Column("issued_by", sa.Text(), nullable=False),
        sa.Column("until", TIMESTAMP, nullable=True),
        sa.Column("policy_draft", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("received_at", TIMESTAMP, nullable=False, server_default=sa.text("now()")),
        sa.PrimaryKeyConstraint("tenant_id", "command_id"),
    )
    op.create_index(
        "ix_lesson_commands_lesson_issued", "lesson_commands", ["lesson_id", "issued_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_lesson_commands_lesson_issued", table_name="lesson_commands")
    op.drop_table("lesson_commands")
    op.drop_index("ix_lesson_triage_tenant", table_name="lesson_triage")
    op.drop_table("lesson_triage")
    op.drop_index("ix_lessons_tenant_kind_first_seen", table_name="lessons")
    op.drop_index("ix_lessons_tenant_first_seen", table_name="lessons")
    op.drop_table("lessons")
    op.drop_table("lesson_members")
