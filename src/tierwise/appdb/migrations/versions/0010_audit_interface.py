"""The audit log says through which interface a write came (cli, web, api, schedule) and
from where (the client's address, or the host for the command line and the schedule).

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("interface", sa.String(16), nullable=False,
                                   server_default=""))
        batch.add_column(sa.Column("address", sa.String(128), nullable=False,
                                   server_default=""))
    op.create_index("ix_audit_log_at", "audit_log", ["at"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_at", "audit_log")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("address")
        batch.drop_column("interface")
