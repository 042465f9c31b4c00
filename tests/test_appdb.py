"""The app database schema comes from Alembic migrations and matches the table definitions."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from tierwise.appdb.database import connect, normalise_url
from tierwise.appdb.schema import metadata


def test_migrations_create_exactly_the_declared_schema(database_url: str) -> None:
    engine = connect(database_url)
    try:
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), metadata)
            assert differences == []
            assert sorted(sa.inspect(connection).get_table_names()) == sorted(
                [*metadata.tables, "alembic_version"])
    finally:
        engine.dispose()


def test_connecting_again_leaves_an_up_to_date_schema_alone(database_url: str) -> None:
    connect(database_url).dispose()
    engine = connect(database_url)
    with engine.connect() as connection:
        version = connection.execute(sa.text("SELECT version_num FROM alembic_version")).all()
    engine.dispose()
    assert version == [("0001",)]


def test_plain_postgresql_urls_use_psycopg_3() -> None:
    assert normalise_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("sqlite:///x.db") == "sqlite:///x.db"
