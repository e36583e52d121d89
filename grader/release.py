"""``python -m grader release [--check]``: write ``notebooks/`` from ``solutions/`` through nbgrader.

The solution notebooks are the single source. Release runs nbgrader's ``generate_assignment`` in a
throw-away course directory (all lessons form one assignment, ``dpo``), so the student versions get
exactly nbgrader's treatment: solutions replaced by ``raise NotImplementedError()``, hidden tests
removed, outputs cleared, locked cells marked read-only with checksums. The result is written with
a fixed JSON layout, so the same sources always give the same bytes and ``--check`` can say which
student notebook is stale.

Before releasing, every source is linted: no outputs or execution counts, unique grade ids, an
answer between the solution markers of every exercise cell, points on every check cell, no
``raises-exception`` tag, and the current setup cell (see :mod:`grader.setup_cell`).

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

from .authoring import SOLUTION_BEGIN, SOLUTION_END, write
from .course import (
    ASSIGNMENT,
    COURSE_ID,
    LESSONS_JSON,
    NOTEBOOKS_DIR,
    SOLUTIONS_DIR,
    lesson_paths,
    lessons_json_text,
    load_lessons,
    typical_seconds,
)
from .setup_cell import render_setup_cell

__all__ = ["RUN_ALL_TAG", "lint_source", "generate_release", "release", "refresh_setup_cells", "tag_check_cells",
           "untagged_check_cells"]

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
    """The seed of a lesson is its number: ``05_tiny_transformer.ipynb`` → 5."""
    return int(path.name.split("_", 1)[0])


def lint_source(path: Path) -> list[str]:
    """Problems with one source notebook, as sentences (empty when it is fine)."""
    try:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
    except Exception as exc:  # a malformed notebook is a finding, not a crash
        return [f"{path.name}: not a valid notebook ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"]
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


def _normalised(path: Path) -> str:
    """The released notebook at ``path`` with its check cells tagged, in the fixed JSON layout."""
    nb = tag_check_cells(nbformat.read(path, as_version=4))
    text = nbformat.writes(nb, version=4)
    return text if text.endswith("\n") else text + "\n"


def generate_release(solutions: list[Path], out_dir: Path) -> list[Path]:
    """Run nbgrader's generate_assignment on ``solutions``; write the student notebooks to ``out_dir``."""
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


def release(solutions_dir: Path = SOLUTIONS_DIR, notebooks_dir: Path = NOTEBOOKS_DIR, check: bool = False) -> int:
    """Lint, then release (or with ``check=True`` compare with what is there). Returns an exit code."""
    solutions = lesson_paths(solutions_dir)
    if not solutions:
        print(f"no solution notebooks in {solutions_dir}")
        return 1
    problems = [p for path in solutions for p in lint_source(path)]
    if problems:
        print("the solution notebooks need fixing before release:")
        print("\n".join(f"  - {p}" for p in problems))
        return 1
    if not check:
        written = generate_release(solutions, notebooks_dir)
        stale = sorted(set(notebooks_dir.glob("*.ipynb")) - set(written))
        for path in stale:
            path.unlink()
        print(f"released {len(written)} notebooks to {notebooks_dir}" + (f", removed {len(stale)} stale" if stale else ""))
        if solutions_dir == SOLUTIONS_DIR:
            LESSONS_JSON.write_text(_lessons_json(solutions_dir))
        return 0
    with tempfile.TemporaryDirectory(prefix="dpo-release-check-") as tmp:
        fresh = {p.name: p for p in generate_release(solutions, Path(tmp))}
        current = {p.name: p for p in notebooks_dir.glob("*.ipynb")}
        findings = [f"{name}: missing from {notebooks_dir.name}/" for name in sorted(set(fresh) - set(current))]
        findings += [f"{name}: has no source in {solutions_dir.name}/ (remove it)" for name in sorted(set(current) - set(fresh))]
        findings += [f"{name}: stale (differs from a fresh release of {solutions_dir.name}/{name})"
                     for name in sorted(set(fresh) & set(current))
                     if fresh[name].read_text(encoding="utf-8") != current[name].read_text(encoding="utf-8")]
        for name in sorted(set(fresh) & set(current)):
            try:
                untagged = untagged_check_cells(nbformat.read(current[name], as_version=4))
            except Exception:   # an unreadable notebook is already reported as stale
                continue
            if untagged:
                findings.append(f"{name}: check cells {', '.join(map(repr, untagged))} lack the {RUN_ALL_TAG!r} tag, "
                                "so Run All would stop at the first one that fails")
    if solutions_dir == SOLUTIONS_DIR:
        if not LESSONS_JSON.exists() or LESSONS_JSON.read_text() != _lessons_json(solutions_dir):
            findings.append(f"grader/{LESSONS_JSON.name}: stale (the check cells of solutions/ changed)")
    if findings:
        print("notebooks/ is out of date; run `python -m grader release`:")
        print("\n".join(f"  - {f}" for f in findings))
        return 1
    print(f"notebooks/ is up to date with solutions/ ({len(fresh)} notebooks)")
    return 0


def _lessons_json(solutions_dir: Path) -> str:
    """``grader/lessons.json`` with the check cells of ``solutions_dir``; the run times stay as
    ``python -m grader publish`` wrote them."""
    return lessons_json_text(load_lessons(solutions_dir), typical_seconds())


def refresh_setup_cells(solutions_dir: Path = SOLUTIONS_DIR, check: bool = False) -> int:
    """Rewrite (or, with ``check``, verify) the setup cell of every solution notebook from the template."""
    stale = []
    for path in lesson_paths(solutions_dir):
        nb = nbformat.read(path, as_version=4)
        cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "setup"]
        want = render_setup_cell(lesson_seed(path))
        if len(cells) == 1 and cells[0].source != want:
            stale.append(path.name)
            if not check:
                cells[0].source = want
                write(nb, path)
    verb = "out of date" if check else "rewritten"
    print(f"setup cells {verb}: {', '.join(stale) if stale else 'none'}")
    return 1 if (check and stale) else 0
