"""No import cycle inside ``grader`` or ``rlhf_core``, counting every import — those inside functions too.

The graph is read from the source (``ast``), not by importing: an edge ``a -> b`` for every
``import b`` / ``from b import x`` / ``from .b import x`` in module ``a`` that names a module of the
same package (``from pkg import sub`` names the submodule ``pkg.sub``; ``from pkg import name`` the
package ``pkg`` itself). Importing a submodule runs its parent packages' ``__init__`` too; those
implicit edges are left out, as Python handles them and they are not a design's cycles.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def modules(package: str) -> dict[str, Path]:
    """``{"grader.release": path, "grader": path/__init__.py, …}`` for every module of the package."""
    found = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _resolve(module: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def import_graph(package: str) -> dict[str, set[str]]:
    known = modules(package)
    graph: dict[str, set[str]] = {name: set() for name in known}
    for module, path in known.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(module, path, node)
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
            for target in targets:
                while target and target not in known:      # `import pkg.sub.thing` where thing is no module
                    target = target.rpartition(".")[0]
                if target and target != module:
                    graph[module].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def describe(graph: dict[str, set[str]], found: list[list[str]]) -> str:
    lines = []
    for component in found:
        edges = [f"{a} -> {b}" for a in component for b in sorted(graph[a]) if b in component]
        lines.append(f"cycle among {', '.join(component)}: " + "; ".join(edges))
    return "\n".join(lines)


def test_the_graph_sees_imports_inside_functions():
    graph = {"a": {"b"}, "b": set()}
    assert cycles(graph) == []
    graph["b"].add("a")
    assert cycles(graph) == [["a", "b"]]
    grader = import_graph("grader")
    assert "grader.gradebook" in grader["grader.autograde"]      # imported inside autograde()
    assert "grader.course" in grader["grader.release"]


def test_grader_has_no_import_cycle():
    graph = import_graph("grader")
    found = cycles(graph)
    assert not found, describe(graph, found)


def test_grader_course_imports_no_command():
    assert import_graph("grader")["grader.course"] <= {"grader.spec"}


def test_rlhf_core_has_no_import_cycle():
    graph = import_graph("rlhf_core")
    found = cycles(graph)
    assert not found, describe(graph, found)
