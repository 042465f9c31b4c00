"""The FastAPI application: the API router, the pages, static files, and JSON errors."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES, GZipMiddleware

from tierwise.errors import InputError, PolicyError, RunNotFound, TierwiseError
from tierwise.web.context import Forbidden, Server, signed_in, too_large
from tierwise.web.pages import error_page, plotly_js
from tierwise.web.pages import router as pages_router
from tierwise.web.rest import router as api_router
from tierwise.web.sharing import SharedStore

STATIC = Path(__file__).parent / "static"


def create_app(root: str | Path, *, scheduler: bool = False,
               shared_store: bool = False) -> FastAPI:
    """The app over the workspace at ``root`` (its app database: SQLite by default, or
    TIERWISE_DATABASE_URL). With ``scheduler``, due scheduled runs run in the background
    (as `tierwise serve` does: in the one worker holding the scheduler lease). With
    ``shared_store``, the app is one of several worker processes that read the store
    read-only and take it for a moment to write (tierwise.web.sharing)."""
    server = Server(Path(root), shared_store=shared_store)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if scheduler:
            server.start_scheduler(every=_schedule_check_seconds())
        yield
        server.close()

    # The API's description is for its users: /openapi.json and /docs need a sign-in.
    app = FastAPI(title="tierwise", version="1", lifespan=lifespan, openapi_url=None,
                  docs_url=None, redoc_url=None,
                  description="Customer tiering (客户分级): runs, customers, explanations, "
                              "history, overrides, tasks, interactions, policy, imports.")
    app.state.server = server
    _described(app)
    app.include_router(api_router)
    app.include_router(pages_router)
    # Before the static mount, which would otherwise answer for the whole /static path.
    app.add_api_route("/static/plotly.min.js", plotly_js, include_in_schema=False)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _errors(app)
    _security_headers(app)
    _body_limit(app, server)
    _compressed(app)
    if server.shared is not None:
        _shared_reading(app, server.shared)
    return app


WORKSPACE_ENV = "TIERWISE_WORKSPACE"
SCHEDULE_CHECK_ENV = "TIERWISE_SCHEDULE_CHECK_SECONDS"


def _schedule_check_seconds() -> float:
    """How often the server looks for due scheduled runs: TIERWISE_SCHEDULE_CHECK_SECONDS
    (0.5 to 3600), else every minute."""
    text = os.environ.get(SCHEDULE_CHECK_ENV, "").strip()
    try:
        seconds = float(text) if text else 60.0
    except ValueError:
        seconds = float("nan")
    if not 0.5 <= seconds <= 3600:
        raise TierwiseError(f"{SCHEDULE_CHECK_ENV}: expected seconds from 0.5 to 3600: "
                            f"{text[:40]!r}")
    return seconds


def worker_app() -> FastAPI:
    """The app of one worker process of `tierwise serve --workers N` (uvicorn imports it by
    name in each worker): the workspace from TIERWISE_WORKSPACE, the store shared."""
    return create_app(os.environ[WORKSPACE_ENV], scheduler=True, shared_store=True)


def _shared_reading(app: FastAPI, shared: SharedStore) -> None:
    """Each request counts as a reader of the store; while another worker writes, requests
    wait (without holding a thread) until it is done."""

    worker = str(os.getpid()) if os.environ.get(WORKER_HEADER_ENV) else None

    @app.middleware("http")
    async def reading(request: Request, call_next: Any) -> Response:
        while not shared.enter():
            await asyncio.sleep(0.02)
        try:
            response: Response = await call_next(request)
        finally:
            shared.leave()
        if worker is not None:
            response.headers["X-Tierwise-Worker"] = worker
        return response


# Set to name the answering worker process in each response (X-Tierwise-Worker: its PID),
# to see how requests spread over the workers.
WORKER_HEADER_ENV = "TIERWISE_WORKER_HEADER"


# Already compressed: an Excel workbook is a zip file.
NOT_COMPRESSED = (*DEFAULT_EXCLUDED_CONTENT_TYPES,
                  "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")


def _compressed(app: FastAPI) -> None:
    """Pages, JSON, CSS and JS go out gzip-compressed when the client accepts it (a
    customer list page shrinks about 8×); level 6, as a page is compressed per request.
    plotly.js comes compressed once (pages.plotly_js) and is passed through."""
    app.add_middleware(GZipMiddleware, minimum_size=1000, compresslevel=6,
                       exclude_content_types=NOT_COMPRESSED)


def _body_limit(app: FastAPI, server: Server) -> None:
    """Refuse a request whose declared body is larger than an upload may be before its
    multipart form is parsed (and spooled to disk); a body sent without a length is
    bounded while the upload is copied (web.context.save_upload)."""
    limit = server.workspace.settings.max_upload_bytes()

    @app.middleware("http")
    async def bounded(request: Request, call_next: Any) -> Response:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit + FORM_OVERHEAD:
            if _wants_json(request):
                return _error(413, too_large(limit))
            return error_page(request, 413, too_large(limit))
        response: Response = await call_next(request)
        return response


FORM_OVERHEAD = 1 << 20       # the form's other fields and the multipart boundaries


# Sent with every response: no page may be framed (the policy's apply button could be
# clicked through an invisible frame), types are not sniffed, signed-in pages are not kept
# in shared caches or the browser's history cache.
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def _security_headers(app: FastAPI) -> None:
    @app.middleware("http")
    async def headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if not request.url.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response


def _described(app: FastAPI) -> None:
    @app.get("/openapi.json", include_in_schema=False)
    def openapi(request: Request) -> JSONResponse:
        signed_in(request, api=True)
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        signed_in(request, api=False)
        return get_swagger_ui_html(openapi_url="/openapi.json", title="tierwise API")


def _error(status: int, message: str, field: str | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "field": field}}, status_code=status)


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path == "/openapi.json"


def _errors(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> Response:
        first = error.errors()[0] if error.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query",
                                                                          "path", "form"))
        return _error(422, str(first.get("msg", "invalid request")), where or None)

    @app.exception_handler(HTTPException)
    async def http(request: Request, error: HTTPException) -> Response:
        if error.status_code == 401 and not _wants_json(request):
            return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        if not _wants_json(request):
            return error_page(request, error.status_code, str(error.detail))
        return _error(error.status_code, str(error.detail))

    @app.exception_handler(TierwiseError)
    async def domain(request: Request, error: TierwiseError) -> Response:
        status = (404 if isinstance(error, RunNotFound) else
                  403 if isinstance(error, Forbidden) else 400)
        field: Any = getattr(error, "column", None) if isinstance(error, InputError) else None
        message = str(error)
        if isinstance(error, PolicyError):
            message = "; ".join(error.problems) if getattr(error, "problems", None) else message
        if not _wants_json(request):
            return error_page(request, status, message)
        return _error(status, message, field)
