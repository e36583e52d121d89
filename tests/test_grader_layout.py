"""The grader's parts in plain sight: no module over 500 lines, no function over 80 (split where an idea ends),
and a function that always raises says so (``-> NoReturn``)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 500, 80


def grader_modules() -> dict[str, ast.Module]:
    return {path.name: ast.parse(path.read_text(), str(path)) for path in sorted((ROOT / "grader").glob("*.py"))}


def functions(tree: ast.Module):
    return [node for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]


def always_raises(node: ast.FunctionDef) -> bool:
    """The body ends in ``raise`` (or ``os._exit``/``sys.exit`` in a ``finally``) and no ``return`` leaves it."""
    body = [s for s in node.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    if not body or any(isinstance(n, ast.Return) for n in ast.walk(node)):
        return False
    last = body[-1]
    if isinstance(last, ast.Raise):
        return True
    ends = last.finalbody[-1:] if isinstance(last, ast.Try) else []
    return any(isinstance(s, ast.Expr) and isinstance(s.value, ast.Call)
               and ast.unparse(s.value.func) in ("os._exit", "sys.exit") for s in ends)


def test_no_grader_module_is_over_500_lines():
    long = {path.name: n for path in (ROOT / "grader").glob("*.py") if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES}
    assert long == {}, long


def test_no_grader_function_is_over_80_lines():
    long = [f"{name}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for name, tree in grader_modules().items() for node in functions(tree)
            if node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert long == [], long


def test_a_grader_function_that_always_raises_is_typed_noreturn():
    untyped = [f"{name}:{node.lineno} {node.name}" for name, tree in grader_modules().items() for node in functions(tree)
               if always_raises(node) and (node.returns is None or "NoReturn" not in ast.unparse(node.returns))]
    assert untyped == [], untyped


def test_the_rules_can_fail():
    raising = ast.parse("def f() -> None:\n    '''doc'''\n    raise ValueError()").body[0]
    exiting = ast.parse("def g():\n    try:\n        pass\n    finally:\n        os._exit(1)").body[0]
    returning = ast.parse("def h(x):\n    if x:\n        return 1\n    raise ValueError()").body[0]
    assert always_raises(raising) and always_raises(exiting) and not always_raises(returning)
    long = ast.parse("def f():\n" + "    x = 1\n" * MAX_FUNCTION_LINES)
    assert [n for n in functions(long) if n.end_lineno - n.lineno + 1 > MAX_FUNCTION_LINES]
