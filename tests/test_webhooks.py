"""Webhooks against a real local HTTP server: signatures, the JSON body, retries and backoff,
recorded deliveries (SQLite and PostgreSQL), run events from grading, settings and the CLI."""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from ruamel.yaml import YAML

from tests.conftest import DATA
from tests.test_grading import AS_OF, add_order
from tierwise.appdb.database import connect
from tierwise.cli import main
from tierwise.errors import WorkspaceError
from tierwise.work import webhooks
from tierwise.work.webhooks import Endpoint, Event, deliver, notify, verify_signature
from tierwise.workspace import CONFIG_TEMPLATE, Workspace

SECRET = "s3cret-密钥"
NO_SLEEP = {"sleep": lambda _s: None}


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))


@dataclass
class Receiver:
    """A local HTTP server that records every POST and answers with scripted statuses
    (200 once the script is used up); a status of None sleeps past the client's timeout."""

    url: str
    requests: list[Received] = field(default_factory=list)
    script: list[int | None] = field(default_factory=list)
    delay: float = 0.0

    def events(self, name: str) -> list[Any]:
        return [r.json() for r in self.requests if r.headers["X-Tierwise-Event"] == name]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with lock:
                state.requests.append(Received(dict(self.headers.items()), body))
                status = state.script.pop(0) if state.script else 200
            if status is None:
                time.sleep(state.delay)
                status = 200
            reply = b'{"ok": true}' if status < 400 else "出错了".encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/tierwise"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def closed_url() -> str:
    """A URL on a port nothing listens on: the connection is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    engine = connect(database_url)
    yield engine
    engine.dispose()


def endpoint(url: str, **options: Any) -> Endpoint:
    return Endpoint(url=url, secret=SECRET, **options)


def add_webhooks(ws: Workspace, *settings: dict[str, Any]) -> None:
    """Append a webhooks block to the workspace's tierwise.yaml and reload it."""
    path = ws.root / "tierwise.yaml"
    with path.open("a", encoding="utf-8") as handle:
        YAML().dump({"webhooks": list(settings)}, handle)
    ws.config = dict(YAML(typ="safe").load(path))


def stored(engine: sa.Engine) -> list[dict[str, Any]]:
    table = webhooks.schema.webhook_deliveries
    with engine.connect() as connection:
        return [dict(r) for r in connection.execute(
            sa.select(table).order_by(table.c.id)).mappings()]


# -- signing and the body ----------------------------------------------------------------

def test_signature_verifies_with_the_secret_and_fails_with_another(
        receiver: Receiver, engine: sa.Engine) -> None:
    [delivery] = deliver(engine, [endpoint(receiver.url)],
                         [Event("run.completed", {"run_id": 1})])
    assert delivery.delivered
    [request] = receiver.requests
    timestamp = request.headers["X-Tierwise-Timestamp"]
    signature = request.headers["X-Tierwise-Signature"]
    assert signature.startswith("sha256=") and len(signature) == len("sha256=") + 64
    assert verify_signature(SECRET, request.body, timestamp, signature)
    assert not verify_signature("another secret", request.body, timestamp, signature)
    assert not verify_signature(SECRET, request.body + b" ", timestamp, signature)
    assert not verify_signature(SECRET, request.body, str(int(timestamp) + 1), signature)
    assert not verify_signature(SECRET, request.body, timestamp, signature,
                                now=int(timestamp) + 3600)       # a replay, an hour later
    assert request.headers["X-Tierwise-Event"] == "run.completed"
    assert request.headers["X-Tierwise-Delivery"] == delivery.delivery_id
    assert request.headers["Content-Type"].startswith("application/json")


def test_the_body_is_utf8_json_with_chinese_text_intact(receiver: Receiver,
                                                        engine: sa.Engine) -> None:
    payload = {"customer": "华东机械有限公司", "tier": "VIP客户", "as_of": dt.date(2025, 6, 30)}
    deliver(engine, [endpoint(receiver.url)], [Event("warning.created", payload)])
    [request] = receiver.requests
    assert "华东机械有限公司".encode() in request.body          # not \u escaped
    body = request.json()
    assert body["event"] == "warning.created"
    assert body["id"] == request.headers["X-Tierwise-Delivery"]
    assert body["data"] == {"customer": "华东机械有限公司", "tier": "VIP客户",
                            "as_of": "2025-06-30"}
    [row] = stored(engine)
    assert json.loads(row["body"]) == body


def test_only_subscribed_endpoints_receive_an_event(receiver: Receiver,
                                                    engine: sa.Engine) -> None:
    deliveries = deliver(engine, [endpoint(receiver.url, events=("tier.changed",))],
                         [Event("run.completed", {}), Event("tier.changed", {"n": 1})])
    assert [d.event for d in deliveries] == ["tier.changed"]
    assert [r.headers["X-Tierwise-Event"] for r in receiver.requests] == ["tier.changed"]


# -- retries and the record --------------------------------------------------------------

def test_5xx_is_retried_with_backoff_and_recorded_as_delivered(receiver: Receiver,
                                                               engine: sa.Engine) -> None:
    receiver.script = [500, 500]
    waits: list[float] = []
    [delivery] = deliver(engine, [endpoint(receiver.url)], [Event("run.completed", {})],
                         backoff=0.5, sleep=waits.append)
    assert (delivery.status, delivery.attempts, delivery.status_code) == ("delivered", 3, 200)
    assert waits == [0.5, 1.0]                                   # backoff × 2^n
    ids = {r.headers["X-Tierwise-Delivery"] for r in receiver.requests}
    assert len(receiver.requests) == 3 and ids == {delivery.delivery_id}
    [row] = stored(engine)
    assert (row["status"], row["attempts"], row["status_code"], row["event"], row["url"]) == (
        "delivered", 3, 200, "run.completed", receiver.url)
    assert row["delivery_id"] == delivery.delivery_id


def test_429_is_retried_and_gives_up_after_the_attempts(receiver: Receiver,
                                                        engine: sa.Engine) -> None:
    receiver.script = [429, 503, 503, 503, 503]
    [delivery] = deliver(engine, [endpoint(receiver.url)], [Event("run.completed", {})],
                         attempts=4, **NO_SLEEP)
    assert (delivery.status, delivery.attempts, delivery.status_code) == ("failed", 4, 503)
    assert len(receiver.requests) == 4
    assert stored(engine)[0]["error"].startswith("HTTP 503")


def test_4xx_is_not_retried(receiver: Receiver, engine: sa.Engine) -> None:
    receiver.script = [400]
    [delivery] = deliver(engine, [endpoint(receiver.url)], [Event("run.completed", {})],
                         **NO_SLEEP)
    assert (delivery.status, delivery.attempts, delivery.status_code) == ("failed", 1, 400)
    assert len(receiver.requests) == 1
    [row] = stored(engine)
    assert row["status"] == "failed" and "HTTP 400" in row["error"] and "出错了" in row["error"]


def test_a_timeout_is_retried(receiver: Receiver, engine: sa.Engine) -> None:
    receiver.script, receiver.delay = [None], 1.0
    [delivery] = deliver(engine, [endpoint(receiver.url, timeout=0.2)],
                         [Event("run.completed", {})], **NO_SLEEP)
    assert (delivery.status, delivery.attempts) == ("delivered", 2)


def test_a_refused_connection_is_recorded_as_failed_without_raising(
        closed_url: str, engine: sa.Engine) -> None:
    waits: list[float] = []
    [delivery] = deliver(engine, [endpoint(closed_url)], [Event("run.completed", {})],
                         attempts=3, backoff=0.01, sleep=waits.append)
    assert (delivery.status, delivery.attempts, delivery.status_code) == ("failed", 3, None)
    assert waits == [0.01, 0.02]
    [row] = stored(engine)
    assert row["status"] == "failed" and "connection failed" in row["error"]


def test_one_failing_endpoint_does_not_stop_another(receiver: Receiver, closed_url: str,
                                                    engine: sa.Engine) -> None:
    deliveries = deliver(engine, [endpoint(closed_url), endpoint(receiver.url)],
                         [Event("run.completed", {})], **NO_SLEEP)
    assert sorted(d.status for d in deliveries) == ["delivered", "failed"]
    assert len(stored(engine)) == 2


def test_a_dead_endpoint_is_not_retried_for_every_event(closed_url: str,
                                                        engine: sa.Engine) -> None:
    events = [Event("tier.changed", {"batch": n}) for n in range(1, 4)]
    deliveries = deliver(engine, [endpoint(closed_url)], events, attempts=2, **NO_SLEEP)
    assert [(d.status, d.attempts) for d in deliveries] == [
        ("failed", 2), ("failed", 0), ("failed", 0)]
    assert "not attempted" in stored(engine)[2]["error"]


# -- grading -----------------------------------------------------------------------------

def test_grading_sends_run_completed_and_batched_tier_changes(
        ws: Workspace, receiver: Receiver, tmp_path: Path) -> None:
    add_webhooks(ws, {"url": receiver.url, "secret": SECRET})
    first = ws.grade(as_of=AS_OF)
    [completed] = receiver.events("run.completed")
    data = completed["data"]
    assert data["run_id"] == first.run_id and data["as_of"] == "2025-06-30"
    assert data["policy"]["name"] == "客户等级" and data["customers"] == 5
    assert {t["tier"]: t["customers"] for t in data["tiers"]} == {
        "vip": 1, "important": 1, "ordinary": 0, "potential": 3}
    assert data["changes"]["new"] == 5
    assert receiver.events("tier.changed") == []                   # the first run: all new

    add_order(ws, tmp_path, "O77,C5,2025-07-15,600000")            # C5 → important
    second = ws.grade(as_of=dt.date(2025, 7, 31))
    [changed] = receiver.events("tier.changed")
    data = changed["data"]
    assert data["run_id"] == second.run_id and data["previous_run_id"] == first.run_id
    assert (data["upgraded"], data["downgraded"], data["batch"], data["batches"]) == (1, 0, 1, 1)
    assert data["customers"] == [{
        "customer_id": "C5", "name": None, "from": "potential", "from_label": "潜在客户",
        "to": "important", "to_label": "重要客户", "direction": "up", "basis": "policy"}]
    assert len(receiver.events("run.completed")) == 2
    for request in receiver.requests:
        assert verify_signature(SECRET, request.body, request.headers["X-Tierwise-Timestamp"],
                                request.headers["X-Tierwise-Signature"])
    assert [d.event for d in webhooks.recent_deliveries(ws.appdb)
            if d.event != "warning.created"] == ["tier.changed", "run.completed", "run.completed"]


def test_new_warnings_are_announced_once(ws: Workspace, receiver: Receiver) -> None:
    add_webhooks(ws, {"url": receiver.url, "secret": SECRET, "events": ["warning.created"]})
    ws.log_interaction("C3", "投诉", date=dt.date(2025, 6, 20), note="包装破损")
    run = ws.grade(as_of=AS_OF)
    [event] = receiver.events("warning.created")
    data = event["data"]
    assert (data["run_id"], data["warnings_count"], data["batches"]) == (run.run_id, 2, 1)
    assert [(w["customer_id"], w["kind"], w["owner"]) for w in data["warnings"]] == [
        ("C2", "churn_risk", "王芳"), ("C3", "complaint", "李娜")]
    assert data["warnings"][1]["text"] == "2025-06-20 的投诉尚未回访"
    ws.grade(as_of=AS_OF)                   # the same warnings, still open: nothing new
    assert len(receiver.events("warning.created")) == 1


def test_tier_changes_carry_names_and_come_in_batches(ws: Workspace) -> None:
    ws.grade(as_of=AS_OF)                                         # C2 important
    ws.grade(as_of=dt.date(2026, 1, 31))                          # held by hysteresis
    run = ws.grade(as_of=dt.date(2026, 2, 28))                    # C2 drops
    summary = ws.run(run.run_id)
    assert summary.id == run.run_id
    moved = webhooks.moved_customers([str(ws.runs_dir / f"run-{run.run_id:06d}.parquet")],
                                     {"potential": "潜在客户"})
    assert {m["customer_id"]: (m["name"], m["direction"]) for m in moved}["C2"] == (
        "南方贸易有限公司", "down")
    events = webhooks.run_events(run, [*moved] * 3, chunk=2)
    changed = [e for e in events if e.name == "tier.changed"]
    assert [e.payload["batch"] for e in changed] == list(range(1, len(changed) + 1))
    assert sum(len(e.payload["customers"]) for e in changed) == 3 * len(moved)
    assert all(e.payload["batches"] == len(changed) for e in changed)


def test_a_refused_endpoint_never_fails_a_run(ws: Workspace, closed_url: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []
    monkeypatch.setattr(webhooks, "deliver", partial(webhooks.deliver, sleep=waits.append))
    add_webhooks(ws, {"url": closed_url, "secret": SECRET, "timeout": 1})
    summary = ws.grade(as_of=AS_OF)
    assert waits == [0.5, 1.0, 2.0]                    # the default 4 attempts' backoff
    assert ws.run().id == summary.run_id
    row, *later = stored(ws.appdb)
    assert (row["status"], row["attempts"], row["event"]) == ("failed", 4, "run.completed")
    assert [(r["event"], r["attempts"]) for r in later] == [("warning.created", 0)]


def test_grading_files_sends_run_completed(tmp_path: Path, database_url: str,
                                           receiver: Receiver) -> None:
    with Workspace.init(tmp_path / "files", policy=str(DATA / "policy.yaml")) as ws:
        add_webhooks(ws, {"url": receiver.url, "secret": SECRET, "events": ["run.completed"]})
        ws.grade(as_of=AS_OF, files={"orders": [str(DATA / "orders.csv")],
                                     "customers": [str(DATA / "customers.csv")]})
    [completed] = receiver.events("run.completed")
    assert completed["data"]["source"].startswith("files: ")


def test_notify_sends_a_warning_through_the_workspace_settings(ws: Workspace,
                                                               receiver: Receiver) -> None:
    add_webhooks(ws, {"url": receiver.url, "secret": SECRET, "events": ["warning.created"]})
    [delivery] = notify(ws, Event("warning.created", {"customer_id": "C1", "message": "流失风险"}))
    assert delivery.delivered
    assert receiver.events("warning.created")[0]["data"]["message"] == "流失风险"
    with pytest.raises(ValueError, match="unknown webhook event"):
        notify(ws, Event("warning.raised", {}))
    with pytest.raises(TypeError, match="endpoints="):
        notify(ws.appdb, Event("warning.created", {}))


# -- settings ----------------------------------------------------------------------------

@pytest.mark.parametrize(("setting", "message"), [
    ({"url": "x"}, r"webhooks: expected a list"),
    ([{"secret": "s"}], r"webhooks\[0\]\.url: required"),
    ([{"url": "ftp://h/x", "secret": "s"}], r"webhooks\[0\]\.url: 'ftp://h/x' is not an http"),
    ([{"url": "https://h/x"}], r"webhooks\[0\]\.secret: give exactly one"),
    ([{"url": "https://h/x", "secret": "s", "secret_env": "X"}], r"exactly one"),
    ([{"url": "https://h/x", "secret_env": "TW_UNSET_SECRET"}],
     r"webhooks\[0\]\.secret_env: the environment variable TW_UNSET_SECRET is not set"),
    ([{"url": "https://h/x", "secret": "s", "events": ["run.done"]}],
     r"webhooks\[0\]\.events: unknown event 'run\.done'; known events: run\.completed"),
    ([{"url": "https://h/x", "secret": "s"}, {"url": "https://h/y", "secret": "s",
                                               "timeout": 0}],
     r"webhooks\[1\]\.timeout: expected a positive number"),
    ([{"url": "https://h/x", "secret": "s", "retries": 3}], r"webhooks\[0\]\.retries: unknown"),
    (["https://h/x"], r"webhooks\[0\]: expected a mapping"),
])
def test_invalid_settings_name_the_setting(setting: Any, message: str) -> None:
    with pytest.raises(WorkspaceError, match=message):
        webhooks.parse_endpoints(setting, environ={})


def test_settings_defaults_and_secret_from_the_environment() -> None:
    [one] = webhooks.parse_endpoints([{"url": "https://h/x", "secret_env": "HOOK_SECRET"}],
                                     environ={"HOOK_SECRET": "abc"})
    assert (one.secret, one.events, one.timeout) == ("abc", webhooks.EVENTS, 5.0)
    assert "abc" not in repr(one)
    assert webhooks.parse_endpoints(None) == []


def test_invalid_settings_fail_a_grade_before_it_runs(ws: Workspace) -> None:
    add_webhooks(ws, {"url": "https://h/x", "secret": "s", "events": ["nope"]})
    with pytest.raises(WorkspaceError, match=r"tierwise\.yaml: webhooks\[0\]\.events"):
        ws.grade(as_of=AS_OF)
    assert ws.runs() == []


def test_the_settings_template_example_is_valid_once_uncommented() -> None:
    lines = CONFIG_TEMPLATE.splitlines()
    start = lines.index("# webhooks:")
    block = [line[2:] for line in lines[start:] if line.startswith("# ")]
    setting = YAML(typ="safe").load("\n".join(block))["webhooks"]
    [one] = webhooks.parse_endpoints(setting, environ={"TIERWISE_WEBHOOK_SECRET": "x"})
    assert one.url == "https://example.com/hooks/tierwise" and one.timeout == 5.0


# -- command line ------------------------------------------------------------------------

def test_cli_test_and_log(tmp_path: Path, receiver: Receiver, closed_url: str) -> None:
    folder = tmp_path / "cli"
    runner = CliRunner()
    assert runner.invoke(main, ["init", str(folder)]).exit_code == 0
    with (folder / "tierwise.yaml").open("a", encoding="utf-8") as handle:
        YAML().dump({"webhooks": [{"url": receiver.url, "secret": SECRET}]}, handle)
    result = runner.invoke(main, ["webhooks", "test", "--event", "tier.changed",
                                  "--format", "json", "-w", str(folder)])
    assert result.exit_code == 0, result.output
    [shown] = json.loads(result.stdout)
    assert (shown["status"], shown["event"], shown["status_code"]) == (
        "delivered", "tier.changed", 200)
    assert receiver.events("tier.changed")[0]["data"]["test"] is True
    result = runner.invoke(main, ["webhooks", "log", "--limit", "5", "-w", str(folder)])
    assert result.exit_code == 0 and "tier.changed" in result.stdout
    assert "delivered" in result.stdout

    (folder / "tierwise.yaml").write_text(
        f"policy: policy.yaml\nwebhooks:\n  - {{url: '{closed_url}', secret: x}}\n",
        encoding="utf-8")
    failed = runner.invoke(main, ["webhooks", "test", "-w", str(folder)])
    assert failed.exit_code == 1 and "failed" in failed.stdout
    shown = json.loads(runner.invoke(main, ["webhooks", "log", "--format", "json",
                                            "-w", str(folder)]).stdout)
    assert [d["status"] for d in shown] == ["failed", "delivered"]
