"""The web workbench and its users: serve; user add, list, token, tokens, revoke, deactivate,
activate, password."""

from __future__ import annotations

import datetime as dt
import json
import os
from typing import Any

import click
from rich.table import Table

from tierwise.cli.common import (
    format_option,
    handles_errors,
    main,
    open_workspace,
    out,
    workspace_option,
)
from tierwise.common.i18n import is_zh


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--forwarded-allow-ips", "proxies", metavar="IPS", default=None,
              help="Addresses of the reverse proxy in front (comma-separated) whose "
                   "X-Forwarded-For names the client; without it such headers are ignored, "
                   "so nobody can pose as another address (login limits count by address).")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Worker processes. With more than one they share runs started from the "
                   "web (kept in the app database), one of them runs the schedule, and "
                   "each reads the store read-only (an import or a logged interaction "
                   "holds pages back for the moment it writes).")
@workspace_option
@handles_errors
def serve_cmd(host: str, port: int, proxies: str | None, workers: int,
              workspace: str | None) -> None:
    """Start the web workbench and the REST API (/api/v1, OpenAPI at /docs).

    On the first start with no users, an admin account is created and its password
    printed once. Add people with `tierwise user add`. With a `schedule:` in tierwise.yaml,
    the server also runs due runs (checked every minute): no cron job is needed then.

    \b
    Examples:
      tierwise serve
      tierwise serve --host 0.0.0.0 --port 8080 -w /srv/tierwise
      tierwise serve --forwarded-allow-ips 127.0.0.1   # behind nginx on this machine
      tierwise serve --workers 2                       # two processes, e.g. on 2 cores
    """
    import uvicorn

    from tierwise.web import create_app
    from tierwise.web.app import WORKSPACE_ENV

    with open_workspace(workspace) as ws:
        root = ws.root
        password = ws.ensure_admin()
        if password is not None:
            out.print(("首次启动：已创建管理员 admin，密码 " if is_zh(ws.language)
                       else "First start: created the admin user 'admin' with the password ")
                      + f"[bold]{password}[/]", highlight=False)
    out.print(f"http://{host}:{port}/", highlight=False)
    options: dict[str, Any] = {"host": host, "port": port, "log_level": "info",
                               "proxy_headers": proxies is not None,
                               "forwarded_allow_ips": proxies or ""}
    if workers == 1:
        uvicorn.run(create_app(root, scheduler=True), **options)
        return
    # Each worker process imports the app by name; the workspace goes by the environment.
    os.environ[WORKSPACE_ENV] = str(root)
    # A worker busy on a loaded machine may not answer the supervisor's ping in uvicorn's
    # default 5 s: it would be killed, its connections dropped and its copy of the run lost.
    uvicorn.run("tierwise.web.app:worker_app", factory=True, workers=workers,
                timeout_worker_healthcheck=WORKER_PING_SECONDS, **options)


WORKER_PING_SECONDS = 60


@main.group("user")
def user_group() -> None:
    """People who use the web workbench and the API (roles admin, manager, rep).

    \b
    Examples:
      tierwise user add 张伟 --role rep
      tierwise user list
      tierwise user token 张伟 --label excel
      tierwise user tokens && tierwise user revoke 12
      tierwise user deactivate 张伟
    """


@user_group.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["admin", "manager", "rep"]), required=True)
@click.option("--rep-name", help="For a rep: the owner name their customers carry "
                                 "(default: NAME).")
@click.password_option(help="The password (asked for when not given).")
@workspace_option
@handles_errors
def user_add_cmd(name: str, role: str, rep_name: str | None, password: str,
                 workspace: str | None) -> None:
    """Add a user of the web workbench and the API. A rep sees only the customers whose
    owner is their rep name (default: the user name); the password is asked for when
    --password is not given.

    \b
    Examples:
      tierwise user add 张伟 --role rep
      tierwise user add zhangwei --role rep --rep-name 张伟
      tierwise user add 李娜 --role manager
    """
    with open_workspace(workspace) as ws:
        user = ws.add_user(name, role, password, rep_name=rep_name)
        out.print(("已添加用户 " if is_zh(ws.language) else "Added user ")
                  + f"{user.name} ({user.role})", highlight=False)


@user_group.command("list")
@workspace_option
@handles_errors
def user_list_cmd(workspace: str | None) -> None:
    """List the users: name, role, the owner name a rep's customers carry, active or not.

    \b
    Example:
      tierwise user list -w /srv/tierwise
    """
    with open_workspace(workspace) as ws:
        found = ws.users()
    table = Table()
    for header in ("name", "role", "rep_name", "active"):
        table.add_column(header)
    for u in found:
        table.add_row(u.name, u.role, u.owner_scope or "", "yes" if u.active else "no")
    out.print(table)


@user_group.command("token")
@click.argument("name")
@click.option("--label", default="cli", show_default=True, help="What the token is for.")
@click.option("--expires", "expires_days", type=int, metavar="DAYS",
              help="The token stops working after DAYS days (default: until revoked).")
@workspace_option
@handles_errors
def user_token_cmd(name: str, label: str, expires_days: int | None,
                   workspace: str | None) -> None:
    """Create a personal API token for a user; it is printed once, then send it with each
    API request.

    \b
    Examples:
      tierwise user token 张伟 --label excel
      tierwise user token erp --label 订单同步 --expires 90
      curl -H "Authorization: Bearer TOKEN" http://127.0.0.1:8000/api/v1/customers
    """
    with open_workspace(workspace) as ws:
        token = ws.create_token(name, label, expires_days=expires_days)
    click.echo(token)


@user_group.command("tokens")
@click.argument("name", required=False)
@format_option
@workspace_option
@handles_errors
def user_tokens_cmd(name: str | None, fmt: str, workspace: str | None) -> None:
    """List API tokens (never the tokens themselves): whose, what for, created, last used,
    expiry, revoked.

    \b
    Examples:
      tierwise user tokens
      tierwise user tokens 张伟 --format json
    """
    with open_workspace(workspace) as ws:
        found = ws.tokens(name)
    if fmt == "json":
        click.echo(json.dumps([t.to_json() for t in found], ensure_ascii=False))
        return
    table = Table()
    for header in ("id", "user", "label", "created", "last used", "expires", "state"):
        table.add_column(header)
    for t in found:
        state = "revoked" if t.revoked_at else ("usable" if t.usable else "expired")
        table.add_row(str(t.id), t.user, t.label, _day(t.created_at), _day(t.last_used_at),
                      _day(t.expires_at), state)
    out.print(table)


def _day(value: dt.datetime | None) -> str:
    return "" if value is None else f"{value:%Y-%m-%d}"


@user_group.command("revoke")
@click.argument("token_id", type=int)
@workspace_option
@handles_errors
def user_revoke_cmd(token_id: int, workspace: str | None) -> None:
    """Revoke an API token at once (its id from `tierwise user tokens`).

    \b
    Example:
      tierwise user revoke 12
    """
    with open_workspace(workspace) as ws:
        revoked = ws.revoke_token(token_id)
    out.print(f"revoked token {revoked.id} of {revoked.user} ({revoked.label})", highlight=False)


@user_group.command("deactivate")
@click.argument("name")
@workspace_option
@handles_errors
def user_deactivate_cmd(name: str, workspace: str | None) -> None:
    """Deactivate a user who left: their sessions end and their tokens stop at once; their
    history, overrides and tasks stay.

    \b
    Example:
      tierwise user deactivate 张伟
    """
    with open_workspace(workspace) as ws:
        user = ws.set_user_active(name, False)
    out.print(f"deactivated {user.name}", highlight=False)


@user_group.command("activate")
@click.argument("name")
@workspace_option
@handles_errors
def user_activate_cmd(name: str, workspace: str | None) -> None:
    """Let a deactivated user sign in again (old sessions stay ended).

    \b
    Example:
      tierwise user activate 张伟
    """
    with open_workspace(workspace) as ws:
        user = ws.set_user_active(name, True)
    out.print(f"activated {user.name}", highlight=False)


@user_group.command("password")
@click.argument("name")
@click.password_option(help="The new password (asked for when not given).")
@workspace_option
@handles_errors
def user_password_cmd(name: str, password: str, workspace: str | None) -> None:
    """Set a new password for a user; their open sessions end.

    \b
    Example:
      tierwise user password 张伟
    """
    with open_workspace(workspace) as ws:
        ws.reset_password(name, password)
    out.print(f"new password set for {name}", highlight=False)
