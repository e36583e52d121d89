"""A lesson's exercise cell asks for the record's function: the same parameters, in the same order, with the same
defaults, as the exercise's signature (read from its reference). The cell's docstring is the lesson's own words for
a learner; the signature is the contract that the check, the module-mode stub and the grader rely on, so a lesson
whose stub drifted from it would ask for a function its check cannot call."""

from __future__ import annotations

import ast

import pytest

from grader.course import lesson_sources, read_lesson_text
from nbtools import ROOT
from rlhf_core.checks import EXERCISES
from rlhf_core.checks.derived import exercise_signature


def exercise_cells():
    for path in lesson_sources(ROOT / "solutions"):
        nb, _ = read_lesson_text(path.read_text(encoding="utf-8"), path.name)
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            if cell.cell_type == "code" and meta.get("solution") and meta.get("grade_id") in EXERCISES:
                yield pytest.param(path.name, meta["grade_id"], cell.source, id=f"{path.name[:2]}-{meta['grade_id']}")


def parameters(source: str, name: str) -> list[tuple[str, object]]:
    """``(name, default)`` of each positional parameter of the function ``name`` defined in ``source``."""
    tree = ast.parse(source)
    found = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name]
    assert len(found) == 1, f"the exercise cell defines {name} {len(found)} times"
    args = found[0].args
    defaults = ["<required>"] * (len(args.args) - len(args.defaults)) + [ast.literal_eval(d) for d in args.defaults]
    return [(a.arg, d) for a, d in zip(args.args, defaults)]


@pytest.mark.parametrize("lesson, name, source", list(exercise_cells()))
def test_the_exercise_cell_asks_for_the_records_signature(lesson, name, source):
    wanted = [(p.name, "<required>" if p.default is p.empty else p.default)
              for p in exercise_signature(EXERCISES[name]).parameters.values()]
    assert parameters(source, name) == wanted, f"{lesson}: {name}'s exercise cell differs from its record's signature"


def test_every_exercise_has_a_cell_in_some_lesson():
    assert {p.values[1] for p in exercise_cells()} == set(EXERCISES)


def test_a_drifted_signature_is_caught():
    source = "def dpo_loss(logp_pol_chosen, logp_pol_rejected, logp_ref_chosen, logp_ref_rejected, beta=0.5):\n    pass\n"
    wanted = [(p.name, "<required>" if p.default is p.empty else p.default)
              for p in exercise_signature(EXERCISES["dpo_loss"]).parameters.values()]
    assert parameters(source, "dpo_loss") != wanted
