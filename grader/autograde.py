"""``python -m grader autograde SUBMISSIONS --out OUT``: grade a folder of untrusted submissions.

Layout in: ``SUBMISSIONS/<student>/<NN_name>.ipynb``. Out: ``OUT/grades.csv`` (student, notebook,
score, max_score, status, message, isolation), ``OUT/results/…``, ``OUT/feedback/…``,
``OUT/autograded/…`` and nbgrader's gradebook ``OUT/gradebook.db``, for ``nbgrader export`` and
formgrader. A killed run re-run with the same OUT loses and duplicates nothing.

Three steps: :func:`grader.plan.make_plan` (what to grade, the secret seeds),
:func:`grader.grading.grade_item` (one notebook → a result, in a sandboxed kernel) and
:mod:`grader.results` (each result written atomically, ``grades.csv`` rebuilt from them), then the
gradebook (:mod:`grader.gradebook`). A failure of the grader's own code on one notebook is that
notebook's ``grader error``; the others are graded all the same.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .course import SOLUTIONS_DIR, load_lessons, typical_seconds
from .grading import grade_item, grader_error
from .plan import Item, make_plan
from .results import write_csv, write_outputs, write_result
from .sandbox import Limits, detect
from .wording import LOG_MESSAGE_LIMIT, short_form

__all__ = ["autograde"]


def autograde(submissions: Path, out: Path, *, jobs: int = 1, limits: Limits | None = None, force: bool = False,
              sandbox: bool = True, solutions: Path = SOLUTIONS_DIR, gradebook: bool = True,
              log=print) -> int:
    """Grade every submission; returns 0 (the CSV says how each went), 2 for a bad SUBMISSIONS folder,
    1 when a result could not be written."""
    submissions, out = Path(submissions).resolve(), Path(out).resolve()
    limits = limits or Limits()
    if not submissions.is_dir():
        log(f"error: {submissions} is not a folder of <student>/<NN_name>.ipynb submissions")
        return 2
    if out == submissions or submissions in out.parents:
        log("error: OUT must not be inside SUBMISSIONS")
        return 2
    out.mkdir(parents=True, exist_ok=True)
    lessons = load_lessons(solutions)
    iso = detect(want_sandbox=sandbox)
    isolation = iso.summary()
    log(f"isolation: {isolation}")
    if not iso.sandboxed:
        log("warning: submissions will run with weaker isolation than the grader is built for; see the 'isolation' column")
    plan = make_plan(submissions, out, lessons, force=force, expected_seconds=typical_seconds() if jobs > 1 else None)
    done = len(plan.items) - len(plan.todo)
    log(f"{len(plan.items)} notebooks from {plan.students} students; {len(plan.todo)} to grade"
        + (f", {done} already graded (use --force to grade again)" if done else ""))

    preparing, prepared = None, []
    if gradebook and plan.todo:
        # The gradebook's creation is slow and independent of the grades: overlap it with the first notebooks.
        from .gradebook import prepare_gradebook

        def prepare():
            try:
                prepare_gradebook(out, lessons)
                prepared.append(True)
            except Exception:   # update_gradebook below prepares it again and reports the reason
                pass

        preparing = threading.Thread(target=prepare, daemon=True)
        preparing.start()

    scratch = Path(tempfile.mkdtemp(prefix="dpo-grader-"))
    csv_lock, unwritten = threading.Lock(), []

    def work(item: Item) -> None:
        result = None
        try:
            result, graded_nb = grade_item(item, lessons, iso, limits, plan.seeds, scratch)
            if graded_nb is not None:
                write_outputs(out, result, graded_nb)
        except Exception as exc:   # the grader's own failure: this notebook's status, not the run's end
            result = grader_error(item, lessons, exc, result)
        try:
            row = write_result(item.result_path, result, isolation)
            with csv_lock:
                write_csv(out)
        except OSError as exc:
            unwritten.append(item)
            log(f"error: the result of {item.student}/{item.notebook} could not be written ({exc})")
            return
        log(f"  {item.student:<20} {item.notebook:<36} {row['score']:>5}/{row['max_score']:<5} {row['status']:<12} {short_form(row['message'], LOG_MESSAGE_LIMIT)}")

    try:
        if jobs <= 1:
            for item in plan.todo:
                work(item)
        else:
            with ThreadPoolExecutor(max_workers=jobs) as pool:
                for future in [pool.submit(work, item) for item in plan.todo]:
                    future.result()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    write_csv(out)
    if preparing is not None:
        preparing.join()
    if gradebook:
        from .gradebook import update_gradebook

        try:
            update_gradebook(out, lessons, prepared=bool(prepared))
        except Exception as exc:
            log(f"warning: the nbgrader gradebook was not updated ({type(exc).__name__}: {short_form(str(exc), 200)}); grades.csv is complete")
    log(f"wrote {out / 'grades.csv'}")
    return 1 if unwritten else 0
