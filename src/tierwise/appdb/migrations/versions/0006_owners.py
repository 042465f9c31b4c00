"""Sales reps and the history of owner changes (tierwise.work.owners).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reps",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("level", sa.Integer, nullable=False),
        sa.Column("region", sa.String(128), nullable=True),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("capacity", sa.JSON, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "owner_changes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("customer_id", sa.String(256), nullable=False),
        sa.Column("from_owner", sa.String(128), nullable=True),
        sa.Column("to_owner", sa.String(128), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("run_id", sa.Integer, nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_by", sa.String(128), nullable=False),
    )
    op.create_index("ix_owner_changes_customer", "owner_changes", ["customer_id"])


def downgrade() -> None:
    op.drop_table("owner_changes")
    op.drop_table("reps")
