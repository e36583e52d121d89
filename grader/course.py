"""The course's facts, in one module every other grader module imports (it imports only :mod:`grader.spec`, which imports no grader module).

* where things are: :data:`ROOT`, :data:`SOLUTIONS_DIR` (the lesson sources), :data:`NOTEBOOKS_DIR`
  (the released ones), :data:`LESSONS_JSON`;
* what nbgrader calls it: :data:`COURSE_ID`, and :data:`ASSIGNMENT` (the one assignment ``release`` generates all
  lessons in, and the folder of the grader's own graded copies; the gradebook has one assignment per lesson,
  :mod:`grader.gradebook`); its
  markers of an answer and of hidden tests (:data:`SOLUTION_BEGIN`, :data:`HIDDEN_BEGIN`, …);
* the lessons as text: each lesson's source is ``solutions/NN_name.py``, a jupytext percent script
  (:func:`lesson_sources`). :func:`read_lesson_text` is the one reader of that text and :func:`lesson_text`
  its inverse; ``python -m grader release`` builds from it the nbgrader source notebook
  ``solutions/NN_name.ipynb`` (:func:`lesson_paths`), committed and never edited by hand;
* the lessons as graded: :class:`Lesson` and :func:`load_lessons`, read from those built notebooks — what
  nbgrader, nbval, JupyterLab and the grader all read, and what ``release --check`` proves equal to the
  text — so that grading needs no jupytext and reads exactly the notebook nbgrader released from;
* ``grader/lessons.json``, the lessons as shipped with the package (no ``solutions/`` needed): each
  lesson's check cells, for the in-notebook self-check, and its typical run time, so that the
  autograder can start the longest lessons first. ``python -m grader release`` writes the check
  cells, ``python -m grader publish`` the run times (from ``bench/notebook_times.json``); both through
  :func:`lessons_json_text`.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from .spec import GradeCell, Probe, grading_spec

__all__ = ["ROOT", "SOLUTIONS_DIR", "NOTEBOOKS_DIR", "LESSONS_JSON", "ASSIGNMENT", "COURSE_ID", "LESSON_TEXT_FORMAT", "Lesson",
           "SOLUTION_BEGIN", "SOLUTION_END", "HIDDEN_BEGIN",
           "HIDDEN_END", "cell_id", "lesson_sources", "read_lesson_text", "read_lesson_source", "lesson_text", "lesson_paths", "load_lessons", "lessons_json_text",
           "read_lessons_json", "typical_seconds"]

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS_DIR = ROOT / "solutions"
NOTEBOOKS_DIR = ROOT / "notebooks"
LESSONS_JSON = Path(__file__).with_name("lessons.json")
ASSIGNMENT = "dpo"
COURSE_ID = "dpo-paper-to-code"
#: nbgrader's markers: an exercise cell's answer, and a check cell's hidden tests (removed on release).
SOLUTION_BEGIN, SOLUTION_END = "### BEGIN SOLUTION", "### END SOLUTION"
HIDDEN_BEGIN, HIDDEN_END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"


@dataclass
class Lesson:
    name: str            # "02_bradley_terry_and_dpo_loss"
    source: object       # the source NotebookNode
    spec: list[GradeCell]

    @property
    def max_score(self) -> float:
        return sum(c.points for c in self.spec)

    @property
    def variants(self) -> tuple[str, ...]:
        """The drill variants whose cells this lesson has (lesson 10), in the course's order; () for a lesson
        whose every check cell is everyone's."""
        from rlhf_core.course.variants import VARIANTS

        tags = {c.variant for c in self.spec} - {None}
        return tuple(key for key in VARIANTS if key in tags) if len(tags) > 1 else ()

    def for_variant(self, variant: str | None) -> Lesson:
        """The lesson as a student on ``variant`` is graded: the check cells of the other variants left out (and
        their points with them). Itself for a lesson without variants, or ``variant`` None."""
        if not variant or not self.variants:
            return self
        if variant not in self.variants:
            raise ValueError(f"{self.name} has no drill variant {variant!r}; its variants are {list(self.variants)}")
        return Lesson(self.name, self.source, cells_for_variant(self.spec, variant))


def lesson_sources(solutions: Path = SOLUTIONS_DIR) -> list[Path]:
    """The lesson sources, ``NN_name.py`` (jupytext percent text), in lesson order."""
    return sorted(Path(solutions).glob("[0-9][0-9]_*.py"))


def lesson_paths(solutions: Path = SOLUTIONS_DIR) -> list[Path]:
    """The nbgrader source notebooks built from the lesson sources, ``NN_name.ipynb``, in lesson order."""
    return sorted(Path(solutions).glob("[0-9][0-9]_*.ipynb"))


# ---- the lessons as text -------------------------------------------------------------------------------------------
#
# A lesson source is a jupytext percent script: ``# %% [markdown]`` starts a prose cell (its lines commented out),
# ``# %%`` a code cell, and the rest of the header line is the cell's metadata as ``key=<JSON>``:
#
#     # %% [markdown] nbgrader={"grade": false, "grade_id": "intro", "locked": true, "schema_version": 3, "solution": false}
#     # %% nbgrader={"grade": true, "grade_id": "check_dpo_loss", "locked": true, "points": 3, ...}
#     # %% id="demo-01"
#     # %% check="dpo_loss"
#
# ``check="<exercise>"`` is a graded check cell made from the exercise's record (:func:`check_cell`): its nbgrader
# metadata (``grade_id`` ``check_<exercise>``, the record's points) and its code (the visible check, then the hidden
# tests at the record's seeds) are written nowhere else, so the text holds nothing but the header. A check cell
# that is not the standard one (lesson 10's, which also skip for other variants) is written out in full.
# A cell's id is its grade_id (made id-safe, :func:`cell_id`); a cell without nbgrader metadata (a demo cell) names
# its id in the header (``id="demo-01"``), which keeps it stable when cells are added around it — the grader knows
# a lesson's demo cells in a submission by that id. The notebook's own metadata (kernelspec, language_info) is the
# YAML block at the top. No jupytext version is written, so the text does not change with the jupytext release.

#: jupytext's format for the lesson sources: percent cells, and only the kernel's metadata in the header.
LESSON_TEXT_FORMAT = {"extension": ".py", "format_name": "percent", "notebook_metadata_filter": "kernelspec,language_info,-jupytext"}
_ID_KEY = "id"
_CHECK_KEY = "check"
_CELL_MARKER = re.compile(r"^# %%(?:$|[ \t])")


def cell_id(grade_id: str) -> str:
    """The cell id of a cell with this nbgrader ``grade_id`` (nbformat allows letters, digits, ``-`` and ``_``)."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", grade_id)[:64]


def _grade_id(cell) -> str | None:
    meta = cell.get("metadata", {}).get("nbgrader")
    return (meta.get("grade_id") or None) if isinstance(meta, dict) else None


def check_cell(name: str) -> tuple[dict, str]:
    """The nbgrader metadata and the code of exercise ``name``'s graded check cell, both read from its record."""
    from rlhf_core.checks import EXERCISES
    from rlhf_core.checks.derived import check_cell_source

    exercise = EXERCISES[name]
    meta = {"grade": True, "grade_id": f"check_{name}", "locked": True, "points": exercise.points,
            "schema_version": 3, "solution": False}
    return meta, check_cell_source(exercise).rstrip("\n")


def _as_check_directive(cell) -> str | None:
    """The exercise whose standard check cell ``cell`` is (its record gives it back exactly), else None."""
    from rlhf_core.checks import EXERCISES

    grade_id = _grade_id(cell) or ""
    name = grade_id.removeprefix("check_")
    if cell.cell_type != "code" or not grade_id.startswith("check_") or name not in EXERCISES:
        return None
    meta, source = check_cell(name)
    return name if cell.metadata == {"nbgrader": meta} and cell.source == source else None


def _expand_check(cell, where: str, problems: list[str]) -> None:
    """Fill a ``check="<exercise>"`` cell from the exercise's record (a problem sentence when it cannot be)."""
    from rlhf_core.checks import EXERCISES

    name = cell.metadata.pop(_CHECK_KEY)
    if not isinstance(name, str) or name not in EXERCISES:
        problems.append(f"{where}: `check={name!r}` names no registered exercise; the names are those of "
                        "rlhf_core.checks.EXERCISES (an exercise's record must exist before its check cell)")
        return
    if cell.source.strip():
        problems.append(f"{where}: a `check={name!r}` cell is made from the exercise's record, so its body must be empty; "
                        "write a check cell that differs from the standard one out in full, with its nbgrader metadata")
    meta, cell.source = check_cell(name)
    cell.metadata["nbgrader"] = meta


def lesson_text(nb) -> str:
    """The lesson source (jupytext percent text) of the nbgrader source notebook ``nb``; :func:`read_lesson_text`
    gives ``nb`` back, cell for cell (type, source, metadata, id) and with its kernel metadata."""
    import jupytext

    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        grade_id = _grade_id(cell)
        check = _as_check_directive(cell)
        if check is not None:
            cell.metadata, cell.source = {_CHECK_KEY: check}, ""
        if cell.get("id") and (grade_id is None or cell_id(grade_id) != cell["id"]):
            cell.metadata = {_ID_KEY: cell["id"], **cell.metadata}
        cell.pop("outputs", None)
    return jupytext.writes(nb, fmt=LESSON_TEXT_FORMAT)


def read_lesson_text(text: str, name: str = "lesson") -> tuple[object, list[str]]:
    """The nbgrader source notebook a lesson source gives, and the problems of its text as sentences (empty when
    it is fine): a cell with neither nbgrader metadata nor an ``id`` in its header, a solution or hidden-test
    block in a cell whose header does not make it an exercise or a check, a repeated cell id. ``name`` (the file's
    name) starts each sentence. A cell without an id gets ``cell-<n>`` so that the notebook is still whole."""
    import jupytext

    nb = jupytext.reads(text, fmt=LESSON_TEXT_FORMAT)
    nb.metadata.pop("jupytext", None)
    nb.nbformat, nb.nbformat_minor = 4, 5
    markers = [n for n, line in enumerate(text.splitlines(), 1) if _CELL_MARKER.match(line)]
    lines = markers if len(markers) == len(nb.cells) else [None] * len(nb.cells)
    problems, seen = [], set()
    for i, (cell, line) in enumerate(zip(nb.cells, lines)):
        where = f"{name} cell {i}" + (f" (line {line})" if line else "")
        meta = cell.metadata.get("nbgrader") or {}
        if _CHECK_KEY in cell.metadata and cell.cell_type == "code":
            _expand_check(cell, where, problems)
            meta = cell.metadata.get("nbgrader") or {}
        explicit = cell.metadata.pop(_ID_KEY, None)
        unread = cell.metadata.pop("incorrectly_encoded_metadata", None) or cell.metadata.pop("title", None)
        if unread:      # jupytext keeps a header it cannot parse as text (or a title) instead of failing
            problems.append(f"{where}: jupytext cannot read the metadata of its header `# %% {unread[:80]}…`: write it as "
                            'key=<JSON> pairs (`nbgrader={"grade": true, …}`, JSON\'s true/false, double quotes)')
        grade_id = _grade_id(cell)
        cell["id"] = str(explicit) if explicit else cell_id(grade_id) if grade_id else f"cell-{i}"
        if not explicit and not grade_id:
            problems.append(f"{where}: its header `# %%` has neither nbgrader metadata nor an id; a demo cell names its "
                            'id (`# %% id="demo-…"`), and an exercise, check, setup or prose cell needs its '
                            '`nbgrader={"grade_id": …}` (see grader/authoring.py for each kind\'s metadata)')
        if cell.cell_type == "code":
            if SOLUTION_BEGIN in cell.source and not meta.get("solution"):
                problems.append(f"{where}: holds {SOLUTION_BEGIN!r} but its header does not make it an exercise "
                                '(`nbgrader={…, "solution": true}`), so release would hand the answer to the students')
            if HIDDEN_BEGIN in cell.source and not meta.get("grade"):
                problems.append(f"{where}: holds {HIDDEN_BEGIN!r} but its header does not make it a check cell "
                                '(`nbgrader={…, "grade": true, "points": …}`), so release would hand the hidden tests to the students')
        if cell["id"] in seen:
            problems.append(f"{where}: cell id {cell['id']!r} is used twice (ids must be unique; a grade_id gives its cell's id)")
        seen.add(cell["id"])
    if not problems:
        try:
            nbformat.validate(nb)
        except nbformat.ValidationError as exc:
            problems.append(f"{name}: does not give a valid notebook ({str(exc).splitlines()[0][:200]})")
    return nb, problems


def read_lesson_source(path: Path):
    """The nbgrader source notebook that the lesson source ``path`` (``NN_name.py``) gives; ValueError, with every
    problem of its text, where it has any (see :func:`read_lesson_text`)."""
    nb, problems = read_lesson_text(Path(path).read_text(encoding="utf-8"), Path(path).name)
    if problems:
        raise ValueError("\n".join(problems))
    return nb


def load_lessons(solutions: Path = SOLUTIONS_DIR) -> dict[str, Lesson]:
    """Every lesson of ``solutions`` (as graded: from its built nbgrader source notebook, :func:`lesson_paths`)."""
    lessons = {}
    for path in lesson_paths(solutions):
        nb = nbformat.read(path, as_version=4)
        lessons[path.stem] = Lesson(path.stem, nb, grading_spec(nb))
    return lessons


def lessons_json_text(lessons: dict[str, Lesson], seconds: dict[str, float]) -> str:
    """``grader/lessons.json``: every lesson's check cells and its typical run time (None: not measured)."""
    data = {name: {"checks": [{"grade_id": c.grade_id, "points": c.points,
                               "probes": [[p.kind, p.name, list(p.candidates), p.seed] for p in c.probes],
                               **({"variant": c.variant} if c.variant else {})}
                              for c in lesson.spec],
                   "seconds": seconds.get(name)}
            for name, lesson in sorted(lessons.items())}
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


def _read(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def read_lessons_json(path: Path = LESSONS_JSON) -> dict[str, list[GradeCell]]:
    """Each lesson's check cells, as shipped in ``grader/lessons.json``."""
    data = json.loads(Path(path).read_text())
    return {name: [GradeCell(c["grade_id"], float(c["points"]), [Probe(k, n, tuple(cs), s) for k, n, cs, s in c["probes"]],
                             c.get("variant"))
                   for c in entry["checks"]] for name, entry in data.items()}


def cells_for_variant(cells: list[GradeCell], variant: str | None) -> list[GradeCell]:
    """The check cells a student on drill ``variant`` is graded on: every cell of a lesson without variants; in
    lesson 10, the cells everyone has and those of ``variant`` (None: "dpo", the first attempt's)."""
    if len({c.variant for c in cells} - {None}) <= 1:
        return list(cells)
    return [c for c in cells if c.variant in (None, variant or "dpo")]


def typical_seconds(path: Path = LESSONS_JSON) -> dict[str, float]:
    """Each lesson's measured run time, as shipped in ``grader/lessons.json`` (lessons not measured left out)."""
    seconds = {}
    for name, entry in _read(path).items():
        value = entry.get("seconds") if isinstance(entry, dict) else None
        if isinstance(value, (int, float)):
            seconds[name] = float(value)
    return seconds
