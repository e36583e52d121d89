"""The drill's scorecard: what the learner's functions actually do, the time per block, the rubric and the red flags.

:func:`score_attempt` is what :meth:`rlhf_core.course.drill.Drill.scorecard` runs; it never raises. The same code
scores every variant: the record of the drill's paper says which exercises it has, which function trains the toy
and which sanity plan runs. A :class:`Scorecard` is a dict (``sanity``, ``checks``, ``blocks``, ``rubric``,
``red_flags``, ``diagnosis``) whose :meth:`~Scorecard.save` appends the attempt to the local history
(:mod:`rlhf_core.course.drill_history`).
"""

from __future__ import annotations

import datetime
import html
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

__all__ = ["Scorecard", "score_attempt", "render_scorecard", "render_scorecard_html", "explanation_written",
           "attempt_evidence", "FORGOT_REFERENCE"]

#: The red flag raised by code, not by a sentence: a loss of a reference-based variant without the reference term.
FORGOT_REFERENCE = RaisedFlag("forgot the reference term in the loss",
                              "the loss compares log-ratios against the frozen reference: (log π − log π_ref) for each "
                              "response")


class Scorecard(dict):
    """The drill's scorecard: the dict :meth:`Drill.scorecard` always returned, plus :meth:`save`.

    In a notebook it shows as HTML tables (``_repr_html_``); ``str(card)`` and IPython in a terminal give the same
    card as plain text (:attr:`text`). :attr:`evidence` says what was written in this run; a run with none (a Run
    All of the untouched lesson) is not an attempt, and :meth:`save` keeps it only when forced."""

    total_seconds: float = 0.0
    text: str = ""
    html: str = ""
    variant: str = DEFAULT_VARIANT
    seed: int | None = None
    left_out: str | None = None
    rubric_items: tuple[str, ...] = VARIANTS[DEFAULT_VARIANT].rubric
    evidence: tuple[str, ...] = ()
    on_save: Callable[[], None] | None = None     # the drill's: told when this attempt is kept

    @property
    def is_attempt(self) -> bool:
        """Whether this run is an attempt: an exercise implemented (its function no longer raises
        NotImplementedError), EXPLANATION written, a rubric item graded or the diagnosis answered."""
        return bool(self.evidence)

    def __str__(self) -> str:
        return self.text

    def _repr_pretty_(self, p, cycle) -> None:   # IPython in a terminal
        p.text(self.text)

    def _repr_html_(self) -> str:
        return self.html

    def record(self, saved_at: datetime.datetime | None = None) -> dict:
        """The attempt as one JSON-able dict (what :meth:`save` appends to ``history.jsonl``)."""
        saved_at = saved_at or datetime.datetime.now(datetime.timezone.utc)
        return {
            "version": 2,
            "saved_at": saved_at.isoformat(timespec="seconds"),
            "variant": self.variant,
            "seed": self.seed,
            "left_out": self.left_out,
            "real": self.is_attempt,
            "evidence": list(self.evidence),
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

    def save(self, path: str | os.PathLike | None = None, *, force: bool = False) -> Path | None:
        """Append this attempt to the drill history in :func:`~rlhf_core.course.drill_history.history_dir` (``path``
        overrides it): one JSON line in ``history.jsonl`` and the rendered card as ``attempt-<id>.md``.

        A run in which nothing was written (:attr:`is_attempt` false: every exercise still a stub, no explanation,
        no rubric graded) is not kept unless ``force=True``, and a forced one still does not count when the next
        paper is drawn. Returns the directory, or ``None`` (with a sentence saying why) when nothing was written."""
        if not self.is_attempt and not force:
            print("Not saved: nothing was written in this run (every exercise still raises NotImplementedError, "
                  "EXPLANATION is empty, no rubric item is graded), so it is not an attempt and stays out of your "
                  "history. card.save(force=True) keeps it anyway.")
            return None
        where = append_attempt(self.record(), self.text, path)
        if where is not None and self.on_save is not None:
            self.on_save()
        return where


def toy_failed(results: list, trained_with: str, error: str) -> None:
    """Say in checks 2 and 5 (those that apply) that the toy run they read could not be trained."""
    for r in results:
        if r.number in (2, 5) and r.applies:
            r.message = f"✗ sanity check {r.number} — not run: training the toy policy with {trained_with} failed ({error})"


def _stronger_checks(exercises: tuple[str, ...], yours: dict[str, Callable | None]
                     ) -> tuple[dict[str, tuple[bool, str]], list[str]]:
    """``({exercise: (passed, message)}, the exercises implemented)``: a function that still raises
    NotImplementedError (a stub, or a name whose cell was not run) is not implemented."""
    stronger, implemented = {}, []
    for name in exercises:
        if yours.get(name) is None:
            continue
        try:
            check(EXERCISES[name], yours[name], quiet=True)
            stronger[name] = (True, "passed")
        except CheckFailed as exc:
            stronger[name] = (False, str(exc))
            if getattr(exc, "kind", "") == "not implemented":
                continue
        implemented.append(name)
    return stronger, implemented


#: The lines of an unanswered ``EXPLANATION``: the released stub's placeholder.
_STUB_LINES = {"# YOUR CODE HERE", "raise NotImplementedError()", "raise NotImplementedError"}


def explanation_written(explanation: str | None) -> bool:
    """Whether ``EXPLANATION`` holds an answer: anything but blank lines and the released stub's placeholder."""
    return any(line.strip() and line.strip() not in _STUB_LINES for line in str(explanation or "").splitlines())


def attempt_evidence(implemented: list[str], explanation: str, rubric: dict, diagnosis: object) -> tuple[str, ...]:
    """What makes a run an attempt, one phrase each: exercises implemented, EXPLANATION written, rubric graded,
    diagnosis answered. Empty for a Run All of the untouched lesson."""
    return (tuple(f"{name} implemented" for name in implemented)
            + (("EXPLANATION written",) if explanation_written(explanation) else ())
            + (("rubric graded",) if any(v is not None for v in (rubric or {}).values()) else ())
            + (("diagnosis answered",) if diagnosis is not None else ()))


def score_attempt(drill: Any, rubric: dict[str, bool | None] | None, explanation: str,
                  yours: dict[str, Callable | None]) -> Scorecard:
    """The scorecard of ``drill`` (a :class:`~rlhf_core.course.drill.Drill`) on the learner's functions ``yours`` (by
    exercise name); never raises."""
    v = drill.variant
    toy_result, trained_with, toy_error = drill.learners_toy(yours)
    sanity = run_variant_sanity(v, yours.get(v.exercise), yours.get(SHARED_EXERCISE), toy_result, quiet=True)
    if toy_error:
        toy_failed(sanity, trained_with, toy_error)
    stronger, implemented = _stronger_checks(v.exercises, yours)
    flags = drill.red_flags(explanation)
    forgot_reference = v.uses_reference and (
        any("reference term" in r.message for r in sanity if not r.passed)
        or any("drop log π_ref" in msg or "reference term" in msg for ok, msg in stronger.values() if not ok))
    if forgot_reference:
        flags.append(FORGOT_REFERENCE)
    card = Scorecard(sanity=sanity, checks=stronger, blocks=drill.block_times(), rubric=dict(rubric or {}),
                     red_flags=flags, diagnosis=drill.diagnosis)
    card.variant, card.seed, card.left_out, card.rubric_items = v.key, drill.seed, drill.left_out, v.rubric
    card.evidence = attempt_evidence(implemented, explanation, card["rubric"], drill.diagnosis)
    card.total_seconds, card.text = drill.elapsed(), render_scorecard(drill, card)
    card.html = render_scorecard_html(drill, card)
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
    if isinstance(card, Scorecard):
        lines += ["", _attempt_line(card)]
    return "\n".join(lines)


def _attempt_line(card: Scorecard) -> str:
    if card.is_attempt:
        return f"This run is an attempt ({', '.join(card.evidence)}): card.save() keeps it."
    return ("This run is not an attempt: nothing was written (every exercise still a stub, no EXPLANATION, no rubric "
            "graded), so card.save() does not keep it.")


_STYLE_TABLE = "border-collapse: collapse; margin: 0.2em 0 0.8em 0;"
_STYLE_CELL = "text-align: left; vertical-align: top; padding: 2px 12px 2px 0; white-space: normal;"
_STYLE_WRAP = _STYLE_CELL + " max-width: 46em; overflow-wrap: break-word;"
_MARKS = {"✓": "#1a7f37", "✗": "#cf222e", "?": "#777", "–": "#777"}


def _unmarked(message: str, prefix: str) -> str:
    """A verdict without the mark its table row already shows in a column of its own."""
    return message[len(prefix):] if message.startswith(prefix) else message


def _mark(symbol: str) -> str:
    return f"<span style='color: {_MARKS.get(symbol, '#000')}; font-weight: bold;'>{html.escape(symbol)}</span>"


def _table(head: list[str], rows: list[list[str]], wrap_last: bool = True) -> str:
    """An HTML table; cells are HTML already (escape text before), the last column may wrap."""
    th = "".join(f"<th style='{_STYLE_CELL} white-space: nowrap;'>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td style='{_STYLE_WRAP if wrap_last and k == len(row) - 1 else _STYLE_CELL}'>"
                                    f"{c}</td>" for k, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table style='{_STYLE_TABLE}'><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def render_scorecard_html(drill: Any, card: Scorecard) -> str:
    """The scorecard as HTML tables, for a notebook: the same rows as :func:`render_scorecard`'s text (variant, time
    per block, sanity and stronger checks with their messages, rubric, diagnosis, red flags), wrapping at the
    notebook's width; ✓ and ✗ the only symbols."""
    e = html.escape
    v = drill.variant
    seed = f", drawn with seed {drill.seed}" if drill.seed is not None else ""
    parts = ["<div class='rlhf-drill-scorecard'><h3 style='margin-top: 0.2em;'>Drill scorecard</h3>",
             f"<p><b>variant:</b> {e(v.title)} ({e(str(v.citation.year))}){e(seed)} &nbsp;·&nbsp; "
             f"<b>total time</b> {format_minutes(drill.elapsed())} (budget 60:00)</p>"]
    rows = []
    for name, budget, spent in card["blocks"]:
        if spent is None:
            rows.append([e(name), "—", f"{budget}:00", "not started"])
        else:
            rows.append([e(name), format_minutes(spent), f"{budget}:00",
                         "<b style='color: #cf222e;'>over budget</b>" if spent > budget * 60 else "ok"])
    parts += ["<h4>Time per block</h4>", _table(["block", "spent", "budget", ""], rows, wrap_last=False)]
    applying = [r for r in card["sanity"] if r.applies]
    left = len(card["sanity"]) - len(applying)
    title = (f"The six sanity checks: {sum(r.passed for r in applying)}/6" if not left else
             f"The sanity checks: {sum(r.passed for r in applying)}/{len(applying)} "
             f"({left} of the six does not apply to this variant)")
    rows = [[_mark("–" if not r.applies else "✓" if r.passed else "✗"), str(r.number), e(r.name),
             e(_unmarked(r.message, f"✗ sanity check {r.number} — ")) if r.applies and not r.passed else ""]
            for r in card["sanity"]]
    parts += [f"<h4>{e(title)}</h4>", _table(["", "#", "check", "what went wrong"], rows)]
    rows = [[_mark("✓" if ok else "✗"), f"<code>check_{e(name)}</code>", "" if ok else e(_unmarked(message, "✗ "))]
            for name, (ok, message) in card["checks"].items()]
    parts += ["<h4>Stronger checks (catch what the six miss)</h4>",
              _table(["", "check", "what went wrong"], rows) if rows else "<p>none run</p>"]
    rows = []
    for item in v.rubric:
        value = card["rubric"].get(item)
        rows.append([_mark("✓" if value is True else "✗" if value is False else "?"), e(item)])
    parts += ["<h4>Rubric (self-graded: set each item to True or False in RUBRIC)</h4>", _table(["", "item"], rows)]
    judged = card.get("diagnosis")
    if judged is not None:
        parts += [f"<h4>Diagnosis round ({e(str(judged.case))}): {judged.points}/2</h4>",
                  "".join(f"<p>{e(line)}</p>" for line in judged.text.splitlines()[:2])]
    parts.append("<h4>Red flags</h4>")
    if not card["red_flags"]:
        parts.append("<p>none found</p>")
    else:
        quoted = any(getattr(found, "sentence", "") for found in card["red_flags"])
        rows = [[e(flag), e(instead)] + ([f"“{e(found.sentence)}”" if getattr(found, "sentence", "") else ""]
                                         if quoted else [])
                for found in card["red_flags"] for flag, instead in [found]]
        parts.append(_table(["red flag", "what to say instead"] + (["you wrote"] if quoted else []), rows))
    parts.append(f"<p><i>{e(_attempt_line(card))}</i></p></div>")
    return "".join(parts)
