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
* **no judging at all**: every exercise's registration (``Exercise(...)`` in its checks module), of
  any lesson, loses what only judging needs — its known mistakes above all, and the hints computed
  from a failing case (``explain``, ``key_hints``, ``shape_hint``); a withheld exercise's keeps only
  what probing needs. Every known mistake is one edit away from *some* exercise's answer, and some
  *are* another's: lesson 10's "cDPO with ε ignored" and IPO's "used DPO's loss" are DPO's loss, so
  lesson 02's kernel must not hold them any more than lesson 10's. The private functions nothing
  then uses — the mistakes and their helpers (``_lp_generic`` with its defaults *is* ``get_logps``)
  — are withheld too (they raise ``WithheldReference``, "part of the grader's checks"). The kernel
  still probes (the cases stay, and ``checks.probe``, ``checks.probe_sanity``), and an in-kernel
  check of another lesson's exercise still passes or fails as before, without naming a mistake;
* ``rlhf_core.checks.judge`` of a withheld exercise and ``notebook.yours_or_reference`` say what
  happens instead (:data:`GUARDS`).

What is withheld is read from the registry, never listed here: each record's ``reference`` and
``same_answer`` (which names the library functions that give the same answer under another name or
at some argument setting: the cDPO loss, whose ε = 0 is DPO's, while lesson 02 is graded;
``diagnostics.diagnose``, a ``Diagnosis`` around the learner's own label, while lesson 09 is), and
the registrations. What construction cannot see, :mod:`grader.route_scan` looks for by calling every
function, method and stored function of a lesson's copy on its exercises' probe cases (extra numeric
parameters at 0 and 1 too): ``tests/test_route_scanner.py`` holds every graded lesson's copy to no route.

What changes where is planned in :mod:`grader.withheld_plan` and written by :mod:`grader.withheld_rewrite`;
this module builds the copy from them, does the same to the live library for the self-check, and words the
verdicts.

The source of the withheld functions is not in the copy, nor is any bytecode of it (the copy is
compiled from its own rewritten files). Under the sandbox the copy is bound read-only over the
real ``rlhf_core`` folder, so the real files cannot be read either; without it the copy only comes
first on the kernel's path (see :mod:`grader.sandbox`). The other lessons' references stay: later
exercises build on earlier ones. The grader's judging, outside the kernel, uses the real library.

A probe record that carries a ``WithheldReference`` error is judged "reached for the withheld
reference" (:func:`withheld_verdict`), and :func:`withheld_in_process` gives
``grader.selfcheck.verdict_table`` the same behaviour inside a learner's running notebook: the same
functions run their stand-in's code, and every exercise's judging fields are emptied while its probes
run (judging comes after), so a route the grader closes is closed there too.
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
from pathlib import Path

from rlhf_core.paths import LIBRARY_DIR

from .spec import GradeCell
from .withheld_plan import GUARDS, RUNTIME_MODULE, RUNTIME_NAME, label, module_path, withheld_exercises
from .withheld_rewrite import JUDGING_FIELDS, rewrite_library, runtime_source
from .withheld_runtime import ERROR_NAME, Withholding

__all__ = ["GUARDS", "withheld_exercises", "withheld_library", "withheld_in_process",
           "reached_withheld", "withheld_verdict", "borrowed_verdict"]


# --------------------------------------------------------------------------------------------
# the copy, once per grading run and lesson

_BUILDING = threading.Lock()


def withheld_library(lesson: str, cells: list[GradeCell], scratch: Path) -> Path | None:
    """The folder holding this lesson's withheld copy of ``rlhf_core`` (built under ``scratch`` on the
    first call of a run, reused after); None when the lesson grades no exercise."""
    withheld = withheld_exercises(cells)
    if not withheld:
        return None
    root = LIBRARY_DIR
    key = hashlib.sha256(repr((lesson, sorted(withheld.items()), str(root))).encode()).hexdigest()[:16]
    folder = Path(scratch) / "withheld" / f"{lesson[:40]}-{key}"
    with _BUILDING:
        if not (folder / "complete").exists():
            _build(root, folder, withheld, lesson)
    return folder


def _build(root: Path, folder: Path, withheld: dict[str, str], lesson: str) -> None:
    rewritten = rewrite_library(root, withheld, lesson)
    if folder.exists():
        shutil.rmtree(folder)
    target = folder / "rlhf_core"
    shutil.copytree(root, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo"))
    entries = {}
    for module, done in rewritten.items():
        module_path(target, module).write_text(done.source, encoding="utf-8")
        entries.update(done.entries)
    (target / f"{RUNTIME_MODULE}.py").write_text(runtime_source(lesson, withheld, entries), encoding="utf-8")
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
    rewritten = rewrite_library(LIBRARY_DIR, withheld, lesson)
    entries = {q: e for done in rewritten.values() for q, e in done.entries.items()}
    runtime = Withholding(label(lesson), withheld, entries, namespace)
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
        for exercise in EXERCISES.values():     # every exercise's, as in the copy: judging happens after the block
            for attr, value in _unjudged_fields().items():
                if hasattr(exercise, attr):
                    undo.append((setattr, exercise, attr, getattr(exercise, attr)))
                    setattr(exercise, attr, value)
        undo.append((lambda profile, *_: sys.setprofile(profile), sys.getprofile(), None, None))
        sys.setprofile(watch)
        yield watch
    finally:
        for restore, target, attr, value in reversed(undo):
            restore(target, attr, value)


def _unjudged_fields() -> dict:
    """What an :class:`~rlhf_core.checks.framework.Exercise` holds for judging only, each with its default: the copy
    drops these keywords from every registration (``withheld_rewrite.JUDGING_FIELDS``)."""
    from dataclasses import MISSING, fields

    from rlhf_core.checks.framework import Exercise

    out = {}
    for f in fields(Exercise):
        if f.name in JUDGING_FIELDS:
            out[f.name] = [] if f.name == "mistakes" else f.default if f.default is not MISSING else f.default_factory()
    return out


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
