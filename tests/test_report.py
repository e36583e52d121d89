"""``python -m grader report``: the class report on a synthetic class of 32 students × lessons 01, 02, 04.

The class's results are the grader's own judging (:func:`grader.judge.judge_cell`) of probe records
made here, in this process, from known functions — no kernel runs (the autograde tests grade real
notebooks end to end, and check the report of that run too). Each student is given, per lesson, a
*role*: the reference answer; one of the registry's known-wrong implementations (a named mistake,
planted several times so that the counts mean something); a wrong answer that matches no known
mistake (two students with the same wrong formula: one group); the untouched stub; an
exception; tampering; the library's own function; a withheld reference reached; a notebook that timed
out after its first check, one that could not be read, one not handed in. The tests assert that the
report's counts are exactly what the class was built with, that ``mistakes.csv`` names the right
students, that the page agrees with ``grades.csv`` as headless Chromium renders it, and that the
similarity section flags exactly the planted copies.

The notebooks handed to the similarity section are written from the same roles: the reference
solution for answered cells, the stub for stubs, and the planted cases of ``tests/test_similarity.py``
(alice's answer and carol's disguised copy of it, a paste of the library's source). The reference and
the stub are boilerplate to the similarity report, so only the planted cases can be flagged.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from grader.course import load_lessons
from grader.grading import summary_message
from grader.judge import judge_cell
from grader.report import class_report, group_key
from grader.result import NotebookResult, Status
from grader.results import read_results, result_path, write_csv, write_result
from rlhf_core.checks import EXERCISES, probe, probe_sanity
from test_similarity import ALICE, CAROL, _library_paste, _reference, _submission  # the planted similarity cases

L01, L02, L04 = "01_rlhf_objective", "02_bradley_terry_and_dpo_loss", "04_sequence_logps"
LESSONS = (L01, L02, L04)
STUDENTS = [f"s{i:02d}" for i in range(32)]


def mistake(exercise: str, mistake_id: str):
    """The registry's known-wrong implementation ``mistake_id`` of ``exercise``."""
    found = [m.fn for m in EXERCISES[exercise].mistakes if m.id == mistake_id]
    assert found, f"no mistake {mistake_id!r} in {exercise}"
    return found[0]


def stub(*args, **kwargs):
    raise NotImplementedError


def raises(*args, **kwargs):
    raise ValueError("something odd happened")


class WithheldReference(Exception):
    """What the grader's withheld library raises when a submission reaches for a reference."""


def withheld(*args, **kwargs):
    raise WithheldReference("rlhf_core.losses.dpo_loss is withheld while lesson 02 is graded")


def scaled(exercise: str, factor: float, shift: float = 0.0):
    """A wrong answer that matches no known mistake: the reference's result scaled and shifted."""
    reference = EXERCISES[exercise].reference
    return lambda *a, **k: reference(*a, **k) * factor + shift


TAMPERED, BORROWED = "tampered", "borrowed"     # roles that are records, not functions

# lesson → [(how many students, {exercise: what they hand in})], given to s00, s01, … in this order
ROLES = {
    L01: [
        (4, {"rlhf_objective": mistake("rlhf_objective", "obj_reverse_kl")}),
        (3, {"rlhf_objective": mistake("rlhf_objective", "obj_no_beta")}),
        (3, {"optimal_policy": mistake("optimal_policy", "op_no_ref")}),
        (2, {"optimal_policy": mistake("optimal_policy", "op_sign")}),
        (5, {"rlhf_objective": stub, "optimal_policy": stub}),
        (1, {"optimal_policy": raises}),
        (2, {"rlhf_objective": scaled("rlhf_objective", 1.7, 0.3)}),
        (1, {"rlhf_objective": scaled("rlhf_objective", -2.0)}),
    ],
    L02: [
        (5, {"dpo_loss": mistake("dpo_loss", "dpo_no_ref")}),
        (3, {"dpo_loss": mistake("dpo_loss", "dpo_swapped")}),
        (2, {"dpo_loss": mistake("dpo_loss", "dpo_sum")}),
        (2, {"implicit_reward": mistake("implicit_reward", "reward_no_beta")}),
        (4, {"dpo_loss": stub, "implicit_reward": stub}),
        (1, {"dpo_loss": TAMPERED}),
        (1, {"dpo_loss": BORROWED}),
        (1, {"dpo_loss": withheld}),
        (2, {"dpo_loss": scaled("dpo_loss", 1.7, 0.3)}),
    ],
    L04: [
        (5, {"get_logps": mistake("get_logps", "lp_no_shift")}),
        (3, {"get_logps": mistake("get_logps", "lp_no_mask")}),
        (4, {"get_logps": mistake("get_logps", "lp_unshifted_mask")}),
        (6, {"get_logps": stub}),
        (1, {"get_logps": raises}),
    ],
}
# statuses other than "graded", by lesson: (student, status) — taken from the end of the class
TIMED_OUT = {L02: "s29"}            # ran its first check, then the notebook timed out
INVALID = {L04: "s28"}              # the file could not be read: no cells, a status only
MISSING = {L01: "s27"}              # not handed in
COPIER, COPIED, PASTER = "s31", "s30", "s26"   # carol copies alice (02, 04); a library paste (02)


def assignment() -> dict[str, dict[str, dict]]:
    """lesson → student → {exercise: candidate}; students without a role hand in the reference."""
    table = {}
    for lesson, roles in ROLES.items():
        students = iter(STUDENTS)
        table[lesson] = {}
        for count, handed in roles:
            for _ in range(count):
                table[lesson][next(students)] = handed
    return table


def _record(cell, handed: dict) -> str:
    """The record the grader's probe cell would publish for ``cell`` given the student's functions."""
    record = {"grade_id": cell.grade_id, "tampering": [], "probes": []}
    for p in cell.probes:
        fn = handed.get(p.candidates[0], EXERCISES[p.candidates[0]].reference)
        if fn == TAMPERED:
            record["tampering"] = ["builtins.len was replaced"]
            fn = EXERCISES[p.candidates[0]].reference
        if fn == BORROWED:
            record["probes"].append({"borrowed": f"{p.candidates[0]}=rlhf_core.losses.{p.candidates[0]}"})
        elif p.kind == "exercise":
            record["probes"].append(probe(EXERCISES[p.name], fn, p.seed))
        else:
            record["probes"].append(probe_sanity(p.name, fn))
    return json.dumps(record)


def build(root: Path) -> tuple[Path, Path, dict]:
    """The class: ``OUT/results`` judged from probe records, ``grades.csv``, and the submitted notebooks."""
    lessons = load_lessons()
    out, subs = root / "out", root / "submissions"
    table = assignment()
    for lesson in LESSONS:
        spec = lessons[lesson].spec
        for student in STUDENTS:
            handed = table[lesson].get(student, {})
            top = lessons[lesson].max_score
            if MISSING.get(lesson) == student:
                result = NotebookResult(student, lesson, 0, top, Status.MISSING, "no notebook")
            elif INVALID.get(lesson) == student:
                result = NotebookResult(student, lesson, 0, top, Status.INVALID, "not valid JSON")
            else:
                stop = 1 if TIMED_OUT.get(lesson) == student else len(spec)
                verdicts = [judge_cell(c, [_record(c, handed)] if i < stop else None, {}, ran=i < stop)
                            for i, c in enumerate(spec)]
                status = Status.TIMEOUT if stop < len(spec) else Status.GRADED
                result = NotebookResult(student, lesson, sum(v.score for v in verdicts), top, status,
                                        summary_message(verdicts, status, "the notebook ran past 300 s"), verdicts,
                                        seconds=3.0 + STUDENTS.index(student) / 10)
            result.isolation = "synthetic"
            write_result(result_path(out, student, lesson), result)
            write_notebook(subs, student, lesson, handed)
    write_csv(out)
    return out, subs, table


def write_notebook(subs: Path, student: str, lesson: str, handed: dict) -> None:
    if MISSING.get(lesson) == student:
        return
    path = subs / student / f"{lesson}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    if INVALID.get(lesson) == student:
        path.write_text("{ not json")
        return
    cells = {gid: code for gid, code in _reference(lesson).items() if handed.get(gid) is not stub}
    if student == COPIED and lesson in ALICE:
        cells = ALICE[lesson]
    if student == COPIER and lesson in CAROL:
        cells = CAROL[lesson]
    if student == PASTER and lesson == L02:
        cells = _library_paste(lesson)
    path.write_text(json.dumps(_submission(lesson, cells)))


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("class")
    out, subs, table = build(root)
    lines = []
    assert class_report(out, submissions=subs, log=lines.append) == 0, lines
    with open(out / "mistakes.csv", newline="") as f:
        mistakes = list(csv.DictReader(f))
    with open(out / "grades.csv", newline="") as f:
        grades = list(csv.DictReader(f))
    return {"out": out, "table": table, "mistakes": mistakes, "grades": grades,
            "page": (out / "report.html").read_text(), "lines": lines}


def planted(table, lesson: str, exercise: str) -> Counter:
    """What the class was built with, for one exercise: mistake id or kind → students."""
    found = Counter()
    for handed in table[lesson].values():
        fn = handed.get(exercise)
        if fn is None:
            continue
        if fn is stub:
            found["not implemented"] += 1
        elif fn is raises:
            found["raised"] += 1
        elif fn is withheld:
            found["withheld"] += 1
        elif fn == TAMPERED:
            found["tampering"] += 1
        elif fn == BORROWED:
            found["borrowed"] += 1
        elif getattr(fn, "__name__", "") == "<lambda>":
            found["unnamed"] += 1
        else:
            ids = [m.id for m in EXERCISES[exercise].mistakes if m.fn is fn]
            found[f"{exercise}/{ids[0]}"] += 1
    return found


def rows_for(report, lesson: str, check: str) -> Counter:
    counted = Counter()
    for r in report["mistakes"]:
        if r["lesson"] == lesson and r["check"] == check:
            counted[r["mistake"] or r["kind"]] += int(r["students"])
    return counted


EXERCISE_CHECKS = [(L01, "check_rlhf_objective", "rlhf_objective"), (L01, "check_optimal_policy", "optimal_policy"),
                   (L02, "check_dpo_loss", "dpo_loss"), (L02, "check_implicit_reward", "implicit_reward"),
                   (L04, "check_get_logps", "get_logps")]


@pytest.mark.parametrize("lesson, check, exercise", EXERCISE_CHECKS, ids=[c for _, c, _ in EXERCISE_CHECKS])
def test_every_planted_mistake_is_counted_under_its_id(report, lesson, check, exercise):
    expected = planted(report["table"], lesson, exercise)
    if lesson in TIMED_OUT and check != "check_dpo_loss":     # the timed-out notebook never reached it
        expected["not run"] += 1
    assert rows_for(report, lesson, check) == expected


def test_students_are_named_only_in_the_csv(report):
    no_ref = [r for r in report["mistakes"] if r["mistake"] == "dpo_loss/dpo_no_ref"]
    assert len(no_ref) == 1 and no_ref[0]["names"].split(";") == STUDENTS[:5]
    assert no_ref[0]["share"] == f"{5 / 32:.3f}"      # every notebook of lesson 02 reached its first check
    page = report["page"]
    assert "dpo_loss/dpo_no_ref" in page and "drop log π_ref" in page
    for r in report["mistakes"]:
        for name in filter(None, r["names"].split(";")):
            if name not in (COPIER, COPIED, PASTER):      # the similarity section names its pairs
                assert f">{name}<" not in page and f"{name}/" not in page, name


def test_unnamed_answers_are_grouped_by_formula(report):
    rows = [r for r in report["mistakes"] if r["lesson"] == L01 and r["check"] == "check_rlhf_objective" and r["kind"] == "unnamed"]
    assert sorted(int(r["students"]) for r in rows) == [1, 2], rows
    assert all("none of the common mistakes" in r["description"] for r in rows)
    assert group_key("expected 0.69,\n  got  -1.5") == "expected 0.69, got -1.5"


def test_statuses_scores_and_times_agree_with_grades_csv(report):
    page = report["page"]
    for lesson in LESSONS:
        rows = [r for r in report["grades"] if r["notebook"] == lesson]
        block = page.split(f"data-lesson='{lesson}'")[1].split("<h3")[0]
        for status, n in Counter(r["status"] for r in rows).items():
            assert f"data-status='{status}'>{n}<" in block, (lesson, status, n)
        mean = sum(float(r["score"]) for r in rows) / len(rows)
        assert f"<b class='mean'>{mean:.2f}</b>" in block
        assert "data:image/png;base64," in block


def test_similarity_flags_exactly_the_planted_copies(report):
    with open(report["out"] / "similarity" / "similarity.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["score"]]      # the shown rows; notes have no score
    flagged = {(r["lesson"], frozenset((r["student_a"], r["student_b"])), r["kind"]) for r in rows}
    # lesson 02's exercises are too short to score (a "not scored" note): only library code is shown there
    assert flagged == {(L04, frozenset((COPIED, COPIER)), "similar cells"),
                       (L02, frozenset((PASTER, "rlhf_core/losses.py")), "similar to a library file")}, flagged
    assert "id='similarity'" in report["page"] and "<mark>" in report["page"]


def test_submission_text_is_escaped_and_the_page_is_self_contained(report):
    page = report["page"]
    assert "<script" not in page.lower(), "submission text reached the page unescaped"
    assert "&lt;script&gt;" in page                      # carol's comment, shown as text
    assert not re.search(r"(src|href)=['\"](?!data:|#)", page), "the page loads something from outside itself"


def test_a_folder_without_results_is_a_clear_error(tmp_path):
    lines = []
    assert class_report(tmp_path, log=lines.append) == 2
    assert "no results" in lines[0] and "autograde" in lines[0]


@pytest.mark.browser
def test_the_page_renders_in_chromium_and_its_numbers_match_grades_csv(report, tmp_path):
    from browser import browser_missing, chromium, save_artifact

    if browser_missing():
        pytest.skip(browser_missing())
    driver = chromium(tmp_path / "chromium-profile")
    try:
        driver.get((report["out"] / "report.html").as_uri())
        shown = driver.execute_script(
            "return Array.from(document.querySelectorAll('[data-lesson]')).map(l => [l.dataset.lesson,"
            " Object.fromEntries(Array.from(l.querySelectorAll('[data-status]')).map(s => [s.dataset.status, +s.textContent])),"
            " +l.querySelector('.mean').textContent, Array.from(l.querySelectorAll('img.hist')).map(i => i.naturalWidth)]);")
        checks = driver.execute_script(
            "return Array.from(document.querySelectorAll('h3')).filter(h => h.querySelector('.passed'))"
            ".map(h => [h.textContent.split(':')[0], +h.querySelector('.passed').textContent, +h.querySelector('.reached').textContent]);")
        save_artifact(driver, "class-report.png")
    finally:
        driver.quit()
    assert [lesson for lesson, *_ in shown] == list(LESSONS)
    for lesson, statuses, mean, widths in shown:
        rows = [r for r in report["grades"] if r["notebook"] == lesson]
        assert statuses == dict(Counter(r["status"] for r in rows)), lesson
        assert mean == pytest.approx(sum(float(r["score"]) for r in rows) / len(rows), abs=0.005), lesson
        assert widths and all(w > 200 for w in widths), f"{lesson}: the histogram did not load ({widths})"
    # the check ids of lessons 01, 02 and 04 are distinct: each heading's counts are one check's
    results = [(c.grade_id, c.passed) for r in read_results(report["out"]) for c in r.cells]
    assert len(checks) == 6
    for name, n_passed, n_reached in checks:
        assert (n_passed, n_reached) == (sum(p for g, p in results if g == name), sum(g == name for g, _ in results)), name
