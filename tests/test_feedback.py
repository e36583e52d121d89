"""The feedback page escapes everything a submission wrote and keeps only PNG/JPEG images."""

import base64

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from grader.feedback import feedback_html

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 16).decode()
RESULT = {"student": "ada<script>", "notebook": "02_bradley_terry_and_dpo_loss", "score": 3.0, "max_score": 5.0,
          "status": "graded", "message": "1 of 2 checks passed; first failure, <b>check_x</b>: wrong",
          "cells": [{"grade_id": "check_dpo_loss", "passed": True, "score": 3.0, "max_score": 3.0, "message": "ok"},
                    {"grade_id": "check_implicit_reward", "passed": False, "score": 0.0, "max_score": 2.0,
                     "message": "expected 0.5, got <img src=x onerror=alert(1)>"}]}


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
    assert "<h1>Title</h1>" in html                         # markdown is still rendered


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
    assert "&lt;b&gt;raw&lt;/b&gt;" in html
