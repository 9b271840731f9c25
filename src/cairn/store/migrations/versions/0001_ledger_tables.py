"""Ledger tables and the default sandbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-29 03:34:29.468998
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "sandboxes",
        sa.Column("sandbox_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sandbox_id", name=op.f("pk_sandboxes")),
    )
    op.create_table(
        "agents",
        sa.Column("agent_id", sa.String(length=40), nullable=False),
        sa.Column("sandbox_id", sa.String(length=64), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("system_prompt", sa.Text(), nullable=False),
        sa.Column("tool_sources", sa.JSON(), nullable=True),
        sa.Column("tool_allowlist", sa.JSON(), nullable=False),
        sa.Column("model_settings", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["sandbox_id"], ["sandboxes.sandbox_id"], name=op.f("fk_agents_sandbox_id_sandboxes")
        ),
        sa.PrimaryKeyConstraint("agent_id", name=op.f("pk_agents")),
        sa.UniqueConstraint("sandbox_id", "slug", name=op.f("uq_agents_sandbox_id_slug")),
    )
    op.create_table(
        "sources",
        sa.Column("source_id", sa.String(length=40), nullable=False),
        sa.Column("sandbox_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("secret_ciphertext", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["sandbox_id"], ["sandboxes.sandbox_id"], name=op.f("fk_sources_sandbox_id_sandboxes")
        ),
        sa.PrimaryKeyConstraint("source_id", name=op.f("pk_sources")),
        sa.UniqueConstraint("sandbox_id", "label", name=op.f("uq_sources_sandbox_id_label")),
    )
    op.create_table(
        "runs",
        sa.Column("run_id", sa.String(length=40), nullable=False),
        sa.Column("sandbox_id", sa.String(length=64), nullable=False),
        sa.Column("agent_id", sa.String(length=40), nullable=False),
        sa.Column("agent_slug", sa.String(length=64), nullable=False),
        sa.Column("agent_version", sa.Integer(), nullable=False),
        sa.Column("trigger_id", sa.String(length=40), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("model", sa.String(length=200), nullable=True),
        sa.Column("event_payload", sa.JSON(), nullable=True),
        sa.Column("output_text", sa.Text(), nullable=False),
        sa.Column("tool_calls", sa.JSON(), nullable=False),
        sa.Column("tokens_in", sa.BigInteger(), nullable=False),
        sa.Column("tokens_out", sa.BigInteger(), nullable=False),
        sa.Column("cache_read_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cache_write_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cost_micros", sa.BigInteger(), nullable=True),
        sa.Column("duration_ms", sa.Float(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("error_type", sa.String(length=64), nullable=True),
        sa.Column("tool_resolution_trace", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.agent_id"], name=op.f("fk_runs_agent_id_agents")
        ),
        sa.ForeignKeyConstraint(
            ["sandbox_id"], ["sandboxes.sandbox_id"], name=op.f("fk_runs_sandbox_id_sandboxes")
        ),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_runs")),
    )
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_runs_sandbox_id_agent_id_run_id"),
            ["sandbox_id", "agent_id", "run_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_runs_sandbox_id_agent_id_status_run_id"),
            ["sandbox_id", "agent_id", "status", "run_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_runs_sandbox_id_run_id"), ["sandbox_id", "run_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_runs_sandbox_id_trigger_id_run_id"),
            ["sandbox_id", "trigger_id", "run_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_runs_status_heartbeat_at"), ["status", "heartbeat_at"], unique=False
        )

    op.create_table(
        "run_events",
        sa.Column("run_id", sa.String(length=40), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.run_id"], name=op.f("fk_run_events_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "seq", name=op.f("pk_run_events")),
    )
    sandboxes = sa.table(
        "sandboxes",
        sa.column("sandbox_id", sa.String),
        sa.column("name", sa.String),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    op.bulk_insert(
        sandboxes, [{"sandbox_id": "default", "name": "default", "created_at": datetime.now(UTC)}]
    )


def downgrade() -> None:

    op.drop_table("run_events")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_runs_status_heartbeat_at"))
        batch_op.drop_index(batch_op.f("ix_runs_sandbox_id_trigger_id_run_id"))
        batch_op.drop_index(batch_op.f("ix_runs_sandbox_id_run_id"))
        batch_op.drop_index(batch_op.f("ix_runs_sandbox_id_agent_id_status_run_id"))
        batch_op.drop_index(batch_op.f("ix_runs_sandbox_id_agent_id_run_id"))

    op.drop_table("runs")
    op.drop_table("sources")
    op.drop_table("agents")
    op.drop_table("sandboxes")
