"""Lesson 10 graded per student on a drill variant: derived from the course secret, the other variants' cells
left out, every variant worth the same, and the kernel running the student's variant; a notebook that declares
another variant than its student's is graded on the assigned one, with a warning in its row."""

from __future__ import annotations

import ast
import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import nbformat
import pytest

from grader.compose import compose
from grader.course import load_lessons
from grader.grading import declared_variant, variant_mismatch
from grader.plan import VARIANT_ORDER, SecretSeeds
from grader.secret import resolve_secret
from grader.spec import drill_variant_of
from rlhf_core.course.variants import VARIANTS

ROOT = Path(__file__).resolve().parents[1]
LESSON = "10_mock_interview"


@pytest.fixture(scope="module")
def lesson():
    return load_lessons()[LESSON]


def key(name: str) -> bytes:
    """A course secret's key (64 hex characters, as `grader secret init` makes them)."""
    return hashlib.sha256(name.encode()).hexdigest().encode()


def test_every_check_cell_of_lesson_10_knows_its_variant(lesson):
    tags = {c.grade_id: c.variant for c in lesson.spec}
    assert tags["check_dpo_loss"] == "dpo" and tags["check_toy_dpo_step"] == "dpo" and tags["six_sanity_checks"] == "dpo"
    for v in VARIANTS.values():
        assert tags[f"check_{v.exercise}"] == v.key
    assert tags["check_implicit_reward"] is None                 # everyone's
    assert lesson.variants == tuple(VARIANTS)
    assert all(not other.variants for name, other in load_lessons().items() if name != LESSON)


def test_a_cell_without_a_drill_check_belongs_to_every_variant():
    assert drill_variant_of("check_dpo_loss(dpo_loss)") is None
    assert drill_variant_of('drill.check("implicit_reward", check_implicit_reward, implicit_reward)') is None
    assert drill_variant_of('drill.check("simpo_loss", check_simpo_loss, simpo_loss)') == "simpo"


def test_every_variant_is_worth_the_same_and_grades_only_its_own_cells(lesson):
    scores = {key: lesson.for_variant(key).max_score for key in lesson.variants}
    assert len(set(scores.values())) == 1, scores
    ipo = [c.grade_id for c in lesson.for_variant("ipo").spec]
    assert ipo == ["check_ipo_loss", "check_implicit_reward"]
    with pytest.raises(ValueError, match="no drill variant"):
        lesson.for_variant("kto")


def test_the_variant_of_a_student_is_stable_secret_and_spread(lesson):
    seeds = SecretSeeds(key("a"))
    students = [f"student{i:03d}" for i in range(200)]
    drawn = [seeds.variant_for(s, lesson) for s in students]
    assert drawn == [SecretSeeds(key("a")).variant_for(s, lesson) for s in students]   # same key, same variants
    counts = Counter(drawn)
    assert set(counts) == set(VARIANTS) and min(counts.values()) >= 20, counts               # 40 each expected
    other = [SecretSeeds(key("b")).variant_for(s, lesson) for s in students]
    assert sum(a != b for a, b in zip(drawn, other)) > 100      # another course secret, other variants
    assert seeds.variant_for("x", load_lessons()["02_bradley_terry_and_dpo_loss"]) is None


class _Reordered:
    """A lesson whose variants are listed in another order."""

    def __init__(self, lesson, order):
        self.name, self.variants = lesson.name, tuple(order)


def test_the_variant_does_not_depend_on_the_order_the_course_lists_the_variants(lesson):
    seeds = SecretSeeds(key("a"))
    students = [f"student{i:03d}" for i in range(100)]
    as_listed = [seeds.variant_for(s, lesson) for s in students]
    for order in (tuple(sorted(lesson.variants)), tuple(reversed(lesson.variants))):
        assert [seeds.variant_for(s, _Reordered(lesson, order)) for s in students] == as_listed


def test_no_student_changed_variant_with_the_frozen_order(lesson):
    """The draw used to index the course's order of VARIANTS: the frozen order is that order, so every student keeps
    the variant an earlier version of the grader gave them (and OUT folders graded before keep theirs)."""
    assert VARIANT_ORDER == tuple(VARIANTS) == lesson.variants
    seeds = SecretSeeds(key("a"))
    for i in range(100):
        digest = hmac.new(key("a"), f"s{i}|{LESSON}|variant".encode(), hashlib.sha256).digest()
        before = tuple(VARIANTS)[int.from_bytes(digest[:4], "big") % len(VARIANTS)]    # the earlier version's draw
        assert seeds.variant_for(f"s{i}", lesson) == before


def _start_cell_sets(nb, value: str | None):
    cell = next(c for c in nb.cells if c.cell_type == "code" and "VARIANT = None" in c.source)
    cell.source = cell.source.replace("VARIANT = None", f"VARIANT = {value!r}", 1)
    return nb


def test_the_declared_variant_is_read_from_the_start_cell_without_running_it():
    released = nbformat.read(ROOT / "notebooks" / f"{LESSON}.ipynb", as_version=4)
    assert declared_variant(released) == (True, None)
    assert declared_variant(_start_cell_sets(released, "simpo")) == (True, "simpo")
    released.cells.insert(0, nbformat.v4.new_code_cell("%matplotlib inline\nVARIANT = 'ipo'"))
    released.cells.append(nbformat.v4.new_code_cell("VARIANT = 'orpo'  # the last one counts\n!ls"))
    assert declared_variant(released) == (True, "orpo")
    assert declared_variant(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("VARIANT = pick()")])) == (False, None)

    dpo = _start_cell_sets(nbformat.read(ROOT / "notebooks" / f"{LESSON}.ipynb", as_version=4), "dpo")
    assert variant_mismatch(dpo, "dpo") is None
    assert "VARIANT = 'dpo', not the assigned 'simpo'" in variant_mismatch(dpo, "simpo")
    untouched = nbformat.read(ROOT / "notebooks" / f"{LESSON}.ipynb", as_version=4)
    assert variant_mismatch(untouched, "dpo") is None                       # None: DPO on a first attempt
    assert "VARIANT = None (DPO on a first attempt), not the assigned 'ipo'" in variant_mismatch(untouched, "ipo")


def test_the_graded_notebook_runs_the_students_variant_and_holds_no_other_variants_hidden_tests(lesson):
    ipo = lesson.for_variant("ipo")
    submission = nbformat.read(ROOT / "notebooks" / f"{LESSON}.ipynb", as_version=4)
    graded, probes = compose(ipo.source, submission, ipo.spec, {}, "ipo")
    settings = re.search(r"__dpo_grader_setup\((.*)\)\n", graded.cells[0].source).group(1)   # the preamble's JSON
    assert json.loads(ast.literal_eval(settings))["environ"] == {"RLHF_DRILL_VARIANT": "ipo"}
    assert set(probes) == {"check_ipo_loss", "check_implicit_reward"}
    text = "\n".join(c.source for c in graded.cells)
    assert "seed=202" not in text and "check_dpo_loss(dpo_loss, seed=" not in text
    assert "belongs to another drill variant" in text


def test_the_variants_command_lists_each_students_variant(tmp_path, lesson):
    (tmp_path / "subs" / "ann").mkdir(parents=True)
    (tmp_path / "subs" / "bo").mkdir()
    secret = tmp_path / "course.secret"
    done = subprocess.run([sys.executable, "-m", "grader", "variants", str(tmp_path / "subs")], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, env={**os.environ, "DPO_GRADER_SECRET_FILE": str(secret)})
    assert done.returncode == 0, done.stderr
    assert "NEW COURSE SECRET" in done.stderr and secret.is_file()           # made, loudly, on first use
    seeds = SecretSeeds(secret.read_text().strip().encode())
    assert done.stdout.splitlines() == ["student,notebook,variant"] + [
        f"{s},{LESSON},{seeds.variant_for(s, lesson)}" for s in ("ann", "bo")]


def _students_on(seeds: SecretSeeds, lesson, wanted: list[str]) -> dict[str, str]:
    """A student name for each wanted variant (names tried in order)."""
    found: dict[str, str] = {}
    for i in range(1000):
        variant = seeds.variant_for(f"s{i}", lesson)
        if variant in wanted and variant not in found.values():
            found[f"s{i}"] = variant
        if len(found) == len(wanted):
            return found
    raise AssertionError(f"no student found for {wanted}")


def _answered(exercises: set[str]):
    """The released lesson 10 with the named exercise cells filled in from the solutions."""
    source = nbformat.read(ROOT / "solutions" / f"{LESSON}.ipynb", as_version=4)
    answers = {c.metadata["nbgrader"]["grade_id"]: re.sub(r"(?m)^[ \t]*### (BEGIN|END) SOLUTION\n", "", c.source)
               for c in source.cells if c.metadata.get("nbgrader", {}).get("solution")}
    nb = nbformat.read(ROOT / "notebooks" / f"{LESSON}.ipynb", as_version=4)
    for c in nb.cells:
        gid = c.metadata.get("nbgrader", {}).get("grade_id")
        if gid in exercises:
            c.source = answers[gid]
    return nb


@pytest.mark.sandbox
@pytest.mark.notebook
def test_autograde_grades_each_student_on_their_own_variant(tmp_path, lesson, monkeypatch):
    """Three students: DPO and SimPO, each answering their own exercises (full marks), and an IPO student who
    did the DPO drill instead and says so (`VARIANT = "dpo"`): only implicit_reward, the cell everyone has, earns
    points, and the row warns that the notebook declares another variant than the one graded."""
    from grader.autograde import autograde

    monkeypatch.setenv("DPO_GRADER_SECRET_FILE", str(tmp_path / "course.secret"))
    out, subs = tmp_path / "out", tmp_path / "subs"
    seeds = SecretSeeds(resolve_secret(None, log=lambda *a: None).key)
    students = _students_on(seeds, lesson, ["dpo", "simpo", "ipo"])
    exercises = {"dpo": {"dpo_loss", "implicit_reward", "toy_dpo_step"}, "simpo": {"simpo_loss", "implicit_reward"},
                 "ipo": {"dpo_loss", "implicit_reward", "toy_dpo_step"}}
    declares = {"dpo": None, "simpo": "simpo", "ipo": "dpo"}
    for student, variant in students.items():
        (subs / student).mkdir(parents=True)
        nbformat.write(_start_cell_sets(_answered(exercises[variant]), declares[variant]), subs / student / f"{LESSON}.ipynb")
    said = []
    assert autograde(subs, out, jobs=2, log=said.append) == 0
    results = {s: json.loads((out / "results" / s / f"{LESSON}.json").read_text()) for s in students}
    rows = {row.split()[0]: row for row in said if row.startswith("  ")}
    for student, variant in students.items():
        r = results[student]
        assert r["variant"] == variant and r["message"].startswith(f"drill variant {variant}")
        assert r["max_score"] == lesson.for_variant(variant).max_score
        graded = {c["grade_id"] for c in r["cells"]}
        assert graded == {c.grade_id for c in lesson.for_variant(variant).spec}
        expected = r["max_score"] if variant != "ipo" else 1.0
        assert r["score"] == expected, (variant, r["message"])
        warned = "warning: the notebook sets VARIANT = 'dpo', not the assigned 'ipo'"
        assert (warned in r["message"] and warned in " ".join(rows[student].split())) == (variant == "ipo"), r["message"]
