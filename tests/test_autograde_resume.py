"""Killing `python -m grader autograde` with SIGKILL mid-run, then re-running, gives the same grades.csv
as one clean run; a re-run without --force grades nothing again."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest

from grading_helpers import LESSON, ROOT, UNSTABLE_LOSS, answered, released

pytestmark = [pytest.mark.sandbox, pytest.mark.notebook]

STUDENTS = {"ann": released, "ben": answered, "cat": lambda: answered(loss=UNSTABLE_LOSS), "dan": answered}


@pytest.fixture
def scratch():
    """The runs' temp folder: what a SIGKILLed run leaves there is removed with it. Short, under the system's
    temp folder and not inside pytest's deeper ``tmp_path``, so that the runs' scratch stays in it (below a
    deeper one the kernels' sockets would not fit, and :func:`grader.sandbox.scratch_root` moves it to /tmp)."""
    folder = Path(tempfile.mkdtemp(prefix="dpo-resume-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def grade(submissions: Path, out: Path, scratch: Path, *extra: str) -> subprocess.Popen:
    """The run, with the course secret beside SUBMISSIONS: both OUT folders get the same seeds from it."""
    return subprocess.Popen([sys.executable, "-m", "grader", "autograde", str(submissions), "--out", str(out),
                             "--timeout", "30", "--secret", str(submissions.parent / "course.secret"), *extra], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", "TMPDIR": str(scratch)})


def kill_after_first_result(run: subprocess.Popen) -> str:
    """SIGKILL the run the moment it reports its first graded notebook (one job: the next one has only
    just started); returns what it printed."""
    said = []
    for line in run.stdout:
        said.append(line)
        if line.startswith("  ") and LESSON in line:      # "  <student> <notebook> <score> …": a result is written
            os.killpg(run.pid, signal.SIGKILL)
            break
    run.wait()
    return "".join(said)


def test_sigkill_then_rerun_equals_one_clean_run(tmp_path, scratch):
    submissions = tmp_path / "submissions"
    for student, make in STUDENTS.items():
        (submissions / student).mkdir(parents=True)
        nbformat.write(make(), submissions / student / f"{LESSON}.ipynb")
    killed, clean = tmp_path / "killed", tmp_path / "clean"

    log = kill_after_first_result(grade(submissions, killed, scratch))
    partial = len(list((killed / "results").glob("*/*.json")))
    assert partial == 1, f"expected the one result reported before the kill, found {partial}:\n{log}"

    rerun = grade(submissions, killed, scratch)
    log = rerun.communicate(timeout=300)[0]
    assert rerun.returncode == 0, log
    assert f"{len(STUDENTS) - partial} to grade, {partial} already graded" in log

    once = grade(submissions, clean, scratch)                          # the same course secret: the same hidden inputs
    assert once.communicate(timeout=300)[0] and once.returncode == 0
    assert (killed / "grades.csv").read_text() == (clean / "grades.csv").read_text()
    rows = (clean / "grades.csv").read_text().strip().splitlines()
    assert len(rows) == len(STUDENTS) + 1 and not list(killed.rglob("*.tmp"))

    again = grade(submissions, killed, scratch)
    assert "0 to grade" in again.communicate(timeout=120)[0]
