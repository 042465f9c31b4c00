"""The web workbench and its users: serve, user add/list/token."""

from __future__ import annotations

import click
from rich.table import Table

from tierwise.cli.common import handles_errors, main, open_workspace, out, workspace_option
from tierwise.common.i18n import is_zh


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8000, show_default=True)
@workspace_option
@handles_errors
def serve_cmd(host: str, port: int, workspace: str | None) -> None:
    """Start the web workbench and the REST API (/api/v1, OpenAPI at /docs).

    On the first start with no users, an admin account is created and its password
    printed once. Add people with `tierwise user add`. With a `schedule:` in tierwise.yaml,
    the server also runs due runs (checked every minute): no cron job is needed then.

    \b
    Examples:
      tierwise serve
      tierwise serve --host 0.0.0.0 --port 8080 -w /srv/tierwise
    """
    import uvicorn

    from tierwise.web import create_app

    with open_workspace(workspace) as ws:
        root = ws.root
        password = ws.ensure_admin()
        if password is not None:
            out.print(("首次启动：已创建管理员 admin，密码 " if is_zh(ws.language)
                       else "First start: created the admin user 'admin' with the password ")
                      + f"[bold]{password}[/]", highlight=False)
    out.print(f"http://{host}:{port}/", highlight=False)
    uvicorn.run(create_app(root, scheduler=True), host=host, port=port, log_level="info")


@main.group("user")
def user_group() -> None:
    """People who use the web workbench and the API (roles admin, manager, rep).

    \b
    Examples:
      tierwise user add 张伟 --role rep
      tierwise user list
      tierwise user token 张伟 --label excel
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
@workspace_option
@handles_errors
def user_token_cmd(name: str, label: str, workspace: str | None) -> None:
    """Create a personal API token for a user; it is printed once, then send it with each
    API request.

    \b
    Examples:
      tierwise user token 张伟 --label excel
      curl -H "Authorization: Bearer TOKEN" http://127.0.0.1:8000/api/v1/customers
    """
    with open_workspace(workspace) as ws:
        token = ws.create_token(name, label)
    click.echo(token)
