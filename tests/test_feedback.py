"""The feedback page renders the notebook with nbconvert (Markdown, math, hints) and lets nothing a submission
wrote run in the reader's browser: no script, event handler or javascript: link, only PNG/JPEG images."""

import base64

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from grader.feedback import feedback_html
from grader.result import NotebookResult

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 16).decode()
RESULT = NotebookResult.from_json({"student": "ada<script>", "notebook": "02_bradley_terry_and_dpo_loss", "score": 3.0, "max_score": 5.0,
          "status": "graded", "message": "1 of 2 checks passed; first failure, <b>check_x</b>: wrong",
          "cells": [{"grade_id": "check_dpo_loss", "passed": True, "score": 3.0, "max_score": 3.0, "message": "ok"},
                    {"grade_id": "check_implicit_reward", "passed": False, "score": 0.0, "max_score": 2.0,
                     "message": "expected 0.5, got <img src=x onerror=alert(1)>"}]})


def page(cells):
    return feedback_html(RESULT, new_notebook(cells=cells))


def test_scores_and_verdicts_are_on_the_page():
    html = page([])
    assert "Score: 3 / 5" in html and "check_implicit_reward" in html and "3/3" in html and "0/2" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "<img src=x" not in html
    assert "ada&lt;script&gt;" in html and "<b>check_x</b>" not in html


def test_code_outputs_and_markdown_from_the_submission_are_escaped():
    cell = new_code_cell("print('<script>alert(1)</script>')", outputs=[
        new_output("stream", name="stdout", text="<script>alert(2)</script>\n"),
        new_output("display_data", data={"text/html": "<script>alert(3)</script>", "text/plain": "<HTML object>"}),
        new_output("error", ename="ValueError", evalue="x", traceback=["\x1b[31mValueError\x1b[0m: <iframe>"]),
    ])
    md = new_markdown_cell("# Title\n\n<script>alert(4)</script> and [a link](javascript:alert(5))")
    html = page([md, cell])
    assert "<script>alert" not in html and "<iframe>" not in html and "href=\"javascript" not in html
    assert "&lt;HTML object&gt;" in html                     # rich HTML falls back to its plain text
    assert "ValueError</span>" not in html and "ValueError: &lt;iframe&gt;" in html   # ANSI colours stripped
    assert '<h1 id="Title">Title' in html                    # markdown is still rendered


def test_images_are_kept_and_broken_images_are_said_to_be_left_out():
    good = new_code_cell("plot()", outputs=[new_output("display_data", data={"image/png": PNG, "text/plain": "<Figure>"})])
    bad = new_code_cell("plot()", outputs=[new_output("display_data", data={"image/png": "not base64 !!\"<>"})])
    svg = new_code_cell("plot()", outputs=[new_output("display_data", data={"image/svg+xml": "<svg onload=alert(6)>"})])
    html = page([good, bad, svg])
    assert f'src="data:image/png;base64,{PNG}"' in html
    assert "not valid base64" in html and "onload" not in html


def test_the_graders_own_cells_are_left_out():
    hidden = new_code_cell("__dpo_grader_setup()", metadata={"tags": ["grader"]})
    assert "__dpo_grader" not in page([hidden, new_code_cell("x = 1")])


def test_a_page_survives_odd_cells():
    nb = nbformat.from_dict({"cells": [{"cell_type": "raw", "source": ["<b>", "raw</b>"], "metadata": {}},
                                       {"cell_type": "code", "source": None, "outputs": [{"output_type": "weird"}],
                                        "metadata": {}, "execution_count": None}],
                             "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    html = feedback_html(RESULT, nb)
    assert "<b>raw" not in html and "raw" in html and "&lt;" in html


def test_lesson_markdown_reads_as_in_jupyterlab_hints_tables_and_math():
    md = new_markdown_cell("## Section\n\nThe loss $-\\log\\sigma(h)$ with `a < b & c`.\n\n| math | code |\n|---|---|\n"
                           "| $h$ | `h = beta * m` |\n\n<details><summary>Hint</summary>\n\nUse **logsigmoid**.\n</details>")
    html = page([md])
    assert "<details><summary>Hint</summary>" in html and "<strong>logsigmoid</strong>" in html   # a real hint
    assert "<th>math</th>" in html and "<code>h = beta * m</code>" in html
    assert "<code>a &lt; b &amp; c</code>" in html                # escaped once, not twice
    assert "$-\\log\\sigma(h)$" in html and "mathjax" in html.lower()   # typeset by MathJax in the browser


def test_the_page_says_its_outputs_are_the_graders_run_not_the_students():
    assert "hidden inputs" in page([]) and "differ from what you saw in your own run" in page([])


def test_rich_html_from_a_submission_keeps_its_text_and_loses_what_runs():
    cell = new_code_cell("show()", outputs=[new_output("display_data", data={
        "text/html": "<b>bold</b><img src=x onerror=alert(7)><a href='javascript:alert(8)'>x</a>",
        "application/javascript": "alert(9)"})])
    html = page([cell])
    assert "alert(9)" not in html and "onerror=alert(7)" not in html and "javascript:alert(8)" not in html
    assert "<b>bold</b>" in html


def test_a_notebook_nbconvert_cannot_render_still_gets_an_escaped_page(monkeypatch):
    import grader.feedback as feedback

    class Broken:
        def from_notebook_node(self, nb):
            raise ValueError("template exploded")

    monkeypatch.setattr(feedback, "_exporter", lambda: Broken())
    html = page([new_markdown_cell("<script>alert(1)</script> text"),
                 new_code_cell("x", outputs=[new_output("stream", name="stdout", text="<script>alert(2)</script>")])])
    assert "could not be rendered with nbconvert (ValueError: template exploded)" in html
    assert "<script>" not in html and "Score: 3 / 5" in html
