"""The app database (SQLite by default, PostgreSQL via TIERWISE_DATABASE_URL)."""
