"""The course's facts, in one module every other grader module imports (and that imports none of them).

* where things are: :data:`ROOT`, :data:`SOLUTIONS_DIR` (the source notebooks), :data:`NOTEBOOKS_DIR`
  (the released ones), :data:`LESSONS_JSON`;
* what nbgrader calls it: :data:`COURSE_ID`, and :data:`ASSIGNMENT` (all lessons form one assignment);
* the lessons: :class:`Lesson` and :func:`load_lessons`, read from ``solutions/``;
* ``grader/lessons.json``, the lessons as shipped with the package (no ``solutions/`` needed): each
  lesson's check cells, for the in-notebook self-check, and its typical run time, so that the
  autograder can start the longest lessons first. ``python -m grader release`` writes the check
  cells, ``python -m grader publish`` the run times (from ``bench/notebook_times.json``); both through
  :func:`lessons_json_text`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import nbformat

from .spec import GradeCell, Probe, grading_spec

__all__ = ["ROOT", "SOLUTIONS_DIR", "NOTEBOOKS_DIR", "LESSONS_JSON", "ASSIGNMENT", "COURSE_ID", "Lesson",
           "lesson_paths", "load_lessons", "lessons_json_text", "read_lessons_json", "typical_seconds"]

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS_DIR = ROOT / "solutions"
NOTEBOOKS_DIR = ROOT / "notebooks"
LESSONS_JSON = Path(__file__).with_name("lessons.json")
ASSIGNMENT = "dpo"
COURSE_ID = "dpo-paper-to-code"


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


def lesson_paths(solutions: Path = SOLUTIONS_DIR) -> list[Path]:
    """The source notebooks, ``NN_name.ipynb``, in lesson order."""
    return sorted(Path(solutions).glob("[0-9][0-9]_*.ipynb"))


def load_lessons(solutions: Path = SOLUTIONS_DIR) -> dict[str, Lesson]:
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
