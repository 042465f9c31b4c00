"""Open tasks counted by tier rank, kind and due date, so the dashboard's work per tier
reads an aggregate instead of every open task; filled from the tasks open now.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "open_task_counts",
        sa.Column("priority", sa.Integer, nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("due_date", sa.Date, nullable=False),
        sa.Column("n", sa.Integer, nullable=False),
    )
    op.create_index("ix_open_task_counts_key", "open_task_counts",
                    ["kind", "priority", "due_date"])
    op.execute("INSERT INTO open_task_counts (priority, kind, due_date, n) "
               "SELECT priority, kind, due_date, count(*) FROM tasks WHERE status = 'open' "
               "GROUP BY priority, kind, due_date")


def downgrade() -> None:
    op.drop_index("ix_open_task_counts_key", table_name="open_task_counts")
    op.drop_table("open_task_counts")
