"""Rewriting the library's source for the withheld copy (:mod:`grader.withheld`), one module at a time, by its
:class:`~grader.withheld_plan.ModulePlan`: a withheld function's body becomes a call of the copy's runtime
(:mod:`grader.withheld_runtime`), a withheld exercise's ``Exercise(...)`` keeps only what probing needs and every
other exercise's loses what only judging needs (:data:`JUDGING_FIELDS`: its known mistakes above all), so each must
be written with keywords only; the private functions nothing then uses — the known mistakes and their helpers — are
withheld too (so a private helper must not share a bare name with another module's), and each guard goes first in
its function.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

from .withheld_plan import RUNTIME_MODULE, RUNTIME_NAME, ModulePlan, label, module_path, names_in, plan_library
from .withheld_runtime import JUDGING

__all__ = ["JUDGING_FIELDS", "Rewritten", "rewrite_library", "runtime_source"]

_PRIVATE_NAME = re.compile(r"(?<![A-Za-z0-9_])_[A-Za-z0-9_]+")
#: What a withheld exercise's ``Exercise(...)`` keeps in the copy: what probing needs, not judging.
_PROBING_FIELDS = {"name", "lesson", "cases", "reference", "library_only", "summary", "formula", "grade_id", "rtol", "atol"}
#: What every other exercise's ``Exercise(...)`` loses in the copy: what only judging reads (the known mistakes, each a
#: near-answer of some exercise, and the hints computed from a failing case), never probing.
JUDGING_FIELDS = {"mistakes", "explain", "key_hints", "shape_hint"}


@dataclass
class Rewritten:
    source: str
    functions: dict[str, ast.FunctionDef]   # every function whose body was replaced, by name
    entries: dict[str, tuple]  # qualified name -> (exercise, candidate[, JUDGING]) for the runtime


def _call_args(args: ast.arguments) -> tuple[ast.expr, ast.expr]:
    """``(positional tuple, keyword dict)`` passing a function's own parameters on unchanged."""
    positional: list[ast.expr] = [ast.Name(a.arg, ast.Load()) for a in [*args.posonlyargs, *args.args]]
    if args.vararg:
        positional.append(ast.Starred(ast.Name(args.vararg.arg, ast.Load()), ast.Load()))
    keys: list[ast.expr | None] = [ast.Constant(a.arg) for a in args.kwonlyargs]
    values: list[ast.expr] = [ast.Name(a.arg, ast.Load()) for a in args.kwonlyargs]
    if args.kwarg:
        keys.append(None)
        values.append(ast.Name(args.kwarg.arg, ast.Load()))
    return ast.Tuple(positional, ast.Load()), ast.Dict(keys, values)


def _runtime_call(qualname: str, args: ast.arguments) -> ast.stmt:
    positional, keywords = _call_args(args)
    call = ast.Call(ast.Attribute(ast.Name(RUNTIME_NAME, ast.Load()), "call", ast.Load()),
                    [ast.Constant(qualname), positional, keywords], [])
    return ast.Return(call)


def _is_exercise_call(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    return (isinstance(func, ast.Name) and func.id == "Exercise") or (isinstance(func, ast.Attribute) and func.attr == "Exercise")


def _trim_registrations(tree: ast.Module, plan: ModulePlan, module: str) -> set[str]:
    """Cut each withheld exercise's ``Exercise(...)`` down to what probing needs, and every other planned one's
    judging off; returns the exercises cut. A registration the rewrite cannot read is refused."""
    done = set()
    for node in ast.walk(tree):
        if not _is_exercise_call(node):
            continue
        named = {k.arg: k.value for k in node.keywords if k.arg}
        name = named.get("name")
        if not isinstance(name, ast.Constant) or not isinstance(name.value, str):
            raise ValueError(f"cannot read an Exercise(...) in {module}: its name= is not a string literal")
        if name.value not in plan.trimmed | plan.unjudged:
            continue
        if node.args or any(k.arg is None for k in node.keywords):
            raise ValueError(f"cannot withhold {name.value}: its Exercise(...) in {module} takes positional or ** arguments")
        if name.value in plan.trimmed:
            kept = [k for k in node.keywords if k.arg in _PROBING_FIELDS]
        else:
            kept = [k for k in node.keywords if k.arg not in JUDGING_FIELDS]
        node.keywords = kept + [ast.keyword("mistakes", ast.List([], ast.Load()))]
        done.add(name.value)
    return done


def _referenced(nodes) -> set[str]:
    names = set()
    for node in nodes:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name):
                names.add(sub.id)
            elif isinstance(sub, ast.Attribute):
                names.add(sub.attr)
    return names


def _unused_private_functions(tree: ast.Module, elsewhere: set[str]) -> list[str]:
    """Module-level private functions that nothing in the module (or ``elsewhere``, the names the rest of the library uses) uses."""
    functions = {node.name: node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
    roots = [node for node in tree.body if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
    roots += [node for name, node in functions.items() if not name.startswith("_") or name in elsewhere]
    reached, todo = set(), _referenced(roots)
    while todo:
        name = todo.pop()
        if name in functions and name not in reached:
            reached.add(name)
            todo |= _referenced([functions[name]]) - reached
    return [name for name, node in functions.items() if name not in reached and node not in roots]


def _withheld_body(node: ast.FunctionDef, note: str, body: list[ast.stmt]) -> None:
    node.body = [ast.Expr(ast.Constant(note)), *body]


def _rewrite(source: str, module: str, plan: ModulePlan, lesson: str, elsewhere: set[str]) -> Rewritten:
    tree = ast.parse(source)
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    rewritten: dict[str, ast.FunctionDef] = {}
    entries: dict[str, tuple[str, str | None]] = {}
    for name, stub in plan.stubs.items():
        node = functions.get(name)
        if node is None:
            raise ValueError(f"cannot withhold {module}.{name}: no such module-level function")
        qualname = f"{module}.{name}"
        if stub.via is not None:
            body = [ast.Return(ast.parse(stub.via, mode="eval").body)]
            said = f"through your own {', '.join(sorted(names_in(stub.via) & set(_exercise_names())))}"
        else:
            body = [_runtime_call(qualname, node.args)]
            said = f"calls your own {stub.candidate}" if stub.candidate else "not available"
            entries[qualname] = (stub.exercise, stub.candidate)
        _withheld_body(node, f"Withheld while lesson {lesson} is graded: {said}.", body)
        rewritten[name] = node
    cut = _trim_registrations(tree, plan, module) if plan.trimmed or plan.unjudged else set()
    if cut:
        exercise = ", ".join(sorted(cut))
        for name in _unused_private_functions(tree, elsewhere):
            node = functions.get(name)
            if node is None or name in rewritten:
                continue
            qualname = f"{module}.{name}"
            entries[qualname] = (exercise, None, JUDGING)
            _withheld_body(node, f"Withheld while lesson {lesson} is graded: part of the checks of {exercise}.",
                           [_runtime_call(qualname, node.args)])
            rewritten[name] = node
    for name, guard in plan.guards.items():
        node = functions.get(name)
        if node is None:
            raise ValueError(f"cannot guard {module}.{name}: no such module-level function")
        needed = _names_in_statements(guard) - {RUNTIME_NAME, "getattr", "CheckFailed"}
        params = {a.arg for a in [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]}
        if not needed <= params:
            raise ValueError(f"cannot guard {module}.{name}: it has no parameter {', '.join(sorted(needed - params))}")
        docstring = node.body[:1] if ast.get_docstring(node) is not None else []
        node.body = [*docstring, *ast.parse(guard).body, *node.body[len(docstring):]]
    if rewritten or plan.guards:
        tree.body.insert(_after_header(tree), ast.Import([ast.alias(f"rlhf_core.{RUNTIME_MODULE}", RUNTIME_NAME)]))
    return Rewritten(ast.unparse(ast.fix_missing_locations(tree)) + "\n", rewritten, entries)


def _exercise_names() -> list[str]:
    from rlhf_core.checks import EXERCISES

    return list(EXERCISES)


def _names_in_statements(source: str) -> set[str]:
    return {node.id for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Name)}


def _after_header(tree: ast.Module) -> int:
    """The index after the module's docstring and ``from __future__`` imports."""
    index = 0
    if tree.body and isinstance(tree.body[0], ast.Expr) and isinstance(getattr(tree.body[0], "value", None), ast.Constant):
        index = 1
    while index < len(tree.body) and isinstance(tree.body[index], ast.ImportFrom) and tree.body[index].module == "__future__":
        index += 1
    return index


def rewrite_library(root: Path, withheld: dict[str, str], lesson: str) -> dict[str, Rewritten]:
    """Every module of the library that changes, rewritten: ``{module: Rewritten}``."""
    plans = plan_library(withheld)
    texts = {path: path.read_text(encoding="utf-8") for path in sorted(root.rglob("*.py")) if "__pycache__" not in path.parts}
    private = {path: set(_PRIVATE_NAME.findall(text)) for path, text in texts.items()}   # who uses which private name
    out = {}
    for module, plan in plans.items():
        path = module_path(root, module)
        if path not in texts:
            raise ValueError(f"cannot withhold from {module}: no file {path}")
        elsewhere = set().union(*(names for other, names in private.items() if other != path))
        out[module] = _rewrite(texts[path], module, plan, label(lesson), elsewhere)
    return out


def runtime_source(lesson: str, exercises, entries: dict[str, tuple]) -> str:
    runtime = Path(__file__).with_name("withheld_runtime.py").read_text(encoding="utf-8")
    table = ",\n    ".join(f"{q!r}: {e!r}" for q, e in sorted(entries.items()))
    return (f"{runtime}\n\n# ---- this lesson's table (written by grader.withheld)\n"
            f"_WITHHELD = Withholding({label(lesson)!r}, {sorted(exercises)!r}, {{\n    {table},\n}})\n"
            "call, refuse, is_withheld = _WITHHELD.call, _WITHHELD.refuse, _WITHHELD.is_withheld\n"
            "not_judged_here, use_yours = _WITHHELD.not_judged_here, _WITHHELD.use_yours\n")
