"""Triggers, the events sources receive, every trigger's decision on them, OAuth connections.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 04:25:40.239269
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "connections",
        sa.Column("connection_id", sa.String(length=40), nullable=False),
        sa.Column("sandbox_id", sa.String(length=64), nullable=False),
        sa.Column("app_slug", sa.String(length=64), nullable=False),
        sa.Column("account_label", sa.String(length=200), nullable=False),
        sa.Column("token_ciphertext", sa.Text(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["sandbox_id"],
            ["sandboxes.sandbox_id"],
            name=op.f("fk_connections_sandbox_id_sandboxes"),
        ),
        sa.PrimaryKeyConstraint("connection_id", name=op.f("pk_connections")),
    )
    with op.batch_alter_table("connections", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_connections_sandbox_id_app_slug"),
            ["sandbox_id", "app_slug"],
            unique=False,
        )

    op.create_table(
        "events",
        sa.Column("event_id", sa.String(length=40), nullable=False),
        sa.Column("sandbox_id", sa.String(length=64), nullable=False),
        sa.Column("source_id", sa.String(length=40), nullable=False),
        sa.Column("sender_event_id", sa.String(length=200), nullable=True),
        sa.Column("event_type", sa.String(length=200), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reject_reason", sa.Text(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["sandbox_id"], ["sandboxes.sandbox_id"], name=op.f("fk_events_sandbox_id_sandboxes")
        ),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_events")),
        sa.UniqueConstraint(
            "source_id", "sender_event_id", name=op.f("uq_events_source_id_sender_event_id")
        ),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_events_sandbox_id_event_id"), ["sandbox_id", "event_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_events_sandbox_id_source_id_event_id"),
            ["sandbox_id", "source_id", "event_id"],
            unique=False,
        )

    op.create_table(
        "trigger_decisions",
        sa.Column("event_id", sa.String(length=40), nullable=False),
        sa.Column("trigger_id", sa.String(length=40), nullable=False),
        sa.Column("decision", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.Column("run_id", sa.String(length=40), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.event_id"],
            name=op.f("fk_trigger_decisions_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("event_id", "trigger_id", name=op.f("pk_trigger_decisions")),
    )
    with op.batch_alter_table("trigger_decisions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_trigger_decisions_trigger_id_decided_at"),
            ["trigger_id", "decided_at"],
            unique=False,
        )

    op.create_table(
        "triggers",
        sa.Column("trigger_id", sa.String(length=40), nullable=False),
        sa.Column("sandbox_id", sa.String(length=64), nullable=False),
        sa.Column("agent_id", sa.String(length=40), nullable=False),
        sa.Column("data_source_id", sa.String(length=40), nullable=False),
        sa.Column("event_type_filter", sa.String(length=200), nullable=False),
        sa.Column("filter_config", sa.JSON(), nullable=True),
        sa.Column("rate_limit_per_hour", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("fire_count", sa.BigInteger(), nullable=False),
        sa.Column("last_fired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("window_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("window_fires", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.agent_id"], name=op.f("fk_triggers_agent_id_agents")
        ),
        sa.ForeignKeyConstraint(
            ["sandbox_id"], ["sandboxes.sandbox_id"], name=op.f("fk_triggers_sandbox_id_sandboxes")
        ),
        sa.PrimaryKeyConstraint("trigger_id", name=op.f("pk_triggers")),
    )
    with op.batch_alter_table("triggers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_triggers_sandbox_id_agent_id"), ["sandbox_id", "agent_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_triggers_sandbox_id_data_source_id"),
            ["sandbox_id", "data_source_id"],
            unique=False,
        )


def downgrade() -> None:

    with op.batch_alter_table("triggers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_triggers_sandbox_id_data_source_id"))
        batch_op.drop_index(batch_op.f("ix_triggers_sandbox_id_agent_id"))

    op.drop_table("triggers")
    with op.batch_alter_table("trigger_decisions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_trigger_decisions_trigger_id_decided_at"))

    op.drop_table("trigger_decisions")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_events_sandbox_id_source_id_event_id"))
        batch_op.drop_index(batch_op.f("ix_events_sandbox_id_event_id"))

    op.drop_table("events")
    with op.batch_alter_table("connections", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_connections_sandbox_id_app_slug"))

    op.drop_table("connections")
