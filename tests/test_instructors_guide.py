"""docs/instructors.md works: a test follows the instructor's week, block by block, on a small class.

Every ``<!-- week: run -->`` block of the guide is run in order, each line in a fresh temporary folder (the course
secret kept there too, through ``DPO_GRADER_SECRET_FILE``). The class is a Canvas download of lesson 02: Ada's correct
notebook, Grace's untouched stub saved by Colab as "Copy of …" and handed in late, and Alan's two uploads (a stub,
then a correct one). Before the guide's last section Grace hands in a correct notebook, as a new download would
bring it. Then the test checks what each step promises: one secret, each student's variant, the layout, the grades,
feedback pages, the class report, the LMS CSV and the gradebook, and a re-run that grades only Grace's new notebook.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nbtools import ROOT

GUIDE = ROOT / "docs" / "instructors.md"
STEP = re.compile(r"<!-- week: run -->\n```bash\n(.*?)```", re.S)
LESSON = "02_bradley_terry_and_dpo_loss"
SOLVED, STUB = ROOT / "solutions" / f"{LESSON}.ipynb", ROOT / "notebooks" / f"{LESSON}.ipynb"


def sections() -> list[tuple[str, list[str]]]:
    """The guide's ``## sections`` in order, each with the command lines of its run blocks."""
    text = GUIDE.read_text(encoding="utf-8")
    parts = re.split(r"\n## ", text)[1:]
    found = []
    for part in parts:
        title = part.splitlines()[0]
        lines = [line.strip() for block in STEP.findall(part) for line in block.splitlines()]
        found.append((title, [line for line in lines if line and not line.startswith("#")]))
    return found


def run_line(line: str, where: Path, env: dict) -> str:
    command = line.replace("python ", f"{sys.executable} ", 1) if line.startswith("python ") else line
    done = subprocess.run(command, shell=True, cwd=where, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"`{line}` failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


def test_the_guide_has_the_week_in_order():
    titles = [title for title, lines in sections() if lines]
    assert titles == ["Once per course: the course secret", "Monday: hand the lessons out", "Friday: collect the hand-ins",
                      "Grade", "Late hand-ins and resubmissions"]
    text = GUIDE.read_text(encoding="utf-8")
    assert "docs/instructors.md" in (ROOT / "README.md").read_text(encoding="utf-8")   # linked from the README
    for name in ("grades.csv", "feedback/", "report.html", "lms.csv", "gradebook.db", "similarity.html"):
        assert name in text


@pytest.mark.sandbox
def test_an_instructor_follows_the_week_on_a_small_class(tmp_path):
    inbox = tmp_path / "INBOX"
    inbox.mkdir()
    shutil.copy(SOLVED, inbox / f"lovelaceada_1001_5001_{LESSON}.ipynb")
    shutil.copy(STUB, inbox / f"hoppergrace_LATE_1002_5002_Copy of {LESSON}.ipynb")
    shutil.copy(STUB, inbox / f"turingalan_1003_5003_{LESSON}-1.ipynb")
    shutil.copy(SOLVED, inbox / f"turingalan_1003_5003_{LESSON}-2.ipynb")
    (inbox / "readme.txt").write_text("not a notebook")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DPO_GRADER_SECRET_FILE": str(tmp_path / "secret" / "course"),
           "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
    said: dict[str, str] = {}
    for title, lines in sections():
        if title.startswith("Late hand-ins"):   # Grace hands in again: the next download holds her new notebook
            shutil.copy(SOLVED, inbox / f"hoppergrace_LATE_1002_5002_Copy of {LESSON}.ipynb")
        said[title] = "".join(run_line(line, tmp_path, env) for line in lines)

    assert (tmp_path / "secret" / "course").exists() and (tmp_path / "course-secret.txt").read_text().strip()
    variants = said["Monday: hand the lessons out"]
    for student in ("lovelaceada_1001", "hoppergrace_1002", "turingalan_1003"):
        assert re.search(rf"^{student},10_mock_interview,(dpo|ipo|cdpo|simpo|orpo)$", variants, re.M), variants
        assert (tmp_path / "SUBMISSIONS" / student / f"{LESSON}.ipynb").exists()
    assert "readme.txt" in said["Friday: collect the hand-ins"]          # what collect left out, and why

    out = tmp_path / "OUT"
    rows = {row["student"]: row for row in csv.DictReader(open(out / "grades.csv", newline=""))}
    assert {s: (float(r["score"]), float(r["max_score"])) for s, r in rows.items()} == {
        "lovelaceada_1001": (5.0, 5.0), "hoppergrace_1002": (5.0, 5.0), "turingalan_1003": (5.0, 5.0)}
    first_run = said["Grade"]
    assert re.search(r"3 to grade", first_run), first_run
    assert "hoppergrace_1002" in first_run and "not implemented" in first_run.lower()   # Grace's stub, graded 0 first
    resubmitted = said["Late hand-ins and resubmissions"]
    assert re.search(r"1 to grade", resubmitted) and "changed since it was graded" in resubmitted, resubmitted
    for student in rows:
        assert (out / "feedback" / student / f"{LESSON}.html").exists()
    for name in ("report.html", "mistakes.csv", "gradebook.db", "lms.csv", "similarity/similarity.html"):
        assert (out / name).exists(), name
    lms = {row["student"]: row for row in csv.DictReader(open(out / "lms.csv", newline=""))}
    assert lms["hoppergrace_1002"][LESSON] in ("5", "5.0") and lms["hoppergrace_1002"]["lms_id"] == "1002"
