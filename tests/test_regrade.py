"""A re-run of autograde grades what changed: a resubmission (a correct lesson 02 replacing a stub) is graded again and
said so, a notebook handed in after it was graded *missing* is graded, an unchanged one is not, a notebook that left
SUBMISSIONS keeps its grade (and is listed), an earlier version's result without a hash is judged by date, and
``--student``/``--notebook`` select what is considered.

One class is graded twice (four students, then two notebooks again); the other checks only plan."""

from __future__ import annotations

import csv
import json
import os
import time

import nbformat
import pytest

from grader.__main__ import _parser
from grader.autograde import autograde
from grader.course import load_lessons
from grader.plan import SecretSeeds, lesson_named, make_plan
from grader.secret import SECRET_ENV, resolve_secret
from grading_helpers import LESSON, answered, released

pytestmark = [pytest.mark.sandbox, pytest.mark.notebook]


def scores(out) -> dict[str, tuple[str, str]]:
    return {row["student"]: (row["score"], row["status"]) for row in csv.DictReader(open(out / "grades.csv", newline=""))}


@pytest.fixture(scope="module")
def regraded(tmp_path_factory):
    """ann hands in the stub, ben and cat the answer, dan nothing; then ann hands in the answer, dan hands in his,
    and cat's notebook is deleted. Both runs' logs and the folders."""
    base = tmp_path_factory.mktemp("regrade")
    old = os.environ.get(SECRET_ENV)
    os.environ[SECRET_ENV] = str(base / "course.secret")
    subs, out = base / "subs", base / "out"
    for student, nb in {"ann": released(), "ben": answered(), "cat": answered()}.items():
        (subs / student).mkdir(parents=True)
        nbformat.write(nb, subs / student / f"{LESSON}.ipynb")
    (subs / "dan").mkdir()
    (subs / "dan" / "notes.txt").write_text("I will hand it in tomorrow")
    try:
        first: list[str] = []
        assert autograde(subs, out, jobs=2, gradebook=False, report=False, log=first.append) == 0, first
        before = scores(out)
        nbformat.write(answered(), subs / "ann" / f"{LESSON}.ipynb")
        nbformat.write(answered(), subs / "dan" / f"{LESSON}.ipynb")
        (subs / "cat" / f"{LESSON}.ipynb").unlink()
        second: list[str] = []
        assert autograde(subs, out, jobs=2, gradebook=False, report=False, log=second.append) == 0, second
        yield base, subs, out, before, first, second
    finally:
        if old is None:
            os.environ.pop(SECRET_ENV, None)
        else:
            os.environ[SECRET_ENV] = old


def test_a_resubmission_is_graded_again_and_the_run_says_so(regraded):
    base, subs, out, before, first, second = regraded
    assert before["ann"] == ("0", "graded") and before["ben"] == ("5", "graded") and before["dan"][1] == "missing notebook"
    log = "\n".join(second)
    assert f"ann/{LESSON}: the submission changed since it was graded; grading again" in log
    assert f"dan/{LESSON}: handed in since it was graded as missing" in log
    assert "2 to grade (1 changed since graded, 1 handed in since graded missing), 2 already graded" in log, log
    after = scores(out)
    assert after["ann"] == ("5", "graded") and after["dan"] == ("5", "graded") and after["ben"] == before["ben"]
    result = json.loads((out / "results" / "ann" / f"{LESSON}.json").read_text())
    assert len(result["submission_sha256"]) == 64


def test_a_notebook_no_longer_handed_in_keeps_its_grade(regraded):
    base, subs, out, before, first, second = regraded
    assert scores(out)["cat"] == before["cat"] == ("5", "graded")
    assert any("kept the grades of 1 notebook(s)" in line and f"cat/{LESSON}" in line for line in second), second


def test_an_unchanged_class_plans_nothing_and_force_plans_everything_handed_in(regraded):
    base, subs, out, *_ = regraded
    lessons = {LESSON: load_lessons()[LESSON]}
    seeds = SecretSeeds(resolve_secret(out).key)
    assert make_plan(subs, out, lessons, seeds=seeds).todo == []
    forced = make_plan(subs, out, lessons, seeds=seeds, force=True)
    assert sorted(item.student for item in forced.todo) == ["ann", "ben", "dan"]   # cat's grade is never overwritten
    assert forced.kept == [f"cat/{LESSON}"]


def test_an_earlier_versions_result_without_a_hash_is_graded_again_only_when_its_file_is_newer(regraded):
    base, subs, out, *_ = regraded
    lessons = {LESSON: load_lessons()[LESSON]}
    seeds = SecretSeeds(resolve_secret(out).key)
    path = out / "results" / "ben" / f"{LESSON}.json"
    data = json.loads(path.read_text())
    data.pop("submission_sha256")
    path.write_text(json.dumps(data))
    submitted = subs / "ben" / f"{LESSON}.ipynb"
    os.utime(submitted, (time.time() - 3600, time.time() - 3600))             # handed in before it was graded
    assert make_plan(subs, out, lessons, seeds=seeds).todo == []
    os.utime(submitted, (time.time() + 60, time.time() + 60))                 # replaced after it was graded
    said: list[str] = []
    todo = make_plan(subs, out, lessons, seeds=seeds, log=said.append).todo
    assert [(item.student, item.why) for item in todo] == [("ben", "changed")] and "ben/" in said[0]


def test_student_and_notebook_select_what_is_considered(regraded):
    base, subs, out, *_ = regraded
    lessons = load_lessons()
    seeds = SecretSeeds(resolve_secret(out).key)
    plan = make_plan(subs, out, lessons, seeds=seeds, force=True, students=["ann", "dan"], notebooks=["2"])
    assert [item.student for item in plan.todo] == ["ann", "dan"] and plan.selected == 2
    assert make_plan(subs, out, lessons, seeds=seeds, force=True, notebooks=["04"]).todo == []
    assert lesson_named("02", lessons) == lesson_named(f"{LESSON}.ipynb", lessons) == LESSON
    with pytest.raises(ValueError, match="not a lesson"):
        lesson_named("99", lessons)
    said: list[str] = []
    assert autograde(subs, out, students=["zed"], gradebook=False, report=False, log=said.append) == 2
    assert "--student zed" in said[-1]
    args = _parser().parse_args(["autograde", "S", "--out", "O", "--student", "ann", "--student", "dan", "--notebook", "2"])
    assert args.student == ["ann", "dan"] and args.notebook == ["2"]
