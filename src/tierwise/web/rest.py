"""The REST API under /api/v1: the same library calls as the CLI and the pages, as JSON.

Authentication: ``Authorization: Bearer tw_…`` (a personal API token), or the web session's
cookie with ``X-CSRF-Token`` on writes. A rep sees only the customers they own, everywhere:
lists, counts, profiles, tasks. Errors are ``{"error": {"message": …, "field": …}}``.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, HTTPException, Query, Request, UploadFile
from fastapi import Path as FastPath
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from tierwise.data.ingest import KINDS
from tierwise.data.ingest.preview import preview
from tierwise.data.interactions import customer_interactions
from tierwise.errors import TierwiseError, WorkspaceError
from tierwise.record.audit import audit_entries
from tierwise.reports.customers import WARNINGS, CustomerFilter, owned_ids
from tierwise.web.context import (
    MAX_ID,
    Forbidden,
    actor_of,
    customer_in_reach,
    customer_row,
    language,
    require,
    save_upload,
    server_of,
    signed_in,
    upload_name,
    workspace_for,
)
from tierwise.work import users
from tierwise.work.tasks import KINDS as TASK_KINDS
from tierwise.workspace import Workspace

router = APIRouter(prefix="/api/v1")

RunId = Annotated[int, FastPath(ge=1, le=MAX_ID)]
TaskId = Annotated[int, FastPath(ge=1, le=MAX_ID)]
TokenId = Annotated[int, FastPath(ge=1, le=MAX_ID)]


def api_user(request: Request) -> users.User:
    return signed_in(request, api=True)[0]


User = Annotated[users.User, Depends(api_user)]


def _ws(request: Request, user: users.User) -> Workspace:
    return workspace_for(request, user, "api")


# -- who am I ---------------------------------------------------------------------------------

@router.get("/me", summary="The signed-in user")
def me(user: User) -> dict[str, Any]:
    return user.to_json()


class TokenRequest(BaseModel):
    label: str = Field(min_length=1, max_length=128)
    expires_days: int | None = Field(default=None, ge=1, le=users.MAX_TOKEN_DAYS,
                                     description="stops working after this many days")


@router.post("/tokens", summary="Create a personal API token (shown once)")
def create_token(body: TokenRequest, request: Request, user: User) -> dict[str, Any]:
    token = _ws(request, user).create_token(user, body.label, expires_days=body.expires_days)
    return {"token": token, "label": body.label, "expires_days": body.expires_days}


@router.get("/tokens", summary="API tokens: your own; an admin's, anyone's (?user=)")
def tokens(request: Request, user: User,
           name: Annotated[str | None, Query(alias="user", max_length=128)] = None
           ) -> list[dict[str, Any]]:
    if name is not None and name != user.name:
        require(user, "users")
    whose = name if name is not None else (None if user.may("users") else user.name)
    return [t.to_json() for t in _ws(request, user).tokens(whose)]


@router.delete("/tokens/{token_id}", summary="Revoke an API token at once")
def revoke_token(token_id: TokenId, request: Request, user: User) -> dict[str, Any]:
    owner = None if user.may("users") else user.name
    try:
        return _ws(request, user).revoke_token(token_id, owner=owner).to_json()
    except TierwiseError:
        raise HTTPException(404, f"no API token {token_id}") from None


@router.get("/users", summary="The users (admin)")
def list_users(request: Request, user: User) -> list[dict[str, Any]]:
    require(user, "users")
    return [u.to_json() for u in _ws(request, user).users()]


class ActiveRequest(BaseModel):
    active: bool


@router.put("/users/{name}/active", summary="Deactivate or activate a user (admin)")
def set_active(name: Annotated[str, FastPath(max_length=128)], body: ActiveRequest,
               request: Request, user: User) -> dict[str, Any]:
    require(user, "users")
    return _ws(request, user).set_user_active(name, body.active).to_json()


class PasswordRequest(BaseModel):
    password: str = Field(min_length=users.MIN_PASSWORD_LENGTH, max_length=256)


@router.put("/users/{name}/password", summary="Set a user's password (admin); sessions end")
def reset_password(name: Annotated[str, FastPath(max_length=128)], body: PasswordRequest,
                   request: Request, user: User) -> dict[str, Any]:
    require(user, "users")
    _ws(request, user).reset_password(name, body.password)
    return {"name": name, "sessions": "ended"}


@router.get("/audit", summary="The audit log, newest first (admin)")
def audit(request: Request, user: User,
          limit: Annotated[int, Query(ge=1, le=1000)] = 100,
          since: dt.date | None = None, name: Annotated[str | None, Query(alias="user",
                                                                         max_length=128)] = None,
          action: Annotated[str | None, Query(max_length=64)] = None) -> list[dict[str, Any]]:
    require(user, "users")
    return [e.to_json() for e in audit_entries(_ws(request, user).appdb, limit, since=since,
                                               user=name, action=action)]


@router.get("/dashboard", summary="The dashboard's figures for the latest run, in scope")
def dashboard(request: Request, user: User) -> dict[str, Any]:
    from tierwise.reports.dashboard import dashboard as board

    return board(_ws(request, user), owner=user.owner_scope, lang=language(request)).to_json()


# -- runs ---------------------------------------------------------------------------------

@router.get("/runs", summary="Grading runs, newest first")
def runs(request: Request, user: User) -> list[dict[str, Any]]:
    return [_run_json(r, user) for r in reversed(_ws(request, user).runs())]


def _run_json(record: Any, user: users.User) -> dict[str, Any]:
    # The book's counts are not a rep's to see: a rep gets the run without them.
    counts = user.sees_all
    return {"id": record.id, "as_of": record.as_of.isoformat(),
            "created_at": record.created_at.isoformat(), "created_by": record.created_by,
            "policy": {"name": record.policy_name, "hash": record.policy_hash},
            "customers": record.customers if counts else None,
            "previous_run_id": record.previous_run_id,
            "tiers": record.summary if counts else None}


@router.get("/runs/{run_id}", summary="One run's summary")
def run(run_id: RunId, request: Request, user: User) -> dict[str, Any]:
    return _run_json(_ws(request, user).run(run_id), user)


@router.get("/runs/{run_a}/diff/{run_b}", summary="Who moved between two runs")
def diff(run_a: RunId, run_b: RunId, request: Request, user: User,
         limit: Annotated[int, Query(ge=1, le=10_000)] = 1000) -> dict[str, Any]:
    found = _ws(request, user).diff(run_a, run_b)
    scope = user.owner_scope
    moves = found.moves
    if scope is not None:
        owned = owned_ids(_ws(request, user).store(), scope)
        moves = [m for m in moves if m.customer_id in owned]
    return {"run_a": run_a, "run_b": run_b, "moved": len(moves),
            "moves": [m.__dict__ for m in moves[:limit]],
            "matrix": ([{"from": a, "to": b, "customers": n}
                        for (a, b), n in found.matrix.items()] if scope is None else None)}


class RunRequest(BaseModel):
    as_of: dt.date | None = None


@router.post("/runs", status_code=202, summary="Start a grading run in the background")
def start_run(body: RunRequest, request: Request, user: User) -> dict[str, Any]:
    require(user, "run")
    job = server_of(request).start_run(actor_of(request, user, "api"), body.as_of)
    return job.to_json()


@router.get("/jobs/{job_id}", summary="A background run's state")
def job(job_id: str, request: Request, user: User) -> dict[str, Any]:
    found = server_of(request).job(job_id)
    if found is None:
        raise HTTPException(404, f"no job {job_id!r}")
    return found.to_json()


# -- customers ------------------------------------------------------------------------------

@router.get("/customers", summary="The latest run's customers: filter, search, sort, page")
def customers(request: Request, user: User,
              tier: str | None = None, stage: str | None = None, owner: str | None = None,
              industry: str | None = None, region: str | None = None,
              warning: Literal[WARNINGS] | None = None,  # type: ignore[valid-type]
              q: Annotated[str | None, Query(max_length=200)] = None,
              sort: str = "tier",
              page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
              per_page: Annotated[int, Query(ge=1, le=500)] = 50,
              run_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
              ) -> dict[str, Any]:
    flt = CustomerFilter(tier=tier, stage=stage, owner=owner, industry=industry, region=region,
                         warning=warning, search=q, sort=sort, page=page, per_page=per_page)
    record, found = _ws(request, user).customer_page(flt, scope=user.owner_scope, run_id=run_id)
    return {"run_id": record.id, **found.to_json()}


@router.get("/customers/{customer_id}", summary="A customer: tier, why, history, work")
def customer(customer_id: str, request: Request, user: User,
             metrics: Literal["stored", "all"] = "stored") -> dict[str, Any]:
    """``metrics=all`` adds the metrics the run left out, computed from the customer's
    orders now (seconds on a large book); by default only what the run kept."""
    ws = _ws(request, user)
    customer_in_reach(ws, user, customer_id)
    lang = language(request)
    found = ws.explain(customer_id, lang=lang, complete=metrics == "all",
                       row=customer_row(ws, customer_id))
    return {**found.to_json(),
            "history": [h.__dict__ for h in found.history],
            "owner_changes": [c.__dict__ for c in found.owner_changes],
            "tasks": [{**t.to_json(), "text": t.describe(lang, found.labels)}
                      for t in ws.tasks(customer_id=customer_id)],
            "interactions": customer_interactions(ws.store(), customer_id)}


class OverrideRequest(BaseModel):
    tier: str = Field(min_length=1, max_length=64)
    reason: str = Field(min_length=1, max_length=2000)
    until: dt.date | None = None


@router.post("/customers/{customer_id}/override", status_code=201,
             summary="Set a manual tier (manager, admin); applies from the next run")
def override(customer_id: str, body: OverrideRequest, request: Request,
             user: User) -> dict[str, Any]:
    ws = _ws(request, user)
    customer_in_reach(ws, user, customer_id, "override")
    override_id = ws.override(customer_id, body.tier, reason=body.reason, until=body.until)
    return {"override_id": override_id, "customer_id": customer_id, "tier": body.tier}


@router.delete("/customers/{customer_id}/override", summary="Remove a manual tier")
def remove_override(customer_id: str, request: Request, user: User) -> dict[str, Any]:
    ws = _ws(request, user)
    customer_in_reach(ws, user, customer_id, "override")
    removed = ws.remove_override(customer_id)
    return {"removed": removed}


class InteractionRequest(BaseModel):
    type: str = Field(min_length=1, max_length=32, description="visit, call, 拜访, 电话, …")
    date: dt.date | None = None
    note: str | None = Field(default=None, max_length=2000)
    satisfaction: float | None = Field(default=None, ge=1, le=5)


@router.post("/customers/{customer_id}/interactions", status_code=201,
             summary="Log a visit, call, complaint, …")
def log_interaction(customer_id: str, body: InteractionRequest, request: Request,
                    user: User) -> dict[str, Any]:
    ws = _ws(request, user)
    customer_in_reach(ws, user, customer_id, "log")
    with server_of(request).writing(ws) as writer:
        logged = writer.log_interaction(customer_id, body.type, date=body.date,
                                        note=body.note, satisfaction=body.satisfaction)
    return {**logged.__dict__, "date": logged.date.isoformat()}


# -- tasks ---------------------------------------------------------------------------------

@router.get("/tasks", summary="Tasks: a rep's own, everyone's for managers; overdue first")
def tasks(request: Request, user: User,
          kind: Literal[TASK_KINDS] | None = None,  # type: ignore[valid-type]
          status: Literal["open", "done", "closed", "all"] = "open",
          overdue: bool = False, owner: str | None = None) -> list[dict[str, Any]]:
    ws = _ws(request, user)
    lang = language(request)
    labels = ws.tier_labels(lang)
    scope = user.owner_scope if user.owner_scope is not None else owner
    today = dt.date.today()
    found = [t for t in ws.tasks(owner=scope, kind=kind, status=status)
             if not overdue or t.overdue(today)]
    found.sort(key=lambda t: (not t.overdue(today), t.due_date, t.priority or 99))
    return [{**t.to_json(), "overdue": t.overdue(today), "text": t.describe(lang, labels)}
            for t in found]


class DoneRequest(BaseModel):
    note: str | None = Field(default=None, max_length=2000)


@router.post("/tasks/{task_id}/done", summary="Mark a task done")
def task_done(task_id: TaskId, body: DoneRequest, request: Request, user: User) -> dict[str, Any]:
    ws = _ws(request, user)
    mine = ws.tasks(owner=user.owner_scope, status="all", task_id=task_id)
    if not mine:
        raise HTTPException(404, f"no task {task_id}")
    return ws.task_done(task_id, body.note).to_json()


# -- policy ---------------------------------------------------------------------------------

@router.get("/policy", summary="The workspace's policy: text and parsed")
def policy(request: Request, user: User) -> dict[str, Any]:
    chosen, text = _ws(request, user).policy()
    return {"name": chosen.name, "hash": chosen.hash, "text": text,
            "tiers": [{"key": t.key, "label": t.label, "label_en": t.label_en, "when": t.when,
                       "target_share": t.target_share} for t in chosen.tiers]}


class PolicyText(BaseModel):
    text: str = Field(min_length=1, max_length=200_000)


@router.post("/policy/check", summary="Validate a policy text; errors name line and field")
def policy_check(body: PolicyText, request: Request, user: User) -> dict[str, Any]:
    try:
        checked = _ws(request, user).check_policy(body.text)
    except TierwiseError as error:
        return {"valid": False, "problems": getattr(error, "problems", [str(error)])}
    return {"valid": True, "name": checked.name, "hash": checked.hash, "problems": []}


@router.post("/policy/what-if", summary="Who would move under a policy text (nothing saved)")
def policy_what_if(body: PolicyText, request: Request, user: User,
                   limit: Annotated[int, Query(ge=1, le=5000)] = 200) -> dict[str, Any]:
    require(user, "run")          # it counts the whole book: managers and admins
    return _ws(request, user).what_if(policy_text=body.text).to_json(limit=limit)


@router.put("/policy", summary="Save and apply a policy (admin); the next run uses it")
def policy_save(body: PolicyText, request: Request, user: User) -> dict[str, Any]:
    require(user, "policy")
    ws = _ws(request, user)
    saved = ws.save_policy(body.text)
    return {"name": saved.name, "hash": saved.hash}


@router.get("/policy/versions", summary="Policies saved from the app, newest first")
def policy_versions(request: Request, user: User) -> list[dict[str, Any]]:
    return [{**v, "saved_at": v["saved_at"].isoformat()}
            for v in _ws(request, user).policy_versions()]


# -- imports --------------------------------------------------------------------------------

@router.post("/imports/preview", summary="Headers of a file and the fields they map to")
def import_preview(request: Request, user: User,
                   kind: Annotated[str, Form()], file: Annotated[UploadFile, File()],
                   column_map: Annotated[str | None, Form()] = None) -> dict[str, Any]:
    require(user, "import")
    with _saved_upload(file, _ws(request, user).settings.max_upload_bytes()) as path:
        return preview(path, _kind(kind), _column_map(column_map)).to_json()


@router.post("/imports", summary="Import a CSV or Excel file (accepted, updated, rejected)")
def import_file(request: Request, user: User,
                kind: Annotated[str, Form()], file: Annotated[UploadFile, File()],
                column_map: Annotated[str | None, Form()] = None) -> dict[str, Any]:
    require(user, "import")
    ws = _ws(request, user)
    with (_saved_upload(file, _ws(request, user).settings.max_upload_bytes()) as path,
          server_of(request).writing(ws) as writer):
        result = writer.import_files(_kind(kind), [path], column_map=_column_map(column_map))
    return {"kind": kind, "accepted": result.accepted, "updated": result.updated,
            "unchanged": result.unchanged, "rejected": result.rejected,
            "created_customers": len(result.created_customers),
            "rejects": result.rejects_path.name if result.rejects_path else None,
            "files": [{"rows": f.rows, "mapping": f.mapping} for f in result.files]}


@router.get("/imports/rejects/{name}", summary="Download a rejects file (CSV with reasons)")
def rejects(name: str, request: Request, user: User) -> FileResponse:
    require(user, "import")
    try:
        path = _ws(request, user).rejects_file(name)
    except WorkspaceError as error:
        raise HTTPException(404, str(error)) from None
    return FileResponse(path, media_type="text/csv", filename=name)


def _kind(kind: str) -> Any:
    if kind not in KINDS:
        raise TierwiseError(f"unknown kind {kind!r}; kinds: {', '.join(KINDS)}")
    return kind


def _column_map(text: str | None) -> dict[str, str] | None:
    """header=field pairs, one per line or separated by ';' (as in the CLI's --map)."""
    if not text:
        return None
    pairs = [p for p in text.replace(";", "\n").splitlines() if p.strip()]
    mapping = {}
    for pair in pairs:
        header, sep, target = pair.partition("=")
        if not sep:
            raise TierwiseError(f"column_map: expected header=field, got {pair!r}")
        mapping[header.strip()] = target.strip()
    return mapping


class _saved_upload:
    """The upload in a temporary folder under its own (sanitised) name, removed after."""

    def __init__(self, upload: UploadFile, limit: int) -> None:
        self.upload, self.limit = upload, limit
        self.folder = Path(tempfile.mkdtemp(prefix="tierwise-upload-"))

    def __enter__(self) -> Path:
        name = upload_name(self.upload.filename or "upload.csv")
        try:
            return save_upload(self.upload, self.folder / name, self.limit)
        except BaseException:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


__all__ = ["Forbidden", "router"]
