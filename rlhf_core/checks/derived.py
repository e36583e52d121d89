"""What is read from an exercise's record, never written again: its contract, ``check_<name>``, its stub
and its check cell.

* **The contract** is the reference's own signature and docstring (:func:`exercise_signature`, the
  record's ``docstring``): the reference's parameters less its keyword-only ones and those the record
  names in ``library_only`` (the library's extras, such as a swappable ``loss_fn``).
* **``check_<name>``** (:func:`make_check`): ``check_<name>(candidate, seed=0, quiet=False)``, exported by
  :mod:`rlhf_core.checks` for every registered exercise. It prints one ``✓`` line (nothing with
  ``quiet=True``) and returns None, or raises :class:`~rlhf_core.checks.framework.CheckFailed`.
* **The stub** (:func:`stub_source`): ``def <name><signature>:``, the docstring, ``raise
  NotImplementedError`` — what module mode writes into a learner's file (:mod:`rlhf_core.course.exercises`)
  and what a lesson's exercise cell starts from.
* **The check cell** (:func:`check_cell_source`): the visible check (seed 0) and the hidden tests at the
  record's ``hidden_seeds``, as a lesson's graded cell holds them (its points: the record's ``points``).
"""

from __future__ import annotations
import __future__

import ast
import builtins
import inspect
from collections.abc import Callable

from .framework import EXERCISES, Exercise, check

__all__ = ["exercise_signature", "signature_source", "stub_source", "stub_imports", "stub_function", "check_cell_source",
           "make_check", "STUB_HEADER"]

#: What a file of stubs starts with (the names its bodies usually need; annotations are never evaluated).
STUB_HEADER = ("from __future__ import annotations\n\n"
               "import math\n\n"
               "import torch\n"
               "import torch.nn.functional as F\n"
               "from torch import Tensor\n")


def exercise_signature(exercise: Exercise) -> inspect.Signature:
    """The exercise's signature: the reference's, less keyword-only parameters and ``library_only`` ones."""
    signature = inspect.signature(exercise.reference)
    keep = [p for p in signature.parameters.values()
            if p.kind is not inspect.Parameter.KEYWORD_ONLY and p.name not in exercise.library_only]
    return signature.replace(parameters=keep)


def _annotation(annotation) -> str:
    if annotation is inspect.Parameter.empty:
        return ""
    return annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)


def _parameter_texts(exercise: Exercise, annotations: bool) -> tuple[list[str], str]:
    """Each parameter as source text, and the return annotation ("" when none)."""
    signature = exercise_signature(exercise)
    parts = []
    for p in signature.parameters.values():
        note = _annotation(p.annotation) if annotations else ""
        text = p.name + (f": {note}" if note else "")
        if p.default is not inspect.Parameter.empty:
            text += f" = {p.default!r}" if note else f"={p.default!r}"
        parts.append({inspect.Parameter.VAR_POSITIONAL: "*", inspect.Parameter.VAR_KEYWORD: "**"}.get(p.kind, "") + text)
    return parts, _annotation(signature.return_annotation) if annotations else ""


def signature_source(exercise: Exercise, annotations: bool = True) -> str:
    """The signature as source text, ``(logp_pol: Tensor, beta: float = 0.1) -> Tensor`` (annotations
    written as the reference's source spells them)."""
    parts, returns = _parameter_texts(exercise, annotations)
    return f"({', '.join(parts)})" + (f" -> {returns}" if returns else "")


def _docstring_literal(text: str, indent: str) -> str:
    body = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    if body.endswith('"'):
        body = body[:-1] + '\\"'
    lines = body.splitlines() or [""]
    if len(lines) == 1:
        return f'{indent}"""{lines[0]}"""'
    rest = "\n".join(f"{indent}{line}" if line else "" for line in lines[1:])
    return f'{indent}"""{lines[0]}\n{rest}\n{indent}"""'


def stub_source(exercise: Exercise) -> str:
    """The exercise's stub as source: the reference's signature and docstring, ``raise NotImplementedError``."""
    head = f"def {exercise.name}{signature_source(exercise)}:"
    if len(head) > 110:   # one parameter a line, as a formatter would
        params, returns = _parameter_texts(exercise, annotations=True)
        head = (f"def {exercise.name}(\n" + "".join(f"    {p},\n" for p in params) + ")"
                + (f" -> {returns}" if returns else "") + ":")
    return f"{head}\n{_docstring_literal(exercise.docstring, '    ')}\n    raise NotImplementedError\n"


def stub_imports(exercises: list[Exercise]) -> str:
    """The imports a file of these stubs needs for its annotations' names beyond :data:`STUB_HEADER`'s (under
    ``TYPE_CHECKING``: an editor resolves them, Python never evaluates them), found in each reference's module."""
    known = {"torch", "F", "Tensor", "math"} | set(dir(builtins))
    found: dict[str, str] = {}
    for exercise in exercises:
        params, returns = _parameter_texts(exercise, annotations=True)
        notes = [p.split(":", 1)[1].split(" = ")[0] for p in params if ":" in p] + ([returns] if returns else [])
        for note in notes:
            for node in ast.walk(ast.parse(note.strip(), mode="eval")):
                name = node.id if isinstance(node, ast.Name) else None
                home = getattr(exercise.reference.__globals__.get(name), "__module__", None) if name else None
                if name and name not in known and home:
                    found.setdefault(name, home)
    if not found:
        return ""
    lines = "".join(f"    from {home} import {name}\n" for name, home in sorted(found.items(), key=lambda kv: (kv[1], kv[0])))
    return f"from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:  # names the annotations use\n{lines}"


def stub_function(exercise: Exercise) -> Callable:
    """The stub as a function (defined from :func:`stub_source`, so its signature and docstring are the text's)."""
    namespace: dict = {}
    flags = __future__.annotations.compiler_flag     # annotations stay text, as in the reference's module
    exec(compile(STUB_HEADER + "\n\n" + stub_source(exercise), f"<stub of {exercise.name}>", "exec", flags=flags,
                 dont_inherit=True), namespace)
    return namespace[exercise.name]


def check_cell_source(exercise: Exercise) -> str:
    """The graded check cell of a lesson: the visible check, then the hidden tests at the record's seeds."""
    name = exercise.name
    hidden = "".join(f"check_{name}({name}, seed={seed}, quiet=True)\n" for seed in exercise.hidden_seeds)
    return (f"from rlhf_core.checks import check_{name}\ncheck_{name}({name})\n"
            + (f"### BEGIN HIDDEN TESTS\n{hidden}### END HIDDEN TESTS\n" if hidden else ""))


def make_check(name: str) -> Callable[..., None]:
    """``check_<name>``: the exercise's check, reading its record from :data:`EXERCISES` at each call."""
    exercise = EXERCISES[name]

    def check_exercise(candidate: Callable, seed: int = 0, quiet: bool = False) -> None:
        check(EXERCISES[name], candidate, seed, quiet)

    check_exercise.__name__ = check_exercise.__qualname__ = f"check_{name}"
    check_exercise.__module__ = "rlhf_core.checks"
    check_exercise.__doc__ = (
        f"Check your ``{name}{signature_source(exercise, annotations=False)}`` against the library's reference.\n\n"
        f"Prints one ``✓ {exercise.summary}`` line (nothing with ``quiet=True``) and returns None; otherwise raises "
        "CheckFailed (an AssertionError) saying what was expected, what came back and the likely mistake. "
        "``seed`` draws other random cases.")
    return check_exercise
