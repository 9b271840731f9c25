"""Cost-watch: per-agent usage thresholds, and a record of each enforcement that paused triggers.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 04:38:34.155803
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "threshold_enforcements",
        sa.Column("enforcement_id", sa.String(length=40), nullable=False),
        sa.Column("sandbox_id", sa.String(length=64), nullable=False),
        sa.Column("agent_id", sa.String(length=40), nullable=False),
        sa.Column("agent_slug", sa.String(length=64), nullable=False),
        sa.Column("metric", sa.String(length=32), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("threshold", sa.BigInteger(), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("trigger_ids", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("enforced_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["sandbox_id"],
            ["sandboxes.sandbox_id"],
            name=op.f("fk_threshold_enforcements_sandbox_id_sandboxes"),
        ),
        sa.PrimaryKeyConstraint("enforcement_id", name=op.f("pk_threshold_enforcements")),
    )
    with op.batch_alter_table("threshold_enforcements", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_threshold_enforcements_sandbox_id_agent_id_enforcement_id"),
            ["sandbox_id", "agent_id", "enforcement_id"],
            unique=False,
        )

    op.create_table(
        "usage_thresholds",
        sa.Column("agent_id", sa.String(length=40), nullable=False),
        sa.Column("sandbox_id", sa.String(length=64), nullable=False),
        sa.Column("tokens_per_hour", sa.BigInteger(), nullable=True),
        sa.Column("cost_micros_per_hour", sa.BigInteger(), nullable=True),
        sa.Column("pause_triggers", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.agent_id"], name=op.f("fk_usage_thresholds_agent_id_agents")
        ),
        sa.ForeignKeyConstraint(
            ["sandbox_id"],
            ["sandboxes.sandbox_id"],
            name=op.f("fk_usage_thresholds_sandbox_id_sandboxes"),
        ),
        sa.PrimaryKeyConstraint("agent_id", name=op.f("pk_usage_thresholds")),
    )
    with op.batch_alter_table("usage_thresholds", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_usage_thresholds_sandbox_id_agent_id"),
            ["sandbox_id", "agent_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("usage_thresholds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_usage_thresholds_sandbox_id_agent_id"))

    op.drop_table("usage_thresholds")
    with op.batch_alter_table("threshold_enforcements", schema=None) as batch_op:
        batch_op.drop_index(
            batch_op.f("ix_threshold_enforcements_sandbox_id_agent_id_enforcement_id")
        )

    op.drop_table("threshold_enforcements")
