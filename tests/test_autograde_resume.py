"""Killing `python -m grader autograde` with SIGKILL mid-run, then re-running, gives the same grades.csv
as one clean run; a re-run without --force grades nothing again."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat

from test_autograde_hostile import LESSON, UNSTABLE_LOSS, answered, released

ROOT = Path(__file__).resolve().parents[1]


def grade(submissions: Path, out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "grader", "autograde", str(submissions), "--out", str(out),
                             "--timeout", "30", *extra], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)


def test_sigkill_then_rerun_equals_one_clean_run(tmp_path):
    submissions = tmp_path / "submissions"
    for student, nb in {"ann": released(), "ben": answered(), "cat": answered(loss=UNSTABLE_LOSS), "dan": answered()}.items():
        (submissions / student).mkdir(parents=True)
        nbformat.write(nb, submissions / student / f"{LESSON}.ipynb")
    killed, clean = tmp_path / "killed", tmp_path / "clean"

    run = grade(submissions, killed)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list((killed / "results").glob("*/*.json")):
        time.sleep(0.2)
    assert list((killed / "results").glob("*/*.json")), run.communicate()[0]
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    partial = len(list((killed / "results").glob("*/*.json")))
    assert partial < 4, "the run finished before it could be killed: the test proves nothing"

    rerun = grade(submissions, killed)
    log = rerun.communicate(timeout=300)[0]
    assert rerun.returncode == 0, log
    assert f"{partial} already graded" in log

    clean.mkdir()
    shutil.copy(killed / ".secret", clean / ".secret")        # the same secret seeds, so the same hidden inputs
    once = grade(submissions, clean)
    assert once.communicate(timeout=300)[0] and once.returncode == 0
    assert (killed / "grades.csv").read_text() == (clean / "grades.csv").read_text()
    rows = (clean / "grades.csv").read_text().strip().splitlines()
    assert len(rows) == 5 and not list(killed.rglob("*.tmp"))

    again = grade(submissions, killed)
    assert "0 to grade" in again.communicate(timeout=120)[0]
