"""``python -m grader release [--check]``: build ``solutions/*.ipynb`` and ``notebooks/`` from the lesson texts.

A lesson's one source is its text, ``solutions/NN_name.py``: a jupytext percent script (``# %%`` code cells,
``# %% [markdown]`` prose cells, each cell's nbgrader metadata and id in its header; see :mod:`grader.course`),
which reads like a script, diffs like one, and ``ruff`` lints (``make lint``). Release builds two notebooks from it:

1. ``solutions/NN_name.ipynb``, the nbgrader *source* notebook (:func:`grader.course.read_lesson_source`). It is
   generated and committed, never edited by hand: nbgrader, nbval (``pytest --nbval-lax solutions/``), the
   notebook tests, the benches, JupyterLab and the grader (:func:`grader.course.load_lessons`) all read a notebook,
   and a committed one lets each of them run without jupytext and shows a release's effect in review. It is
   rebuilt only when its bytes change.
2. ``notebooks/NN_name.ipynb``, the student version: nbgrader's ``generate_assignment`` runs on the built source
   notebooks in a throw-away course directory (all lessons form one assignment, ``dpo``), so the student versions
   get exactly nbgrader's treatment: solutions replaced by ``raise NotImplementedError()``, hidden tests removed,
   outputs cleared, locked cells marked read-only with checksums.

Both are written with a fixed JSON layout, so the same texts always give the same bytes, and ``--check`` builds
both in a temporary directory and names, one line each, every generated notebook that differs (and
``grader/lessons.json``). A ``solutions/*.ipynb`` without its ``.py`` is refused, not deleted: it may be someone's
only copy of a lesson, which :func:`convert_notebook` turns into text.

Before releasing, every source is linted (:func:`lint_source`): its text (every cell has nbgrader metadata or an
id in its header; answers and hidden tests only in cells whose header makes them exercises and checks), then the
notebook it gives: no outputs or execution counts, unique grade ids, an answer between the solution markers of
every exercise cell, points on every check cell, no ``raises-exception`` tag, and the current setup cell (see
:mod:`grader.setup_cell`; ``python -m grader setup-cells`` rewrites it in the texts).

**Run All goes to the end of a released lesson.** Release adds the cell tag ``raises-exception``
(:data:`RUN_ALL_TAG`) to every check cell of the student version, and only there (the tag is added
here, after nbgrader, rather than kept in the sources). JupyterLab and nbclient with its default
settings (``allow_errors=False``) do not stop a run at a tagged cell that raises, so a check that fails
on an unfinished exercise shows its verdict and the lesson runs on; a cell that is not a check still
stops the run. The check cell still *fails*: its output is an error, which is what nbgrader's
Validate reads (it executes with ``allow_errors=True`` and ignores tags), and the course's grader
never sees the tag (it composes the graded notebook from ``solutions/`` and runs with
``allow_errors=True``). nbval reads the tag as "may raise"; the repository's ``conftest.py`` turns
that off for nbgrader check cells, so ``pytest --nbval-lax notebooks/`` still fails at each check
that fails. The sources stay untagged so that ``pytest --nbval-lax solutions/`` fails on a failing
check whatever the conftest, and nbgrader's checksums of locked cells do not cover tags, so adding
the tag after ``generate_assignment`` leaves them valid.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import nbformat

from .authoring import notebook_json
from .course import (
    ASSIGNMENT,
    COURSE_ID,
    LESSONS_JSON,
    NOTEBOOKS_DIR,
    SOLUTION_BEGIN,
    SOLUTION_END,
    SOLUTIONS_DIR,
    lesson_paths,
    lesson_sources,
    lesson_text,
    lessons_json_text,
    load_lessons,
    read_lesson_text,
    typical_seconds,
)
from .setup_cell import render_setup_cell

__all__ = ["RUN_ALL_TAG", "build_sources", "convert_notebook", "lint_source", "generate_release", "release",
           "refresh_setup_cells", "tag_check_cells", "untagged_check_cells"]

#: The cell tag that lets Run All (JupyterLab, nbclient) go past a check cell that fails.
RUN_ALL_TAG = "raises-exception"


def _is_check_cell(cell) -> bool:
    meta = cell.metadata.get("nbgrader", {})
    return cell.cell_type == "code" and bool(meta.get("grade")) and not meta.get("solution")


def tag_check_cells(nb):
    """Add :data:`RUN_ALL_TAG` to every check cell of ``nb`` (in place; returns ``nb``)."""
    for cell in nb.cells:
        if _is_check_cell(cell):
            tags = list(cell.metadata.get("tags", []))
            if RUN_ALL_TAG not in tags:
                cell.metadata["tags"] = tags + [RUN_ALL_TAG]
    return nb


def untagged_check_cells(nb) -> list[str]:
    """The grade ids of the check cells of a student notebook that lack :data:`RUN_ALL_TAG`."""
    return [cell.metadata["nbgrader"].get("grade_id", "?") for cell in nb.cells
            if _is_check_cell(cell) and RUN_ALL_TAG not in cell.metadata.get("tags", [])]


def lesson_seed(path: Path) -> int:
    """The seed of a lesson is its number: ``05_tiny_transformer.py`` → 5."""
    return int(path.name.split("_", 1)[0])


def _read(path: Path):
    """The notebook of a lesson source (``.py``) or of a source notebook (``.ipynb``), and the problems found
    reading it (the notebook is None where it could not be read at all)."""
    path = Path(path)
    try:
        if path.suffix == ".py":
            return read_lesson_text(path.read_text(encoding="utf-8"), path.name)
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        return nb, []
    except Exception as exc:  # a malformed source is a finding, not a crash
        return None, [f"{path.name}: not a valid lesson ({type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]})"]


def lint_source(path: Path) -> list[str]:
    """Problems with one lesson source (``NN_name.py``) or source notebook (``.ipynb``), as sentences (empty when
    it is fine)."""
    nb, problems = _read(path)
    return problems if nb is None else problems + _lint_notebook(nb, Path(path))


def _lint_notebook(nb, path: Path) -> list[str]:
    problems, seen = [], set()
    setup_cells = []
    for i, cell in enumerate(nb.cells):
        where = f"{path.name} cell {i}"
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count")):
            problems.append(f"{where}: has outputs or an execution count (clear them before committing)")
        grade_id = meta.get("grade_id")
        if meta:
            if not grade_id:
                problems.append(f"{where}: nbgrader cell without a grade_id")
            elif grade_id in seen:
                problems.append(f"{where}: duplicate grade_id {grade_id!r}")
            seen.add(grade_id)
        if cell.cell_type == "markdown" and not meta.get("locked"):
            problems.append(f"{where}: prose cells are read-only (locked) in this course")
        if meta.get("solution") and (SOLUTION_BEGIN not in cell.source or SOLUTION_END not in cell.source):
            problems.append(f"{where}: exercise cell {grade_id!r} lacks the {SOLUTION_BEGIN}/{SOLUTION_END} markers")
        if meta.get("grade") and not (meta.get("points", 0) > 0 and meta.get("locked")):
            problems.append(f"{where}: check cell {grade_id!r} must be locked and worth points > 0")
        if RUN_ALL_TAG in cell.metadata.get("tags", []):
            problems.append(f"{where}: has the {RUN_ALL_TAG!r} tag; remove it from the source (release adds it to the "
                            "student version's check cells, and in a source it would let nbval pass a failing check)")
        if grade_id == "setup":
            setup_cells.append(cell)
    if len(setup_cells) != 1:
        problems.append(f"{path.name}: expected one setup cell (grade_id 'setup'), found {len(setup_cells)}")
    elif setup_cells[0].source != render_setup_cell(lesson_seed(path)):
        problems.append(f"{path.name}: the setup cell differs from grader/setup_cell.py; run `python -m grader setup-cells`")
    if not any(c.metadata.get("nbgrader", {}).get("grade") for c in nb.cells):
        problems.append(f"{path.name}: no check cell (grade=True): nothing to grade")
    return problems


def build_sources(sources: list[Path], out_dir: Path) -> tuple[list[Path], list[str]]:
    """Lint the lesson sources and write the nbgrader source notebook of each to ``out_dir`` (only where its bytes
    change). Returns the notebooks' paths and the problems; nothing is written when there is a problem."""
    built, problems = {}, []
    for path in sources:
        nb, found = _read(path)
        problems += found if nb is None else found + _lint_notebook(nb, path)
        built[out_dir / f"{path.stem}.ipynb"] = nb
    if problems:
        return [], problems
    out_dir.mkdir(parents=True, exist_ok=True)
    for target, nb in built.items():
        text = notebook_json(nb)
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
    return list(built), []


def _normalised(path: Path) -> str:
    """The released notebook at ``path`` with its check cells tagged, in the fixed JSON layout."""
    return notebook_json(tag_check_cells(nbformat.read(path, as_version=4)), validate=False)


def generate_release(solutions: list[Path], out_dir: Path) -> list[Path]:
    """Run nbgrader's generate_assignment on the source notebooks ``solutions``; write the student notebooks to
    ``out_dir``."""
    from nbgrader.apps.api import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config

    # nbgrader runs `alembic` (the gradebook's migrations) as a program: it lives next to this Python.
    os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dpo-release-") as tmp:
        course = Path(tmp)
        source = course / "source" / ASSIGNMENT
        source.mkdir(parents=True)
        for path in solutions:
            (source / path.name).write_bytes(path.read_bytes())
        config = Config()
        config.CourseDirectory.root = str(course)
        config.CourseDirectory.course_id = COURSE_ID
        config.CourseDirectory.db_url = f"sqlite:///{course / 'gradebook.db'}"
        api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
        result = api.generate_assignment(ASSIGNMENT, force=True, create=True)
        if not result["success"]:
            raise RuntimeError(f"nbgrader generate_assignment failed:\n{result.get('log', '')[-3000:]}\n{result.get('error', '')}")
        written = []
        for path in solutions:
            target = out_dir / path.name
            target.write_text(_normalised(course / "release" / ASSIGNMENT / path.name), encoding="utf-8")
            written.append(target)
    return written


def _orphans(solutions_dir: Path) -> list[str]:
    """The source notebooks in ``solutions_dir`` that no lesson text gives."""
    texts = {p.stem for p in lesson_sources(solutions_dir)}
    return [f"{solutions_dir.name}/{p.name}: no lesson text {p.stem}.py gives it; convert it "
            f"(python -c 'from grader.release import convert_notebook; convert_notebook(\"{p}\")') or delete it"
            for p in lesson_paths(solutions_dir) if p.stem not in texts]


def release(solutions_dir: Path = SOLUTIONS_DIR, notebooks_dir: Path = NOTEBOOKS_DIR, check: bool = False) -> int:
    """Lint, then build ``solutions_dir/*.ipynb`` and ``notebooks_dir`` from the lesson texts (or with ``check=True``
    compare them with a fresh build). Returns an exit code."""
    solutions_dir, notebooks_dir = Path(solutions_dir), Path(notebooks_dir)
    sources = lesson_sources(solutions_dir)
    if not sources:
        print(f"no lesson sources (NN_name.py) in {solutions_dir}")
        return 1
    orphans = _orphans(solutions_dir)
    if not check:
        built, problems = ([], orphans) if orphans else build_sources(sources, solutions_dir)
        if problems:
            print("the lesson sources need fixing before release:")
            print("\n".join(f"  - {p}" for p in problems))
            return 1
        written = generate_release(built, notebooks_dir)
        stale = sorted(set(notebooks_dir.glob("*.ipynb")) - set(written))
        for path in stale:
            path.unlink()
        print(f"built {len(built)} source notebooks in {solutions_dir.name}/ and released them to {notebooks_dir}"
              + (f", removed {len(stale)} stale" if stale else ""))
        if solutions_dir == SOLUTIONS_DIR:
            LESSONS_JSON.write_text(_lessons_json(solutions_dir))
        return 0
    with tempfile.TemporaryDirectory(prefix="dpo-release-check-") as tmp:
        built, problems = build_sources(sources, Path(tmp) / solutions_dir.name)
        if problems:
            print("the lesson sources need fixing before release:")
            print("\n".join(f"  - {p}" for p in problems))
            return 1
        findings = list(orphans)
        findings += _compare(built, lesson_paths(solutions_dir), solutions_dir, "the lesson text", extra=False)
        fresh = generate_release(built, Path(tmp) / "notebooks")
        current = sorted(notebooks_dir.glob("*.ipynb"))
        findings += _compare(fresh, current, notebooks_dir, "a fresh release of the lesson text", extra=True)
        for path in current:
            if path.name not in {p.name for p in fresh}:
                continue
            try:
                untagged = untagged_check_cells(nbformat.read(path, as_version=4))
            except Exception:   # an unreadable notebook is already reported as stale
                continue
            if untagged:
                findings.append(f"{notebooks_dir.name}/{path.name}: check cells {', '.join(map(repr, untagged))} lack the "
                                f"{RUN_ALL_TAG!r} tag, so Run All would stop at the first one that fails")
        if solutions_dir == SOLUTIONS_DIR:
            if not LESSONS_JSON.exists() or LESSONS_JSON.read_text() != _lessons_json(Path(tmp) / solutions_dir.name):
                findings.append(f"grader/{LESSONS_JSON.name}: stale (the check cells of the lesson texts changed)")
    if findings:
        print(f"the generated notebooks are out of date with the lesson texts ({solutions_dir.name}/NN_*.py); "
              "run `python -m grader release`:")
        print("\n".join(f"  - {f}" for f in findings))
        return 1
    print(f"{solutions_dir.name}/*.ipynb and {notebooks_dir.name}/ are up to date with the lesson texts ({len(fresh)} lessons)")
    return 0


def _compare(fresh: list[Path], current: list[Path], folder: Path, what: str, extra: bool) -> list[str]:
    """One sentence per notebook of ``folder`` that is missing or differs from its fresh build (and, with ``extra``,
    per notebook that no lesson text gives; in solutions/ those are :func:`_orphans`)."""
    fresh_by, current_by = {p.name: p for p in fresh}, {p.name: p for p in current}
    findings = [f"{folder.name}/{name}: missing (built from {Path(name).stem}.py)" for name in sorted(set(fresh_by) - set(current_by))]
    if extra:
        findings += [f"{folder.name}/{name}: has no lesson text {Path(name).stem}.py (remove it)"
                     for name in sorted(set(current_by) - set(fresh_by))]
    findings += [f"{folder.name}/{name}: stale (differs from {what} {Path(name).stem}.py)"
                 for name in sorted(set(fresh_by) & set(current_by))
                 if fresh_by[name].read_text(encoding="utf-8") != current_by[name].read_text(encoding="utf-8")]
    return findings


def _lessons_json(solutions_dir: Path) -> str:
    """``grader/lessons.json`` with the check cells of the source notebooks in ``solutions_dir``; the run times stay
    as ``python -m grader publish`` wrote them."""
    return lessons_json_text(load_lessons(solutions_dir), typical_seconds())


def convert_notebook(path: Path) -> Path:
    """Write the lesson text ``NN_name.py`` of the source notebook ``path`` next to it, after checking that the text
    gives the notebook back cell for cell (type, source, metadata, id) and its kernel metadata. Returns its path."""
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    text = lesson_text(nb)
    back, problems = read_lesson_text(text, path.with_suffix(".py").name)
    lost = [f"cell {i}" for i, (a, b) in enumerate(zip(nb.cells, back.cells))
            if (a.cell_type, a.source, a.metadata, a.get("id")) != (b.cell_type, b.source, b.metadata, b.get("id"))]
    if len(nb.cells) != len(back.cells) or lost or problems or nb.metadata != back.metadata:
        raise ValueError(f"{path.name} does not survive the trip to text and back ({', '.join(lost + problems) or 'metadata'}); "
                         "fix the notebook (every cell needs nbgrader metadata or an id) and convert again")
    target = path.with_suffix(".py")
    target.write_text(text, encoding="utf-8")
    return target


def refresh_setup_cells(solutions_dir: Path = SOLUTIONS_DIR, check: bool = False) -> int:
    """Rewrite (or, with ``check``, verify) the setup cell of every lesson text from the template; the notebooks
    follow at the next ``python -m grader release``."""
    stale, unreadable = [], []
    for path in lesson_sources(solutions_dir):
        nb, problems = read_lesson_text(path.read_text(encoding="utf-8"), path.name)
        if problems:    # rewriting would write the placeholder ids it gave: say what to fix instead
            unreadable += problems
            continue
        cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "setup"]
        want = render_setup_cell(lesson_seed(path))
        if len(cells) == 1 and cells[0].source != want:
            stale.append(path.name)
            if not check:
                cells[0].source = want
                path.write_text(lesson_text(nb), encoding="utf-8")
    if unreadable:
        print("the lesson sources need fixing first:\n" + "\n".join(f"  - {p}" for p in unreadable))
    verb = "out of date" if check else "rewritten"
    print(f"setup cells {verb}: {', '.join(stale) if stale else 'none'}"
          + ("; now run `python -m grader release`" if stale and not check else ""))
    return 1 if (check and stale) or unreadable else 0
