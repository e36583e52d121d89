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

**Re-runs** (:mod:`grader.plan`): a notebook is graded again when its submission changed since it was graded (a
resubmission, said in the log), never when it did not; ``--force`` grades again everything selected;
``--student NAME`` and ``--notebook NAME|NN`` (each repeatable) select what is considered.

**The secret** (:mod:`grader.secret`): the course secret (``--secret FILE``, ``$DPO_GRADER_SECRET_FILE``, else
``~/.config/dpo-grader/secret``; made, loudly, when there is none), or an OUT's own ``OUT/.secret`` from an earlier
version; ``OUT/run.json`` records its fingerprint, and a run with another secret into the same OUT is refused.

**Ctrl-C and SIGTERM** stop the run in seconds: queued notebooks are not started, running ones have their kernels
killed (:func:`grader.execute.cancel_runs`; they get no result, so the next run grades them), then ``grades.csv``, the
gradebook and the report are written for what was graded, scratch and cgroups are removed, one line says how to go
on, and the exit code is 128 + the signal (130 for Ctrl-C, 143 for SIGTERM). A second Ctrl-C while stopping quits at once.
"""

from __future__ import annotations

import json
import shutil
import signal
import textwrap
import threading
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

from .course import SOLUTIONS_DIR, load_lessons, typical_seconds
from .execute import GradingCancelled, allow_runs, cancel_runs
from .grading import Outcome, grade_outcome
from .plan import Item, SecretSeeds, make_plan
from .report import class_report
from .results import atomic_write, write_csv, write_outputs, write_result
from .sandbox import Limits, detect, scratch_root
from .secret import Secret, recorded_fingerprint, resolve_secret
from .warm import WarmKernels, lesson_libraries
from .wording import CSV_MESSAGE_LIMIT, short_form

__all__ = ["autograde"]

#: Columns of the progress log; a row's message wraps under it (indented), never cut.
LOG_WIDTH = 120
_REASONS = {"changed": "changed since graded", "handed in": "handed in since graded missing", "forced": "--force",
            "unreadable result": "unreadable result"}


def autograde(submissions: Path, out: Path, *, jobs: int = 1, limits: Limits | None = None, force: bool = False,
              sandbox: bool = True, solutions: Path = SOLUTIONS_DIR, gradebook: bool = True,
              report: bool = True, dask: str | None = None, warm: bool = True, students: list[str] | None = None,
              notebooks: list[str] | None = None, secret: Path | None = None, log=print) -> int:
    """Grade every submission; returns 0 (the CSV says how each went), 2 for a bad SUBMISSIONS folder, a bad
    selection, a secret that is not OUT's or an unreachable cluster, 1 when a result could not be written, and
    128 + the signal's number when a signal (Ctrl-C: SIGINT, SIGTERM) stopped it.

    ``dask``: grade on a Dask cluster instead of here (:mod:`grader.cluster`): a scheduler's address,
    or ``"local:N"`` for a local cluster of N worker processes; ``jobs`` is then unused.

    ``warm``: under the full sandbox, each job forks its kernels from a kernel server that has imported the
    libraries once (:mod:`grader.warm`; the same isolation); ``warm=False`` (``--cold``) starts every kernel
    from scratch. ``students``, ``notebooks``: grade only these (:func:`grader.plan.make_plan`). ``secret``: the
    course secret's file (:func:`grader.secret.course_secret_path`)."""
    submissions, out = Path(submissions).resolve(), Path(out).resolve()
    limits = limits or Limits()
    if not submissions.is_dir():
        log(f"error: {submissions} is not a folder of <student>/<NN_name>.ipynb submissions")
        return 2
    from .collect import layout_problem
    if problem := layout_problem(submissions):   # e.g. an LMS's flat download: nothing here would be graded
        log(f"error: {problem}")
        return 2
    if out == submissions or submissions in out.parents:
        log("error: OUT must not be inside SUBMISSIONS")
        return 2
    out.mkdir(parents=True, exist_ok=True)
    key = _secret_of(out, submissions, secret, log)
    if key is None:
        return 2
    lessons = load_lessons(solutions)
    iso = detect(want_sandbox=sandbox)
    log(f"isolation{' here (each worker checks its own)' if dask else ''}: {iso.summary()}")
    if not iso.sandboxed and dask is None:
        log("warning: submissions will run with weaker isolation than the grader is built for; see the 'isolation' column")
    try:
        plan = make_plan(submissions, out, lessons, seeds=SecretSeeds(key.key), force=force, students=students,
                         notebooks=notebooks, expected_seconds=typical_seconds() if jobs > 1 or dask else None, log=log)
    except ValueError as exc:
        log(f"error: {exc}")
        return 2
    log(_plan_line(plan, selecting=bool(students or notebooks)))
    if plan.kept:
        shown = ", ".join(plan.kept[:5]) + (f" and {len(plan.kept) - 5} more" if len(plan.kept) > 5 else "")
        log(f"kept the grades of {len(plan.kept)} notebook(s) graded before but no longer in SUBMISSIONS ({shown}); "
            f"delete OUT/results/<student>/<notebook>.json to drop one")

    book = _Gradebook(out, lessons) if gradebook and plan.todo else None
    recorder = _Recorder(out, log)

    def seeds_of(item: Item) -> dict | None:
        return plan.seeds.for_lesson(item.student, lessons[item.lesson]) if item.lesson in lessons else None

    with _Stop(log) as stop:
        if dask is not None:
            from .cluster import grade_on_cluster

            code = grade_on_cluster(dask, plan.todo, lessons, sandbox, limits, seeds_of, recorder, log=log, warm=warm,
                                    stop=stop.event) if plan.todo else 0
            if code and not stop.signal:
                return code
        else:
            _grade_here(plan.todo, lessons, iso, limits, seeds_of, recorder, jobs=jobs, warm=warm, log=log, stop=stop)
        write_csv(out)
        if gradebook:
            _update_gradebook(out, lessons, book, log)
        log(f"wrote {out / 'grades.csv'}")
        if report:
            _report(out, submissions, lessons, log)
        if stop.signal:
            left = len(plan.todo) - len(recorder.recorded)
            log(f"interrupted by {signal.Signals(stop.signal).name}: {len(recorder.recorded)} of {len(plan.todo)} notebooks "
                f"graded and written; the other {left} (stopped or not started) have no result. Run the same command "
                f"again to grade them.")
            return 128 + stop.signal
    return 1 if recorder.unwritten else 0


def _secret_of(out: Path, submissions: Path, secret: Path | None, log) -> Secret | None:
    """The secret that grades ``out`` (:func:`grader.secret.resolve_secret`), recorded in ``OUT/run.json`` with the
    submissions (for `grader report OUT`); None, said in ``log``, when it cannot be read or is not the one OUT was
    graded with."""
    try:
        key = resolve_secret(out, secret, log=log)
    except (OSError, ValueError) as exc:
        log(f"error: the course secret cannot be read ({exc})")
        return None
    recorded = recorded_fingerprint(out)
    if recorded is not None and recorded != key.fingerprint:
        log(f"error: {out} was graded with the secret of fingerprint {recorded}, and this run's secret ({key.path}) is "
            f"{key.fingerprint}: grading into it would mix two secrets' seeds and variants. Use the course's secret "
            f"(`python -m grader secret import FILE`, or --secret FILE), or another OUT")
        return None
    atomic_write(out / "run.json", json.dumps({"submissions": str(submissions), "secret": key.fingerprint}))
    return key


def _plan_line(plan, selecting: bool) -> str:
    """The run's plan in one line: "12 notebooks from 4 students; 3 to grade (2 changed since graded), 9 already graded"."""
    done = plan.selected - len(plan.todo)
    reasons = {why: n for why, n in plan.counts().items() if why in _REASONS}
    line = f"{len(plan.items)} notebooks from {plan.students} students"
    if selecting:
        line += f" ({plan.selected} selected by --student/--notebook)"
    line += f"; {len(plan.todo)} to grade"
    if reasons:
        line += " (" + ", ".join(f"{n} {_REASONS[why]}" for why, n in reasons.items()) + ")"
    return line + (f", {done} already graded (use --force to grade again)" if done else "")


class _Stop:
    """While grading: SIGINT and SIGTERM set ``signal`` and ``event`` instead of killing the process (the main thread
    then cancels the run); a second one restores the default handlers, so a third quits at once. Installed only in
    the main thread (elsewhere signals cannot be caught); the previous handlers come back on exit."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, log):
        self.log, self.signal, self.event = log, None, threading.Event()
        self._previous: dict = {}

    def __enter__(self) -> _Stop:
        allow_runs()
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum, frame) -> None:   # no printing here: the main thread may be inside print
        if self.signal is None:
            self.signal = signum
            self.event.set()
        else:
            for other in self.SIGNALS:
                signal.signal(other, signal.default_int_handler if other == signal.SIGINT else signal.SIG_DFL)

    def is_set(self) -> bool:
        return self.event.is_set()

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        allow_runs()


class _Recorder:
    """Writes each outcome into OUT as it arrives (this process is OUT's only writer) and logs its row;
    ``unwritten`` holds the items whose result could not be written, ``recorded`` those written."""

    def __init__(self, out: Path, log):
        self.out, self.log = out, log
        self.unwritten: list[Item] = []
        self.recorded: list[Item] = []
        self._csv_lock = threading.Lock()

    def __call__(self, outcome: Outcome) -> None:
        item, result = outcome.item, outcome.result
        if result.submission_sha256 is None:
            result.submission_sha256 = item.sha256   # the file as planned: a change after this regrades it next run
        try:
            if outcome.notebook_text is not None:
                write_outputs(self.out, result, outcome.notebook_text, outcome.page)
            row = write_result(item.result_path, result)
            with self._csv_lock:
                write_csv(self.out)
                self.recorded.append(item)
        except OSError as exc:
            self.unwritten.append(item)
            self.log(f"error: the result of {item.student}/{item.notebook} could not be written ({exc})")
            return
        self.log(log_row(row))


def log_row(row: dict[str, str], width: int = LOG_WIDTH) -> str:
    """A row of the progress log: student, notebook, score, status, then the message (its CSV short form, which ends
    on a sentence), wrapped to ``width`` columns with an indent — never cut."""
    head = (f"  {row['student']:<20} {row['notebook']:<36} {row['score']:>5}/{row['max_score']:<5} "
            f"{row['status']:<12} ")
    message = short_form(row["message"], CSV_MESSAGE_LIMIT)
    return textwrap.fill(head + message, width=max(width, len(head) + 20), subsequent_indent=" " * 6,
                         break_long_words=False, break_on_hyphens=False, drop_whitespace=True)


def _grade_here(todo: list[Item], lessons: dict, iso, limits: Limits, seeds_of, record, *, jobs: int, warm: bool,
                log, stop: _Stop | None = None) -> None:
    """Grade ``todo`` on this machine, ``jobs`` notebooks at once (each on a thread of its own), each in its own
    sandboxed kernel (forked from the job's kernel server when ``warm`` and the sandbox is complete), and ``record``
    each outcome. When ``stop`` is set: queued notebooks are not started, running kernels are killed, and the
    notebooks they ran are not recorded."""
    scratch = scratch_root("dpo-grader-")
    servers = WarmKernels(iso, limits, scratch, log=log, libraries=lambda: lesson_libraries(
        lessons, {item.lesson for item in todo}, scratch)) if warm and iso.sandboxed else None
    stopping = stop.is_set if stop is not None else (lambda: False)

    def work(item: Item) -> None:
        if stopping():
            return
        try:
            outcome = grade_outcome(item, lessons, iso, limits, seeds_of(item), scratch, warm=servers)
        except GradingCancelled:
            return
        record(outcome)

    pool = ThreadPoolExecutor(max_workers=max(1, jobs))
    cancelled = False
    try:
        pending = {pool.submit(work, item) for item in todo}
        while pending:
            done, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
            for future in done:
                future.result()
            if stopping():
                log("stopping: no other notebook starts, the running ones' kernels are killed "
                    "(Ctrl-C again quits at once, leaving scratch behind)")
                for future in pending:
                    future.cancel()
                cancel_runs()
                cancelled = True
                break
    finally:
        if not cancelled and stopping():
            cancel_runs()
        pool.shutdown(wait=True, cancel_futures=True)
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
