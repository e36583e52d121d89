"""What grading one notebook produces: its :class:`Status`, its :class:`CellVerdict` per check cell, and the
:class:`NotebookResult` that holds them — the one shape every part of the grader reads.

A result is stored as ``OUT/results/<student>/<notebook>.json`` (:mod:`grader.results`) in the JSON of
:meth:`NotebookResult.to_json`, and read back with :meth:`NotebookResult.from_json`, which also reads the
files earlier versions wrote (no ``kind``/``mistake`` per cell, no ``kernel``, the CSV row's ``isolation`` only).
This module imports nothing of the course: the feedback page, the CSV and the report read results without
loading the checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from .wording import CSV_MESSAGE_LIMIT, short_form

__all__ = ["Status", "CellVerdict", "NotebookResult", "CSV_FIELDS"]

CSV_FIELDS = ["student", "notebook", "score", "max_score", "status", "message", "isolation"]


class Status(str, Enum):
    """How a notebook's grading ended: the ``status`` column of ``grades.csv``. Each but :attr:`GRADED` comes with
    a one-line reason in the result's message; a notebook that stopped early keeps the points judged before."""

    GRADED = "graded"                    # every cell ran (or was judged); the checks decided the score
    TIMEOUT = "timeout"                  # a cell, or the notebook, ran past its time limit
    MEMORY = "memory"                    # the kernel went over its memory cap
    KERNEL_DIED = "kernel died"          # the kernel exited, crashed, was killed or never started
    INVALID = "invalid notebook"         # the file is not a notebook this grader can read
    MISSING = "missing notebook"         # the student handed in no notebook for a lesson others handed in
    UNEXPECTED = "unexpected notebook"   # a notebook that is not a lesson of the course
    GRADER_ERROR = "grader error"        # the grader's own code failed on this notebook

    def __str__(self) -> str:            # the CSV, the log and the pages show the value
        return self.value

    @property
    def ran(self) -> bool:
        """Whether the notebook's kernel ran (to its end or not)."""
        return self in (Status.GRADED, Status.TIMEOUT, Status.MEMORY, Status.KERNEL_DIED)


@dataclass
class CellVerdict:
    """The verdict on one check cell (:func:`grader.judge.judge_cell`)."""

    grade_id: str
    score: float
    max_score: float
    passed: bool
    message: str
    kind: str | None = None      # None when passed, else one of grader.judge.FAILURE_KINDS
    mistake: str | None = None   # "<exercise>/<mistake id>" (or "<probe>/sanity-N") when a registered mistake matched

    def as_dict(self) -> dict[str, Any]:
        return {"grade_id": self.grade_id, "score": self.score, "max_score": self.max_score,
                "passed": self.passed, "message": self.message, "kind": self.kind, "mistake": self.mistake}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CellVerdict:
        """A verdict as :meth:`as_dict` wrote it (or an earlier version: ``kind`` and ``mistake`` may be missing)."""
        return cls(str(data.get("grade_id", "")), float(data.get("score") or 0), float(data.get("max_score") or 0),
                   bool(data.get("passed")), str(data.get("message", "")), data.get("kind"), data.get("mistake"))


@dataclass
class NotebookResult:
    """One student's notebook for one lesson, as graded."""

    student: str
    notebook: str
    score: float
    max_score: float
    status: Status
    message: str                                             # the whole text; grades.csv shows its short form
    cells: list[CellVerdict] = field(default_factory=list)   # one per check cell reached; empty when nothing ran
    seconds: float | None = None                             # the kernel's run time (None: no kernel ran)
    timing: dict[str, float] | None = None                   # where the time went (grader.execute.RunResult.timing)
    kernel: str | None = None                                # "warm" or "cold" (None: no kernel ran)
    variant: str | None = None                               # lesson 10: the drill variant graded
    isolation: str | None = None                             # what the notebook ran under (the CSV's column)
    submission_sha256: str | None = None                     # sha256 of the submission file graded (None: no file, or
                                                             # an earlier version's result): a re-run regrades on change

    @property
    def passed_checks(self) -> int:
        return sum(cell.passed for cell in self.cells)

    def csv_row(self) -> dict[str, str]:
        """The notebook's row of ``grades.csv`` (:data:`CSV_FIELDS`): the message in its short form."""
        return {"student": self.student, "notebook": self.notebook, "score": f"{self.score:g}",
                "max_score": f"{self.max_score:g}", "status": str(self.status),
                "message": short_form(self.message, CSV_MESSAGE_LIMIT), "isolation": self.isolation or ""}

    def to_json(self) -> dict[str, Any]:
        """The result file's content: every field set (those left at None are left out) and the CSV row."""
        data: dict[str, Any] = {"student": self.student, "notebook": self.notebook, "score": self.score,
                                "max_score": self.max_score, "status": self.status.value, "message": self.message,
                                "cells": [cell.as_dict() for cell in self.cells]}
        for key in ("seconds", "timing", "kernel", "variant", "isolation", "submission_sha256"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        if self.isolation is not None:
            data["row"] = self.csv_row()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NotebookResult:
        """A result file's content (:meth:`to_json`, or an earlier version's); ValueError when it is not one."""
        if not isinstance(data, dict) or not isinstance(data.get("student"), str) or not isinstance(data.get("notebook"), str):
            raise ValueError("not a grader result: no student or notebook")
        cells = data.get("cells") or []
        if not isinstance(cells, list) or not all(isinstance(c, dict) for c in cells):
            raise ValueError("not a grader result: its cells are not a list of verdicts")
        row = data.get("row") if isinstance(data.get("row"), dict) else {}
        timing = data.get("timing")
        return cls(data["student"], data["notebook"], float(data.get("score") or 0), float(data.get("max_score") or 0),
                   Status(data.get("status")), str(data.get("message", "")), [CellVerdict.from_dict(c) for c in cells],
                   data.get("seconds") if isinstance(data.get("seconds"), (int, float)) else None,
                   dict(timing) if isinstance(timing, dict) else None, data.get("kernel"), data.get("variant"),
                   data.get("isolation", row.get("isolation")),
                   data.get("submission_sha256") if isinstance(data.get("submission_sha256"), str) else None)
