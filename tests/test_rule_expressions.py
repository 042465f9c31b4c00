"""Specification of the policy rule language: `annual_spend >= 100万 and tenure_years >= 5`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date
from typing import Any

import ibis
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tierwise.common.vocabulary import ValueType
from tierwise.errors import ExpressionError
from tierwise.policy.expr import (
    And,
    Compare,
    Condition,
    Name,
    Not,
    Number,
    Or,
    Shortfall,
    String,
    check_rule,
    conditions,
    deciding_conditions,
    evaluate,
    parse_rule,
    shortfalls,
    to_ibis,
)

TYPES: dict[str, ValueType] = {
    "annual_spend": "number",
    "tenure_years": "number",
    "recency_days": "number",
    "r_score": "number",
    "margin": "number",
    "industry": "string",
    "region": "string",
    "员工人数": "string",  # imported attribute: text such as "500"
    "年营业额(万)": "number",
    "since": "date",
    "last_order_date": "date",
    "key_account": "boolean",
    "andrew": "number",  # starts with a keyword, is still a name
}
AGGS: dict[tuple[str, str], float | None] = {
    ("mean", "r_score"): 3.0,
    ("median", "annual_spend"): 500_000.0,
    ("max", "tenure_years"): None,  # no graded customer had a value
}


def holds(
    text: str, aggregates: Mapping[tuple[str, str], float | None] = AGGS, **values: Any
) -> bool:
    return evaluate(parse_rule(text), values, TYPES, aggregates)


def syntax_error(text: str) -> ExpressionError:
    with pytest.raises(ExpressionError) as info:
        parse_rule(text)
    return info.value


def check_error(text: str) -> ExpressionError:
    with pytest.raises(ExpressionError) as info:
        check_rule(parse_rule(text), TYPES)
    return info.value


def constant(literal: str) -> Any:
    """The value of a literal as the parser reads it."""
    ast = parse_rule(f"annual_spend = {literal}").ast
    assert isinstance(ast, Compare)
    assert isinstance(ast.right, Number | String)
    return ast.right.value


# --- literals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("12", 12),
        ("3.5", 3.5),
        ("1_000", 1000),
        ("1_000_000", 1_000_000),
        ("100万", 1_000_000),
        ("1.5亿", 150_000_000),
        ("3千", 3000),
        ("2百万", 2_000_000),
        ("1千万", 10_000_000),
        ("80%", 0.8),
        ("12.5%", 0.125),
        ("0.1万", 1000),
    ],
)
def test_numbers_accept_underscores_and_chinese_units(literal: str, value: float) -> None:
    assert constant(literal) == value


@pytest.mark.parametrize(
    ("literal", "value"),
    [("'制造'", "制造"), ('"零售"', "零售"), (r"'it\'s'", "it's"), (r'"a\\b"', "a\\b"), ('""', "")],
)
def test_strings_use_single_or_double_quotes_and_backslash_escapes(
    literal: str, value: str
) -> None:
    assert constant(literal) == value


def test_true_and_false_are_case_insensitive_keywords() -> None:
    assert holds("key_account = TRUE", key_account=True)
    assert holds("key_account = false", key_account=False)
    assert holds("True")
    assert not holds("FALSE")


# --- names ------------------------------------------------------------------------------------


def test_names_may_be_chinese_and_backticks_quote_anything() -> None:
    rule = parse_rule("员工人数 >= 500 and `年营业额(万)` > 1000")
    assert rule.names == {"员工人数", "年营业额(万)"}
    assert holds(
        "员工人数 >= 500 and `年营业额(万)` > 1000", 员工人数="800", **{"年营业额(万)": 2000}
    )


def test_names_that_start_with_a_keyword_are_names() -> None:
    assert parse_rule("andrew > 1 and industry = 'x'").names == {"andrew", "industry"}


def test_rule_lists_names_and_aggregates_it_uses() -> None:
    rule = parse_rule("r_score > mean(r_score) and annual_spend > MEDIAN(annual_spend)")
    assert rule.names == {"r_score", "annual_spend"}
    assert rule.aggregates == {("mean", "r_score"), ("median", "annual_spend")}


def test_unknown_name_suggests_the_closest_known_one() -> None:
    error = check_error("anual_spend >= 100万")
    assert error.reason == "unknown name 'anual_spend' — did you mean 'annual_spend'?"
    assert error.column == 1
    assert check_error("tenure_years > 1 and zzz = 1").reason == "unknown name 'zzz'"
    assert check_error("tenure_years > 1 and zzz = 1").column == 22


# --- precedence -------------------------------------------------------------------------------


def test_not_binds_tighter_than_and_which_binds_tighter_than_or() -> None:
    ast = parse_rule("not key_account or annual_spend > 1 and tenure_years > 2").ast
    assert isinstance(ast, Or)
    first, second = ast.items
    assert isinstance(first, Not) and isinstance(first.operand, Name)
    assert isinstance(second, And) and len(second.items) == 2


def test_comparison_binds_tighter_than_not() -> None:
    ast = parse_rule("not annual_spend > 5").ast
    assert isinstance(ast, Not) and isinstance(ast.operand, Compare)


def test_keywords_are_case_insensitive() -> None:
    ast = parse_rule("annual_spend > 1 AND tenure_years > 1 Or NOT key_account").ast
    assert isinstance(ast, Or) and isinstance(ast.items[0], And) and isinstance(ast.items[1], Not)


@pytest.mark.parametrize(
    "text",
    [
        "1 + 2 * 3 = 7",
        "(1 + 2) * 3 = 9",
        "10 - 4 - 3 = 3",
        "12 / 4 / 3 = 1",
        "-2 * 3 = -6",
        "- -2 = 2",
        "10 / 4 = 2.5",
        "annual_spend * 2 > 100万",
    ],
)
def test_arithmetic_follows_the_usual_precedence(text: str) -> None:
    assert holds(text, annual_spend=600_000)


# --- comparisons ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "expected"),
    [
        ("<", False), ("<=", True), (">", False), (">=", True), ("=", True), ("==", True),
        ("!=", False), ("<>", False), ("≥", True), ("≤", True), ("≠", False),
    ],
)  # fmt: skip
def test_every_comparison_operator(op: str, expected: bool) -> None:
    assert holds(f"annual_spend {op} 100万", annual_spend=1_000_000) is expected


def test_in_lists_take_chinese_strings() -> None:
    rule = "industry in ['制造', \"零售\", '批发',]"
    assert holds(rule, industry="零售")
    assert not holds(rule, industry="金融")
    assert holds("industry not in ['制造', '零售']", industry="金融")
    assert holds("tenure_years in [1, 3, 5]", tenure_years=3)


def test_between_is_inclusive() -> None:
    for years, expected in [(1, False), (2, True), (3, True), (5, True), (6, False)]:
        assert holds("tenure_years between 2 and 5", tenure_years=years) is expected
        assert holds("tenure_years not between 2 and 5", tenure_years=years) is not expected
    assert holds(
        "tenure_years between 1 and 2 and annual_spend > 0", tenure_years=2, annual_spend=1
    )


# --- null semantics (documented to users) -----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("annual_spend > 5", False),
        ("annual_spend <= 5", False),
        ("annual_spend != 5", False),  # every comparison with null is false ...
        ("not annual_spend > 5", True),  # ... so its negation is true
        ("not (annual_spend > 5)", True),
        ("annual_spend in [1, 2]", False),
        ("annual_spend not in [1, 2]", False),
        ("annual_spend between 1 and 2", False),
        ("annual_spend not between 1 and 2", False),
        ("annual_spend is null", True),
        ("annual_spend is not null", False),
        ("annual_spend + 1 is null", True),  # arithmetic with null is null
        ("annual_spend * 0 = 0", False),
        ("annual_spend > 5 or tenure_years > 1", True),
        ("key_account", False),  # a null flag is not true ...
        ("not key_account", True),  # ... and `not` of it is
        ("key_account = false", False),
    ],
)
def test_comparisons_with_null_are_false(text: str, expected: bool) -> None:
    assert holds(text, tenure_years=2) is expected  # annual_spend and key_account missing
    assert holds(text, tenure_years=2, annual_spend=None, key_account=None) is expected


def test_nan_counts_as_null() -> None:
    assert holds("annual_spend is null", annual_spend=math.nan)
    assert not holds("annual_spend > 0", annual_spend=math.nan)


def test_division_by_zero_is_null() -> None:
    assert holds("annual_spend / tenure_years is null", annual_spend=100, tenure_years=0)
    assert not holds("annual_spend / tenure_years > 0", annual_spend=100, tenure_years=0)
    assert holds("annual_spend / tenure_years = 50", annual_spend=100, tenure_years=2)


# --- types ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("500", True), ("600.5", True), (" 500 ", True), ("499", False), ("abc", False), ("", False)],
)
def test_string_attribute_is_read_as_a_number_when_compared_with_one(
    value: str, expected: bool
) -> None:
    assert holds("员工人数 >= 500", 员工人数=value) is expected


def test_unreadable_number_text_is_null() -> None:
    assert holds("not 员工人数 >= 500", 员工人数="很多")
    assert holds("员工人数 = '500'", 员工人数="500")  # text with text: plain string equality
    assert not holds("员工人数 = '500'", 员工人数="500.0")


def test_numeric_text_literal_compares_with_numbers() -> None:
    assert holds("annual_spend > '500'", annual_spend=600)


def test_dates_compare_with_iso_date_literals() -> None:
    assert holds("since < '2020-01-01'", since=date(2019, 5, 1))
    assert not holds("since < '2020-01-01'", since=date(2020, 1, 1))
    assert holds("since between '2020-01-01' and '2020-12-31'", since=date(2020, 6, 30))
    assert holds(
        "since < last_order_date", since=date(2019, 1, 1), last_order_date=date(2024, 1, 1)
    )


@pytest.mark.parametrize(
    ("text", "message", "column"),
    [
        ("industry + 1 > 2", "arithmetic needs a number, but 'industry' is a string", 1),
        ("-industry = 1", "arithmetic needs a number, but 'industry' is a string", 2),
        ("annual_spend > 'abc'", "cannot compare a number with the text 'abc'", 16),
        ("since > '2020/01/01'", "'2020/01/01' is not a date: write dates as 'YYYY-MM-DD'", 9),
        ("since > '2020-02-30'", "'2020-02-30' is not a date: write dates as 'YYYY-MM-DD'", 9),
        ("since > industry", "cannot compare a date with the text 'industry'", 9),
        ("since > 5", "cannot compare 'since' (a date) with '5' (a number)", 1),
        ("key_account > false", "'>' cannot order true/false values; use = or !=", 1),
        ("not annual_spend", "'not' needs a condition, but 'annual_spend' is a number", 5),
        ("industry and key_account", "'and' needs a condition, but 'industry' is a string", 1),
        ("mean(since) > 1", "mean() needs a number, but 'since' is a date", 1),
    ],
)
def test_type_errors_are_reported_at_check_time(
    text: str, message: str | None, column: int
) -> None:
    error = check_error(text)
    if message is not None:
        assert error.reason == message
    assert error.column == column


def test_mean_of_a_text_attribute_is_allowed() -> None:
    check_rule(parse_rule("员工人数 > mean(员工人数)"), TYPES)


def test_a_rule_must_be_a_condition() -> None:
    error = check_error("annual_spend * 2")
    assert error.reason.startswith("a rule must be a condition (true or false)")


# --- aggregates -------------------------------------------------------------------------------


def test_aggregates_come_from_the_mapping() -> None:
    assert holds("r_score > mean(r_score)", r_score=4)
    assert not holds("r_score > mean(r_score)", r_score=3)
    assert holds("annual_spend >= median(annual_spend) * 2", annual_spend=1_000_000)


def test_a_null_aggregate_makes_the_comparison_false() -> None:
    assert not holds("tenure_years >= max(tenure_years)", tenure_years=10)
    assert holds("not tenure_years >= max(tenure_years)", tenure_years=10)


def test_a_missing_aggregate_is_an_error() -> None:
    with pytest.raises(ExpressionError, match=r"no value was computed for min\(r_score\)"):
        holds("r_score > min(r_score)", r_score=1)


# --- syntax errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message", "column"),
    [
        ("annual_spend >= and x", "unexpected 'and' at column 17: expected a value", 17),
        ("annual_spend >=", "unexpected end of the rule at column 16: expected a value", 16),
        (
            "annual_spend > 5 tenure_years",
            "unexpected 'tenure_years' at column 18: expected an operator, 'and', 'or' "
            "or the end of the rule",
            18,
        ),
        ("(annual_spend > 5", "unexpected end of the rule at column 18: expected ')'", 18),
        ("annual_spend > 5)", "unexpected ')' at column 17", 17),
        ("industry in '制造'", "unexpected '制造' at column 13: expected '['", 13),
        ("industry is '制造'", "unexpected '制造' at column 13: expected 'not' or 'null'", 13),
        ("industry not '制造'", "unexpected '制造' at column 14: expected 'in' or 'between'", 14),
        ("1 < annual_spend < 5", "unexpected '<' at column 18", 18),
        ("industry = '制造", "unterminated string starting at column 12: add the closing '", 12),
        ("`年营业额 > 1", "unterminated `name` starting at column 1: add the closing `", 1),
        ("annual_spend ＞ 1", "unknown character '＞' at column 14: use '>'", 14),
        ("industry = “制造”", "unknown character '“' at column 12: use '\"'", 12),
        ("a && b", "unknown character '&' at column 3: use 'and'", 3),
        ("annual_spend @ 1", "unknown character '@' at column 14", 14),
        ("annual_spend > 100元", "invalid number '100元' at column 16", 16),
        ("annual_spend > 1.2.3", "invalid number '1.2.3' at column 16", 16),
        ("avg(r_score) > 1", "unknown function 'avg' at column 1: use one of mean, median", 1),
        ("`` > 1", "empty name `` at column 1", 1),
    ],
)
def test_syntax_errors_say_where_and_what_was_expected(
    text: str, message: str, column: int
) -> None:
    error = syntax_error(text)
    assert error.reason.startswith(message)
    assert error.column == column
    assert "_AND" not in error.reason and "COMP_OP" not in error.reason  # no lark internals


@pytest.mark.parametrize("text", ["", "   ", "\n"])
def test_empty_rule(text: str) -> None:
    assert syntax_error(text).reason.startswith("empty rule")


def test_error_message_points_at_the_column() -> None:
    assert str(syntax_error("a >= and b")).endswith("\n    a >= and b\n         ^")


def test_full_width_spaces_are_whitespace() -> None:
    assert holds("annual_spend\u3000>=\u3000100万", annual_spend=2_000_000)


# --- explanations -----------------------------------------------------------------------------

EXAMPLE = "annual_spend >= 100万 and tenure_years >= 5"


def test_conditions_report_each_test_in_source_order() -> None:
    found = conditions(parse_rule(EXAMPLE), {"annual_spend": 800_000, "tenure_years": 6}, TYPES, {})
    assert found == [
        Condition("annual_spend >= 100万", False, 800_000, 1_000_000, "annual_spend"),
        Condition("tenure_years >= 5", True, 6, 5, "tenure_years"),
    ]


def test_deciding_conditions_follow_the_path_that_decided() -> None:
    rule = parse_rule("annual_spend >= 50万 or (annual_spend >= 30万 and potential_score >= 80)")
    values = {"annual_spend": 600_000, "potential_score": 90}
    types: dict[str, ValueType] = {**TYPES, "potential_score": "number"}
    assert [c.text for c in deciding_conditions(rule, values, types, {})] == [
        "annual_spend >= 50万"]
    values = {"annual_spend": 400_000, "potential_score": 90}
    assert [c.text for c in deciding_conditions(rule, values, types, {})] == [
        "annual_spend >= 30万", "potential_score >= 80"]
    failing = parse_rule(EXAMPLE)
    values = {"annual_spend": 800_000, "tenure_years": 6}
    assert [c.text for c in deciding_conditions(failing, values, TYPES, {})] == [
        "annual_spend >= 100万"]


def test_conditions_cover_in_between_is_null_and_flags() -> None:
    rule = parse_rule(
        "(industry in ['制造', '零售'] or key_account) and not ((since is null))"
        " and tenure_years between 1 and 3 and 员工人数 > 100"
    )
    values = {"industry": "金融", "key_account": True, "tenure_years": 2, "员工人数": "x"}
    found = conditions(rule, values, TYPES, {})
    assert [c.text for c in found] == [
        "industry in ['制造', '零售']",
        "key_account",
        "since is null",
        "tenure_years between 1 and 3",
        "员工人数 > 100",
    ]
    assert [c.holds for c in found] == [False, True, True, True, False]
    assert found[0].right == ["制造", "零售"]
    assert found[3].right == (1, 3)
    assert found[4].left is None  # "x" could not be read as a number


def test_shortfall_of_a_failing_conjunct() -> None:
    values = {"annual_spend": 800_000, "tenure_years": 6}
    assert shortfalls(parse_rule(EXAMPLE), values, TYPES, {}) == [
        Shortfall("annual_spend", 800_000, 1_000_000, ">=")
    ]


def test_every_failing_conjunct_needs_a_change() -> None:
    values = {"annual_spend": 800_000, "tenure_years": 2, "recency_days": 200}
    rule = parse_rule(EXAMPLE + " and recency_days <= 90 and 3 < r_score")
    assert shortfalls(rule, {**values, "r_score": None}, TYPES, {}) == [
        Shortfall("annual_spend", 800_000, 1_000_000, ">="),
        Shortfall("tenure_years", 2, 5, ">="),
        Shortfall("recency_days", 200, 90, "<="),
        Shortfall("r_score", None, 3, ">"),  # constant on the left is turned around
    ]


def test_a_rule_that_holds_has_no_shortfall() -> None:
    values = {"annual_spend": 2_000_000, "tenure_years": 6}
    assert shortfalls(parse_rule(EXAMPLE), values, TYPES, {}) == []


def test_or_picks_the_alternative_with_fewest_changes() -> None:
    rule = parse_rule(EXAMPLE + " or annual_spend >= 500万 or r_score > mean(r_score)")
    values = {"annual_spend": 800_000, "tenure_years": 1, "r_score": 1}
    assert shortfalls(rule, values, TYPES, AGGS) == [
        Shortfall("annual_spend", 800_000, 5_000_000, ">=")  # first of the one-change options
    ]


def test_no_simple_change_gives_none() -> None:
    assert shortfalls(parse_rule("industry = '制造'"), {}, TYPES, {}) is None
    rule = parse_rule("annual_spend >= 100万 and industry = '制造'")
    assert shortfalls(rule, {"annual_spend": 1}, TYPES, {}) is None
    rule = parse_rule("tenure_years >= max(tenure_years)")  # compared with a null aggregate
    assert shortfalls(rule, {"tenure_years": 1}, TYPES, AGGS) is None


def test_shortfalls_for_between_not_and_repeated_names() -> None:
    between = parse_rule("tenure_years between 2 and 5")
    assert shortfalls(between, {"tenure_years": 7}, TYPES, {}) == [
        Shortfall("tenure_years", 7, 5, "<=")
    ]
    negated = parse_rule("not annual_spend < 100万")
    assert shortfalls(negated, {"annual_spend": 10}, TYPES, {}) == [
        Shortfall("annual_spend", 10, 1_000_000, ">=")
    ]
    both = parse_rule("annual_spend >= 50万 and annual_spend > 100万")
    assert shortfalls(both, {"annual_spend": 10}, TYPES, {}) == [
        Shortfall("annual_spend", 10, 1_000_000, ">")
    ]


# --- Ibis on DuckDB agrees with Python --------------------------------------------------------

CON = ibis.duckdb.connect()

# One column per kind of value a rule can meet, including an integer column and a text column
# holding numbers written in several ways.
PROP_TYPES: dict[str, ValueType] = {
    "n1": "number",
    "n2": "number",
    "年营业额(万)": "number",
    "s1": "string",
    "员工人数": "string",
    "d1": "date",
    "b1": "boolean",
}
ARROW_TYPES = {
    "n1": pa.float64(),
    "n2": pa.int64(),
    "年营业额(万)": pa.float64(),
    "s1": pa.string(),
    "员工人数": pa.string(),
    "d1": pa.date32(),
    "b1": pa.bool_(),
}
NUMBER_NAMES = ["n1", "n2", "`年营业额(万)`"]
STRING_NAMES = ["s1", "员工人数"]
NUMBER_LITERALS = ["0", "1", "2.5", "1_000", "100万", "1.5亿", "80%", "3千", "-7"]
TEXT_LITERALS = ["'500'", "'abc'", "'制造'", "' 7 '", "''"]
TEXTS = [
    "500",
    "12.5",
    " 7 ",
    "-3",
    "+.5",
    "1.",
    ".",
    "abc",
    "",
    "1e3",
    "1_000",
    "inf",
    "制造",
    "零售",
]
FLOATS = st.floats(-1e6, 1e6, allow_nan=False) | st.sampled_from(
    [0.0, -0.0, 1e308, -1e308, math.nan]
)


def _paren(draw: st.DrawFn, text: str) -> str:
    return f"({text})" if draw(st.booleans()) else text


@st.composite
def number_exprs(draw: st.DrawFn, depth: int = 2) -> str:
    if depth == 0 or draw(st.integers(0, 2)) == 0:
        return draw(
            st.sampled_from(NUMBER_NAMES)
            | st.sampled_from(NUMBER_LITERALS)
            | st.sampled_from(["mean(n1)", "max(n2)", "median(`年营业额(万)`)"])
        )
    if draw(st.integers(0, 4)) == 0:
        return f"-{_paren(draw, draw(number_exprs(depth - 1)))}"
    op = draw(st.sampled_from(["+", "-", "*", "/"]))
    left, right = draw(number_exprs(depth - 1)), draw(number_exprs(depth - 1))
    return _paren(draw, f"{left} {op} ({right})")


@st.composite
def predicates(draw: st.DrawFn) -> str:
    op = draw(st.sampled_from(["<", "<=", ">", ">=", "=", "!=", "≥", "<>"]))
    number = number_exprs()
    text = st.sampled_from(STRING_NAMES)
    choice = draw(st.integers(0, 9))
    if choice == 0:
        return f"{draw(number)} {op} {draw(number)}"
    if choice == 1:  # text read as a number, either way round
        return f"{draw(text)} {op} {draw(number)}"
    if choice == 2:
        constant = draw(st.sampled_from(["500", "'500'", "-3"]))
        return f"{draw(number)} {op} {constant}"
    if choice == 3:
        return f"{draw(text)} {op} {draw(text | st.sampled_from(TEXT_LITERALS))}"
    if choice == 4:
        return f"d1 {op} '{draw(st.dates(date(2023, 1, 1), date(2025, 1, 1))).isoformat()}'"
    if choice == 5:
        subject = draw(text | number_exprs(1))
        # Text literals only meet text names: a number against 'abc' is a type error.
        pool = NUMBER_LITERALS + (TEXT_LITERALS if subject in STRING_NAMES else ["'500'", "' 7 '"])
        items = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=4))
        return f"{subject} {draw(st.sampled_from(['', 'not ']))}in [{', '.join(items)}]"
    if choice == 6:
        negated = draw(st.sampled_from(["", "not "]))
        subject = draw(number | text)
        return f"{subject} {negated}between {draw(number)} and {draw(number)}"
    if choice == 7:
        subject = draw(number | text | st.sampled_from(["d1", "b1", "(b1 = true)"]))
        return f"{subject} is {draw(st.sampled_from(['', 'not ']))}null"
    if choice == 8:
        return draw(st.sampled_from(["b1", "b1 = false", "b1 != true", "true", "false"]))
    return f"({draw(predicates())}) {draw(st.sampled_from(['=', '!=']))} b1"


@st.composite
def rules(draw: st.DrawFn, depth: int = 3) -> str:
    if depth == 0 or draw(st.integers(0, 2)) == 0:
        return draw(predicates())
    kind = draw(st.sampled_from(["and", "or", "not"]))
    if kind == "not":
        return f"not {_paren(draw, draw(rules(depth - 1)))}"
    parts = draw(st.lists(rules(depth - 1), min_size=2, max_size=3))
    return f" {kind.upper() if draw(st.booleans()) else kind} ".join(f"({p})" for p in parts)


ROWS = st.fixed_dictionaries(
    {
        "n1": st.none() | FLOATS,
        "n2": st.none() | st.integers(-1000, 1000),
        "年营业额(万)": st.none() | FLOATS,
        "s1": st.none() | st.sampled_from(TEXTS),
        "员工人数": st.none()
        | st.sampled_from(TEXTS)
        | st.text(max_size=4).map(lambda s: s.replace("\x00", "")),
        "d1": st.none() | st.dates(date(2023, 1, 1), date(2025, 1, 1)),
        "b1": st.none() | st.booleans(),
    }
)
AGG_VALUES = st.fixed_dictionaries(
    {
        ("mean", "n1"): st.none() | FLOATS,
        ("max", "n2"): st.none() | st.integers(-1000, 1000).map(float),
        ("median", "年营业额(万)"): st.none() | FLOATS,
    }
)


def duckdb_results(
    rule_text: str, rows: list[dict[str, Any]], aggs: Mapping[tuple[str, str], float | None]
) -> list[bool]:
    arrow = pa.table(
        {"_row": pa.array(range(len(rows)), pa.int64())}
        | {name: pa.array([r[name] for r in rows], type_) for name, type_ in ARROW_TYPES.items()}
    )
    table = ibis.memtable(arrow)
    condition = to_ibis(parse_rule(rule_text), table, PROP_TYPES, aggs)
    result = CON.to_pyarrow(table.select("_row", ok=condition).order_by("_row"))
    return result.column("ok").to_pylist()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rule_text=rules(), rows=st.lists(ROWS, min_size=1, max_size=6), aggs=AGG_VALUES)
def test_ibis_on_duckdb_agrees_with_python_evaluation(
    rule_text: str, rows: list[dict[str, Any]], aggs: dict[tuple[str, str], float | None]
) -> None:
    rule = parse_rule(rule_text)
    expected = [evaluate(rule, row, PROP_TYPES, aggs) for row in rows]
    assert duckdb_results(rule_text, rows, aggs) == expected


EXAMPLE_ROWS: list[dict[str, Any]] = [
    {"annual_spend": 800_000.0, "tenure_years": 6, "员工人数": "500", "industry": "制造",
     "since": date(2019, 1, 1), "key_account": False, "r_score": 4.0},
    {"annual_spend": 2e6, "tenure_years": 0, "员工人数": "abc", "industry": "金融",
     "since": date(2021, 1, 1), "key_account": None, "r_score": 3.0},
    {"annual_spend": None, "tenure_years": None, "员工人数": None, "industry": None,
     "since": None, "key_account": True, "r_score": None},
]  # fmt: skip
EXAMPLE_SCHEMA = {
    "annual_spend": "float64", "tenure_years": "int64", "员工人数": "string",
    "industry": "string", "since": "date", "key_account": "boolean", "r_score": "float64",
}  # fmt: skip


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("annual_spend >= 100万 or tenure_years >= 5", [True, True, False]),
        ("not annual_spend > 100万", [True, False, True]),
        ("annual_spend / tenure_years is null", [False, True, True]),
        ("员工人数 >= 500 or industry in ['制造', '零售']", [True, False, False]),
        ("since < '2020-01-01' or key_account", [True, False, True]),
        ("r_score > mean(r_score) and tenure_years not between 2 and 4", [True, False, False]),
    ],
)
def test_examples_on_duckdb(text: str, expected: list[bool]) -> None:
    rows = [{"_row": i, **r} for i, r in enumerate(EXAMPLE_ROWS)]
    table = ibis.memtable(rows, schema={"_row": "int64", **EXAMPLE_SCHEMA})
    rule = parse_rule(text)
    result = CON.to_pyarrow(
        table.select("_row", ok=to_ibis(rule, table, TYPES, AGGS)).order_by("_row")
    )
    assert result.column("ok").to_pylist() == expected
    assert [evaluate(rule, r, TYPES, AGGS) for r in EXAMPLE_ROWS] == expected
