"""The conventions of a lesson's cells, and the layout the repository writes notebooks in.

A lesson's source is its text, ``solutions/NN_name.py`` (jupytext percent; see :mod:`grader.course` and
``CONTRIBUTING.md``), whose cell headers carry nbgrader's metadata (schema 3); every lesson follows these
conventions (:func:`grader.release.lint_source` holds each lesson to them):

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
demo                plain code, no metadata: the learner may edit it freely; its header names
                    its cell id (``# %% id="demo-01"``)
==================  ==========================================================================

Every cell has a stable ``id`` (its ``grade_id`` or ``<kind>-<n>``, :func:`grader.course.cell_id`), so that
releases are byte-for-byte reproducible. :func:`nbgrader_meta` is a cell's metadata, :func:`notebook_json` and
:func:`write` a notebook as the repository stores it.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat import NotebookNode

from .course import HIDDEN_BEGIN, HIDDEN_END, SOLUTION_BEGIN, SOLUTION_END

__all__ = ["notebook_json", "write", "nbgrader_meta", "SOLUTION_BEGIN", "SOLUTION_END", "HIDDEN_BEGIN", "HIDDEN_END"]


def nbgrader_meta(grade_id: str, *, grade: bool = False, solution: bool = False, locked: bool = False,
                  points: int | None = None) -> dict:
    """A cell's ``metadata`` for nbgrader: an exercise (``solution``), a check (``grade``, ``locked``, ``points``)."""
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3, "solution": solution}
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


def notebook_json(nb: NotebookNode, validate: bool = True) -> str:
    """``nb`` in the layout the repository uses (nbformat's 1-space indent, sorted keys, final newline)."""
    if validate:
        nbformat.validate(nb)
    text = nbformat.writes(nb, version=4)
    return text if text.endswith("\n") else text + "\n"


def write(nb: NotebookNode, path: str | Path) -> None:
    """Validate and write with the layout the repository uses (:func:`notebook_json`)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(notebook_json(nb), encoding="utf-8")
