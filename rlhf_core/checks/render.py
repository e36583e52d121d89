"""How a verdict looks: a short HTML block in a notebook, wrapped plain text in a terminal.

A :class:`~rlhf_core.checks.verdicts.CheckFailed` carries its verdict twice: as its message, one
plain line (what the grader records, what ``str(exc)`` and tests read), and as parts — ``title``
(``"✗ dpo_loss — β = 0.5"``), ``problem``, ``what`` (the quantity compared), ``expected``, ``got``
and ``advice`` — from which this module draws the two renderings:

* :func:`verdict_html`: the title, the problem, then ``expected`` and ``got`` on their own lines,
  then the advice. Every part is passed through :func:`html.escape` (a learner's repr or exception
  message may hold ``<script>``); text between backticks becomes ``<code>`` after escaping.
* :func:`verdict_text`: the same lines in plain text, wrapped to ``width`` columns at word boundaries.

:func:`in_notebook` tells a kernel with a display (JupyterLab, Colab, VS Code, nbclient) from a
terminal; :func:`show_failure` is what ``CheckFailed._render_traceback_`` calls there.
"""

from __future__ import annotations

import html
import re
import sys
import textwrap
from typing import Any

__all__ = ["in_notebook", "verdict_html", "verdict_text", "show_failure", "WIDTH"]

WIDTH = 100  # columns of the plain-text rendering
_LABEL = {"expected": "expected", "got": "got"}
_BOX = ("border-left:4px solid #d32f2f;padding:.35em .8em;margin:.25em 0;line-height:1.5;"
        "font-family:var(--jp-content-font-family,system-ui,sans-serif);white-space:normal")
_MUTED = "opacity:.72"
_KEY = "display:inline-block;min-width:5.5em;opacity:.72"


def in_notebook() -> bool:
    """Whether this runs in an IPython *kernel* (a notebook frontend can show HTML), not a terminal.

    IPython is never imported here: a plain Python process has no shell, whatever is installed."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:
        return False
    return shell is not None and getattr(shell, "kernel", None) is not None


def _parts(exc: Any) -> dict[str, str | None]:
    """The parts of a verdict; a message without them is split into title and problem at its first ': '."""
    message = str(exc)
    title = getattr(exc, "title", None)
    parts = {key: getattr(exc, key, None) for key in ("problem", "what", "expected", "got", "advice")}
    if not title:
        head, sep, rest = message.partition(": ")
        title, parts = (head, {**parts, "problem": rest}) if sep and len(head) <= 120 else (message, parts)
    return {"title": title, **parts}


def _code(escaped: str) -> str:
    """`text` between backticks as <code> (applied after escaping, so it cannot open any other tag)."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)


def verdict_html(exc: Any) -> str:
    """The verdict as a short HTML block; every part is escaped."""
    parts = _parts(exc)
    esc = lambda text: _code(html.escape(str(text)))  # noqa: E731
    rows = [f'<div style="font-weight:600">{esc(parts["title"])}</div>']
    if parts["problem"]:
        rows.append(f"<div>{esc(parts['problem'])}</div>")
    if parts["what"]:
        rows.append(f'<div style="{_MUTED}">{esc(parts["what"])}</div>')
    for key in ("expected", "got"):
        if parts[key] is not None:
            rows.append(f'<div><span style="{_KEY}">{_LABEL[key]}</span>'
                        f"<code>{html.escape(str(parts[key]))}</code></div>")
    if parts["advice"]:
        rows.append(f'<div style="margin-top:.3em">{esc(parts["advice"])}</div>')
    return f'<div class="rlhf-verdict" style="{_BOX}">' + "".join(rows) + "</div>"


def _wrap(text: str, width: int, indent: str = "  ", first: str | None = None) -> list[str]:
    return textwrap.wrap(str(text), width=width, initial_indent=indent if first is None else first,
                         subsequent_indent=indent, break_long_words=False, break_on_hyphens=False) or [indent.rstrip()]


def verdict_text(exc: Any, width: int = WIDTH) -> str:
    """The verdict as plain text: the title, then one part a line (expected/got aligned), wrapped to ``width``."""
    parts = _parts(exc)
    lines = _wrap(parts["title"], width, indent="  ", first="")
    if parts["problem"]:
        lines += _wrap(parts["problem"], width)
    if parts["what"]:
        lines += _wrap(parts["what"], width)
    for key in ("expected", "got"):
        if parts[key] is not None:
            label = f"  {_LABEL[key] + ':':<10}"
            lines += _wrap(parts[key], width, indent=" " * len(label), first=label)
    if parts["advice"]:
        lines += _wrap(parts["advice"], width)
    return "\n".join(lines)


def show_failure(exc: Any) -> list[str]:
    """What IPython shows for a failed check, in place of a traceback (``_render_traceback_``).

    In a notebook: the HTML block (with :func:`verdict_text` as its text/plain fallback) is displayed
    once, and the error line is short. In a terminal IPython: the wrapped plain text, in red."""
    red = lambda text: f"\x1b[31m{text}\x1b[0m"  # noqa: E731
    name = type(exc).__name__
    if in_notebook():
        if not getattr(exc, "_shown", False):   # IPython renders a traceback twice (shown, then stored)
            try:
                from IPython.display import display

                display({"text/html": verdict_html(exc), "text/plain": verdict_text(exc)}, raw=True)
                exc._shown = True
            except Exception:  # no display after all: the whole verdict goes in the error line
                return [red(f"{name}: {verdict_text(exc)}")]
        return [red(f"{name}: {_parts(exc)['title']} (the verdict is above)")]
    return [red(f"{name}: {verdict_text(exc)}")]
