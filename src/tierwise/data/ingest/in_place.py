"""Files read where they are, checked as an import checks them, for a run that grades them
without importing (``tierwise grade --orders FILE``).

The same readers, header recognition, parsing and checks as an import (tierwise.data.ingest):
each kind is opened, checked in one pass, its rejects written to ``rejects/`` with file, row,
column and reason; the good rows (one per key where a key repeats, as an import keeps them)
are then parsed into a temporary table of the connection, in their canonical columns, which
the run reads. Nothing is merged, nothing is written to a store file, and no key is looked
up in an existing table: the files are the whole book.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb

from tierwise.data.ingest import load
from tierwise.data.ingest.checks import bad_sql
from tierwise.data.ingest.fields import PLAUSIBLE, Kind, Plausible
from tierwise.data.ingest.parsing import sql_identifier
from tierwise.data.ingest.readers import expand_paths
from tierwise.data.ingest.stage import stage_sql

KIND_ORDER: tuple[Kind, ...] = ("customers", "orders", "interactions", "payments")


@dataclass(frozen=True)
class CheckedFiles:
    """The files of each kind as relations of their good rows, and what the checks found."""

    relations: dict[str, str]       # kind -> a temporary view or table on the connection
    results: dict[str, load.ImportResult]

    @property
    def rejected(self) -> int:
        return sum(result.rejected for result in self.results.values())

    def canonical(self, con: duckdb.DuckDBPyConnection) -> dict[str, str]:
        """Views named for each kind's relation with the store's canonical columns (the
        store's empty table where no file was given), and a placeholder customer for every
        id that has orders, interactions or invoices but no customer row, as an import
        adds."""
        views: dict[str, str] = {}
        for kind in KIND_ORDER:
            name = f"_tw_canonical_{kind}"
            found = self.relations.get(kind)
            own = ", false AS placeholder" if kind == "customers" else ""
            body = f"SELECT * FROM {kind}" + (
                f" UNION ALL BY NAME SELECT *{own} FROM {found}" if found else "")
            con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {body}")
            views[kind] = name
        known = views["customers"]
        # A table, not a view: the run reads the customers twice (metrics, fingerprint), and
        # the placeholders are a pass over every order.
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE _tw_canonical_all_customers AS
            SELECT * FROM {known} UNION ALL BY NAME
            SELECT customer_id, true AS placeholder FROM (
                SELECT customer_id FROM {views["orders"]}
                UNION SELECT customer_id FROM {views["interactions"]}
                UNION SELECT customer_id FROM {views["payments"]})
            WHERE customer_id NOT IN (SELECT customer_id FROM {known})""")
        views["customers"] = "_tw_canonical_all_customers"
        return views


@contextmanager
def read_in_place(con: duckdb.DuckDBPyConnection, files: Mapping[str, Sequence[str]], *,
                  rejects_dir: Path, column_map: Mapping[str, str] | None = None,
                  plausible: Plausible = PLAUSIBLE,
                  progress: Callable[[str], None] | None = None) -> Iterator[CheckedFiles]:
    """Open and check the files of each kind on ``con`` (a store connection, e.g. in memory:
    its empty tables give the canonical columns). The relations stay valid inside the
    ``with``: CSV and Excel files are read through text copies in a scratch folder."""
    say = progress or (lambda _message: None)
    relations: dict[str, str] = {}
    results: dict[str, load.ImportResult] = {}
    load.sweep_scratch()
    with tempfile.TemporaryDirectory(prefix=load.SCRATCH_PREFIX) as workdir:
        for kind in KIND_ORDER:
            if files.get(kind):
                results[kind], relations[kind] = _check_kind(
                    con, kind, files[kind], Path(workdir) / kind, rejects_dir=rejects_dir,
                    column_map=column_map, plausible=plausible, say=say)
        yield CheckedFiles(relations, results)


def _check_kind(con: duckdb.DuckDBPyConnection, kind: Kind, paths: Sequence[str],
                workdir: Path, *, rejects_dir: Path, column_map: Mapping[str, str] | None,
                plausible: Plausible,
                say: Callable[[str], None]) -> tuple[load.ImportResult, str]:
    workdir.mkdir(parents=True, exist_ok=True)
    plans = load._open_all(kind, con, expand_paths(paths), workdir, column_map, say)
    attributes = load._attribute_columns(con, plans) if kind == "customers" else []
    say(f"checking {kind}")
    result = load._validate(con, kind, plans, attributes, plausible)
    if result.rejected:
        result.rejects_path = load._write_rejects(con, kind, plans, rejects_dir)
        say(f"{result.rejected} rejected rows written to {result.rejects_path}")
    columns = ", ".join(sql_identifier(c)
                        for c in load._content_columns(kind, attributes))
    name = f"_tw_files_{kind}"
    repeated = load._count(con, f"SELECT count(*) FROM {load.CHECKED} WHERE __set = 'hash'")
    if repeated:
        # Rare: the import's own collapsing of repeated keys, kept for the run.
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM {load.INCOMING}")
    else:
        # The good rows, parsed once more, kept in their canonical columns: the run reads
        # them several times (customers known only from orders, the metrics with the
        # fingerprint, the latest order's date), and parsing and checking a row of a file
        # costs more than reading it back (measured: 9.3 against 12.1 CPU seconds for the
        # whole run at 4M orders). DuckDB spills the table to its temporary folder when it
        # outgrows the memory limit.
        good = f"({stage_sql(kind, plans, attributes)}) WHERE NOT {bad_sql(kind, plausible)}"
        distinct = "DISTINCT " if kind == "interactions" else ""
        interaction_id = (f"{load.interaction_id_sql()} AS interaction_id, "
                          if kind == "interactions" else "")
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS "
                    f"SELECT {distinct}{interaction_id}{columns} FROM {good}")
    load._drop_work_tables(con)
    return result, name
