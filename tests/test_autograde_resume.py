"""Killing `python -m grader autograde` with SIGKILL mid-run, then re-running, gives the same grades.csv
as one clean run; a re-run without --force grades nothing again."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from grading_helpers import LESSON, ROOT, UNSTABLE_LOSS, answered, released

pytestmark = [pytest.mark.sandbox, pytest.mark.notebook]

STUDENTS = {"ann": released, "ben": answered, "cat": lambda: answered(loss=UNSTABLE_LOSS), "dan": answered}


def grade(submissions: Path, out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "grader", "autograde", str(submissions), "--out", str(out),
                             "--timeout", "30", *extra], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})


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


def test_sigkill_then_rerun_equals_one_clean_run(tmp_path):
    submissions = tmp_path / "submissions"
    for student, make in STUDENTS.items():
        (submissions / student).mkdir(parents=True)
        nbformat.write(make(), submissions / student / f"{LESSON}.ipynb")
    killed, clean = tmp_path / "killed", tmp_path / "clean"

    log = kill_after_first_result(grade(submissions, killed))
    partial = len(list((killed / "results").glob("*/*.json")))
    assert partial == 1, f"expected the one result reported before the kill, found {partial}:\n{log}"

    rerun = grade(submissions, killed)
    log = rerun.communicate(timeout=300)[0]
    assert rerun.returncode == 0, log
    assert f"{len(STUDENTS) - partial} to grade, {partial} already graded" in log

    clean.mkdir()
    shutil.copy(killed / ".secret", clean / ".secret")        # the same secret seeds, so the same hidden inputs
    once = grade(submissions, clean)
    assert once.communicate(timeout=300)[0] and once.returncode == 0
    assert (killed / "grades.csv").read_text() == (clean / "grades.csv").read_text()
    rows = (clean / "grades.csv").read_text().strip().splitlines()
    assert len(rows) == len(STUDENTS) + 1 and not list(killed.rglob("*.tmp"))

    again = grade(submissions, killed)
    assert "0 to grade" in again.communicate(timeout=120)[0]
