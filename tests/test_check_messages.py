"""How verdicts read: in a notebook a short HTML block (expected and got on their own lines, every
learner-made string escaped) and one short error line; in a terminal wrapped plain text; plain
numbers everywhere (never ``tensor(1.5506)``); and a stub's verdict says what to do, not the answer."""

from __future__ import annotations

import pickle
import subprocess
import sys
from html.parser import HTMLParser

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rlhf_core import checks
from rlhf_core.checks import CheckFailed, check, check_dpo_loss, render, run_sanity_checks
from rlhf_core.checks.framework import plain, shorten
from rlhf_core.course import exercises

SLOW = {"sft_step", "dpo_step"}   # each probe trains a tiny transformer: seconds per case


def _param(name, *rest):
    marks = [pytest.mark.slow] if name in SLOW else []
    return pytest.param(name, *rest, marks=marks, id="-".join(map(str, (name, *rest))))


MISTAKES = [_param(name, i) for name, ex in checks.EXERCISES.items() for i in range(len(ex.mistakes))]
NAMES = [_param(name) for name in checks.EXERCISES]


def _no_reference(pc, pr, rc, rr, beta=0.1):
    return -F.logsigmoid(beta * (pc - pr)).mean()


def _verdict(check_fn, candidate) -> CheckFailed:
    with pytest.raises(CheckFailed) as info:
        check_fn(candidate)
    return info.value


class _Lines(HTMLParser):
    """The text of each top-level line (each child <div> or <li>) of a verdict's HTML block."""

    def __init__(self):
        super().__init__()
        self.depth, self.lines = 0, []

    def handle_starttag(self, tag, attrs):
        if tag == "div":
            self.depth += 1
            if self.depth == 2:
                self.lines.append("")

    def handle_endtag(self, tag):
        if tag == "div":
            self.depth -= 1

    def handle_data(self, data):
        if self.depth >= 2:
            self.lines[-1] = (self.lines[-1] + " " + data).strip()


def _html_lines(markup: str) -> list[str]:
    parser = _Lines()
    parser.feed(markup)
    return parser.lines


# ---- the HTML block -------------------------------------------------------------------------


def test_the_html_verdict_puts_expected_and_got_on_their_own_lines():
    exc = _verdict(check_dpo_loss, _no_reference)
    lines = _html_lines(exc._repr_html_())
    assert lines[0] == "✗ dpo_loss — a random batch of 8 pairs, β = 0.1"
    assert "expected 1.5506" in lines and "got 1.2308" in lines
    assert lines.index("got 1.2308") == lines.index("expected 1.5506") + 1
    assert any("drop log π_ref" in line for line in lines[lines.index("got 1.2308") + 1:])   # the hint comes after
    # the grader's verdict is still the one plain line, with the same content
    assert str(exc) == ("✗ dpo_loss — a random batch of 8 pairs, β = 0.1: expected 1.5506, got 1.2308. "
                        f"{checks.EXERCISES['dpo_loss'].mistakes[1].hint}")


def test_the_html_verdict_escapes_a_learners_exception_message_and_source_line():
    def hostile(pc, pr, rc, rr, beta=0.1):
        raise ValueError("<script>alert('pwned')</script> & <b>bold</b>")

    exc = _verdict(check_dpo_loss, hostile)
    markup = exc._repr_html_()
    assert "<script>" not in markup and "<b>" not in markup
    assert "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in markup
    got = next(line for line in _html_lines(markup) if line.startswith("got "))
    assert got.startswith("got ValueError: <script>alert('pwned')</script>")   # what the learner reads, unescaped
    assert "<script>" in str(exc)   # the plain verdict (grader, terminal) is the learner's text as it was


def test_the_html_verdict_escapes_a_returned_string():
    exc = _verdict(checks.check_diagnose_run, lambda history: "<img src=x onerror=alert(1)>")
    markup = exc._repr_html_()
    assert "<img" not in markup and "&lt;img src=x onerror=alert(1)&gt;" in markup


def test_in_a_notebook_the_verdict_is_displayed_once_and_the_error_is_one_short_line(monkeypatch):
    import IPython.display

    shown = []
    monkeypatch.setattr(render, "in_notebook", lambda: True)
    monkeypatch.setattr(IPython.display, "display", lambda obj, raw=False: shown.append(obj))
    exc = _verdict(check_dpo_loss, _no_reference)
    first, second = exc._render_traceback_(), exc._render_traceback_()   # IPython renders twice: shown, then stored
    assert len(shown) == 1
    assert shown[0]["text/html"] == exc._repr_html_() and shown[0]["text/plain"] == exc.text()
    assert first == second and len(first) == 1
    assert "✗ dpo_loss — a random batch of 8 pairs" in first[0] and "(the verdict is above)" in first[0]
    assert "File " not in first[0] and len(first[0]) < 140


@pytest.mark.notebook
def test_a_real_kernel_shows_the_html_block_then_one_short_red_line(tmp_path):
    from nbclient import NotebookClient
    from nbformat.v4 import new_code_cell, new_notebook

    nb = new_notebook(cells=[new_code_cell(
        "import torch.nn.functional as F\nfrom rlhf_core.checks import check_dpo_loss\n"
        "def dpo_loss(pc, pr, rc, rr, beta=0.1):\n    return -F.logsigmoid(beta * (pc - pr)).mean()\n"
        "check_dpo_loss(dpo_loss)")])
    NotebookClient(nb, timeout=120, allow_errors=True, resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = nb.cells[0].outputs
    assert [o.output_type for o in outputs] == ["display_data", "error"]
    assert "expected" in outputs[0].data["text/html"] and "1.5506" in outputs[0].data["text/plain"]
    error = outputs[1]
    assert error.ename == "CheckFailed" and "drop log π_ref" in error.evalue   # what Validate and the grader read
    assert len(error.traceback) == 1 and "(the verdict is above)" in error.traceback[0]


# ---- the terminal -------------------------------------------------------------------------------


def test_outside_ipython_the_verdict_is_wrapped_plain_text():
    exc = _verdict(check_dpo_loss, _no_reference)
    assert not render.in_notebook()
    text = exc.text()
    lines = text.splitlines()
    assert lines[:3] == ["✗ dpo_loss — a random batch of 8 pairs, β = 0.1", "  expected: 1.5506", "  got:      1.2308"]
    assert all(len(line) <= 100 for line in lines) and len(lines) >= 4
    assert "<" not in text
    shown = exc._render_traceback_()   # a terminal IPython: the same text, in red, no frames
    assert len(shown) == 1 and "expected: 1.5506" in shown[0] and "File " not in shown[0]
    assert "\n" not in str(exc)       # the one-line verdict, for the grader and the tests


def test_a_plain_python_process_gets_the_plain_verdict_without_importing_ipython():
    code = ("import sys, torch.nn.functional as F\n"
            "from rlhf_core.checks import check_dpo_loss, CheckFailed\n"
            "from rlhf_core.checks.render import in_notebook\n"
            "try:\n    check_dpo_loss(lambda pc, pr, rc, rr, beta=0.1: -F.logsigmoid(beta * (pc - pr)).mean())\n"
            "except CheckFailed as exc:\n    print(exc.text())\n"
            "print('notebook', in_notebook(), 'IPython' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "  expected: 1.5506\n  got:      1.2308\n" in out.stdout
    assert out.stdout.strip().endswith("notebook False False")


# ---- plain numbers -----------------------------------------------------------------------------


@pytest.mark.parametrize("name, index", MISTAKES)
def test_no_known_mistakes_verdict_shows_a_tensor_repr(name, index):
    exercise = checks.EXERCISES[name]
    with pytest.raises(CheckFailed) as info:
        check(exercise, exercise.mistakes[index].fn, quiet=True)
    exc = info.value
    for text in (str(exc), exc.text(), exc._repr_html_()):
        assert "tensor(" not in text and "torch.Size" not in text and "np.float" not in text, text
    assert exc.expected is not None or exc.problem, str(exc)   # the parts the notebook shows are there


def test_no_sanity_verdict_shows_a_tensor_repr():
    wrong = [lambda *a, beta=0.1: torch.tensor(0.5), _no_reference, lambda *a, beta=0.1: torch.tensor(float("nan"))]
    rewards = [lambda lp, lr, beta=0.1: (lp - lr), lambda lp, lr, beta=0.1: torch.exp(lp - lr) * beta]
    for loss in wrong:
        for reward in rewards:
            for result in run_sanity_checks(loss, reward, quiet=True):
                assert "tensor(" not in result.message, result.message


def test_plain_renders_tensors_numpy_and_shapes_as_plain_numbers():
    assert plain(torch.tensor(1.5506)) == "1.5506"
    assert plain(torch.tensor(2.0, requires_grad=True)) == "2"
    assert plain(np.float32(0.25)) == "0.25" and plain(np.int64(3)) == "3" and plain(np.bool_(True)) == "True"
    assert plain(torch.Size([4, 7])) == "(4, 7)" and plain((4, 7)) == "(4, 7)"
    assert plain(torch.zeros(8)) == "[0, 0, 0, 0, 0, 0, …] (shape (8,))"
    assert plain(np.array([[1.0, 2.5]])) == "[1, 2.5] (shape (1, 2))"
    assert plain([0.123456, [1, 2]]) == "[0.1235, [1, 2]]"
    assert plain(float("inf")) == "inf" and plain(True) == "True" and plain("x") == "'x'"


def test_values_that_agree_at_first_are_shown_where_they_differ():
    exercise = checks.EXERCISES["apply_rope"]
    with pytest.raises(CheckFailed) as info:
        check(exercise, exercise.mistakes[0].fn, quiet=True)
    exc = info.value
    assert exc.expected.startswith("[…, ") and "first differing at index (0, 0, 1, 0)" in exc.got
    assert exc.expected.split("] (shape")[0] != exc.got.split("] (shape")[0]


# ---- what a stub is told ------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_the_not_implemented_verdict_says_what_to_do_and_not_the_formula(name):
    exercise = checks.EXERCISES[name]
    with pytest.raises(CheckFailed) as info:
        check(exercise, getattr(exercises, name), quiet=True)
    message = str(info.value)
    assert message.startswith(f"✗ {name} — not implemented yet: replace the `raise NotImplementedError` in `{name}`")
    assert "run that cell, then this one" in message and "hint" in message
    assert exercise.formula not in message and "Expected:" not in message
    # not even a piece of it: no run of five words of the formula appears
    words = exercise.formula.split()
    assert not any(" ".join(words[i:i + 5]) in message for i in range(len(words) - 4)), message


def test_a_long_exception_message_is_cut_at_a_word_boundary():
    def wordy(pc, pr, rc, rr, beta=0.1):
        raise RuntimeError("shapes " + "mismatched " * 60)

    exc = _verdict(check_dpo_loss, wordy)
    said = exc.got.split(" (line")[0]
    assert said.endswith("mismatched…") and len(said) <= len("RuntimeError: ") + 300
    assert shorten("abc " * 100, 50) == "abc " * 11 + "abc…"
    assert shorten("short", 50) == "short"
    assert shorten("x" * 80, 50) == "x" * 49 + "…"   # one unbroken word is cut where it must be


def test_a_verdict_keeps_its_parts_through_pickle():
    exc = _verdict(check_dpo_loss, _no_reference)
    copy = pickle.loads(pickle.dumps(exc))
    assert str(copy) == str(exc) and copy.expected == exc.expected and copy.got == exc.got
    assert copy._repr_html_() == exc._repr_html_()
