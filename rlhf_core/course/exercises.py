"""Module mode: the exercises as stubs in a plain Python file of your own, outside the notebooks.

Start a file with every exercise's stub, fill the functions in, and run their checks::

    python -m rlhf_core.course.exercises init my_exercises.py      # writes the stubs (never overwrites)
    python -m rlhf_core.course.exercises my_exercises.py           # every check, one line each
    python -m rlhf_core.course.exercises my_exercises.py dpo_loss  # only these exercises

or, in Python, one check at a time::

    import my_exercises
    from rlhf_core.checks import check_dpo_loss
    check_dpo_loss(my_exercises.dpo_loss)

The file is yours: ``init`` on a file that exists only appends the stubs of exercises it does not define
yet (an exercise added to the course after you started), and leaves your functions as they are.

Every stub is generated from the exercise's record (:data:`rlhf_core.checks.EXERCISES`): the signature
and the docstring of the library's reference (the contract, written once, on the reference) and a body
that raises ``NotImplementedError`` (:func:`rlhf_core.checks.derived.stub_source`). This module holds the
same stubs as functions, built at import (``exercises.dpo_loss``…), and :data:`EXERCISE_NAMES`; ``python
-m rlhf_core.course.exercises`` with no file runs the checks on them (none passes) and says how to start.
The notebooks hold the same stubs in their exercise cells.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from ..checks import EXERCISES, CheckFailed, check
from ..checks.derived import STUB_HEADER, stub_function, stub_imports, stub_source

__all__ = ["EXERCISE_NAMES", "stubs_text", "write_stubs", "load_functions", "run_checks", "main"]

#: The exercises, in lesson order: the names of the checks' registry (one list, kept there).
EXERCISE_NAMES = tuple(EXERCISES)


def _stub(exercise):
    function = stub_function(exercise)
    function.__module__ = __name__
    return function


globals().update({name: _stub(exercise) for name, exercise in EXERCISES.items()})


def stubs_text(names: Sequence[str] = EXERCISE_NAMES) -> str:
    """The stubs of ``names`` as the text of a file, each under a comment naming its lesson."""
    parts = []
    for name in names:
        exercise = EXERCISES[name]
        parts.append(f"# ---- lesson {exercise.lesson:02d}: {name} — check with rlhf_core.checks.check_{name}\n\n\n"
                     + stub_source(exercise))
    return "\n\n".join(parts)


def _defined_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}


def write_stubs(path: str | Path) -> list[str]:
    """Write every exercise's stub to ``path``, or append those it does not define yet; returns the names written."""
    path = Path(path)
    if not path.exists():
        header = f'"""My solutions to the DPO course\'s exercises (module mode: python -m rlhf_core.course.exercises {path.name})."""\n\n'
        imports = stub_imports(list(EXERCISES.values()))
        path.write_text(header + STUB_HEADER + (f"\n{imports}" if imports else "") + "\n\n" + stubs_text(), encoding="utf-8")
        return list(EXERCISE_NAMES)
    missing = [name for name in EXERCISE_NAMES if name not in _defined_names(path)]
    if missing:
        text = path.read_text(encoding="utf-8").rstrip("\n")
        path.write_text(text + "\n\n\n" + stubs_text(missing), encoding="utf-8")
    return missing


def load_functions(path: str | Path) -> dict[str, Callable]:
    """The exercise functions a file of stubs defines (imported as a module of its own name)."""
    path = Path(path).resolve()
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return {name: getattr(module, name) for name in EXERCISE_NAMES if callable(getattr(module, name, None))}


def run_checks(functions: dict[str, Callable], names: Sequence[str] = EXERCISE_NAMES) -> int:
    """Run each exercise's check on ``functions[name]`` and print one line each; returns how many failed."""
    failures = 0
    for name in names:
        if name not in functions:
            failures += 1
            print(f"✗ {name}: not in your file — `python -m rlhf_core.course.exercises init FILE` adds its stub")
            continue
        try:
            print(check(EXERCISES[name], functions[name], quiet=True))
        except CheckFailed as exc:
            failures += 1
            print(str(exc))
    print(f"{len(names) - failures}/{len(names)} exercises pass")
    return failures


def main(argv: Sequence[str] | None = None) -> int:
    """``init FILE`` writes the stubs; ``FILE [NAME …]`` checks a file's functions; no argument checks the stubs here."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["init"] and len(args) == 2:
        written = write_stubs(args[1])
        print(f"{args[1]}: {len(written)} stub(s) written" + (f" ({', '.join(written)})" if written else
                                                              " — it already defines every exercise"))
        return 0
    if not args:
        failures = run_checks({name: globals()[name] for name in EXERCISE_NAMES})
        print("Start your own file: python -m rlhf_core.course.exercises init my_exercises.py")
        return 1 if failures else 0
    path, names = Path(args[0]), args[1:] or list(EXERCISE_NAMES)
    unknown = [name for name in names if name not in EXERCISES]
    if not path.is_file() or unknown:
        print("usage: python -m rlhf_core.course.exercises [init] FILE [EXERCISE …]; "
              + (f"no file {path}" if not path.is_file() else f"no exercise {', '.join(unknown)}"
                 f" (one of: {', '.join(EXERCISE_NAMES)})"))
        return 2
    return 1 if run_checks(load_functions(path), names) else 0


if __name__ == "__main__":
    raise SystemExit(main())
