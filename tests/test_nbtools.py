"""The notebook-test helpers must be able to fail: feed them executed notebooks with known faults."""

from nbformat.v4 import new_code_cell, new_notebook, new_output

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
