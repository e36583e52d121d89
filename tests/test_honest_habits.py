"""Honest habits earn full marks: tampering is the grader's machinery removed or replaced, never a learner's
extension added beside it (issue 25; the rule and its reasoning: ``__dpo_grader_tampering_watch`` in
:mod:`grader.kernel_probe`).

The corpus is ``tests/honest_habits.py``: 37 cells a learner adds for comfort — ``%autoreload``, ``%matplotlib``
(inline, agg, widget), ``%%time``, ``%%capture``, ``%timeit``, ``%pip``/``!pip``, tqdm bars, ipywidgets, pandas
tables, ``input()``, print options, seeds, logging, a home-made cell timer of IPython event callbacks, ``%load_ext
rich``, a tee on ``sys.stdout`` … —, each inserted after lesson 02's setup cell of a correct submission, so that
all three checks probe after it. Two of them fail in the grader's kernel (``input()`` without stdin, ``%matplotlib
widget`` without ipympl, both raise) and cost nothing: the notebook goes on past a failing cell.

Measured (2026-12-06, the 2-core VM): **false positives 0/37** — each habit's student scores 5/5 with no tampering
(before this rule 3/37 were accused: ``autoreload``, ``cell_timer_hooks`` — "IPython hooks were changed" — and
``tee_stdout`` — "sys.stdout … was replaced"). Detection on the hostile set: every tampering case of
``tests/test_autograde_hostile.py`` is still caught (monkeypatched checks, shadowed builtins, and the four cases of
this rule: IPython's own callback removed, ``rlhf_core.checks.probe`` replaced, a ``pre_run_cell`` callback patching
the checks before each probe, a displayhook swapped for good that forges records), and the in-process tests of
``tests/test_grader_kernel_program.py`` name each of 11 hostile changes exactly and none of 9 honest ones.

Two tiers: :func:`test_each_habit_leaves_the_watch_silent_in_an_ipython_shell` runs the whole corpus against the
preamble in one IPython process of its own (no kernel, no sandbox: 15 s under that load, in ``make check``); the sandboxed test
grades one student per habit in ONE autograde run (2 jobs, no gradebook or class report: 38 notebooks, the 37 and the
same answers without a habit; 58 s on the 2-core VM under a load average of 10, 27 s for the 37 when it was idle).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from grader.autograde import autograde
from grader.sandbox import Limits
from grading_helpers import FULL, LESSON, ROOT, answered, read_grades, write_submissions
from honest_habits import HABITS, with_habit

# One IPython shell per habit, in a process of its own: the habits change global state (print options, styles,
# threads, warning filters, sys.stdout) that must not leak into other tests. Prints one JSON line per habit.
IN_SHELL = r'''
import json, os, sys
sys.path[:0] = [sys.argv[1], sys.argv[1] + "/tests"]
from IPython.core.interactiveshell import InteractiveShell
from grader.kernel_side import RECORD_MIME, preamble_source, probe_source
from grader.spec import GradeCell, Probe
from honest_habits import HABITS

cell = GradeCell("check_implicit_reward", 1, [Probe("exercise", "implicit_reward", ("implicit_reward",), 0)])
out = sys.__stdout__
for habit in HABITS:
    InteractiveShell.clear_instance()
    shell = InteractiveShell.instance()
    shell.enable_gui = lambda gui=None: None       # a kernel has an event loop for %matplotlib; a bare shell has none
    published = []
    shell.display_pub.publish = lambda data, metadata=None, **kw: published.append(data)
    shell.run_cell(preamble_source())
    ran = shell.run_cell(habit.source)
    shell.run_cell("def implicit_reward(logp_pol, logp_ref, beta=0.1):\n    return beta * (logp_pol - logp_ref)")
    shell.run_cell(probe_source(cell, {}))
    records = [json.loads(d[RECORD_MIME]) for d in published if RECORD_MIME in d]
    print(json.dumps({"habit": habit.name, "ran": ran.success, "records": records}), file=out, flush=True)
    sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
os._exit(0)   # without waiting for what the habits left running (tqdm's monitor, pip's subprocess pipes)
'''


def test_the_corpus_is_at_least_25_named_and_explained_habits():
    names = [h.name for h in HABITS]
    assert len(names) >= 25 and len(set(names)) == len(names)
    assert all(h.why and h.source.strip() for h in HABITS)


@pytest.mark.slow  # about 7 s: an IPython shell per habit; make test runs it
def test_each_habit_leaves_the_watch_silent_in_an_ipython_shell(tmp_path):
    done = subprocess.run([sys.executable, "-c", IN_SHELL, str(ROOT)], cwd=tmp_path, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    results = {r["habit"]: r for r in map(json.loads, (line for line in done.stdout.splitlines() if line.startswith("{")))}
    assert set(results) == {h.name for h in HABITS}, done.stderr[-3000:]
    for name, result in results.items():
        (record,) = result["records"]
        assert record["tampering"] == [], (name, record["tampering"])
        assert record["probes"][0].get("cases"), (name, record["probes"])     # the learner's function was measured


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """One autograde run: one student per habit, plus ``plain`` (the same answers, no habit)."""
    base = tmp_path_factory.mktemp("honest")
    submissions, out = base / "submissions", base / "out"
    students = {habit.name: with_habit(answered(), habit) for habit in HABITS}
    students["plain"] = answered()
    write_submissions(submissions, students)
    began = time.monotonic()
    code = autograde(submissions, out, jobs=2, limits=Limits(cell_timeout=30, notebook_timeout=90),
                     gradebook=False, report=False, log=lambda *a: None)
    seconds = time.monotonic() - began
    print(f"\n[honest habits: {len(students)} notebooks graded in {seconds:.1f} s with 2 jobs]")
    assert code == 0
    return {"rows": read_grades(out), "out": out}


def habit_cell(graded, student: str):
    nb = nbformat.read(Path(graded["out"]) / "autograded" / student / "dpo" / f"{LESSON}.ipynb", as_version=4)
    return next(c for c in nb.cells if "added by the learner" in c.metadata.get("tags", []))


@pytest.mark.sandbox
@pytest.mark.notebook
def test_every_honest_habit_earns_full_marks_and_no_tampering(graded):
    wrong = {}
    for student in [h.name for h in HABITS] + ["plain"]:
        rows = [r for r in graded["rows"].get(student, []) if r["notebook"] == LESSON]
        if len(rows) != 1 or (float(rows[0]["score"]), rows[0]["status"]) != (FULL, "graded") or "tamper" in rows[0]["message"]:
            wrong[student] = rows
    assert not wrong, f"false positives {len(wrong)}/{len(HABITS)}: {wrong}"


@pytest.mark.sandbox
@pytest.mark.notebook
@pytest.mark.parametrize("student, error", [("input_prompt", "StdinNotImplementedError"), ("matplotlib_widget", "RuntimeError")])
def test_a_habit_that_fails_in_the_graders_kernel_costs_nothing(graded, student, error):
    """The cell errors in the grader's kernel (no stdin; no ipympl), and the checks after it still earn their points."""
    errors = [o.ename for o in habit_cell(graded, student).outputs if o.output_type == "error"]
    assert errors == [error]
