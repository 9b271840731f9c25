"""Model-backend API keys per sandbox, encrypted at rest.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 04:48:27.864163
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "credentials",
        sa.Column("sandbox_id", sa.String(length=64), nullable=False),
        sa.Column("backend", sa.String(length=64), nullable=False),
        sa.Column("secret_ciphertext", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["sandbox_id"],
            ["sandboxes.sandbox_id"],
            name=op.f("fk_credentials_sandbox_id_sandboxes"),
        ),
        sa.PrimaryKeyConstraint("sandbox_id", "backend", name=op.f("pk_credentials")),
    )


def downgrade() -> None:

    op.drop_table("credentials")
