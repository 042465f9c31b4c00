"""Initial schema: runs, assignments, changes, overrides.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("window_months", sa.Integer, nullable=False),
        sa.Column("policy_name", sa.String(256), nullable=False),
        sa.Column("policy_hash", sa.String(32), nullable=False),
        sa.Column("policy_text", sa.Text, nullable=False),
        sa.Column("data_fingerprint", sa.String(64), nullable=False),
        sa.Column("source", sa.String(1024), nullable=False),
        sa.Column("customers", sa.Integer, nullable=False),
        sa.Column("previous_run_id", sa.Integer, nullable=True),
        sa.Column("summary", sa.JSON, nullable=False),
        sa.Column("aggregates", sa.JSON, nullable=False),
    )
    op.create_table(
        "assignments",
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("customer_id", sa.String(256), primary_key=True),
        sa.Column("tier", sa.String(64), nullable=False),
        sa.Column("computed_tier", sa.String(64), nullable=False),
        sa.Column("score", sa.Float, nullable=True),
        sa.Column("basis", sa.String(16), nullable=False),
        sa.Column("downgrade_streak", sa.Integer, nullable=False),
        sa.Column("override_id", sa.Integer, nullable=True),
    )
    op.create_index("ix_assignments_customer", "assignments", ["customer_id", "run_id"])
    op.create_table(
        "changes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("customer_id", sa.String(256), nullable=False),
        sa.Column("from_tier", sa.String(64), nullable=True),
        sa.Column("to_tier", sa.String(64), nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("basis", sa.String(16), nullable=False),
    )
    op.create_index("ix_changes_customer", "changes", ["customer_id", "run_id"])
    op.create_index("ix_changes_run", "changes", ["run_id"])
    op.create_table(
        "overrides",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("customer_id", sa.String(256), nullable=False),
        sa.Column("tier", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("until", sa.Date, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("removed_by", sa.String(128), nullable=True),
    )
    op.create_index("ix_overrides_customer_id", "overrides", ["customer_id"])


def downgrade() -> None:
    for table in ("overrides", "changes", "assignments", "runs"):
        op.drop_table(table)
