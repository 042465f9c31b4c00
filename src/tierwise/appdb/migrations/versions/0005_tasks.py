"""Tasks derived from grading runs (tierwise.work.tasks).

Revision ID: 0005
Revises: 0004
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
        "tasks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("customer_id", sa.String(256), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("owner", sa.String(128), nullable=True),
        sa.Column("due_date", sa.Date, nullable=False),
        sa.Column("priority", sa.Integer, nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_run_id", sa.Integer, nullable=False),
        sa.Column("updated_run_id", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_reason", sa.Text, nullable=True),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("done_by", sa.String(128), nullable=True),
        sa.Column("cleared_at", sa.Date, nullable=True),
    )
    op.create_index("ix_tasks_status_customer", "tasks", ["status", "customer_id", "kind"])
    op.create_index("ix_tasks_owner", "tasks", ["owner"])


def downgrade() -> None:
    op.drop_table("tasks")
