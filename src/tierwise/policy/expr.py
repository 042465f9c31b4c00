"""The rule expression language of tier policies.

A rule such as ``annual_spend >= 100万 and tenure_years >= 5`` is parsed once (:func:`parse_rule`),
checked against the types of the names it uses (:func:`check_rule`), then either compiled to an
Ibis boolean column (:func:`to_ibis`) or evaluated in Python for one customer (:func:`evaluate`,
:func:`conditions`, :func:`shortfalls`). Both back ends share one interpreter, so they agree.

Null semantics, as documented to users: a comparison involving null is false (so ``not (x > 5)``
is true when ``x`` is null); ``in``/``between`` are comparisons too; arithmetic with null, and
division by zero, give null; ``is null`` tests for it.
"""

from __future__ import annotations

import difflib
import math
import operator
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from functools import cache, lru_cache, reduce
from typing import Any, Generic, TypeVar, cast

import ibis
import ibis.expr.operations as ops
import ibis.expr.types as ir
from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken, VisitError

from tierwise.errors import ExpressionError
from tierwise.vocabulary import AGGREGATES, ValueType

# The grammar lives here rather than in a .lark file: package data is declared for the top
# package only, so a file in this subpackage would be missing from built wheels.
GRAMMAR = r"""
?start: disjunction

?disjunction: conjunction (_OR conjunction)*
?conjunction: negation (_AND negation)*
?negation: NOT negation                          -> not_
         | predicate

// Comparisons do not chain: `a < b < c` is a syntax error rather than a surprise.
?predicate: sum COMP_OP sum                       -> compare
          | sum NOT? IN LSQB items RSQB           -> in_list
          | sum IS NOT? NULL                      -> is_null
          | sum NOT? BETWEEN sum _AND sum         -> between
          | sum

items: constant (COMMA constant)* COMMA?
?constant: NUMBER                                 -> number
         | MINUS NUMBER                           -> negative_number
         | STRING                                 -> string
         | TRUE                                   -> true
         | FALSE                                  -> false

?sum: product
    | sum (PLUS | MINUS) product                  -> arith
?product: unary
        | product (STAR | SLASH) unary            -> arith
?unary: MINUS unary                               -> negate
      | atom
?atom: NUMBER                                     -> number
     | STRING                                     -> string
     | TRUE                                       -> true
     | FALSE                                      -> false
     | NAME                                       -> name
     | QNAME                                      -> name
     | NAME LPAR (NAME | QNAME) RPAR              -> aggregate
     | LPAR disjunction RPAR                      -> paren

// Keywords are case-insensitive whole words; they outrank NAME (use backticks for such names).
_OR.2: /(?i:or)(?!\w)/
_AND.2: /(?i:and)(?!\w)/
NOT.2: /(?i:not)(?!\w)/
IN.2: /(?i:in)(?!\w)/
IS.2: /(?i:is)(?!\w)/
NULL.2: /(?i:null)(?!\w)/
BETWEEN.2: /(?i:between)(?!\w)/
TRUE.2: /(?i:true)(?!\w)/
FALSE.2: /(?i:false)(?!\w)/

// Unicode letters (CJK included), digits and underscore, not starting with a digit.
NAME: /[^\W\d]\w*/
QNAME: /`[^`]*`/
// Deliberately loose (`100元` is one token) so the parser can say "invalid number '100元'".
NUMBER: /[0-9][\w.]*%?/
STRING: /'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"/s
COMP_OP: /<=|>=|<>|!=|==|=|<|>|≥|≤|≠/
PLUS: "+"
MINUS: "-"
STAR: "*"
SLASH: "/"
LPAR: "("
RPAR: ")"
LSQB: "["
RSQB: "]"
COMMA: ","

WS: /\s+/
%ignore WS
"""

_UNITS = {
    "": Decimal(1),
    "%": Decimal("0.01"),
    "千": Decimal(1_000),
    "万": Decimal(10_000),
    "百万": Decimal(1_000_000),
    "千万": Decimal(10_000_000),
    "亿": Decimal(100_000_000),
}
_NUMBER_RE = re.compile(r"([0-9]+(?:_[0-9]+)*(?:\.[0-9]+(?:_[0-9]+)*)?)(千万|百万|亿|万|千|%)?")
# Text that counts as a number when a string is compared with one. Kept narrower than what
# Python's float() or DuckDB's cast accept (no exponents, no inf/nan, ASCII only) so that both
# back ends parse exactly the same set of strings.
_NUMERIC_TEXT = r" *[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+) *"
_NUMERIC_TEXT_RE = re.compile(_NUMERIC_TEXT)
_ISO_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

_COMPARISON_OPS = {
    "<": "<", "<=": "<=", ">": ">", ">=": ">=", "=": "=", "==": "=",
    "!=": "!=", "<>": "!=", "≥": ">=", "≤": "<=", "≠": "!=",
}  # fmt: skip
_ORDERING = frozenset({"<", "<=", ">", ">="})
_FLIPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "=", "!=": "!="}
_NEGATED = {"<": ">=", "<=": ">", ">": "<=", ">=": "<"}
_COMPARE_FUNCS: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt,
    ">=": operator.ge, "=": operator.eq, "!=": operator.ne,
}  # fmt: skip
_IBIS_COMPARISONS: dict[str, type[ops.Comparison]] = {
    "<": ops.Less, "<=": ops.LessEqual, ">": ops.Greater,
    ">=": ops.GreaterEqual, "=": ops.Equals, "!=": ops.NotEquals,
}  # fmt: skip

# --------------------------------------------------------------------------------------------
# Syntax tree. Every node knows its source span [pos, end) so errors and explanations can
# point at, or quote, the text the user wrote.


@dataclass(frozen=True, kw_only=True)
class Node:
    pos: int
    end: int


@dataclass(frozen=True, kw_only=True)
class Number(Node):
    value: float


@dataclass(frozen=True, kw_only=True)
class String(Node):
    value: str


@dataclass(frozen=True, kw_only=True)
class Bool(Node):
    value: bool


@dataclass(frozen=True, kw_only=True)
class Name(Node):
    name: str


@dataclass(frozen=True, kw_only=True)
class Aggregate(Node):
    func: str
    name: str


@dataclass(frozen=True, kw_only=True)
class Negate(Node):
    operand: Node


@dataclass(frozen=True, kw_only=True)
class Arith(Node):
    op: str  # + - * /
    left: Node
    right: Node


@dataclass(frozen=True, kw_only=True)
class Compare(Node):
    op: str  # normalised: < <= > >= = !=
    left: Node
    right: Node


@dataclass(frozen=True, kw_only=True)
class InList(Node):
    operand: Node
    items: tuple[Node, ...]
    negated: bool


@dataclass(frozen=True, kw_only=True)
class IsNull(Node):
    operand: Node
    negated: bool


@dataclass(frozen=True, kw_only=True)
class Between(Node):
    operand: Node
    low: Node
    high: Node
    negated: bool


@dataclass(frozen=True, kw_only=True)
class Not(Node):
    operand: Node


@dataclass(frozen=True, kw_only=True)
class And(Node):
    items: tuple[Node, ...]


@dataclass(frozen=True, kw_only=True)
class Or(Node):
    items: tuple[Node, ...]


_PREDICATES = (Compare, InList, IsNull, Between)
_BOOLEAN_NODES = (*_PREDICATES, Not, And, Or)


def _children(node: Node) -> tuple[Node, ...]:
    match node:
        case Negate(operand=x) | Not(operand=x) | IsNull(operand=x):
            return (x,)
        case Arith(left=a, right=b) | Compare(left=a, right=b):
            return (a, b)
        case InList(operand=x, items=items):
            return (x, *items)
        case Between(operand=x, low=lo, high=hi):
            return (x, lo, hi)
        case And(items=items) | Or(items=items):
            return items
    return ()


def _walk(node: Node) -> Iterator[Node]:
    """Pre-order, which is source order for the nodes of a rule."""
    yield node
    for child in _children(node):
        yield from _walk(child)


@dataclass(frozen=True)
class Rule:
    text: str
    ast: Node
    names: frozenset[str]
    aggregates: frozenset[tuple[str, str]]


# --------------------------------------------------------------------------------------------
# Parsing


@cache
def _parser() -> Lark:
    # The basic lexer (not the contextual one) so that keywords are keywords everywhere:
    # in `a >= and b` the `and` must be reported, not read as a name.
    return Lark(GRAMMAR, parser="lalr", lexer="basic", maybe_placeholders=False)


def parse_rule(text: str) -> Rule:
    """Parse a rule; raises :class:`ExpressionError` with a 1-based column on bad syntax."""
    if not text.strip():
        raise ExpressionError(
            "empty rule: write a condition such as annual_spend >= 100万", text=text
        )
    try:
        tree = _parser().parse(text)
        ast = _Builder(text).transform(tree)
    except UnexpectedInput as exc:
        raise _syntax_error(text, exc) from None
    except VisitError as exc:
        if isinstance(exc.orig_exc, ExpressionError):
            raise exc.orig_exc from None
        raise
    nodes = list(_walk(ast))
    aggregates = frozenset((n.func, n.name) for n in nodes if isinstance(n, Aggregate))
    names = frozenset(n.name for n in nodes if isinstance(n, Name))
    return Rule(text, ast, names | {name for _, name in aggregates}, aggregates)


def _span(item: Node | Token) -> tuple[int, int]:
    if isinstance(item, Token):
        return cast(int, item.start_pos), cast(int, item.end_pos)
    return item.pos, item.end


def _column(token: Token) -> int:
    return cast(int, token.start_pos) + 1


def _around(first: Node | Token, last: Node | Token) -> dict[str, int]:
    return {"pos": _span(first)[0], "end": _span(last)[1]}


class _Builder(Transformer[Token, Node]):
    """Turns lark's parse tree into the frozen nodes above, validating literals on the way."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def _error(self, message: str, token: Token) -> ExpressionError:
        return ExpressionError(message, text=self.text, column=_column(token))

    def number(self, children: list[Token]) -> Node:
        (token,) = children
        match = _NUMBER_RE.fullmatch(token)
        if match is None:
            raise self._error(
                f"invalid number '{token}' at column {_column(token)}: write digits "
                "with an optional unit 千, 万, 百万, 千万, 亿 or %, e.g. 100万 or 80%",
                token,
            )
        digits, unit = match.group(1).replace("_", ""), match.group(2) or ""
        return Number(value=float(Decimal(digits) * _UNITS[unit]), **_around(token, token))

    def negative_number(self, children: list[Any]) -> Node:
        minus, token = children
        number = cast(Number, self.number([token]))
        return Number(value=-number.value, **_around(minus, token))

    def string(self, children: list[Token]) -> Node:
        (token,) = children
        value = re.sub(r"\\(.)", r"\1", token[1:-1], flags=re.S)  # backslash escapes a char
        return String(value=value, **_around(token, token))

    def true(self, children: list[Token]) -> Node:
        return Bool(value=True, **_around(children[0], children[0]))

    def false(self, children: list[Token]) -> Node:
        return Bool(value=False, **_around(children[0], children[0]))

    def _name(self, token: Token) -> str:
        if token.type == "NAME":
            return str(token)
        if len(token) == 2:
            raise self._error(f"empty name `` at column {_column(token)}", token)
        return str(token[1:-1])

    def name(self, children: list[Token]) -> Node:
        (token,) = children
        return Name(name=self._name(token), **_around(token, token))

    def aggregate(self, children: list[Token]) -> Node:
        func, _, arg, rpar = children
        if func.lower() not in AGGREGATES:
            raise self._error(
                f"unknown function '{func}' at column {_column(func)}: "
                f"use one of {', '.join(AGGREGATES)}",
                func,
            )
        return Aggregate(func=func.lower(), name=self._name(arg), **_around(func, rpar))

    def paren(self, children: list[Any]) -> Node:
        lpar, inner, rpar = children
        return replace(inner, **_around(lpar, rpar))  # the span includes the parentheses

    def negate(self, children: list[Any]) -> Node:
        minus, operand = children
        return Negate(operand=operand, **_around(minus, operand))

    def arith(self, children: list[Any]) -> Node:
        left, op, right = children
        return Arith(op=str(op), left=left, right=right, **_around(left, right))

    def compare(self, children: list[Any]) -> Node:
        left, op, right = children
        return Compare(op=_COMPARISON_OPS[op], left=left, right=right, **_around(left, right))

    def items(self, children: list[Any]) -> list[Node]:
        return [c for c in children if isinstance(c, Node)]

    def in_list(self, children: list[Any]) -> Node:
        operand, items, rsqb = children[0], children[-2], children[-1]
        negated = any(isinstance(c, Token) and c.type == "NOT" for c in children)
        return InList(
            operand=operand, items=tuple(items), negated=negated, **_around(operand, rsqb)
        )

    def is_null(self, children: list[Any]) -> Node:
        operand, null = children[0], children[-1]
        return IsNull(operand=operand, negated=len(children) == 4, **_around(operand, null))

    def between(self, children: list[Any]) -> Node:
        operand, low, high = (c for c in children if isinstance(c, Node))
        negated = any(isinstance(c, Token) and c.type == "NOT" for c in children)
        return Between(
            operand=operand, low=low, high=high, negated=negated, **_around(operand, high)
        )

    def not_(self, children: list[Any]) -> Node:
        keyword, operand = children
        return Not(operand=operand, **_around(keyword, operand))

    def conjunction(self, children: list[Node]) -> Node:
        return And(items=tuple(children), **_around(children[0], children[-1]))

    def disjunction(self, children: list[Node]) -> Node:
        return Or(items=tuple(children), **_around(children[0], children[-1]))


# Terminal names translated into words for "expected ..." messages.
_VALUE_STARTS = frozenset({"NUMBER", "STRING", "NAME", "QNAME", "TRUE", "FALSE", "LPAR", "MINUS"})
_OPERATORS = frozenset({"COMP_OP", "PLUS", "MINUS", "STAR", "SLASH"})
_OPERATOR_WORDS = _OPERATORS | {"IN", "IS", "BETWEEN", "NOT"}
_TOKEN_WORDS = {
    "_AND": "'and'", "_OR": "'or'", "NOT": "'not'", "IN": "'in'", "IS": "'is'",
    "BETWEEN": "'between'", "NULL": "'null'", "LPAR": "'('", "RPAR": "')'", "LSQB": "'['",
    "RSQB": "']'", "COMMA": "','", "COMP_OP": "a comparison such as >=",
    "$END": "the end of the rule",
}  # fmt: skip
_CHARACTER_HINTS = {
    "（": "(", "）": ")", "，": ",", "＝": "=", "＞": ">", "＜": "<", "【": "[", "】": "]",
    "“": '"', "”": '"', "‘": "'", "’": "'", "&": "and", "|": "or", "!": "not' or '!=",
}  # fmt: skip


def _syntax_error(text: str, exc: UnexpectedInput) -> ExpressionError:
    if isinstance(exc, UnexpectedCharacters):
        return _bad_character(text, cast(int, exc.pos_in_stream))
    if isinstance(exc, UnexpectedToken):
        if exc.token.type == "$END":
            column, found = len(text.rstrip()) + 1, "end of the rule"
        else:
            column = cast(int, exc.token.start_pos) + 1
            found = exc.token if exc.token.type == "STRING" else f"'{exc.token}'"  # has quotes
        expected = _describe_expected(_acceptable(exc))
        return ExpressionError(
            f"unexpected {found} at column {column}: expected {expected}", text=text, column=column
        )
    return ExpressionError(f"cannot read the rule: {exc}", text=text)  # pragma: no cover


def _acceptable(exc: UnexpectedToken) -> set[str]:
    # LALR's `expected` can list tokens that a merged state allows but this input does not;
    # asking the interactive parser gives the exact set.
    try:
        return set(exc.interactive_parser.accepts())
    except Exception:  # pragma: no cover - older lark without interactive parsers
        return set(exc.expected)


def _describe_expected(accepts: set[str]) -> str:
    phrases: list[str] = []
    rest = set(accepts)
    if "NAME" in accepts:
        phrases.append("a value")
        rest -= _VALUE_STARTS | {"NOT"}
    elif "NUMBER" in accepts:
        phrases.append("a constant (number, 'text', true or false)")
        rest -= _VALUE_STARTS
    if rest & _OPERATORS:  # checked after values, which may start with '-'
        phrases.append("an operator")
        rest -= _OPERATOR_WORDS
    order = list(_TOKEN_WORDS)
    phrases += [_TOKEN_WORDS[t] for t in sorted(rest, key=order.index) if t in _TOKEN_WORDS]
    if len(phrases) <= 1:
        return phrases[0] if phrases else "something else"
    return ", ".join(phrases[:-1]) + " or " + phrases[-1]


def _bad_character(text: str, pos: int) -> ExpressionError:
    char, column = text[pos], pos + 1
    if char in "'\"":
        message = f"unterminated string starting at column {column}: add the closing {char}"
    elif char == "`":
        message = f"unterminated `name` starting at column {column}: add the closing `"
    elif char in _CHARACTER_HINTS:
        message = f"unknown character '{char}' at column {column}: use '{_CHARACTER_HINTS[char]}'"
    else:
        message = f"unknown character {char!r} at column {column}"
    return ExpressionError(message, text=text, column=column)


# --------------------------------------------------------------------------------------------
# Types


def _static_type(node: Node, types: Mapping[str, ValueType]) -> ValueType:
    """The type of a node, assuming the rule has been checked."""
    match node:
        case Number() | Aggregate() | Negate() | Arith():
            return "number"
        case String():
            return "string"
        case Name(name=name):
            return types[name]
    return "boolean"


def _comparison_kind(left: Node, right: Node, types: Mapping[str, ValueType]) -> ValueType:
    """The type both sides of a comparison are brought to (see :class:`_Checker`)."""
    kinds = {_static_type(left, types), _static_type(right, types)}
    if len(kinds) == 1:
        return kinds.pop()
    return "number" if "number" in kinds else "date"


def _parse_number(text: str) -> float | None:
    """A string compared with a number; unparseable text is null."""
    return float(text) if _NUMERIC_TEXT_RE.fullmatch(text) else None


def _parse_date(text: str) -> date | None:
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
        for child in _children(node):
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
        return _static_type(node, self.types)

    def check_name(self, name: str, node: Node) -> None:
        if name in self.types:
            return
        close = difflib.get_close_matches(name, list(self.types), n=1)
        hint = f" — did you mean '{close[0]}'?" if close else ""
        raise self.error(f"unknown name '{name}'{hint}", node)

    def require(self, node: Node, wanted: ValueType, context: str) -> None:
        actual = _static_type(node, self.types)
        if actual != wanted:
            article = "a condition" if wanted == "boolean" else f"a {wanted}"
            raise self.error(
                f"{context} needs {article}, but {self.quote(node)} is a {actual}", node
            )

    def check_comparison(self, op: str, left: Node, right: Node) -> None:
        lt, rt = _static_type(left, self.types), _static_type(right, self.types)
        if lt == rt:
            if lt == "boolean" and op in _ORDERING:
                raise self.error(f"'{op}' cannot order true/false values; use = or !=", left)
            return
        kinds = {lt, rt}
        text_side = right if rt == "string" else left
        if kinds == {"number", "string"}:
            # A string attribute is cast at run time; a string literal must be a number now.
            if isinstance(text_side, String) and _parse_number(text_side.value) is None:
                raise self.error(
                    f"cannot compare a number with the text {self.quote(text_side)}", text_side
                )
            return
        if kinds == {"date", "string"}:
            if not isinstance(text_side, String):
                raise self.error(
                    f"cannot compare a date with the text {self.quote(text_side)}", text_side
                )
            if _parse_date(text_side.value) is None:
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
            f"is a {_static_type(rule.ast, types)}; compare it with something, "
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


# --------------------------------------------------------------------------------------------
# Interpretation: one walk over the tree, two back ends (Python values and Ibis expressions).

T = TypeVar("T")


class _Interpreter(ABC, Generic[T]):
    def __init__(
        self,
        types: Mapping[str, ValueType],
        aggregates: Mapping[tuple[str, str], float | None],
    ) -> None:
        self.types, self.aggregates = types, aggregates

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
                return self.not_(self.truth(x))
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
        return self.compare_values(op, self.operand(left, kind), self.operand(right, kind))

    def kind(self, left: Node, right: Node) -> ValueType:
        return _comparison_kind(left, right, self.types)

    def operand(self, node: Node, kind: ValueType) -> T:
        """A comparison side, converted to the comparison's type."""
        if _static_type(node, self.types) == "string" and kind != "string":
            if isinstance(node, String):  # literals are converted once, here
                if kind == "number":
                    return self.number(_parse_number(node.value))
                return self.date(cast(date, _parse_date(node.value)))
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


class _Python(_Interpreter[Any]):
    """Evaluates a rule for one customer's values."""

    def __init__(
        self,
        values: Mapping[str, Any],
        types: Mapping[str, ValueType],
        aggregates: Mapping[tuple[str, str], float | None],
    ) -> None:
        super().__init__(types, aggregates)
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

    def arith(self, op: str, left: Any, right: Any) -> Any:
        if left is None or right is None or (op == "/" and right == 0):
            return None
        result = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}[
            op
        ](left, right)
        return None if math.isnan(result) else result

    def to_number(self, text: Any) -> Any:
        return None if text is None else _parse_number(text)

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
        return _parse_number(value) if isinstance(value, str) else _finite_or_none(value)
    if type_ == "date":
        if isinstance(value, datetime):
            return value.date()
        return _parse_date(value) if isinstance(value, str) else value
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
    ) -> None:
        super().__init__(types, aggregates)
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
            (s.re_search(f"^{_NUMERIC_TEXT}$"), s.try_cast("float64")),
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


def _nan_to_null(value: ir.Value) -> ir.Value:
    return value.nullif(ibis.literal(math.nan, type="float64"))


def _require_aggregates(rule: Rule, aggregates: Mapping[tuple[str, str], float | None]) -> None:
    missing = sorted(rule.aggregates - set(aggregates))
    if missing:
        wanted = ", ".join(f"{func}({name})" for func, name in missing)
        raise ExpressionError(f"no value was computed for {wanted}", text=rule.text)


def to_ibis(
    rule: Rule,
    table: ir.Table,
    types: Mapping[str, ValueType],
    aggregates: Mapping[tuple[str, str], float | None],
) -> ir.BooleanValue:
    """The rule as a boolean column over ``table`` (one row per customer); never null."""
    check_rule(rule, types)
    _require_aggregates(rule, aggregates)
    return cast(ir.BooleanValue, _Ibis(table, types, aggregates).truth(rule.ast))


def evaluate(
    rule: Rule,
    values: Mapping[str, Any],
    types: Mapping[str, ValueType],
    aggregates: Mapping[tuple[str, str], float | None],
) -> bool:
    """Whether the rule holds for one customer; agrees with :func:`to_ibis`.

    ``values`` maps names to numbers, strings, ``datetime.date`` or bools; a missing name,
    ``None`` or NaN is null.
    """
    check_rule(rule, types)
    _require_aggregates(rule, aggregates)
    return bool(_Python(values, types, aggregates).truth(rule.ast))


# --------------------------------------------------------------------------------------------
# Explanations


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
    _require_aggregates(rule, aggregates)
    py = _Python(values, types, aggregates)
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
    _require_aggregates(rule, aggregates)
    py = _Python(values, types, aggregates)
    return [_condition(rule, py, node) for node in _deciding_nodes(rule.ast, py, types)]


def _deciding_nodes(node: Node, py: _Python, types: Mapping[str, ValueType]) -> Iterator[Node]:
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


def _condition(rule: Rule, py: _Python, node: Node) -> Condition:
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
    if isinstance(node, _PREDICATES):
        yield node
    elif not isinstance(node, _BOOLEAN_NODES):
        if _static_type(node, types) == "boolean":
            yield node
        return  # no conditions inside arithmetic
    for child in _children(node):
        if isinstance(node, (Not, And, Or)) or isinstance(child, _BOOLEAN_NODES):
            yield from _condition_nodes(child, types)


def _unwrap(text: str) -> str:
    """`((since is null))` -> `since is null`: spans of parenthesised nodes include the parens."""
    while True:
        tokens = list(_parser().lex(text))
        if len(tokens) < 3 or tokens[0].type != "LPAR" or tokens[-1].type != "RPAR":
            return text
        depth = 0
        for token in tokens[:-1]:
            depth += {"LPAR": 1, "RPAR": -1}.get(token.type, 0)
            if depth == 0:
                return text  # the first parenthesis closes early: `(a) + (b)`
        text = text[cast(int, tokens[0].end_pos) : tokens[-1].start_pos].strip()


def _condition_sides(py: _Python, node: Node) -> tuple[Any, Any]:
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
    _require_aggregates(rule, aggregates)
    py = _Python(values, types, aggregates)
    if py.truth(rule.ast):
        return []
    return _shortfalls_of(py, rule.ast)


def _shortfalls_of(py: _Python, node: Node) -> list[Shortfall] | None:
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
        case Compare(op=op, left=a, right=b) if op in _ORDERING:
            return _bound(py, op, a, b)
        case Not(operand=Compare(op=op, left=a, right=b)) if op in _ORDERING:
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


def _bound(py: _Python, op: str, left: Node, right: Node) -> list[Shortfall] | None:
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
    return any(isinstance(n, Name) for n in _walk(node))


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
