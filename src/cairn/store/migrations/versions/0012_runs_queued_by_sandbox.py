"""An index on runs (status, sandbox_id): whether any sandbox but the busiest has runs
waiting, answered by a seek instead of a scan of the busiest sandbox's backlog.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 17:30:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_runs_status_sandbox_id", "runs", ["status", "sandbox_id"])


def downgrade() -> None:
    op.drop_index("ix_runs_status_sandbox_id", table_name="runs")
