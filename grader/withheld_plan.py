"""What the withheld copy of ``rlhf_core`` changes, module by module, for a lesson's exercises (:mod:`grader.withheld`).

A lesson's withheld exercises (:func:`withheld_exercises`) give each module of the library a :class:`ModulePlan`:
the functions whose body is replaced (the exercise's reference, and each function its record names in
``same_answer``), the ``Exercise(...)`` registrations trimmed to what probing needs, and the :data:`GUARDS` put
first in a function. Every other exercise's registration, whatever its lesson, loses its judging
(:func:`unjudged`): the known mistakes of every exercise are near-answers of some exercise (cDPO with ε ignored
*is* DPO's loss), and judging happens outside the kernel. :mod:`grader.withheld_rewrite` then rewrites each
module's source by its plan.
"""

from __future__ import annotations

import ast
import inspect
import types
from dataclasses import dataclass, field
from pathlib import Path

from rlhf_core.checks import judge
from rlhf_core.course.notebook import yours_or_reference

from .spec import GradeCell

__all__ = ["GUARDS", "RUNTIME_MODULE", "RUNTIME_NAME", "ModulePlan", "Stub", "label", "module_path", "names_in",
           "plan_library", "unjudged", "withheld_exercises"]

RUNTIME_MODULE = "_withheld"          # rlhf_core/_withheld.py in the copy
RUNTIME_NAME = "_rlhf_withheld"       # the name a rewritten module knows it by

#: Statements put first in a library function of the copy: ``(module, function) -> source``.
GUARDS: dict[tuple[str, str], str] = {
    (judge.__module__, "judge"):      # the module that defines it, wherever rlhf_core.checks takes it from
        f"if {RUNTIME_NAME}.is_withheld(getattr(exercise, 'name', None)):\n"
        f"    raise CheckFailed({RUNTIME_NAME}.not_judged_here(exercise.name))",
    (yours_or_reference.__module__, "yours_or_reference"):
        f"if {RUNTIME_NAME}.is_withheld(name):\n"
        f"    return {RUNTIME_NAME}.use_yours(name, candidate)",
}


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


@dataclass
class Stub:
    exercise: str
    candidate: str | None          # the learner's name that stands in, or None: it raises
    via: str | None = None         # or an expression that calls exercise functions


@dataclass
class ModulePlan:
    stubs: dict[str, Stub] = field(default_factory=dict)       # function name -> what stands in
    trimmed: set[str] = field(default_factory=set)              # withheld exercises whose Exercise(...) is here
    unjudged: set[str] = field(default_factory=set)             # every other exercise whose Exercise(...) is here
    guards: dict[str, str] = field(default_factory=dict)        # function name -> guard source


def plan_library(withheld: dict[str, str]) -> dict[str, ModulePlan]:
    from rlhf_core.checks import EXERCISES

    plans: dict[str, ModulePlan] = {}

    def at(qualname: str) -> tuple[ModulePlan, str]:
        module, _, name = qualname.rpartition(".")
        return plans.setdefault(module, ModulePlan()), name

    for exercise, candidate in withheld.items():
        reference = inspect.unwrap(EXERCISES[exercise].reference)
        module = getattr(reference, "__module__", "") or ""
        if not module.startswith("rlhf_core.") or not isinstance(reference, types.FunctionType):
            raise ValueError(f"cannot withhold {exercise}: its reference is not a function of rlhf_core ({reference!r})")
        plan, name = at(f"{module}.{reference.__name__}")
        plan.stubs[name] = Stub(exercise, candidate)
        cases_module = getattr(EXERCISES[exercise].cases, "__module__", "") or ""
        plans.setdefault(cases_module, ModulePlan()).trimmed.add(exercise)
        for qualname, via in EXERCISES[exercise].same_answer.items():
            plan, name = at(qualname)
            if via is not None and not (names_in(via) & set(EXERCISES)) <= set(withheld):
                via = None   # it would reach a reference that stays: nothing stands in
            plan.stubs.setdefault(name, Stub(exercise, None, via))
    unjudged(plans, withheld)
    for (module, function), source in GUARDS.items():
        plans.setdefault(module, ModulePlan()).guards[function] = source
    return plans


def unjudged(plans: dict[str, ModulePlan], withheld) -> None:
    """Every exercise of the registry that the lesson does not withhold loses its judging in the copy too: its
    ``Exercise(...)`` keeps no known mistakes (nor the other judge-only fields), and the private functions of its
    module that nothing then uses are withheld (:mod:`grader.withheld_rewrite`)."""
    from rlhf_core.checks import EXERCISES

    for name, exercise in EXERCISES.items():
        if name not in withheld:
            module = getattr(exercise.cases, "__module__", "") or ""
            plans.setdefault(module, ModulePlan()).unjudged.add(name)


def names_in(expression: str) -> set[str]:
    return {node.id for node in ast.walk(ast.parse(expression, mode="eval")) if isinstance(node, ast.Name)}


def module_path(root: Path, module: str) -> Path:
    parts = module.split(".")[1:]
    path = root.joinpath(*parts)
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def label(lesson: str) -> str:
    """How messages name a lesson: its number ("02"), else its name."""
    return lesson[:2] if lesson[:2].isdigit() else lesson
