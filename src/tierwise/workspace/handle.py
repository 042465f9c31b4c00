"""A workspace: one folder holding settings, the data store, run snapshots and the app DB.

`Workspace` is the handle every interface goes through (the CLI, the Python API, the web
app and the schedule): it opens the settings, the store and the app database, hands out the
stage functions, and records every write in the audit log as the person it acts for
(:attr:`Workspace.actor`). It holds no grading logic of its own: the run is
tierwise.grading.pipeline, the work it turns into is tierwise.work.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import os
import secrets
import tempfile
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from types import TracebackType
from typing import Any

import duckdb
import ibis
import sqlalchemy as sa

from tierwise.appdb import schema
from tierwise.appdb.database import connect
from tierwise.data import engines, store
from tierwise.data import sources as data_sources
from tierwise.data.ingest import ImportResult, Kind, import_files
from tierwise.data.interactions import Logged, log_interaction
from tierwise.data.store import customer_attribute_columns
from tierwise.data.tables import CanonicalTables
from tierwise.errors import WorkspaceError
from tierwise.grading.calibration import Calibration, Target, calibrate
from tierwise.grading.pipeline import STORE_LABEL, GradeRequest, RunPlace, run_grading
from tierwise.policy.loading import load_policy_file, load_policy_text
from tierwise.policy.model import Policy
from tierwise.policy.presets import PRESETS, policy_source, preset_text
from tierwise.record import history
from tierwise.record.audit import Actor, audit, os_user
from tierwise.record.runs import RunSummary
from tierwise.work import owners, users, webhooks
from tierwise.work import schedule as scheduling
from tierwise.work.tasks import (
    WORK_METRICS,
    Task,
    TaskSync,
    derive_tasks,
    follow_owners,
    list_tasks,
    mark_done,
)
from tierwise.work.users import TokenInfo, User
from tierwise.workspace.reading import RunReading
from tierwise.workspace.settings import CONFIG_NAME, CONFIG_TEMPLATE, Settings, resolve_root


def current_user() -> str:
    """The person at the command line: TIERWISE_USER, else the operating-system user."""
    return os_user()


class Workspace(RunReading):
    """One workspace folder, opened: settings, store, app database, and every verb.

    Args:
        root: the folder (default: TIERWISE_WORKSPACE, else the current folder).
        actor: who the writes are recorded as (default: the OS user at the command line).

    >>> with Workspace("mycompany") as ws:                       # doctest: +SKIP
    ...     ws.import_files("orders", ["订单.csv"])
    ...     summary = ws.grade()
    """

    def __init__(self, root: str | Path | None = None, *, actor: Actor | None = None) -> None:
        self.root = resolve_root(root)
        self.settings = Settings.load(self.root)
        self.actor = actor or Actor.at_command_line()
        self._store: duckdb.DuckDBPyConnection | None = None
        self._owns_store = True
        self._owns_appdb = True

    # -- creation and lifecycle -------------------------------------------------------
    @classmethod
    def init(cls, root: str | Path, *, policy: str = "value-tiers") -> Workspace:
        """Create a workspace folder: tierwise.yaml, policy.yaml (a preset's text or a copy
        of a policy file), an empty store and app database.

        >>> Workspace.init("mycompany", policy="rfm")               # doctest: +SKIP
        """
        folder = Path(root).expanduser().resolve()
        if (folder / CONFIG_NAME).exists():
            raise WorkspaceError(f"{folder} is already a tierwise workspace")
        folder.mkdir(parents=True, exist_ok=True)
        policy_ref = "policy.yaml"
        if policy in PRESETS:
            (folder / "policy.yaml").write_text(preset_text(policy), encoding="utf-8")
        else:
            source = Path(policy)
            load_policy_file(source)
            (folder / "policy.yaml").write_text(source.read_text(encoding="utf-8"),
                                                encoding="utf-8")
        (folder / CONFIG_NAME).write_text(
            CONFIG_TEMPLATE.format(policy=policy_ref, presets=", ".join(PRESETS)),
            encoding="utf-8")
        workspace = cls(folder)
        workspace.store()
        _ = workspace.appdb
        return workspace

    def sibling(self) -> Workspace:
        """The same workspace for another thread: the same settings and app database, its own
        DuckDB cursor (one DuckDB connection object must not serve two threads at once).
        Closing a sibling closes only its cursor."""
        _ = self.appdb                       # one pool, shared with the sibling
        other = copy.copy(self)
        other._store = self.store().cursor()
        other._owns_store, other._owns_appdb = True, False
        return other

    def on_store(self, con: duckdb.DuckDBPyConnection, *, owned: bool = True) -> Workspace:
        """The same workspace over the given store connection (e.g. a read-only one, as the
        web server's workers share the store); closing it closes ``con`` when ``owned``."""
        _ = self.appdb
        other = copy.copy(self)
        other._store = con
        other._owns_store, other._owns_appdb = owned, False
        return other

    def acting_as(self, actor: Actor) -> Workspace:
        """The same workspace (same cursor and app database) whose writes are recorded as
        ``actor``: the web app's view for one signed-in person. Closing it closes nothing.

        >>> ws.acting_as(Actor("王芳", "web", "10.0.0.7")).override("C1", "vip", reason="…")
        ... # doctest: +SKIP
        """
        _ = self.appdb
        other = copy.copy(self)
        other.actor = actor
        other._store = self.store()
        other._owns_store = other._owns_appdb = False
        return other

    def close(self) -> None:
        """Close the store connection and the app database's pool (what this handle owns)."""
        if self._store is not None and self._owns_store:
            self._store.close()
        self._store = None if self._owns_store else self._store
        if self._owns_appdb and "appdb" in self.__dict__:
            self.appdb.dispose()
            del self.__dict__["appdb"]

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object | TracebackType | None) -> None:
        self.close()

    # -- places and settings ----------------------------------------------------------
    @property
    def runs_dir(self) -> Path:
        """runs/: each run's snapshot of assignments."""
        return self.root / "runs"

    @property
    def rejects_dir(self) -> Path:
        """rejects/: the rows imports refused, with their reasons."""
        return self.root / "rejects"

    @property
    def config(self) -> dict[str, Any]:
        """tierwise.yaml as read (see :attr:`settings` for its parsed sections)."""
        return self.settings.values

    @config.setter
    def config(self, values: dict[str, Any]) -> None:
        self.settings.values = values

    @property
    def language(self) -> str:
        """zh or en: the language of tables, exports and reasons."""
        return self.settings.language

    @property
    def database_url(self) -> str:
        """The app database's URL (TIERWISE_DATABASE_URL, ``database:``, or tierwise.db)."""
        return self.settings.database_url

    @cached_property
    def appdb(self) -> sa.Engine:
        """The app database (runs, history, overrides, tasks, users, audit), migrated."""
        return connect(self.database_url)

    def engine_choice(self, override: str | None = None) -> engines.EngineChoice:
        """tierwise.yaml's ``engine:``; ``override`` is --engine (duckdb or spark)."""
        return self.settings.engine(override)

    def engine_settings(self) -> dict[str, Any]:
        """DuckDB's memory limit, threads and spill folder from ``engine:``."""
        return self.settings.duckdb_settings()

    def schedule(self) -> scheduling.Schedule | None:
        """tierwise.yaml's ``schedule:`` (tierwise.work.schedule), or None."""
        return self.settings.schedule()

    def webhook_endpoints(self) -> list[webhooks.Endpoint]:
        """tierwise.yaml's ``webhooks:`` (a WorkspaceError naming the setting if invalid)."""
        return self.settings.webhooks()

    def data_sources(self) -> list[data_sources.Source]:
        """tierwise.yaml's ``sources:``: where the book is read from (files, SQL tables)."""
        return self.settings.sources()

    def _set_config(self, key: str, value: Any) -> None:
        self.settings.set(key, value)

    def store(self) -> duckdb.DuckDBPyConnection:
        """The DuckDB store (data/store.duckdb) holding the canonical tables."""
        if self._store is None:
            self._store = store.connect(self.root / "data" / "store.duckdb",
                                        **self.engine_settings())
        return self._store

    def tables(self) -> CanonicalTables:
        """The canonical tables of the workspace store, for the embedded engine."""
        backend = ibis.duckdb.from_connection(self.store())
        return CanonicalTables.of_store(backend, STORE_LABEL)

    def _audit(self, action: str, target: str = "", detail: str = "",
               user: str | None = None) -> None:
        audit(self.appdb, self._actor(user), action, target, detail)

    def _actor(self, user: str | None) -> Actor:
        return self.actor if user is None else dataclasses.replace(self.actor, name=user)

    # -- policy -----------------------------------------------------------------------
    def policy(self, ref: str | None = None) -> tuple[Policy, str]:
        """The policy named by ``ref`` (a preset name or a file), else the workspace's;
        with its text.

        >>> policy, text = ws.policy("rfm")                            # doctest: +SKIP
        """
        text, source = policy_source(ref or self.settings.policy, self.root)
        return self.check_policy(text, source=source), text

    def check_policy(self, text: str, *, source: str = "policy") -> Policy:
        """A policy text validated against this workspace's customer attributes; a
        PolicyError naming the line and field otherwise."""
        attributes = customer_attribute_columns(self.store())
        return load_policy_text(text, source=source, attributes=attributes)

    def check_policy_file(self, path: str | Path) -> Policy:
        """A policy file validated against this workspace's customer attributes (a
        PolicyError naming the file, line and field otherwise)."""
        return load_policy_file(Path(path), attributes=customer_attribute_columns(self.store()))

    def calibrate(self, metric: str, *, targets: Mapping[str, Target] | None = None,
                  policy: str | None = None, as_of: dt.date | None = None,
                  output: str | Path | None = None) -> tuple[Calibration, Path]:
        """Move ``metric``'s thresholds so that each tier's share of customers hits its
        target (tierwise.grading.calibration); writes the calibrated policy to ``output``
        (default: <policy>.calibrated.yaml in the workspace), never over the original.

        >>> result, path = ws.calibrate("annual_spend")                # doctest: +SKIP
        """
        ref = policy or self.settings.policy
        _, source = policy_source(ref, self.root)
        chosen, text = self.policy(ref)
        backend = ibis.duckdb.from_connection(self.store())
        result = calibrate(backend, self.tables(), chosen, text, metric=metric,
                           targets=targets, as_of=as_of)
        stem = Path(source).stem.removesuffix(".calibrated")
        target = Path(output) if output else self.root / f"{stem}.calibrated.yaml"
        target.write_text(result.text, encoding="utf-8")
        return result, target

    def save_policy(self, text: str, *, user: str | None = None) -> Policy:
        """Validate a policy text and make it the workspace's: written to policy.yaml (the
        config is pointed at it if it named a preset or another file), and kept as a version
        in the app database with its audit row. Nothing is written when the text is not a
        valid policy."""
        policy = self.check_policy(text, source="policy.yaml")
        target = self.root / "policy.yaml"
        staging = target.with_suffix(".yaml.tmp")
        staging.write_text(text, encoding="utf-8")
        os.replace(staging, target)
        if self.config.get("policy") != "policy.yaml":
            self.settings.set("policy", "policy.yaml")
        actor = self._actor(user)
        with self.appdb.begin() as connection:
            connection.execute(schema.policy_versions.insert().values(
                policy_name=policy.name, policy_hash=policy.hash, text=text,
                saved_at=dt.datetime.now(dt.UTC), saved_by=actor.name))
            audit(connection, actor, "policy", policy.name, policy.hash)
        return policy

    def policy_versions(self) -> list[dict[str, Any]]:
        """Policies saved with :meth:`save_policy`, newest first."""
        t = schema.policy_versions
        with self.appdb.connect() as connection:
            rows = connection.execute(sa.select(t).order_by(t.c.id.desc())).mappings()
            return [dict(row) for row in rows]

    # -- data in ----------------------------------------------------------------------
    def import_files(self, kind: Kind, paths: Sequence[str | Path], *,
                     column_map: dict[str, str] | None = None, strict: bool = False,
                     progress: Any = None) -> ImportResult:
        """Import customers, orders, interactions or payments (CSV, Excel, Parquet; Chinese
        headers and GBK recognised) into the store: accepted rows merged by key, rejected
        rows kept in rejects/ with their reasons. ``strict``: refuse all if any is bad.

        >>> ws.import_files("orders", ["订单.csv"], column_map={"单据号": "order_id"})
        ... # doctest: +SKIP
        """
        result = import_files(self.store(), kind, paths, rejects_dir=self.rejects_dir,
                              column_map=column_map, strict=strict, progress=progress,
                              plausible=self.settings.plausible())
        self._audit("import", f"{kind}: " + ", ".join(Path(p).name for p in paths),
                    f"accepted {result.accepted}, updated {result.updated}, "
                    f"rejected {result.rejected}")
        if kind == "customers" and result.updated:
            follow_owners(self.store(), self.appdb)     # owners may have changed
        return result

    def pull_sources(self) -> list[ImportResult]:
        """Import every configured source (files, SQL tables or queries) into the store,
        customers first; a source that cannot be read fails before anything is merged."""
        results = []
        with tempfile.TemporaryDirectory(prefix="tierwise-sources-") as folder:
            planned = [(spec, data_sources.files_of(spec, self.root, Path(folder)))
                       for spec in self.data_sources()]
            for spec, files in planned:
                results.append(self.import_files(spec.kind, files,       # type: ignore[arg-type]
                                                 column_map=spec.map or None))
        return results

    def log_interaction(self, customer_id: str, kind: str, *, date: dt.date | None = None,
                        note: str | None = None,
                        satisfaction: float | None = None) -> Logged:
        """Record one visit, call, complaint, … (tierwise.data.interactions)."""
        logged = log_interaction(self.store(), customer_id, kind,
                                 date=date or dt.date.today(), note=note,
                                 satisfaction=satisfaction)
        if logged.created:
            self._audit("interaction", customer_id,
                        f"{logged.kind} {logged.date.isoformat()}")
        return logged

    # -- grading ----------------------------------------------------------------------
    def grade(self, *, as_of: dt.date | None = None, policy: str | None = None,
              files: dict[str, Sequence[str]] | None = None,
              column_map: dict[str, str] | None = None,
              engine: str | None = None) -> RunSummary:
        """Make a recorded grading run (tierwise.grading.pipeline) and hand on its work.

        Args:
            as_of: the date graded (default: the latest order).
            policy: a preset or policy file (default: the workspace's).
            files: grade these files ({"orders": [...], "customers": [...]}) instead of the
                store; such a run is a look and derives no tasks.
            column_map: source column → field for ``files``.
            engine: duckdb or spark (default: tierwise.yaml's ``engine:``).

        Configured ``sources:`` are pulled first. Once the run is recorded (with its audit
        row, as :attr:`actor`), the webhooks hear of it; a failing endpoint is logged and
        recorded, never fails the run.

        >>> ws.grade(as_of=dt.date(2025, 12, 31)).run_id               # doctest: +SKIP
        """
        endpoints = self.webhook_endpoints()      # bad settings fail before any work
        choice = self.engine_choice(engine)
        chosen, text = self.policy(policy)
        if not choice.is_spark and not files and self.data_sources():
            self.pull_sources()                     # unreachable: fails here, no run
        request = GradeRequest(chosen, text, self.actor, choice, as_of=as_of, files=files,
                               column_map=column_map,
                               sources=self.data_sources() if choice.is_spark else (),
                               work_metrics=WORK_METRICS)
        summary = run_grading(self._place(), request, derive_work=self._derive_tasks)
        webhooks.announce(self.appdb, endpoints, summary,
                          lambda: self.snapshot(self.run(summary.run_id)), lang=self.language)
        return summary

    def _place(self) -> RunPlace:
        return RunPlace(self.root, self.runs_dir, self.rejects_dir, self.store(), self.appdb,
                        self.engine_settings(), self.language, self.settings.plausible())

    def _derive_tasks(self, summary: RunSummary, policy: Policy) -> TaskSync:
        record = self.run(summary.run_id)
        return derive_tasks(self.store(), self.appdb, policy, record, self.snapshot(record))

    def run_due(self, *, now: dt.datetime | None = None,
                engine: str | None = None) -> list[scheduling.Outcome]:
        """Run every scheduled run that is due, once each (tierwise.work.schedule); the runs
        are recorded as made by the schedule."""
        chosen = self.schedule()
        if chosen is None:
            raise WorkspaceError(f"no schedule: set `schedule:` in {self.root / CONFIG_NAME}")
        scheduled = self.acting_as(Actor.scheduler(self.actor.name))
        return scheduling.run_due(
            self.appdb, chosen,
            lambda as_of: scheduled.grade(as_of=as_of, engine=engine).run_id, now=now)

    # -- overrides --------------------------------------------------------------------
    def override(self, customer_id: str, tier: str, *, reason: str,
                 until: dt.date | None = None, user: str | None = None) -> int:
        """Record a manual tier for a customer; it applies from the next run on. ``user``:
        who (default: :attr:`actor`)."""
        in_store = self.store().execute(
            "SELECT count(*) FROM customers WHERE customer_id = ?", [customer_id]).fetchone()
        if not (in_store and in_store[0]) and not history.customer_history(
                self.appdb, customer_id, self._snapshot_files):
            raise WorkspaceError(f"unknown customer {customer_id!r}: it is neither imported "
                                 "nor in any run")
        policy, _ = self.policy()
        actor = self._actor(user)
        override_id = history.add_override(self.appdb, customer_id, tier, reason=reason,
                                           until=until, user=actor.name, policy=policy)
        audit(self.appdb, actor, "override", customer_id, f"{tier}: {reason}")
        return override_id

    def remove_override(self, customer_id: str, *, user: str | None = None) -> int:
        """End the customer's active overrides; returns how many were ended."""
        actor = self._actor(user)
        removed = history.remove_overrides(self.appdb, customer_id, user=actor.name)
        audit(self.appdb, actor, "override", customer_id, "removed")
        return removed

    # -- work ---------------------------------------------------------------------------
    def tasks(self, *, owner: str | None = None, kind: str | None = None,
              status: str = "open", customer_id: str | None = None,
              task_id: int | None = None) -> list[Task]:
        """Tasks the runs derived (tierwise.work.tasks), open ones by default."""
        return list_tasks(self.appdb, owner=owner, kind=kind, status=status,
                          customer_id=customer_id, task_id=task_id)

    def task_done(self, task_id: int, note: str | None = None, *,
                  user: str | None = None) -> Task:
        """Mark a task done, with an optional note of what was done."""
        actor = self._actor(user)
        done = mark_done(self.appdb, task_id, note=note, user=actor.name)
        audit(self.appdb, actor, "task done", f"task {task_id}", note or "")
        return done

    def import_reps(self, path: str | Path) -> owners.RepsImport:
        """Load the reps table from a CSV or Excel file (tierwise.work.owners.read_reps)."""
        policy, _ = self.policy()
        found = owners.read_reps(Path(path), policy)
        saved = owners.save_reps(self.appdb, found.reps, found.ignored_columns)
        self._audit("reps", Path(path).name, f"{len(found.reps)} reps")
        return saved

    def reps(self) -> list[owners.Rep]:
        """The reps table as last imported."""
        return owners.load_reps(self.appdb)

    def assign(self, *, apply: bool = False) -> owners.Proposal:
        """Propose owners from the latest run's tiers (tierwise.work.owners); with ``apply``,
        write the moves, their history and the open tasks' owners."""
        record = self.run()
        proposal = owners.propose(owners.accounts(self.store(), self.snapshot(record),
                                                  record.policy.keys),
                                  self.reps(),
                                  record.policy.keys, run_id=record.id)
        if apply:
            owners.apply(self.store(), self.appdb, proposal, user=self.actor.name)
            self._audit("assign", f"run {record.id}", f"{len(proposal.placed)} moves")
        return proposal

    def test_webhooks(self, event: str = "run.completed") -> list[webhooks.Delivery]:
        """Send one test event to the endpoints subscribed to it (one attempt each); a
        WorkspaceError when none is."""
        endpoints = [e for e in self.webhook_endpoints() if e.wants(event)]
        if not endpoints:
            raise WorkspaceError(f"no webhook in tierwise.yaml is subscribed to {event}")
        payload = {"test": True, "message": "tierwise webhook test · 测试消息",
                   "workspace": str(self.root)}
        return webhooks.deliver(self.appdb, endpoints, [webhooks.Event(event, payload)],
                                attempts=1)

    def webhook_deliveries(self, limit: int = 20) -> list[webhooks.Delivery]:
        """The latest webhook deliveries, newest first, with their status."""
        return webhooks.recent_deliveries(self.appdb, limit)

    # -- users --------------------------------------------------------------------------
    def users(self) -> list[User]:
        """The people who use the workbench and the API, by name."""
        return users.list_users(self.appdb)

    def user(self, name: str) -> User:
        """One user by name (a TierwiseError when there is none)."""
        return users.get_user(self.appdb, name)

    def ensure_admin(self) -> str | None:
        """With no users yet, create ``admin`` with a random password and return it (shown
        once); None when users exist."""
        if users.has_users(self.appdb):
            return None
        password = secrets.token_urlsafe(12)
        self.add_user("admin", "admin", password)
        return password

    def add_user(self, name: str, role: str, password: str, *,
                 rep_name: str | None = None) -> User:
        """A new user of the web app and the API (admin, manager or rep; a rep sees the
        accounts owned by ``rep_name``)."""
        user = users.add_user(self.appdb, name, role, password, rep_name=rep_name)
        self._audit("user", user.name, f"added as {role}")
        return user

    def create_token(self, user: User | str, label: str, *,
                     expires_days: int | None = None) -> str:
        """A personal API token for ``user`` (a User or a name), shown once; it stops after
        ``expires_days`` days when given."""
        if isinstance(user, str):
            user = self.user(user)
        token = users.create_token(self.appdb, user, label, expires_days=expires_days)
        self._audit("token", user.name, label + (f", {expires_days} days"
                                                 if expires_days else ""))
        return token

    def tokens(self, user: str | None = None) -> list[TokenInfo]:
        """API tokens (never the tokens themselves), newest first: one user's or all."""
        return users.list_tokens(self.appdb, user)

    def revoke_token(self, token_id: int, *, owner: str | None = None) -> TokenInfo:
        """Revoke an API token at once; with ``owner``, only one of that user's."""
        revoked = users.revoke_token(self.appdb, token_id, owner=owner)
        self._audit("token revoked", revoked.user, f"token {token_id} ({revoked.label})")
        return revoked

    def set_user_active(self, name: str, active: bool) -> User:
        """Deactivate a user (their sessions end and tokens stop at once; their history
        stays) or activate them again."""
        if not active and name == self.actor.name and self.actor.interface in ("web", "api"):
            raise WorkspaceError("you cannot deactivate yourself")
        user = users.set_active(self.appdb, name, active)
        self._audit("user activated" if active else "user deactivated", name)
        return user

    def reset_password(self, name: str, password: str) -> None:
        """Give a user a new password; their open sessions end."""
        users.set_password(self.appdb, name, password)
        self._audit("password", name)
