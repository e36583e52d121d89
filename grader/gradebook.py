"""Mirror the grader's results into an nbgrader gradebook, so nbgrader's own tools work on them, and write ``OUT/lms.csv``.

What nbgrader sees (``OUT/gradebook.db``, course :data:`~grader.course.COURSE_ID`, with ``OUT/nbgrader_config.py``):

* **one assignment per lesson** that someone handed in, named after the lesson (``02_bradley_terry_and_dpo_loss``),
  holding that lesson's one notebook; a lesson no one handed in is no assignment (so neither ``nbgrader export`` nor
  formgrader counts it against anyone);
* its grade cells are those the grader scores, with the grader's points, so each assignment's ``max_score`` is the
  grader's maximum. Lesson 10 grades each student on one drill variant (:meth:`grader.course.Lesson.for_variant`):
  nbgrader has one set of grade cells per assignment, so there the cells every variant shares keep their own rows
  and the variant's own cells are one grade cell, :data:`DRILL_CELL`, worth what each variant's part is worth (6):
  its score is the sum of the student's variant's cells, and the lesson's maximum is the grader's 7, not the 31 of
  all variants' cells together. The per-check detail stays in the feedback page and the result file;
* a submission per student and lesson handed in, each grade's ``auto_score`` the grader's score of that check, and
  ``needs_manual_grade`` set the way nbgrader's own autograder sets it (``SaveAutoGrades``: only where there is no
  auto score, or a manual score already overrides it): an autograded cell, full marks or not, needs no manual grading.
  A notebook the grader itself failed on (``grader error``) has no auto score, so formgrader asks for a manual grade;
* the files formgrader reads beside the database: ``source/<lesson>/<lesson>.ipynb`` (the assignment's source),
  ``submitted/<student>/<lesson>/timestamp.txt`` (formgrader counts submissions by these folders; the timestamp, the
  time the result was written, is also the submission's in the database, which is how formgrader knows the
  submission was autograded) and ``autograded/<student>/<lesson>/<lesson>.ipynb`` (a hard link to — or, where links
  cannot be made, a copy of — the graded notebook the grader writes to ``autograded/<student>/dpo/``). Lesson 10's
  source and graded copies carry the grade cells the gradebook has (:func:`nbgrader_view`).

The gradebook is brought up to date from ``OUT/results`` each run, so it agrees with ``grades.csv``; manual scores and
comments entered in formgrader are kept. Assignments of lessons no longer handed in, and the single ``dpo`` assignment
of earlier versions, are removed.

``OUT/lms.csv`` is one row per student for an LMS's grade import: ``student`` (the SUBMISSIONS folder), ``lms_id``
(the number that ends the folder's name, ``…_<digits>``, as ``python -m grader collect`` names them: Canvas's user id,
or Moodle's participant number; empty otherwise), one column per lesson handed in by anyone (header: the lesson's
name; cell: the student's score), ``total`` (the sum of the student's scores) and ``max_total`` (the sum of those
lessons' maxima, the same for every row; lesson 10 counts 7). A lesson the student did not hand in is an **empty
cell**, not 0: Canvas reads an empty cell as "no grade" (left out of its Current Score, counted as 0 only in its Final
Score; https://danaleeling.blogspot.com/2022/12/nulls-in-canvas-grade-book-and-their.html), and in Moodle, whose CSV
import maps each column to a grade item (https://docs.moodle.org/311/en/Grade_import), an empty cell is no graded 0
either (not checked against a Moodle instance here). So the LMS's own missing-work policy decides, and a 0 keeps its
meaning: work handed in that earned nothing. A notebook the grader failed on
(``grader error``) is empty too, until it is graded. ``total`` counts an empty cell as 0.
"""

from __future__ import annotations

import copy
import csv
import io
import os
import re
import shutil
import sys
import warnings
from datetime import datetime, timezone
from pathlib import Path

import nbformat

from .course import ASSIGNMENT, COURSE_ID, Lesson
from .result import NotebookResult, Status
from .results import atomic_write, read_results, result_path

__all__ = ["DRILL_CELL", "LMS_CSV", "gradebook_cells", "lms_rows", "nbgrader_view", "prepare_gradebook",
           "update_gradebook", "write_lms_csv"]

#: lesson 10's one grade cell for the part of the drill that depends on the student's variant
DRILL_CELL = "drill_variant"
LMS_CSV = "lms.csv"
#: statuses whose notebook counts as handed in (a missing or unexpected notebook is no submission of a lesson)
_NOT_HANDED_IN = (Status.MISSING, Status.UNEXPECTED)


def gradebook_cells(lesson: Lesson) -> list[tuple[str, float]]:
    """The lesson's grade cells as the gradebook holds them, ``[(grade_id, max_score)]``: its check cells, or for a
    lesson with drill variants the cells every variant shares and :data:`DRILL_CELL`, worth each variant's own part.
    ValueError when the variants' parts are not worth the same (nbgrader has one maximum per assignment)."""
    if not lesson.variants:
        return [(c.grade_id, float(c.points)) for c in lesson.spec]
    shared = [(c.grade_id, float(c.points)) for c in lesson.spec if c.variant is None]
    parts = {v: sum(c.points for c in lesson.for_variant(v).spec if c.variant is not None) for v in lesson.variants}
    if len(set(parts.values())) != 1:
        raise ValueError(f"{lesson.name}: the drill variants' own checks are not worth the same ({parts}); nbgrader holds "
                         "one maximum per assignment, so the gradebook cannot hold each student's")
    return shared + [(DRILL_CELL, float(next(iter(parts.values()))))]


def _auto_scores(lesson: Lesson, result: NotebookResult) -> dict[str, float | None]:
    """Each gradebook cell's auto score for ``result`` (None everywhere when the grader failed on the notebook)."""
    cells = gradebook_cells(lesson)
    if result.status is Status.GRADER_ERROR:
        return {grade_id: None for grade_id, _ in cells}
    scores = {c.grade_id: c.score for c in result.cells}
    own = {c.grade_id for c in lesson.for_variant(result.variant or "dpo").spec if c.variant is not None} if lesson.variants else set()
    auto = {grade_id: float(scores.get(grade_id, 0.0)) for grade_id, _ in cells if grade_id != DRILL_CELL}
    if lesson.variants:
        auto[DRILL_CELL] = float(sum(scores.get(grade_id, 0.0) for grade_id in own))
    return auto


def nbgrader_view(nb, lesson: Lesson, variant: str | None = None):
    """A copy of ``nb`` (the lesson's source, or a student's graded notebook) whose nbgrader grade cells are the
    gradebook's (:func:`gradebook_cells`), so that formgrader finds a grade for each: in a lesson with drill variants,
    the first check cell of ``variant`` (of any variant, for the source) becomes :data:`DRILL_CELL` with the part's
    points, and the other variant cells stay locked but are not graded. ``nb`` itself for any other lesson."""
    if not lesson.variants:
        return nb
    part = dict(gradebook_cells(lesson))[DRILL_CELL]
    variant_ids = {c.grade_id for c in lesson.spec if c.variant is not None}
    own = {c.grade_id for c in lesson.for_variant(variant).spec if c.variant is not None} if variant else variant_ids
    nb, placed = copy.deepcopy(nb), False
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader")
        if not isinstance(meta, dict) or not meta.get("grade") or meta.get("grade_id") not in variant_ids:
            continue
        if not placed and meta["grade_id"] in own:
            meta["grade_id"], meta["points"], placed = DRILL_CELL, part, True
        else:
            meta["grade"] = False
            meta.pop("points", None)
    return nb


def prepare_gradebook(out: Path, lessons: dict) -> Path:
    """Create ``OUT/gradebook.db`` and ``OUT/nbgrader_config.py``.

    Creating a new database is the slow part (nbgrader imports, then runs ``alembic`` as a program): the grader calls
    this in a background thread while the first notebooks run, and :func:`update_gradebook` then fills in the
    assignments of the lessons handed in and their scores. Safe to call again."""
    from nbgrader.api import Gradebook

    out = Path(out)
    # nbgrader runs `alembic` (the gradebook's migrations) as a program: it lives next to this Python.
    os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
    db_path = out / "gradebook.db"
    (out / "nbgrader_config.py").write_text(
        "c = get_config()  # noqa\n"
        f"c.CourseDirectory.course_id = {COURSE_ID!r}\n"
        f"c.CourseDirectory.root = {str(out)!r}\n"
        f"c.CourseDirectory.db_url = {'sqlite:///' + str(db_path)!r}\n")
    with warnings.catch_warnings(), Gradebook(f"sqlite:///{db_path}", course_id=COURSE_ID):
        warnings.simplefilter("ignore")
    return db_path


def update_gradebook(out: Path, lessons: dict, prepared: bool = False) -> Path:
    """Mirror every result in ``OUT/results`` into the gradebook (creating it first unless ``prepared``), with the
    files formgrader reads beside it, and write ``OUT/lms.csv``."""
    from nbgrader.api import Gradebook

    out = Path(out)
    db_path = out / "gradebook.db" if prepared else prepare_gradebook(out, lessons)
    results = [r for r in read_results(out) if r.notebook in lessons and r.status not in _NOT_HANDED_IN]
    handed_in = sorted({r.notebook for r in results})
    for stale in [ASSIGNMENT, *(name for name in lessons if name not in handed_in)]:
        if stale not in handed_in:
            shutil.rmtree(out / "source" / stale, ignore_errors=True)
    with warnings.catch_warnings(), Gradebook(f"sqlite:///{db_path}", course_id=COURSE_ID) as gb:
        warnings.simplefilter("ignore")   # nbgrader's add_submission trips SQLAlchemy's autoflush warnings
        for assignment in list(gb.assignments):
            if assignment.name not in handed_in and (assignment.name == ASSIGNMENT or assignment.name in lessons):
                gb.remove_assignment(assignment.name)
        for name in handed_in:
            _add_lesson(gb, out, lessons[name])
        for result in results:
            lesson = lessons[result.notebook]
            name, student = lesson.name, result.student
            gb.update_or_create_student(student)
            stamp = _timestamp(out, result)
            gb.update_or_create_submission(name, student, timestamp=stamp)
            auto = _auto_scores(lesson, result)
            for grade_id, _ in gradebook_cells(lesson):
                grade = gb.find_grade(grade_id, name, name, student)
                grade.auto_score = auto[grade_id]
                # nbgrader's SaveAutoGrades rule: review only what has no auto score or was overridden by hand
                grade.needs_manual_grade = grade.manual_score is not None or grade.auto_score is None
            gb.db.commit()
            _submission_files(out, lesson, result, stamp)
    write_lms_csv(out, lessons)
    return db_path


def _add_lesson(gb, out: Path, lesson: Lesson) -> None:
    """The lesson's assignment, notebook, grade and solution cells, and its source notebook in ``OUT/source``."""
    from nbgrader.api import MissingEntry

    name = lesson.name
    cells = gradebook_cells(lesson)
    try:      # a lesson whose checks changed since the gradebook was written is written anew (its submissions too)
        known = {cell.name: cell.max_score for cell in gb.find_notebook(name, name).grade_cells}
        if known != dict(cells):
            gb.remove_assignment(name)
    except MissingEntry:
        pass
    source_dir = out / "source" / name
    source_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(source_dir / f"{name}.ipynb", nbformat.writes(nbgrader_view(lesson.source, lesson)))
    gb.update_or_create_assignment(name)
    gb.update_or_create_notebook(name, name)
    for grade_id, points in cells:
        gb.update_or_create_grade_cell(grade_id, name, name, max_score=points, cell_type="code")
    for cell in lesson.source.cells:      # formgrader keeps a comment per answer cell
        meta = cell.get("metadata", {}).get("nbgrader")
        if isinstance(meta, dict) and meta.get("solution") and not meta.get("grade") and meta.get("grade_id"):
            gb.update_or_create_solution_cell(meta["grade_id"], name, name)


def _timestamp(out: Path, result: NotebookResult) -> str:
    """When the result was written, in UTC (the submission's timestamp for nbgrader)."""
    path = result_path(out, result.student, result.notebook)
    when = datetime.fromtimestamp(path.stat().st_mtime if path.exists() else 0, tz=timezone.utc)
    return when.isoformat()


def _submission_files(out: Path, lesson: Lesson, result: NotebookResult, stamp: str) -> None:
    """``submitted/<student>/<lesson>/timestamp.txt`` and ``autograded/<student>/<lesson>/<lesson>.ipynb``."""
    name, student = lesson.name, result.student
    submitted = out / "submitted" / student / name
    submitted.mkdir(parents=True, exist_ok=True)
    atomic_write(submitted / "timestamp.txt", stamp)
    stored = result_path(out, student, name)      # the grader's file names: results/<safe student>/<safe notebook>.json
    graded = out / "autograded" / stored.parent.name / ASSIGNMENT / f"{stored.stem}.ipynb"
    target = out / "autograded" / student / name / f"{name}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)   # formgrader's sign that the submission was autograded
    if not graded.exists():                       # e.g. an unreadable notebook: graded, nothing to show
        target.unlink(missing_ok=True)
        return
    if lesson.variants:
        atomic_write(target, nbformat.writes(nbgrader_view(nbformat.read(graded, as_version=4), lesson,
                                                           result.variant or "dpo")))
        return
    target.unlink(missing_ok=True)
    try:
        os.link(graded, target)
    except OSError:
        shutil.copyfile(graded, target)


# ---- the LMS's CSV ---------------------------------------------------------------------------------------------------

_LMS_ID = re.compile(r"_(\d+)$")


def lms_rows(out: Path, lessons: dict) -> tuple[list[str], list[dict[str, str]]]:
    """The header and the rows of ``OUT/lms.csv`` (see the module's docstring), from ``OUT/results``."""
    results = read_results(out)
    students = sorted({r.student for r in results})
    graded = [r for r in results if r.notebook in lessons and r.status not in _NOT_HANDED_IN]
    columns = sorted({r.notebook for r in graded})
    maxima = {name: sum(points for _, points in gradebook_cells(lessons[name])) for name in columns}
    # a notebook the grader itself failed on has no grade yet: its cell stays empty, like formgrader's manual grade
    scores = {(r.student, r.notebook): r.score for r in graded if r.status is not Status.GRADER_ERROR}
    header = ["student", "lms_id", *columns, "total", "max_total"]
    rows = []
    for student in students:
        match = _LMS_ID.search(student)
        row = {"student": student, "lms_id": match.group(1) if match else ""}
        mine = {name: scores[(student, name)] for name in columns if (student, name) in scores}
        row.update({name: f"{mine[name]:g}" if name in mine else "" for name in columns})
        row["total"] = f"{sum(mine.values()):g}"
        row["max_total"] = f"{sum(maxima.values()):g}"
        rows.append(row)
    return header, rows


def write_lms_csv(out: Path, lessons: dict) -> Path:
    """Write ``OUT/lms.csv``: one row per student, a column per lesson handed in by anyone, and the total."""
    header, rows = lms_rows(out, lessons)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(Path(out) / LMS_CSV, buffer.getvalue())
    return Path(out) / LMS_CSV
