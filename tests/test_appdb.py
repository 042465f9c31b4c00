"""The app database schema comes from Alembic migrations and matches the table definitions."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from tierwise.appdb.database import alembic_config, connect, head_revision, normalise_url
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
    assert version == [(head_revision(),)] and head_revision() == "0013"


def test_a_database_made_before_run_models_is_upgraded_in_place(database_url: str) -> None:
    """A workspace from before the models column keeps its runs and gains the column."""
    engine = sa.create_engine(normalise_url(database_url))
    with engine.begin() as connection:
        config = alembic_config(connection)
        command.upgrade(config, "0001")
        connection.execute(sa.text(
            "INSERT INTO runs (created_at, created_by, as_of, window_months, policy_name, "
            "policy_hash, policy_text, data_fingerprint, source, customers, summary, "
            "aggregates) VALUES ('2025-01-01 00:00:00', 'old', '2024-12-31', 12, 'p', 'h', "
            "'name: p', 'f', 's', 0, '[]', '{}')"))
    engine.dispose()
    upgraded = connect(database_url)
    with upgraded.connect() as connection:
        rows = connection.execute(sa.text("SELECT created_by, models FROM runs")).all()
    upgraded.dispose()
    assert rows == [("old", None)]


def test_plain_postgresql_urls_use_psycopg_3() -> None:
    assert normalise_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("sqlite:///x.db") == "sqlite:///x.db"


def test_the_newest_migration_is_known_without_alembic() -> None:
    """Commands skip Alembic when the schema is up to date: the head they compare with is
    the highest numbered migration file, which must be Alembic's own head."""
    from alembic.script import ScriptDirectory

    with sa.create_engine("sqlite://").connect() as connection:
        config = alembic_config(connection)
        assert head_revision() == ScriptDirectory.from_config(config).get_current_head()
