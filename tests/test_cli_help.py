"""Every command of the command line explains itself: a help text that ends with examples of
how to call it. And `-w/--workspace` works before the subcommand too (`tierwise -w DIR runs`),
as git's `-C` does."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from tests.conftest import DATA
from tierwise.cli import main


def walk(command: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """The path of every command under `main`, groups and their subcommands included."""
    yield path
    if isinstance(command, click.Group):
        for name in sorted(command.commands):
            yield from walk(command.commands[name], (*path, name))


def lookup(path: tuple[str, ...]) -> click.Command:
    command: click.Command = main
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    return command


COMMANDS = list(walk(main))


def run(*args: str, ok: bool = True) -> Result:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


def examples(help_text: str) -> list[str]:
    """The example lines of a help text: its last paragraph, kept as written by click's `\\b`,
    titled Example: or Examples:."""
    paragraphs = inspect.cleandoc(help_text).strip().split("\n\n")
    lines = paragraphs[-1].splitlines()
    assert lines[0].strip() == "\b", f"the last paragraph does not start with \\b: {lines}"
    assert lines[1].strip() in ("Example:", "Examples:"), lines
    return [line.strip() for line in lines[2:] if line.strip()]


def test_the_walk_reaches_groups_and_their_subcommands() -> None:
    assert () in COMMANDS and ("grade",) in COMMANDS
    assert {("tasks", "done"), ("reps", "import"), ("policy", "calibrate"),
            ("webhooks", "log"), ("user", "token")} <= set(COMMANDS)
    assert len(COMMANDS) >= 35


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "tierwise")
def test_every_command_has_help_ending_with_an_example(path: tuple[str, ...]) -> None:
    command = lookup(path)
    assert command.help and command.help.strip(), f"{path} has no help text"
    lines = examples(command.help)
    prefix = " ".join(("tierwise", *path))
    assert any(line == prefix or line.startswith(prefix + " ") for line in lines), (
        f"no example of {prefix!r} in {lines}")
    output = run(*path, "--help").output
    assert "\b" not in output, "a \\b inside a paragraph is printed as a backspace"
    shown = [line.strip() for line in output.splitlines()]
    assert "Example:" in shown or "Examples:" in shown
    for line in lines:                        # \b keeps each example on a line of its own
        assert line in shown, line


@pytest.fixture
def graded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A small graded workspace; the current folder and $TIERWISE_WORKSPACE are elsewhere."""
    monkeypatch.delenv("TIERWISE_WORKSPACE", raising=False)
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "ws"
    run("init", str(folder), "--policy", str(DATA / "policy.yaml"))
    run("import", "customers", str(DATA / "customers.csv"), "-w", str(folder))
    run("import", "orders", str(DATA / "orders.csv"), "-w", str(folder))
    run("grade", "--as-of", "2025-05-31", "-w", str(folder))
    run("grade", "--as-of", "2025-06-30", "-w", str(folder))
    return folder


def test_workspace_before_the_subcommand_works_like_after_it(graded: Path) -> None:
    before = run("-w", str(graded), "runs", "--format", "json").stdout
    after = run("runs", "--format", "json", "-w", str(graded)).stdout
    assert before == after
    assert [r["run_id"] for r in json.loads(before)] == [1, 2]
    assert (run("--workspace", str(graded), "runs").stdout
            == run("runs", "--workspace", str(graded)).stdout)
    assert "run" in run("-w", str(graded), "runs").stdout


def test_without_a_workspace_the_current_folder_is_used(graded: Path) -> None:
    result = run("runs", ok=False)                # the current folder is not a workspace
    assert result.exit_code == 1 and "error:" in result.stderr


def test_the_subcommands_own_workspace_wins(graded: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    run("init", str(other))
    assert json.loads(run("-w", str(other), "runs", "--format", "json").stdout) == []
    both = json.loads(run("-w", str(other), "runs", "--format", "json", "-w",
                          str(graded)).stdout)
    assert [r["run_id"] for r in both] == [1, 2]


def test_workspace_before_reaches_subcommands_of_groups(graded: Path) -> None:
    assert "100万" in run("-w", str(graded), "policy", "show", "--run", "1").stdout
    tasks = json.loads(run("-w", str(graded), "tasks", "--status", "all", "--format",
                           "json").stdout)
    assert tasks == json.loads(run("tasks", "--status", "all", "--format", "json", "-w",
                                   str(graded)).stdout)
    diff = json.loads(run("-w", str(graded), "diff", "--format", "json").stdout)
    assert (diff["run_a"], diff["run_b"]) == (1, 2)


def test_workspace_before_the_subcommand_as_a_user_runs_it(graded: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TIERWISE_WORKSPACE"}
    done = subprocess.run([sys.executable, "-m", "tierwise", "-w", str(graded), "runs",
                           "--format", "json"], capture_output=True, text=True, env=env,
                          cwd=graded.parent, check=False)
    assert done.returncode == 0, done.stderr
    assert [r["run_id"] for r in json.loads(done.stdout)] == [1, 2]
