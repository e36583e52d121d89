"""The notebook-test and browser-test helpers must be able to fail: feed them known faults."""

import time

import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

import browser
from grader.authoring import nbgrader_meta
from nbtools import student_run_problems


def _cell(grade=False, error=None):
    cell = new_code_cell("pass")
    if grade:
        cell.metadata = nbgrader_meta("check_x", grade=True, locked=True, points=1)
    if error:
        cell.outputs = [new_output("error", ename=error[0], evalue=error[1], traceback=[])]
    return cell


def test_a_correct_student_run_has_no_problems():
    nb = new_notebook(cells=[_cell(), _cell(grade=True, error=("CheckFailed", "✗ x — not implemented yet: …"))])
    assert student_run_problems(nb) == []


def test_a_check_cell_that_passes_on_stubs_is_reported():
    nb = new_notebook(cells=[_cell(grade=True)])
    assert "cannot fail" in student_run_problems(nb)[0]


def test_a_check_cell_failing_with_another_error_is_reported():
    nb = new_notebook(cells=[_cell(grade=True, error=("NotImplementedError", ""))])
    assert "expected the check's own" in student_run_problems(nb)[0]


def test_a_crashing_demo_cell_is_reported():
    nb = new_notebook(cells=[_cell(error=("NotImplementedError", "")), _cell(grade=True, error=("AssertionError", "not implemented yet"))])
    problems = student_run_problems(nb)
    assert len(problems) == 1 and "only check cells may fail" in problems[0]


def test_the_browser_waits_restart_on_progress_and_fail_without_it(monkeypatch):
    """browser.wait_for: a deadline without progress fails; each change of the progress value restarts it."""
    monkeypatch.setattr(browser, "slowness", lambda: 1.0)
    start = time.monotonic()
    with pytest.raises(AssertionError, match="nothing happened for 0 s"):
        browser.wait_for(lambda: False, 0.3, "nothing")
    assert time.monotonic() - start < 2
    ticks = iter(range(1000))
    ends = time.monotonic() + 1.2               # longer than the deadline: only the progress keeps it waiting
    assert browser.wait_for(lambda: time.monotonic() > ends, 0.6, "the clock", progress=lambda: next(ticks))
    shots = []
    with pytest.raises(AssertionError):
        browser.wait_for(lambda: False, 0.2, "nothing", progress=lambda: 0, on_timeout=lambda: shots.append(1))
    assert shots == [1]
