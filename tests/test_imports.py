"""The package's import graph: no cycles, and no module imports from a layer above it (issue 16).

The graph is read with `ast` from the source, so it holds every import: at module level, inside
functions and under `if TYPE_CHECKING:`. An import of `a.b.c` is an edge to module `a.b.c`; `from a.b
import c` is an edge to `a.b.c` when that is a module, else to `a.b`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pipeline", "evaluators", "analysis", "personas")

# Layering rules: no module under a key imports a module under any of its prefixes.
FORBIDDEN = {
    "evaluators": (
        "pipeline.runner",
        "pipeline.config",
        "pipeline.eval",
        "pipeline.judges",
        "pipeline.cli",
        "analysis",
    ),
    "pipeline.stages": ("pipeline.eval", "pipeline.judges", "analysis"),
    # config validation is handed the stage set of a run kind (pipeline/kinds.py); it knows no stage
    "pipeline.config": (
        "pipeline.stages",
        "pipeline.eval",
        "pipeline.judges",
        "pipeline.kinds",
        "pipeline.cli",
    ),
    # the runner and the status it publishes are handed the stages of their run
    "pipeline.runner": ("pipeline.eval", "pipeline.judges", "pipeline.kinds", "pipeline.cli", "analysis"),
    "pipeline.status": ("pipeline.eval", "pipeline.judges", "pipeline.kinds", "pipeline.cli", "analysis"),
    # the store is the ground floor of the service: it knows records and rows, nothing that uses them
    "pipeline.store": (
        "pipeline.stages",
        "pipeline.runner",
        "pipeline.eval",
        "pipeline.judges",
        "pipeline.export",
        "pipeline.serve",
        "pipeline.cli",
        "analysis",
    ),
    # dataset metrics and the report read the store; no stage, run kind, service or command
    "analysis": (
        "pipeline.stages",
        "pipeline.runner",
        "pipeline.eval",
        "pipeline.judges",
        "pipeline.serve",
        "pipeline.cli",
    ),  # fmt: skip
    "personas": ("pipeline.stages", "pipeline.runner", "pipeline.cli"),
    # the service uses the layers below it; the CLI is above it (and asks it when it holds a database)
    "pipeline.serve": ("pipeline.cli",),
    "pipeline.export": ("pipeline.serve", "pipeline.cli"),
}

# Edges (importer, imported) allowed to break the rules, left out of the cycle search and the layering
# rules; each needs a comment saying why. None today.
KNOWN: set[tuple[str, str]] = set()


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that `name` imports, anywhere in its source."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        found.update(t for t in targets if t in known and t != name)
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {
        name: imports(name, path, known) - {b for a, b in KNOWN if a == name} for name, path in mods.items()
    }


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def test_the_graph_is_read_from_the_source():
    edges = graph()
    assert "pipeline.stage" in edges["pipeline.stages.domains"]  # module level
    assert "evaluators.refusal" in edges["evaluators.refusal_validate"]  # module and function level
    assert "pipeline.embedder" in edges["evaluators.refusal_validate"]  # only inside a function


def test_no_import_cycle():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_find_cycle_names_the_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_no_import_from_a_layer_above(layer):
    above = FORBIDDEN[layer]
    wrong = sorted(
        f"{importer} imports {imported}"
        for importer, targets in graph().items()
        if under(importer, layer)
        for imported in targets
        if any(under(imported, prefix) for prefix in above)
    )
    assert not wrong, f"{layer} must not import {', '.join(above)}:\n  " + "\n  ".join(wrong)


def test_known_edges_still_exist():
    """An allow-list entry whose import is gone is stale: drop it."""
    mods = modules()
    stale = [(a, b) for a, b in KNOWN if b not in imports(a, mods[a], set(mods))]
    assert not stale, f"remove from KNOWN: {stale}"
