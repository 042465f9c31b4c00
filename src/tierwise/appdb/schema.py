"""App database tables: grading runs, per-customer assignments, tier changes, overrides,
webhook deliveries.

The analytic data (orders, metrics) lives in the engine; this database keeps the operational
record. Migrations in `migrations/` create and evolve these tables; keep both in step.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

runs = sa.Table(
    "runs",
    metadata,
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
    # Fitted model parameters, settings and notes (tierwise.metrics.models.predictions.ModelReport),
    # and cluster centres for clustering policies; null when the run used neither.
    sa.Column("models", sa.JSON, nullable=True),
    # The engine that made the run (null: duckdb) and where its assignments are: a Parquet
    # file or a glob over the part files the engine wrote (null: runs/run-NNNNNN.parquet).
    sa.Column("engine", sa.String(16), nullable=True),
    sa.Column("snapshot", sa.String(2048), nullable=True),
    # Change counts {upgraded, downgraded, new, unchanged}: on Spark the per-customer
    # changes stay in the snapshot, not in the changes table.
    sa.Column("changes", sa.JSON, nullable=True),
)

assignments = sa.Table(
    "assignments",
    metadata,
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("customer_id", sa.String(256), primary_key=True),
    sa.Column("tier", sa.String(64), nullable=False),
    sa.Column("computed_tier", sa.String(64), nullable=False),
    sa.Column("score", sa.Float, nullable=True),
    # policy | hysteresis | override: what decided the effective tier
    sa.Column("basis", sa.String(16), nullable=False),
    sa.Column("downgrade_streak", sa.Integer, nullable=False),
    sa.Column("override_id", sa.Integer, nullable=True),
    sa.Column("stage", sa.String(16), nullable=True),   # lifecycle stage; null before 0004
    sa.Index("ix_assignments_customer", "customer_id", "run_id"),
)

changes = sa.Table(
    "changes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("customer_id", sa.String(256), nullable=False),
    sa.Column("from_tier", sa.String(64), nullable=True),
    sa.Column("to_tier", sa.String(64), nullable=False),
    # up | down | new
    sa.Column("direction", sa.String(8), nullable=False),
    sa.Column("basis", sa.String(16), nullable=False),
    sa.Index("ix_changes_customer", "customer_id", "run_id"),
    sa.Index("ix_changes_run", "run_id"),
)

overrides = sa.Table(
    "overrides",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("customer_id", sa.String(256), nullable=False, index=True),
    sa.Column("tier", sa.String(64), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("until", sa.Date, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("removed_by", sa.String(128), nullable=True),
)

webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    # the X-Tierwise-Delivery header: one per POST to one endpoint (retries keep it)
    sa.Column("delivery_id", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("url", sa.String(2048), nullable=False),
    sa.Column("event", sa.String(64), nullable=False),
    # delivered | failed
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("body", sa.Text, nullable=False),
    sa.Index("ux_webhook_deliveries_delivery", "delivery_id", unique=True),
    sa.Index("ix_webhook_deliveries_created", "created_at"),
)

# Work derived from grading runs (tierwise.work.tasks): open until done by hand or closed when its
# condition clears; a done task keeps cleared_at null while its condition lasts.
tasks = sa.Table(
    "tasks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("customer_id", sa.String(256), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("owner", sa.String(128), nullable=True),
    sa.Column("due_date", sa.Date, nullable=False),
    sa.Column("priority", sa.Integer, nullable=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),       # open | done | closed
    sa.Column("created_run_id", sa.Integer, nullable=False),
    sa.Column("updated_run_id", sa.Integer, nullable=False),   # the last run that changed it
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("closed_reason", sa.Text, nullable=True),
    sa.Column("note", sa.Text, nullable=True),
    sa.Column("done_by", sa.String(128), nullable=True),
    sa.Column("cleared_at", sa.Date, nullable=True),
    sa.Index("ix_tasks_status_customer", "status", "customer_id", "kind"),
    sa.Index("ix_tasks_owner", "owner"),
)

# Open tasks counted by tier rank, kind and due date (tierwise.work.tasks): kept when tasks
# are synced or done, so the dashboard's work per tier reads a few thousand rows, not every
# open task.
open_task_counts = sa.Table(
    "open_task_counts",
    metadata,
    sa.Column("priority", sa.Integer, nullable=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("due_date", sa.Date, nullable=False),
    sa.Column("n", sa.Integer, nullable=False),
    sa.Index("ix_open_task_counts_key", "kind", "priority", "due_date"),
)

# Sales reps for owner assignment (tierwise.work.owners): capacity is {tier key: accounts or null}.
reps = sa.Table(
    "reps",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("level", sa.Integer, nullable=False),
    sa.Column("region", sa.String(128), nullable=True),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("capacity", sa.JSON, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

# Every owner change `tierwise assign --apply` made, with why (tierwise.work.owners.REASONS).
owner_changes = sa.Table(
    "owner_changes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("customer_id", sa.String(256), nullable=False),
    sa.Column("from_owner", sa.String(128), nullable=True),
    sa.Column("to_owner", sa.String(128), nullable=False),
    sa.Column("reason", sa.String(32), nullable=False),
    sa.Column("run_id", sa.Integer, nullable=True),
    sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("changed_by", sa.String(128), nullable=False),
    sa.Index("ix_owner_changes_customer", "customer_id"),
)

# People who use the web app and the API (tierwise.work.users).
users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("role", sa.String(16), nullable=False),             # admin | manager | rep
    sa.Column("rep_name", sa.String(128), nullable=True),          # owner name of a rep
    sa.Column("password_hash", sa.String(256), nullable=False),   # Argon2id
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),      # SHA-256 of the cookie
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("csrf", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("label", sa.String(128), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
)

login_attempts = sa.Table(
    "login_attempts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("client", sa.String(64), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ok", sa.Boolean, nullable=False),
    sa.Index("ix_login_attempts_at", "at"),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("user", sa.String(128), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),   # login, override, policy, import, …
    sa.Column("target", sa.String(256), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    # Through which interface (cli, web, api, schedule) and from where (client address, host).
    sa.Column("interface", sa.String(16), nullable=False, server_default=""),
    sa.Column("address", sa.String(128), nullable=False, server_default=""),
    sa.Index("ix_audit_log_at", "at"),
)

# Every policy saved from the web app or the API, newest last (the file holds the current).
policy_versions = sa.Table(
    "policy_versions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("policy_name", sa.String(256), nullable=False),
    sa.Column("policy_hash", sa.String(32), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("saved_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("saved_by", sa.String(128), nullable=False),
)

# Scheduled runs (tierwise.work.schedule): one row per slot, claimed before it runs.
scheduled_runs = sa.Table(
    "scheduled_runs",
    metadata,
    sa.Column("slot", sa.String(32), primary_key=True),      # "month 2025-07", "week 2025-W27"
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("due_at", sa.DateTime, nullable=False),         # local time of the slot
    sa.Column("status", sa.String(16), nullable=False),      # running | done | failed
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("run_id", sa.Integer, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("claimed_by", sa.String(128), nullable=False),
)

# Background jobs (tierwise.work.jobs): a grading run started from the web, seen by every
# worker process of the server.
jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.String(16), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),        # grade
    sa.Column("status", sa.String(16), nullable=False),      # running | done | failed
    sa.Column("started_by", sa.String(128), nullable=False),
    sa.Column("as_of", sa.Date, nullable=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("run_id", sa.Integer, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("claimed_by", sa.String(160), nullable=False),  # host:pid:start
    sa.Index("ix_jobs_started_at", "started_at"),
)

# Leases (tierwise.work.jobs): one holder at a time, e.g. "grading", "scheduler".
leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("holder", sa.String(160), nullable=True),      # host:pid:start[:tag]
    sa.Column("renewed_at", sa.DateTime(timezone=True), nullable=False),
)
