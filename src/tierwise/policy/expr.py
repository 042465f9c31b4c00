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

from tierwise.policy.checking import check_rule
from tierwise.policy.conditions import (
    Condition,
    Shortfall,
    conditions,
    deciding_conditions,
    shortfalls,
)
from tierwise.policy.evaluation import evaluate, to_ibis
from tierwise.policy.syntax import (
    GRAMMAR,
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
    parse_rule,
)

__all__ = [
    "GRAMMAR",
    "Aggregate",
    "And",
    "Arith",
    "Between",
    "Bool",
    "Compare",
    "Condition",
    "InList",
    "IsNull",
    "Name",
    "Negate",
    "Node",
    "Not",
    "Number",
    "Or",
    "Rule",
    "Shortfall",
    "String",
    "check_rule",
    "conditions",
    "deciding_conditions",
    "evaluate",
    "parse_rule",
    "shortfalls",
    "to_ibis",
]
