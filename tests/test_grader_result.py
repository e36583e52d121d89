"""The grader's result is one typed record (:class:`grader.result.NotebookResult`) with one set of statuses
(:class:`grader.result.Status`): it round-trips through its JSON, and the result files the previous version of the
grader wrote (a dict with the CSV row inside) are still read — into the CSV, the report and the feedback page."""

from __future__ import annotations

import ast
import csv
import json
from pathlib import Path

import pytest

from grader.feedback import feedback_html
from grader.report import summarise
from grader.result import CellVerdict, NotebookResult, Status
from grader.results import read_results, result_path, write_csv, write_result

ROOT = Path(__file__).resolve().parents[1]
LESSON = "02_bradley_terry_and_dpo_loss"

#: A result file exactly as the grader wrote it before the result was typed (a timeout, with its CSV row).
PREVIOUS = {
    "student": "ann", "notebook": LESSON, "score": 3.0, "max_score": 5.0, "status": "timeout",
    "message": "cell 7 ran past the cell's 30 s limit; 1 of 2 checks passed before that",
    "cells": [{"grade_id": "check_dpo_loss", "score": 3.0, "max_score": 3.0, "passed": True, "message": "✓ ok",
               "kind": None, "mistake": None},
              {"grade_id": "check_implicit_reward", "score": 0.0, "max_score": 2.0, "passed": False,
               "message": "not graded: the notebook stopped before this check", "kind": "not run", "mistake": None}],
    "seconds": 31.5, "timing": {"compose": 0.01, "kernel start": 1.2, "judge": 0.02}, "kernel": "warm",
    "row": {"student": "ann", "notebook": LESSON, "score": "3", "max_score": "5", "status": "timeout",
            "message": "cell 7 ran past the cell's 30 s limit; 1 of 2 checks passed before that",
            "isolation": "sandboxed (bwrap)"},
}
#: Older still: before mistake ids, a missing notebook (no cells, no run).
OLDER = {"student": "ben", "notebook": LESSON, "score": 0, "max_score": 5.0, "cells": [], "status": "missing notebook",
         "message": f"no {LESSON}.ipynb in the submission",
         "row": {"student": "ben", "notebook": LESSON, "score": "0", "max_score": "5", "status": "missing notebook",
                 "message": f"no {LESSON}.ipynb in the submission", "isolation": "NOT sandboxed: no bwrap"}}


def write_previous(out: Path, data: dict) -> Path:
    path = result_path(out, data["student"], data["notebook"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))
    return path


def test_a_result_round_trips_through_its_json():
    result = NotebookResult("ada", LESSON, 3.0, 5.0, Status.MEMORY, "cell 3 went over the 1536 MB memory cap",
                            [CellVerdict("check_dpo_loss", 0.0, 3.0, False, "✗ wrong", "mistake", "dpo_loss/no_ref")],
                            seconds=2.5, timing={"compose": 0.1}, kernel="cold", variant="ipo", isolation="sandboxed")
    data = json.loads(json.dumps(result.to_json()))
    assert data["status"] == "memory" and data["row"] == result.csv_row() and data["row"]["isolation"] == "sandboxed"
    assert NotebookResult.from_json(data) == result
    bare = NotebookResult("ada", LESSON, 0, 5.0, Status.MISSING, "no notebook")
    assert set(bare.to_json()) == {"student", "notebook", "score", "max_score", "status", "message", "cells"}


def test_the_previous_versions_result_files_are_read_into_the_csv_the_report_and_the_page(tmp_path):
    write_previous(tmp_path, PREVIOUS)
    write_previous(tmp_path, OLDER)
    ann, ben = read_results(tmp_path)
    assert (ann.status, ann.kernel, ann.isolation, ann.passed_checks) == (Status.TIMEOUT, "warm", "sandboxed (bwrap)", 1)
    assert ann.cells[1].kind == "not run" and ben.status is Status.MISSING and ben.cells == [] and ben.seconds is None
    write_csv(tmp_path)
    with open(tmp_path / "grades.csv", newline="") as f:
        assert list(csv.DictReader(f)) == [PREVIOUS["row"], OLDER["row"]]   # the rows they were written with

    class Lesson:
        max_score, spec = 5.0, [type("Cell", (), {"grade_id": g})() for g in ("check_dpo_loss", "check_implicit_reward")]

    summary = summarise([ann, ben], {LESSON: Lesson()})[LESSON]
    assert dict(summary.statuses) == {"timeout": 1, "missing notebook": 1} and summary.seconds == [31.5]
    assert summary.checks["check_implicit_reward"].other == {"not run": ["ann"]}
    page = feedback_html(ann, __import__("nbformat").v4.new_notebook())
    assert "status: timeout" in page and "Score: 3 / 5" in page


def test_a_file_that_is_not_a_result_is_left_out(tmp_path):
    write_previous(tmp_path, {**PREVIOUS, "status": "finished"})              # no such status
    write_previous(tmp_path, {**OLDER, "cells": "none"})                       # cells not a list
    write_previous(tmp_path, {**OLDER, "student": "cat"}).write_text("{ truncated")
    assert read_results(tmp_path) == []
    with pytest.raises(ValueError):
        NotebookResult.from_json({"notebook": LESSON})


def test_write_result_stores_what_read_results_gives_back(tmp_path):
    result = NotebookResult("dan", LESSON, 5.0, 5.0, Status.GRADED, "all 2 checks passed", isolation="synthetic")
    row = write_result(result_path(tmp_path, "dan", LESSON), result)
    assert row["status"] == "graded" and read_results(tmp_path) == [result]


def test_every_status_is_spelt_in_one_place():
    """No grader module writes a status as a bare string: each names a :class:`Status` (the cgroup controller
    called "memory" in the sandbox is not a status)."""
    values = {status.value for status in Status}
    spelt = [f"{path.name}:{node.lineno}: {node.value!r}" for path in sorted((ROOT / "grader").glob("*.py"))
             if path.name != "result.py"
             for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Constant) and node.value in values
             and not (path.name == "sandbox.py" and node.value == "memory")]
    assert spelt == [], spelt
    assert [str(status) for status in Status] == [status.value for status in Status]   # what the CSV and log show
