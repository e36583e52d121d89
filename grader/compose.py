"""Build the notebook that is actually run for a submission.

Everything except the learner's answers comes from the *source* notebook in ``solutions/``:

* prose and locked code cells: the source's;
* exercise cells (nbgrader ``solution``): the submission's cell with the same ``grade_id`` — its code
  only, outputs dropped — or, when the submission lacks it, the released stub;
* check cells: a probe cell (:mod:`grader.kernel_side`), whatever the submission did to its copy —
  edited, deleted, turned into markdown;
* cells the learner added (no known ``grade_id``): kept, after the cell they followed.

A preamble cell goes first. The result carries the source's nbgrader metadata, so it lines up with
the gradebook cell by cell.
"""

from __future__ import annotations

import copy
import re

import nbformat
from nbformat.v4 import new_code_cell

from .course import SOLUTION_BEGIN, SOLUTION_END
from .kernel_side import preamble_source, probe_source
from .spec import GradeCell

__all__ = ["compose", "stub_of", "PREAMBLE_ID"]

PREAMBLE_ID = "grader-preamble"
_SOLUTION_BLOCK = re.compile(rf"^([ \t]*){re.escape(SOLUTION_BEGIN)}.*?{re.escape(SOLUTION_END)}[ \t]*$", re.S | re.M)


def stub_of(source: str) -> str:
    """What nbgrader's release leaves of an exercise cell: each answer becomes ``raise NotImplementedError()``."""
    return _SOLUTION_BLOCK.sub(lambda m: f"{m.group(1)}# YOUR CODE HERE\n{m.group(1)}raise NotImplementedError()", source)


def _grade_id(cell) -> str | None:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta.get("grade_id") if isinstance(meta, dict) else None


def compose(source_nb, submission_nb, spec: list[GradeCell], seeds: dict[str, dict[int, int]],
            variant: str | None = None, figures: bool = False):
    """The graded notebook, and the index of each check's probe cell in it (``{grade_id: index}``).

    ``seeds[grade_id]`` maps the seeds written in the check cell to the ones to use this time. ``variant``
    (lesson 10) is the student's drill variant: the preamble sets ``RLHF_DRILL_VARIANT`` to it, so the lesson's
    cells run that variant, and a check cell of the source that ``spec`` leaves out (another variant's) is
    replaced by a comment, its hidden tests with it. ``figures``: the kernel draws matplotlib figures
    (:func:`grader.kernel_side.preamble_source`); by default each is one line of text.
    """
    by_id = {c.grade_id: c for c in spec}
    source_ids = {_grade_id(c) for c in source_nb.cells} - {None}
    # the lesson's own cells without nbgrader metadata (its demo cells), known by their cell id: the graded
    # notebook runs the source's copy, so the submission's copy is not a cell the learner added
    lesson_cell_ids = {c.get("id") for c in source_nb.cells if _grade_id(c) is None} - {None}
    submitted = {}
    added_after: dict[str | None, list] = {}
    previous = None
    for cell in submission_nb.cells:
        gid = _grade_id(cell)
        if gid in source_ids:
            submitted.setdefault(gid, cell)
            previous = gid
        elif gid is None and cell.get("id") in lesson_cell_ids:
            continue
        elif cell.get("cell_type") in ("code", "markdown"):
            added_after.setdefault(previous, []).append(cell)

    out = nbformat.v4.new_notebook(metadata=copy.deepcopy(source_nb.metadata))
    preamble = new_code_cell(preamble_source(figures, variant))
    preamble.metadata["tags"] = ["grader"]
    preamble.id = PREAMBLE_ID
    out.cells.append(preamble)
    probe_index = {}

    def add_learner_cells(after):
        for cell in added_after.get(after, []):
            new = (nbformat.v4.new_code_cell if cell["cell_type"] == "code" else nbformat.v4.new_markdown_cell)(
                source_text(cell.get("source", "")))
            new.metadata["tags"] = ["added by the learner"]
            out.cells.append(new)

    add_learner_cells(None)
    for cell in source_nb.cells:
        gid = _grade_id(cell)
        meta = cell.metadata.get("nbgrader", {})
        new = copy.deepcopy(cell)
        if cell.cell_type == "code":
            new.outputs, new.execution_count = [], None
        if gid in by_id and cell.cell_type == "code" and meta.get("grade"):
            new.source = probe_source(by_id[gid], seeds.get(gid, {}))
            probe_index[gid] = len(out.cells)
        elif meta.get("grade") and cell.cell_type == "code":
            new.source = f"# Check cell {gid!r} is not graded here: it belongs to another drill variant than {variant!r}."
        elif meta.get("solution") and cell.cell_type == "code":
            theirs = submitted.get(gid)
            if theirs is not None and theirs.get("cell_type") == "code":
                new.source = source_text(theirs.get("source", ""))
            else:
                new.source = stub_of(cell.source)
        out.cells.append(new)
        add_learner_cells(gid)
    return out, probe_index


def source_text(source) -> str:
    """A notebook field that may be a string, a list of strings (nbformat's multiline form) or missing."""
    if isinstance(source, list):
        return "".join(str(s) for s in source)
    return "" if source is None else str(source)
