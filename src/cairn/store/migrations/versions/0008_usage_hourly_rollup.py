"""The hourly usage rollup: ``usage_hourly``, ``usage_hourly_agents`` and
``runs.usage_rolled``.

Revision ID: 0008
Revises: 0009

Existing runs start not rolled up (``usage_rolled`` false): usage stays exact (it reads
them raw through ``ix_runs_usage_pending``) and ``cairn serve`` rolls them up in batches,
or ``cairn usage rollup --rebuild`` does it at once.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(
            sa.Column("usage_rolled", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_index(
        "ix_runs_usage_pending",
        "runs",
        ["sandbox_id", "run_id"],
        sqlite_where=sa.text("usage_rolled = 0"),
        postgresql_where=sa.text("usage_rolled = false"),
    )
    op.create_table(
        "usage_hourly",
        sa.Column("sandbox_id", sa.String(length=64), nullable=False),
        sa.Column("id_hour", sa.BigInteger(), nullable=False),
        sa.Column("hour", sa.BigInteger(), nullable=False),
        sa.Column("agent_id", sa.String(length=40), nullable=False),
        sa.Column("agent_slug", sa.String(length=64), nullable=False),
        sa.Column("trigger_key", sa.String(length=40), nullable=False),
        sa.Column("model_key", sa.String(length=200), nullable=False),
        sa.Column("runs", sa.BigInteger(), nullable=False),
        sa.Column("tokens_in", sa.BigInteger(), nullable=False),
        sa.Column("tokens_out", sa.BigInteger(), nullable=False),
        sa.Column("cost_micros", sa.BigInteger(), nullable=False),
        sa.Column("priced_runs", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "sandbox_id",
            "id_hour",
            "hour",
            "agent_id",
            "agent_slug",
            "trigger_key",
            "model_key",
            name=op.f("pk_usage_hourly"),
        ),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "usage_hourly_agents",
        sa.Column("sandbox_id", sa.String(length=64), nullable=False),
        sa.Column("id_hour", sa.BigInteger(), nullable=False),
        sa.Column("hour", sa.BigInteger(), nullable=False),
        sa.Column("agent_id", sa.String(length=40), nullable=False),
        sa.Column("agent_slug", sa.String(length=64), nullable=False),
        sa.Column("runs", sa.BigInteger(), nullable=False),
        sa.Column("tokens_in", sa.BigInteger(), nullable=False),
        sa.Column("tokens_out", sa.BigInteger(), nullable=False),
        sa.Column("cost_micros", sa.BigInteger(), nullable=False),
        sa.Column("priced_runs", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "sandbox_id",
            "id_hour",
            "hour",
            "agent_id",
            "agent_slug",
            name=op.f("pk_usage_hourly_agents"),
        ),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("usage_hourly_agents")
    op.drop_table("usage_hourly")
    op.drop_index("ix_runs_usage_pending", table_name="runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("usage_rolled")
