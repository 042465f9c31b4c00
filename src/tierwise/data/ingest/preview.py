"""What an import would do with a file, before it does it: the headers, the field each maps
to, and the first rows as read (for the web import page's mapping step)."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from tierwise.data.ingest.fields import Kind, detect_mapping, fields_of
from tierwise.data.ingest.readers import open_source


@dataclass(frozen=True)
class Preview:
    headers: list[str]
    mapping: dict[str, str]          # header -> field, attribute:<name> or ignored
    fields: list[str]                # the kind's canonical fields
    required: list[str]
    rows: list[list[Any]]            # the first rows, as text, in header order

    def to_json(self) -> dict[str, Any]:
        return self.__dict__


def preview(path: Path, kind: Kind, column_map: Mapping[str, str] | None = None, *,
            rows: int = 10) -> Preview:
    con = duckdb.connect()
    try:
        with tempfile.TemporaryDirectory() as workdir:
            source = open_source(con, path, Path(workdir))
            headers = [str(h) for h in source.headers]
            mapping = detect_mapping(headers, kind, column_map)
            columns = ", ".join(source.columns[h] for h in source.headers)
            sample = con.execute(f"SELECT {columns} FROM {source.relation} ORDER BY __row "
                                 f"LIMIT {int(rows)}").fetchall()
    finally:
        con.close()
    fields = fields_of(kind)
    return Preview(headers, mapping, [f.name for f in fields],
                   [f.name for f in fields if f.required], [list(r) for r in sample])
