"""The feedback page of one graded notebook: a score table, then the notebook as it ran.

The page is written for a browser that must not trust the submission: every piece of text from
the notebook (code, markdown, outputs, error messages) is HTML-escaped, markdown is rendered with
raw HTML escaped, and the only rich outputs kept are PNG and JPEG images (already capped by the
grader). No script, style or HTML from a submission reaches the page. It is also quick to build
(milliseconds, where nbconvert's exporter takes a few hundred), which matters when a class is graded.
"""

from __future__ import annotations

import base64
import binascii
import html
import re

import mistune

from .compose import source_text

__all__ = ["feedback_html"]

_markdown = mistune.create_markdown(escape=True, plugins=["table", "strikethrough"])
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_IMAGE_TYPES = ("image/png", "image/jpeg")

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
table.verdicts { border-collapse: collapse; margin: 1rem 0; }
table.verdicts td, table.verdicts th { border: 1px solid #ccc; padding: .3rem .6rem; text-align: left; vertical-align: top; }
.pass { color: #17702a; } .fail { color: #b3261e; }
.cell { margin: .8rem 0; } .md { padding: 0 .5rem; }
pre { background: #f6f6f6; padding: .5rem; overflow-x: auto; white-space: pre-wrap; margin: .2rem 0; }
pre.out { background: #fff; border-left: 3px solid #ddd; } pre.err { background: #fff4f4; border-left: 3px solid #e99; }
img { max-width: 100%; }
"""


def _output(out) -> str:
    kind = out.get("output_type")
    if kind == "stream":
        css = "err" if out.get("name") == "stderr" else "out"
        return f'<pre class="{css}">{html.escape(source_text(out.get("text")))}</pre>'
    if kind == "error":
        trace = _ANSI.sub("", "\n".join(out.get("traceback") or [])) or f"{out.get('ename')}: {out.get('evalue')}"
        return f'<pre class="err">{html.escape(trace)}</pre>'
    if kind in ("display_data", "execute_result"):
        data = out.get("data") or {}
        for mime in _IMAGE_TYPES:
            if mime in data:
                payload = re.sub(r"\s", "", source_text(data[mime]))
                try:
                    base64.b64decode(payload, validate=True)
                except (binascii.Error, ValueError):
                    return '<pre class="err">[an image output that is not valid base64 was left out]</pre>'
                return f'<img alt="a figure from the notebook" src="data:{mime};base64,{payload}">'
        if "text/plain" in data:
            return f'<pre class="out">{html.escape(source_text(data["text/plain"]))}</pre>'
    return ""


def _cell(cell) -> str:
    source = source_text(cell.get("source"))
    if cell.get("cell_type") == "markdown":
        return f'<div class="cell md">{_markdown(source)}</div>'
    if cell.get("cell_type") != "code":
        return f'<div class="cell"><pre>{html.escape(source)}</pre></div>'
    outputs = "".join(_output(o) for o in cell.get("outputs") or [])
    return f'<div class="cell"><pre>{html.escape(source)}</pre>{outputs}</div>'


def feedback_html(result: dict, nb) -> str:
    """The page for ``result`` (the grader's result dict) and its graded notebook ``nb``."""
    esc = html.escape
    rows = "".join(
        f"<tr><td><code>{esc(c['grade_id'])}</code></td>"
        f"<td class=\"{'pass' if c['passed'] else 'fail'}\">{'✓' if c['passed'] else '✗'}</td>"
        f"<td>{c['score']:g}/{c['max_score']:g}</td><td>{esc(c['message'])}</td></tr>"
        for c in result["cells"])
    cells = "".join(_cell(c) for c in nb.cells if "grader" not in c.get("metadata", {}).get("tags", []))
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>Feedback: {esc(result['notebook'])} ({esc(result['student'])})</title><style>{_STYLE}</style></head><body>"
            f"<h1>Feedback: {esc(result['notebook'])} ({esc(result['student'])})</h1>"
            f"<p><strong>Score: {result['score']:g} / {result['max_score']:g}</strong> — status: {esc(result['status'])} — "
            f"{esc(result['message'])}</p>"
            f"<table class=\"verdicts\"><tr><th>check</th><th></th><th>points</th><th>verdict</th></tr>{rows}</table>"
            f"<hr>{cells}</body></html>\n")
