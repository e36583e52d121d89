"""Grading one notebook: the submission read, composed, run, judged — a result dict.

Every notebook ends with a status and a one-line reason: ``graded``, ``timeout``, ``memory``,
``kernel died``, ``invalid notebook``, ``missing notebook``, ``unexpected notebook``, or ``grader
error`` when the grader's own code failed on it (the exception, in one line, is the reason). A
notebook that stops early keeps the points of the checks that ran before it stopped.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
from nbformat.v4 import new_output

from .compose import compose
from .course import Lesson
from .execute import run_notebook
from .judge import CellVerdict, judge_cell
from .plan import Item, SecretSeeds
from .sandbox import Isolation, Limits
from .withheld import withheld_library
from .wording import short_form

__all__ = ["read_submission", "grade_one", "grade_item", "grader_error", "summary_message"]

MAX_NOTEBOOK_BYTES = 50_000_000
_STUDENT = re.compile(r"^[A-Za-z0-9_.@+-]{1,100}$")


def read_submission(path: Path):
    """``(notebook, None)`` or ``(None, reason)`` — never raises for a bad file."""
    try:
        size = path.stat().st_size
        if size == 0:
            return None, "the file is empty"
        if size > MAX_NOTEBOOK_BYTES:
            return None, f"the file is {size // 2**20} MB, over the {MAX_NOTEBOOK_BYTES // 2**20} MB limit"
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return None, f"not UTF-8 text (byte {exc.start}): save the notebook from Jupyter again"
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON (line {exc.lineno}, column {exc.colno}): was the file edited by hand or truncated?"
    except OSError as exc:
        return None, f"cannot read the file: {exc.strerror}"
    if not isinstance(data, dict) or "cells" not in data and "worksheets" not in data:
        return None, "not a Jupyter notebook (no cells)"
    major = data.get("nbformat")
    if major != 4:
        return None, f"notebook format {major} is not supported: open and save it in a current Jupyter (format 4)"
    try:
        nb = nbformat.reads(text, as_version=4)
        for cell in nb.cells:
            if not isinstance(cell.get("source", ""), (str, list)) or cell.get("cell_type") not in ("code", "markdown", "raw"):
                raise ValueError("a cell without a type or source")
    except Exception as exc:
        return None, f"not a valid notebook ({type(exc).__name__}: {short_form(str(exc).splitlines()[0], 200) if str(exc) else ''})"
    return nb, None


def grade_one(lesson: Lesson, nb, student: str, iso: Isolation, limits: Limits, seeds: SecretSeeds | None,
              scratch: Path):
    """Run and judge one submission notebook: ``(result dict, graded notebook)``. Nothing the submission
    does makes this raise; an exception here is the grader's own failure.

    The kernel imports the lesson's withheld copy of the library (:mod:`grader.withheld`), built once
    per run and lesson under ``scratch``: no reference of this lesson's exercises works in it."""
    cell_seeds = {c.grade_id: (seeds.for_cell(student, lesson.name, c) if seeds else {}) for c in lesson.spec}
    graded_nb, probe_index = compose(lesson.source, nb, lesson.spec, cell_seeds)
    library = withheld_library(lesson.name, lesson.spec, scratch)
    run = run_notebook(graded_nb, iso, limits, scratch, library=library)
    verdicts = []
    for cell in lesson.spec:
        index = probe_index[cell.grade_id]
        ran = index in run.records or _cell_ran(graded_nb.cells[index])
        verdicts.append(judge_cell(cell, run.records.get(index), cell_seeds[cell.grade_id], ran=ran))
    _replace_probe_outputs(graded_nb, probe_index, verdicts, lesson)
    result = {"student": student, "notebook": lesson.name, "score": sum(v.score for v in verdicts),
              "max_score": lesson.max_score, "status": run.status, "message": summary_message(verdicts, run.status, run.reason),
              "cells": [v.as_dict() for v in verdicts], "seconds": round(run.seconds, 2)}
    return result, graded_nb


def summary_message(verdicts: list[CellVerdict], status: str = "graded", reason: str = "") -> str:
    """A notebook's message: how many checks passed and the first failure's verdict, whole (``grades.csv``
    shows its short form, :func:`grader.wording.short_form`)."""
    failed = [v for v in verdicts if not v.passed]
    if status != "graded":
        return f"{reason}; {sum(v.passed for v in verdicts)} of {len(verdicts)} checks passed before that"
    if failed:
        return f"{len(verdicts) - len(failed)} of {len(verdicts)} checks passed; first failure, {failed[0].grade_id}: {failed[0].message}"
    return f"all {len(verdicts)} checks passed"


def _cell_ran(cell) -> bool:
    return cell.get("execution_count") is not None or bool(cell.get("outputs"))


def _replace_probe_outputs(nb, probe_index: dict, verdicts: list[CellVerdict], lesson: Lesson) -> None:
    """In the graded notebook, show each check cell as the learner knows it, with the grader's verdict."""
    source_cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in lesson.source.cells}
    for verdict in verdicts:
        cell = nb.cells[probe_index[verdict.grade_id]]
        cell.source = source_cells[verdict.grade_id].source.split("### BEGIN HIDDEN TESTS")[0].rstrip()
        mark = "PASSED" if verdict.passed else "FAILED"
        text = f"[grader] {mark} {verdict.score:g}/{verdict.max_score:g}: {verdict.message}\n"
        cell.outputs = [new_output("stream", name="stdout" if verdict.passed else "stderr", text=text)]


def _empty(item: Item, lessons: dict[str, Lesson]) -> dict:
    max_score = lessons[item.lesson].max_score if item.lesson in lessons else 0
    return {"student": item.student, "notebook": item.notebook, "score": 0, "max_score": max_score, "cells": []}


def grade_item(item: Item, lessons: dict[str, Lesson], iso: Isolation, limits: Limits, seeds: SecretSeeds,
               scratch: Path):
    """One planned item: ``(result, graded notebook or None)``."""
    empty = _empty(item, lessons)
    if item.lesson is None:
        names = ", ".join(sorted(lessons))
        return {**empty, "status": "unexpected notebook",
                "message": f"{item.path.name} is not a lesson of this course (expected names: {names})"}, None
    if item.path is None:
        return {**empty, "status": "missing notebook", "message": f"no {item.lesson}.ipynb in the submission"}, None
    if not _STUDENT.match(item.student):
        return {**empty, "status": "invalid notebook", "message": "the student folder name has unusual characters"}, None
    nb, problem = read_submission(item.path)
    if nb is None:
        return {**empty, "status": "invalid notebook", "message": problem}, None
    result, graded_nb = grade_one(lessons[item.lesson], nb, item.student, iso, limits, seeds, scratch)
    if item.note:
        result["message"] = f"{item.note}; {result['message']}"
    return result, graded_nb


def grader_error(item: Item, lessons: dict[str, Lesson], exc: BaseException, result: dict | None = None) -> dict:
    """The result of a notebook on which the grader's own code failed; the points of ``result`` (what
    was judged before the failure, if anything) are kept."""
    said = str(exc).strip().splitlines()
    message = f"the grader failed on this notebook ({type(exc).__name__}: {short_form(said[0], 200) if said else ''})"
    if result and result.get("cells"):
        passed = sum(bool(c.get("passed")) for c in result["cells"])
        message += f"; {passed} of {len(result['cells'])} checks passed before that"
    base = result if result else _empty(item, lessons)
    return {**base, "status": "grader error", "message": message}
