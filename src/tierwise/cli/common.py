"""What every command shares: the `main` group, the error handler, the date parser, the
shared options and the two consoles (results on stdout, notes on stderr)."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click
from rich.console import Console

from tierwise.errors import TierwiseError
from tierwise.record.audit import Actor
from tierwise.workspace import Workspace

# Piped output is not cut to 80 columns: tables stay readable in files and pagers.
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, soft_wrap=True)
F = TypeVar("F", bound=Callable[..., Any])


def _workspace_before(ctx: click.Context, _param: Any, value: str | None) -> str | None:
    """A command's own -w/--workspace; without one, the nearest given before it, to the group
    (`tierwise -w DIR runs`, as git's -C) or to a group in between (`tierwise tasks -w DIR
    done 42`), which click keeps in the parent contexts' params."""
    parent = ctx.parent
    while value is None and parent is not None:
        value = parent.params.get("workspace")
        parent = parent.parent
    return value


workspace_option = click.option(
    "-w", "--workspace", "workspace", type=click.Path(file_okay=False), default=None,
    callback=_workspace_before,
    help="Workspace folder (default: a -w before the command, else $TIERWISE_WORKSPACE, "
         "else the current folder).")
format_option = click.option("--format", "fmt", type=click.Choice(["table", "json"]),
                             default="table", show_default=True, help="Output format.")
run_option = click.option("--run", "run_id", type=int, default=None,
                          help="Run id (default: the latest run).")


def open_workspace(workspace: str | None) -> Workspace:
    """The workspace a command works in, its writes recorded as the person at the command
    line: ``--as NAME`` before the command, else $TIERWISE_USER, else the OS user."""
    ctx = click.get_current_context(silent=True)
    name = ctx.find_root().params.get("acting_as") if ctx is not None else None
    return Workspace(workspace, actor=Actor.at_command_line(name))


def handles_errors(command: F) -> F:
    """Turn TierwiseError and file-system errors into a one-line message and exit status 1."""
    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except TierwiseError as error:
            err.print(f"[bold red]error:[/] {error}", markup=True, highlight=False)
            sys.exit(1)
        except OSError as error:     # missing folder, no permission, file open in Excel
            where = f" ({error.filename})" if error.filename else ""
            err.print(f"[bold red]error:[/] {error.strerror or error}{where}", markup=True,
                      highlight=False)
            sys.exit(1)
    return wrapper  # type: ignore[return-value]


def parse_date(_ctx: Any, _param: Any, value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"expected a date as YYYY-MM-DD, got {value!r}") from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tierwise")
@click.option("-w", "--workspace", "workspace", type=click.Path(file_okay=False), default=None,
              help="Workspace folder for the command, given before it as git's -C (default: "
                   "$TIERWISE_WORKSPACE, else the current folder). A -w after the command "
                   "wins.")
@click.option("--as", "acting_as", metavar="NAME", default=None,
              help="Record the command's writes in the audit log as NAME, when acting for "
                   "someone (default: $TIERWISE_USER, else the operating-system user).")
def main(workspace: str | None, acting_as: str | None) -> None:
    """tierwise — customer tiering (客户分级).

    Every command that works in a workspace takes -w/--workspace DIR, before the command
    (tierwise -w DIR runs, as git's -C) or after it (tierwise runs -w DIR); without it,
    $TIERWISE_WORKSPACE, else the current folder. Each command's --help has examples.

    \b
    Examples:
      tierwise init mycompany && cd mycompany
      tierwise import customers 客户.xlsx
      tierwise import orders 订单.csv
      tierwise grade
      tierwise explain C000123
      tierwise export -o 客户分级表.xlsx
      tierwise -w mycompany runs          # from any folder
      tierwise --as 王芳 override C000123 vip --reason "战略合作"   # acting for someone
    """
    # The value stays in this context's params, where every command's -w option finds it.


engine_option = click.option(
    "--engine", type=click.Choice(["duckdb", "spark"]),
    help="Engine to grade on (default: engine: in tierwise.yaml, else duckdb).")
