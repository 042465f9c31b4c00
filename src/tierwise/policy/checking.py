"""Static types of rule expressions and :func:`check_rule`."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from datetime import date
from functools import lru_cache

from tierwise.common.vocabulary import ValueType
from tierwise.errors import ExpressionError
from tierwise.policy.syntax import (
    NUMERIC_TEXT,
    ORDERING,
    Aggregate,
    And,
    Arith,
    Between,
    Compare,
    InList,
    Name,
    Negate,
    Node,
    Not,
    Number,
    Or,
    Rule,
    String,
    children,
)

_NUMERIC_TEXT_RE = re.compile(NUMERIC_TEXT)
_ISO_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def static_type(node: Node, types: Mapping[str, ValueType]) -> ValueType:
    """The type of a node, assuming the rule has been checked."""
    match node:
        case Number() | Aggregate() | Negate() | Arith():
            return "number"
        case String():
            return "string"
        case Name(name=name):
            return types[name]
    return "boolean"


def comparison_kind(left: Node, right: Node, types: Mapping[str, ValueType]) -> ValueType:
    """The type both sides of a comparison are brought to (see :class:`_Checker`)."""
    kinds = {static_type(left, types), static_type(right, types)}
    if len(kinds) == 1:
        return kinds.pop()
    return "number" if "number" in kinds else "date"


def parse_number(text: str) -> float | None:
    """A string compared with a number; unparseable text is null."""
    return float(text) if _NUMERIC_TEXT_RE.fullmatch(text) else None


def parse_date(text: str) -> date | None:
    if not _ISO_DATE_RE.fullmatch(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


class _Checker:
    """Validates names and types; raises ExpressionError pointing at the offending text."""

    def __init__(self, text: str, types: Mapping[str, ValueType]) -> None:
        self.text, self.types = text, types

    def error(self, message: str, node: Node) -> ExpressionError:
        return ExpressionError(message, text=self.text, column=node.pos + 1)

    def quote(self, node: Node) -> str:
        source = self.text[node.pos : node.end]
        return source if isinstance(node, String) else f"'{source}'"  # strings bring quotes

    def type_of(self, node: Node) -> ValueType:
        for child in children(node):
            self.type_of(child)
        match node:
            case Name(name=name) | Aggregate(name=name):
                self.check_name(name, node)
        match node:
            case Aggregate(func=func, name=name) if self.types[name] not in ("number", "string"):
                raise self.error(
                    f"{func}() needs a number, but '{name}' is a {self.types[name]}", node
                )
            case Negate(operand=x):
                self.require(x, "number", "arithmetic")
            case Arith(left=a, right=b):
                self.require(a, "number", "arithmetic")
                self.require(b, "number", "arithmetic")
            case Compare(op=op, left=a, right=b):
                self.check_comparison(op, a, b)
            case InList(operand=x, items=items):
                for item in items:
                    self.check_comparison("=", x, item)
            case Between(operand=x, low=lo, high=hi):
                self.check_comparison(">=", x, lo)
                self.check_comparison("<=", x, hi)
            case Not(operand=x):
                self.require(x, "boolean", "'not'")
            case And(items=items) | Or(items=items):
                word = "'and'" if isinstance(node, And) else "'or'"
                for item in items:
                    self.require(item, "boolean", word)
        return static_type(node, self.types)

    def check_name(self, name: str, node: Node) -> None:
        if name in self.types:
            return
        close = difflib.get_close_matches(name, list(self.types), n=1)
        hint = f" — did you mean '{close[0]}'?" if close else ""
        raise self.error(f"unknown name '{name}'{hint}", node)

    def require(self, node: Node, wanted: ValueType, context: str) -> None:
        actual = static_type(node, self.types)
        if actual != wanted:
            article = "a condition" if wanted == "boolean" else f"a {wanted}"
            raise self.error(
                f"{context} needs {article}, but {self.quote(node)} is a {actual}", node
            )

    def check_comparison(self, op: str, left: Node, right: Node) -> None:
        lt, rt = static_type(left, self.types), static_type(right, self.types)
        if lt == rt:
            if lt == "boolean" and op in ORDERING:
                raise self.error(f"'{op}' cannot order true/false values; use = or !=", left)
            return
        kinds = {lt, rt}
        text_side = right if rt == "string" else left
        if kinds == {"number", "string"}:
            # A string attribute is cast at run time; a string literal must be a number now.
            if isinstance(text_side, String) and parse_number(text_side.value) is None:
                raise self.error(
                    f"cannot compare a number with the text {self.quote(text_side)}", text_side
                )
            return
        if kinds == {"date", "string"}:
            if not isinstance(text_side, String):
                raise self.error(
                    f"cannot compare a date with the text {self.quote(text_side)}", text_side
                )
            if parse_date(text_side.value) is None:
                raise self.error(
                    f"{self.quote(text_side)} is not a date: write dates as 'YYYY-MM-DD'", text_side
                )
            return
        raise self.error(
            f"cannot compare {self.quote(left)} (a {lt}) with {self.quote(right)} (a {rt})", left
        )


def _check(rule: Rule, types: Mapping[str, ValueType]) -> None:
    checker = _Checker(rule.text, types)
    if checker.type_of(rule.ast) != "boolean":
        raise checker.error(
            f"a rule must be a condition (true or false), but {checker.quote(rule.ast)} "
            f"is a {static_type(rule.ast, types)}; compare it with something, "
            "e.g. annual_spend >= 100万",
            rule.ast,
        )


@lru_cache(maxsize=256)
def _check_cached(rule: Rule, types: tuple[tuple[str, ValueType], ...]) -> None:
    _check(rule, dict(types))


def check_rule(rule: Rule, types: Mapping[str, ValueType]) -> None:
    """Raise :class:`ExpressionError` for unknown names, type errors or a non-condition rule."""
    if rule.names <= types.keys():
        # Only the types of the names used matter, which also keeps the cache key small.
        _check_cached(rule, tuple(sorted((n, types[n]) for n in rule.names)))
    else:
        _check(rule, types)  # fails, naming the unknown name
