"""Lessons are text: each ``solutions/NN_name.py`` (jupytext percent) is the one source of its lesson.

The text gives the committed nbgrader source notebook cell for cell; ``release --check`` names a generated notebook
that the text no longer gives; ruff lints the code cells; and the release lint refuses a cell whose header lost its
nbgrader metadata, saying where and what to write.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from grader.course import lesson_paths, lesson_sources, lesson_text, read_lesson_source, read_lesson_text
from grader.release import convert_notebook, lint_source, refresh_setup_cells, release
from nbtools import ROOT

SOLUTIONS = ROOT / "solutions"
TEXTS = lesson_sources(SOLUTIONS)
ids = lambda paths: [p.stem for p in paths]
RUFF = Path(sys.executable).with_name("ruff")
LESSON = "02_bradley_terry_and_dpo_loss"


def cell_fields(cell) -> tuple:
    return cell.cell_type, cell.source, dict(cell.metadata), cell.get("id")


def test_every_lesson_has_its_text_and_its_notebook():
    assert len(TEXTS) >= 11, f"expected the 11 lesson texts solutions/NN_*.py, found {len(TEXTS)}"
    assert ids(TEXTS) == ids(lesson_paths(SOLUTIONS)), "each solutions/NN_*.py builds one solutions/NN_*.ipynb"


@pytest.mark.parametrize("path", TEXTS, ids=ids(TEXTS))
def test_the_text_gives_the_source_notebook_cell_for_cell(path):
    built = read_lesson_source(path)
    committed = nbformat.read(path.with_suffix(".ipynb"), as_version=4)
    assert len(built.cells) == len(committed.cells), (
        f"{path.name} gives {len(built.cells)} cells, {path.with_suffix('.ipynb').name} has {len(committed.cells)}: "
        "run `python -m grader release`")
    for i, (new, old) in enumerate(zip(built.cells, committed.cells)):
        assert cell_fields(new) == cell_fields(old), f"{path.name} cell {i} ({old.get('id')}) differs from the notebook"
    assert built.metadata == committed.metadata and built.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("path", TEXTS, ids=ids(TEXTS))
def test_the_text_is_what_its_notebook_converts_to(path, tmp_path):
    """Notebook → text → notebook loses nothing, and the committed text is the canonical one, so that a
    conversion or a setup-cell refresh rewrites no other line."""
    text = path.read_text(encoding="utf-8")
    assert lesson_text(read_lesson_source(path)) == text
    copy = tmp_path / path.with_suffix(".ipynb").name
    shutil.copy(path.with_suffix(".ipynb"), copy)
    assert convert_notebook(copy).read_text(encoding="utf-8") == text


def test_a_demo_cell_names_its_id_and_a_graded_cell_takes_its_grade_id():
    text = (SOLUTIONS / f"{LESSON}.py").read_text(encoding="utf-8")
    assert '\n# %% id="demo-01"\n' in text
    assert re.search(r'^# %% nbgrader=\{"grade": true, "grade_id": "sanity_1_4_6", ', text, re.M)
    assert '\n# %% check="dpo_loss"\n' in text                      # made from the record, with its id
    nb = read_lesson_source(SOLUTIONS / f"{LESSON}.py")
    assert {c.id for c in nb.cells} >= {"demo-01", "check_dpo_loss", "dpo_loss", "setup", "intro"}


def test_magics_are_commented_out_in_the_text_and_come_back():
    nb = new_notebook(cells=[new_markdown_cell("# t"), new_code_cell("%timeit sum(range(9))\n!ls\nx = 1")],
                      metadata={"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}})
    nb.cells[0]["id"], nb.cells[1]["id"] = "prose", "demo"
    text = lesson_text(nb)
    assert "\n# %timeit sum(range(9))\n# !ls\nx = 1\n" in text      # ruff reads a comment, the kernel a magic
    assert read_lesson_text(text)[0].cells[1].source == nb.cells[1].source


def copy_tree(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "solutions").mkdir()
    for path in TEXTS:
        shutil.copy(path, tmp_path / "solutions" / path.name)
        shutil.copy(path.with_suffix(".ipynb"), tmp_path / "solutions" / path.with_suffix(".ipynb").name)
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks")
    return tmp_path / "solutions", tmp_path / "notebooks"


@pytest.mark.slow  # about 15 s: releases every lesson; make test runs it
def test_release_check_names_each_notebook_a_one_character_edit_makes_stale(tmp_path, capsys):
    solutions, notebooks = copy_tree(tmp_path)
    assert release(solutions, notebooks, check=True) == 0, capsys.readouterr().out
    capsys.readouterr()
    text = solutions / f"{LESSON}.py"
    source = text.read_text(encoding="utf-8")
    assert "Only the *difference* of the rewards enters." in source
    text.write_text(source.replace("Only the *difference*", "Only the *differense*"), encoding="utf-8")
    assert release(solutions, notebooks, check=True) == 1
    out = capsys.readouterr().out
    stale = [line for line in out.splitlines() if "stale" in line]
    assert stale == [f"  - solutions/{LESSON}.ipynb: stale (differs from the lesson text {LESSON}.py)",
                     f"  - notebooks/{LESSON}.ipynb: stale (differs from a fresh release of the lesson text {LESSON}.py)"], out
    assert "run `python -m grader release`" in out


def test_release_refuses_a_notebook_without_its_text(tmp_path, capsys):
    solutions, notebooks = copy_tree(tmp_path)
    (solutions / f"{LESSON}.py").unlink()
    assert release(solutions, notebooks) == 1
    out = capsys.readouterr().out
    assert f"solutions/{LESSON}.ipynb: no lesson text {LESSON}.py gives it; convert it" in out
    assert (solutions / f"{LESSON}.ipynb").exists(), "release must not delete what may be the only copy of a lesson"


def without_header(text: str, grade_id: str) -> tuple[str, int]:
    """``text`` with the nbgrader metadata of the cell ``grade_id`` removed from its header, and that header's line."""
    lines = text.splitlines(keepends=True)
    n = next(i for i, line in enumerate(lines) if line.startswith("# %% nbgrader=") and f'"grade_id": "{grade_id}"' in line)
    lines[n] = "# %%\n"
    return "".join(lines), n + 1


@pytest.mark.parametrize("lesson, grade_id, says", [
    # lesson 10's check cells are written out in full (they skip for other variants); lesson 02's are record-made
    ("10_mock_interview", "check_ipo_loss", "holds '### BEGIN HIDDEN TESTS' but its header does not make it a check cell"),
    (LESSON, "dpo_loss", "holds '### BEGIN SOLUTION' but its header does not make it an exercise"),
])
def test_the_lint_refuses_a_graded_cell_whose_header_lost_its_nbgrader_metadata(tmp_path, capsys, lesson, grade_id, says):
    text, line = without_header((SOLUTIONS / f"{lesson}.py").read_text(encoding="utf-8"), grade_id)
    broken = tmp_path / "solutions" / f"{lesson}.py"
    broken.parent.mkdir()
    broken.write_text(text, encoding="utf-8")
    problems = lint_source(broken)
    where = [p for p in problems if f"(line {line})" in p]
    assert any("has neither nbgrader metadata nor an id" in p and "nbgrader={" in p for p in where), problems
    assert any(says in p for p in where), problems
    assert release(broken.parent, tmp_path / "notebooks") == 1
    assert f"{lesson}.py cell" in capsys.readouterr().out and not (tmp_path / "notebooks").exists()


def test_setup_cells_are_rewritten_in_the_text(tmp_path, capsys):
    solutions, _ = copy_tree(tmp_path)
    path = solutions / f"{LESSON}.py"
    good = path.read_text(encoding="utf-8")
    path.write_text(good.replace("\nSEED = 2\n", "\nSEED = 7\n"), encoding="utf-8")
    assert any("setup cell differs" in p for p in lint_source(path))
    assert refresh_setup_cells(solutions, check=True) == 1 and path.name in capsys.readouterr().out
    assert refresh_setup_cells(solutions) == 0
    assert path.read_text(encoding="utf-8") == good


def ruff(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    if not RUFF.exists():
        pytest.skip(f"ruff is not installed next to {sys.executable} (pip install -e '.[dev]')")
    return subprocess.run([str(RUFF), *args], cwd=ROOT, input=stdin, capture_output=True, text=True, timeout=120)


def test_make_lint_reads_every_lesson_text_and_no_generated_notebook():
    files = {Path(line).resolve() for line in ruff("check", "--show-files", ".").stdout.splitlines() if line.strip()}
    assert set(TEXTS) <= files, f"ruff does not read {sorted(p.name for p in set(TEXTS) - files)}"
    generated = sorted(p.name for p in files if p.suffix == ".ipynb")
    assert generated == [], f"ruff reads generated notebooks {generated}: they are built from the texts"


def test_ruff_passes_on_the_lesson_texts():
    done = ruff("check", "--no-cache", *[str(p.relative_to(ROOT)) for p in TEXTS])
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_finds_a_mistake_in_a_lesson_code_cell():
    text = (SOLUTIONS / f"{LESSON}.py").read_text(encoding="utf-8")
    broken = text.replace('\n# %% id="demo-01"\n', '\n# %% id="demo-01"\nimport json\n', 1)
    done = ruff("check", "--no-cache", "--force-exclude", "--stdin-filename", f"solutions/{LESSON}.py", "-", stdin=broken)
    assert done.returncode == 1 and "F401" in done.stdout and "json" in done.stdout, done.stdout + done.stderr


def test_the_lint_names_a_header_whose_metadata_is_not_json():
    text = (SOLUTIONS / f"{LESSON}.py").read_text(encoding="utf-8")
    broken = text.replace('"grade_id": "sanity_1_4_6", "locked": true', '"grade_id": "sanity_1_4_6", "locked": True', 1)
    assert broken != text
    problems = read_lesson_text(broken, f"{LESSON}.py")[1]
    assert any("jupytext cannot read the metadata of its header" in p and "sanity_1_4_6" in p for p in problems), problems


# ---- check cells made from the exercise records -------------------------------------------------------------------

def _check_cells(nb):
    return {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells
            if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade", False)}


def test_a_check_directive_is_filled_from_the_record(monkeypatch):
    """Points, the visible check and the hidden seeds come from the record: change the record, the cell follows."""
    from grader.course import read_lesson_text
    from rlhf_core.checks import EXERCISES

    text = (SOLUTIONS / "02_bradley_terry_and_dpo_loss.py").read_text()
    assert '# %% check="dpo_loss"' in text and "check_dpo_loss(dpo_loss, seed=" not in text   # written once, in the record
    cell = _check_cells(read_lesson_text(text)[0])["check_dpo_loss"]
    record = EXERCISES["dpo_loss"]
    assert cell.metadata["nbgrader"]["points"] == record.points and cell.id == "check_dpo_loss"
    for seed in record.hidden_seeds:
        assert f"check_dpo_loss(dpo_loss, seed={seed}, quiet=True)" in cell.source
    monkeypatch.setattr(record, "points", record.points + 4)
    monkeypatch.setattr(record, "hidden_seeds", (7,))
    cell = _check_cells(read_lesson_text(text)[0])["check_dpo_loss"]
    assert cell.metadata["nbgrader"]["points"] == record.points
    assert "seed=7, quiet=True" in cell.source and "seed=101" not in cell.source


def test_every_standard_check_cell_is_written_as_a_directive():
    """A check cell that its record would make is not written out a second time in a lesson's text; only lesson 10's
    (which skip for the drill's other variants) differ from their records' cells."""
    from grader.course import check_cell, lesson_sources, read_lesson_text
    from rlhf_core.checks import EXERCISES

    for path in lesson_sources(SOLUTIONS):
        text = path.read_text()
        for grade_id, cell in _check_cells(read_lesson_text(text, path.name)[0]).items():
            name = grade_id.removeprefix("check_")
            if name not in EXERCISES or f'# %% check="{name}"' in text:
                continue                       # a sanity check's cell, or one made from its record
            made = "\n".join(check_cell(name)[1].splitlines())
            assert cell.source != made, f"{path.name}: {grade_id} is written out in full, but its record makes it: " \
                                        f'write the cell as `# %% check="{name}"`'
            assert path.name.startswith("10_"), f"{path.name}: {grade_id} differs from the cell its record makes"


@pytest.mark.parametrize("header, body, says", [
    ('check="no_such_exercise"', "", "names no registered exercise"),
    ('check="dpo_loss"', "check_dpo_loss(dpo_loss)\n", "its body must be empty"),
])
def test_a_wrong_check_directive_is_refused_in_a_sentence(header, body, says):
    from grader.course import read_lesson_text

    text = ('# %% [markdown] nbgrader={"grade": false, "grade_id": "intro", "locked": true, "schema_version": 3, '
            f'"solution": false}}\n# # A lesson\n\n# %% {header}\n{body}')
    problems = read_lesson_text(text, "99_x.py")[1]
    assert any(says in p and p.startswith("99_x.py cell 1") for p in problems), problems
