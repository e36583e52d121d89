"""The lessons: one source (solutions/), released through nbgrader (notebooks/), executed here.

Each notebook is executed once per `make test`. A *solution* notebook runs top to bottom in a fresh
kernel: no cell may raise (what `pytest --nbval-lax solutions/` checks, which still works by hand),
and nbgrader's validator, reading that run's outputs instead of executing it again, must find no
failing check. A *student* notebook runs with its stubs: each check cell fails with its own verdict,
no other cell fails, and nbgrader's validator agrees. The tests that execute a notebook are marked
``notebook`` (deselected by `make check`).
"""

from __future__ import annotations

import re

import nbformat
import pytest

from grader.release import lint_source, release
from nbtools import ROOT, errors_by_cell, execute, grade_id, is_check_cell, student_run_problems

SOLUTIONS = sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))
STUDENT = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
ids = lambda paths: [p.stem for p in paths]


def test_there_are_lessons_and_each_has_a_student_version():
    assert SOLUTIONS, "no solution notebooks"
    assert [p.name for p in SOLUTIONS] == [p.name for p in STUDENT]


def test_notebooks_are_a_fresh_release_of_solutions(capsys):
    assert release(check=True) == 0, capsys.readouterr().out


@pytest.mark.parametrize("path", SOLUTIONS, ids=ids(SOLUTIONS))
def test_source_notebook_passes_the_release_lint(path):
    assert lint_source(path) == []


@pytest.mark.parametrize("path", SOLUTIONS, ids=ids(SOLUTIONS))
def test_lesson_has_the_course_structure(path):
    nb = nbformat.read(path, as_version=4)
    prose = [c.source for c in nb.cells if c.cell_type == "markdown"]
    assert all(word in prose[0] for word in ("Goals", "Prerequisites", "Time")), "first cell: goals, prerequisites, time"
    assert "Takeaways" in prose[-1] and "Interview questions" in prose[-1], "last cell: takeaways and interview questions"
    cells = nb.cells
    for i, cell in enumerate(cells):
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution") and not meta["grade_id"].startswith("written_"):  # written answers have no check
            header = next(c.source for c in reversed(cells[:i]) if c.cell_type == "markdown")
            assert "★" in header and re.search(r"\d+ min", header), f"exercise {meta['grade_id']}: header needs ★ difficulty and minutes"
            after = [c.source for c in cells[i + 1:] if c.cell_type == "markdown"]
            assert after and "<details>" in after[0], f"exercise {meta['grade_id']}: a <details> hint after its check"
            assert any(is_check_cell(c) for c in cells[i + 1:]), f"exercise {meta['grade_id']} has no check cell after it"
    assert any("plt." in c.source or "plot_" in c.source for c in cells if c.cell_type == "code"), "at least one plot"


@pytest.mark.parametrize("path", STUDENT, ids=ids(STUDENT))
def test_student_notebook_has_no_answers_hidden_tests_or_outputs(path):
    text = path.read_text(encoding="utf-8")
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
        assert marker not in text
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None
        if cell.metadata.get("nbgrader", {}).get("solution"):
            assert "raise NotImplementedError()" in cell.source


@pytest.mark.notebook
@pytest.mark.parametrize("path", STUDENT, ids=ids(STUDENT))
def test_student_notebook_fails_exactly_at_its_check_cells(path, tmp_path):
    """One execution of the student version with its stubs: each check cell fails with the check's own
    verdict, nothing else fails, and nbgrader's validator, reading the same outputs, agrees."""
    from nbgrader.preprocessors import CheckCellMetadata
    from nbgrader.validator import Validator

    nb = execute(path, allow_errors=True)
    assert student_run_problems(nb) == []
    executed = tmp_path / path.name
    nbformat.write(nb, executed)
    failed = Validator(preprocessors=[CheckCellMetadata]).validate(str(executed)).get("failed", [])
    assert len(failed) == sum(is_check_cell(c) for c in nb.cells), "nbgrader validate should report every check cell"


@pytest.mark.notebook
@pytest.mark.parametrize("path", SOLUTIONS, ids=ids(SOLUTIONS))
def test_solution_runs_without_an_error_and_nbgrader_validate_passes(path, tmp_path):
    """The one execution of each solution notebook: no cell raises, and nbgrader's own validator, given
    the executed notebook (its CheckCellMetadata step only, not its ClearOutput and Execute steps), finds
    no failing check."""
    from nbgrader.preprocessors import CheckCellMetadata
    from nbgrader.validator import Validator

    nb = execute(path, allow_errors=True)
    errors = errors_by_cell(nb)
    assert errors == {}, {i: f"{e['ename']}: {e['evalue'][:300]}" for i, e in errors.items()}
    executed = tmp_path / path.name
    nbformat.write(nb, executed)
    assert Validator(preprocessors=[CheckCellMetadata]).validate(str(executed)) == {}


NO_REFERENCE_DPO_LOSS = '''
import torch.nn.functional as F


def dpo_loss(logp_pol_chosen, logp_pol_rejected, logp_ref_chosen, logp_ref_rejected, beta=0.1):
    return -F.logsigmoid(beta * (logp_pol_chosen - logp_pol_rejected)).mean()   # forgot the reference
'''


@pytest.mark.notebook
def test_the_drill_scorecard_shows_a_wrong_dpo_loss_and_its_hints(tmp_path):
    path = ROOT / "solutions" / "10_mock_interview.ipynb"
    nb = nbformat.read(path, as_version=4)
    next(c for c in nb.cells if grade_id(c) == "dpo_loss").source = NO_REFERENCE_DPO_LOSS
    wrong = tmp_path / path.name
    nbformat.write(nb, wrong)
    executed = execute(wrong, allow_errors=True)
    outputs = ["".join(o.get("text", "") for o in c.get("outputs", []) if o.get("output_type") == "stream")
               for c in executed.cells if c.cell_type == "code"]
    card = next(text for text in outputs if "DRILL SCORECARD" in text)
    assert "✗ 1." in card and "reference term" in card          # sanity check 1 fails, with its hint
    assert "✗ check_dpo_loss" in card and "drop log π_ref" in card
    assert "forgot the reference term" in card                  # the red flag
    assert "✓ 6." in card                                        # implicit_reward is still right
    assert any("elapsed of 60:00" in text for text in outputs)
