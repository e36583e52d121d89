"""`python -m grader collect`: each shape hand-ins arrive in becomes SUBMISSIONS/<student>/<NN_name>.ipynb, and
autograde refuses a folder with nothing to grade (saying what it expected and suggesting collect).

The notebooks are tiny (collect copies bytes and never runs them); the lesson names are the course's own.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import nbformat
import pytest

from grader.autograde import autograde
from grader.collect import collect, layout_problem, lesson_of
from grader.course import load_lessons

LESSONS = load_lessons()
L02 = "02_bradley_terry_and_dpo_loss"
L04 = "04_sequence_logps"


def notebook(marker: str) -> bytes:
    """A small notebook whose one cell says ``marker`` (to tell which file was taken)."""
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(f"# {marker}"))
    return nbformat.writes(nb).encode()


def put(inbox: Path, rel: str, content: bytes | str = b"", mtime: float | None = None) -> Path:
    path = inbox / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def run(inbox: Path, subs: Path, fmt: str = "auto") -> tuple[int, list[str]]:
    said: list[str] = []
    return collect(inbox, subs, fmt=fmt, lessons=LESSONS, log=said.append), said


def tree(subs: Path) -> dict[str, str]:
    """``{"student/lesson.ipynb": marker}`` of what collect wrote."""
    return {p.relative_to(subs).as_posix(): nbformat.reads(p.read_text(), as_version=4).cells[0].source[2:]
            for p in sorted(subs.rglob("*.ipynb"))}


def test_a_canvas_download_is_sorted_by_student_with_late_said(tmp_path):
    inbox, subs = tmp_path / "inbox", tmp_path / "subs"
    put(inbox, f"smithbob_340934_208490284_{L02}.ipynb", notebook("bob 02"))
    put(inbox, f"smithbob_340934_208490285_{L04}.ipynb", notebook("bob 04"))
    put(inbox, f"wellslane_LATE_334244_394803489_{L02}.ipynb", notebook("lane 02"))
    code, said = run(inbox, subs)
    assert code == 0, said
    assert tree(subs) == {f"smithbob_340934/{L02}.ipynb": "bob 02", f"smithbob_340934/{L04}.ipynb": "bob 04",
                          f"wellslane_334244/{L02}.ipynb": "lane 02"}
    assert any("wellslane_334244" in line and "LATE" in line for line in said), said
    assert any(line.startswith("collected 3 notebooks of 2 students") for line in said), said
    assert (inbox / f"smithbob_340934_208490284_{L02}.ipynb").exists()        # copied, never moved


def test_a_canvas_resubmission_number_picks_the_latest(tmp_path):
    inbox, subs = tmp_path / "inbox", tmp_path / "subs"
    put(inbox, f"smithbob_340934_208490284_{L02}.ipynb", notebook("first"), mtime=2_000_000_000)
    put(inbox, f"smithbob_340934_208490284_{L02}-1.ipynb", notebook("second"), mtime=1_000_000_000)
    code, said = run(inbox, subs, "canvas")
    assert code == 0, said
    assert tree(subs) == {f"smithbob_340934/{L02}.ipynb": "second"}          # the number wins over an older mtime
    assert any("highest duplicate number" in line for line in said), said


@pytest.mark.parametrize("foldered", [True, False], ids=["folders", "flat"])
def test_a_moodle_download_flat_or_in_folders(tmp_path, foldered):
    inbox, subs = tmp_path / "inbox", tmp_path / "subs"
    sep = "/" if foldered else ""
    put(inbox, f"Ann Lee_12345_assignsubmission_file_{sep}{L02}.ipynb", notebook("ann"))
    put(inbox, f"José Núñez_777_assignsubmission_file_{sep}{L04}.ipynb", notebook("jose"))
    put(inbox, f"Ann Lee_12345_assignsubmission_file_{sep}notes.pdf", b"%PDF")
    code, said = run(inbox, subs, "moodle")
    assert code == 0, said
    assert tree(subs) == {f"Ann_Lee_12345/{L02}.ipynb": "ann", f"José_Núñez_777/{L04}.ipynb": "jose"}
    assert any("notes.pdf: not a notebook (.pdf)" in line for line in said), said


def test_colab_copies_browser_duplicates_and_nested_folders(tmp_path):
    inbox, subs = tmp_path / "inbox", tmp_path / "subs"
    put(inbox, f"alice/Copy of {L02}.ipynb", notebook("alice colab"))
    put(inbox, f"bob/{L02}.ipynb", notebook("bob 0"), mtime=1_700_000_300)
    put(inbox, f"bob/{L02} (1).ipynb", notebook("bob 1"), mtime=1_700_000_200)
    put(inbox, f"bob/{L02}(2).ipynb", notebook("bob 2"), mtime=1_700_000_100)
    put(inbox, f"carol/submission/{L04}.ipynb", notebook("carol nested"))
    put(inbox, f"dave/Copy of {L04} (3).ipynb", notebook("dave both"))
    code, said = run(inbox, subs, "folders")
    assert code == 0, said
    assert tree(subs) == {f"alice/{L02}.ipynb": "alice colab", f"bob/{L02}.ipynb": "bob 2",
                          f"carol/{L04}.ipynb": "carol nested", f"dave/{L04}.ipynb": "dave both"}
    duplicate = next(line for line in said if line.strip().startswith(f"bob {L02}"))
    assert f"took '{'bob/' + L02}(2).ipynb'" in duplicate and "(1).ipynb" in duplicate and f"'bob/{L02}.ipynb'" in duplicate
    assert any("found in submission/" in line for line in said), said


def test_equal_numbers_take_the_newest_file(tmp_path):
    inbox, subs = tmp_path / "inbox", tmp_path / "subs"
    put(inbox, f"erin/{L02}.ipynb", notebook("older"), mtime=time.time() - 3600)
    put(inbox, f"erin/Copy of {L02}.ipynb", notebook("newer"), mtime=time.time())
    code, said = run(inbox, subs)
    assert code == 0 and tree(subs) == {f"erin/{L02}.ipynb": "newer"}, said
    assert any("newest file" in line for line in said), said


def test_every_file_left_out_is_listed_with_its_reason(tmp_path):
    inbox, subs = tmp_path / "inbox", tmp_path / "subs"
    put(inbox, f"alice/{L02}.ipynb", notebook("alice"))
    put(inbox, "alice/helper.py", "x = 1\n")
    put(inbox, "alice/scratch_work.ipynb", notebook("scratch"))
    put(inbox, f"alice/.ipynb_checkpoints/{L02}-checkpoint.ipynb", notebook("checkpoint"))
    put(inbox, f"__MACOSX/alice/._{L02}.ipynb", b"\0")
    put(inbox, f"{L04}.ipynb", notebook("whose?"))
    put(inbox, "grades.xlsx", b"PK")
    code, said = run(inbox, subs)
    assert code == 0 and tree(subs) == {f"alice/{L02}.ipynb": "alice"}, said
    reasons = {line.strip().split(": ", 1)[0]: line.strip().split(": ", 1)[1] for line in said[said.index("ignored 6 files:") + 1:]
               if line.startswith("  ")}
    assert reasons["alice/helper.py"] == "not a notebook (.py)"
    assert "no lesson" in reasons["alice/scratch_work.ipynb"]
    assert "checkpoint" in reasons[f"alice/.ipynb_checkpoints/{L02}-checkpoint.ipynb"]
    assert "__MACOSX" in reasons[f"__MACOSX/alice/._{L02}.ipynb"]
    assert "cannot be told" in reasons[f"{L04}.ipynb"]
    assert reasons["grades.xlsx"] == "not a notebook (.xlsx)"


def test_nothing_collected_is_an_error_and_inbox_must_not_hold_submissions(tmp_path):
    inbox = tmp_path / "inbox"
    put(inbox, "readme.txt", "hello")
    code, said = run(inbox, tmp_path / "subs")
    assert code == 1 and any(line.startswith("error: nothing to grade") for line in said), said
    assert run(inbox, inbox / "subs")[0] == 2
    assert run(tmp_path / "absent", tmp_path / "subs")[0] == 2


def test_lesson_names_with_the_marks_tools_add():
    assert lesson_of(f"Copy of {L02}.ipynb", LESSONS)[:2] == (L02, 0)
    assert lesson_of(f"{L02} (12).ipynb", LESSONS)[:2] == (L02, 12)
    assert lesson_of(f"{L02}-2.ipynb", LESSONS)[:2] == (L02, 2)
    assert lesson_of("02_dpo_loss (1).ipynb", LESSONS)[:2] == (L02, 1)     # renamed, numbered: still lesson 02's
    assert lesson_of("untitled (1).ipynb", LESSONS)[0] is None


def test_the_collect_command_line(tmp_path):
    from grader.__main__ import main

    inbox, subs = tmp_path / "inbox", tmp_path / "subs"
    put(inbox, f"smithbob_340934_208490284_{L02}.ipynb", notebook("bob"))
    assert main(["collect", str(inbox), "--out", str(subs), "--format", "canvas"]) == 0
    assert tree(subs) == {f"smithbob_340934/{L02}.ipynb": "bob"}


# ---- autograde's side ------------------------------------------------------------------------------------------------

def test_autograde_refuses_a_flat_folder_and_suggests_collect(tmp_path):
    subs = tmp_path / "subs"
    put(subs, f"smithbob_340934_208490284_{L02}.ipynb", notebook("bob"))
    said: list[str] = []
    code = autograde(subs, tmp_path / "out", gradebook=False, report=False, log=said.append)
    assert code != 0, said
    message = "\n".join(said)
    assert "directly in it" in message and "<student>/<NN_name>.ipynb" in message and "grader collect" in message
    assert not (tmp_path / "out").exists()                                    # refused before anything was written


@pytest.mark.parametrize("shape", ["empty", "nested", "no notebooks", "moodle folders", "flat beside folders"])
def test_other_folders_that_would_not_be_graded_as_handed_in(tmp_path, shape):
    subs = tmp_path / "subs"
    subs.mkdir()
    if shape == "nested":
        put(subs, f"alice/submission/{L02}.ipynb", notebook("alice"))
    elif shape == "no notebooks":
        put(subs, "alice/answers.py", "x = 1\n")
    elif shape == "moodle folders":
        put(subs, f"Ann Lee_12345_assignsubmission_file_/Copy of {L02}.ipynb", notebook("ann"))
    elif shape == "flat beside folders":
        put(subs, f"alice/{L02}.ipynb", notebook("alice"))
        put(subs, f"smithbob_340934_208490284_{L02}.ipynb", notebook("bob"))
    problem = layout_problem(subs)
    assert problem and "grader collect" in problem
    assert {"empty": "no student folder", "nested": "deeper than a student's folder", "no notebooks": "hold no notebook",
            "moodle folders": "a Moodle download's", "flat beside folders": "would not be graded"}[shape] in problem


def test_the_documented_layout_has_no_problem(tmp_path):
    put(tmp_path / "subs", f"alice/{L02}.ipynb", notebook("alice"))
    put(tmp_path / "subs", "notes.txt", "beside the students")
    assert layout_problem(tmp_path / "subs") is None
