"""Syntax of the rule language: grammar, syntax tree, :func:`parse_rule` and its error messages,
and :func:`number_literal` for numbers such as ``100万`` (policy files use it too)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from decimal import Decimal
from functools import cache
from typing import Any, cast

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken, VisitError

from tierwise.common.vocabulary import AGGREGATES
from tierwise.errors import ExpressionError

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
    "": Decimal(1), "%": Decimal("0.01"), "千": Decimal(1_000), "万": Decimal(10_000),
    "百万": Decimal(1_000_000), "千万": Decimal(10_000_000), "亿": Decimal(100_000_000),
}  # fmt: skip
_NUMBER_RE = re.compile(r"([0-9]+(?:_[0-9]+)*(?:\.[0-9]+(?:_[0-9]+)*)?)(千万|百万|亿|万|千|%)?")
_NUMBER_HINT = "write digits with an optional unit 千, 万, 百万, 千万, 亿 or %, e.g. 100万 or 80%"
# Text that counts as a number when a string is compared with one. Kept narrower than what
# Python's float() or DuckDB's cast accept (no exponents, no inf/nan, ASCII only) so that both
# back ends parse exactly the same set of strings.
NUMERIC_TEXT = r" *[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+) *"

_COMPARISON_OPS = {
    "<": "<", "<=": "<=", ">": ">", ">=": ">=", "=": "=", "==": "=",
    "!=": "!=", "<>": "!=", "≥": ">=", "≤": "<=", "≠": "!=",
}  # fmt: skip
ORDERING = frozenset({"<", "<=", ">", ">="})

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


PREDICATES = (Compare, InList, IsNull, Between)
BOOLEAN_NODES = (*PREDICATES, Not, And, Or)


def children(node: Node) -> tuple[Node, ...]:
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


def walk(node: Node) -> Iterator[Node]:
    """Pre-order, which is source order for the nodes of a rule."""
    yield node
    for child in children(node):
        yield from walk(child)


@dataclass(frozen=True)
class Rule:
    text: str
    ast: Node
    names: frozenset[str]
    aggregates: frozenset[tuple[str, str]]


# --------------------------------------------------------------------------------------------
# Parsing


@cache
def parser() -> Lark:
    # The basic lexer (not the contextual one) so that keywords are keywords everywhere:
    # in `a >= and b` the `and` must be reported, not read as a name.
    return Lark(GRAMMAR, parser="lalr", lexer="basic", maybe_placeholders=False)


def parse_rule(text: str) -> Rule:
    """Parse a rule; raises :class:`ExpressionError` with a 1-based column on bad syntax."""
    if not text.strip():
        raise ExpressionError(
            "empty rule: write a condition such as annual_spend >= 100万", text=text
        )
    _check_size(text)
    try:
        tree = parser().parse(text)
        ast = _Builder(text).transform(tree)
        nodes = list(walk(ast))
    except UnexpectedInput as exc:
        raise _syntax_error(text, exc) from None
    except VisitError as exc:
        if isinstance(exc.orig_exc, ExpressionError):
            raise exc.orig_exc from None
        if isinstance(exc.orig_exc, RecursionError):
            raise _too_deep(text) from None
        raise
    except RecursionError:
        raise _too_deep(text) from None
    aggregates = frozenset((n.func, n.name) for n in nodes if isinstance(n, Aggregate))
    names = frozenset(n.name for n in nodes if isinstance(n, Name))
    return Rule(text, ast, names | {name for _, name in aggregates}, aggregates)


# A rule people write is a line or a few; these bounds keep a pasted or hostile text from
# taking the parser (and the evaluators, which recurse over the tree) down.
MAX_RULE_LENGTH = 4000
MAX_NESTING = 40


def _check_size(text: str) -> None:
    if len(text) > MAX_RULE_LENGTH:
        raise ExpressionError(f"the rule is {len(text):,} characters long: at most "
                              f"{MAX_RULE_LENGTH:,}; split it into named tiers or a scorecard",
                              text=text[:200])
    depth = deepest = 0
    for position, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth > deepest:
            deepest = depth
            if deepest > MAX_NESTING:
                raise ExpressionError(f"parentheses nested more than {MAX_NESTING} deep at "
                                      f"column {position + 1}", text=text[:position + 1],
                                      column=position + 1)


def _too_deep(text: str) -> ExpressionError:
    return ExpressionError("the rule is nested too deeply to read: write it with fewer "
                           "levels (and/or chains, not, parentheses)", text=text[:200])


def number_literal(text: str) -> float:
    """``100万``, ``1.5亿``, ``80%`` or ``1_000_000`` as a float; unsigned (``-`` is an operator).

    Raises ``ValueError`` for anything else."""
    match = _NUMBER_RE.fullmatch(text)
    if match is None:
        raise ValueError(f"invalid number {text!r}: {_NUMBER_HINT}")
    digits, unit = match.group(1).replace("_", ""), match.group(2) or ""
    return float(Decimal(digits) * _UNITS[unit])


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
        try:
            value = number_literal(token)
        except ValueError:
            message = f"invalid number '{token}' at column {_column(token)}: {_NUMBER_HINT}"
            raise self._error(message, token) from None
        return Number(value=value, **_around(token, token))

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
