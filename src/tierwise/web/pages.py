"""Server-rendered pages (Jinja): the same library calls as the API, as HTML forms.

Every form carries the session's CSRF token; every page is behind the sign-in, and a rep's
pages show only the customers they own.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import functools
import gzip
import secrets
import tempfile
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from tierwise.common import formatting
from tierwise.common.vocabulary import (
    INTERACTION_LABELS,
    STAGES,
    interaction_label,
    metric_label,
    stage_label,
)
from tierwise.data.ingest import KINDS
from tierwise.data.ingest.preview import preview
from tierwise.data.interactions import customer_interactions
from tierwise.errors import InputError, RunNotFound, TierwiseError, WorkspaceError
from tierwise.record.audit import (
    ACTIONS,
    Actor,
    action_label,
    audit,
    audit_entries,
    interface_label,
)
from tierwise.record.history import overrides_for
from tierwise.reports.customers import WARNINGS, CustomerFilter, owned_ids
from tierwise.web.context import (
    LANG_COOKIE,
    MAX_ID,
    MAX_PAGE,
    SESSION_COOKIE,
    customer_in_reach,
    customer_row,
    date_field,
    id_field,
    language,
    number_field,
    require,
    save_upload,
    server_of,
    signed_in,
    sweep_uploads,
    upload_name,
    workspace_for,
)
from tierwise.web.text import word
from tierwise.work import users
from tierwise.work.tasks import KINDS as TASK_KINDS
from tierwise.workspace import Workspace

router = APIRouter(include_in_schema=False)
AUDIT_PAGE_ROWS = 500
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
templates.env.globals.update(money=formatting.money, share=formatting.share,
                             value=formatting.value, stage_label=stage_label,
                             metric_label=metric_label, interaction_label=interaction_label)


class Page:
    """What a page handler needs: the request, user, session, language and workspace."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.user, session = signed_in(request, api=False)
        self.csrf = session.csrf if session else ""
        self.lang = language(request)
        self.ws: Workspace = workspace_for(request, self.user, "web")

    def render(self, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        lang = self.lang
        response = templates.TemplateResponse(self.request, template, {
            "user": self.user, "csrf": self.csrf, "lang": lang,
            "t": lambda key, **v: word(key, lang, **v), "path": self.request.url.path,
            **values}, status_code=status)
        if self.request.query_params.get("lang") in ("zh", "en"):
            response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax")
        return response

    async def form(self) -> dict[str, Any]:
        """The posted form, after checking its CSRF token."""
        data = await self.request.form()
        if data.get("csrf") != self.csrf:
            raise HTTPException(403, "the form is stale or forged (CSRF); reload the page")
        return {k: v for k, v in data.items()}

    def labels(self) -> dict[str, str]:
        return self.ws.tier_labels(self.lang)


PageDep = Annotated[Page, Depends(Page)]


def error_page(request: Request, status: int, message: str) -> Response:
    lang = language(request)
    return templates.TemplateResponse(request, "error.html", {
        "user": None, "csrf": "", "lang": lang, "path": request.url.path,
        "t": lambda key, **v: word(key, lang, **v), "status": status, "message": message},
        status_code=status)


def plotly_js(request: Request) -> Response:
    """plotly.js from the installed plotly package (no CDN), gzip-compressed once per
    process when the browser accepts it: 4.8 MB on the wire becomes 1.47 MB."""
    from tierwise.reports.charts import plotly_js_path

    path = plotly_js_path()
    compressed, tag = _compressed(path)
    headers = {"Cache-Control": "public, max-age=86400", "ETag": tag, "Vary": "Accept-Encoding"}
    if request.headers.get("if-none-match") == tag:
        return Response(status_code=304, headers=headers)
    if "gzip" not in request.headers.get("accept-encoding", "").lower():
        return FileResponse(path, media_type="text/javascript", headers=headers)
    return Response(compressed, media_type="text/javascript",
                    headers={**headers, "Content-Encoding": "gzip"})


@functools.cache
def _compressed(path: Path) -> tuple[bytes, str]:
    """A static file's gzip form and its ETag (from its size and time: a new plotly
    release is a new tag)."""
    stat = path.stat()
    data = gzip.compress(path.read_bytes(), compresslevel=9, mtime=0)
    return data, f'"{stat.st_size:x}-{int(stat.st_mtime):x}"'


# -- sign in and out ---------------------------------------------------------------------------

LOGIN_CSRF_COOKIE = "tw_login_csrf"


def _login_page(request: Request, next: str, error: str | None, status: int = 200) -> Response:
    """The sign-in form, with a double-submit token (cookie and field) against login CSRF:
    there is no session yet to hold one."""
    lang = language(request)
    token = secrets.token_urlsafe(24)
    response = templates.TemplateResponse(request, "login.html", {
        "user": None, "csrf": token, "lang": lang, "path": "/login", "next": _safe_next(next),
        "t": lambda key, **v: word(key, lang, **v), "error": error}, status_code=status)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", max_age=3600)
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/") -> Response:
    return _login_page(request, next, None)


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, name: Annotated[str, Form()], password: Annotated[str, Form()],
          next: Annotated[str, Form()] = "/", csrf: Annotated[str, Form()] = "") -> Response:
    appdb = server_of(request).workspace.appdb
    client = request.client.host if request.client else "unknown"
    lang = language(request)
    expected = request.cookies.get(LOGIN_CSRF_COOKIE)
    if not expected or not secrets.compare_digest(csrf, expected):
        raise HTTPException(403, "the sign-in form is stale or forged (CSRF); reload the page")
    try:
        user = users.authenticate(appdb, name, password, client=client)
    except users.LoginError as error:
        audit(appdb, Actor(name, "web", client), "login failed", name, str(error))
        message = word("wrong_login", lang) if "wrong" in str(error) else str(error)
        return _login_page(request, next, message, status=401)
    session = users.start_session(appdb, user)
    audit(appdb, Actor(user.name, "web", client), "login", user.name)
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.delete_cookie(LOGIN_CSRF_COOKIE)
    response.set_cookie(SESSION_COOKIE, session.token, httponly=True, samesite="lax",
                        secure=request.url.scheme == "https",
                        max_age=users.SESSION_HOURS * 3600)
    return response


def _safe_next(target: str, default: str = "/") -> str:
    """Only a path on this site: never an open redirect. Browsers read "//host" and
    "/\\host" as another site, and drop tabs and newlines inside a URL."""
    cleaned = "".join(ch for ch in target if ch.isprintable())
    parts = urlsplit(cleaned)
    if (cleaned != target or not cleaned.startswith("/") or cleaned[1:2] in ("/", "\\")
            or parts.scheme or parts.netloc):
        return default
    return cleaned


@router.post("/logout")
async def logout(page: PageDep) -> Response:
    await page.form()
    token = page.request.cookies.get(SESSION_COOKIE)
    if token:
        users.end_session(page.ws.appdb, token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


# -- dashboard --------------------------------------------------------------------------------

@router.get("/", response_class=HTMLResponse)
def dashboard(page: PageDep) -> Response:
    from tierwise.reports import charts
    from tierwise.reports import dashboard as data

    try:
        board = data.dashboard(page.ws, owner=page.user.owner_scope, lang=page.lang)
    except RunNotFound:
        return page.render("dashboard.html", board=None, figures={})
    lang = page.lang
    figures = {
        "distribution": charts.distribution_figure(board.distribution, lang),
        "pareto": charts.pareto_figure(board.pareto, lang),
        "migration": (charts.migration_figure(board.migration, lang)
                      if board.migration else None),
        "history": charts.history_figure(board.history, lang),
        "work": charts.work_figure(board.work, lang),
    }
    return page.render("dashboard.html", board=board,
                       figures={k: charts.figure_div(f, div_id=f"chart-{k}")
                                for k, f in figures.items() if f is not None})


# -- customers --------------------------------------------------------------------------------

def _customer_filter(request: Request) -> CustomerFilter:
    q = request.query_params

    def text(name: str) -> str | None:
        return q.get(name) or None

    def number(name: str, default: int) -> int:
        try:
            return min(max(1, int(q.get(name, default))), MAX_PAGE)
        except ValueError:
            return default

    warning = text("warning")
    return CustomerFilter(tier=text("tier"), stage=text("stage"), owner=text("owner"),
                          industry=text("industry"), region=text("region"),
                          warning=warning if warning in WARNINGS else None,
                          search=text("q"), sort=q.get("sort") or "tier",
                          page=number("page", 1), per_page=min(number("per_page", 50), 500))


@router.get("/customers", response_class=HTMLResponse)
def customers(page: PageDep) -> Response:
    flt = _customer_filter(page.request)
    try:
        record, found = page.ws.customer_page(flt, scope=page.user.owner_scope, facets=True)
    except RunNotFound:
        return page.render("customers.html", record=None, found=None, flt=CustomerFilter())
    query = {k: v for k, v in page.request.query_params.items() if k not in ("page", "lang")}
    return page.render("customers.html", record=record, found=found, flt=flt,
                       labels=page.labels(), stages=list(STAGES), warnings=WARNINGS,
                       query=query)


@router.get("/customers.xlsx")
def customers_export(page: PageDep) -> Response:
    """The filtered list as the 客户分级表 grading table (Excel), within the reader's scope."""
    ws = page.ws
    record = ws.run()
    ids = ws.customer_ids(_customer_filter(page.request), scope=page.user.owner_scope,
                          run_id=record.id)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "customers.xlsx"
        ws.export(path, record.id, lang=page.lang, customer_ids=set(ids))
        content = path.read_bytes()
    name = "客户分级表.xlsx" if page.lang == "zh" else "customer-tiers.xlsx"
    return Response(content, media_type="application/vnd.openxmlformats-officedocument."
                    "spreadsheetml.sheet", headers={
                        "Content-Disposition": f"attachment; filename*=UTF-8''"
                        f"{_quote(name)}"})


def _quote(name: str) -> str:
    from urllib.parse import quote

    return quote(name)


@router.get("/customers/{customer_id}", response_class=HTMLResponse)
def customer(customer_id: str, page: PageDep) -> Response:
    ws = page.ws
    customer_in_reach(ws, page.user, customer_id)
    every = _all_metrics(page.request.query_params)
    found = ws.explain(customer_id, lang=page.lang, complete=every,
                       row=customer_row(ws, customer_id))
    labels = page.labels()
    open_tasks = ws.tasks(customer_id=customer_id)
    return page.render("customer.html", e=found, labels=labels,
                       tasks=[(t, t.describe(page.lang, labels)) for t in open_tasks],
                       interactions=customer_interactions(ws.store(), customer_id),
                       interaction_types=list(INTERACTION_LABELS),
                       tiers=list(labels.items()), today=dt.date.today(),
                       overrides=list(reversed(overrides_for(ws.appdb, customer_id))),
                       all_metrics=every)


def _all_metrics(values: Any) -> bool:
    """?metrics=all: also the metrics the run left out, computed from the customer's orders
    now (seconds on a large book, so only when asked); anything else but "stored" is a 400."""
    chosen = str(values.get("metrics") or "stored")
    if chosen not in ("stored", "all"):
        raise InputError(f"metrics: expected stored or all: {chosen[:40]!r}", column="metrics")
    return chosen == "all"


@router.post("/customers/{customer_id}/interactions")
async def customer_log(customer_id: str, page: PageDep) -> Response:
    form = await page.form()
    ws = page.ws
    customer_in_reach(ws, page.user, customer_id, "log")
    satisfaction = number_field(form, "satisfaction", 1, 5)
    day = date_field(form, "date")
    with server_of(page.request).writing(ws) as writer:
        writer.log_interaction(customer_id, str(form.get("type") or ""), date=day,
                               note=str(form.get("note") or "") or None,
                               satisfaction=satisfaction)
    return RedirectResponse(f"/customers/{customer_id}#interactions", status_code=303)


@router.post("/customers/{customer_id}/override")
async def customer_override(customer_id: str, page: PageDep) -> Response:
    form = await page.form()
    ws = page.ws
    customer_in_reach(ws, page.user, customer_id, "override")
    if form.get("remove"):
        ws.remove_override(customer_id)
    else:
        until = date_field(form, "until")
        ws.override(customer_id, str(form.get("tier") or ""),
                    reason=str(form.get("reason") or "").strip() or _missing("reason"),
                    until=until)
    return RedirectResponse(f"/customers/{customer_id}", status_code=303)


def _missing(name: str) -> str:
    raise TierwiseError(f"{name} is required")


# -- tasks -------------------------------------------------------------------------------------

@router.get("/tasks", response_class=HTMLResponse)
def tasks(page: PageDep) -> Response:
    ws, lang = page.ws, page.lang
    q = page.request.query_params
    kind = q.get("kind") if q.get("kind") in TASK_KINDS else None
    owner = page.user.owner_scope or (q.get("owner") or None)
    today = dt.date.today()
    found = [t for t in ws.tasks(owner=owner, kind=kind)
             if not q.get("overdue") or t.overdue(today)]
    found.sort(key=lambda t: (not t.overdue(today), t.due_date, t.priority or 99))
    labels = page.labels()
    return page.render("tasks.html", tasks=[(t, t.describe(lang, labels)) for t in found[:500]],
                       total=len(found), kinds=TASK_KINDS, kind=kind, owner=owner,
                       overdue=bool(q.get("overdue")), today=today)


@router.post("/tasks/{task_id}/done")
async def task_done(task_id: int, page: PageDep) -> Response:
    form = await page.form()
    if not 1 <= task_id <= MAX_ID:
        raise HTTPException(404, word("not_found", page.lang))
    mine = page.ws.tasks(owner=page.user.owner_scope, task_id=task_id)
    if not mine:
        raise HTTPException(404, word("not_found", page.lang))
    page.ws.task_done(task_id, str(form.get("note") or "") or None)
    return RedirectResponse(_safe_next(str(form.get("back") or ""), "/tasks"), status_code=303)


@router.get("/users", response_class=HTMLResponse)
def users_page(page: PageDep) -> Response:
    """The people with access and their API tokens (admins): deactivate, activate, revoke."""
    require(page.user, "users")
    return page.render("users.html", people=page.ws.users(), tokens=page.ws.tokens())


@router.post("/users/{name}/active")
async def user_active(name: str, page: PageDep) -> Response:
    form = await page.form()
    require(page.user, "users")
    page.ws.set_user_active(name, form.get("active") == "1")
    return RedirectResponse("/users", status_code=303)


@router.post("/tokens/{token_id}/revoke")
async def token_revoke(token_id: int, page: PageDep) -> Response:
    await page.form()
    require(page.user, "users")
    if not 1 <= token_id <= MAX_ID:
        raise HTTPException(404, word("not_found", page.lang))
    page.ws.revoke_token(token_id)
    return RedirectResponse("/users", status_code=303)


@router.get("/audit", response_class=HTMLResponse)
def audit_log(page: PageDep) -> Response:
    """Who did what, when and from where (admins): filters by date, user and action."""
    require(page.user, "users")
    q = page.request.query_params
    since = date_field(q, "since")
    action = q.get("action") if q.get("action") in ACTIONS else None
    user = (q.get("user") or "").strip() or None
    entries = audit_entries(page.ws.appdb, AUDIT_PAGE_ROWS, since=since, user=user,
                            action=action)
    return page.render("audit.html", entries=entries, since=q.get("since") or "",
                       action=action, who=user or "", actions=ACTIONS,
                       action_label=action_label, interface_label=interface_label,
                       limit=AUDIT_PAGE_ROWS)


# -- runs ----------------------------------------------------------------------------------------

@router.get("/runs", response_class=HTMLResponse)
def runs(page: PageDep) -> Response:
    records = list(reversed(page.ws.runs()))
    jobs = server_of(page.request).recent_jobs(5)
    q = page.request.query_params
    diff = None
    run_a, run_b = id_field(q, "a"), id_field(q, "b")
    if run_a is not None and run_b is not None:
        diff = page.ws.diff(run_a, run_b)
        if page.user.owner_scope is not None:
            owned = owned_ids(page.ws.store(), page.user.owner_scope)
            diff = dataclasses.replace(
                diff, moves=[m for m in diff.moves if m.customer_id in owned], matrix={})
    return page.render("runs.html", records=records, jobs=jobs, diff=diff,
                       labels=page.labels(), running=any(j.status == "running" for j in jobs))


@router.post("/runs")
async def start_run(page: PageDep) -> Response:
    form = await page.form()
    require(page.user, "run")
    as_of = date_field(form, "as_of")
    server_of(page.request).start_run(page.ws.actor, as_of)
    return RedirectResponse("/runs", status_code=303)


# -- policy ------------------------------------------------------------------------------------

@router.get("/policy", response_class=HTMLResponse)
def policy(page: PageDep) -> Response:
    _chosen, text = page.ws.policy()
    return page.render("policy.html", text=text, problems=None, what_if=None, saved=False,
                       versions=page.ws.policy_versions()[:20], labels=page.labels())


@router.post("/policy", response_class=HTMLResponse)
async def policy_post(page: PageDep) -> Response:
    form = await page.form()
    text, action = str(form.get("text") or ""), str(form.get("action") or "check")
    ws = page.ws
    problems: list[str] = []
    try:
        ws.check_policy(text)
    except TierwiseError as error:
        problems = list(getattr(error, "problems", [str(error)]))
    what_if, saved = None, False
    if not problems and action == "preview":
        require(page.user, "run")     # it counts the whole book: managers and admins
        what_if = ws.what_if(policy_text=text)
    if not problems and action == "apply":
        require(page.user, "policy")
        ws.save_policy(text)
        saved = True
    return page.render("policy.html", text=text, problems=problems, what_if=what_if,
                       saved=saved, versions=ws.policy_versions()[:20], labels=page.labels(),
                       status=400 if problems else 200)


# -- import ------------------------------------------------------------------------------------

UPLOADS = "uploads"
@router.get("/import", response_class=HTMLResponse)
def import_page(page: PageDep) -> Response:
    require(page.user, "import")
    return page.render("import.html", kinds=KINDS, step="upload", result=None, preview=None)


@router.post("/import", response_class=HTMLResponse)
async def import_post(page: PageDep, file: Annotated[UploadFile | None, File()] = None) -> Response:
    form = await page.form()
    require(page.user, "import")
    ws = page.ws
    kind = str(form.get("kind") or "")
    if kind not in KINDS:
        raise TierwiseError(f"unknown kind {kind!r}")
    folder = ws.root / UPLOADS
    folder.mkdir(exist_ok=True)
    if file is not None and file.filename:
        # Step 1: keep the upload under the workspace, show how its columns map.
        sweep_uploads(folder)
        name = f"{dt.datetime.now():%Y%m%d-%H%M%S}-{upload_name(file.filename)}"
        path = save_upload(file, folder / name, ws.settings.max_upload_bytes())
        try:
            shown = preview(path, kind)
        except BaseException:
            path.unlink(missing_ok=True)         # nothing to confirm: do not keep it
            raise
        return page.render("import.html", kinds=KINDS, step="mapping", kind=kind,
                           upload=name, preview=shown, result=None)
    # Step 2: import the kept upload with the mapping as confirmed or fixed.
    name = Path(str(form.get("upload") or "")).name
    path = folder / name
    if not name or not path.is_file():
        raise TierwiseError("the uploaded file is gone; upload it again")
    column_map = {str(k)[4:]: str(v) for k, v in form.items()
                  if str(k).startswith("map:") and v}
    try:
        with server_of(page.request).writing(ws) as writer:
            result = writer.import_files(kind, [path], column_map=column_map)
    finally:
        path.unlink(missing_ok=True)             # imported (or refused): not kept
    return page.render("import.html", kinds=KINDS, step="done", kind=kind, result=result,
                       preview=None, rejects=_first_rows(result.rejects_path, 20))


def _first_rows(path: Path | None, count: int) -> list[list[str]]:
    """The header and first rows of a rejects file (shown on the page, whole in the file)."""
    if path is None or not path.is_file():
        return []
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = [row for _, row in zip(range(count + 1), csv.reader(handle), strict=False)]
    if rows and rows[0] and rows[0][0] == "file":      # the upload's name, not a server path
        rows = [rows[0], *([Path(r[0]).name, *r[1:]] if r else r for r in rows[1:])]
    return rows


@router.get("/import/rejects/{name}")
def import_rejects(name: str, page: PageDep) -> Response:
    require(page.user, "import")
    try:
        path = page.ws.rejects_file(name)
    except WorkspaceError:
        raise HTTPException(404, word("not_found", page.lang)) from None
    return FileResponse(path, media_type="text/csv", filename=name)

