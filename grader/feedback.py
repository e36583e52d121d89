"""The feedback page of one graded notebook: a score table, then the notebook as the grader ran it.

The notebook is rendered by nbconvert's HTML exporter (the ``lab`` template) with its sanitiser on
(``sanitize_html``): Markdown and math read as they do in JupyterLab — headings, tables, collapsible
hints, ``$…$`` typeset by MathJax when the reader is online (raw TeX otherwise). The page is written
for a browser that must not trust the submission, so before nbconvert sees the notebook it is
reduced to what cannot run:

* with ``sanitize_html`` the template passes rendered Markdown, code and rich outputs through its
  bleach-based ``clean_html`` filter, here with an allow-list that adds the tags lessons use
  (headings, paragraphs, tables, ``details``/``summary``, images) and no attribute that runs code;
  bleach drops ``javascript:`` links. It runs *after* Markdown is rendered, so code spans and math
  keep their ``<`` and ``&``;
* each output keeps one representation: a stream, an error (ANSI colours stripped), a PNG or JPEG
  image (checked to be base64, or replaced by a line that says so), else its plain text, else its
  HTML or Markdown (through ``clean_html``); JavaScript, SVG, widgets and unknown output types are
  left out;
* the grader's own cells (tag ``grader``) are left out.

The header says that the outputs are those of the grader's run, on the grading seeds and hidden
inputs, so they differ from what the student saw in their own run. If nbconvert fails on a
malformed notebook the page falls back to a plain, fully escaped rendering of the same cells and
says so: a grade never loses its page.
"""

from __future__ import annotations

import base64
import binascii
import functools
import html
import re

import bleach
import mistune
import nbformat

from .compose import source_text
from .result import NotebookResult

__all__ = ["feedback_html"]

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_IMAGE_TYPES = ("image/png", "image/jpeg")
_SANITISED_OUTPUT_KEYS = ("text/html", "text/markdown")
_OUTPUT_TYPES = {"stream", "error", "display_data", "execute_result"}

# What rendered Markdown and outputs may contain: the lessons' own vocabulary, nothing that runs.
_ALLOWED_TAGS = sorted({*bleach.ALLOWED_TAGS, "div", "span", "pre", "code", "p", "br", "hr", "h1", "h2", "h3", "h4",
                        "h5", "h6", "table", "thead", "tbody", "tr", "th", "td", "details", "summary", "img", "sub",
                        "sup", "del", "s", "kbd", "dl", "dt", "dd"})
_ALLOWED_ATTRIBUTES = {**bleach.ALLOWED_ATTRIBUTES, "*": ["class", "id"], "img": ["src", "alt"],
                       "td": ["align"], "th": ["align"]}
_ALLOWED_PROTOCOLS = ["http", "https", "mailto", "data"]

_HEADER_STYLE = """
.dpo-feedback { font-family: system-ui, sans-serif; max-width: 60rem; margin: 1.5rem auto; padding: 0 1rem; color: #222; }
.dpo-feedback table.verdicts { border-collapse: collapse; margin: 1rem 0; }
.dpo-feedback table.verdicts td, .dpo-feedback table.verdicts th { border: 1px solid #ccc; padding: .3rem .6rem;
  text-align: left; vertical-align: top; }
.dpo-feedback .pass { color: #17702a; } .dpo-feedback .fail { color: #b3261e; }
.dpo-feedback .note { color: #555; }
"""

# The fallback page's style (plain escaped cells, no nbconvert).
_PLAIN_STYLE = """
.cell { margin: .8rem 0; } .md { padding: 0 .5rem; }
pre { background: #f6f6f6; padding: .5rem; overflow-x: auto; white-space: pre-wrap; margin: .2rem 0; }
pre.out { background: #fff; border-left: 3px solid #ddd; } pre.err { background: #fff4f4; border-left: 3px solid #e99; }
img { max-width: 100%; }
"""


def _clean_html(element) -> str:
    """nbconvert's ``clean_html`` filter, with the course's allow-list."""
    element = element.decode() if isinstance(element, bytes) else str(element)
    return bleach.clean(element, tags=_ALLOWED_TAGS, attributes=_ALLOWED_ATTRIBUTES, protocols=_ALLOWED_PROTOCOLS)


@functools.lru_cache(maxsize=1)
def _exporter():
    """One HTML exporter per process (building one loads its templates: a few hundred ms)."""
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    config = Config()
    config.HTMLExporter.sanitize_html = True   # the lab template then passes every rendered piece through clean_html
    exporter = HTMLExporter(config=config, template_name="lab")
    exporter.register_filter("clean_html", _clean_html)
    return exporter


def _valid_image(data) -> bool:
    try:
        base64.b64decode(re.sub(r"\s", "", source_text(data)), validate=True)
        return True
    except (binascii.Error, ValueError, TypeError):
        return False


def _safe_output(out: dict) -> dict | None:
    """A copy of one output reduced to what the page may show, or ``None`` to leave it out."""
    kind = out.get("output_type")
    if kind not in _OUTPUT_TYPES:
        return None
    if kind == "stream":
        return nbformat.v4.new_output("stream", name="stderr" if out.get("name") == "stderr" else "stdout",
                                      text=source_text(out.get("text")))
    if kind == "error":
        trace = [_ANSI.sub("", str(line)) for line in out.get("traceback") or []]
        return nbformat.v4.new_output("error", ename=str(out.get("ename", "")), evalue=str(out.get("evalue", "")),
                                      traceback=trace or [f"{out.get('ename')}: {out.get('evalue')}"])
    data = out.get("data") if isinstance(out.get("data"), dict) else {}
    # one representation, the first of: an image, plain text, then HTML or Markdown (sanitised by the template)
    image = next((mime for mime in _IMAGE_TYPES if mime in data), None)
    if image is not None:
        if not _valid_image(data[image]):
            return nbformat.v4.new_output("stream", name="stderr",
                                          text="[an image output that is not valid base64 was left out]\n")
        return nbformat.v4.new_output("display_data", data={image: re.sub(r"\s", "", source_text(data[image]))})
    text = next((mime for mime in ("text/plain", *_SANITISED_OUTPUT_KEYS) if mime in data), None)
    return None if text is None else nbformat.v4.new_output("display_data", data={text: source_text(data[text])})


def _safe_notebook(nb) -> nbformat.NotebookNode:
    """The notebook the page shows: the grader's cells left out, every output reduced by :func:`_safe_output`."""
    cells = []
    for cell in nb.cells:
        if "grader" in (cell.get("metadata", {}).get("tags") or []):
            continue
        source = source_text(cell.get("source"))
        kind = cell.get("cell_type")
        if kind == "markdown":
            cells.append(nbformat.v4.new_markdown_cell(source))
        elif kind == "code":
            new = nbformat.v4.new_code_cell(source)
            new.outputs = [o for o in (_safe_output(dict(out)) for out in cell.get("outputs") or []
                                       if isinstance(out, dict)) if o is not None]
            cells.append(new)
        else:   # raw and unknown cells: shown as text
            cells.append(nbformat.v4.new_code_cell(source))
    return nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                          "language": "python"},
                                                           "language_info": {"name": "python"}})


def _header(result: NotebookResult) -> str:
    esc = html.escape
    rows = "".join(
        f"<tr><td><code>{esc(c.grade_id)}</code></td>"
        f"<td class=\"{'pass' if c.passed else 'fail'}\">{'✓' if c.passed else '✗'}</td>"
        f"<td>{c.score:g}/{c.max_score:g}</td><td>{esc(c.message)}</td></tr>"
        for c in result.cells)
    return (f"<div class=\"dpo-feedback\"><h1>Feedback: {esc(result.notebook)} ({esc(result.student)})</h1>"
            f"<p><strong>Score: {result.score:g} / {result.max_score:g}</strong> — status: {esc(str(result.status))} — "
            f"{esc(result.message)}</p>"
            f"<table class=\"verdicts\"><tr><th>check</th><th></th><th>points</th><th>verdict</th></tr>{rows}</table>"
            f"<p class=\"note\">Below is the notebook as the grader ran it: the check cells ran on the grading seeds "
            f"and hidden inputs, so their outputs (and any that depend on them) differ from what you saw in your own "
            f"run.</p></div><hr>")


_markdown = mistune.create_markdown(escape=True, plugins=["table", "strikethrough"])


def _plain_cells(nb) -> str:
    """Every cell escaped, no nbconvert: the fallback for a notebook the exporter cannot render."""
    parts = []
    for cell in nb.cells:
        source = source_text(cell.get("source"))
        if cell.get("cell_type") == "markdown":
            parts.append(f'<div class="cell md">{_markdown(source)}</div>')
            continue
        outputs = []
        for out in cell.get("outputs") or []:
            if out.get("output_type") == "stream":
                outputs.append(f'<pre class="out">{html.escape(source_text(out.get("text")))}</pre>')
            elif out.get("output_type") == "error":
                outputs.append(f'<pre class="err">{html.escape(chr(10).join(out.get("traceback") or []))}</pre>')
            elif "text/plain" in (out.get("data") or {}):
                outputs.append(f'<pre class="out">{html.escape(source_text(out["data"]["text/plain"]))}</pre>')
            else:
                for mime in _IMAGE_TYPES:
                    if mime in (out.get("data") or {}):
                        outputs.append(f'<img alt="a figure from the notebook" src="data:{mime};base64,'
                                       f'{out["data"][mime]}">')
        parts.append(f'<div class="cell"><pre>{html.escape(source)}</pre>{"".join(outputs)}</div>')
    return "".join(parts)


def feedback_html(result: NotebookResult, nb) -> str:
    """The page for ``result`` and its graded notebook ``nb``."""
    safe = _safe_notebook(nb)
    title = html.escape(f"Feedback: {result.notebook} ({result.student})")
    header = _header(result)
    try:
        body, _ = _exporter().from_notebook_node(safe)
    except Exception as exc:  # a notebook nbconvert cannot render still gets its page
        why = html.escape(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:200])
        return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>"
                f"<style>{_HEADER_STYLE}{_PLAIN_STYLE}</style></head><body>{header}"
                f"<p class=\"note\">The notebook could not be rendered with nbconvert ({why}); its cells are shown "
                f"as plain text.</p>{_plain_cells(safe)}</body></html>\n")
    body = re.sub(r"<title>.*?</title>", f"<title>{title}</title>", body, count=1, flags=re.S)
    body = body.replace("</head>", f"<style>{_HEADER_STYLE}</style></head>", 1)
    match = re.search(r"<main[^>]*>", body) or re.search(r"<body[^>]*>", body)
    return body[:match.end()] + header + body[match.end():]
