"""Readers: CSV, Excel and Parquet files as DuckDB relations of text with file row numbers.

Every source becomes a relation with ``__row`` (the row number a user sees in Excel or a text
editor: the header is row 1), ``__problem`` (why the reader could not split the row, else
NULL) and one VARCHAR column per source column. CSV and Excel files are converted to a
temporary Parquet file in batches, so memory stays bounded; Parquet files are read in place.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import glob
import io
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import uuid4

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from tierwise.data.ingest.parsing import sql_identifier, sql_string
from tierwise.errors import InputError

CSV_SUFFIXES = (".csv", ".txt", ".tsv")
EXCEL_SUFFIXES = (".xlsx", ".xlsm")
PARQUET_SUFFIXES = (".parquet", ".pq")
SUPPORTED_SUFFIXES = CSV_SUFFIXES + EXCEL_SUFFIXES + PARQUET_SUFFIXES

# Bounds on what one file may ask of the machine. A book has tens of columns; 1,000 leaves
# room for wide CRM exports while keeping the per-column work of an import small.
MAX_COLUMNS = 1000
# An .xlsx is a zip: its parts are checked before openpyxl unpacks them. Worksheets are read
# as a stream, so they may be large; the shared strings and every other part are held in
# memory whole (a 300 KB file whose sharedStrings.xml inflates to 300 MB took 5 GB).
MAX_XLSX_SHEET_BYTES = 2 << 30
MAX_XLSX_PART_BYTES = 64 << 20
_CHUNK_BYTES = 1 << 20
_EXCEL_BATCH_ROWS = 20_000
_CSV_BLOCK_BYTES = 16 << 20


@dataclass
class Source:
    """One input file, readable in SQL as ``relation``."""

    path: Path
    relation: str
    columns: dict[str, str]  # source header -> column of ``relation``, in file order
    temp_files: list[Path] = field(default_factory=list)
    # source header -> DuckDB type, for typed (Parquet) columns; absent means text
    types: dict[str, str] = field(default_factory=dict)

    @property
    def headers(self) -> list[str]:
        return list(self.columns)


def expand_paths(paths: Sequence[str | Path]) -> list[Path]:
    """Files named by paths, globs and directories (their supported files), in order."""
    found: list[Path] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            found.extend(_supported_files_in(path))
        elif path.exists():  # checked before globbing: "订单[1].csv" is a file name
            found.append(path)
        elif any(char in str(item) for char in "*?["):
            matches = sorted(Path(m) for m in glob.glob(str(item), recursive=True))
            if not any(match.is_file() for match in matches):
                raise InputError("no files match this pattern", file=str(item))
            found.extend(match for match in matches if match.is_file())
        else:
            raise InputError("file not found", file=str(item))
    unique = list(dict.fromkeys(found))
    if not unique:
        raise InputError("no files to import")
    return unique


def _supported_files_in(folder: Path) -> list[Path]:
    inside = sorted(
        entry
        for entry in folder.iterdir()
        if entry.is_file() and entry.suffix.lower() in SUPPORTED_SUFFIXES
    )
    if not inside:
        raise InputError("the folder has no CSV, Excel or Parquet files", file=str(folder))
    return inside


def open_source(con: duckdb.DuckDBPyConnection, path: Path, workdir: Path) -> Source:
    """Read one file into a Source; InputError (naming the file) when it cannot be read."""
    try:
        return _open_by_suffix(con, path, workdir)
    except InputError as error:
        if error.file is None:
            raise InputError(error.reason, file=str(path)) from error
        raise


def _open_by_suffix(con: duckdb.DuckDBPyConnection, path: Path, workdir: Path) -> Source:
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        return _open_csv(path, workdir)
    if suffix in EXCEL_SUFFIXES:
        return _open_excel(path, workdir)
    if suffix in PARQUET_SUFFIXES:
        return _open_parquet(con, path)
    if suffix == ".xls":
        raise InputError(
            "old Excel .xls files are not supported; open it in Excel and save as .xlsx",
            file=str(path),
        )
    raise InputError("unsupported file type; use .csv, .txt, .xlsx or .parquet", file=str(path))


# --- CSV -------------------------------------------------------------------------------------


def detect_encoding(path: Path) -> str:
    """``utf-8``, ``utf-16`` or ``gb18030`` (a superset of GBK); InputError otherwise.

    Strict UTF-8 is tried first over the whole file, since GB18030 decodes most UTF-8 bytes
    into the wrong characters instead of failing.
    """
    with path.open("rb") as stream:
        head = stream.read(4)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"  # Excel's "Unicode text" export
    if _decodes_as(path, "utf-8"):
        return "utf-8"
    _refuse_mixed_encodings(path)
    if _decodes_as(path, "gb18030"):
        return "gb18030"
    raise InputError(
        "cannot read the text: it is neither UTF-8 nor GBK/GB18030 encoded", file=str(path)
    )


# GBK lines that happen to be valid UTF-8 are rare and short; this many GBK-only lines
# without one UTF-8 line settle a file as GBK without reading the rest.
_GBK_EVIDENCE = 200


def _refuse_mixed_encodings(path: Path) -> None:
    """A file whose lines are mostly UTF-8 but with some that are not (a GBK row pasted
    into a UTF-8 export) is refused naming the first such line: read whole as GB18030, its
    UTF-8 text would turn into other characters without a warning."""
    utf8 = other = 0
    first_other: int | None = None
    with path.open("rb") as stream:
        for number, line in enumerate(stream, start=1):
            if line.isascii():
                continue
            try:
                line.decode("utf-8")
                utf8 += 1
            except UnicodeDecodeError:
                other += 1
                first_other = first_other or number
                if other >= _GBK_EVIDENCE and utf8 == 0:
                    return
    if first_other is not None and utf8 > other:
        raise InputError(
            f"the file is UTF-8 but line {first_other} is not ({other:,} of "
            f"{utf8 + other:,} lines with Chinese text; it looks GBK-encoded): save the whole "
            "file in one encoding (UTF-8) and import it again", file=str(path), row=first_other)


def _decodes_as(path: Path, encoding: str) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    with path.open("rb") as stream:
        try:
            while chunk := stream.read(_CHUNK_BYTES):
                if b"\x00" in chunk:
                    raise InputError("not a text file (it contains binary data)", file=str(path))
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return False
    return True


def _as_utf8(path: Path, workdir: Path) -> Path:
    """The file itself if it is UTF-8, else a UTF-8 copy transcoded in a streaming way."""
    encoding = detect_encoding(path)
    if encoding == "utf-8":
        return path
    target = workdir / f"{uuid4().hex}.csv"
    with (
        path.open("r", encoding=encoding, newline="") as source,
        target.open("w", encoding="utf-8", newline="") as sink,
    ):
        while text := source.read(_CHUNK_BYTES):
            sink.write(text)
    return target


def _sniff_delimiter(first_line: str) -> str:
    counts = {delimiter: first_line.count(delimiter) for delimiter in (",", "\t", ";", "|")}
    best = max(counts, key=lambda delimiter: counts[delimiter])
    return best if counts[best] else ","


def _read_csv_header(path: Path, display: Path) -> tuple[list[object], str]:
    with path.open("r", encoding="utf-8-sig", newline="") as stream:
        first_line = stream.readline()
        delimiter = _sniff_delimiter(first_line)
        stream.seek(0)
        try:
            header = next(csv.reader(stream, delimiter=delimiter), None)
        except csv.Error as error:
            raise InputError(f"cannot read the header row: {error}", file=str(display)) from error
    if not header or not any(cell.strip() for cell in header):
        raise InputError("the file is empty or has no header row", file=str(display))
    return list(header), delimiter


@dataclass
class _SkippedRows:
    """Rows pyarrow could not split into the header's columns, by 1-based record number."""

    rows: list[tuple[int, str]] = field(default_factory=list)

    def handle(self, row: Any) -> str:
        self.rows.append((int(row.number), str(row.text)))
        return "skip"


def _open_csv(path: Path, workdir: Path) -> Source:
    text_path = _as_utf8(path, workdir)
    header, delimiter = _read_csv_header(text_path, path)
    _check_width(path, len(header))
    names = [f"c{i}" for i in range(len(header))]
    skipped = _SkippedRows()
    try:
        reader = pa_csv.open_csv(
            text_path,
            # Single-threaded so pyarrow reports record numbers of rows it skips.
            read_options=pa_csv.ReadOptions(
                column_names=names, use_threads=False, block_size=_CSV_BLOCK_BYTES
            ),
            parse_options=pa_csv.ParseOptions(
                delimiter=delimiter,
                newlines_in_values=True,
                ignore_empty_lines=False,  # blank lines still count as rows for numbering
                invalid_row_handler=skipped.handle,
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=False,
            ),
        )
        target = workdir / f"{uuid4().hex}.parquet"
        batches = _numbered_csv_batches(reader, skipped, names)
        _write_parquet(target, names, batches, lambda: _skipped_batch(skipped, names, delimiter))
    except pa.ArrowInvalid as error:
        raise InputError(f"cannot read the CSV file: {error}", file=str(path)) from error
    return _staged_source(path, target, header)


def _numbered_csv_batches(
    reader: pa_csv.CSVStreamingReader, skipped: _SkippedRows, names: list[str]
) -> Iterator[pa.RecordBatch]:
    """Batches with ``__row``: the record number (header = 1) of each row pyarrow kept."""
    ordinal = 0  # 0-based position among kept records; the header is ordinal 0
    for batch in reader:
        count = batch.num_rows
        kept = np.arange(ordinal, ordinal + count, dtype=np.int64)
        # Skipped record numbers n_j (sorted) shift kept record k to k + #{j: n_j - 1 - j <= k}.
        shifts = np.array([n - 1 - j for j, (n, _) in enumerate(skipped.rows)], dtype=np.int64)
        rows = kept + np.searchsorted(shifts, kept, side="right") + 1
        start = 1 if ordinal == 0 else 0  # drop the header record
        ordinal += count
        if count > start:
            yield _batch(rows[start:], None, batch.slice(start), names)


def _batch(
    rows: Any, problems: Sequence[str] | None, data: pa.RecordBatch, names: list[str]
) -> pa.RecordBatch:
    """A staged batch: row numbers, the reader's problem per row (None: no problems), values."""
    if problems is None:
        problem_array = pa.nulls(data.num_rows, pa.string())
    else:
        problem_array = pa.array(problems, pa.string())
    return pa.RecordBatch.from_arrays(
        [pa.array(rows, pa.int64()), problem_array] + [data.column(i) for i in range(len(names))],
        names=["__row", "__problem", *names],
    )


def _skipped_batch(
    skipped: _SkippedRows, names: list[str], delimiter: str
) -> pa.RecordBatch | None:
    """Rows whose number of values differs from the header's, kept for the rejects file."""
    if not skipped.rows:
        return None
    rows, problems, values = [], [], []
    for number, text in skipped.rows:
        cells = next(csv.reader(io.StringIO(text), delimiter=delimiter), [])
        rows.append(number)
        problems.append(f"expected {len(names)} values, found {len(cells)}")
        values.append((cells + [""] * len(names))[: len(names)])
    columns = [pa.array([row[i] for row in values], pa.string()) for i in range(len(names))]
    data = pa.RecordBatch.from_arrays(columns, names=names)
    return _batch(rows, problems, data, names)


# --- Excel -----------------------------------------------------------------------------------


def _open_excel(path: Path, workdir: Path) -> Source:
    from openpyxl import load_workbook

    _check_excel_parts(path)
    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises many types for files that are not xlsx
        raise InputError(f"cannot open as an Excel .xlsx file: {error}", file=str(path)) from error
    try:
        sheet = workbook.worksheets[0]
        sheet.reset_dimensions()  # some exporters write wrong dimensions; read every row
        rows = enumerate(sheet.iter_rows(values_only=True), start=1)
        header: list[object] | None = None
        for _, values in rows:
            if any(_cell_text(value) for value in values):
                header = list(values)
                break
        if header is None:
            raise InputError("the first sheet is empty", file=str(path))
        while header and not _cell_text(header[-1]):
            header.pop()
        _check_width(path, len(header))
        names = [f"c{i}" for i in range(len(header))]
        target = workdir / f"{uuid4().hex}.parquet"
        _write_parquet(target, names, _excel_batches(rows, names), lambda: None)
    finally:
        workbook.close()
    return _staged_source(path, target, header)


def _check_excel_parts(path: Path) -> None:
    """Refuse an .xlsx whose parts would unpack beyond the bounds above (sizes as the zip's
    directory declares them; zipfile never inflates a part past its declared size)."""
    try:
        with zipfile.ZipFile(path) as archive:
            parts = archive.infolist()
    except (zipfile.BadZipFile, OSError) as error:
        raise InputError(f"cannot open as an Excel .xlsx file: {error}", file=str(path)) from None
    for part in parts:
        sheet = part.filename.startswith("xl/worksheets/")
        limit = MAX_XLSX_SHEET_BYTES if sheet else MAX_XLSX_PART_BYTES
        if part.file_size > limit:
            raise InputError(
                f"the Excel file's part {part.filename} unpacks to "
                f"{part.file_size / (1 << 20):,.0f} MB, over the {limit >> 20:,} MB this "
                "import reads: save the sheet as CSV and import that", file=str(path))


def _check_width(path: Path, columns: int) -> None:
    if columns > MAX_COLUMNS:
        raise InputError(f"the file has {columns:,} columns, more than the {MAX_COLUMNS:,} an "
                         "import reads: keep the columns tierwise uses (ids, dates, amounts, "
                         "attributes) and import that", file=str(path))


def _excel_batches(
    rows: Iterable[tuple[int, tuple[object, ...]]], names: list[str]
) -> Iterator[pa.RecordBatch]:
    width = len(names)
    numbers: list[int] = []
    columns: list[list[str | None]] = [[] for _ in names]
    for number, values in rows:
        texts = [_cell_text(value) for value in values[:width]]
        if not any(texts):
            continue  # empty rows carry no data; numbering comes from the sheet itself
        texts.extend([None] * (width - len(texts)))
        numbers.append(number)
        for column, text in zip(columns, texts, strict=True):
            column.append(text)
        if len(numbers) >= _EXCEL_BATCH_ROWS:
            yield _excel_batch(numbers, columns, names)
            numbers, columns = [], [[] for _ in names]
    if numbers:
        yield _excel_batch(numbers, columns, names)


def _excel_batch(
    numbers: list[int], columns: list[list[str | None]], names: list[str]
) -> pa.RecordBatch:
    data = pa.RecordBatch.from_arrays([pa.array(c, pa.string()) for c in columns], names=names)
    return _batch(numbers, None, data, names)


def _cell_text(value: object) -> str | None:
    """A cell as the text a user sees; dates as ISO so the date parser reads them."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0):
            return value.date().isoformat()
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    text = str(value)
    return text if text.strip() else None


# --- Parquet ---------------------------------------------------------------------------------


def _open_parquet(con: duckdb.DuckDBPyConnection, path: Path) -> Source:
    scan = f"read_parquet({sql_string(str(path))}, file_row_number = true)"
    try:
        described = con.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()
    except duckdb.Error as error:
        raise InputError(f"cannot read as a Parquet file: {error}", file=str(path)) from error
    kept = [(str(row[0]), str(row[1])) for row in described if row[0] != "file_row_number"]
    _check_width(path, len(kept))
    headers = [header for header, _ in kept]
    names = [f"c{i}" for i in range(len(headers))]
    # Columns stay as typed as the file has them: parsing DATE and DOUBLE values back from
    # text costs most of a large import. The stage decides per field how to read each type.
    selected = ", ".join(
        f"{sql_identifier(header)} AS {name}" for header, name in zip(headers, names, strict=True)
    )
    types = {header: kind for header, kind in kept if kind != "VARCHAR"}
    # Parquet has no header line, but row numbers follow the same convention as a sheet.
    relation = (
        f"(SELECT file_row_number + 2 AS __row, CAST(NULL AS VARCHAR) AS __problem, "
        f"{selected} FROM {scan})"
    )
    return Source(path, relation, _named_columns(headers, names), types=types)


# --- shared ----------------------------------------------------------------------------------


def _write_parquet(
    target: Path,
    names: list[str],
    batches: Iterable[pa.RecordBatch],
    last: Callable[[], pa.RecordBatch | None],
) -> None:
    schema = pa.schema(
        [("__row", pa.int64()), ("__problem", pa.string())] + [(n, pa.string()) for n in names]
    )
    with pq.ParquetWriter(target, schema) as writer:
        for batch in batches:
            writer.write_batch(batch)
        final = last()  # called after all batches: it may depend on what reading found
        if final is not None:
            writer.write_batch(final)


def _staged_source(path: Path, staged: Path, header: Sequence[object]) -> Source:
    names = [f"c{i}" for i in range(len(header))]
    relation = f"read_parquet({sql_string(str(staged))})"
    headers = [_header_text(value) for value in header]
    return Source(path, relation, _named_columns(headers, names), [staged])


def _header_text(value: object) -> str:
    if isinstance(value, str):
        return value.strip().lstrip("\ufeff")
    return _cell_text(value) or ""


def _named_columns(headers: Sequence[str], names: Sequence[str]) -> dict[str, str]:
    """Header -> column, skipping blank headers (trailing delimiters, empty sheet columns)
    and making repeated headers unique (``金额``, ``金额_2``)."""
    columns: dict[str, str] = {}
    for header, name in zip(headers, names, strict=True):
        if not header:
            continue
        unique, suffix = header, 2
        while unique in columns:
            unique, suffix = f"{header}_{suffix}", suffix + 1
        columns[unique] = name
    if not columns:
        raise InputError("the header row is empty")
    return columns
