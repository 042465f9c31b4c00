"""The house: one package per stage of the flow, and imports only go down it.

Data flows sources → canonical tables → metrics → policy → grading run → changes/overrides
→ work → reports/UI/API. Each stage is a package of src/tierwise; a module may import its
own package and the stages below it, never one above (that would make the lower stage
depend on what is built on it), and no two modules may import each other, directly or in a
ring. Imports inside functions count too: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "tierwise"

# Bottom to top. Stages on one line are peers and may not import each other.
LAYERS: list[tuple[str, ...]] = [
    ("errors",),
    ("common",),
    ("appdb",),
    ("data",),
    ("policy",),
    ("metrics",),
    ("record",),
    ("grading",),
    ("work",),
    ("reports",),
    ("workspace",),
    ("api", "demo"),
    ("web",),
    ("cli",),
    ("__main__",),
]
RANK = {stage: rank for rank, stages in enumerate(LAYERS) for stage in stages}
MAX_TOP_LEVEL_MODULES = 8
MAX_LINES = 700


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in SRC.rglob("*.py") if "migrations" not in p.parts}


def stage_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def imported(path: Path, known: set[str]) -> Iterator[tuple[int, str]]:
    """(line, module) for every tierwise module the file imports, wherever the import is."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("tierwise."):
                    yield node.lineno, alias.name
        elif (isinstance(node, ast.ImportFrom) and node.module and node.level == 0
              and (node.module == "tierwise" or node.module.startswith("tierwise."))):
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                yield node.lineno, child if child in known else node.module


def test_every_stage_is_placed_in_the_flow() -> None:
    stages = {stage_of(m) for m in modules()} - {None, "__init__"}
    assert stages - set(RANK) == set(), "add the new stage to LAYERS in its place in the flow"


def test_no_module_imports_a_stage_above_it_or_a_peer() -> None:
    found = modules()
    upward = []
    for name, path in found.items():
        own = stage_of(name)
        if own is None:
            continue
        for line, target in imported(path, set(found)):
            other = stage_of(target)
            if other is None or other == own:
                continue
            if RANK[other] >= RANK[own]:
                upward.append(f"{path.relative_to(SRC.parent)}:{line} {name} -> {target}")
    assert upward == []


def test_there_is_no_import_cycle() -> None:
    found = modules()
    graph = {name: {t for _, t in imported(path, set(found)) if t in found and t != name}
             for name, path in found.items()}
    # A package's __init__ that re-exports its modules is not a cycle with them.
    for name in graph:
        graph[name] = {t for t in graph[name] if not name.startswith(t + ".")}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert cycles == []


def test_the_top_level_holds_few_modules_and_no_file_is_long() -> None:
    top = sorted(p.name for p in SRC.glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top
    long = {str(p.relative_to(SRC.parent)): n for p in SRC.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


@pytest.mark.parametrize("source", [
    "from tierwise.web.rest import router\n",
    "import tierwise.workspace.handle\n",
    "def f():\n    from tierwise.cli import main\n",
])
def test_an_upward_import_is_caught(tmp_path: Path, source: str) -> None:
    """The walk sees plain, dotted and function-level imports (the test can fail)."""
    probe = tmp_path / "probe.py"
    probe.write_text(source, encoding="utf-8")
    targets = [t for _, t in imported(probe, set(modules()))]
    assert targets and all(RANK[stage_of(t) or ""] > RANK["metrics"] for t in targets)


def test_the_public_api_and_the_workspace_are_documented() -> None:
    """Every public member of tierwise.api and Workspace says what it does."""
    import inspect

    import tierwise.api as api
    from tierwise.workspace import Workspace

    missing = [f"Workspace.{name}" for name, member in inspect.getmembers(Workspace)
               if not name.startswith("_") and not inspect.getdoc(member)]
    missing += [f"tierwise.api.{name}" for name in api.__all__
                if not inspect.getdoc(getattr(api, name))]
    assert missing == []
