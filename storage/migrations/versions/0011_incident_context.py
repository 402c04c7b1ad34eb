"""The incident's context for on-call: first and latest error and violation, agents, source run,
synthetic scenario id, and a one-line description.

New nullable text columns on `incidents` and `agent_ids` (text[], empty by default). The ingest
worker writes them for every incident it changes. Rows written before this revision are filled in
here from the stored events, in the order the worker applied them as far as the rows tell (batch by
batch, `received_at`, then `occurred_at` and `event_id` within a batch); `source_run_id` is
exactly the first of `run_ids`. `description` is text only the application writes: it stays null
on those rows until the incident next changes. An incident the aggregator still holds continues
from these values.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TEXT_COLUMNS = (
    "description", "source_run_id", "synthetic_scenario_id",
    "first_error_code", "first_error_message", "latest_error_code", "latest_error_message",
    "first_policy_id", "first_violation_id", "first_violated_rule", "first_action_taken",
    "latest_policy_id", "latest_violation_id", "latest_violated_rule", "latest_action_taken",
)  # fmt: skip

APPLIED = "received_at, occurred_at, event_id"
APPLIED_LAST = "received_at DESC, occurred_at DESC, event_id DESC"

EVENTS = """
    SELECT incident_id, received_at, occurred_at, event_id, agent_id, synthetic_scenario_id
    FROM llm_call_failures WHERE incident_id IS NOT NULL
    UNION ALL
    SELECT incident_id, received_at, occurred_at, event_id, agent_id, synthetic_scenario_id
    FROM policy_violations WHERE incident_id IS NOT NULL
"""

BACKFILL = (
    "UPDATE incidents SET source_run_id = run_ids[1] WHERE cardinality(run_ids) > 0",
    f"""
    WITH first AS (
        SELECT DISTINCT ON (incident_id) incident_id, synthetic_scenario_id
        FROM ({EVENTS}) AS events ORDER BY incident_id, {APPLIED}
    )
    UPDATE incidents SET synthetic_scenario_id = first.synthetic_scenario_id
    FROM first
    WHERE incidents.incident_id = first.incident_id AND first.synthetic_scenario_id IS NOT NULL
    """,
    f"""
    WITH seen AS (
        SELECT DISTINCT ON (incident_id, agent_id) incident_id, agent_id, {APPLIED}
        FROM ({EVENTS}) AS events WHERE agent_id <> ''
        ORDER BY incident_id, agent_id, {APPLIED}
    ), listed AS (
        SELECT incident_id, (array_agg(agent_id ORDER BY {APPLIED}))[1:10] AS agent_ids
        FROM seen GROUP BY incident_id
    )
    UPDATE incidents SET agent_ids = listed.agent_ids
    FROM listed WHERE incidents.incident_id = listed.incident_id
    """,
    f"""
    WITH errors AS (
        SELECT incident_id, {APPLIED}, error_code, error_message FROM llm_call_failures
        WHERE incident_id IS NOT NULL AND (error_code IS NOT NULL OR error_message IS NOT NULL)
    ), first AS (
        SELECT DISTINCT ON (incident_id) * FROM errors ORDER BY incident_id, {APPLIED}
    ), latest AS (
        SELECT DISTINCT ON (incident_id) * FROM errors ORDER BY incident_id, {APPLIED_LAST}
    )
    UPDATE incidents SET
        first_error_code = first.error_code, first_error_message = first.error_message,
        latest_error_code = latest.error_code, latest_error_message = latest.error_message
    FROM first JOIN latest USING (incident_id)
    WHERE incidents.incident_id = first.incident_id
    """,
    f"""
    WITH violations AS (
        SELECT incident_id, {APPLIED}, policy_id, coalesce(violation_id, event_id) AS violation_id,
            violated_rule, action_taken
        FROM policy_violations WHERE incident_id IS NOT NULL
    ), first AS (
        SELECT DISTINCT ON (incident_id) * FROM violations ORDER BY incident_id, {APPLIED}
    ), latest AS (
        SELECT DISTINCT ON (incident_id) * FROM violations ORDER BY incident_id, {APPLIED_LAST}
    )
    UPDATE incidents SET
        first_policy_id = first.policy_id, first_violation_id = first.violation_id,
        first_violated_rule = first.violated_rule, first_action_taken = first.action_taken,
        latest_policy_id = latest.policy_id, latest_violation_id = latest.violation_id,
        latest_violated_rule = latest.violated_rule, latest_action_taken = latest.action_taken
    FROM first JOIN latest USING (incident_id)
    WHERE incidents.incident_id = first.incident_id
    """,
)


def upgrade() -> None:
    for name in TEXT_COLUMNS:
        op.add_column("incidents", sa.Column(name, sa.Text(), nullable=True))
    op.add_column(
        "incidents",
        sa.Column(
            "agent_ids",
            postgresql.ARRAY(sa.Text()),
            nullable=False,
            server_default=sa.text("'{}'::text[]"),
        ),
    )
    for statement in BACKFILL:
        op.execute(statement)


def downgrade() -> None:
    op.drop_column("incidents", "agent_ids")
    for name in reversed(TEXT_COLUMNS):
        op.drop_column("incidents", name)
