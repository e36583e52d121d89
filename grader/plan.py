"""Planning an autograde run: what to grade, before any submission runs.

``SUBMISSIONS/<student>/<NN_name>.ipynb`` gives one item per student and lesson that any student
handed in: the notebook of that name, else the one renamed copy with the lesson's number (said in
the message), else a *missing notebook*; every other notebook is an *unexpected notebook*.

**Re-runs and resubmissions.** Each result records the sha256 of the submission file it graded
(``NotebookResult.submission_sha256``). A re-run grades an item when it has no result yet, when its file
changed since it was graded (a resubmission: said in the log, "alice/02_…: the submission changed since it
was graded; grading again"), or when a student now hands in a lesson they were graded *missing* on; it skips
the rest (``force`` grades them all again). A result written by an earlier version has no hash: it is graded
again when its submission file was modified after the result file was written, else kept (``--force`` when in
doubt). A notebook that was graded but is no longer in SUBMISSIONS (deleted, renamed, its student's folder
gone) keeps its grade, even under ``force``, and the run lists it: delete its result file to drop it.
``students`` and ``notebooks`` (``--student``, ``--notebook``: a lesson's name or number) narrow what is
considered for grading; the CSV, the gradebook and the report still hold every result.

The hidden tests' seeds are replaced by secret ones, derived from the course secret (:mod:`grader.secret`, out
of every kernel's reach), the student, the notebook and the check: a submission cannot know its inputs in
advance, and re-running gives the same seeds, hence the same grades. Lesson 10's drill variant of a student is
derived from the same secret (:meth:`SecretSeeds.variant_for`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from pathlib import Path

from .course import Lesson
from .result import Status
from .results import result_path

__all__ = ["Item", "Plan", "SecretSeeds", "VARIANT_ORDER", "make_plan", "lesson_named", "file_sha256"]

#: The order in which a student's drill variant is drawn (:meth:`SecretSeeds.variant_for`), frozen here so that
#: reordering ``rlhf_core.course.variants.VARIANTS`` changes no student's variant. It is the order that dict had
#: when the draw indexed it, so no assignment changed with the freeze. A variant added to the course goes after
#: these (in name order); adding one changes the draw's modulus, hence most students' variants: add it between courses.
VARIANT_ORDER = ("dpo", "ipo", "cdpo", "simpo", "orpo")


@dataclass
class Item:
    """One row of the result: a student's notebook for a lesson (``lesson`` None: not a lesson of the
    course; ``path`` None: the student did not hand it in)."""

    student: str
    lesson: str | None
    path: Path | None
    note: str
    result_path: Path
    variant: str | None = None   # lesson 10: the student's drill variant (SecretSeeds.variant_for), else None
    sha256: str | None = None    # the submission file's hash when planned (None: no file); the result records it
    why: str = ""                # why this run grades it: "new", "changed", "handed in", "forced", "unreadable result"

    @property
    def notebook(self) -> str:
        return self.lesson or (self.path.stem if self.path else "?")


class SecretSeeds:
    """Deterministic secret seeds for hidden tests: HMAC(key, student|notebook|grade_id|seed). ``key``: the
    course secret's (:func:`grader.secret.resolve_secret`)."""

    def __init__(self, key: bytes):
        if not isinstance(key, bytes) or not key:
            raise TypeError("SecretSeeds needs the secret's key (bytes): see grader.secret.resolve_secret")
        self.key = key

    def for_lesson(self, student: str, lesson) -> dict[str, dict[int, int]]:
        """The seeds of every check cell of ``lesson`` for ``student``: all a grading worker is given of the key."""
        return {cell.grade_id: self.for_cell(student, lesson.name, cell) for cell in lesson.spec}

    def variant_for(self, student: str, lesson) -> str | None:
        """The drill variant ``student`` is graded on in ``lesson`` (None for a lesson without variants):
        HMAC(key, student|notebook|variant) picks one of ``lesson.variants`` in :data:`VARIANT_ORDER` (not in the
        order the course lists them), so the same student always gets the same one, neighbours usually different
        ones, and no one can work theirs out without the key."""
        if not lesson.variants:
            return None
        order = [v for v in VARIANT_ORDER if v in lesson.variants] + sorted(set(lesson.variants) - set(VARIANT_ORDER))
        digest = hmac.new(self.key, f"{student}|{lesson.name}|variant".encode(), hashlib.sha256).digest()
        return order[int.from_bytes(digest[:4], "big") % len(order)]

    def for_cell(self, student: str, notebook: str, cell) -> dict[int, int]:
        seeds = {}
        for probe in cell.probes:
            if probe.kind == "exercise" and probe.seed != 0:
                digest = hmac.new(self.key, f"{student}|{notebook}|{cell.grade_id}|{probe.seed}".encode(), hashlib.sha256).digest()
                seeds[probe.seed] = 1000 + int.from_bytes(digest[:4], "big") % 1_000_000
        return seeds


@dataclass
class Plan:
    items: list[Item]        # everything found or expected, in a stable order
    todo: list[Item]         # what this run grades, in the order it starts them
    seeds: SecretSeeds
    kept: list[str] = field(default_factory=list)   # "student/notebook" graded before, no longer in SUBMISSIONS: kept
    selected: int = 0        # items the selection (students, notebooks) left in play

    @property
    def students(self) -> int:
        return len({item.student for item in self.items})

    def counts(self) -> dict[str, int]:
        """How many of ``todo`` are graded for each reason (:attr:`Item.why`)."""
        counts: dict[str, int] = {}
        for item in self.todo:
            counts[item.why] = counts.get(item.why, 0) + 1
        return counts


def file_sha256(path: Path) -> str | None:
    """The sha256 of the file's bytes (None when it cannot be read)."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def lesson_named(name: str, lessons: dict[str, Lesson]) -> str:
    """The lesson ``name`` means: its full name (``.ipynb`` allowed) or its number (``02`` or ``2``); ValueError else."""
    name = name.strip()
    name = name[:-len(".ipynb")] if name.endswith(".ipynb") else name
    if name in lessons:
        return name
    if name.isdigit():
        matches = [lesson for lesson in lessons if lesson[:2].isdigit() and int(lesson[:2]) == int(name)]
        if len(matches) == 1:
            return matches[0]
    raise ValueError(f"--notebook {name!r} is not a lesson of this course; its lessons: {', '.join(sorted(lessons))}")


def make_plan(submissions: Path, out: Path, lessons: dict[str, Lesson], *, seeds: SecretSeeds, force: bool = False,
              students: list[str] | None = None, notebooks: list[str] | None = None,
              expected_seconds: dict[str, float] | None = None, log=print) -> Plan:
    """The plan for ``submissions`` into ``out``: every item, and those to grade (see the module's docstring);
    ``log`` hears each resubmission. With ``expected_seconds`` the longest lessons start first (so that no job is
    left alone with a long notebook at the end). ValueError for a ``students`` or ``notebooks`` name that matches
    nothing."""
    items = _items(submissions, out, lessons)
    for item in items:
        if item.lesson in lessons:
            item.variant = seeds.variant_for(item.student, lessons[item.lesson])
        if item.path is not None:
            item.sha256 = file_sha256(item.path)
    chosen = _select(items, lessons, students, notebooks)
    todo, kept = [], []
    for item in chosen:
        why = _why_grade(item, force)
        if why == "kept":
            kept.append(f"{item.student}/{item.notebook}")
        elif why:
            item.why = why
            todo.append(item)
            if why == "changed":
                log(f"{item.student}/{item.notebook}: the submission changed since it was graded; grading again")
            elif why == "handed in":
                log(f"{item.student}/{item.notebook}: handed in since it was graded as missing; grading it")
    planned = {item.result_path for item in items}
    kept += [f"{path.parent.name}/{path.stem}" for path in sorted((out / "results").glob("*/*.json"))
             if path not in planned and _selected_path(path, students, notebooks, lessons)]
    if expected_seconds:
        todo.sort(key=lambda item: -expected_seconds.get(item.lesson or "", 0.0))
    return Plan(items, todo, seeds, kept, len(chosen))


def _select(items: list[Item], lessons: dict, students: list[str] | None, notebooks: list[str] | None) -> list[Item]:
    if students:
        known = {item.student for item in items}
        unknown = [name for name in students if name not in known]
        if unknown:
            raise ValueError(f"--student {', '.join(unknown)}: no such student folder in SUBMISSIONS")
        items = [item for item in items if item.student in set(students)]
    if notebooks:
        wanted = {lesson_named(name, lessons) for name in notebooks}
        items = [item for item in items if item.lesson in wanted]
    return items


def _selected_path(path: Path, students, notebooks, lessons) -> bool:
    """Whether a result file outside the plan falls in the selection (for the list of kept grades)."""
    if students and path.parent.name not in students:
        return False
    return not notebooks or path.stem in {lesson_named(name, lessons) for name in notebooks}


def _why_grade(item: Item, force: bool) -> str:
    """Why ``item`` is graded ("" when it is not; "kept" when its file is gone but a grade of it is kept)."""
    path = item.result_path
    if not path.exists():
        return "new"
    try:
        old = json.loads(path.read_text())
        status, graded = old.get("status"), old.get("submission_sha256")
    except (OSError, ValueError, AttributeError):
        return "unreadable result"
    if item.path is None:                       # nothing handed in now
        return "" if status == Status.MISSING.value or item.lesson is None else "kept"
    if status == Status.MISSING.value:
        return "handed in"
    if force:
        return "forced"
    if isinstance(graded, str):
        return "changed" if graded != item.sha256 else ""
    try:                                        # an earlier version's result: no hash, so by date
        return "changed" if item.path.stat().st_mtime > path.stat().st_mtime else ""
    except OSError:
        return "changed"


def _items(submissions: Path, out: Path, lessons: dict[str, Lesson]) -> list[Item]:
    items = []
    students = sorted(p for p in submissions.iterdir() if p.is_dir() and not p.name.startswith("."))
    files = {d.name: sorted(p for p in d.iterdir() if p.is_file() and p.suffix == ".ipynb" and not p.name.startswith("."))
             for d in students}
    # each file's lesson: its exact name, else the one lesson with its two-digit number (a renamed copy)
    lesson_of = {path: path.stem if path.stem in lessons else _renamed_lesson(path, lessons)
                 for found in files.values() for path in found}
    in_play = {name for name in lesson_of.values() if name}
    for student, found in files.items():
        exact = {p.stem: p for p in found if p.stem in lessons}
        used = set(exact.values())
        for name in sorted(in_play):
            path, note = exact.get(name), ""
            if path is None:
                candidates = [p for p in found if p not in used and lesson_of[p] == name]
                if len(candidates) == 1:
                    path, note = candidates[0], f"graded from {candidates[0].name!r} (renamed; expected {name}.ipynb)"
                    used.add(path)
            items.append(Item(student, name, path, note, result_path(out, student, name)))
        for path in found:
            if path not in used:
                items.append(Item(student, None, path, "", result_path(out, student, path.stem)))
    return items


def _renamed_lesson(path: Path, lessons: dict) -> str | None:
    number = path.name[:2]
    matches = [name for name in lessons if name[:2] == number and number.isdigit()]
    return matches[0] if len(matches) == 1 else None
