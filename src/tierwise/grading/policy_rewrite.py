"""Writing a calibrated policy back: the policy YAML text with each moved number replaced
where it stands and a comment above each changed rule, every other character kept. Used by
:mod:`tierwise.grading.calibration`."""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Mapping, Sequence

from ruamel.yaml import YAML
from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode
from ruamel.yaml.nodes import Node as YamlNode

from tierwise.grading.rule_thresholds import CalibrationError, _Outcome, _Plan
from tierwise.policy.model import Policy

_CALIBRATED_COMMENT = re.compile(r"[ \t]*# calibrated .*(?:\r?\n)")


# ---------------------------------------------------------------------------------------
# Writing the policy back


def rewrite_policy(text: str, policy: Policy, plans: Mapping[str, _Plan],
                   outcomes: Mapping[str, _Outcome], *,
                   comment: Callable[[str], str]) -> str:
    """The policy YAML with each moved number replaced where it stands, and a comment line
    above each changed `when:`; every other character is kept (comments, quotes, layout).

    The YAML node of each `when` gives the scalar's place in the file. Within it, a number
    is found as the same occurrence of the same token as in the rule text: tokens hold no
    spaces or quotes, so line folding and quoting cannot split or fake one. The result is
    read back and compared with the intended rules, so a surprise is an error, not a file
    that says something else.
    """
    root = YAML(typ="rt").compose(io.StringIO(text))
    items = _tier_nodes(root)
    newline = "\r\n" if "\r\n" in text else "\n"
    edits: list[tuple[int, int, str]] = []
    expected: dict[int, str] = {}
    for index, tier in enumerate(policy.tiers):
        plan, outcome = plans.get(tier.key), outcomes.get(tier.key)
        if plan is None or outcome is None or plan.literals(outcome.values) == plan.old_literals:
            continue
        key_node, value_node = _entry(items[index], "when")
        start = value_node.start_mark.index
        scalar = text[start:value_node.end_mark.index]
        for threshold, literal in zip(plan.thresholds, plan.literals(outcome.values),
                                      strict=True):
            token = plan.rule.text[threshold.pos:threshold.end]
            nth = _occurrences(plan.rule.text, token).index(threshold.pos)
            found = _occurrences(scalar, token)
            if nth >= len(found):
                raise CalibrationError(f"cannot find {token!r} in the `when` of tier "
                                       f"{tier.key!r}; edit the policy by hand")
            edits.append((start + found[nth], start + found[nth] + len(token), literal))
        edits.append(_comment_edit(text, key_node, comment(tier.key), newline))
        expected[index] = plan.text(outcome.values)
    result = _apply(text, edits)
    _verify(result, expected)
    return result


def _tier_nodes(root: YamlNode | None) -> list[YamlNode]:
    tiers = _entry(root, "tiers")[1] if isinstance(root, MappingNode) else None
    if not isinstance(tiers, SequenceNode):  # pragma: no cover - the policy loaded already
        raise CalibrationError("the policy has no list of tiers to rewrite")
    return list(tiers.value)


def _entry(mapping: YamlNode, key: str) -> tuple[YamlNode, YamlNode]:
    if isinstance(mapping, MappingNode):
        for key_node, value_node in mapping.value:
            if isinstance(key_node, ScalarNode) and key_node.value == key:
                return key_node, value_node
    raise CalibrationError(f"cannot find '{key}' in the policy YAML; edit it by hand")


def _occurrences(text: str, token: str) -> list[int]:
    positions, at = [], text.find(token)
    while at >= 0:
        positions.append(at)
        at = text.find(token, at + 1)
    return positions


def _comment_edit(text: str, key_node: YamlNode, comment: str,
                  newline: str) -> tuple[int, int, str]:
    """A comment line above the line of `when:`, replacing an earlier calibration's."""
    line_start = text.rfind("\n", 0, key_node.start_mark.index) + 1
    line = text[line_start:key_node.start_mark.index]
    # Aligned with `when:` when it starts a block mapping item (`- when: …`), else with the
    # line (a flow mapping `- {key: …, when: …}` on one line).
    indent = re.match(r"[ \t]*(?:-[ \t]+)?", line)
    width = len(indent.group(0)) if indent else 0
    if width < len(line):
        width = len(line) - len(line.lstrip(" \t"))
    start = line_start
    while start > 0:  # earlier "# calibrated …" lines just above go
        previous = text.rfind("\n", 0, start - 1) + 1
        if not _CALIBRATED_COMMENT.fullmatch(text[previous:start]):
            break
        start = previous
    return start, line_start, " " * width + comment + newline


def _apply(text: str, edits: Sequence[tuple[int, int, str]]) -> str:
    pieces, at = [], 0
    for start, end, replacement in sorted(edits, key=lambda e: (e[0], e[1])):
        pieces += [text[at:start], replacement]
        at = end
    return "".join(pieces) + text[at:]


def _verify(text: str, expected: Mapping[int, str]) -> None:
    data = YAML(typ="rt").load(io.StringIO(text))
    for index, rule in expected.items():
        written = data["tiers"][index].get("when")
        if written != rule:
            raise CalibrationError(f"rewriting the rule of tier {index + 1} gave {written!r} "
                                   f"instead of {rule!r}; edit the policy by hand")
