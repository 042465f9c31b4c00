"""Data read where it lives: an "ERP" with Chinese column names in the real PostgreSQL and
MariaDB servers, named in `sources:`, graded as it stands — the same tiers as grading the
same rows from the CSV files — and a source that cannot be reached fails with its name and
leaves no run."""

from __future__ import annotations

import csv
import datetime as dt
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import DATA, POSTGRES_URL
from tierwise.errors import WorkspaceError
from tierwise.workspace import Workspace

MARIADB_URL = "mysql://root@127.0.0.1:3306/test"
AS_OF = dt.date(2025, 6, 30)
CUSTOMER_COLUMNS = ["客户编号", "客户名称", "联系方式", "行业", "地区", "规模", "合作开始日期",
                    "客户经理", "员工人数"]
ORDER_COLUMNS = ["订单号", "客户编号", "下单日期", "订单金额", "成本", "利润"]


def rows(name: str) -> list[list[str | None]]:
    with (DATA / name).open(encoding="utf-8") as handle:
        return [[cell or None for cell in row] for row in list(csv.reader(handle))[1:]]


def _types(columns: list[str]) -> list[str]:
    dates, numbers = {"合作开始日期", "下单日期"}, {"订单金额", "成本", "利润", "员工人数"}
    return ["DATE" if c in dates else "DECIMAL(14,2)" if c in numbers else "VARCHAR(200)"
            for c in columns]


def _literal(value: str | None) -> str:
    return "NULL" if value is None else "'" + value.replace("'", "''") + "'"


def erp_sql(prefix: str, quote: str) -> list[str]:
    """CREATE TABLE and INSERT statements for 客户 and 销售订单 (quote: " or `)."""
    statements = []
    for table, columns, data in ((f"{prefix}客户", CUSTOMER_COLUMNS, rows("customers.csv")),
                                 (f"{prefix}销售订单", ORDER_COLUMNS, rows("orders.csv"))):
        quoted = [f"{quote}{c}{quote}" for c in columns]
        name = ".".join(f"{quote}{p}{quote}" for p in table.split("."))
        statements.append(f"CREATE TABLE {name} (" + ", ".join(
            f"{c} {t}" for c, t in zip(quoted, _types(columns), strict=True)) + ")")
        for row in data:
            statements.append(f"INSERT INTO {name} ({', '.join(quoted)}) VALUES ("
                              + ", ".join(_literal(v) for v in row) + ")")
    return statements


@pytest.fixture
def postgres_erp(postgres_url: str) -> Iterator[tuple[str, str]]:
    schema = f"erp_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(POSTGRES_URL)
    with engine.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        for statement in erp_sql(f"{schema}.", '"'):
            connection.execute(sa.text(statement))
    try:
        yield "postgresql://postgres@127.0.0.1:5432/test", f"{schema}."
    finally:
        with engine.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def _mariadb(sql: str) -> None:
    subprocess.run(["mariadb", "-h", "127.0.0.1", "-P", "3306", "-u", "root",
                    "--default-character-set=utf8mb4", "test"], input=sql, text=True,
                   check=True, capture_output=True)


@pytest.fixture
def mariadb_erp() -> Iterator[tuple[str, str]]:
    if shutil.which("mariadb") is None:
        pytest.skip("no mariadb client on this machine")
    prefix = f"erp{uuid.uuid4().hex[:6]}_"
    try:
        _mariadb(";\n".join(s.replace("VARCHAR(200)", "VARCHAR(200) CHARACTER SET utf8mb4")
                            for s in erp_sql(prefix, "`")) + ";")
    except (subprocess.CalledProcessError, FileNotFoundError) as error:
        pytest.skip(f"MariaDB at 127.0.0.1:3306 does not answer: {error}")
    try:
        yield MARIADB_URL, prefix
    finally:
        _mariadb(f"DROP TABLE IF EXISTS `{prefix}客户`, `{prefix}销售订单`;")


def grade_from_sources(folder: Path, url: str, prefix: str) -> Workspace:
    ws = Workspace.init(folder, policy=str(DATA / "policy.yaml"))
    ws._set_config("sources", {
        "customers": {"sql": url, "table": f"{prefix}客户"},
        "orders": {"sql": url, "query": f"SELECT * FROM {_table(url, prefix + '销售订单')}"}})
    ws.grade(as_of=AS_OF)
    return ws


def _table(url: str, name: str) -> str:
    quote = "`" if url.startswith("mysql") else '"'
    return ".".join(f"{quote}{p}{quote}" for p in name.split("."))


def tiers(ws: Workspace) -> list[tuple[str, str, float | None]]:
    table = ws.assignments()
    return sorted(zip(table["customer_id"].to_pylist(), table["tier"].to_pylist(),
                      table["annual_spend"].to_pylist(), strict=True))


def graded_from_csv(folder: Path) -> Workspace:
    ws = Workspace.init(folder, policy=str(DATA / "policy.yaml"))
    ws.import_files("customers", [DATA / "customers.csv"])
    ws.import_files("orders", [DATA / "orders.csv"])
    ws.grade(as_of=AS_OF)
    return ws


@pytest.mark.parametrize("server", ["postgres_erp", "mariadb_erp"])
def test_an_erp_graded_where_it_lives_equals_its_csv_export(
        server: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    url, prefix = request.getfixturevalue(server)
    with grade_from_sources(tmp_path / "sql", url, prefix) as from_sql, \
            graded_from_csv(tmp_path / "csv") as from_csv:
        assert tiers(from_sql) == tiers(from_csv)
        assert "VIP客户" in {t.label for t in from_sql.run().policy.tiers}
        # Each run pulls the sources again; the same rows change nothing.
        second = from_sql.grade(as_of=AS_OF)
        assert second.customers == from_csv.run().customers


def test_a_source_that_cannot_be_reached_names_itself_and_writes_no_run(
        tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws", policy=str(DATA / "policy.yaml"))
    with ws:
        ws._set_config("sources", {"orders": {
            "sql": "postgresql://erp:secret@127.0.0.1:1/erp", "table": "销售订单"}})
        with pytest.raises(WorkspaceError) as caught:
            ws.grade(as_of=AS_OF)
        message = str(caught.value)
        assert "orders from postgresql://erp:***@127.0.0.1:1/erp (销售订单)" in message
        assert "secret" not in message
        assert ws.runs() == []


@pytest.mark.parametrize(("setting", "message"), [
    ({"orders": {"sql": "oracle://x/y", "table": "t"}}, "postgresql:// or mysql://"),
    ({"orders": {"sql": "postgresql://x/y"}}, "either table or query"),
    ({"orders": {"path": "a.csv", "sql": "postgresql://x/y"}}, "path, sql, or a Spark"),
    ({"leads": {"path": "a.csv"}}, "unknown kind 'leads'"),
    ({"orders": {"path": "nothing-*.csv"}}, "no file matches"),
])
def test_bad_sources_name_the_setting(tmp_path: Path, setting: dict[str, object],
                                      message: str) -> None:
    ws = Workspace.init(tmp_path / "ws", policy=str(DATA / "policy.yaml"))
    with ws:
        ws._set_config("sources", setting)
        with pytest.raises(WorkspaceError, match=message):
            ws.grade(as_of=AS_OF)
        assert ws.runs() == []
