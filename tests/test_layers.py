"""The top-level packages form a layered graph without a cycle: each imports only the layers below it
(docs/architecture.md). Read from the source with `ast`, imports inside functions included."""

from __future__ import annotations

import ast
from collections import defaultdict
from itertools import pairwise
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: what each package may import (besides itself); `infrawatch` is the top and may import every layer
LAYERS: dict[str, set[str]] = {
    "core": set(),
    "reference": {"core"},
    "storage": {"core", "reference"},
    "ingest": {"core", "reference", "storage"},
    "collectors": {"core", "reference", "storage", "ingest"},
    "metrics": {"core", "reference", "storage"},
    "alerts": {"core", "reference", "storage", "metrics"},
    "bulletins": {"core", "reference", "storage", "metrics", "alerts"},
    "dashboards": {"core", "reference", "storage", "metrics"},
    "api": {"core", "reference", "storage", "ingest", "collectors", "metrics", "alerts", "bulletins"},
    "simulators": {"core", "reference"},
}


def _packages() -> list[str]:
    return sorted(p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file() and p.name != "tests")


def import_graph() -> dict[str, dict[str, list[str]]]:
    """package → imported first-party package → the files importing it."""
    packages = set(_packages())
    graph: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for package in packages:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top in packages and top != package:
                        graph[package][top].append(str(path.relative_to(ROOT)))
    return graph


def find_cycle(graph: dict[str, dict[str, list[str]]]) -> list[str] | None:
    """A cycle among the packages, as a path that returns to its start, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, {})):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_cycle_finder_finds_a_cycle_and_accepts_a_layered_graph() -> None:
    assert find_cycle({"a": {"b": []}, "b": {"c": []}, "c": {"a": []}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b": [], "c": []}, "b": {"c": []}, "c": {}}) is None


def test_the_top_level_packages_import_each_other_without_a_cycle() -> None:
    graph = import_graph()
    cycle = find_cycle(graph)
    assert cycle is None, (
        " → ".join(cycle or [])
        + ": "
        + "; ".join(f"{a}→{b} in {', '.join(sorted(set(graph[a][b]))[:3])}" for a, b in pairwise(cycle or []))
    )


def test_each_package_imports_only_the_layers_below_it() -> None:
    graph = import_graph()
    assert set(_packages()) == set(LAYERS) | {"infrawatch"}, "a new top-level package needs its place in LAYERS"
    wrong = [
        f"{package} imports {other} ({', '.join(sorted(set(files))[:3])})"
        for package, imports in graph.items()
        if package != "infrawatch"
        for other, files in imports.items()
        if other not in LAYERS[package]
    ]
    assert not wrong, "\n".join(wrong)
