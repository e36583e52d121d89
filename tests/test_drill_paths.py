"""Every path a candidate may take through the released lesson 10, for each of the five papers.

The lesson tells a candidate to write only their own paper's exercise. These tests drive the *released* notebook
(notebooks/10_mock_interview.ipynb, as ``grader release`` builds it) in a real kernel, cell by cell, on each variant
(``RLHF_DRILL_VARIANT``), along the three paths a candidate takes:

* **own cells only**: every code cell but the other papers' exercise cells, the solution's code in the candidate's
  own exercise cells. Nothing may raise: the other papers' check cells say "skipped: not your paper", the toy trains,
  the scorecard is an attempt and goes into the history.
* **a restart halfway**: the same, but the kernel restarts just before the candidate's own Exercise 1; the new kernel
  runs the setup cell and goes on from that exercise. The drill is resumed (same paper), nothing raises, and the
  attempt is saved.
* **Run All of the untouched lesson**: only the candidate's own check cells fail (their stubs: "not implemented yet"),
  nothing else raises, the scorecard says it is not an attempt, nothing is saved, and the next start draws DPO.

One kernel per path and variant (two for the restart); each history is a folder of its own.
"""

from __future__ import annotations

import json
import os

import nbformat
import pytest
from nbclient import NotebookClient

from nbtools import ROOT, grade_id, is_check_cell, skipped_checks, student_run_problems
from rlhf_core.course.variants import VARIANTS

pytestmark = pytest.mark.notebook

RELEASED = ROOT / "notebooks" / "10_mock_interview.ipynb"
SOLUTION = ROOT / "solutions" / "10_mock_interview.ipynb"
EXERCISES = {name for v in VARIANTS.values() for name in v.exercises}


def _answers() -> dict[str, str]:
    nb = nbformat.read(SOLUTION, as_version=4)
    return {grade_id(c): c.source for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")}


def _text(cell) -> str:
    """What a cell showed: its printed text and the plain-text form of what it displayed."""
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(out.get("text", ""))
        elif out.get("output_type") in ("display_data", "execute_result"):
            parts.append(out.get("data", {}).get("text/plain", ""))
    return "".join(parts)


def _errors(cell) -> list[str]:
    return [f"{o['ename']}: {o['evalue'][:300]}" for o in cell.get("outputs", []) if o.get("output_type") == "error"]


def _own_cells_notebook(variant: str):
    """The released lesson with the solution in ``variant``'s exercise cells, and the indices of the code cells a
    candidate on that paper runs (all but the other papers' exercise cells), in order."""
    nb = nbformat.read(RELEASED, as_version=4)
    answers, own = _answers(), set(VARIANTS[variant].exercises)
    run = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        gid = grade_id(cell)
        if gid in EXERCISES and gid not in own:
            continue                                   # another paper's exercise: the candidate never runs it
        if gid in own:
            cell.source = answers[gid]
        run.append(i)
    return nb, run


def _kernel(nb) -> NotebookClient:
    return NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=True,
                          resources={"metadata": {"path": str(RELEASED.parent)}})


def _run(nb, indices: list[int]) -> dict[int, list[str]]:
    """Run the cells ``indices`` of ``nb`` in one fresh kernel; ``{cell index: its errors}`` for those that raised."""
    client, raised = _kernel(nb), {}
    with client.setup_kernel():
        for i in indices:
            client.execute_cell(nb.cells[i], i)
            if _errors(nb.cells[i]):
                raised[i] = _errors(nb.cells[i])
    return raised


@pytest.fixture
def history(tmp_path, monkeypatch):
    """A history folder of this test's own, which the kernels inherit."""
    monkeypatch.setenv("RLHF_DRILL_HISTORY", str(tmp_path))
    return tmp_path


def _saved(history) -> list[dict]:
    file = history / "history.jsonl"
    return [json.loads(line) for line in file.read_text().splitlines()] if file.exists() else []


def _assert_skips_and_an_attempt(nb, indices, variant, history):
    texts = {i: _text(nb.cells[i]) for i in indices}
    for i in indices:
        cell = nb.cells[i]
        if is_check_cell(cell) and grade_id(cell) in skipped_checks(nb, variant):
            assert "skipped: not your paper" in texts[i], (grade_id(cell), texts[i][:300])
    card = next(t for t in texts.values() if "DRILL SCORECARD" in t)
    v = VARIANTS[variant]
    assert v.title in card and f"{v.exercise} implemented" in card and "is an attempt" in card, card[-600:]
    assert f"✓ check_{v.exercise}" in card and "✓ check_implicit_reward" in card, card[:2000]
    (record,) = _saved(history)
    assert record["variant"] == variant and record["real"] is True and f"{v.exercise} implemented" in record["evidence"]


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_running_only_your_own_papers_cells_raises_nothing(variant, history, monkeypatch):
    monkeypatch.setenv("RLHF_DRILL_VARIANT", variant)
    nb, indices = _own_cells_notebook(variant)
    raised = _run(nb, indices)
    assert raised == {}, {f"cell {i} ({grade_id(nb.cells[i]) or nb.cells[i].get('id')})": e for i, e in raised.items()}
    _assert_skips_and_an_attempt(nb, indices, variant, history)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_a_restart_halfway_resumes_the_drill_from_your_own_cell(variant, history, monkeypatch):
    monkeypatch.setenv("RLHF_DRILL_VARIANT", variant)
    nb, indices = _own_cells_notebook(variant)
    mine = next(k for k, i in enumerate(indices) if grade_id(nb.cells[i]) == VARIANTS[variant].exercise)
    setup = next(i for i in indices if grade_id(nb.cells[i]) == "setup")
    before = _run(nb, indices[:mine])                       # read, explain, implement begun; then the kernel restarts
    after = _run(nb, [setup] + indices[mine:])              # the setup cell again, then on from Exercise 1
    raised = {**before, **after}
    assert raised == {}, {f"cell {i} ({grade_id(nb.cells[i]) or nb.cells[i].get('id')})": e for i, e in raised.items()}
    resumed = _text(nb.cells[indices[mine + 1]])            # Exercise 1's check cell: the first to need the drill
    assert "resumed the drill" in resumed and VARIANTS[variant].short_title in resumed, resumed[:500]
    _assert_skips_and_an_attempt(nb, indices[mine:], variant, history)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_run_all_of_the_untouched_lesson_fails_only_your_checks_and_saves_no_attempt(variant, history, monkeypatch):
    monkeypatch.setenv("RLHF_DRILL_VARIANT", variant)
    nb = nbformat.read(RELEASED, as_version=4)
    _run(nb, [i for i, c in enumerate(nb.cells) if c.cell_type == "code"])
    assert student_run_problems(nb, skipped_checks(nb, variant)) == []
    assert all(not _errors(c) or is_check_cell(c) for c in nb.cells)
    card = next(_text(c) for c in nb.cells if "DRILL SCORECARD" in _text(c))
    assert "is not an attempt" in card
    assert "Not saved: nothing was written" in "".join(_text(c) for c in nb.cells)
    assert _saved(history) == []
    # the candidate's next start, in a new kernel, is their first real attempt: DPO
    monkeypatch.delenv("RLHF_DRILL_VARIANT")
    from rlhf_core.course import drill as drill_module

    monkeypatch.setattr(drill_module, "_CURRENT", None)
    assert drill_module.choose_variant(None, history=history)[0].key == "dpo"
    assert os.listdir(history) == ["current-drill.json"]
