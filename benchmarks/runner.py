"""What the benchmark scripts share: one measured child process per step, and the results file.

A step runs in its own process so that what the kernel reports is that step's alone:

* ``os.wait4`` gives its user + system CPU seconds (every thread; children it reaped, such as
  Spark's JVM, included) and ``ru_maxrss``, the high-water mark of its resident set. That is
  the largest single process, not a sum, so a step that starts another process (the JVM) is
  also sampled from ``/proc`` as a tree (``RssSampler(tree=True)``);
* the child gets its own process group (session), so a time limit kills the whole group:
  Spark's JVM does not outlive its step, and neither does a step when the parent is stopped;
* a step prints one JSON object on its last stdout line (``emit``), which the parent reads
  back (``Child.result``) and adds the measurements to; stdout and stderr go to
  ``logs/NAME.out`` and ``logs/NAME.err``, the RSS timeline to ``logs/NAME.rss.csv``.

Only the standard library is imported: models.py's steps run under other venvs' Python and
import this module too.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
GB = 1024**3
PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")


def say(message: str) -> None:
    """Progress goes to stderr: stdout is kept for the report (or, in a step, its JSON)."""
    print(message, file=sys.stderr, flush=True)


def fmt_bytes(n: float) -> str:
    return f"{n / GB:.2f} GiB"


# --- /proc (Linux) ---------------------------------------------------------------------------


def _stat(pid: int) -> list[str]:
    """/proc/PID/stat after the command name, which may itself hold spaces and ')'."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def process_cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds a live process has used so far."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / TICKS


def descendants(root: int) -> list[int]:
    """Every live process below ``root`` (children, their children, ...)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                children.setdefault(int(_stat(int(entry))[1]), []).append(int(entry))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def machine_busy_seconds() -> float:
    """CPU seconds all processes of the machine have used since boot (/proc/stat: user, nice,
    system, irq, softirq, steal; not idle or iowait): with it a step's figures can say how
    much other work shared the machine."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:3]) + sum(fields[5:8])) / TICKS


class RssSampler(threading.Thread):
    """Every ``interval`` seconds the resident set of a process, or with ``tree`` the sum over
    it and all its descendants (wait4's ru_maxrss is the largest process, not the sum); also
    each process's CPU seconds as last seen, for processes that are never reaped."""

    def __init__(self, pid: int, *, interval: float = 0.2, tree: bool = False) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval, self.tree = pid, interval, tree
        self.samples: list[tuple[float, int, int]] = []   # seconds, RSS bytes, processes
        self.cpu: dict[int, float] = {}
        self.peak = 0
        self.done = threading.Event()

    def run(self) -> None:
        started = time.perf_counter()
        while not self.done.is_set():
            total, count = 0, 0
            for pid in [self.pid, *(descendants(self.pid) if self.tree else [])]:
                with contextlib.suppress(OSError, ValueError, IndexError):
                    rss = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
                    self.cpu[pid] = process_cpu_seconds(pid)
                    total += rss
                    count += 1
            if count:
                self.peak = max(self.peak, total)
                self.samples.append((time.perf_counter() - started, total, count))
            self.done.wait(self.interval)

    def stop(self) -> None:
        self.done.set()
        self.join()

    def write_csv(self, path: Path) -> None:
        if self.tree:
            rows = "".join(f"{round(t, 2)},{r},{n}\n" for t, r, n in self.samples)
            path.write_text("seconds,tree_rss_bytes,processes\n" + rows)
        else:
            rows = "".join(f"{round(t, 1)},{r}\n" for t, r, _ in self.samples)
            path.write_text("seconds,rss_bytes\n" + rows)


# --- one step in a child process -------------------------------------------------------------


@dataclass
class Child:
    """A finished child process and what was measured of it from the outside."""

    name: str
    returncode: int
    timed_out: bool
    limit_seconds: float | None
    wall_seconds: float
    cpu_seconds: float                 # user + system, wait4 (reaped children included)
    peak_rss_bytes: int                # wait4's ru_maxrss: the largest single process
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    machine_busy_seconds: float        # CPU seconds of the whole machine meanwhile
    out_path: Path
    err_path: Path
    sampler: RssSampler | None

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    @property
    def other_cpu_seconds(self) -> float:
        """CPU seconds processes outside the step used meanwhile (machine minus the step)."""
        sampled = sum(self.sampler.cpu.values()) if self.sampler else 0.0
        return max(0.0, self.machine_busy_seconds - max(self.cpu_seconds, sampled))

    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def result(self) -> dict[str, Any]:
        """The step's JSON object: the last non-empty line of its stdout."""
        lines = [line for line in self.out_path.read_text().splitlines() if line.strip()]
        found: dict[str, Any] = json.loads(lines[-1])
        return found

    def failure(self) -> str:
        """Why the step did not give a result, with the tail of its stderr."""
        if self.timed_out:
            return (f"{self.name} killed after {self.wall_seconds:.0f} s "
                    f"(limit {self.limit_seconds:g} s)")
        return (f"step {self.name} failed (exit {self.returncode}, {self.wall_seconds:.1f}s, "
                f"peak RSS {fmt_bytes(self.peak_rss_bytes)}):\n{self.stderr()[-3000:]}")


def kill_group(pid: int) -> None:
    """SIGKILL to a child's process group: the step and whatever it started (a JVM)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def run_child(name: str, argv: list[str], *, logs: Path, cwd: Path = ROOT,
              env: Mapping[str, str] | None = None, timeout: float | None = None,
              sample: bool = True, tree: bool = False, interval: float = 0.2) -> Child:
    """Run ``argv`` in its own process group and wait for it; past ``timeout`` seconds the
    group is killed (``Child.timed_out``). Output goes to ``logs/NAME.out|.err``; with
    ``sample`` an RSS timeline (of the process tree with ``tree``) to ``logs/NAME.rss.csv``.
    A failed or killed step is returned, not raised: what it means is the caller's call."""
    logs.mkdir(parents=True, exist_ok=True)
    label = name.replace(":", "-")
    out_path, err_path = logs / f"{label}.out", logs / f"{label}.err"
    say(f"[{time.strftime('%H:%M:%S')}] {name} ... (log {err_path})")
    load_before = os.getloadavg()
    busy_before = machine_busy_seconds()
    killed = threading.Event()
    started = time.perf_counter()
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err, cwd=cwd,
                                env=None if env is None else dict(env), start_new_session=True)
        sampler = RssSampler(proc.pid, interval=interval, tree=tree) if sample else None
        if sampler:
            sampler.start()

        def stop() -> None:
            killed.set()
            kill_group(proc.pid)

        timer = threading.Timer(timeout, stop) if timeout else None
        if timer:
            timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:   # Ctrl-C: in its own session the child would outlive us
            kill_group(proc.pid)
            proc.wait()
            raise
        finally:
            if timer:
                timer.cancel()
            if sampler:
                sampler.stop()
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    wall = time.perf_counter() - started
    timed_out = killed.is_set() and proc.returncode == -signal.SIGKILL
    if timed_out:
        kill_group(proc.pid)   # what the group leader's death left behind
        say(f"           killed after {wall:.0f}s (limit {timeout:g}s)")
    if sampler:
        sampler.write_csv(logs / f"{label}.rss.csv")
    return Child(name=name, returncode=proc.returncode, timed_out=timed_out,
                 limit_seconds=timeout, wall_seconds=wall,
                 cpu_seconds=usage.ru_utime + usage.ru_stime,
                 peak_rss_bytes=usage.ru_maxrss * 1024,   # Linux reports KiB
                 load_before=load_before, load_after=os.getloadavg(),
                 machine_busy_seconds=machine_busy_seconds() - busy_before,
                 out_path=out_path, err_path=err_path, sampler=sampler)


def emit(result: dict[str, Any], default: Callable[[Any], Any] = str) -> None:
    """A step's result for the parent: one JSON object on its own, last, stdout line."""
    sys.stdout.flush()
    print("\n" + json.dumps(result, ensure_ascii=False, default=default), flush=True)


# --- the results -----------------------------------------------------------------------------


def timestamp() -> str:
    return dt.datetime.now().isoformat(timespec="seconds")


def machine() -> dict[str, Any]:
    """The machine, as every results file records it."""
    return {"cpus": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(),
            "memory_bytes": PAGE * os.sysconf("SC_PHYS_PAGES")}


def git(*argv: str, cwd: Path = ROOT) -> str:
    """``git ARGV`` in ``cwd``, its stdout; empty when git is missing or fails."""
    try:
        return subprocess.run(["git", *argv], cwd=cwd, capture_output=True, text=True,
                              check=False).stdout.strip()
    except OSError:
        return ""


def source_version(path: str = "src", key: str = "src_changes_uncommitted") -> dict[str, Any]:
    """The commit measured, and the uncommitted changes under ``path`` (figures taken while
    someone edits tierwise are not the commit's)."""
    return {"commit": git("rev-parse", "--short", "HEAD"),
            key: git("status", "--porcelain", path).splitlines()}


def write_results(path: Path, results: Mapping[str, Any]) -> None:
    """The results as indented UTF-8 JSON, replaced in one step: a run stopped while writing
    leaves the previous file whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(path.name + ".tmp")
    scratch.write_text(json.dumps(results, indent=2, ensure_ascii=False, default=str) + "\n",
                       encoding="utf-8")
    os.replace(scratch, path)


def add_size_arguments(parser: argparse.ArgumentParser, *, data: Path, results: Path,
                       files: int) -> None:
    """The data set options of the scripts on generate.py's data (run, predictive, engines)."""
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=50_000_000)
    parser.add_argument("--files", type=int, default=files,
                        help=f"number of order files (default {files})")
    parser.add_argument("--data", type=Path, default=data)
    parser.add_argument("--results", type=Path, default=results)
