"""A failure of the grader's own code on one notebook is that notebook's `grader error`, in one line;
the other notebooks are graded all the same. (No sandbox needed: the kernels run plain.)"""

from __future__ import annotations

import pytest

import grader.grading
import grader.results
from grader.autograde import autograde
from grader.sandbox import Limits
from grading_helpers import FULL, LESSON, answered, read_grades, write_submissions

pytestmark = pytest.mark.notebook


def test_a_grader_crash_on_one_notebook_is_a_grader_error_and_the_others_are_graded(tmp_path, monkeypatch):
    broken = answered()
    broken.metadata["crash_the_composer"] = True
    write_submissions(tmp_path / "submissions", {"ann": answered(), "ben": answered(), "cat": broken})

    real_compose, real_feedback = grader.grading.compose, grader.results.feedback_html

    def compose(source_nb, submission_nb, *args):
        if submission_nb.metadata.get("crash_the_composer"):
            raise RuntimeError("the composer broke\nand said more on a second line")
        return real_compose(source_nb, submission_nb, *args)

    def feedback_html(result, nb):
        if result.student == "ben":
            raise KeyError("no such template")
        return real_feedback(result, nb)

    monkeypatch.setattr(grader.grading, "compose", compose)
    monkeypatch.setattr(grader.results, "feedback_html", feedback_html)
    out = tmp_path / "out"
    code = autograde(tmp_path / "submissions", out, jobs=2, limits=Limits(cell_timeout=60), sandbox=False,
                     gradebook=False, log=lambda *a: None)
    assert code == 0
    rows = {student: found[0] for student, found in read_grades(out).items()}
    assert set(rows) == {"ann", "ben", "cat"} and all(r["notebook"] == LESSON for r in rows.values())

    assert (rows["ann"]["status"], float(rows["ann"]["score"])) == ("graded", FULL)
    assert (out / "feedback" / "ann" / f"{LESSON}.html").exists()

    ben = rows["ben"]      # judged, then the feedback page failed: the points stand, the status says what went wrong
    assert (ben["status"], float(ben["score"])) == ("grader error", FULL), ben
    assert "the grader failed on this notebook (KeyError: 'no such template')" in ben["message"]
    assert "3 of 3 checks passed before that" in ben["message"]

    cat = rows["cat"]      # nothing ran
    assert (cat["status"], float(cat["score"])) == ("grader error", 0.0), cat
    assert "RuntimeError: the composer broke" in cat["message"]
    assert "\n" not in cat["message"] and "second line" not in cat["message"]
    assert "kernel died" not in cat["message"] + ben["message"]
