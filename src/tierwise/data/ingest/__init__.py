"""Import pipeline: CSV, Excel and Parquet files -> validated canonical tables in the store.

``import_files`` reads files of one kind (customers, orders, interactions or payments), maps their
headers to canonical fields (English or common Chinese names, or an explicit column map),
parses values in DuckDB SQL, writes rejected rows to a CSV the user can open in Excel, and
merges the good rows into the store in one transaction.
"""

from tierwise.data.ingest.fields import KINDS, Kind, detect_mapping
from tierwise.data.ingest.load import FileReport, ImportResult, import_files

__all__ = ["KINDS", "FileReport", "ImportResult", "Kind", "detect_mapping", "import_files"]
