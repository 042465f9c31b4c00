"""Runs say which engine made them and where their assignments are.

A run on Spark leaves its assignments where the engine wrote them (a Parquet dataset
partitioned by run) instead of copying one row per customer into the app database, so the
run keeps its change counts itself.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("engine", sa.String(16), nullable=True))
        batch.add_column(sa.Column("snapshot", sa.String(2048), nullable=True))
        batch.add_column(sa.Column("changes", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("changes")
        batch.drop_column("snapshot")
        batch.drop_column("engine")
