"""Ctrl-C (SIGINT to the process group) and SIGTERM stop `python -m grader autograde --jobs 2` within seconds: no
queued notebook starts, the running one's kernel is killed and it gets no result, grades.csv, the report and the
gradebook are written for what was graded, no scratch is left in the temp folder (nor in /tmp, where a temp
folder as deep as this test's moves it), one line says how to go on, the exit code is 128 + the signal, and a
re-run grades the rest. On a local Dask cluster (``--dask local:2``) Ctrl-C stops the run the same way:
the notebooks not back are cancelled, the workers' kernels killed, their scratch removed.

Student ``a1``'s notebook sleeps for a minute in its first exercise cell: it is running when the signal comes (two
jobs: ``a0`` and ``a1`` start together, and the signal follows ``a0``'s row), so only a killed kernel lets the run end
without a result for it (left alone, it would be a ``timeout``)."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import nbformat
import pytest

from grader.sandbox import SHORT_TEMP, short_prefix
from grading_helpers import LESSON, ROOT, answered, released

pytestmark = [pytest.mark.sandbox, pytest.mark.notebook]

SLEEPER = "a1"
STUDENTS = {"a0": released, SLEEPER: lambda: answered(extra_loss="\nimport time\ntime.sleep(60)\n"),
            "a2": answered, "a3": released, "a4": answered}


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """The submissions, a temp folder of the runs' own, and the environment that points both there."""
    base = tmp_path_factory.mktemp("interrupt")
    submissions = base / "submissions"
    for student, make in STUDENTS.items():
        (submissions / student).mkdir(parents=True)
        nbformat.write(make(), submissions / student / f"{LESSON}.ipynb")
    temp = base / ("tmp-" + "deep" * 12)     # too deep for the kernels' sockets: the run's scratch moves to /tmp
    temp.mkdir()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TMPDIR": str(temp), "DPO_GRADER_SECRET_FILE": str(base / "secret")}
    return submissions, base, temp, env


def grade(submissions: Path, out: Path, env: dict, *extra: str) -> subprocess.Popen:
    extra = extra if "--dask" in extra else ("--jobs", "2", *extra)
    return subprocess.Popen([sys.executable, "-m", "grader", "autograde", str(submissions), "--out", str(out),
                             *extra], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True, env=env)


def signal_after_first_row(run: subprocess.Popen, signum: int) -> tuple[str, int]:
    """Send ``signum`` to the run's process group once it logs its first graded notebook (an event, not a delay);
    what it printed, and its exit code."""
    watchdog = threading.Timer(600, lambda: os.killpg(run.pid, signal.SIGKILL))   # a hung run fails, never hangs
    watchdog.start()
    said, sent = [], False
    try:
        for line in run.stdout:
            said.append(line)
            if not sent and line.startswith("  ") and LESSON in line:
                os.killpg(run.pid, signum)
                sent = True
        run.wait()
    finally:
        watchdog.cancel()
    assert sent, "".join(said)
    return "".join(said), run.returncode


def graded_students(out: Path) -> set[str]:
    return {path.parent.name for path in (out / "results").glob("*/*.json")}


def leftover_scratch(temp: Path) -> list[Path]:
    """Scratch folders the runs left, in the temp folder or where :func:`grader.sandbox.scratch_root` moved them."""
    return [*temp.glob("dpo-grader-*"), *SHORT_TEMP.glob(short_prefix("dpo-grader-*", str(temp)) + "*")]


def logged_students(log: str) -> set[str]:
    return {line.split()[0] for line in log.splitlines() if line.startswith("  ") and LESSON in line}


def assert_stopped_cleanly(out: Path, temp: Path, log: str, signum: int, code: int) -> None:
    name = signal.Signals(signum).name
    graded = graded_students(out)
    assert code == 128 + signum, log
    assert f"interrupted by {name}" in log and "Run the same command again" in log, log
    assert "Traceback" not in log, log
    assert graded == logged_students(log) and SLEEPER not in graded and 0 < len(graded) < len(STUDENTS), log
    rows = list(csv.DictReader(open(out / "grades.csv", newline="")))
    assert {row["student"] for row in rows} == graded
    assert (out / "report.html").is_file() and (out / "mistakes.csv").is_file() and (out / "gradebook.db").is_file()
    assert not leftover_scratch(temp), leftover_scratch(temp)


def test_ctrl_c_stops_a_two_job_run_keeps_what_is_graded_and_a_rerun_grades_the_rest(course):
    submissions, base, temp, env = course
    out = base / "out-sigint"
    log, code = signal_after_first_row(grade(submissions, out, env, "--timeout", "90"), signal.SIGINT)
    assert_stopped_cleanly(out, temp, log, signal.SIGINT, code)
    before = {path: path.read_text() for path in (out / "results").glob("*/*.json")}

    rerun = grade(submissions, out, env, "--timeout", "5")          # the sleeper now times out quickly
    said = rerun.communicate(timeout=600)[0]
    assert rerun.returncode == 0, said
    assert f"{len(STUDENTS) - len(before)} to grade, {len(before)} already graded" in said, said
    assert graded_students(out) == set(STUDENTS)
    assert all(path.read_text() == text for path, text in before.items())     # what was graded stays as it was
    assert not leftover_scratch(temp)


def test_sigterm_stops_the_same_way(course):
    submissions, base, temp, env = course
    out = base / "out-sigterm"
    log, code = signal_after_first_row(grade(submissions, out, env, "--timeout", "90"), signal.SIGTERM)
    assert_stopped_cleanly(out, temp, log, signal.SIGTERM, code)


def test_ctrl_c_stops_a_run_on_a_local_dask_cluster(course):
    pytest.importorskip("distributed")
    submissions, base, temp, env = course
    out = base / "out-dask"
    log, code = signal_after_first_row(grade(submissions, out, env, "--dask", "local:2", "--timeout", "90"), signal.SIGINT)
    assert "cancelled on the cluster" in log and "KeyboardInterrupt" not in log, log
    assert_stopped_cleanly(out, temp, log, signal.SIGINT, code)
