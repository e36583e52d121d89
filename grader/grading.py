"""Grading one notebook: the submission read, composed, run, judged — a :class:`~grader.result.NotebookResult`.

Every notebook ends with a :class:`~grader.result.Status` and a one-line reason: graded, timeout, memory,
kernel died, invalid notebook, missing notebook, unexpected notebook, or grader error when the grader's own
code failed on it (the exception, in one line, is the reason). A notebook that stops early keeps the points
of the checks that ran before it stopped.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, replace
from pathlib import Path

import nbformat
from nbformat.v4 import new_output

from .cell_match import match_cells
from .compose import PREAMBLE_ID, compose
from .course import HIDDEN_BEGIN, Lesson
from .execute import run_notebook
from .judge import judge_cell
from .plan import Item
from .result import CellVerdict, NotebookResult, Status
from .sandbox import Isolation, Limits
from .warm import WarmKernels
from .withheld import withheld_library
from .wording import short_form

__all__ = ["read_bytes", "read_submission", "parse_submission", "grade_one", "grade_item", "Outcome", "grade_outcome", "grader_error",
           "summary_message", "declared_variant", "variant_mismatch"]

MAX_NOTEBOOK_BYTES = 50_000_000
_STUDENT = re.compile(r"^[A-Za-z0-9_.@+-]{1,100}$")


def read_bytes(path: Path) -> tuple[bytes | None, str | None]:
    """A submission file's bytes, ``(bytes, None)``, or ``(None, reason)`` — never raises, never reads a file
    over :data:`MAX_NOTEBOOK_BYTES`. What the instructor's process sends to a worker that grades elsewhere."""
    try:
        size = path.stat().st_size
        if size == 0:
            return None, "the file is empty"
        if size > MAX_NOTEBOOK_BYTES:
            return None, f"the file is {size // 2**20} MB, over the {MAX_NOTEBOOK_BYTES // 2**20} MB limit"
        return path.read_bytes(), None
    except OSError as exc:
        return None, f"cannot read the file: {exc.strerror}"


def read_submission(path: Path):
    """``(notebook, None)`` or ``(None, reason)`` — never raises for a bad file."""
    return parse_submission(*read_bytes(path))


def parse_submission(raw: bytes | None, problem: str | None = None):
    """The notebook in ``raw`` (what :func:`read_bytes` returned): ``(notebook, None)`` or ``(None, reason)``."""
    if raw is None:
        return None, problem or "the file could not be read"
    if len(raw) > MAX_NOTEBOOK_BYTES:
        return None, f"the file is {len(raw) // 2**20} MB, over the {MAX_NOTEBOOK_BYTES // 2**20} MB limit"
    try:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return None, f"not UTF-8 text (byte {exc.start}): save the notebook from Jupyter again"
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON (line {exc.lineno}, column {exc.colno}): was the file edited by hand or truncated?"
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


def grade_one(lesson: Lesson, nb, student: str, iso: Isolation, limits: Limits, cell_seeds: dict | None,
              scratch: Path, variant: str | None = None, warm: WarmKernels | None = None) -> tuple[NotebookResult, object]:
    """Run and judge one submission notebook: ``(result, graded notebook)``. Nothing the submission
    does makes this raise; an exception here is the grader's own failure.

    ``cell_seeds`` are the secret seeds of its hidden tests (:meth:`grader.plan.SecretSeeds.for_lesson`;
    None: the check cells' own). The kernel imports the lesson's withheld copy of the library
    (:mod:`grader.withheld`), built once per run and lesson under ``scratch``: no reference of this
    lesson's exercises works in it. ``variant`` (lesson 10): the student's drill variant; the check cells of
    the others are not graded (:meth:`grader.course.Lesson.for_variant`). ``warm``: fork the kernel from this
    job's kernel server (:mod:`grader.warm`) instead of starting it cold."""
    began = time.monotonic()
    # every variant's references stay withheld (the copy is built once per lesson, and a student may reach for any)
    library = withheld_library(lesson.name, lesson.spec, scratch)
    variant = (variant or "dpo") if lesson.variants else None    # no variant given: the first attempt's, DPO
    lesson = lesson.for_variant(variant)
    cell_seeds = {c.grade_id: dict((cell_seeds or {}).get(c.grade_id, {})) for c in lesson.spec}
    matching = match_cells(lesson.source, nb)    # which submitted cell is which exercise (grader.cell_match)
    graded_nb, probe_index = compose(lesson.source, nb, lesson.spec, cell_seeds, variant, limits.draw_figures, matching)
    composed = time.monotonic()
    server = warm.server(library) if warm is not None else None
    run = run_notebook(graded_nb, iso, limits, scratch, library=library, kinds=_cell_kinds(graded_nb, probe_index), server=server)
    judging = time.monotonic()
    verdicts = []
    for cell in lesson.spec:
        index = probe_index[cell.grade_id]
        ran = index in run.records or _cell_ran(graded_nb.cells[index])
        verdicts.append(judge_cell(cell, run.records.get(index), cell_seeds[cell.grade_id], ran=ran))
    verdicts = matching.explain(verdicts, lesson.spec)
    _replace_probe_outputs(graded_nb, probe_index, verdicts, lesson)
    timing = {"compose": composed - began, **run.timing, "judge": time.monotonic() - judging}
    message = summary_message(verdicts, run.status, run.reason)
    note = matching.note({name for cell in lesson.spec for p in cell.probes for name in p.candidates})
    message = f"{note}; {message}" if note else message
    result = NotebookResult(student, lesson.name, sum(v.score for v in verdicts), lesson.max_score, run.status,
                            f"drill variant {variant}: {message}" if variant else message, verdicts,
                            seconds=round(run.seconds, 2), timing={k: round(v, 3) for k, v in timing.items()},
                            kernel="warm" if run.warm else "cold", variant=variant)
    return result, graded_nb


def _cell_kinds(nb, probe_index: dict[str, int]) -> dict[int, str]:
    """What the composed notebook's cells are, for the time breakdown: the grader's preamble, the lesson's
    setup cell (its first code cell: the imports and the environment check), the probe cells; the rest
    are lesson cells (the learner's exercise cells and the lesson's own)."""
    kinds = {index: "probe cells" for index in probe_index.values()}
    kinds.update({i: "grader preamble" for i, c in enumerate(nb.cells) if c.get("id") == PREAMBLE_ID})
    lesson_code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and i not in kinds]
    if lesson_code:
        kinds[lesson_code[0]] = "setup cell"
    return kinds


def summary_message(verdicts: list[CellVerdict], status: Status = Status.GRADED, reason: str = "") -> str:
    """A notebook's message: how many checks passed and the first failure's verdict, whole (``grades.csv``
    shows its short form, :func:`grader.wording.short_form`)."""
    failed = [v for v in verdicts if not v.passed]
    if status != Status.GRADED:
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
        cell.source = source_cells[verdict.grade_id].source.split(HIDDEN_BEGIN)[0].rstrip()
        mark = "PASSED" if verdict.passed else "FAILED"
        text = f"[grader] {mark} {verdict.score:g}/{verdict.max_score:g}: {verdict.message}\n"
        cell.outputs = [new_output("stream", name="stdout" if verdict.passed else "stderr", text=text)]


def _not_run(item: Item, lessons: dict[str, Lesson], status: Status, message: str) -> NotebookResult:
    """The result of an item whose notebook did not run: no points, the lesson's maximum."""
    max_score = lessons[item.lesson].for_variant(item.variant or "dpo").max_score if item.lesson in lessons else 0
    return NotebookResult(item.student, item.notebook, 0, max_score, status, message)


def grade_item(item: Item, lessons: dict[str, Lesson], iso: Isolation, limits: Limits, cell_seeds: dict | None,
               scratch: Path, raw: tuple[bytes | None, str | None] | None = None,
               warm: WarmKernels | None = None) -> tuple[NotebookResult, object | None]:
    """One planned item: ``(result, graded notebook or None)``. ``raw`` is the submission as
    :func:`read_bytes` gave it (read here from ``item.path`` when None)."""
    if item.lesson is None:
        names = ", ".join(sorted(lessons))
        return _not_run(item, lessons, Status.UNEXPECTED,
                        f"{item.path.name} is not a lesson of this course (expected names: {names})"), None
    if item.path is None:
        return _not_run(item, lessons, Status.MISSING, f"no {item.lesson}.ipynb in the submission"), None
    if not _STUDENT.match(item.student):
        return _not_run(item, lessons, Status.INVALID, "the student folder name has unusual characters"), None
    nb, problem = parse_submission(*(raw if raw is not None else read_bytes(item.path)))
    if nb is None:
        return _not_run(item, lessons, Status.INVALID, problem), None
    result, graded_nb = grade_one(lessons[item.lesson], nb, item.student, iso, limits, cell_seeds, scratch, item.variant, warm)
    if item.note:
        result.message = f"{item.note}; {result.message}"
    mismatch = variant_mismatch(nb, result.variant) if lessons[item.lesson].variants else None
    if mismatch:   # said right after "drill variant X: ", so that the CSV's short form keeps it
        head = f"drill variant {result.variant}: "
        at = result.message.find(head)
        at = at + len(head) if at >= 0 else 0
        result.message = f"{result.message[:at]}{mismatch}; {result.message[at:]}"
    return result, graded_nb


def declared_variant(nb) -> tuple[bool, str | None]:
    """What the submission's code sets ``VARIANT`` to, read without running it: ``(found, value)`` from the last
    top-level ``VARIANT = <a string or None>`` of its code cells (lesson 10's start cell); ``(False, None)`` when none."""
    import ast

    found, value = False, None
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        try:
            source = cell.get("source", "")
            source = source if isinstance(source, str) else "".join(source)
            tree = ast.parse("\n".join("" if line.lstrip()[:1] in ("%", "!") else line for line in source.splitlines()))
        except (SyntaxError, ValueError):
            continue
        for node in tree.body:
            if (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "VARIANT" for t in node.targets)
                    and isinstance(node.value, ast.Constant) and isinstance(node.value.value, (str, type(None)))):
                found, value = True, node.value.value
    return found, value


def variant_mismatch(nb, assigned: str | None) -> str | None:
    """The warning for a lesson 10 submission that declares another drill variant than the one it is graded on
    (None when it declares the assigned one, or nothing the grader can read)."""
    found, value = declared_variant(nb)
    if not found or assigned is None or value == assigned or (value is None and assigned == "dpo"):
        return None
    said = "VARIANT = None (DPO on a first attempt)" if value is None else f"VARIANT = {value!r}"
    return f"warning: the notebook sets {said}, not the assigned {assigned!r}, which is what was graded"


@dataclass
class Outcome:
    """What grading one item produced, ready to be written into OUT by the instructor's process: the
    result (its ``isolation`` the one it ran under: a worker elsewhere may have less than this machine),
    the graded notebook's text and its feedback page (None when nothing ran)."""

    item: Item
    result: NotebookResult
    notebook_text: str | None
    page: str | None


def grade_outcome(item: Item, lessons: dict[str, Lesson], iso: Isolation, limits: Limits, cell_seeds: dict | None,
                  scratch: Path, raw: tuple[bytes | None, str | None] | None = None, warm: WarmKernels | None = None) -> Outcome:
    """Grade one item and render its outputs; never raises: a failure of the grader's own code is the
    item's ``grader error`` (the points judged before it are kept)."""
    from .results import render_outputs

    result = None
    try:
        result, graded_nb = grade_item(item, lessons, iso, limits, cell_seeds, scratch, raw, warm)
        result.isolation = iso.summary()
        began = time.monotonic()
        texts = render_outputs(result, graded_nb) if graded_nb is not None else (None, None)
        if result.timing is not None:
            result.timing["feedback page"] = round(time.monotonic() - began, 3)
    except Exception as exc:
        return Outcome(item, grader_error(item, lessons, exc, result, iso.summary()), None, None)
    return Outcome(item, result, *texts)


def grader_error(item: Item, lessons: dict[str, Lesson], exc: BaseException, result: NotebookResult | None = None,
                 isolation: str | None = None) -> NotebookResult:
    """The result of a notebook on which the grader's own code failed; the points of ``result`` (what
    was judged before the failure, if anything) are kept. ``isolation``: what it ran under."""
    said = str(exc).strip().splitlines()
    message = f"the grader failed on this notebook ({type(exc).__name__}: {short_form(said[0], 200) if said else ''})"
    if result is not None and result.cells:
        message += f"; {result.passed_checks} of {len(result.cells)} checks passed before that"
    base = result if result is not None else _not_run(item, lessons, Status.GRADER_ERROR, "")
    return replace(base, status=Status.GRADER_ERROR, message=message, isolation=isolation)
