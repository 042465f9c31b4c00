"""Explanations of a rule's outcome for one customer: the conditions it tested
(:func:`conditions`, :func:`deciding_conditions`) and what would make it hold (:func:`shortfalls`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, cast

from tierwise.common.vocabulary import ValueType
from tierwise.policy.checking import check_rule, static_type
from tierwise.policy.evaluation import Python, require_aggregates
from tierwise.policy.syntax import (
    BOOLEAN_NODES,
    ORDERING,
    PREDICATES,
    And,
    Between,
    Compare,
    InList,
    IsNull,
    Name,
    Node,
    Not,
    Or,
    Rule,
    children,
    parser,
    walk,
)

_FLIPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "=", "!=": "!="}
_NEGATED = {"<": ">=", "<=": ">", ">": "<=", ">=": "<"}


@dataclass(frozen=True)
class Condition:
    """One atomic test inside a rule, with the values it compared (after type conversion:
    a string attribute compared with a number shows the number it was read as, or None)."""

    text: str
    holds: bool
    left: Any
    right: Any
    name: str | None = None  # the metric or attribute tested, when one side is a bare name


def conditions(
    rule: Rule,
    values: Mapping[str, Any],
    types: Mapping[str, ValueType],
    aggregates: Mapping[tuple[str, str], float | None],
) -> list[Condition]:
    """The comparisons, ``in``, ``is null`` and ``between`` tests of a rule, in source order.

    A true/false name used directly as a condition (``is_key_account and ...``) is listed
    too, with ``right=True``.
    """
    check_rule(rule, types)
    require_aggregates(rule, aggregates)
    py = Python(values, types, aggregates)
    return [_condition(rule, py, node) for node in _condition_nodes(rule.ast, types)]


def deciding_conditions(
    rule: Rule,
    values: Mapping[str, Any],
    types: Mapping[str, ValueType],
    aggregates: Mapping[tuple[str, str], float | None],
) -> list[Condition]:
    """The conditions that decided the outcome, for reasons in words.

    For a rule that holds: every condition of an ``and``, and of an ``or`` only its first
    alternative that holds. For a rule that fails: the failing parts of an ``and``, and
    every alternative of an ``or``.
    """
    check_rule(rule, types)
    require_aggregates(rule, aggregates)
    py = Python(values, types, aggregates)
    return [_condition(rule, py, node) for node in _deciding_nodes(rule.ast, py, types)]


def _deciding_nodes(node: Node, py: Python, types: Mapping[str, ValueType]) -> Iterator[Node]:
    holds = bool(py.truth(node))
    if isinstance(node, And):
        parts = node.items if holds else [n for n in node.items if not py.truth(n)]
        for part in parts:
            yield from _deciding_nodes(part, py, types)
    elif isinstance(node, Or):
        parts = [next(n for n in node.items if py.truth(n))] if holds else list(node.items)
        for part in parts:
            yield from _deciding_nodes(part, py, types)
    else:
        yield from _condition_nodes(node, types)


def _condition(rule: Rule, py: Python, node: Node) -> Condition:
    left, right = _condition_sides(py, node)
    text = _unwrap(rule.text[node.pos : node.end])
    return Condition(text, bool(py.truth(node)), left, right, _tested_name(node))


def _tested_name(node: Node) -> str | None:
    match node:
        case Compare(left=Name(name=name)) | InList(operand=Name(name=name)):
            return name
        case Between(operand=Name(name=name)) | IsNull(operand=Name(name=name)):
            return name
        case Compare(right=Name(name=name)):
            return name
    return None


def _condition_nodes(node: Node, types: Mapping[str, ValueType]) -> Iterator[Node]:
    if isinstance(node, PREDICATES):
        yield node
    elif not isinstance(node, BOOLEAN_NODES):
        if static_type(node, types) == "boolean":
            yield node
        return  # no conditions inside arithmetic
    for child in children(node):
        if isinstance(node, (Not, And, Or)) or isinstance(child, BOOLEAN_NODES):
            yield from _condition_nodes(child, types)


def _unwrap(text: str) -> str:
    """`((since is null))` -> `since is null`: spans of parenthesised nodes include the parens."""
    while True:
        tokens = list(parser().lex(text))
        if len(tokens) < 3 or tokens[0].type != "LPAR" or tokens[-1].type != "RPAR":
            return text
        depth = 0
        for token in tokens[:-1]:
            depth += {"LPAR": 1, "RPAR": -1}.get(token.type, 0)
            if depth == 0:
                return text  # the first parenthesis closes early: `(a) + (b)`
        text = text[cast(int, tokens[0].end_pos) : tokens[-1].start_pos].strip()


def _condition_sides(py: Python, node: Node) -> tuple[Any, Any]:
    match node:
        case Compare(left=a, right=b):
            return py.operand(a, py.kind(a, b)), py.operand(b, py.kind(a, b))
        case InList(operand=x, items=items):
            left = py.operand(x, py.kind(x, items[0]))
            return left, [py.operand(item, py.kind(x, item)) for item in items]
        case Between(operand=x, low=lo, high=hi):
            bounds = (py.operand(lo, py.kind(x, lo)), py.operand(hi, py.kind(x, hi)))
            return py.operand(x, py.kind(x, lo)), bounds
        case IsNull(operand=x):
            return py.value(x), None
    return py.value(node), True


@dataclass(frozen=True)
class Shortfall:
    """A change to one metric that would help a failing rule hold."""

    name: str
    current: float | None
    target: float
    op: str  # ">=" / ">" for a metric that must go up, "<=" / "<" for one that must go down


def shortfalls(
    rule: Rule,
    values: Mapping[str, Any],
    types: Mapping[str, ValueType],
    aggregates: Mapping[tuple[str, str], float | None],
) -> list[Shortfall] | None:
    """What would make a failing rule hold: ``[]`` if it holds, ``None`` if no simple change does.

    A simple change moves one name that is compared directly with a constant (or aggregate).
    For ``and`` every failing part needs one; for ``or`` the cheapest alternative is chosen
    (fewest changes, then first in source order).
    """
    check_rule(rule, types)
    require_aggregates(rule, aggregates)
    py = Python(values, types, aggregates)
    if py.truth(rule.ast):
        return []
    return _shortfalls_of(py, rule.ast)


def _shortfalls_of(py: Python, node: Node) -> list[Shortfall] | None:
    """Shortfalls of a node known to be false."""
    match node:
        case And(items=items):
            found: list[Shortfall] = []
            for item in items:
                if not py.truth(item):
                    part = _shortfalls_of(py, item)
                    if part is None:
                        return None
                    found = _merge(found, part)
            return found
        case Or(items=items):
            options = [o for o in (_shortfalls_of(py, i) for i in items) if o is not None]
            return min(options, key=len) if options else None  # min keeps the first of ties
        case Compare(op=op, left=a, right=b) if op in ORDERING:
            return _bound(py, op, a, b)
        case Not(operand=Compare(op=op, left=a, right=b)) if op in ORDERING:
            # not (x < 5) is false only when x is known and below 5, so x must reach 5.
            return _bound(py, _NEGATED[op], a, b)
        case Between(operand=x, low=lo, high=hi, negated=False):
            parts = [
                _bound(py, op, x, side)
                for op, side in ((">=", lo), ("<=", hi))
                if not py.compare(op, x, side)
            ]
            if any(part is None for part in parts):
                return None
            return [s for part in parts if part is not None for s in part]
    return None


def _bound(py: Python, op: str, left: Node, right: Node) -> list[Shortfall] | None:
    """`name op constant` (either way round) as a one-item shortfall, else None."""
    if not isinstance(left, Name):
        left, right, op = right, left, _FLIPPED[op]
    if not isinstance(left, Name) or _has_names(right):
        return None
    if py.kind(left, right) != "number":
        return None
    target = py.operand(right, "number")
    if target is None:
        return None  # compared with null: no value of the name can make it hold
    return [Shortfall(left.name, py.operand(left, "number"), target, op)]


def _has_names(node: Node) -> bool:
    return any(isinstance(n, Name) for n in walk(node))


def _merge(found: list[Shortfall], new: list[Shortfall]) -> list[Shortfall]:
    """Add shortfalls, keeping only the stricter of two in the same direction on one name."""
    result = list(found)
    for item in new:
        for i, old in enumerate(result):
            if old.name == item.name and old.op[0] == item.op[0]:
                result[i] = _stricter(old, item)
                break
        else:
            result.append(item)
    return result


def _stricter(a: Shortfall, b: Shortfall) -> Shortfall:
    if a.target != b.target:
        up = a.op[0] == ">"
        return a if (a.target > b.target) == up else b
    return a if len(a.op) == 1 else b  # strict (> or <) beats inclusive at the same target
