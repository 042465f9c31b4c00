"""The store shared by the worker processes of `tierwise serve --workers N`.

DuckDB lets many processes open a database file read-only, or one process read and write
it. So each worker keeps one read-only connection (its request threads take cursors of it),
and a write from the web (an import, a logged interaction) takes the store for a moment:

1. the writer takes ``store.duckdb.write-lock`` (one writer at a time over all workers) and
   puts up the marker ``store.duckdb.writing``;
2. every worker sees the marker within ``WATCH_EVERY``, lets the requests it is serving
   finish, holds new ones back and closes its connection;
3. the writer opens the store read-write, writes, closes it and takes the marker down;
   the workers open their read-only connections again at their next request.

Grading only reads the store: a run holds its own read-only connection, so pages keep being
served while it runs, and a write waits for it (a write while a run is in progress is
refused at once, naming the run, rather than holding every page back).
"""

from __future__ import annotations

import contextvars
import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from tierwise.data import store

WATCH_EVERY = 0.05          # seconds between looks for a writer's marker
WRITE_WAIT = 60.0           # seconds a writer waits for the other workers to let go

# Set while a request is counted as reading, so that its own write can stop counting it.
_counted: contextvars.ContextVar[bool] = contextvars.ContextVar("tw_counted", default=False)


class SharedStore:
    """One worker's read-only connection to the store, given up while another writes."""

    def __init__(self, path: Path, settings: dict[str, Any]) -> None:
        self.path = path
        self.settings = settings
        self.marker = path.with_name(path.name + ".writing")
        self.lock_path = path.with_name(path.name + ".write-lock")
        self.generation = 0                    # goes up each time the connection is closed
        self._cond = threading.Condition()
        self._readers = 0
        self._closing = False
        self._con: duckdb.DuckDBPyConnection | None = None
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="store-watcher", daemon=True)
        self._watcher.start()

    # -- readers ------------------------------------------------------------------------
    def held_back(self) -> bool:
        """Whether a request must wait before reading (a writer is at work)."""
        return self._closing or self.marker.exists()

    def enter(self) -> bool:
        """Count a request as reading, unless a writer is at work (then False: try again)."""
        with self._cond:
            if self.held_back():
                return False
            self._readers += 1
        _counted.set(True)
        return True

    def leave(self) -> None:
        with self._cond:
            self._readers -= 1
            self._cond.notify_all()

    def cursor(self) -> tuple[duckdb.DuckDBPyConnection, int]:
        """A cursor of this worker's read-only connection (opened when needed), with the
        generation it belongs to."""
        with self._cond:
            if self._con is None:
                self._con = store.connect(self.path, read_only=True, **self.settings)
            found = self._con.cursor()
            self._cursors.append(found)
            return found, self.generation

    def connection(self) -> duckdb.DuckDBPyConnection:
        """A read-only connection of its own (a run's: kept while the run lasts)."""
        return store.connect(self.path, read_only=True, **self.settings)

    def _watch(self) -> None:
        while not self._stop.wait(WATCH_EVERY):
            if self._con is not None and self.marker.exists():
                self._let_go()

    def _let_go(self) -> None:
        with self._cond:
            self._closing = True
            while self._readers > 0:
                self._cond.wait(1.0)
            self._close_all()
            self._closing = False
            self._cond.notify_all()

    def _close_all(self) -> None:
        for cursor in self._cursors:
            cursor.close()
        self._cursors.clear()
        if self._con is not None:
            self._con.close()
            self._con = None
        self.generation += 1

    # -- the writer -----------------------------------------------------------------------
    @contextmanager
    def writing(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The store opened read-write for a moment, every worker's connection closed
        meanwhile. The request doing it stops counting as a reader, so that its own worker
        can let go too."""
        counted = _counted.get()
        if counted:
            self.leave()
        with self.lock_path.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                self.marker.write_text(str(os.getpid()), encoding="ascii")
                self._let_go()                 # this worker's own connection first
                con = store.connect(self.path, lock_wait=WRITE_WAIT, **self.settings)
                try:
                    yield con
                finally:
                    con.close()
            finally:
                self.marker.unlink(missing_ok=True)
                fcntl.flock(lock, fcntl.LOCK_UN)
        if counted:
            with self._cond:
                self._readers += 1

    def close(self) -> None:
        self._stop.set()
        self._watcher.join(timeout=2)
        with self._cond:
            self._close_all()
