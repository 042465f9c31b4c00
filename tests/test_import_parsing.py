"""Value parsing: amounts, dates, satisfaction and interaction types, as DuckDB SQL."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tierwise.data.ingest.parsing import (
    amount_sql,
    clean_sql,
    date_sql,
    interaction_type_sql,
    satisfaction_sql,
)

CON = duckdb.connect()


def parse(sql_of, text: str | None):
    """Parse one text value the way the import does: clean first, then parse."""
    row = CON.execute(f"SELECT {sql_of(clean_sql('v'))} FROM (SELECT ?::VARCHAR AS v)", [text])
    return row.fetchone()[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1234.5", 1234.5),
        ("¥1,234.50", 1234.5),
        ("￥1，234", 1234.0),
        ("1.2万", 12000.0),
        ("3亿", 300_000_000.0),
        ("-500", -500.0),
        ("(500)", -500.0),
        ("（500）", -500.0),
        ("12,000元", 12000.0),
        ("1.2万元", 12000.0),
        ("  88  ", 88.0),
        ("\u300088\u3000", 88.0),
        ("RMB 100", 100.0),
        ("0", 0.0),
    ],
)
def test_amounts_in_common_chinese_forms_parse(text: str, expected: float) -> None:
    assert parse(amount_sql, text) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["abc", "1.2.3", "inf", "-infinity", "nan", "万", "12-5"])
def test_text_that_is_not_an_amount_parses_to_null(text: str) -> None:
    assert parse(amount_sql, text) is None


@pytest.mark.parametrize("text", ["", "   ", "\u3000", None])
def test_empty_and_blank_values_are_null(text: str | None) -> None:
    assert parse(lambda v: v, text) is None


@pytest.mark.parametrize(
    "text",
    [
        "2025-03-07",
        "2025/3/7",
        "2025.3.7",
        "2025年3月7日",
        "20250307",
        "2025-03-07 14:30:00",
        "2025/3/7 9:05",
        "2025-03-07T14:30:00Z",
        "45723",
        "45723.604",
    ],
)
def test_dates_in_common_forms_parse(text: str) -> None:
    assert parse(date_sql, text) == dt.date(2025, 3, 7)


@pytest.mark.parametrize(
    "text",
    ["2025-13-45", "2025-02-30", "2025", "abc", "3/7", "123", "2025-03-07x", "25-3-7", "epoch"],
)
def test_text_that_is_not_a_date_parses_to_null(text: str) -> None:
    assert parse(date_sql, text) is None


@pytest.mark.parametrize(
    ("text", "expected"), [("4", 4.0), ("4.5", 4.5), ("4分", 4.0), ("1", 1.0), ("5", 5.0)]
)
def test_satisfaction_from_1_to_5_parses(text: str, expected: float) -> None:
    assert parse(satisfaction_sql, text) == expected


@pytest.mark.parametrize("text", ["0", "7", "5.5", "good"])
def test_satisfaction_outside_1_to_5_is_null(text: str) -> None:
    assert parse(satisfaction_sql, text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("拜访", "visit"),
        ("电话", "call"),
        ("邮件", "email"),
        ("投诉", "complaint"),
        ("调查", "survey"),
        ("回访", "survey"),
        ("活动", "event"),
        ("Visit", "visit"),
        ("其他", "其他"),
        ("WeChat", "wechat"),
    ],
)
def test_interaction_types_map_from_chinese_and_others_are_lower_cased(
    text: str, expected: str
) -> None:
    assert parse(interaction_type_sql, text) == expected


@settings(max_examples=60, deadline=None)
@given(st.decimals(min_value=-(10**9), max_value=10**9, places=2, allow_nan=False))
def test_any_amount_with_thousands_separators_and_currency_round_trips(value) -> None:
    text = f"¥{value:,.2f}" if value >= 0 else f"({abs(value):,.2f})"
    assert parse(amount_sql, text) == pytest.approx(float(value))


@settings(max_examples=60, deadline=None)
@given(st.dates(min_value=dt.date(1950, 1, 1), max_value=dt.date(2100, 12, 31)))
def test_any_date_written_the_chinese_ways_round_trips(day: dt.date) -> None:
    for text in (
        f"{day.year}/{day.month}/{day.day}",
        f"{day.year}年{day.month}月{day.day}日",
        day.strftime("%Y%m%d"),
        f"{day.isoformat()} 08:00:00",
    ):
        assert parse(date_sql, text) == day, text
