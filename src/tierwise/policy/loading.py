"""Read a policy from YAML and validate it, with errors that name the line and the field."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from tierwise.common.vocabulary import CUSTOMER_FIELDS, METRICS, ValueType
from tierwise.errors import ExpressionError, PolicyError
from tierwise.policy.expr import check_rule, parse_rule
from tierwise.policy.model import Policy


def load_policy_text(
    text: str,
    *,
    source: str = "<policy>",
    attributes: Sequence[str] | None = None,
    check: bool = True,
) -> Policy:
    """Parse and validate policy YAML; raise PolicyError listing every problem with its line.

    check=False skips type-checking rule names (for stored runs, whose policy was checked
    against the data it graded).
    """
    data = _read_yaml(text, source)
    try:
        policy = Policy.model_validate(_plain(data))
    except ValidationError as error:
        problems = [_describe(e, data) for e in error.errors()]
        if check:  # the rules can be checked even when other parts of the file are wrong
            problems += _rule_problems(data, attributes)
        raise PolicyError(problems, source=source) from None
    problems = check_policy(policy, attributes=attributes, data=data) if check else []
    if problems:
        raise PolicyError(problems, source=source)
    return policy


def load_policy_file(path: Path, *, attributes: Sequence[str] | None = None) -> Policy:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError([f"file not found: {path}"], source=str(path)) from None
    except UnicodeDecodeError:
        raise PolicyError(["policy files must be UTF-8 text"], source=str(path)) from None
    return load_policy_text(text, source=str(path), attributes=attributes)


def name_types(
    policy: Policy | None = None, attributes: Sequence[str] | None = None
) -> dict[str, ValueType]:
    """Every name a rule may use: metrics, customer fields and attributes, scores."""
    types: dict[str, ValueType] = {name: m.type for name, m in METRICS.items()}
    types.update({name: spec[0] for name, spec in CUSTOMER_FIELDS.items()})
    for attribute in attributes or ():
        types.setdefault(attribute, "string")
    if policy is not None:
        types.update(dict.fromkeys(policy.score_names, "number"))
    return types


def check_policy(
    policy: Policy, *, attributes: Sequence[str] | None = None, data: Any = None
) -> list[str]:
    """Type-check every rule and scorecard metric; return problems as 'line N: field: msg'."""
    problems = _rule_problems(data if data is not None else policy.model_dump(), attributes,
                              policy.score_names)
    types = name_types(policy, attributes)
    if policy.scorecard is not None:
        for d_index, dimension in enumerate(policy.scorecard.dimensions):
            for f_index, factor in enumerate(dimension.factors):
                loc = ("scorecard", "dimensions", d_index, "factors", f_index, "metric")
                if factor.metric not in types or factor.metric in policy.score_names:
                    problems.append(
                        f"{_where(data, loc)}{_dotted(loc)}: unknown metric {factor.metric!r}"
                    )
                elif factor.map is None and types[factor.metric] != "number":
                    problems.append(
                        f"{_where(data, loc)}{_dotted(loc)}: {factor.metric!r} is "
                        "not a number; score it with 'map'"
                    )
    return problems


def _rule_problems(data: Any, attributes: Sequence[str] | None,
                   score_names: Sequence[str] | None = None) -> list[str]:
    """Parse and type-check every tier's `when` straight from the YAML data."""
    tiers = data.get("tiers") if isinstance(data, Mapping) else None
    if not isinstance(tiers, list):
        return []
    if score_names is None:
        score_names = _raw_score_names(data)
    types = name_types(None, attributes)
    types.update(dict.fromkeys(score_names, "number"))
    problems = []
    for index, tier in enumerate(tiers):
        when = tier.get("when") if isinstance(tier, Mapping) else None
        if not isinstance(when, str):
            continue
        try:
            check_rule(parse_rule(when), types)
        except ExpressionError as error:
            key = tier.get("key", index)
            where = _where(data, ("tiers", index, "when"))
            problems.append(f"{where}tiers[{index}] ({key}).when: {error}")
    return problems


def _raw_score_names(data: Mapping[str, Any]) -> list[str]:
    card = data.get("scorecard")
    dimensions = card.get("dimensions") if isinstance(card, Mapping) else None
    if not isinstance(dimensions, list):
        return []
    keys = [d.get("key") for d in dimensions if isinstance(d, Mapping)]
    return ["score", *(f"{k}_score" for k in keys if isinstance(k, str))]


def _read_yaml(text: str, source: str) -> Any:
    try:
        data = YAML(typ="rt").load(io.StringIO(text))
    except MarkedYAMLError as error:
        mark = error.problem_mark
        line = f"line {mark.line + 1}: " if mark is not None else ""
        raise PolicyError([f"{line}not valid YAML: {error.problem}"], source=source) from None
    except YAMLError as error:      # e.g. a control character: ReaderError names its place
        raise PolicyError([f"not valid YAML: {error}"], source=source) from None
    if not isinstance(data, Mapping):
        raise PolicyError(
            ["a policy is a YAML mapping with at least 'name' and 'tiers'"], source=source
        )
    return data


def _plain(value: Any) -> Any:
    """ruamel's commented containers as plain dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _describe(error: Any, data: Any) -> str:
    loc = tuple(part for part in error["loc"] if not str(part).startswith("function-after"))
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown field (check the spelling)"
    elif error["type"] == "missing":
        message = "required field is missing"
    return f"{_where(data, loc)}{_dotted(loc) or 'policy'}: {message}"


def _dotted(loc: Sequence[Any]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _where(data: Any, loc: Sequence[Any]) -> str:  # data: ruamel containers with .lc
    """'line N: ' for the deepest part of loc that exists in the YAML, else ''."""
    line: int | None = None
    node = data
    for part in loc:
        try:
            if isinstance(node, Mapping) and part in node:
                line = node.lc.key(part)[0]  # type: ignore[attr-defined]
                node = node[part]
            elif isinstance(node, list) and isinstance(part, int) and part < len(node):
                line = node.lc.item(part)[0]  # type: ignore[attr-defined]
                node = node[part]
            else:
                break
        except (AttributeError, KeyError, TypeError):
            break
    return f"line {line + 1}: " if line is not None else ""
