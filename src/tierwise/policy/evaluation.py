"""The interpreter of rules: one walk over the tree, two back ends.

:class:`Python` evaluates a rule for one customer's values (:func:`evaluate`); :class:`_Ibis`
compiles it to a boolean column (:func:`to_ibis`). Sharing the walk is what makes them agree.
"""

from __future__ import annotations

import math
import operator
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from functools import reduce
from typing import Any, Generic, TypeVar, cast

import ibis
import ibis.expr.operations as ops
import ibis.expr.types as ir

from tierwise.common.vocabulary import ValueType
from tierwise.errors import ExpressionError
from tierwise.policy.checking import (
    check_rule,
    comparison_kind,
    parse_date,
    parse_number,
    static_type,
)
from tierwise.policy.syntax import (
    NUMERIC_TEXT,
    ORDERING,
    Aggregate,
    And,
    Arith,
    Between,
    Bool,
    Compare,
    InList,
    IsNull,
    Name,
    Negate,
    Node,
    Not,
    Number,
    Or,
    Rule,
    String,
    walk,
)

_COMPARE_FUNCS: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt,
    ">=": operator.ge, "=": operator.eq, "!=": operator.ne,
}  # fmt: skip
_IBIS_COMPARISONS: dict[str, type[ops.Comparison]] = {
    "<": ops.Less, "<=": ops.LessEqual, ">": ops.Greater,
    ">=": ops.GreaterEqual, "=": ops.Equals, "!=": ops.NotEquals,
}  # fmt: skip

T = TypeVar("T")


class _Interpreter(ABC, Generic[T]):
    def __init__(
        self,
        types: Mapping[str, ValueType],
        aggregates: Mapping[tuple[str, str], float | None],
        loosen_by: float = 0.0,
    ) -> None:
        self.types, self.aggregates = types, aggregates
        # > 0: every number threshold is that fraction easier to meet (see `loosen`).
        self.loosen_by = loosen_by

    # -- shared semantics --------------------------------------------------------------------

    def truth(self, node: Node) -> T:
        """A two-valued (never null) condition."""
        match node:
            case Compare(op=op, left=a, right=b):
                return self.compare(op, a, b)
            case InList(operand=x, items=items, negated=False):
                return self.any_([self.compare("=", x, item) for item in items])
            case InList(operand=x, items=items, negated=True):
                return self.all_([self.compare("!=", x, item) for item in items])
            case Between(operand=x, low=lo, high=hi, negated=False):
                return self.all_([self.compare(">=", x, lo), self.compare("<=", x, hi)])
            case Between(operand=x, low=lo, high=hi, negated=True):
                return self.any_([self.compare("<", x, lo), self.compare(">", x, hi)])
            case IsNull(operand=x, negated=negated):
                test = self.is_null(self.value(x))
                return self.not_(test) if negated else test
            case Not(operand=x):
                # Loosening what is negated would make the whole stricter: flip it inside.
                self.loosen_by = -self.loosen_by
                try:
                    return self.not_(self.truth(x))
                finally:
                    self.loosen_by = -self.loosen_by
            case And(items=items):
                return self.all_([self.truth(item) for item in items])
            case Or(items=items):
                return self.any_([self.truth(item) for item in items])
        return self.is_true(self.value(node))  # a boolean name or literal used as a condition

    def value(self, node: Node) -> T:
        match node:
            case Number(value=v):
                return self.number(v)
            case String(value=v):
                return self.string(v)
            case Bool(value=v):
                return self.boolean(v)
            case Name(name=name):
                return self.column(name, self.types[name])
            case Aggregate(func=func, name=name):
                return self.number(_finite_or_none(self.aggregates[func, name]))
            case Negate(operand=x):
                return self.negate(self.value(x))
            case Arith(op=op, left=a, right=b):
                return self.arith(op, self.value(a), self.value(b))
        return self.truth(node)

    def compare(self, op: str, left: Node, right: Node) -> T:
        kind = self.kind(left, right)
        a, b = self.operand(left, kind), self.operand(right, kind)
        if self.loosen_by and kind == "number" and op in ORDERING:
            left_fixed, right_fixed = _is_constant(left), _is_constant(right)
            if right_fixed and not left_fixed:
                b = self.loosen(b, op)
            elif left_fixed and not right_fixed:
                a = self.loosen(a, _FLIPPED[op])
        return self.compare_values(op, a, b)

    def loosen(self, threshold: T, op: str) -> T:
        """`x >= t` becomes `x >= t - f·|t|` and `x <= t` becomes `x <= t + f·|t|`: a
        customer within the fraction f of a threshold passes it (upgrade candidates)."""
        step = self.arith("*", self.number(abs(self.loosen_by)), self.abs_(threshold))
        easier = "-" if op in (">", ">=") else "+"
        if self.loosen_by < 0:
            easier = "+" if easier == "-" else "-"
        return self.arith(easier, threshold, step)

    def kind(self, left: Node, right: Node) -> ValueType:
        return comparison_kind(left, right, self.types)

    def operand(self, node: Node, kind: ValueType) -> T:
        """A comparison side, converted to the comparison's type."""
        if static_type(node, self.types) == "string" and kind != "string":
            if isinstance(node, String):  # literals are converted once, here
                if kind == "number":
                    return self.number(parse_number(node.value))
                return self.date(cast(date, parse_date(node.value)))
            return self.to_number(self.value(node))
        return self.value(node)

    # -- back-end primitives -----------------------------------------------------------------

    @abstractmethod
    def number(self, value: float | None) -> T: ...
    @abstractmethod
    def string(self, value: str) -> T: ...
    @abstractmethod
    def boolean(self, value: bool) -> T: ...
    @abstractmethod
    def date(self, value: date) -> T: ...
    @abstractmethod
    def column(self, name: str, type_: ValueType) -> T: ...
    @abstractmethod
    def negate(self, value: T) -> T: ...
    @abstractmethod
    def abs_(self, value: T) -> T: ...
    @abstractmethod
    def arith(self, op: str, left: T, right: T) -> T: ...
    @abstractmethod
    def to_number(self, text: T) -> T: ...
    @abstractmethod
    def compare_values(self, op: str, left: T, right: T) -> T: ...
    @abstractmethod
    def is_null(self, value: T) -> T: ...
    @abstractmethod
    def is_true(self, value: T) -> T: ...
    @abstractmethod
    def not_(self, value: T) -> T: ...
    @abstractmethod
    def all_(self, values: Sequence[T]) -> T: ...
    @abstractmethod
    def any_(self, values: Sequence[T]) -> T: ...


def _finite_or_none(value: Any) -> float | None:
    """Numbers as floats, with NaN as null (DuckDB orders NaN above everything; we don't)."""
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return None
    number = float(value)
    return None if math.isnan(number) else number


class Python(_Interpreter[Any]):
    """Evaluates a rule for one customer's values."""

    def __init__(
        self,
        values: Mapping[str, Any],
        types: Mapping[str, ValueType],
        aggregates: Mapping[tuple[str, str], float | None],
        loosen_by: float = 0.0,
    ) -> None:
        super().__init__(types, aggregates, loosen_by)
        self.values = values

    def number(self, value: float | None) -> Any:
        return value

    def string(self, value: str) -> Any:
        return value

    def boolean(self, value: bool) -> Any:
        return value

    def date(self, value: date) -> Any:
        return value

    def column(self, name: str, type_: ValueType) -> Any:
        return _normalise(self.values.get(name), type_)

    def negate(self, value: Any) -> Any:
        return None if value is None else -value

    def abs_(self, value: Any) -> Any:
        return None if value is None else abs(value)

    def arith(self, op: str, left: Any, right: Any) -> Any:
        if left is None or right is None or (op == "/" and right == 0):
            return None
        result = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}[
            op
        ](left, right)
        return None if math.isnan(result) else result

    def to_number(self, text: Any) -> Any:
        return None if text is None else parse_number(text)

    def compare_values(self, op: str, left: Any, right: Any) -> Any:
        if left is None or right is None:
            return False
        return bool(_COMPARE_FUNCS[op](left, right))

    def is_null(self, value: Any) -> Any:
        return value is None

    def is_true(self, value: Any) -> Any:
        return value is True

    def not_(self, value: Any) -> Any:
        return not value

    def all_(self, values: Sequence[Any]) -> Any:
        return all(values)

    def any_(self, values: Sequence[Any]) -> Any:
        return any(values)


def _normalise(value: Any, type_: ValueType) -> Any:
    """A customer's value as the rule sees it: floats, str, date, bool, or None for null."""
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return None
    if type_ == "number":
        return parse_number(value) if isinstance(value, str) else _finite_or_none(value)
    if type_ == "date":
        if isinstance(value, datetime):
            return value.date()
        return parse_date(value) if isinstance(value, str) else value
    if type_ == "boolean":
        return bool(value)
    if isinstance(value, float) and math.isnan(value):
        return None
    return value if isinstance(value, str) else str(value)


class _Ibis(_Interpreter[ir.Value]):
    """Compiles a rule to an Ibis expression over a table with one row per customer."""

    def __init__(
        self,
        table: ir.Table,
        types: Mapping[str, ValueType],
        aggregates: Mapping[tuple[str, str], float | None],
        loosen_by: float = 0.0,
    ) -> None:
        super().__init__(types, aggregates, loosen_by)
        self.table = table

    def number(self, value: float | None) -> ir.Value:
        if value is None:
            return ibis.null("float64")
        # Ibis writes float literals bare, and DuckDB reads `2.5` as a DECIMAL, whose exact
        # arithmetic differs from Python's floats. A cast from the round-tripping repr keeps
        # the literal a DOUBLE with exactly the Python value.
        return ibis.literal(repr(value)).cast("float64")

    def string(self, value: str) -> ir.Value:
        return ibis.literal(value, type="string")

    def boolean(self, value: bool) -> ir.Value:
        return ibis.literal(value, type="boolean")

    def date(self, value: date) -> ir.Value:
        return ibis.literal(value, type="date")

    def column(self, name: str, type_: ValueType) -> ir.Value:
        col = self.table[name]
        if type_ == "number":
            if col.type().is_string():
                return self.to_number(col)
            return _nan_to_null(col.cast("float64"))
        if type_ == "date" and col.type().is_timestamp():
            return cast(ir.TimestampValue, col).date()
        return col

    def negate(self, value: ir.Value) -> ir.Value:
        return -cast(ir.NumericValue, value)

    def abs_(self, value: ir.Value) -> ir.Value:
        return cast(ir.NumericValue, value).abs()

    def arith(self, op: str, left: ir.Value, right: ir.Value) -> ir.Value:
        a, b = cast(ir.NumericValue, left), cast(ir.NumericValue, right)
        if op == "/":
            b = cast(ir.NumericValue, b.nullif(0))  # division by zero is null, not inf
        result = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}[
            op
        ](a, b)
        return _nan_to_null(result)

    def to_number(self, text: ir.Value) -> ir.Value:
        # The same pattern as the Python side, so both accept exactly the same strings.
        s = cast(ir.StringValue, text)
        return ibis.cases(
            (s.re_search(f"^{NUMERIC_TEXT}$"), s.try_cast("float64")),
            else_=ibis.null("float64"),
        )

    def compare_values(self, op: str, left: ir.Value, right: ir.Value) -> ir.Value:
        # Built from the operation classes because Ibis's `==` turns `x == NULL` into
        # `x IS NULL`, which would make `s1 = mean(n1)` true when both are null.
        comparison = _IBIS_COMPARISONS[op](left, right).to_expr()
        return cast(ir.BooleanValue, comparison).fill_null(False)

    def is_null(self, value: ir.Value) -> ir.Value:
        return value.isnull()

    def is_true(self, value: ir.Value) -> ir.Value:
        return cast(ir.BooleanValue, value).fill_null(False)

    def not_(self, value: ir.Value) -> ir.Value:
        return ~cast(ir.BooleanValue, value)

    def all_(self, values: Sequence[ir.Value]) -> ir.Value:
        return reduce(operator.and_, values)

    def any_(self, values: Sequence[ir.Value]) -> ir.Value:
        return reduce(operator.or_, values)


_FLIPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}


def _is_constant(node: Node) -> bool:
    """No name in it: a number, an aggregate or arithmetic of those (a threshold)."""
    return not any(isinstance(n, Name) for n in walk(node))


def _nan_to_null(value: ir.Value) -> ir.Value:
    return value.nullif(ibis.literal(math.nan, type="float64"))


def require_aggregates(rule: Rule, aggregates: Mapping[tuple[str, str], float | None]) -> None:
    missing = sorted(rule.aggregates - set(aggregates))
    if missing:
        wanted = ", ".join(f"{func}({name})" for func, name in missing)
        raise ExpressionError(f"no value was computed for {wanted}", text=rule.text)


def to_ibis(
    rule: Rule,
    table: ir.Table,
    types: Mapping[str, ValueType],
    aggregates: Mapping[tuple[str, str], float | None],
    *,
    loosen_by: float = 0.0,
) -> ir.BooleanValue:
    """The rule as a boolean column over ``table`` (one row per customer); never null.

    ``loosen_by`` f > 0 makes every comparison of a number with a threshold the fraction f
    easier (``annual_spend >= 100000`` holds from 90,000 with f = 0.1)."""
    check_rule(rule, types)
    require_aggregates(rule, aggregates)
    compiler = _Ibis(table, types, aggregates, loosen_by)
    return cast(ir.BooleanValue, compiler.truth(rule.ast))


def evaluate(
    rule: Rule,
    values: Mapping[str, Any],
    types: Mapping[str, ValueType],
    aggregates: Mapping[tuple[str, str], float | None],
    *,
    loosen_by: float = 0.0,
) -> bool:
    """Whether the rule holds for one customer; agrees with :func:`to_ibis`.

    ``values`` maps names to numbers, strings, ``datetime.date`` or bools; a missing name,
    ``None`` or NaN is null.
    """
    check_rule(rule, types)
    require_aggregates(rule, aggregates)
    return bool(Python(values, types, aggregates, loosen_by).truth(rule.ast))


def near_misses(
    rule: Rule,
    table: ir.Table,
    types: Mapping[str, ValueType],
    aggregates: Mapping[tuple[str, str], float | None],
    *,
    loosen_by: float,
) -> ir.StringValue:
    """Per row, the thresholds of ``rule`` a customer misses by less than ``loosen_by``:
    ``name:value:op:threshold`` items joined by ``;`` (empty when none), where a threshold is
    compared directly with a name (``annual_spend >= 100000``, ``score > p80(score)``)."""
    check_rule(rule, types)
    require_aggregates(rule, aggregates)
    exact = _Ibis(table, types, aggregates)
    loose = _Ibis(table, types, aggregates, loosen_by)
    items: list[ir.StringValue] = []
    for node in walk(rule.ast):
        if not (isinstance(node, Compare) and node.op in ORDERING):
            continue
        name, op, threshold = _name_and_threshold(node)
        if name is None or exact.kind(node.left, node.right) != "number":
            continue
        value = cast(ir.NumericValue, exact.value(name))
        bar = cast(ir.NumericValue, exact.operand(threshold, "number"))
        missed = ~cast(ir.BooleanValue, exact.compare(node.op, node.left, node.right)) & cast(
            ir.BooleanValue, loose.compare(node.op, node.left, node.right))
        text = (ibis.literal(f"{name.name}:") + value.round(2).cast("string")
                + ibis.literal(f":{op}:") + bar.round(2).cast("string"))
        items.append(cast(ir.StringValue, ibis.cases((missed, text), else_=ibis.null("string"))))
    if not items:
        return cast(ir.StringValue, ibis.literal("", type="string"))
    # concat_ws skips nulls: only the missed thresholds are listed.
    return cast(ir.StringValue, ibis.literal(";").join(items)).fill_null("")


def _name_and_threshold(node: Compare) -> tuple[Name | None, str, Node]:
    """`name op threshold`, turned round when written `threshold op name`."""
    if isinstance(node.left, Name) and _is_constant(node.right):
        return node.left, node.op, node.right
    if isinstance(node.right, Name) and _is_constant(node.left):
        return node.right, _FLIPPED[node.op], node.left
    return None, node.op, node.right
