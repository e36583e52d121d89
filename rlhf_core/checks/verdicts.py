"""Verdicts: what a failing check says, in parts, and how values read in it.

A verdict is built from its parts (:func:`verdict`: title, problem, expected, got, advice), so that a
notebook can show expected and got on their own lines (:mod:`~rlhf_core.checks.render`) while
``str(exc)`` stays the one plain line the grader records. Values enter verdicts as plain numbers
(``1.5506``, ``(4, 7)``, never ``tensor(1.5506)``): through :func:`format_value` for recorded
values and :func:`plain` for anything else; a learner's exception message through :func:`shorten`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .records import serialise

__all__ = ["FAILURE_KINDS", "CheckFailed", "verdict", "shorten", "format_value", "plain"]


#: How a check can fail, as results and the class report count it: a registered mistake matched, a
#: wrong answer that matches none, an untouched stub, an exception raised on valid inputs, a record
#: the judge could not read.
FAILURE_KINDS = ("mistake", "unnamed", "not implemented", "raised", "malformed")


class CheckFailed(AssertionError):
    """A check's verdict: the message says what was expected, what came back and the likely mistake.

    ``str(exc)`` is the verdict as one plain line (what the grader records and tests read). The same
    verdict in parts, for display: ``title`` (``"✗ dpo_loss — β = 0.5"``), ``problem`` (a sentence),
    ``what`` (the quantity compared), ``expected`` and ``got`` (plain values, or None when the verdict
    has none) and ``advice`` (the likely mistake, or what to do).

    In Jupyter the verdict is all a learner sees: IPython calls ``_render_traceback_`` in place of a
    traceback through the library's internals; it displays the verdict as a short HTML block
    (:func:`~rlhf_core.checks.render.verdict_html`) and leaves one short red error line, so the cell
    still fails for nbgrader's Validate, nbval and Run All. In a terminal IPython it prints the
    verdict as wrapped plain text (:func:`~rlhf_core.checks.render.verdict_text`)."""

    def __init__(self, message: str = "", *, title: str | None = None, problem: str | None = None,
                 what: str | None = None, expected: str | None = None, got: str | None = None,
                 advice: str | None = None, kind: str = "unnamed", mistake: str | None = None):
        super().__init__(message)
        self.title, self.problem, self.what = title, problem, what
        self.expected, self.got, self.advice = expected, got, advice
        # what kind of failure, for counting (never shown): see FAILURE_KINDS; ``mistake`` the id of the
        # registered mistake it matched (``Mistake.id``, or ``sanity-N`` for a sanity check's verdict)
        self.kind, self.mistake = kind, mistake

    def _repr_html_(self) -> str:
        from .render import verdict_html

        return verdict_html(self)

    def text(self, width: int = 100) -> str:
        """The verdict as plain text wrapped to ``width`` columns, expected and got on their own lines."""
        from .render import verdict_text

        return verdict_text(self, width)

    def _render_traceback_(self) -> list[str]:
        from .render import show_failure

        return show_failure(self)


def verdict(title: str, *, problem: str = "", what: str = "", expected: str | None = None, got: str | None = None,
            advice: str = "", kind: str = "unnamed", mistake: str | None = None) -> CheckFailed:
    """A :class:`CheckFailed` whose one-line message is made of its parts, in the course's form:
    ``"{title}: {what}: {problem} expected {expected}, got {got}. {advice}"`` (the parts present)."""
    body = problem.strip()
    if expected is not None:
        values = f"expected {expected}" + (f", got {got}" if got is not None else "") + "."
        body = f"{body} {values}" if body else values
    if what:
        body = f"{what}: {body}" if body else what
    if advice:
        body = f"{body} {advice.strip()}" if body else advice.strip()
    return CheckFailed(f"{title}: {body}" if body else title, title=title, problem=problem or None,
                       what=what or None, expected=expected, got=got, advice=advice or None, kind=kind,
                       mistake=mistake)


def shorten(text: str, limit: int = 300) -> str:
    """``text`` cut to at most ``limit`` characters at a word boundary, with an ellipsis when cut."""
    text = str(text)
    if len(text) <= limit:
        return text
    cut = text[:limit - 1]
    space = cut.rfind(" ")
    if space >= limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:.-—") + "…"


def format_value(entry: dict, limit: int = 6, start: int = 0) -> str:
    """A short human rendering of a serialised value: ``0.6931`` (a 0-dim tensor reads as its number),
    ``[0.1, -2.3, …] (shape (8,))``; from flat index ``start`` on, ``[…, 0.5, 0.7, …] (shape (2, 6))``."""
    kind = entry.get("kind")
    if kind == "str":
        return repr(entry["text"])
    if kind == "none":
        return "None"
    if kind == "missing":
        return "(missing)"
    if kind == "other":
        return f"an object of type {entry['type']}"
    data, shape = entry.get("data"), tuple(entry.get("shape", []))
    if data is None:
        return f"a {entry.get('dtype')} tensor of shape {shape}"
    if kind == "bool":
        return str(bool(data[0])) if data else "?"
    if kind == "number" or (kind == "tensor" and shape == ()):
        return _fmt(data[0]) if data else "?"
    start = max(0, min(start, len(data) - limit))
    nums = [_fmt(x) for x in data[start:start + limit]]
    body = ("…, " if start else "") + ", ".join(nums) + (", …" if len(data) > start + limit else "")
    return f"[{body}] (shape {shape})"


def _fmt(x: float) -> str:
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x != 0 and (abs(x) >= 1e5 or abs(x) < 1e-3):
        return f"{x:.4g}"
    return f"{x:.4f}".rstrip("0").rstrip(".") if "." in f"{x:.4f}" else f"{x:.4f}"


def plain(value: Any, limit: int = 6) -> str:
    """A value as a learner reads it in a verdict: ``1.5506`` (not ``tensor(1.5506)``), ``(4, 7)`` for a
    shape, ``[0.1, -2.3, …] (shape (8,))`` for a tensor or an array, ``True``, ``'text'``.

    Reads tensors like :func:`serialise` does (never through a subclass's own methods); numpy scalars
    and arrays, ``torch.Size`` and nested lists or tuples of numbers are turned into numbers too."""
    kind = type(value)
    if kind is torch.Size or (kind is tuple and value and all(type(n) is int for n in value)):
        return str(tuple(int(n) for n in value))
    if issubclass(kind, Tensor):
        return format_value(serialise(value), limit)
    if kind.__module__ == "numpy" and issubclass(kind, np.ndarray) and value.dtype.kind in "biuf":
        return format_value(serialise(torch.from_numpy(np.array(value, dtype=np.float64))), limit)
    if kind in (bool, int, float) or (kind.__module__ == "numpy" and issubclass(kind, (np.floating, np.integer, np.bool_))):
        return format_value(serialise(value), limit)
    if kind in (list, tuple):
        items = [plain(v, limit) for v in value[:limit]]
        body = ", ".join(items) + (", …" if len(value) > limit else "")
        return f"[{body}]" if kind is list else f"({body}{',' if len(value) == 1 else ''})"
    return format_value(serialise(value), limit)
