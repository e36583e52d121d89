"""The drill's scorecard: what the learner's functions actually do, the time per block, the rubric and the red flags.

:func:`score_attempt` is what :meth:`rlhf_core.course.drill.Drill.scorecard` runs; it never raises. The same code
scores every variant: the record of the drill's paper says which exercises it has, which function trains the toy
and which sanity plan runs. A :class:`Scorecard` is a dict (``sanity``, ``checks``, ``blocks``, ``rubric``,
``red_flags``, ``diagnosis``) whose :meth:`~Scorecard.save` appends the attempt to the local history
(:mod:`rlhf_core.course.drill_history`).
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..checks import EXERCISES, CheckFailed, check
from .drill_clock import format_minutes
from .drill_history import append_attempt
from .red_flags import RaisedFlag
from .variant_sanity import run_variant_sanity
from .variant_types import SHARED_EXERCISE
from .variants import DEFAULT_VARIANT, VARIANTS

__all__ = ["Scorecard", "score_attempt", "render_scorecard", "FORGOT_REFERENCE"]

#: The red flag raised by code, not by a sentence: a loss of a reference-based variant without the reference term.
FORGOT_REFERENCE = RaisedFlag("forgot the reference term in the loss",
                              "the loss compares log-ratios against the frozen reference: (log π − log π_ref) for each "
                              "response")


class Scorecard(dict):
    """The drill's scorecard: the dict :meth:`Drill.scorecard` always returned, plus :meth:`save`."""

    total_seconds: float = 0.0
    text: str = ""
    variant: str = DEFAULT_VARIANT
    seed: int | None = None
    left_out: str | None = None
    rubric_items: tuple[str, ...] = VARIANTS[DEFAULT_VARIANT].rubric

    def record(self, saved_at: datetime.datetime | None = None) -> dict:
        """The attempt as one JSON-able dict (what :meth:`save` appends to ``history.jsonl``)."""
        saved_at = saved_at or datetime.datetime.now(datetime.timezone.utc)
        return {
            "version": 1,
            "saved_at": saved_at.isoformat(timespec="seconds"),
            "variant": self.variant,
            "seed": self.seed,
            "left_out": self.left_out,
            "total_seconds": round(float(self.total_seconds), 1),
            "blocks": {name: (None if spent is None else round(float(spent), 1)) for name, _, spent in self["blocks"]},
            "sanity": [{"number": r.number, "name": r.name, "passed": bool(r.passed), "applies": bool(r.applies)}
                       for r in self["sanity"]],
            "checks": {name: bool(ok) for name, (ok, _) in self["checks"].items()},
            "rubric": {item: value for item, value in self["rubric"].items()},
            "red_flags": [flag for flag, _ in self["red_flags"]],
            "red_flag_sentences": [getattr(found, "sentence", "") for found in self["red_flags"]],
            "diagnosis": (None if self.get("diagnosis") is None else
                          {"case": self["diagnosis"].case, "points": self["diagnosis"].points}),
        }

    def save(self, path: str | os.PathLike | None = None) -> Path | None:
        """Append this attempt to the drill history in :func:`~rlhf_core.course.drill_history.history_dir` (``path``
        overrides it): one JSON line in ``history.jsonl`` and the rendered card as ``attempt-<UTC time>.md``.
        Returns the directory, or ``None`` (with a one-line explanation) when it cannot be written."""
        return append_attempt(self.record(), self.text, path)


def toy_failed(results: list, trained_with: str, error: str) -> None:
    """Say in checks 2 and 5 (those that apply) that the toy run they read could not be trained."""
    for r in results:
        if r.number in (2, 5) and r.applies:
            r.message = f"✗ sanity check {r.number} — not run: training the toy policy with {trained_with} failed ({error})"


def _stronger_checks(exercises: tuple[str, ...], yours: dict[str, Callable | None]) -> dict[str, tuple[bool, str]]:
    stronger = {}
    for name in exercises:
        if yours.get(name) is None:
            continue
        try:
            check(EXERCISES[name], yours[name], quiet=True)
            stronger[name] = (True, "passed")
        except CheckFailed as exc:
            stronger[name] = (False, str(exc))
    return stronger


def score_attempt(drill: Any, rubric: dict[str, bool | None] | None, explanation: str,
                  yours: dict[str, Callable | None]) -> Scorecard:
    """The scorecard of ``drill`` (a :class:`~rlhf_core.course.drill.Drill`) on the learner's functions ``yours`` (by
    exercise name); never raises."""
    v = drill.variant
    toy_result, trained_with, toy_error = drill.learners_toy(yours)
    sanity = run_variant_sanity(v, yours.get(v.exercise), yours.get(SHARED_EXERCISE), toy_result, quiet=True)
    if toy_error:
        toy_failed(sanity, trained_with, toy_error)
    stronger = _stronger_checks(v.exercises, yours)
    flags = drill.red_flags(explanation)
    forgot_reference = v.uses_reference and (
        any("reference term" in r.message for r in sanity if not r.passed)
        or any("drop log π_ref" in msg or "reference term" in msg for ok, msg in stronger.values() if not ok))
    if forgot_reference:
        flags.append(FORGOT_REFERENCE)
    card = Scorecard(sanity=sanity, checks=stronger, blocks=drill.block_times(), rubric=dict(rubric or {}),
                     red_flags=flags, diagnosis=drill.diagnosis)
    card.variant, card.seed, card.left_out, card.rubric_items = v.key, drill.seed, drill.left_out, v.rubric
    card.total_seconds, card.text = drill.elapsed(), render_scorecard(drill, card)
    return card


def _render_checks(card: dict) -> list[str]:
    applying = [r for r in card["sanity"] if r.applies]
    passed = sum(r.passed for r in applying)
    left = len(card["sanity"]) - len(applying)
    lines = ["", f"The six sanity checks: {passed}/6" if not left else
             f"The sanity checks: {passed}/{len(applying)} ({left} of the six does not apply to this variant)"]
    for r in card["sanity"]:
        lines.append(f"  {'–' if not r.applies else '✓' if r.passed else '✗'} {r.number}. {r.name}")
        if r.applies and not r.passed:
            lines.append(f"       {r.message}")
    lines += ["", "Stronger checks (catch what the six miss)"]
    for name, (ok, message) in card["checks"].items():
        lines.append(f"  {'✓' if ok else '✗'} check_{name}")
        if not ok:
            lines.append(f"       {message}")
    return lines


def render_scorecard(drill: Any, card: dict) -> str:
    """The scorecard as plain text: variant, time per block, sanity and stronger checks, rubric, diagnosis, red flags
    (each with the sentence that raised it)."""
    v = drill.variant
    lines = ["DRILL SCORECARD", "=" * 15, f"variant: {v.title} ({v.citation.year})"
             + (f", drawn with seed {drill.seed}" if drill.seed is not None else ""),
             f"total time {format_minutes(drill.elapsed())} (budget 60:00)", "", "Time per block"]
    for name, budget, spent in card["blocks"]:
        if spent is None:
            lines.append(f"  {name:<13} not started")
        else:
            mark = "over budget" if spent > budget * 60 else "ok"
            lines.append(f"  {name:<13} {format_minutes(spent):>6} of {budget}:00  {mark}")
    lines += _render_checks(card)
    lines += ["", "Rubric (self-graded: set each item to True or False in RUBRIC)"]
    for item in v.rubric:
        value = card["rubric"].get(item)
        lines.append(f"  {'✓' if value is True else '✗' if value is False else '?'} {item}")
    judged = card.get("diagnosis")
    if judged is not None:
        lines += ["", f"Diagnosis round ({judged.case}): {judged.points}/2"]
        lines += [f"  {line}" for line in judged.text.splitlines()[:2]]
    lines += ["", "Red flags"]
    if not card["red_flags"]:
        lines.append("  none found")
    for found in card["red_flags"]:
        flag, instead = found
        lines.append(f"  ⚠ {flag} — {instead}")
        if getattr(found, "sentence", ""):
            lines.append(f"       you wrote: “{found.sentence}”")
    return "\n".join(lines)
