"""Build the notebook that is actually run for a submission.

Everything except the learner's answers comes from the *source* notebook in ``solutions/``:

* prose and locked code cells: the source's;
* exercise cells (nbgrader ``solution``): the submission's cell that is that exercise's cell — by its
  ``grade_id``, else its cell id, else its content (:mod:`grader.cell_match`) — its code only, outputs
  dropped; when none is found, the released stub;
* check cells: a probe cell (:mod:`grader.kernel_side`), whatever the submission did to its copy —
  edited, deleted, turned into markdown;
* cells the learner added (no cell of the lesson): kept, after the last of the lesson's nbgrader cells
  they followed (a learner's cell before all of them runs first, once).

A preamble cell goes first. The result carries the source's nbgrader metadata, so it lines up with
the gradebook cell by cell.
"""

from __future__ import annotations

import copy
import re

import nbformat
from nbformat.v4 import new_code_cell

from .cell_match import Matching, match_cells, source_text
from .course import SOLUTION_BEGIN, SOLUTION_END
from .kernel_side import preamble_source, probe_source
from .spec import GradeCell

__all__ = ["compose", "stub_of", "source_text", "PREAMBLE_ID"]

PREAMBLE_ID = "grader-preamble"
_SOLUTION_BLOCK = re.compile(rf"^([ \t]*){re.escape(SOLUTION_BEGIN)}.*?{re.escape(SOLUTION_END)}[ \t]*$", re.S | re.M)


def stub_of(source: str) -> str:
    """What nbgrader's release leaves of an exercise cell: each answer becomes ``raise NotImplementedError()``."""
    return _SOLUTION_BLOCK.sub(lambda m: f"{m.group(1)}# YOUR CODE HERE\n{m.group(1)}raise NotImplementedError()", source)


def _grade_id(cell) -> str | None:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta.get("grade_id") if isinstance(meta, dict) else None


def compose(source_nb, submission_nb, spec: list[GradeCell], seeds: dict[str, dict[int, int]],
            variant: str | None = None, figures: bool = False, matching: Matching | None = None):
    """The graded notebook, and the index of each check's probe cell in it (``{grade_id: index}``).

    ``seeds[grade_id]`` maps the seeds written in the check cell to the ones to use this time. ``variant``
    (lesson 10) is the student's drill variant: the preamble sets ``RLHF_DRILL_VARIANT`` to it, so the lesson's
    cells run that variant, and a check cell of the source that ``spec`` leaves out (another variant's) is
    replaced by a comment, its hidden tests with it. ``figures``: the kernel draws matplotlib figures
    (:func:`grader.kernel_side.preamble_source`); by default each is one line of text. ``matching``: which
    submitted cell is which of the source's (:func:`grader.cell_match.match_cells`; found here when None).
    """
    by_id = {c.grade_id: c for c in spec}
    matching = matching if matching is not None else match_cells(source_nb, submission_nb)
    # each learner's cell goes after the last of the lesson's nbgrader cells before it (the lesson's demo cells,
    # without nbgrader metadata, are no anchor: the submission's copy of one is not a cell the learner added)
    added_after: dict[int | None, list] = {}
    previous = None
    for cell, k in zip(submission_nb.cells, matching.source_of):
        if k is not None:
            if _grade_id(source_nb.cells[k]) is not None:
                previous = k
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
    for k, cell in enumerate(source_nb.cells):
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
            theirs = matching.exercise_source(gid, submission_nb)
            new.source = stub_of(cell.source) if theirs is None else theirs
        out.cells.append(new)
        if gid is not None:
            add_learner_cells(k)
    return out, probe_index
