"""Webhooks: signed JSON POSTs to the URLs in tierwise.yaml when something happens.

Events: ``run.completed`` (a grading run was recorded), ``tier.changed`` (customers moved up
or down in a run, batched) and ``warning.created`` (new churn, complaint and credit warnings
of a run, batched). Each POST to each subscribed endpoint is
one *delivery*: it is retried on connection errors, timeouts, 5xx and 429 with exponential
backoff (``backoff × 2^n`` seconds), not on other 4xx, and recorded in the app database's
``webhook_deliveries`` table. A failing endpoint is logged and recorded; it never raises.

Request
    ``POST <url>`` with a UTF-8 JSON body (Chinese text as is, not ``\\u`` escaped)::

        {"id": "<delivery id>", "event": "run.completed",
         "created_at": "2025-07-01T08:00:00+00:00", "data": {...}}

    and the headers ``Content-Type: application/json; charset=utf-8``,
    ``X-Tierwise-Event`` (the event name), ``X-Tierwise-Delivery`` (the delivery id, the same
    on every retry of one delivery), ``X-Tierwise-Timestamp`` (Unix seconds of the attempt)
    and ``X-Tierwise-Signature``.

Signature
    ``X-Tierwise-Signature: sha256=<hex>`` where ``<hex>`` is the HMAC-SHA256, keyed with the
    endpoint's secret (UTF-8), of the bytes ``<timestamp>.<body>``: the timestamp header's
    value, a dot, and the raw request body exactly as received. A receiver recomputes it,
    compares in constant time, and rejects timestamps too far from its clock (replays);
    :func:`verify_signature` does all three.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import http.client
import json
import logging
import os
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import pyarrow.compute as pc
import pyarrow.dataset as pa_dataset
import sqlalchemy as sa

from tierwise.appdb import schema
from tierwise.errors import WorkspaceError
from tierwise.record.runs import snapshot_files
from tierwise.work.tasks import raised_warnings

log = logging.getLogger(__name__)

EVENTS = ("run.completed", "tier.changed", "warning.created")
SETTING = "webhooks"                 # the key in tierwise.yaml
DEFAULT_TIMEOUT = 5.0
SIGNATURE_HEADER = "X-Tierwise-Signature"
TIMESTAMP_HEADER = "X-Tierwise-Timestamp"
_ENDPOINT_KEYS = frozenset({"url", "secret", "secret_env", "events", "timeout"})
_ERROR_CHARS = 500


@dataclass(frozen=True)
class Endpoint:
    """One configured receiver: where to POST, the signing secret, which events."""

    url: str
    secret: str = field(repr=False)
    events: tuple[str, ...] = EVENTS
    timeout: float = DEFAULT_TIMEOUT

    def wants(self, event: str) -> bool:
        return event in self.events


@dataclass(frozen=True)
class Event:
    """Something to announce: an event name (one of EVENTS) and its JSON-able payload."""

    name: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class Delivery:
    """The outcome of one delivery (all its attempts), as recorded."""

    delivery_id: str
    url: str
    event: str
    status: str                 # delivered | failed
    attempts: int
    status_code: int | None
    error: str | None
    created_at: dt.datetime
    body: str = field(default="", repr=False)

    @property
    def delivered(self) -> bool:
        return self.status == "delivered"

    def to_json(self) -> dict[str, Any]:
        return {"delivery_id": self.delivery_id, "url": self.url, "event": self.event,
                "status": self.status, "attempts": self.attempts,
                "status_code": self.status_code, "error": self.error,
                "created_at": self.created_at.isoformat()}


# -- settings ----------------------------------------------------------------------------

def parse_endpoints(value: Any, *, environ: Mapping[str, str] | None = None,
                    source: str = "tierwise.yaml") -> list[Endpoint]:
    """The ``webhooks:`` setting as endpoints; a WorkspaceError naming the setting if not valid.

    ``value`` is a list of mappings with ``url`` (http or https), ``secret`` or
    ``secret_env`` (the name of an environment variable holding it), optional ``events``
    (default: all) and ``timeout`` (seconds per attempt, default 5).
    """
    if value is None:
        return []
    env = os.environ if environ is None else environ
    if not isinstance(value, list):
        raise _setting_error(source, SETTING, "expected a list of endpoints "
                             "(- url: …, secret_env: …, events: […])")
    return [_parse_endpoint(item, f"{SETTING}[{i}]", env, source)
            for i, item in enumerate(value)]


def _parse_endpoint(item: Any, where: str, env: Mapping[str, str], source: str) -> Endpoint:
    if not isinstance(item, dict):
        raise _setting_error(source, where, "expected a mapping with url, secret or "
                             "secret_env, events, timeout")
    unknown = sorted(str(k) for k in item if k not in _ENDPOINT_KEYS)
    if unknown:
        raise _setting_error(source, f"{where}.{unknown[0]}", "unknown setting; expected "
                             + ", ".join(sorted(_ENDPOINT_KEYS)))
    return Endpoint(url=_parse_url(item.get("url"), f"{where}.url", source),
                    secret=_parse_secret(item, where, env, source),
                    events=_parse_events(item.get("events"), f"{where}.events", source),
                    timeout=_parse_timeout(item.get("timeout"), f"{where}.timeout", source))


def _parse_url(value: Any, where: str, source: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _setting_error(source, where, "required: the http(s) URL to POST to")
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _setting_error(source, where, f"{value!r} is not an http:// or https:// URL")
    return value.strip()


def _parse_secret(item: Mapping[str, Any], where: str, env: Mapping[str, str],
                  source: str) -> str:
    secret, name = item.get("secret"), item.get("secret_env")
    if (secret is None) == (name is None):
        raise _setting_error(source, f"{where}.secret", "give exactly one of secret or "
                             "secret_env (the environment variable that holds the secret)")
    if name is not None:
        if not isinstance(name, str) or not name:
            raise _setting_error(source, f"{where}.secret_env",
                                 "expected the name of an environment variable")
        secret = env.get(name)
        if not secret:
            raise _setting_error(source, f"{where}.secret_env",
                                 f"the environment variable {name} is not set or empty")
        return secret
    if not isinstance(secret, str) or not secret:
        raise _setting_error(source, f"{where}.secret", "expected a non-empty string")
    return secret


def _parse_events(value: Any, where: str, source: str) -> tuple[str, ...]:
    if value is None:
        return EVENTS
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise _setting_error(source, where, "expected a list of events: " + ", ".join(EVENTS))
    for name in value:
        if name not in EVENTS:
            raise _setting_error(source, where, f"unknown event {name!r}; known events: "
                                 + ", ".join(EVENTS))
    return tuple(dict.fromkeys(value))


def _parse_timeout(value: Any, where: str, source: str) -> float:
    if value is None:
        return DEFAULT_TIMEOUT
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise _setting_error(source, where, f"expected a positive number of seconds, "
                             f"got {value!r}")
    return float(value)


def _setting_error(source: str, where: str, message: str) -> WorkspaceError:
    return WorkspaceError(f"{source}: {where}: {message}")


# -- signing -----------------------------------------------------------------------------

def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The X-Tierwise-Signature value: ``sha256=`` + hex HMAC-SHA256 of ``timestamp.body``."""
    digest = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body,
                      hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(secret: str, body: bytes, timestamp: str, signature: str, *,
                     tolerance: float | None = 300, now: float | None = None) -> bool:
    """Whether a received request is signed with ``secret``: for receivers.

    ``body`` is the raw request body, ``timestamp`` and ``signature`` the values of the
    X-Tierwise-Timestamp and X-Tierwise-Signature headers. With a ``tolerance`` (seconds),
    a timestamp further than that from ``now`` fails too (a replayed request).
    """
    try:
        sent = int(timestamp)
    except (TypeError, ValueError):
        return False
    if tolerance is not None and abs((time.time() if now is None else now) - sent) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature or "")


def encode_body(event: Event, delivery_id: str, created_at: dt.datetime) -> bytes:
    """The JSON body of a delivery, UTF-8 with non-ASCII text kept as is."""
    envelope = {"id": delivery_id, "event": event.name, "created_at": created_at.isoformat(),
                "data": event.payload}
    return json.dumps(envelope, ensure_ascii=False, default=_json_default).encode("utf-8")


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


# -- sending -----------------------------------------------------------------------------

class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirected POST would turn into a GET without the body: report 3xx instead."""

    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirects)


@dataclass(frozen=True)
class _Attempt:
    status_code: int | None
    error: str | None
    retry: bool

    @property
    def ok(self) -> bool:
        return self.error is None


def post_once(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> _Attempt:
    """One POST: success on 2xx; whether a failure is worth retrying."""
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    try:
        with _opener.open(request, timeout=timeout) as response:
            response.read(65536)
            return _Attempt(response.status, None, False)
    except urllib.error.HTTPError as error:
        code = error.code
        detail = _response_text(error)
        message = f"HTTP {code} {error.reason}" + (f": {detail}" if detail else "")
        return _Attempt(code, message[:_ERROR_CHARS], code >= 500 or code == 429)
    except urllib.error.URLError as error:
        return _Attempt(None, f"connection failed: {error.reason}"[:_ERROR_CHARS], True)
    except (TimeoutError, OSError, http.client.HTTPException) as error:
        kind = "timed out" if isinstance(error, TimeoutError) else "connection failed"
        return _Attempt(None, f"{kind}: {error or type(error).__name__}"[:_ERROR_CHARS], True)


def _response_text(error: urllib.error.HTTPError) -> str:
    try:
        return error.read(_ERROR_CHARS).decode("utf-8", "replace").strip()
    except Exception:  # the error body is only a courtesy
        return ""


def send(endpoint: Endpoint, event: Event, *, attempts: int = 4, backoff: float = 0.5,
         sleep: Callable[[float], None] = time.sleep) -> Delivery:
    """Deliver one event to one endpoint, retrying; never raises for endpoint failures."""
    delivery_id = uuid.uuid4().hex
    created_at = dt.datetime.now(dt.UTC)
    body = encode_body(event, delivery_id, created_at)
    result = _Attempt(None, "not attempted", False)
    tried = 0
    for tried in range(1, max(attempts, 1) + 1):
        timestamp = str(int(time.time()))
        headers = {"Content-Type": "application/json; charset=utf-8",
                   "User-Agent": "tierwise-webhooks",
                   "X-Tierwise-Event": event.name, "X-Tierwise-Delivery": delivery_id,
                   TIMESTAMP_HEADER: timestamp,
                   SIGNATURE_HEADER: sign(endpoint.secret, timestamp, body)}
        result = post_once(endpoint.url, body, headers, endpoint.timeout)
        if result.ok or not result.retry or tried >= attempts:
            break
        sleep(backoff * 2 ** (tried - 1))
    delivery = Delivery(delivery_id, endpoint.url, event.name,
                        "delivered" if result.ok else "failed", tried, result.status_code,
                        result.error, created_at, body.decode("utf-8"))
    if not delivery.delivered:
        log.warning("webhook %s to %s failed after %d attempt(s): %s", event.name,
                    endpoint.url, tried, result.error)
    return delivery


def deliver(appdb: sa.Engine | None, endpoints: Sequence[Endpoint], events: Iterable[Event],
            *, attempts: int = 4, backoff: float = 0.5,
            sleep: Callable[[float], None] = time.sleep) -> list[Delivery]:
    """Send each event to every endpoint subscribed to it and record every delivery.

    Endpoints are served in parallel, each one's events in order. Once an endpoint is down
    (a delivery failed on connection errors, timeouts or 5xx), its remaining events are
    recorded as failed without trying, so a dead endpoint costs at most its timeout ×
    attempts plus the backoff sleeps. Failures are logged and recorded (``appdb`` None: not
    recorded); nothing raises out of here for an endpoint's sake.
    """
    events = list(events)
    jobs = [(endpoint, [e for e in events if endpoint.wants(e.name)]) for endpoint in endpoints]
    jobs = [(endpoint, wanted) for endpoint, wanted in jobs if wanted]
    if not jobs:
        return []

    def serve(job: tuple[Endpoint, list[Event]]) -> list[Delivery]:
        endpoint, wanted = job
        done: list[Delivery] = []
        for event in wanted:
            if done and _down(done[-1]):
                done.append(_skipped(endpoint, event, done[-1]))
            else:
                done.append(send(endpoint, event, attempts=attempts, backoff=backoff,
                                 sleep=sleep))
        return done

    with ThreadPoolExecutor(max_workers=min(len(jobs), 8),
                            thread_name_prefix="tierwise-webhook") as pool:
        deliveries = [d for done in pool.map(serve, jobs) for d in done]
    if appdb is not None:
        record(appdb, deliveries)
    return deliveries


def _down(delivery: Delivery) -> bool:
    """A failure that says the endpoint is unreachable or broken, not that it refused."""
    code = delivery.status_code
    return not delivery.delivered and (code is None or code >= 500 or code == 429)


def _skipped(endpoint: Endpoint, event: Event, cause: Delivery) -> Delivery:
    delivery_id, created_at = uuid.uuid4().hex, dt.datetime.now(dt.UTC)
    body = encode_body(event, delivery_id, created_at).decode("utf-8")
    return Delivery(delivery_id, endpoint.url, event.name, "failed", 0, None,
                    f"not attempted: the endpoint failed delivery {cause.delivery_id} "
                    f"just before ({cause.error})"[:_ERROR_CHARS], created_at, body)


def record(appdb: sa.Engine, deliveries: Sequence[Delivery]) -> None:
    """Insert deliveries into webhook_deliveries; a database error is logged, not raised."""
    if not deliveries:
        return
    try:
        with appdb.begin() as connection:
            connection.execute(schema.webhook_deliveries.insert(), [
                {"delivery_id": d.delivery_id, "created_at": d.created_at, "url": d.url,
                 "event": d.event, "status": d.status, "attempts": d.attempts,
                 "status_code": d.status_code, "error": d.error, "body": d.body}
                for d in deliveries])
    except sa.exc.SQLAlchemyError as error:
        log.error("could not record %d webhook deliveries: %s", len(deliveries), error)


def recent_deliveries(appdb: sa.Engine, limit: int = 20) -> list[Delivery]:
    """The latest recorded deliveries, newest first."""
    table = schema.webhook_deliveries
    with appdb.connect() as connection:
        rows = connection.execute(
            sa.select(table).order_by(table.c.created_at.desc(), table.c.id.desc())
            .limit(limit)).mappings().all()
    return [Delivery(r["delivery_id"], r["url"], r["event"], r["status"], r["attempts"],
                     r["status_code"], r["error"], _aware(r["created_at"]), r["body"])
            for r in rows]


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


# -- for other modules -------------------------------------------------------------------

class HasWebhooks(Protocol):
    """What notify() needs of a workspace (tierwise.workspace.Workspace has both)."""

    @property
    def appdb(self) -> sa.Engine: ...

    def webhook_endpoints(self) -> list[Endpoint]: ...


def notify(target: HasWebhooks | sa.Engine, *events: Event,
           endpoints: Sequence[Endpoint] | None = None, attempts: int = 4,
           backoff: float = 0.5,
           sleep: Callable[[float], None] = time.sleep) -> list[Delivery]:
    """Announce events to a workspace's configured endpoints (or the given ones).

    ``notify(ws, Event("warning.created", {...}))`` from any module; with the app database
    (an SQLAlchemy Engine) instead of a workspace, pass ``endpoints``. Never raises for an
    endpoint's failure.
    """
    for event in events:
        if event.name not in EVENTS:
            raise ValueError(f"unknown webhook event {event.name!r}; known: "
                             + ", ".join(EVENTS))
    if isinstance(target, sa.Engine):
        if endpoints is None:
            raise TypeError("notify(appdb, …) needs endpoints=; pass a workspace to use "
                            "its settings")
        appdb = target
    else:
        appdb = target.appdb
        endpoints = target.webhook_endpoints() if endpoints is None else endpoints
    return deliver(appdb, endpoints, events, attempts=attempts, backoff=backoff, sleep=sleep)


# -- run events --------------------------------------------------------------------------

CHANGE_CHUNK = 1000


def run_events(summary: Any, moved: Sequence[Mapping[str, Any]], *,
               chunk: int = CHANGE_CHUNK) -> list[Event]:
    """``run.completed`` for a recorded run (a tierwise.grading.run.RunSummary) and, when
    customers moved up or down, ``tier.changed`` in batches of ``chunk`` customers."""
    policy = {"name": summary.policy_name, "hash": summary.policy_hash}
    head = {"run_id": summary.run_id, "as_of": summary.as_of.isoformat(), "policy": policy,
            "previous_run_id": summary.previous_run_id}
    completed = Event("run.completed", {
        **head, "source": summary.source, "customers": summary.customers,
        "tiers": [{"tier": t.tier, "label": t.label, "customers": t.customers}
                  for t in summary.tiers],
        "changes": dict(summary.changes)})
    batches = [list(moved[i:i + chunk]) for i in range(0, len(moved), chunk)]
    changed = [Event("tier.changed", {
        **head, "upgraded": sum(1 for m in moved if m["direction"] == "up"),
        "downgraded": sum(1 for m in moved if m["direction"] == "down"),
        "batch": n, "batches": len(batches), "customers": batch})
        for n, batch in enumerate(batches, start=1)]
    return [completed, *changed]


def warning_events(summary: Any, warnings: Sequence[Mapping[str, Any]], *,
                   chunk: int = CHANGE_CHUNK) -> list[Event]:
    """``warning.created`` for the warnings a run raised that were not open before (churn
    risk, complaint follow-up, credit risk; tierwise.work.tasks), in batches of ``chunk``."""
    head = {"run_id": summary.run_id, "as_of": summary.as_of.isoformat(),
            "policy": {"name": summary.policy_name, "hash": summary.policy_hash}}
    batches = [list(warnings[i:i + chunk]) for i in range(0, len(warnings), chunk)]
    return [Event("warning.created", {**head, "warnings_count": len(warnings), "batch": n,
                                      "batches": len(batches), "warnings": batch})
            for n, batch in enumerate(batches, start=1)]


def moved_customers(files: Sequence[str], labels: Mapping[str, str]) -> list[dict[str, Any]]:
    """Customers of a run snapshot (its Parquet files) that moved up or down: id, name,
    from, to, direction. Only the moved rows are read into memory."""
    dataset = pa_dataset.dataset(list(files), format="parquet")
    columns = [c for c in ("customer_id", "name", "prev_tier", "tier", "change", "basis")
               if c in dataset.schema.names]
    table = dataset.to_table(columns=columns,
                             filter=pc.field("change").isin(["up", "down"]))
    return [{"customer_id": row["customer_id"], "name": row.get("name"),
             "from": row["prev_tier"], "from_label": labels.get(row["prev_tier"]),
             "to": row["tier"], "to_label": labels.get(row["tier"]),
             "direction": row["change"], "basis": row.get("basis")}
            for row in table.to_pylist()]


def announce(appdb: sa.Engine, endpoints: Sequence[Endpoint], summary: Any,
             snapshot: Callable[[], str], *, lang: str = "zh") -> None:
    """Send a recorded run's events (run.completed, tier.changed, and warning.created for
    the warnings it raised): the run is committed, so nothing here may fail it, not even
    finding its snapshot (``snapshot`` is asked for inside)."""
    if not endpoints:
        return
    try:
        labels = {t.tier: t.label for t in summary.tiers}
        moved = moved_customers(snapshot_files(snapshot()), labels)
        events = run_events(summary, moved)
        if summary.tasks is not None and summary.tasks.created:
            raised = raised_warnings(appdb, summary.run_id, lang=lang, labels=labels)
            events += warning_events(summary, raised)
        deliver(appdb, endpoints, events)
    except Exception:
        log.exception("webhooks for run %s could not be sent", summary.run_id)
