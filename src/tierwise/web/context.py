"""What every request works with: the workspace (one DuckDB cursor per thread), the signed-in
user, the language, and the background runs. Shared by the API and the pages."""

from __future__ import annotations

import datetime as dt
import threading
import time
import traceback
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
from fastapi import HTTPException, Request, UploadFile

from tierwise.errors import InputError, RunNotFound, TierwiseError, WorkspaceError
from tierwise.record.audit import Actor, Interface
from tierwise.reports.customers import book_owner, snapshot_row, visible
from tierwise.web.sharing import SharedStore
from tierwise.work import jobs, users
from tierwise.work.schedule import this_process
from tierwise.workspace import Workspace

SESSION_COOKIE = "tw_session"
LANG_COOKIE = "tw_lang"


class Forbidden(TierwiseError):
    """The signed-in user's role does not allow this, or the customer is not theirs."""


RUN_LEASE = "grading"                 # one run at a time over every worker
SCHEDULER_LEASE = "scheduler"         # the one worker that checks the schedule
RUN_TTL = dt.timedelta(hours=6)       # another host's run is taken over after this long


class Server:
    """The app's state: the workspace, per-thread siblings of it, and the background runs
    (tierwise.work.jobs: rows of the app database, so every worker process sees them).

    With ``shared_store`` (several worker processes), each worker reads the store through a
    read-only connection and a write takes it for a moment (tierwise.web.sharing)."""

    def __init__(self, root: Path, *, shared_store: bool = False) -> None:
        self.workspace = Workspace(root)
        self._local = threading.local()
        self._stopping = threading.Event()
        self._scheduler: threading.Thread | None = None
        self.shared: SharedStore | None = None
        if shared_store:
            self.shared = SharedStore(self.workspace.root / "data" / "store.duckdb",
                                      self.workspace.engine_settings())

    def ws(self) -> Workspace:
        """This thread's view of the workspace (its own DuckDB cursor)."""
        sibling: Workspace | None = getattr(self._local, "ws", None)
        if self.shared is not None:
            if sibling is None or self._local.generation != self.shared.generation:
                cursor, self._local.generation = self.shared.cursor()
                sibling = self._local.ws = self.workspace.on_store(cursor, owned=False)
            return sibling
        if sibling is None:
            sibling = self.workspace.sibling()
            self._local.ws = sibling
        return sibling

    @contextmanager
    def writing(self, ws: Workspace) -> Iterator[Workspace]:
        """``ws`` able to write to the store: itself with one worker; with several, over the
        store opened read-write for the moment (refused while a run reads it)."""
        if self.shared is None:
            yield ws
            return
        if self._run_in_progress():
            raise TierwiseError("a run is in progress; try again when it has finished")
        with self.shared.writing() as con:
            yield ws.on_store(con, owned=False)

    def _run_in_progress(self) -> bool:
        return jobs.held(self.workspace.appdb, RUN_LEASE, ttl=RUN_TTL)

    def _grading_workspace(self) -> Workspace:
        if self.shared is not None:
            return self.workspace.on_store(self.shared.connection())
        return self.workspace.sibling()

    def start_run(self, actor: Actor, as_of: dt.date | None) -> jobs.Job:
        """Grade in a thread, as ``actor`` (the signed-in person); one run at a time over
        every worker (a second start while one runs is refused). An implausible as-of date
        is refused here, naming the field, before any job starts."""
        plausible = self.workspace.settings.plausible()
        if as_of is not None and not plausible.holds(as_of):
            raise InputError(f"as_of {as_of.isoformat()} is outside the plausible range "
                             f"{plausible.describe()}", column="as_of")
        appdb = self.workspace.appdb
        holder = f"{this_process()}:{uuid.uuid4().hex[:8]}"
        if not jobs.acquire(appdb, RUN_LEASE, ttl=RUN_TTL, holder=holder):
            raise TierwiseError("a run is in progress; wait for it to finish")
        try:
            job = jobs.start(appdb, actor.name, as_of)
            ws = self._grading_workspace()
        except BaseException:
            jobs.release(appdb, RUN_LEASE, holder=holder)
            raise

        def work() -> None:
            run_id, error = None, None
            try:
                run_id = ws.acting_as(actor).grade(as_of=as_of).run_id
            except Exception as failure:       # shown to the user; the run was not written
                # A domain error says what to fix; anything else stays in the server's log
                # (a database error's text can carry other people's data).
                error = str(failure) if isinstance(failure, TierwiseError) else (
                    "the run failed on the server; nothing was recorded (see the server log)")
                traceback.print_exc()
            finally:
                ws.close()
                jobs.finish(appdb, job.id, run_id=run_id, error=error)
                jobs.release(appdb, RUN_LEASE, holder=holder)

        threading.Thread(target=work, name=f"run-{job.id}", daemon=True).start()
        return job

    def job(self, job_id: str) -> jobs.Job | None:
        return jobs.get(self.workspace.appdb, job_id)

    def recent_jobs(self, limit: int = 5) -> list[jobs.Job]:
        return jobs.recent(self.workspace.appdb, limit)

    def start_scheduler(self, every: float = 60.0) -> None:
        """Run due scheduled runs in the background (tierwise.work.schedule), checking each
        ``every`` seconds, in the one worker that holds the scheduler lease; a run started
        from the web holds them off until it ends."""
        if self.workspace.schedule() is None or self._scheduler is not None:
            return
        appdb = self.workspace.appdb
        ttl = dt.timedelta(seconds=max(3 * every, 60))

        def loop() -> None:
            while not self._stopping.wait(every):
                if not jobs.acquire(appdb, SCHEDULER_LEASE, ttl=ttl):
                    continue
                holder = f"{this_process()}:schedule"
                if not jobs.acquire(appdb, RUN_LEASE, ttl=RUN_TTL, holder=holder):
                    continue
                ws = self._grading_workspace()
                try:
                    ws.run_due()
                except Exception:           # recorded per slot; keep the server serving
                    traceback.print_exc()
                finally:
                    ws.close()
                    jobs.release(appdb, RUN_LEASE, holder=holder)

        self._scheduler = threading.Thread(target=loop, name="scheduler", daemon=True)
        self._scheduler.start()

    def close(self) -> None:
        self._stopping.set()
        if self._scheduler is not None:
            self._scheduler.join(timeout=5)
            jobs.release(self.workspace.appdb, SCHEDULER_LEASE)
        if self.shared is not None:
            self.shared.close()
        self.workspace.close()


def server_of(request: Request) -> Server:
    server: Server = request.app.state.server
    return server


def actor_of(request: Request, user: users.User, interface: Interface) -> Actor:
    """The signed-in person as the audit log records them, with the client's address."""
    return Actor(user.name, interface, request.client.host if request.client else "")


def workspace_for(request: Request, user: users.User, interface: Interface) -> Workspace:
    """This thread's workspace, its writes recorded as the signed-in person."""
    return server_of(request).ws().acting_as(actor_of(request, user, interface))


MAX_ID = 2**31 - 1          # ids are 32-bit in the app database
MAX_PAGE = 1_000_000


def date_field(values: Mapping[str, Any], name: str) -> dt.date | None:
    """A YYYY-MM-DD form or query value; None when empty; a 400 naming the field otherwise."""
    text = str(values.get(name) or "").strip()
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InputError(f"{name}: not a date (YYYY-MM-DD): {text[:40]!r}",
                         column=name) from None


def number_field(values: Mapping[str, Any], name: str, low: float,
                 high: float) -> float | None:
    """A number from ``low`` to ``high``; None when empty; a 400 naming the field otherwise."""
    text = str(values.get(name) or "").strip()
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        number = float("nan")
    if not low <= number <= high:           # NaN fails both
        raise InputError(f"{name}: expected a number from {low:g} to {high:g}: {text[:40]!r}",
                         column=name)
    return number


def id_field(values: Mapping[str, Any], name: str) -> int | None:
    """A record id (1 to 2**31-1); None when empty; a 400 naming the field otherwise."""
    text = str(values.get(name) or "").strip()
    if not text:
        return None
    if not text.isdigit() or not 1 <= int(text) <= MAX_ID:
        raise InputError(f"{name}: not an id: {text[:40]!r}", column=name)
    return int(text)


MAX_NAME = 100          # characters of an upload's name kept (file systems allow ~255 bytes)
UPLOAD_MAX_AGE = dt.timedelta(days=1)


def upload_name(filename: str) -> str:
    """An upload's own name, safe as a file name here: no folders, no control characters,
    at most MAX_NAME characters with its suffix kept (a bare ".." is refused)."""
    name = "".join(ch for ch in Path(filename.replace("\\", "/")).name if ch.isprintable())
    if name in ("", ".", ".."):
        raise InputError(f"file: not a file name: {filename[:40]!r}", column="file")
    suffix = Path(name).suffix[:10]
    return name[:MAX_NAME - len(suffix)].rstrip(".") + suffix if len(name) > MAX_NAME else name


def save_upload(upload: UploadFile, target: Path, limit: int) -> Path:
    """Copy an upload to ``target`` in chunks (never whole in memory); past ``limit`` bytes
    the copy is removed and the request refused with 413."""
    copied = 0
    with target.open("wb") as handle:
        while chunk := upload.file.read(1 << 20):
            copied += len(chunk)
            if copied > limit:
                break
            handle.write(chunk)
    if copied > limit:
        target.unlink(missing_ok=True)
        raise HTTPException(413, too_large(limit))
    return target


def too_large(limit: int) -> str:
    return (f"the file is larger than the {limit >> 20:,} MB an upload may be "
            "(web: max_upload_mb in tierwise.yaml); import it with tierwise import")


def sweep_uploads(folder: Path, max_age: dt.timedelta = UPLOAD_MAX_AGE) -> None:
    """Remove uploads left over a day (a preview that was never confirmed)."""
    cutoff = time.time() - max_age.total_seconds()
    for path in folder.glob("*"):
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
        except OSError:
            continue


def language(request: Request) -> str:
    """?lang=, else the cookie, else the browser's Accept-Language, else Chinese."""
    chosen = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE)
    if chosen in ("zh", "en"):
        return chosen
    accepted = request.headers.get("accept-language", "").lower()
    first = accepted.split(",")[0].strip()
    return "en" if first.startswith("en") else "zh"


def signed_in(request: Request, *, api: bool) -> tuple[users.User, users.Session | None]:
    """The user of a bearer token or a session cookie; 401 otherwise. A write through the
    API with a session cookie must carry the session's CSRF token in X-CSRF-Token."""
    appdb = server_of(request).workspace.appdb
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        user = users.token_user(appdb, header[7:].strip())
        if user is None:
            raise HTTPException(401, "invalid or revoked API token")
        return user, None
    session = users.session_of(appdb, request.cookies.get(SESSION_COOKIE))
    if session is None:
        raise HTTPException(401, "sign in, or send an API token (Authorization: Bearer …)")
    writes = api and request.method not in ("GET", "HEAD", "OPTIONS")
    if writes and request.headers.get("x-csrf-token") != session.csrf:
        raise HTTPException(403, "missing or wrong X-CSRF-Token")
    return session.user, session


def require(user: users.User, action: str) -> None:
    if not user.may(action):
        raise Forbidden(f"a {user.role} may not {action}")


def customer_in_reach(ws: Workspace, user: users.User, customer_id: str,
                      action: str | None = None) -> None:
    """The user may see this customer (and do ``action``), else 403 for the action or 404
    for the customer: the same 404 for "not yours" as for "no such customer", so that ids
    cannot be probed."""
    if action is not None:
        require(user, action)
    if not _visible(ws, customer_id, user.owner_scope):
        raise HTTPException(404, f"no customer {customer_id!r}")


def customer_row(ws: Workspace, customer_id: str) -> pa.Table | None:
    """The customer's row of the latest run, from the copy this process keeps in memory
    (None: read it from the file, as explain does by itself)."""
    try:
        record = ws.run()
        return snapshot_row(ws.store(), ws.snapshot(record), customer_id)
    except (RunNotFound, WorkspaceError):
        return None


def _visible(ws: Workspace, customer_id: str, scope: str | None) -> bool:
    """Looked up in the latest run's list, kept in memory (tierwise.reports.customers),
    else in the store: a customer imported since the run."""
    try:
        record = ws.run()
        found, owner = book_owner(ws.store(), ws.snapshot(record), record.policy.keys,
                                  customer_id)
    except (RunNotFound, WorkspaceError):
        found, owner = False, None
    if found:
        return scope is None or owner == scope
    return visible(ws.store(), customer_id, scope)
