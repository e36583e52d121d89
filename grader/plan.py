"""Planning an autograde run: what to grade, before any submission runs.

``SUBMISSIONS/<student>/<NN_name>.ipynb`` gives one item per student and lesson that any student
handed in: the notebook of that name, else the one renamed copy with the lesson's number (said in
the message), else a *missing notebook*; every other notebook is an *unexpected notebook*. An item
whose result file already exists in OUT is skipped (``force`` grades it again).

The hidden tests' seeds are replaced by secret ones, derived from a key kept in ``OUT/.secret`` (out of
every kernel's reach), the student, the notebook and the check: a submission cannot know its inputs in
advance, and re-running gives the same seeds, hence the same grades.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from .course import Lesson
from .results import atomic_write, result_path

__all__ = ["Item", "Plan", "SecretSeeds", "make_plan"]


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

    @property
    def notebook(self) -> str:
        return self.lesson or (self.path.stem if self.path else "?")


class SecretSeeds:
    """Deterministic secret seeds for hidden tests: HMAC(key, student|notebook|grade_id|seed)."""

    def __init__(self, out: Path):
        path = out / ".secret"
        if not path.exists():
            atomic_write(path, secrets.token_hex(32))
            os.chmod(path, 0o600)
        self.key = path.read_text().strip().encode()

    def for_lesson(self, student: str, lesson) -> dict[str, dict[int, int]]:
        """The seeds of every check cell of ``lesson`` for ``student``: all a grading worker is given of the key."""
        return {cell.grade_id: self.for_cell(student, lesson.name, cell) for cell in lesson.spec}

    def variant_for(self, student: str, lesson) -> str | None:
        """The drill variant ``student`` is graded on in ``lesson`` (None for a lesson without variants):
        HMAC(key, student|notebook|variant) picks one of ``lesson.variants``, so the same student always gets the
        same one, neighbours usually different ones, and no one can work theirs out without the key."""
        if not lesson.variants:
            return None
        digest = hmac.new(self.key, f"{student}|{lesson.name}|variant".encode(), hashlib.sha256).digest()
        return lesson.variants[int.from_bytes(digest[:4], "big") % len(lesson.variants)]

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

    @property
    def students(self) -> int:
        return len({item.student for item in self.items})


def make_plan(submissions: Path, out: Path, lessons: dict[str, Lesson], *, force: bool = False,
              expected_seconds: dict[str, float] | None = None) -> Plan:
    """The plan for ``submissions`` into ``out``; with ``expected_seconds`` the longest lessons start first
    (so that no job is left alone with a long notebook at the end)."""
    items = _items(submissions, out, lessons)
    todo = [item for item in items if force or not item.result_path.exists()]
    if expected_seconds:
        todo.sort(key=lambda item: -expected_seconds.get(item.lesson or "", 0.0))
    seeds = SecretSeeds(out)
    for item in items:
        if item.lesson in lessons:
            item.variant = seeds.variant_for(item.student, lessons[item.lesson])
    return Plan(items, todo, seeds)


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
