"""A submission's cells found again when their nbgrader metadata is gone (issue 25; :mod:`grader.cell_match`).

Unit tests of each matching rule on lesson 02 (the released notebook, answered, with its metadata, cell ids or
both stripped, Colab's format, duplicated and merged cells), of the composed notebook, and of the result's words;
then one autograde run (the ``notebook``/``sandbox`` tier) that grades several students at once: a correct lesson
02 stripped of its metadata earns full marks and says how its cells were found, a stripped stub still says "not
implemented", and a notebook whose exercise cell cannot be found says so instead of a silent 0.
"""

from __future__ import annotations

import copy
import json
import time
import uuid

import nbformat
import pytest

from grader.cell_match import NOT_FOUND_KIND, defined_names, match_cells, missing_sentence, normalised, release_text
from grader.compose import compose, stub_of
from grader.course import load_lessons
from grader.judge import FAILURE_KINDS
from grader.result import CellVerdict
from grading_helpers import (
    FULL,
    LESSON,
    RIGHT_LOSS,
    RIGHT_REWARD,
    UNSTABLE_LOSS,
    answered,
    cell_by_id,
    read_grades,
    released,
    write_submissions,
)


@pytest.fixture(scope="module")
def lesson():
    return load_lessons()[LESSON]


def stripped(nb, ids: bool = False, new_ids: bool = False):
    """``nb`` with every cell's nbgrader metadata removed; ``ids``: the cell ids too (nbformat 4.4); ``new_ids``:
    fresh random ids instead (cells re-created by copy-paste in JupyterLab)."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        cell.metadata.pop("nbgrader", None)
        if ids:
            cell.pop("id", None)
        elif new_ids:
            cell.id = uuid.uuid4().hex[:8]
    if ids:
        nb.nbformat_minor = 4
    return nb


def colab(nb):
    """``nb`` as Colab saves it: format 4.0, no cell ids (Colab keeps its own in the cell's metadata), no nbgrader
    metadata, every source a list of lines, Colab's notebook metadata."""
    data = json.loads(nbformat.writes(nb))
    data["nbformat_minor"] = 0
    data["metadata"] = {"colab": {"provenance": [], "name": f"{LESSON}.ipynb"}, "kernelspec": {"name": "python3", "display_name": "Python 3"},
                        "language_info": {"name": "python"}}
    for cell in data["cells"]:
        cell.pop("id", None)
        cell["metadata"] = {"id": uuid.uuid4().hex[:12]}
        text = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        cell["source"] = text.splitlines(keepends=True)
    return nbformat.reads(json.dumps(data), as_version=4)


def index_of(nb, grade_id):
    return next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def found(lesson, nb):
    return match_cells(lesson.source, nb).exercises


def composed_source(lesson, nb, grade_id):
    """The code that stands in the exercise's place in the graded notebook."""
    out, _ = compose(lesson.source, nb, lesson.spec, {})
    return next(c.source for c in out.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def learner_cells(lesson, nb):
    out, _ = compose(lesson.source, nb, lesson.spec, {})
    return [c.source for c in out.cells if "added by the learner" in c.metadata.get("tags", [])]


# -- reading a cell ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("code, names", [
    ("def dpo_loss(a, b):\n    return a - b", {"dpo_loss"}),
    ("import torch\nclass Policy:\n    def forward(self): pass\nBETA = 0.1", {"Policy", "BETA"}),
    ("try:\n    def f(): pass\nexcept ImportError:\n    g = 1", {"f", "g"}),
    ("def outer():\n    def dpo_loss(): pass\n    return dpo_loss", {"outer"}),            # nested: not top level
    ("%%time\ndef dpo_loss(x):\n    return x", {"dpo_loss"}),                             # a cell magic: line by line
    ("%load_ext autoreload\ndef dpo_loss(x):\n    return x", {"dpo_loss"}),                 # a line magic stripped
    ("%matplotlib inline\nif True:\n    dpo_loss = make()", {"dpo_loss"}),                # … and the rest still parsed
    ("loss = dpo_loss(a, b, c, d)\nprint(dpo_loss)", {"loss"}),                             # a use is no definition
    ("a, (b, *c) = 1, (2, 3)\nx: int = 3\ny: int", {"a", "b", "c", "x"}),
])
def test_defined_names_are_the_top_level_bindings(code, names):
    assert defined_names(code) == names


def test_release_text_is_what_nbgrader_releases(lesson):
    """A check cell's release text (hidden tests removed) and an exercise's (the stub) equal the released notebook's."""
    release = released()
    for grade_id in ("check_dpo_loss", "sanity_1_4_6", "dpo_loss", "setup"):
        source = lesson.source.cells[index_of(lesson.source, grade_id)].source
        assert normalised(release_text(source)) == normalised(cell_by_id(release, grade_id).source), grade_id
    assert "BEGIN HIDDEN" in lesson.source.cells[index_of(lesson.source, "check_dpo_loss")].source


# -- the rules -----------------------------------------------------------------------------------------------------

def test_metadata_decides_whatever_the_cell_holds(lesson):
    """A cell with the exercise's metadata is its cell even when another cell defines the function (as before)."""
    nb = answered(loss="x = 1\n")
    nb.cells.insert(index_of(nb, "dpo_loss"), nbformat.v4.new_code_cell(RIGHT_LOSS))
    got = found(lesson, nb)["dpo_loss"]
    assert (got.how, got.index) == ("metadata", index_of(nb, "dpo_loss"))
    assert composed_source(lesson, nb, "dpo_loss") == "x = 1\n"
    assert match_cells(lesson.source, nb).note() == ""


def test_a_metadata_copy_is_dropped_and_the_first_graded(lesson):
    """A cell copied in Jupyter keeps its metadata: the first is graded, the copy dropped (nbgrader's rule)."""
    nb = answered()
    copy_cell = copy.deepcopy(cell_by_id(nb, "dpo_loss"))
    copy_cell.source, copy_cell.id = UNSTABLE_LOSS, "copy-1"
    nb.cells.insert(index_of(nb, "dpo_loss") + 1, copy_cell)
    got = found(lesson, nb)["dpo_loss"]
    assert (got.how, got.others) == ("metadata", 1)
    assert composed_source(lesson, nb, "dpo_loss") == RIGHT_LOSS
    assert UNSTABLE_LOSS not in learner_cells(lesson, nb)


def test_an_unknown_grade_id_counts_as_no_metadata(lesson):
    """Metadata naming no cell of this lesson (another lesson's) does not hide the cell from the content rule."""
    nb = stripped(answered(), ids=True)
    nb.cells[index_of_source(nb, "def dpo_loss")].metadata["nbgrader"] = {"grade_id": "drill_dpo_loss", "solution": True}
    assert found(lesson, nb)["dpo_loss"].how == "content"
    assert composed_source(lesson, nb, "dpo_loss") == RIGHT_LOSS


def index_of_source(nb, text):
    return next(i for i, c in enumerate(nb.cells) if text in c.source)


def test_cell_ids_find_the_cells_when_the_metadata_is_gone(lesson):
    nb = stripped(answered())
    got = found(lesson, nb)
    assert {g: f.how for g, f in got.items()} == {"dpo_loss": "cell id", "implicit_reward": "cell id"}
    assert composed_source(lesson, nb, "dpo_loss") == RIGHT_LOSS
    assert learner_cells(lesson, nb) == []    # the prose, setup, check and demo cells are the lesson's, not added
    assert match_cells(lesson.source, nb).note() == ("2 exercise cells matched by cell id (dpo_loss, implicit_reward): "
                                                     "their nbgrader metadata was missing")


def test_the_id_rule_wins_over_content(lesson):
    """With ids kept, the cell with the exercise's id is its cell, as metadata would say, even if another defines it."""
    nb = stripped(answered(loss="y = 2\n"))
    nb.cells.insert(index_of_source(nb, "y = 2"), nbformat.v4.new_code_cell(RIGHT_LOSS))
    assert found(lesson, nb)["dpo_loss"].how == "cell id"
    assert composed_source(lesson, nb, "dpo_loss") == "y = 2\n"


@pytest.mark.parametrize("make", [
    lambda nb: stripped(nb, ids=True),
    lambda nb: stripped(nb, new_ids=True),
    colab,
], ids=["nbformat-4.4-no-ids", "copy-pasted-new-ids", "colab"])
def test_content_finds_the_exercise_cells(lesson, make):
    nb = make(answered())
    got = found(lesson, nb)
    assert {g: f.how for g, f in got.items()} == {"dpo_loss": "content", "implicit_reward": "content"}
    assert composed_source(lesson, nb, "dpo_loss") == RIGHT_LOSS
    assert composed_source(lesson, nb, "implicit_reward") == RIGHT_REWARD
    assert learner_cells(lesson, nb) == []    # each lesson cell recognised by its text, none run twice
    assert match_cells(lesson.source, nb).note() == ("2 exercise cells matched by content (dpo_loss, implicit_reward): "
                                                     "their nbgrader metadata was missing")


def test_an_exercise_cell_with_helpers_is_still_the_exercise_cell(lesson):
    loss = "import torch\n\ndef _margin(a, b, c, d):\n    return (a - c) - (b - d)\n\nEPS = 1e-9\n" + RIGHT_LOSS
    nb = stripped(answered(loss=loss), ids=True)
    assert found(lesson, nb)["dpo_loss"].how == "content"
    assert composed_source(lesson, nb, "dpo_loss") == loss


def test_a_helper_cell_of_the_learners_is_kept_before_the_exercise(lesson):
    """A cell that defines another function is the learner's own: kept, where it was, before the exercise cell."""
    nb = stripped(answered(loss=RIGHT_LOSS.replace("return -F.logsigmoid(h).mean()", "return my_helper(h)")), ids=True)
    helper = "import torch.nn.functional as F\ndef my_helper(h):\n    return -F.logsigmoid(h).mean()\n"
    nb.cells.insert(index_of_source(nb, "def dpo_loss"), nbformat.v4.new_code_cell(helper))
    assert found(lesson, nb)["dpo_loss"].index == index_of_source(nb, "def dpo_loss")
    out, probes = compose(lesson.source, nb, lesson.spec, {})
    sources = [c.source for c in out.cells]
    assert sources.index(helper) < sources.index(composed_source(lesson, nb, "dpo_loss")) < probes["check_dpo_loss"]


def test_of_several_cells_defining_it_the_last_before_its_check_is_graded(lesson):
    """The stub left in place and the answer typed in a new cell below it: the answer, what the check ran on."""
    nb = stripped(released(), ids=True)
    stub_at = index_of_source(nb, "def dpo_loss")
    nb.cells.insert(stub_at + 1, nbformat.v4.new_code_cell(RIGHT_LOSS))
    nb.cells.append(nbformat.v4.new_code_cell(UNSTABLE_LOSS))   # an experiment at the end: after the check cell
    got = found(lesson, nb)["dpo_loss"]
    assert (got.how, got.index, got.others, got.unsure) == ("content", stub_at + 1, 2, False)
    assert composed_source(lesson, nb, "dpo_loss") == RIGHT_LOSS
    assert learner_cells(lesson, nb)[0].count("NotImplementedError") == 1    # the stub kept, as the learner's cell
    assert ("more than one cell defines dpo_loss, with different code: graded the last one before its check cell, "
            "the one a Run All checks") in match_cells(lesson.source, nb).note()


def test_identical_copies_are_no_doubt(lesson):
    nb = stripped(answered(), ids=True)
    at = index_of_source(nb, "def dpo_loss")
    nb.cells.insert(at + 1, copy.deepcopy(nb.cells[at]))
    got = found(lesson, nb)["dpo_loss"]
    assert (got.how, got.others, got.unsure) == ("content", 0, False)
    assert "more than one cell" not in match_cells(lesson.source, nb).note()


def test_differing_cells_and_no_check_cell_to_order_them_is_unsure(lesson):
    """Two different definitions and the check cell deleted: graded the last one, and the row says it is unsure."""
    nb = stripped(answered(), ids=True)
    nb.cells = [c for c in nb.cells if "check_dpo_loss(dpo_loss)" not in c.source]
    second = index_of_source(nb, "def dpo_loss") + 1
    nb.cells.insert(second, nbformat.v4.new_code_cell(UNSTABLE_LOSS))
    got = found(lesson, nb)["dpo_loss"]
    assert (got.unsure, got.index) == (True, second)
    note = match_cells(lesson.source, nb).note()
    assert note.startswith("the exercise cell of dpo_loss could not be found with confidence: cells with different code "
                           "define dpo_loss and none comes before its check cell; graded the last one")
    assert "1 exercise cell matched by content (implicit_reward)" in note


def test_one_cell_with_both_answers_serves_both_exercises(lesson):
    """Both answers in one cell: it stands in the first exercise's place; the second's runs nothing, not its stub."""
    nb = stripped(answered(loss=RIGHT_LOSS + RIGHT_REWARD), ids=True)
    nb.cells = [c for c in nb.cells if not c.source.startswith(RIGHT_REWARD)]
    got = found(lesson, nb)
    assert (got["dpo_loss"].how, got["implicit_reward"].how, got["implicit_reward"].shared_with) == ("content", "shared", "dpo_loss")
    assert "NotImplementedError" not in composed_source(lesson, nb, "implicit_reward")
    assert "implicit_reward was found in the exercise cell of dpo_loss" in match_cells(lesson.source, nb).note()


def test_no_cell_defining_it_is_said_in_words_the_instructor_can_act_on(lesson):
    nb = stripped(answered(), ids=True)
    nb.cells = [c for c in nb.cells if "def dpo_loss" not in c.source]
    got = found(lesson, nb)["dpo_loss"]
    assert got.how == "missing"
    assert composed_source(lesson, nb, "dpo_loss") == stub_of(lesson.source.cells[index_of(lesson.source, "dpo_loss")].source)
    assert match_cells(lesson.source, nb).note().startswith(
        "the exercise cell of dpo_loss could not be found: no cell has its nbgrader metadata or defines dpo_loss; "
        "the notebook may have been re-made in another editor")


def test_a_missing_exercise_turns_not_implemented_into_not_found(lesson):
    nb = stripped(answered(), ids=True)
    nb.cells = [c for c in nb.cells if "def dpo_loss" not in c.source]
    matching = match_cells(lesson.source, nb)
    verdicts = [CellVerdict("check_dpo_loss", 0, 3, False, "✗ dpo_loss is not implemented yet", "not implemented"),
                CellVerdict("check_implicit_reward", 1, 1, True, "✓ ok"),
                CellVerdict("sanity_1_4_6", 0, 1, False, "✗ dpo_loss is not implemented yet", "not implemented")]
    explained = matching.explain(verdicts, lesson.spec)
    assert [v.kind for v in explained] == [NOT_FOUND_KIND, None, NOT_FOUND_KIND]
    assert explained[0].message == f"✗ {missing_sentence(matching.exercises['dpo_loss'])} (so the released stub ran in its place)"
    assert explained[1] == verdicts[1]
    assert NOT_FOUND_KIND in FAILURE_KINDS
    # a found exercise's "not implemented" (a stub handed in) stays what it is
    assert match_cells(lesson.source, stripped(released(), ids=True)).explain(verdicts, lesson.spec) == verdicts


def test_a_learners_cell_above_the_first_lesson_cell_runs_once(lesson):
    """(Before, it was run again after each of the lesson's demo cells.)"""
    nb = answered()
    nb.cells.insert(0, nbformat.v4.new_code_cell("print('my notes')"))
    assert learner_cells(lesson, nb) == ["print('my notes')"]


def test_a_notebook_with_its_metadata_composes_exactly_as_the_release_says(lesson):
    """Every lesson's released notebook: each exercise found by metadata, no note, no cell taken for the learner's."""
    for name, each in load_lessons().items():
        nb = nbformat.read(f"notebooks/{name}.ipynb", as_version=4)
        matching = match_cells(each.source, nb)
        assert {f.how for f in matching.exercises.values()} == {"metadata"}, name
        assert matching.note() == "", name
        assert None not in matching.source_of, name


# -- one autograde run ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    from grader.autograde import autograde
    from grader.sandbox import Limits

    root = tmp_path_factory.mktemp("cell-matching")
    submissions, out = root / "submissions", root / "out"
    no_loss = stripped(answered(), ids=True)
    no_loss.cells = [c for c in no_loss.cells if "def dpo_loss" not in c.source]
    typed_below = stripped(released(), ids=True)
    typed_below.cells.insert(index_of_source(typed_below, "def dpo_loss") + 1, nbformat.v4.new_code_cell(RIGHT_LOSS))
    typed_below.cells.insert(index_of_source(typed_below, "def implicit_reward") + 1, nbformat.v4.new_code_cell(RIGHT_REWARD))
    write_submissions(submissions, {
        "no_metadata": stripped(answered()),
        "no_metadata_no_ids": stripped(answered(), ids=True),
        "colab": colab(answered()),
        "stub_no_metadata": stripped(released(), ids=True),
        "answer_typed_below_the_stub": typed_below,
        "exercise_cell_gone": no_loss,
    })
    began = time.monotonic()
    code = autograde(submissions, out, jobs=2, limits=Limits(cell_timeout=60, notebook_timeout=300), gradebook=False,
                     report=False, log=lambda *a: None)
    print(f"\nautograde of 6 students: {time.monotonic() - began:.1f} s")
    assert code == 0
    rows = {student: rows[0] for student, rows in read_grades(out).items()}
    results = {student: json.loads((out / "results" / student / f"{LESSON}.json").read_text()) for student in rows}
    return rows, results



@pytest.mark.sandbox
@pytest.mark.notebook
@pytest.mark.parametrize("student, how", [("no_metadata", "cell id"), ("no_metadata_no_ids", "content"), ("colab", "content")])
def test_a_correct_notebook_without_its_metadata_earns_full_marks_and_says_how(graded, student, how):
    rows, _ = graded
    row = rows[student]
    assert (float(row["score"]), row["status"]) == (FULL, "graded"), row
    assert row["message"].startswith(f"2 exercise cells matched by {how} (dpo_loss, implicit_reward): "
                                     "their nbgrader metadata was missing; all 3 checks passed"), row


@pytest.mark.sandbox
@pytest.mark.notebook
def test_a_stub_without_its_metadata_still_says_not_implemented(graded):
    rows, results = graded
    assert float(rows["stub_no_metadata"]["score"]) == 0
    assert {c["kind"] for c in results["stub_no_metadata"]["cells"]} == {"not implemented"}
    assert "not implemented" in rows["stub_no_metadata"]["message"]


@pytest.mark.sandbox
@pytest.mark.notebook
def test_an_answer_typed_below_the_stub_is_graded(graded):
    rows, _ = graded
    row = rows["answer_typed_below_the_stub"]
    assert float(row["score"]) == FULL, row
    assert ("more than one cell defines dpo_loss and implicit_reward, with different code: graded the last one before each "
            "check cell") in row["message"]


@pytest.mark.sandbox
@pytest.mark.notebook
def test_an_exercise_cell_that_cannot_be_found_says_so(graded):
    rows, results = graded
    row, result = rows["exercise_cell_gone"], results["exercise_cell_gone"]
    assert row["status"] == "graded" and float(row["score"]) == 1   # implicit_reward's point, nothing for the loss
    assert row["message"].startswith("the exercise cell of dpo_loss could not be found: no cell has its nbgrader "
                                     "metadata or defines dpo_loss; the notebook may have been re-made in another editor")
    kinds = {c["grade_id"]: c["kind"] for c in result["cells"]}
    assert kinds == {"check_dpo_loss": NOT_FOUND_KIND, "check_implicit_reward": None, "sanity_1_4_6": NOT_FOUND_KIND}
    assert all("not implemented" not in c["message"] for c in result["cells"])
