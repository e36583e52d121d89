"""The nbgrader gradebook of an autograde run, read the way nbgrader's own tools read it: the ``Gradebook`` API,
formgrader's API (``NbGraderAPI``, what formgrader's handlers call), its ``GetGrades`` preprocessor (what renders a
submission) and ``nbgrader export``; and ``OUT/lms.csv``.

A small class graded for real (four notebooks, no sandbox needed): ann hands in lesson 02 answered right and lesson 10
with every answer (full marks on whichever drill variant the secret gives her), ben lesson 02 with the unstable loss
(a partial score), cara lesson 10 with only ``implicit_reward`` answered (1 of 7). Lesson 10 grades each student on one
variant and is worth 7, while its check cells of all variants together are worth 31.
"""

from __future__ import annotations

import csv
import subprocess
import sys
import warnings
from pathlib import Path

import nbformat
import pytest

from grader.course import COURSE_ID, cell_id, load_lessons
from grader.gradebook import DRILL_CELL, gradebook_cells, nbgrader_view
from grading_helpers import LESSON as L02
from grading_helpers import RIGHT_REWARD, ROOT, UNSTABLE_LOSS, answered, read_grades

pytestmark = [pytest.mark.notebook]

L10 = "10_mock_interview"
LESSONS = load_lessons()


def lesson_10(answer_all: bool):
    """The released lesson 10 with every exercise answered from the source (``answer_all``) or implicit_reward only."""
    nb = nbformat.read(ROOT / "notebooks" / f"{L10}.ipynb", as_version=4)
    answers = {c.metadata["nbgrader"]["grade_id"]: c.source for c in LESSONS[L10].source.cells
               if c.metadata.get("nbgrader", {}).get("solution")}
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution") and cell.cell_type == "code":
            if answer_all:
                cell.source = answers[gid]
            elif gid == "implicit_reward":
                cell.source = RIGHT_REWARD
    return nb


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    import time

    from grader.autograde import autograde

    base = tmp_path_factory.mktemp("gradebook")
    subs, out = base / "submissions", base / "out"
    for student, lesson, nb in [("ann_101", L02, answered()), ("ann_101", L10, lesson_10(True)),
                                ("ben_202", L02, answered(loss=UNSTABLE_LOSS)), ("cara", L10, lesson_10(False))]:
        (subs / student).mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, subs / student / f"{lesson}.ipynb")
    mp = pytest.MonkeyPatch()
    mp.setenv("DPO_GRADER_SECRET_FILE", str(base / "course-secret"))     # this class's own secret, not the machine's
    said: list[str] = []
    start = time.monotonic()
    try:
        code = autograde(subs, out, jobs=2, sandbox=False, report=False, log=said.append)
    finally:
        mp.undo()
    assert code == 0, "\n".join(said)
    rows = {(r["student"], r["notebook"]): r for rs in read_grades(out).values() for r in rs}
    return {"out": out, "rows": rows, "said": said, "seconds": time.monotonic() - start}


def score(graded, student, lesson) -> float:
    return float(graded["rows"][(student, lesson)]["score"])


def gradebook(out: Path):
    from nbgrader.api import Gradebook

    return Gradebook(f"sqlite:///{out / 'gradebook.db'}", course_id=COURSE_ID)


def formgrader_api(out: Path):
    """formgrader's own API object, configured as ``OUT/nbgrader_config.py`` configures it."""
    from nbgrader.apps.api import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config

    config = Config()
    config.CourseDirectory.root = str(out)
    config.CourseDirectory.course_id = COURSE_ID
    config.CourseDirectory.db_url = f"sqlite:///{out / 'gradebook.db'}"
    return NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)


def test_the_class_was_graded_as_planned(graded):
    assert score(graded, "ann_101", L02) == 5 and 0 < score(graded, "ben_202", L02) < 5
    assert score(graded, "ann_101", L10) == 7 and score(graded, "cara", L10) == 1
    assert graded["rows"][("cara", L02)]["status"] == "missing notebook"


def test_one_assignment_per_lesson_handed_in_with_the_graders_maxima(graded):
    with warnings.catch_warnings(), gradebook(graded["out"]) as gb:
        warnings.simplefilter("ignore")
        assignments = {a.name: a for a in gb.assignments}
        assert sorted(assignments) == [L02, L10]                     # not "dpo", not the lessons no one handed in
        assert assignments[L02].max_score == 5
        assert assignments[L10].max_score == 7                       # the grader's maximum, not 31
        assert [nb.name for nb in assignments[L10].notebooks] == [L10]
        assert {a: assignments[a].num_submissions for a in assignments} == {L02: 2, L10: 2}


def test_autograded_scores_need_no_manual_grading_full_or_partial(graded):
    with warnings.catch_warnings(), gradebook(graded["out"]) as gb:
        warnings.simplefilter("ignore")
        for student, lesson in [("ann_101", L02), ("ben_202", L02), ("ann_101", L10), ("cara", L10)]:
            notebook = gb.find_submission_notebook(lesson, lesson, student)
            assert notebook.score == score(graded, student, lesson), (student, lesson)
            assert notebook.needs_manual_grade is False, (student, lesson)
            assert all(g.auto_score is not None and not g.needs_manual_grade for g in notebook.grades)
        drill = {s: gb.find_grade(DRILL_CELL, L10, L10, s) for s in ("ann_101", "cara")}
        assert (drill["ann_101"].auto_score, drill["cara"].auto_score) == (6, 0)
        assert gb.find_grade("check_implicit_reward", L10, L10, "cara").auto_score == 1


def test_formgrader_lists_the_assignments_and_submissions(graded):
    api = formgrader_api(graded["out"])
    assignments = {a["name"]: a for a in api.get_assignments()}
    assert sorted(assignments) == [L02, L10]
    assert {a: (x["num_submissions"], x["max_score"]) for a, x in assignments.items()} == {L02: (2, 5), L10: (2, 7)}
    submissions = {s["student"]: s for s in api.get_submissions(L02)}
    assert set(submissions) == {"ann_101", "ben_202"}
    for student, s in submissions.items():
        assert s["autograded"] and s["submitted"] and s["needs_manual_grade"] is False, s
        assert s["score"] == score(graded, student, L02)
    notebooks = {n["name"]: n for n in api.get_notebooks(L10)}
    assert notebooks[L10]["needs_manual_grade"] is False and notebooks[L10]["num_submissions"] == 2
    listed = api.get_notebook_submissions(L10, L10)       # formgrader lists a notebook whose graded file it can open
    assert {n["student"]: (n["score"], n["needs_manual_grade"]) for n in listed} == {"ann_101": (7, False), "cara": (1, False)}


def test_formgrader_renders_each_graded_notebook_with_its_grades(graded):
    """nbgrader's GetGrades (what formgrader's submission page runs) finds a grade for every grade cell."""
    from nbgrader.preprocessors import GetGrades

    out = graded["out"]
    for student, lesson in [("ann_101", L02), ("cara", L10)]:
        nb = nbformat.read(out / "autograded" / student / lesson / f"{lesson}.ipynb", as_version=4)
        resources = {"nbgrader": {"notebook": lesson, "assignment": lesson, "student": student,
                                  "db_url": f"sqlite:///{out / 'gradebook.db'}"}}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nb, resources = GetGrades().preprocess(nb, resources)
        assert resources["nbgrader"]["score"] == score(graded, student, lesson)
        assert resources["nbgrader"]["max_score"] == dict(zip((L02, L10), (5, 7)))[lesson]


def test_nbgrader_export_totals_each_student_out_of_the_lessons(graded):
    out = graded["out"]
    done = subprocess.run([sys.executable, "-m", "nbgrader", "export", "--to", "nbgrader-export.csv"], cwd=out,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    with open(out / "nbgrader-export.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    by = {(r["student_id"], r["assignment"]): r for r in rows}
    assert {a for _, a in by} == {L02, L10}
    assert float(by[("ann_101", L10)]["score"]) == 7 and float(by[("ann_101", L10)]["max_score"]) == 7
    assert sum(float(r["max_score"]) for r in rows if r["student_id"] == "ben_202") == 12     # 5 + 7, not 66


def test_the_lms_csv_has_a_row_per_student_and_an_empty_cell_for_work_not_handed_in(graded):
    with open(graded["out"] / "lms.csv", newline="") as f:
        reader = csv.DictReader(f)
        header, rows = reader.fieldnames, {r["student"]: r for r in reader}
    assert header == ["student", "lms_id", L02, L10, "total", "max_total"]
    assert rows["ann_101"] == {"student": "ann_101", "lms_id": "101", L02: "5", L10: "7", "total": "12", "max_total": "12"}
    assert rows["ben_202"][L10] == "" and rows["cara"][L02] == "" and rows["cara"]["lms_id"] == ""
    assert float(rows["ben_202"]["total"]) == score(graded, "ben_202", L02)


def test_a_rerun_keeps_a_manual_override_flagged_for_review(graded):
    """A score a grader entered by hand in formgrader survives the next run, and stays flagged as nbgrader flags it."""
    from grader.gradebook import update_gradebook

    out = graded["out"]
    with warnings.catch_warnings(), gradebook(out) as gb:
        warnings.simplefilter("ignore")
        grade = gb.find_grade("check_dpo_loss", L02, L02, "ben_202")
        grade.manual_score = 3.0
        gb.db.commit()
    update_gradebook(out, LESSONS, prepared=True)
    with warnings.catch_warnings(), gradebook(out) as gb:
        warnings.simplefilter("ignore")
        grade = gb.find_grade("check_dpo_loss", L02, L02, "ben_202")
        assert grade.manual_score == 3.0 and grade.needs_manual_grade
        assert not gb.find_grade("check_dpo_loss", L02, L02, "ann_101").needs_manual_grade
        grade.manual_score, grade.needs_manual_grade = None, False
        gb.db.commit()


# ---- without grading -------------------------------------------------------------------------------------------------

def test_lesson_10s_gradebook_cells_are_worth_the_graders_maximum():
    lesson = LESSONS[L10]
    cells = dict(gradebook_cells(lesson))
    assert sum(cells.values()) == 7 == lesson.for_variant("ipo").max_score == lesson.for_variant("dpo").max_score
    assert set(cells) == {"check_implicit_reward", DRILL_CELL}
    assert dict(gradebook_cells(LESSONS[L02])) == {c.grade_id: c.points for c in LESSONS[L02].spec}


@pytest.mark.parametrize("variant", [None, "dpo", "simpo"])
def test_lesson_10s_notebook_carries_the_gradebooks_grade_cells(variant):
    lesson = LESSONS[L10]
    view = nbgrader_view(lesson.source, lesson, variant)
    graded = {c.metadata["nbgrader"]["grade_id"]: c.metadata["nbgrader"]["points"] for c in view.cells
              if c.metadata.get("nbgrader", {}).get("grade")}
    assert graded == dict(gradebook_cells(lesson))
    drill = next(c for c in view.cells if c.metadata.get("nbgrader", {}).get("grade_id") == DRILL_CELL)
    own = {"dpo": "check_dpo_loss", "simpo": "check_simpo_loss", None: "check_dpo_loss"}[variant]
    assert drill.id == cell_id(own)       # the cell keeps its id: the first check cell of the student's variant
    assert nbgrader_view(LESSONS[L02].source, LESSONS[L02]) is LESSONS[L02].source


def test_an_earlier_single_assignment_goes_and_a_grader_error_asks_for_a_manual_grade(tmp_path):
    """Results written by hand (no grading): the ``dpo`` assignment of earlier versions is removed, and a notebook the
    grader failed on has no auto score, so formgrader asks for a manual grade and lms.csv leaves its cell empty."""
    from nbgrader.api import Gradebook

    from grader.gradebook import prepare_gradebook, update_gradebook
    from grader.result import CellVerdict, NotebookResult, Status
    from grader.results import result_path, write_result

    out = tmp_path / "out"
    out.mkdir()
    prepare_gradebook(out, LESSONS)
    (out / "source" / "dpo").mkdir(parents=True)
    with warnings.catch_warnings(), Gradebook(f"sqlite:///{out / 'gradebook.db'}", course_id=COURSE_ID) as gb:
        warnings.simplefilter("ignore")
        gb.update_or_create_assignment("dpo")
    cells = [CellVerdict(c.grade_id, c.points, c.points, True, "ok") for c in LESSONS[L02].spec]
    write_result(result_path(out, "dora", L02), NotebookResult("dora", L02, 5, 5, Status.GRADED, "", cells))
    write_result(result_path(out, "eve", L02), NotebookResult("eve", L02, 0, 5, Status.GRADER_ERROR, "grader error"))
    update_gradebook(out, LESSONS, prepared=True)
    with warnings.catch_warnings(), gradebook(out) as gb:
        warnings.simplefilter("ignore")
        assert [a.name for a in gb.assignments] == [L02]
        assert gb.find_submission_notebook(L02, L02, "dora").needs_manual_grade is False
        assert gb.find_submission_notebook(L02, L02, "eve").needs_manual_grade is True
    assert not (out / "source" / "dpo").exists()
    with open(out / "lms.csv", newline="") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    assert (rows["dora"][L02], rows["eve"][L02]) == ("5", "")
    api = formgrader_api(out)
    assert [a["name"] for a in api.get_assignments()] == [L02]
    listed = {s["student"]: (s["autograded"], s["needs_manual_grade"]) for s in api.get_submissions(L02)}
    assert listed == {"dora": (True, False), "eve": (True, True)}      # graded, though no graded notebook was written
