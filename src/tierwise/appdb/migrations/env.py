"""Alembic environment: runs on the connection tierwise hands over (see appdb.database)."""

from __future__ import annotations

from alembic import context

from tierwise.appdb.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
