"""No import cycles in the package (issue 11, item 6).

The graph is read from the source with ``ast``, not by importing: an edge ``A -> B`` for every
module-level import in ``A`` of a module ``B`` of the package (function-level imports, ``from __future__``
and ``if TYPE_CHECKING:`` blocks are left out: they never run while ``A`` is being imported). Importing
``x.y.z`` also runs the ``__init__`` of ``x`` and ``x.y``, so those are edges too, except ancestors of
``A`` itself (already being imported when ``A`` runs).

Module-level cycles fail the test; cycles between top-level sub-packages (``audio``, ``face``, ...) are
printed only, as a map of where the layering leaks.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import talkinghead

PACKAGE = "talkinghead"
ROOT = Path(talkinghead.__file__).resolve().parent


def module_files() -> dict[str, Path]:
    """``{"talkinghead.audio.frames": path, "talkinghead.audio": .../__init__.py, ...}``."""
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = (PACKAGE, *path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def module_level_imports(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    """Import statements that run when the module is imported (top level, in try/if/with blocks)."""
    stack: list[ast.stmt] = list(reversed(tree.body))
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                stack.extend(reversed(node.body))
            stack.extend(reversed(node.orelse))
        elif isinstance(node, ast.Try):
            for block in (node.body, *(h.body for h in node.handlers), node.orelse, node.finalbody):
                stack.extend(reversed(block))
        elif isinstance(node, ast.With):
            stack.extend(reversed(node.body))


def _ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def imported_modules(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that importing ``name`` runs directly (see the module docstring)."""
    is_package = path.name == "__init__.py"
    targets: set[str] = set()
    for node in module_level_imports(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
            continue
        if node.module == "__future__":
            continue
        if node.level:
            base = name.split(".") if is_package else name.split(".")[:-1]
            base = base[: len(base) - (node.level - 1)]
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module or ""
        targets.add(source)
        targets.update(f"{source}.{alias.name}" for alias in node.names if f"{source}.{alias.name}" in modules)
    edges: set[str] = set()
    own = set(_ancestors(name))
    for target in targets:
        if target.split(".")[0] != PACKAGE:
            continue
        for step in [*_ancestors(target), target]:
            if step in modules and step not in own and step != name:
                edges.add(step)
    return edges


def import_graph() -> dict[str, set[str]]:
    modules = module_files()
    return {name: imported_modules(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan), each sorted, largest first."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found, key=lambda c: (-len(c), c))


def cycle_path(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """One closed path through ``component``, for the failure message (``a -> b -> a``)."""
    members = set(component)
    start = component[0]
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & members):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if w not in parents:
                    parents[w] = v
                    nxt.append(w)
        frontier = nxt
    return component  # pragma: no cover - a component always closes


def subpackage(name: str) -> str:
    """``talkinghead.motion.dreamtalk.denoiser`` -> ``motion``; top-level modules keep their own name."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def test_graph_sees_the_package() -> None:
    graph = import_graph()
    assert "talkinghead.sequence" in graph and "talkinghead.face.model" in graph
    assert "talkinghead.sequence" in graph["talkinghead.face.model"]
    # the parent package's __init__ runs on import: an edge; the module's own parents are not
    assert "talkinghead.data" in graph["talkinghead.evaluation.evaluate"]
    assert all(a == PACKAGE or a.startswith(PACKAGE + ".") for a in graph)


def test_cycle_finder_reports_a_cycle() -> None:
    toy = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(toy) == [["a", "b", "c"]]
    assert cycle_path(toy, ["a", "b", "c"]) == ["a", "b", "c", "a"]


def test_no_module_level_import_cycles() -> None:
    graph = import_graph()
    found = cycles(graph)
    assert not found, "Import cycles (module-level imports):\n" + "\n".join(
        " -> ".join(cycle_path(graph, c)) for c in found)


def test_no_subpackage_import_cycles() -> None:
    """The rooms (top-level sub-packages and modules) import each other in one direction only."""
    graph = import_graph()
    coarse: dict[str, set[str]] = {}
    for a, targets in graph.items():
        coarse.setdefault(subpackage(a), set()).update(subpackage(b) for b in targets if subpackage(b) != subpackage(a))
    found = cycles(coarse)
    assert not found, "Sub-package import cycles:\n" + "\n".join(
        " -> ".join(cycle_path(coarse, c)) + f" (members: {', '.join(c)})" for c in found)
