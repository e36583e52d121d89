"""``python -m grader autograde SUBMISSIONS --out OUT``: grade a folder of untrusted submissions.

Layout in: ``SUBMISSIONS/<student>/<NN_name>.ipynb``. Out: ``OUT/grades.csv`` (student, notebook,
score, max_score, status, message, isolation), ``OUT/results/…``, ``OUT/feedback/…``,
``OUT/autograded/…``, nbgrader's gradebook ``OUT/gradebook.db``, for ``nbgrader export`` and
formgrader, and the class report ``OUT/report.html`` with ``OUT/mistakes.csv`` (:mod:`grader.report`).
A killed run re-run with the same OUT loses and duplicates nothing.

Three steps: :func:`grader.plan.make_plan` (what to grade, the secret seeds),
:func:`grader.grading.grade_outcome` (one notebook → a result and its feedback page, in a sandboxed
kernel; here, on ``jobs`` threads, or on Dask workers, :mod:`grader.cluster`) and :mod:`grader.results`
(each result written atomically by this process as it arrives, ``grades.csv`` rebuilt from them), then
the gradebook (:mod:`grader.gradebook`) and the class report (:mod:`grader.report`). A failure of the grader's own code on one notebook is that
notebook's ``grader error``; the others are graded all the same.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .course import SOLUTIONS_DIR, load_lessons, typical_seconds
from .grading import Outcome, grade_outcome
from .plan import Item, make_plan
from .report import class_report
from .results import atomic_write, write_csv, write_outputs, write_result
from .sandbox import Limits, detect
from .warm import WarmKernels, lesson_libraries
from .wording import LOG_MESSAGE_LIMIT, short_form

__all__ = ["autograde"]


def autograde(submissions: Path, out: Path, *, jobs: int = 1, limits: Limits | None = None, force: bool = False,
              sandbox: bool = True, solutions: Path = SOLUTIONS_DIR, gradebook: bool = True,
              report: bool = True, dask: str | None = None, warm: bool = True, log=print) -> int:
    """Grade every submission; returns 0 (the CSV says how each went), 2 for a bad SUBMISSIONS folder or
    an unreachable cluster, 1 when a result could not be written.

    ``dask``: grade on a Dask cluster instead of here (:mod:`grader.cluster`): a scheduler's address,
    or ``"local:N"`` for a local cluster of N worker processes; ``jobs`` is then unused.

    ``warm``: under the full sandbox, each job forks its kernels from a kernel server that has imported the
    libraries once (:mod:`grader.warm`; the same isolation); ``warm=False`` (``--cold``) starts every kernel
    from scratch."""
    submissions, out = Path(submissions).resolve(), Path(out).resolve()
    limits = limits or Limits()
    if not submissions.is_dir():
        log(f"error: {submissions} is not a folder of <student>/<NN_name>.ipynb submissions")
        return 2
    if out == submissions or submissions in out.parents:
        log("error: OUT must not be inside SUBMISSIONS")
        return 2
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "run.json", json.dumps({"submissions": str(submissions)}))   # for `grader report OUT`
    lessons = load_lessons(solutions)
    iso = detect(want_sandbox=sandbox)
    log(f"isolation{' here (each worker checks its own)' if dask else ''}: {iso.summary()}")
    if not iso.sandboxed and dask is None:
        log("warning: submissions will run with weaker isolation than the grader is built for; see the 'isolation' column")
    plan = make_plan(submissions, out, lessons, force=force,
                     expected_seconds=typical_seconds() if jobs > 1 or dask else None)
    done = len(plan.items) - len(plan.todo)
    log(f"{len(plan.items)} notebooks from {plan.students} students; {len(plan.todo)} to grade"
        + (f", {done} already graded (use --force to grade again)" if done else ""))

    book = _Gradebook(out, lessons) if gradebook and plan.todo else None
    recorder = _Recorder(out, log)

    def seeds_of(item: Item) -> dict | None:
        return plan.seeds.for_lesson(item.student, lessons[item.lesson]) if item.lesson in lessons else None

    if dask is not None:
        from .cluster import grade_on_cluster

        code = grade_on_cluster(dask, plan.todo, lessons, sandbox, limits, seeds_of, recorder, log=log, warm=warm) if plan.todo else 0
        if code:
            return code
    else:
        _grade_here(plan.todo, lessons, iso, limits, seeds_of, recorder, jobs=jobs, warm=warm, log=log)
    write_csv(out)
    if gradebook:
        _update_gradebook(out, lessons, book, log)
    log(f"wrote {out / 'grades.csv'}")
    if report:
        _report(out, submissions, lessons, log)
    return 1 if recorder.unwritten else 0


class _Recorder:
    """Writes each outcome into OUT as it arrives (this process is OUT's only writer) and logs its row;
    ``unwritten`` holds the items whose result could not be written."""

    def __init__(self, out: Path, log):
        self.out, self.log = out, log
        self.unwritten: list[Item] = []
        self._csv_lock = threading.Lock()

    def __call__(self, outcome: Outcome) -> None:
        item, result = outcome.item, outcome.result
        try:
            if outcome.notebook_text is not None:
                write_outputs(self.out, result, outcome.notebook_text, outcome.page)
            row = write_result(item.result_path, result)
            with self._csv_lock:
                write_csv(self.out)
        except OSError as exc:
            self.unwritten.append(item)
            self.log(f"error: the result of {item.student}/{item.notebook} could not be written ({exc})")
            return
        self.log(f"  {item.student:<20} {item.notebook:<36} {row['score']:>5}/{row['max_score']:<5} {row['status']:<12} "
                 f"{short_form(row['message'], LOG_MESSAGE_LIMIT)}")


def _grade_here(todo: list[Item], lessons: dict, iso, limits: Limits, seeds_of, record, *, jobs: int, warm: bool,
                log) -> None:
    """Grade ``todo`` on this machine, ``jobs`` notebooks at once, each in its own sandboxed kernel (forked from
    the job's kernel server when ``warm`` and the sandbox is complete), and ``record`` each outcome."""
    scratch = Path(tempfile.mkdtemp(prefix="dpo-grader-"))
    servers = WarmKernels(iso, limits, scratch, log=log, libraries=lambda: lesson_libraries(
        lessons, {item.lesson for item in todo}, scratch)) if warm and iso.sandboxed else None

    def work(item: Item) -> None:
        record(grade_outcome(item, lessons, iso, limits, seeds_of(item), scratch, warm=servers))

    try:
        if jobs <= 1:
            for item in todo:
                work(item)
        else:
            with ThreadPoolExecutor(max_workers=jobs) as pool:
                for future in [pool.submit(work, item) for item in todo]:
                    future.result()
    finally:
        if servers is not None:
            servers.close()
        shutil.rmtree(scratch, ignore_errors=True)


class _Gradebook:
    """The gradebook's creation, started at once in a background thread: it is slow and independent of the
    grades, so it overlaps the first notebooks."""

    def __init__(self, out: Path, lessons: dict):
        from .gradebook import prepare_gradebook

        self.prepared = False

        def prepare() -> None:
            try:
                prepare_gradebook(out, lessons)
                self.prepared = True
            except Exception:   # update_gradebook prepares it again and reports the reason
                pass

        self._thread = threading.Thread(target=prepare, daemon=True)
        self._thread.start()

    def wait(self) -> bool:
        """Whether the gradebook was prepared, once its thread is done."""
        self._thread.join()
        return self.prepared


def _update_gradebook(out: Path, lessons: dict, book: _Gradebook | None, log) -> None:
    from .gradebook import update_gradebook

    prepared = book.wait() if book is not None else False
    try:
        update_gradebook(out, lessons, prepared=prepared)
    except Exception as exc:
        log(f"warning: the nbgrader gradebook was not updated ({type(exc).__name__}: {short_form(str(exc), 200)}); grades.csv is complete")


def _report(out: Path, submissions: Path, lessons: dict, log) -> None:
    try:
        class_report(out, submissions=submissions, lessons=lessons, log=log)
    except Exception as exc:   # the report is a reading of the results: its failure loses no grade
        log(f"warning: the class report was not written ({type(exc).__name__}: {short_form(str(exc), 200)}); "
            f"grades.csv is complete, and `python -m grader report {out}` tries again")
