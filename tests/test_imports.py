"""Imports inside ``src/cairn`` point one way (CONTRIBUTING: domain ← store ←
tools/models/runner ← services ← api/cli/web) and form no cycle.

The graph is read from the source with ``ast``, so nothing hides from it: module-level
imports, imports inside functions (the lazy ones the CLI's cold start needs), and module
names held in strings (``importlib.import_module`` tables, registries' ``module:attribute``
paths). The root package ``cairn`` is left out: every module's import runs it first, as
any parent package, and it only re-exports the SDK on attribute access. Imports under
``if TYPE_CHECKING:`` never run, so they make no cycle; they still
count for the layers, since they couple the code all the same.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

LAYERS: dict[str, int] = {
    **dict.fromkeys(
        (
            "domain",
            "errors",
            "ids",
            "durations",
            "registry",
            "config",
            "pricing",
            "demo",
            "text",
            "batches",
        ),
        0,
    ),
    "store": 1,
    **dict.fromkeys(("tools", "models", "runner", "telemetry", "webhooks"), 2),
    **dict.fromkeys(("services", "execution"), 3),
    "wire": 4,  # pydantic at the edges: what the transports share, never the services
    **dict.fromkeys(("api", "cli", "web", "client", "mcpserver"), 5),
}
"""Each top-level part of ``cairn`` and its layer: a module imports its own layer or lower."""

TRANSPORTS: dict[str, set[str]] = {
    "api": set(),
    "web": {"api"},  # the dashboard renders the API's operations
    "client": {"api"},  # the in-process transport calls them
    "mcpserver": {"api"},  # its tools run the table's operations
    "cli": {"api", "web", "client", "mcpserver"},  # ``cairn serve`` mounts all three
}
"""Which transports each transport may import (they share layer 5)."""

KNOWN_CYCLES: dict[str, str] = {}
"""Modules whose outgoing edges are left out of the cycle check, each for a cycle known
and being removed (the operation table and the split of ``api/app.py``). Empty it as they
go: ``test_known_cycles_are_still_there`` fails on an entry that no longer closes one."""

KNOWN_BREACHES: set[tuple[str, str]] = set()
"""Layer breaches known and being removed with ``KNOWN_CYCLES`` (importer, imported prefix)."""


@dataclass(frozen=True, slots=True)
class Edge:
    importer: str
    imported: str
    line: int
    type_only: bool

    def __str__(self) -> str:
        where = MODULES[self.importer].relative_to(SRC)
        return f"{self.importer} -> {self.imported} ({where} line {self.line})"


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted((SRC / "cairn").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _known_module(name: str) -> str | None:
    """``name`` or its nearest enclosing module (``cairn.wire.Wire`` -> ``cairn.wire``)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _type_checking_nodes(tree: ast.Module) -> set[int]:
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for statement in node.body:
                inside.update(id(inner) for inner in ast.walk(statement))
    return inside


def _imported_names(node: ast.AST, package: str) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            parts = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join([*parts, *([node.module] if node.module else [])])
        for alias in node.names:  # ``from cairn.wire import usage`` imports a module
            yield f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
    elif isinstance(node, ast.Constant) and isinstance(node.value, str):
        name = node.value.partition(":")[0]  # "cairn.x.y" or "cairn.x.y:attribute"
        if "." in name and name in MODULES:
            yield name


def _edges() -> list[Edge]:
    edges: dict[tuple[str, str], Edge] = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        type_only = _type_checking_nodes(tree)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(tree):
            for name in _imported_names(node, package):
                target = _known_module(name) if name.startswith("cairn") else None
                if target in (None, module, "cairn"):
                    continue
                edge = Edge(module, target, getattr(node, "lineno", 0), id(node) in type_only)
                seen = edges.get((module, target))
                if seen is None or (seen.type_only and not edge.type_only):
                    edges[module, target] = edge
    return sorted(edges.values(), key=lambda e: (e.importer, e.imported))


EDGES = _edges()


def _cycles(edges: list[Edge]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    graph: dict[str, list[str]] = {}
    for edge in edges:
        graph.setdefault(edge.importer, []).append(edge.imported)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in MODULES:
        if root in index:
            continue
        work = [(root, iter(graph.get(root, [])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph.get(child, []))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _describe(cycles: list[list[str]], edges: list[Edge]) -> str:
    lines = []
    for members in cycles:
        lines.append("cycle: " + ", ".join(members))
        inside = set(members)
        lines += [f"  {e}" for e in edges if e.importer in inside and e.imported in inside]
    return "\n".join(lines)


def _runtime(edges: list[Edge]) -> list[Edge]:
    return [edge for edge in edges if not edge.type_only]


def test_the_graph_sees_every_kind_of_import() -> None:
    """The reader finds a module-level import, an in-function one, a relative one and a
    string, so a cycle cannot hide behind any of them."""
    pairs = {(edge.importer, edge.imported) for edge in EDGES}
    assert ("cairn.services.app", "cairn.config") in pairs  # module level
    assert ("cairn.services.app", "cairn.runner.engine") in pairs  # inside a property
    assert ("cairn.models.backends", "cairn.models.scripted") in pairs  # a registry path
    assert ("cairn.cli.main", "cairn.cli.agents") in pairs  # an import_module table
    assert len(MODULES) > 150


def test_no_import_cycle_inside_cairn() -> None:
    edges = [e for e in _runtime(EDGES) if e.importer not in KNOWN_CYCLES]
    cycles = _cycles(edges)
    assert not cycles, _describe(cycles, edges)


def test_known_cycles_are_still_there() -> None:
    """An entry of ``KNOWN_CYCLES`` that closes no cycle any more is removed, so the list
    only shrinks."""
    edges = _runtime(EDGES)
    in_cycles = {module for members in _cycles(edges) for module in members}
    stale = sorted(set(KNOWN_CYCLES) - in_cycles)
    assert not stale, f"no longer in a cycle, remove from KNOWN_CYCLES: {stale}"


def _part(module: str) -> str:
    return module.split(".")[1] if "." in module else ""


def _breach(edge: Edge) -> str | None:
    low, high = _part(edge.importer), _part(edge.imported)
    if not low or not high or low == high:
        return None
    if any(edge.importer == a and edge.imported.startswith(b) for a, b in KNOWN_BREACHES):
        return None
    if LAYERS[high] > LAYERS[low]:
        return f"layer {LAYERS[low]} ({low}) imports layer {LAYERS[high]} ({high})"
    if low in TRANSPORTS and high in TRANSPORTS and high not in TRANSPORTS[low]:
        return f"the {low} transport imports the {high} transport"
    return None


def test_every_part_of_cairn_has_a_layer() -> None:
    parts = {_part(module) for module in MODULES} - {""}
    assert parts <= set(LAYERS), f"give these a layer in LAYERS: {sorted(parts - set(LAYERS))}"


def test_imports_point_down_the_layers() -> None:
    breaches = [f"{edge}: {why}" for edge in EDGES if (why := _breach(edge))]
    assert not breaches, "\n".join(breaches)


@pytest.mark.parametrize(
    ("importer", "imported", "breach"),
    [
        ("cairn.store.runs", "cairn.services.runs", True),
        ("cairn.services.runs", "cairn.wire", True),
        ("cairn.api.routes", "cairn.cli.main", True),
        ("cairn.web.pages", "cairn.api.operations", False),
        ("cairn.api.app", "cairn.mcpserver.http", True),
        ("cairn.mcpserver.tools", "cairn.cli.main", True),
        ("cairn.mcpserver.tools", "cairn.api.table", False),
        ("cairn.services.runs", "cairn.store.runs", False),
    ],
)
def test_the_layer_rule_refuses_an_upward_import(
    importer: str, imported: str, breach: bool
) -> None:
    assert (_breach(Edge(importer, imported, 1, False)) is not None) is breach
