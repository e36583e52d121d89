"""Build nbgrader *source* notebooks (``solutions/NN_name.ipynb``) cell by cell.

The conventions every lesson follows, in nbgrader's metadata (schema 3):

==================  ==========================================================================
cell                metadata
==================  ==========================================================================
prose (markdown)    read-only: ``locked``; a ``grade_id``
setup (1st code)    read-only; generated from :mod:`grader.setup_cell`, the same in every lesson
exercise            ``solution``: the answer sits between ``### BEGIN SOLUTION`` and
                    ``### END SOLUTION`` and is replaced by ``raise NotImplementedError()``
                    on release
written answer      ``solution``, grade id ``written_…``: a model answer inside a string, between
                    the same markers, so that the released cell keeps only a placeholder text;
                    judged by the learner (or a person), not by a check
check               ``grade`` + ``locked`` + ``points``: calls ``rlhf_core.checks``; extra
                    assertions between ``### BEGIN HIDDEN TESTS`` / ``### END HIDDEN TESTS``
                    are removed on release and restored when grading
demo                plain code, no metadata: the learner may edit it freely
==================  ==========================================================================

Every cell gets a stable ``id`` (its ``grade_id`` or ``<kind>-<n>``), so that releases are
byte-for-byte reproducible. Usage::

    from grader.authoring import lesson, md, code, exercise, check
    nb = lesson("02", [md("# …"), code("…"), exercise("dpo_loss", "def dpo_loss(...): ..."),
                       check("dpo_loss", "check_dpo_loss(dpo_loss)", points=3, hidden="check_dpo_loss(dpo_loss, seed=1)")])
    write(nb, "solutions/02_dpo_loss.ipynb")
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from .setup_cell import render_setup_cell

__all__ = ["md", "code", "exercise", "written", "check", "lesson", "write", "nbgrader_meta"]

SOLUTION_BEGIN, SOLUTION_END = "### BEGIN SOLUTION", "### END SOLUTION"
HIDDEN_BEGIN, HIDDEN_END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"


def nbgrader_meta(grade_id: str, *, grade: bool = False, solution: bool = False, locked: bool = False,
                  points: int | None = None) -> dict:
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3, "solution": solution}
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


def md(text: str, grade_id: str | None = None) -> NotebookNode:
    """A read-only prose cell (``grade_id`` is filled in by :func:`lesson` when omitted)."""
    cell = new_markdown_cell(text.strip("\n"))
    cell.metadata = nbgrader_meta(grade_id or "", locked=True)
    return cell


def code(source: str) -> NotebookNode:
    """A demo cell the learner may change (no nbgrader metadata)."""
    return new_code_cell(source.strip("\n"))


def exercise(grade_id: str, source: str) -> NotebookNode:
    """An exercise: ``source`` must contain the answer between ``### BEGIN/END SOLUTION``."""
    source = source.strip("\n")
    if SOLUTION_BEGIN not in source or SOLUTION_END not in source:
        raise ValueError(f"exercise {grade_id!r} has no {SOLUTION_BEGIN} / {SOLUTION_END} markers")
    cell = new_code_cell(source)
    cell.metadata = nbgrader_meta(grade_id, solution=True)
    return cell


def written(grade_id: str, variable: str, model_answer: str, comment: str = "") -> NotebookNode:
    """A free-text answer: ``variable = \"\"\"<model answer>\"\"\"``; the student version keeps an empty placeholder."""
    if not grade_id.startswith("written_"):
        raise ValueError(f"written-answer cells need a grade_id starting with 'written_', got {grade_id!r}")
    head = "".join(f"# {line}\n" for line in comment.strip().splitlines())
    source = f'{head}{variable} = """\n{SOLUTION_BEGIN}\n{model_answer.strip()}\n{SOLUTION_END}\n"""'
    cell = new_code_cell(source)
    cell.metadata = nbgrader_meta(grade_id, solution=True)
    return cell


def check(grade_id: str, source: str, points: int, hidden: str | None = None) -> NotebookNode:
    """An autograded, read-only check cell worth ``points``; ``hidden`` runs only when grading."""
    source = source.strip("\n")
    if hidden:
        source += f"\n{HIDDEN_BEGIN}\n{hidden.strip()}\n{HIDDEN_END}"
    cell = new_code_cell(source)
    cell.metadata = nbgrader_meta(grade_id, grade=True, locked=True, points=points)
    return cell


def lesson(number: str, cells: list[NotebookNode], seed: int | None = None) -> NotebookNode:
    """A source notebook: the shared setup cell after the first prose cell, stable ids, kernel metadata."""
    seed = int(number) if seed is None else seed
    setup = new_code_cell(render_setup_cell(seed))
    setup.metadata = nbgrader_meta("setup", locked=True)
    first_code = next((i for i, c in enumerate(cells) if c.cell_type == "code"), len(cells))
    cells = cells[:first_code] + [setup] + cells[first_code:]
    counters: dict[str, int] = {}
    seen: set[str] = set()
    for cell in cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if not grade_id:
            kind = "prose" if cell.cell_type == "markdown" else "demo"
            counters[kind] = counters.get(kind, 0) + 1
            grade_id = f"{kind}-{counters[kind]:02d}"
            if "nbgrader" in cell.metadata:
                cell.metadata["nbgrader"]["grade_id"] = grade_id
        if grade_id in seen:
            raise ValueError(f"duplicate grade_id {grade_id!r} in lesson {number}")
        seen.add(grade_id)
        cell["id"] = re.sub(r"[^A-Za-z0-9_-]", "-", grade_id)[:64]
    return new_notebook(cells=cells, metadata={
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    })


def write(nb: NotebookNode, path: str | Path) -> None:
    """Validate and write with the layout the repository uses (nbformat's 1-space indent, final newline)."""
    nbformat.validate(nb)
    text = nbformat.writes(nb, version=4)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
