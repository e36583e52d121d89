"""The lessons: one source (the texts solutions/NN_*.py, built into solutions/NN_*.ipynb), released through nbgrader
(notebooks/), executed here. (The texts themselves: tests/test_lesson_sources.py.)

Each notebook is executed once per `make test`. A *solution* notebook runs top to bottom in a fresh
kernel: no cell may raise (what `pytest --nbval-lax solutions/` checks, which still works by hand),
and nbgrader's validator, reading that run's outputs instead of executing it again, must find no
failing check. A *student* notebook runs with its stubs, as a learner's Run All runs it (nbclient with
its default settings, which stop at a cell that raises unless it is tagged ``raises-exception``): the
run reaches the last cell, each check cell fails with its own verdict, no other cell fails, and
nbgrader's validator agrees. The tests that execute a notebook are marked ``notebook`` (deselected by
`make check`).
"""

from __future__ import annotations

import re

import nbformat
import pytest

from grader.release import RUN_ALL_TAG, lint_source, release, untagged_check_cells
from nbtools import (
    EXECUTED,
    ROOT,
    errors_by_cell,
    execute,
    grade_id,
    is_check_cell,
    last_code_cell_ran,
    run_all,
    skipped_checks,
    student_run_problems,
)

SOLUTIONS = sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))
STUDENT = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
ids = lambda paths: [p.stem for p in paths]


def test_there_are_lessons_and_each_has_a_student_version():
    assert SOLUTIONS, "no solution notebooks"
    assert [p.name for p in SOLUTIONS] == [p.name for p in STUDENT]


def test_notebooks_are_a_fresh_release_of_solutions(capsys):
    assert release(check=True) == 0, capsys.readouterr().out


@pytest.mark.parametrize("path", SOLUTIONS, ids=ids(SOLUTIONS))
def test_lesson_source_passes_the_release_lint(path):
    assert lint_source(path.with_suffix(".py")) == []      # the text, and the notebook it gives


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


@pytest.mark.parametrize("path", STUDENT, ids=ids(STUDENT))
def test_every_check_cell_of_the_student_version_lets_run_all_go_on(path):
    assert untagged_check_cells(nbformat.read(path, as_version=4)) == [], f"check cells without {RUN_ALL_TAG!r}"
    others = [grade_id(c) or i for i, c in enumerate(nbformat.read(path, as_version=4).cells)
              if RUN_ALL_TAG in c.metadata.get("tags", []) and not is_check_cell(c)]
    assert others == [], f"only check cells may carry {RUN_ALL_TAG!r}: a failing lesson cell must still stop Run All"


def test_the_release_lint_refuses_the_run_all_tag_in_a_source(tmp_path):
    source = nbformat.read(SOLUTIONS[0], as_version=4)
    next(c for c in source.cells if is_check_cell(c)).metadata["tags"] = [RUN_ALL_TAG]
    nbformat.write(source, tmp_path / SOLUTIONS[0].name)
    assert any(RUN_ALL_TAG in problem for problem in lint_source(tmp_path / SOLUTIONS[0].name))


def test_release_check_names_a_check_cell_without_the_run_all_tag():
    nb = nbformat.read(STUDENT[0], as_version=4)
    first = next(c for c in nb.cells if is_check_cell(c))
    first.metadata["tags"] = [t for t in first.metadata.get("tags", []) if t != RUN_ALL_TAG]
    assert untagged_check_cells(nb) == [grade_id(first)]


@pytest.mark.notebook
@pytest.mark.parametrize("path", STUDENT, ids=ids(STUDENT))
def test_student_notebook_fails_exactly_at_its_check_cells(path, tmp_path):
    """One execution of the student version with its stubs, as a learner's Run All (nbclient's default
    settings: a cell that raises stops the run unless it is tagged): the run reaches the last cell,
    each check cell fails with the check's own verdict, nothing else fails, and nbgrader's validator,
    reading the same outputs, agrees."""
    from nbgrader.preprocessors import CheckCellMetadata
    from nbgrader.validator import Validator

    nb = run_all(path)
    assert last_code_cell_ran(nb), "Run All did not reach the last code cell"
    assert all(c.get("execution_count") is not None for c in nb.cells if c.cell_type == "code"), "a code cell did not run"
    skipped = skipped_checks(nb)    # lesson 10, as the tests run it (RLHF_DRILL_VARIANT=dpo): the other variants' cells
    assert student_run_problems(nb, skipped) == []
    executed = tmp_path / path.name
    nbformat.write(nb, executed)
    failed = Validator(preprocessors=[CheckCellMetadata]).validate(str(executed)).get("failed", [])
    expected = sum(is_check_cell(c) for c in nb.cells) - len(skipped)
    assert len(failed) == expected, f"nbgrader validate should report every check cell but the {len(skipped)} that skip"


LESSON_10 = "10_mock_interview.ipynb"


def shown(cell) -> str:
    """What a code cell printed and displayed, as text (lesson 10's scorecard and history are displayed: HTML tables
    in the notebook, their plain-text form beside them)."""
    return "".join(o.get("text", "") if o.get("output_type") == "stream" else o.get("data", {}).get("text/plain", "")
                   for o in cell.get("outputs", []) if o.get("output_type") in ("stream", "display_data", "execute_result"))


OTHER_VARIANTS = ["ipo", "cdpo", "simpo", "orpo"]   # DPO, the tests' default variant, is run by the tests above


@pytest.mark.notebook
@pytest.mark.parametrize("variant", OTHER_VARIANTS)
def test_lesson_10_runs_as_a_solution_and_fails_only_at_its_own_check_cells_for_every_variant(variant, monkeypatch):
    """Lesson 10 on each other drill variant (the kernel reads RLHF_DRILL_VARIANT): the solution runs without an
    error, its scorecard shows the variant's checks all green, and the released version's Run All reaches the end,
    failing exactly at the check cells of that variant (its loss and implicit_reward) while the rest skip."""
    monkeypatch.setenv("RLHF_DRILL_VARIANT", variant)
    solved = execute(ROOT / "solutions" / LESSON_10, allow_errors=True)
    errors = errors_by_cell(solved)
    assert errors == {}, {i: f"{e['ename']}: {e['evalue'][:300]}" for i, e in errors.items()}
    text = "\n".join(shown(c) for c in solved.cells if c.cell_type == "code")
    from rlhf_core.course.variants import VARIANTS

    v = VARIANTS[variant]
    assert f"This attempt's paper: {v.title}" in text and f"✓ check_{v.exercise}" in text
    card = text[text.index("DRILL SCORECARD"):]
    assert "✗" not in card.split("Rubric")[0], card[:1500]        # every sanity and stronger check green
    released = run_all(ROOT / "notebooks" / LESSON_10)
    assert last_code_cell_ran(released)
    skipped = skipped_checks(released, variant)
    failing = {grade_id(c) for c in released.cells if is_check_cell(c)} - skipped
    assert failing == {f"check_{v.exercise}", "check_implicit_reward"}
    assert student_run_problems(released, skipped) == []


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
    EXECUTED.mkdir(parents=True, exist_ok=True)
    # its figures are screenshotted in JupyterLab (test_browser, maybe on another pytest-xdist worker at the same
    # time): written whole, then renamed, so that test never reads half a notebook
    partial = EXECUTED / f".{path.name}.partial"
    nbformat.write(nb, partial)
    partial.replace(EXECUTED / path.name)
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
    outputs = [shown(c) for c in executed.cells if c.cell_type == "code"]
    card = next(text for text in outputs if "DRILL SCORECARD" in text)
    assert "✗ 1." in card and "reference term" in card          # sanity check 1 fails, with its hint
    assert "✗ check_dpo_loss" in card and "drop log π_ref" in card
    assert "forgot the reference term" in card                  # the red flag
    assert "✓ 6." in card                                        # implicit_reward is still right
    assert any("elapsed of 60:00" in text for text in outputs)


@pytest.mark.notebook
def test_nbval_still_fails_each_check_cell_of_a_released_lesson():
    """`pytest --nbval-lax notebooks/…` run from this repository: nbval reads `raises-exception` as "may
    raise", and the repository's conftest.py gives nbgrader's check cells their strictness back, so
    exactly the check cells fail on the unfilled stubs."""
    import subprocess
    import sys

    path = ROOT / "notebooks" / "02_bradley_terry_and_dpo_loss.ipynb"
    checks = sum(is_check_cell(c) for c in nbformat.read(path, as_version=4).cells)
    done = subprocess.run([sys.executable, "-m", "pytest", "--nbval-lax", "-rf", str(path.relative_to(ROOT))],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-500:]
    assert done.returncode == 1 and re.search(rf"\b{checks} failed\b", summary), summary
    assert "Cell execution caused an exception" in done.stdout
