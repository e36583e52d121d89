"""Withheld references: while a lesson is graded, its kernel has no working reference for that lesson's exercises.

The library with every reference implementation is installed where submissions run, so without this
an exercise cell could pass by calling ``rlhf_core.losses.dpo_loss`` — by attribute, through
``importlib``, through a copy of the function object, or by reading the module's source and
``exec``-ing it. So the grading kernel imports a *withheld copy* of ``rlhf_core`` instead, built
once per grading run and lesson (:func:`withheld_library`) by rewriting the library's source:

* every **withheld function** — the reference of each exercise the lesson grades (``EXERCISES[name]
  .reference``) and the library functions its record names in ``same_answer``, which hand out the same
  answer under another name — keeps its signature, and its body becomes a dispatch to the learner's
  own function of the exercise's name (:mod:`grader.withheld_runtime`). Library code that needs it
  (``train_dpo`` calling ``train.dpo_step``, the model calling ``model.rms_norm``) runs on the
  learner's version; where nothing of the learner's can stand in, the call raises
  ``WithheldReference``;
* each withheld exercise's **registration** (``Exercise(...)`` in its checks module) keeps what
  probing needs (its cases) and loses what only judging needs — the known mistakes, each one edit
  away from the answer, and their helpers (``_lp_generic`` with its defaults *is* ``get_logps``);
  the private functions nothing then uses are withheld too;
* ``checks.framework.judge`` of a withheld exercise and ``notebook.yours_or_reference`` say what
  happens instead (:data:`GUARDS`).

The source of the withheld functions is not in the copy, nor is any bytecode of it (the copy is
compiled from its own rewritten files). Under the sandbox the copy is bound read-only over the
real ``rlhf_core`` folder, so the real files cannot be read either; without it the copy only comes
first on the kernel's path (see :mod:`grader.sandbox`). The other lessons' references stay: later
exercises build on earlier ones. The grader's judging, outside the kernel, uses the real library.

A probe record that carries a ``WithheldReference`` error is judged "reached for the withheld
reference" (:func:`withheld_verdict`), and :func:`withheld_in_process` gives
``grader.selfcheck.verdict_table`` the same behaviour inside a learner's running notebook.
"""

from __future__ import annotations

import ast
import compileall
import contextlib
import hashlib
import importlib
import inspect
import os
import re
import shutil
import sys
import threading
import types
from dataclasses import dataclass, field
from pathlib import Path

from .spec import GradeCell
from .withheld_runtime import ERROR_NAME, Withholding

__all__ = ["GUARDS", "withheld_exercises", "withheld_library", "withheld_in_process",
           "reached_withheld", "withheld_verdict", "borrowed_verdict", "library_root"]

RUNTIME_MODULE = "_withheld"          # rlhf_core/_withheld.py in the copy
RUNTIME_NAME = "_rlhf_withheld"       # the name a rewritten module knows it by

#: Statements put first in a library function of the copy: ``(module, function) -> source``.
GUARDS: dict[tuple[str, str], str] = {
    ("rlhf_core.checks.framework", "judge"):
        f"if {RUNTIME_NAME}.is_withheld(getattr(exercise, 'name', None)):\n"
        f"    raise CheckFailed({RUNTIME_NAME}.not_judged_here(exercise.name))",
    ("rlhf_core.course.notebook", "yours_or_reference"):
        f"if {RUNTIME_NAME}.is_withheld(name):\n"
        f"    return {RUNTIME_NAME}.use_yours(name, candidate)",
}

_PRIVATE_NAME = re.compile(r"(?<![A-Za-z0-9_])_[A-Za-z0-9_]+")

#: What a withheld exercise's ``Exercise(...)`` keeps in the copy: what probing needs, not judging.
_PROBING_FIELDS = {"name", "lesson", "cases", "reference", "summary", "formula", "grade_id", "rtol", "atol"}


def library_root() -> Path:
    """The folder of the real ``rlhf_core`` package."""
    import rlhf_core

    return Path(rlhf_core.__file__).resolve().parent


def withheld_exercises(cells: list[GradeCell]) -> dict[str, str]:
    """The exercises a lesson grades, each with the learner's global name that stands in for its reference."""
    from rlhf_core.checks import EXERCISES

    found: dict[str, str] = {}
    for cell in cells:
        for probe in cell.probes:
            if probe.kind == "exercise" and probe.candidates:
                found.setdefault(probe.name, probe.candidates[0])
            for name in probe.candidates:
                if probe.kind == "sanity" and name in EXERCISES:
                    found.setdefault(name, name)
    return found


# --------------------------------------------------------------------------------------------
# what is withheld, module by module


@dataclass
class _Stub:
    exercise: str
    candidate: str | None          # the learner's name that stands in, or None: it raises
    via: str | None = None         # or an expression that calls exercise functions


@dataclass
class _ModulePlan:
    stubs: dict[str, _Stub] = field(default_factory=dict)       # function name -> what stands in
    trimmed: set[str] = field(default_factory=set)              # exercises whose Exercise(...) is here
    guards: dict[str, str] = field(default_factory=dict)        # function name -> guard source


def _plan(withheld: dict[str, str]) -> dict[str, _ModulePlan]:
    from rlhf_core.checks import EXERCISES

    plans: dict[str, _ModulePlan] = {}

    def at(qualname: str) -> tuple[_ModulePlan, str]:
        module, _, name = qualname.rpartition(".")
        return plans.setdefault(module, _ModulePlan()), name

    for exercise, candidate in withheld.items():
        reference = inspect.unwrap(EXERCISES[exercise].reference)
        module = getattr(reference, "__module__", "") or ""
        if not module.startswith("rlhf_core.") or not isinstance(reference, types.FunctionType):
            raise ValueError(f"cannot withhold {exercise}: its reference is not a function of rlhf_core ({reference!r})")
        plan, name = at(f"{module}.{reference.__name__}")
        plan.stubs[name] = _Stub(exercise, candidate)
        cases_module = getattr(EXERCISES[exercise].cases, "__module__", "") or ""
        plans.setdefault(cases_module, _ModulePlan()).trimmed.add(exercise)
        for qualname, via in EXERCISES[exercise].same_answer.items():
            plan, name = at(qualname)
            if via is not None and not (_names_in(via) & set(EXERCISES)) <= set(withheld):
                via = None   # it would reach a reference that stays: nothing stands in
            plan.stubs.setdefault(name, _Stub(exercise, None, via))
    for (module, function), source in GUARDS.items():
        plans.setdefault(module, _ModulePlan()).guards[function] = source
    return plans


def _names_in(expression: str) -> set[str]:
    return {node.id for node in ast.walk(ast.parse(expression, mode="eval")) if isinstance(node, ast.Name)}


def _module_path(root: Path, module: str) -> Path:
    parts = module.split(".")[1:]
    path = root.joinpath(*parts)
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


# --------------------------------------------------------------------------------------------
# rewriting one module


@dataclass
class _Rewritten:
    source: str
    functions: dict[str, ast.FunctionDef]   # every function whose body was replaced, by name
    entries: dict[str, tuple[str, str | None]]  # qualified name -> (exercise, candidate) for the runtime


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


def _trim_registrations(tree: ast.Module, trimmed: set[str], module: str) -> set[str]:
    """Cut each withheld exercise's ``Exercise(...)`` down to what probing needs; returns the exercises cut."""
    done = set()
    for node in ast.walk(tree):
        if not _is_exercise_call(node):
            continue
        named = {k.arg: k.value for k in node.keywords if k.arg}
        name = named.get("name")
        if not (isinstance(name, ast.Constant) and name.value in trimmed):
            continue
        if node.args or any(k.arg is None for k in node.keywords):
            raise ValueError(f"cannot withhold {name.value}: its Exercise(...) in {module} takes positional or ** arguments")
        node.keywords = [k for k in node.keywords if k.arg in _PROBING_FIELDS] + [ast.keyword("mistakes", ast.List([], ast.Load()))]
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


def _rewrite(source: str, module: str, plan: _ModulePlan, lesson: str, elsewhere: set[str]) -> _Rewritten:
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
            said = f"through your own {', '.join(sorted(_names_in(stub.via) - {a.arg for a in node.args.args}))}"
        else:
            body = [_runtime_call(qualname, node.args)]
            said = f"calls your own {stub.candidate}" if stub.candidate else "not available"
            entries[qualname] = (stub.exercise, stub.candidate)
        _withheld_body(node, f"Withheld while lesson {lesson} is graded: {said}.", body)
        rewritten[name] = node
    cut = _trim_registrations(tree, plan.trimmed, module) if plan.trimmed else set()
    if cut:
        exercise = ", ".join(sorted(cut))
        for name in _unused_private_functions(tree, elsewhere):
            node = functions.get(name)
            if node is None or name in rewritten:
                continue
            qualname = f"{module}.{name}"
            entries[qualname] = (exercise, None)
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
    return _Rewritten(ast.unparse(ast.fix_missing_locations(tree)) + "\n", rewritten, entries)


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


def _rewrite_library(root: Path, withheld: dict[str, str], lesson: str) -> dict[str, _Rewritten]:
    """Every module of the library that changes, rewritten: ``{module: _Rewritten}``."""
    plans = _plan(withheld)
    texts = {path: path.read_text(encoding="utf-8") for path in sorted(root.rglob("*.py")) if "__pycache__" not in path.parts}
    private = {path: set(_PRIVATE_NAME.findall(text)) for path, text in texts.items()}   # who uses which private name
    out = {}
    for module, plan in plans.items():
        path = _module_path(root, module)
        if path not in texts:
            raise ValueError(f"cannot withhold from {module}: no file {path}")
        elsewhere = set().union(*(names for other, names in private.items() if other != path))
        out[module] = _rewrite(texts[path], module, plan, _label(lesson), elsewhere)
    return out


def _label(lesson: str) -> str:
    """How messages name a lesson: its number ("02"), else its name."""
    return lesson[:2] if lesson[:2].isdigit() else lesson


def _runtime_source(lesson: str, exercises, entries: dict[str, tuple[str, str | None]]) -> str:
    runtime = Path(__file__).with_name("withheld_runtime.py").read_text(encoding="utf-8")
    table = ",\n    ".join(f"{q!r}: {e!r}" for q, e in sorted(entries.items()))
    return (f"{runtime}\n\n# ---- this lesson's table (written by grader.withheld)\n"
            f"_WITHHELD = Withholding({_label(lesson)!r}, {sorted(exercises)!r}, {{\n    {table},\n}})\n"
            "call, refuse, is_withheld = _WITHHELD.call, _WITHHELD.refuse, _WITHHELD.is_withheld\n"
            "not_judged_here, use_yours = _WITHHELD.not_judged_here, _WITHHELD.use_yours\n")


# --------------------------------------------------------------------------------------------
# the copy, once per grading run and lesson

_BUILDING = threading.Lock()


def withheld_library(lesson: str, cells: list[GradeCell], scratch: Path) -> Path | None:
    """The folder holding this lesson's withheld copy of ``rlhf_core`` (built under ``scratch`` on the
    first call of a run, reused after); None when the lesson grades no exercise."""
    withheld = withheld_exercises(cells)
    if not withheld:
        return None
    root = library_root()
    key = hashlib.sha256(repr((lesson, sorted(withheld.items()), str(root))).encode()).hexdigest()[:16]
    folder = Path(scratch) / "withheld" / f"{lesson[:40]}-{key}"
    with _BUILDING:
        if not (folder / "complete").exists():
            _build(root, folder, withheld, lesson)
    return folder


def _build(root: Path, folder: Path, withheld: dict[str, str], lesson: str) -> None:
    rewritten = _rewrite_library(root, withheld, lesson)
    if folder.exists():
        shutil.rmtree(folder)
    target = folder / "rlhf_core"
    shutil.copytree(root, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo"))
    entries = {}
    for module, done in rewritten.items():
        _module_path(target, module).write_text(done.source, encoding="utf-8")
        entries.update(done.entries)
    (target / f"{RUNTIME_MODULE}.py").write_text(_runtime_source(lesson, withheld, entries), encoding="utf-8")
    # bytecode of the copy's own files only, so that no kernel compiles the library again
    if not compileall.compile_dir(str(target), quiet=1, force=True):
        raise RuntimeError(f"the withheld copy of rlhf_core for {lesson} does not compile")
    for path in [folder, *folder.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)   # readable by the sandbox's unprivileged kernel
    (folder / "complete").write_text(lesson)


# --------------------------------------------------------------------------------------------
# the same in a running notebook (verdict_table): swap the live functions' code for a while


class _Watch:
    """Inside :func:`withheld_in_process`: notes any call of a withheld function's *original* code —
    a copy of the function made before the block, or its source exec'd — which the grading kernel
    would not have. ``reached`` holds the first such function's qualified name since the last
    :meth:`clear`."""

    def __init__(self, originals: dict[tuple, str]):
        self.originals, self.reached = originals, None

    def clear(self) -> None:
        self.reached = None

    def __call__(self, frame, event, arg):
        if event == "call" and self.reached is None:
            name = self.originals.get(_fingerprint(frame.f_code))
            if name is not None:
                self.reached = name

    def message(self) -> str:
        return f"{self.reached} is withheld while this lesson is graded: the call reached a copy of its original code."


def _fingerprint(code: types.CodeType) -> tuple:
    """What a function compiled from the same source has in common with the original, wherever it was compiled."""
    consts = tuple(c if isinstance(c, (str, bytes, int, float, complex, bool, type(None))) else type(c).__name__
                   for c in code.co_consts)
    return code.co_name, code.co_code, code.co_names, code.co_varnames, consts


@contextlib.contextmanager
def withheld_in_process(lesson: str, cells: list[GradeCell], namespace: dict):
    """Inside the block, the live library behaves as the grading kernel's withheld copy: each withheld
    function runs its stub's code (dispatching to ``namespace``), the withheld exercises' known mistakes
    are out of reach, and the yielded :class:`_Watch` notes calls of a withheld function's original code
    (through a copy made before the block, or its source exec'd). Everything is put back on exit."""
    from rlhf_core.checks import EXERCISES

    withheld = withheld_exercises(cells)
    watch = _Watch({})
    if not withheld:
        yield watch
        return
    rewritten = _rewrite_library(library_root(), withheld, lesson)
    entries = {q: e for done in rewritten.values() for q, e in done.entries.items()}
    runtime = Withholding(_label(lesson), withheld, entries, namespace)
    references = {f"{r.__module__}.{r.__name__}": r for r in (inspect.unwrap(EXERCISES[n].reference) for n in withheld)}
    undo: list = []
    try:
        for module_name, done in rewritten.items():
            module = sys.modules.get(module_name) or importlib.import_module(module_name)
            for name, node in done.functions.items():   # the registry's own object first (model.using_parts swaps names)
                function = references.get(f"{module_name}.{name}") or inspect.unwrap(vars(module).get(name))
                if not isinstance(function, types.FunctionType) or function.__code__.co_freevars:
                    continue
                watch.originals[_fingerprint(function.__code__)] = f"{module_name}.{name}"
                code = _stub_code(node, getattr(module, "__file__", None) or module_name)
                undo.append((setattr, function, "__code__", function.__code__))
                function.__code__ = code
            if done.functions:
                undo.append((_restore_global, module, RUNTIME_NAME, vars(module).get(RUNTIME_NAME, undo)))
                setattr(module, RUNTIME_NAME, runtime)
        for name in withheld:
            exercise = EXERCISES[name]
            for attr, value in (("mistakes", []), ("extra_judge", None), ("explain", None)):
                if hasattr(exercise, attr):
                    undo.append((setattr, exercise, attr, getattr(exercise, attr)))
                    setattr(exercise, attr, value)
        undo.append((lambda profile, *_: sys.setprofile(profile), sys.getprofile(), None, None))
        sys.setprofile(watch)
        yield watch
    finally:
        for restore, target, attr, value in reversed(undo):
            restore(target, attr, value)


def _restore_global(module, name: str, previous) -> None:
    if isinstance(previous, list):   # the marker (the undo list itself): there was none
        vars(module).pop(name, None)
    else:
        setattr(module, name, previous)


def _stub_code(node: ast.FunctionDef, filename: str) -> types.CodeType:
    """The code object of a rewritten function, compiled on its own (no decorators, annotations or default values)."""
    bare = ast.FunctionDef(node.name, _bare_arguments(node.args), node.body, [], None, None)
    module = ast.fix_missing_locations(ast.Module([bare], []))
    namespace: dict = {}
    exec(compile(module, filename, "exec"), namespace)
    return namespace[node.name].__code__


def _bare_arguments(args: ast.arguments) -> ast.arguments:
    plain = lambda items: [ast.arg(a.arg) for a in items]
    return ast.arguments(plain(args.posonlyargs), plain(args.args), ast.arg(args.vararg.arg) if args.vararg else None,
                         plain(args.kwonlyargs), [ast.Constant(None) if d is not None else None for d in args.kw_defaults],
                         ast.arg(args.kwarg.arg) if args.kwarg else None, [ast.Constant(None) for _ in args.defaults])


# --------------------------------------------------------------------------------------------
# the verdict

_QUALNAME = re.compile(r"\brlhf_core(?:\.[A-Za-z_][A-Za-z0-9_]*){1,4}")


def reached_withheld(record, depth: int = 0) -> str | None:
    """The message of a ``WithheldReference`` anywhere in a probe record (an error record or a crash), else None."""
    if depth > 6:
        return None
    if isinstance(record, dict):
        if record.get("type") == ERROR_NAME and "message" in record:
            return str(record.get("message"))[:500]
        crashed = record.get("crashed")
        if isinstance(crashed, str) and crashed.startswith(f"{ERROR_NAME}:"):
            return crashed[len(ERROR_NAME) + 1:].strip()[:500]
        values = list(record.values())[:2000]
    elif isinstance(record, list):
        values = record[:2000]
    else:
        return None
    for value in values:
        found = reached_withheld(value, depth + 1)
        if found is not None:
            return found
    return None


def withheld_verdict(name: str, message: str) -> str:
    """The verdict on a check whose probe reached a withheld reference (``message``: the error it raised)."""
    match = _QUALNAME.search(message or "")
    what = match.group(0) if match else "rlhf_core's own version of it"
    return (f"✗ {name}: expected your own implementation, but your code called {what}, which the grader withholds "
            "while this lesson is graded — so this check earns no credit. Write the computation in the exercise cell "
            "yourself, without calling rlhf_core's version.")


def borrowed_verdict(name: str, borrowed: str) -> str:
    """The verdict on a check whose candidate is one of rlhf_core's own functions (``borrowed``: ``"name=qualname"``)."""
    match = _QUALNAME.search(borrowed or "")
    what = match.group(0) if match else "one of rlhf_core's functions"
    return (f"✗ {name}: expected your own implementation, but {name} is {what}, rlhf_core's own function — so this "
            "check earns no credit. Define the function in the exercise cell yourself instead of importing it.")
