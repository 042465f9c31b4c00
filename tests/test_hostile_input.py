"""Hostile and unlucky input, generated: files with every encoding, separator, quote, huge
field, control character and edge date or number through every importer, and arbitrary text
through the rule grammar. Whatever comes in, the answer is a clean result or a clear
InputError / ExpressionError — never another exception, never a wrong value in the store."""

from __future__ import annotations

import csv
import io
import math
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tierwise.data import store
from tierwise.data.ingest import import_files
from tierwise.data.ingest.fields import PLAUSIBLE
from tierwise.errors import ExpressionError, InputError
from tierwise.policy.syntax import parse_rule

EDGE_VALUES = [
    "", " ", "0000-00-00", "9999-12-31", "1899-12-31", "2025-02-30", "2025-06-01", "20250601",
    "2025/6/1", "00000", "45000", "１２３", "1e309", "-1e309", "NaN", "inf", "-0", "1,2,3",
    "1,234,567", "¥1,234.50", "(500)", "2万亿", "1e308", "=1+1", "@SUM(A1)", "\t", "\r\n",
    "\x00", "\x1b[31m", "'", '"', '""', "客户", "上海测试有限公司", "\u200b", "\ufeff",
    "a" * 5000,
]
value = st.one_of(st.sampled_from(EDGE_VALUES), st.text(max_size=40))
HEADERS = {
    "customers": ["客户编号", "客户名称", "行业", "合作开始日期"],
    "orders": ["订单号", "客户编号", "下单日期", "订单金额"],
    "interactions": ["客户编号", "日期", "类型", "满意度"],
    "payments": ["发票号", "客户编号", "开票日期", "到期日", "金额", "回款日期", "回款金额"],
}


@st.composite
def hostile_file(draw: st.DrawFn) -> tuple[str, bytes]:
    kind = draw(st.sampled_from(sorted(HEADERS)))
    headers = HEADERS[kind]
    rows = draw(st.lists(st.lists(value, min_size=len(headers), max_size=len(headers) + 2),
                         max_size=12))
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter,
                        quoting=draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL])))
    writer.writerow(headers)
    writer.writerows(rows)
    text = buffer.getvalue()
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "gbk", "utf-16"]))
    return kind, text.encode(encoding, errors="replace")


@given(hostile_file())
@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_any_file_is_imported_cleanly_or_refused_with_a_reason(
        generated: tuple[str, bytes]) -> None:
    kind, content = generated
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{kind}.csv"
        path.write_bytes(content)
        con = store.connect()
        try:
            result = import_files(con, kind, [path], rejects_dir=Path(folder) / "rejects")
        except InputError as error:
            assert str(error) and error.file == str(path)
            assert con.execute(f"SELECT count(*) FROM {kind}").fetchone() == (0,)
            return
        assert min(result.accepted, result.updated, result.unchanged, result.rejected) >= 0
        if kind == "orders":
            for day, amount in con.execute("SELECT order_date, amount FROM orders").fetchall():
                assert PLAUSIBLE.holds(day) and math.isfinite(amount)
                assert abs(amount) <= PLAUSIBLE.max_amount
        keys = {"customers": "customer_id", "orders": "order_id",
                "interactions": "interaction_id", "payments": "invoice_id"}
        assert con.execute(f"SELECT count(*) FROM {kind} WHERE {keys[kind]} IS NULL"
                           ).fetchone() == (0,)


RULE_PIECES = ["annual_spend", "tenure_years", ">=", "<", "==", "!=", " and ", " or ", "not ",
               "(", ")", "100万", "1e309", "'华东'", "in", "[", "]", ",", "between", "mean(",
               "median(annual_spend)", "`员工人数`", "-", "*", "/", "%", "¥", "\x00", "\n"]


@given(st.one_of(st.text(max_size=200),
                 st.lists(st.sampled_from(RULE_PIECES), max_size=80).map("".join)))
@settings(max_examples=300, deadline=None, database=None)
def test_any_text_is_a_rule_or_a_clear_expression_error(text: str) -> None:
    try:
        rule = parse_rule(text)
    except ExpressionError as error:
        assert str(error)
        return
    assert rule.text == text
