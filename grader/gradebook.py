"""Mirror the grader's results into an nbgrader gradebook, so nbgrader's own tools work on them.

``OUT/gradebook.db`` gets the assignment (``dpo``, one notebook per lesson, one grade cell per check
cell with its points), a student and a submission per student folder, and each check's score as the
cell's ``auto_score``. With ``OUT/nbgrader_config.py`` (written here) and the graded notebooks in
``OUT/autograded/<student>/dpo/``, ``nbgrader export`` and formgrader read it as they read their own.
The gradebook is rebuilt from ``OUT/results`` each time, so it can never disagree with ``grades.csv``.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import nbformat

from .course import ASSIGNMENT, COURSE_ID
from .results import read_results

__all__ = ["prepare_gradebook", "update_gradebook"]


def prepare_gradebook(out: Path, lessons: dict) -> Path:
    """Create ``OUT/gradebook.db`` with the course's assignment, notebooks and grade cells.

    Creating a new database is the slow part (nbgrader imports, then runs ``alembic`` as a program):
    the grader calls this in a background thread while the first notebooks run, and
    :func:`update_gradebook` then only fills in scores. Safe to call again."""
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
    source_dir = out / "source" / ASSIGNMENT
    source_dir.mkdir(parents=True, exist_ok=True)
    for name, lesson in lessons.items():
        nbformat.write(lesson.source, source_dir / f"{name}.ipynb")
    with warnings.catch_warnings(), Gradebook(f"sqlite:///{db_path}", course_id=COURSE_ID) as gb:
        warnings.simplefilter("ignore")
        gb.update_or_create_assignment(ASSIGNMENT)
        for name, lesson in lessons.items():
            gb.update_or_create_notebook(name, ASSIGNMENT)
            for cell in lesson.spec:
                gb.update_or_create_grade_cell(cell.grade_id, name, ASSIGNMENT, max_score=cell.points, cell_type="code")
    return db_path


def update_gradebook(out: Path, lessons: dict, prepared: bool = False) -> Path:
    """Mirror every result in ``OUT/results`` into the gradebook (creating it first unless ``prepared``)."""
    from nbgrader.api import Gradebook, MissingEntry

    out = Path(out)
    db_path = out / "gradebook.db" if prepared else prepare_gradebook(out, lessons)
    results = read_results(out)
    with warnings.catch_warnings(), Gradebook(f"sqlite:///{db_path}", course_id=COURSE_ID) as gb:
        warnings.simplefilter("ignore")   # nbgrader's add_submission trips SQLAlchemy's autoflush warnings
        for result in results:
            student, notebook = result.student, result.notebook
            if notebook not in lessons:
                continue
            gb.update_or_create_student(student)
            try:
                gb.find_submission(ASSIGNMENT, student)
            except MissingEntry:
                gb.add_submission(ASSIGNMENT, student)
            scores = {c.grade_id: c.score for c in result.cells}
            for cell in lessons[notebook].spec:
                grade = gb.find_grade(cell.grade_id, notebook, ASSIGNMENT, student)
                grade.auto_score = float(scores.get(cell.grade_id, 0.0))
            gb.db.commit()
    return db_path
