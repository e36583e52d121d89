"""Hostile submissions against `python -m grader autograde`, each built from the released lesson 02.

One autograde run (2 jobs) grades every student below; each test then asserts that student's score
and status. Lesson 02 has three checks: check_dpo_loss (3 points), check_implicit_reward (1) and
sanity_1_4_6 (1). An attack that would score 0 anyway is built on full answers, so that each test
fails when its defence does (a full-marks answer that tampers scores 0 as "tampering"; one the grader
withstands keeps its 5). Where the machine allows no sandbox (not root, no bwrap), the tests that
need one are skipped and say why; CI runs as root with bubblewrap, so there they all run.
"""

from __future__ import annotations

import base64
import csv
import json
import socket
import threading
from collections import Counter
from pathlib import Path

import nbformat
import pytest

from grader.autograde import autograde
from grader.sandbox import Limits, detect
from grading_helpers import (
    BORROWED_LOSSES,
    BORROWED_REWARD,
    FULL,
    LESSON,
    ROOT,
    UNSTABLE_LOSS,
    answered,
    check_cells,
    is_whole,
    read_grades,
    reads_library_file,
    released,
    stubs_with,
    write_submissions,
)

pytestmark = [pytest.mark.sandbox, pytest.mark.notebook]

ISO = detect()
needs_sandbox = pytest.mark.skipif(not ISO.sandboxed, reason=f"needs the sandbox: {ISO.summary()}")
MAX_PROCESSES = 64


class LoopbackServer:
    """A TCP server on 127.0.0.1 that counts connections (a submission must never reach it)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
                self.connections += 1
                conn.close()
            except OSError:
                continue


def build(submissions: Path, out: Path, server: LoopbackServer, only=None) -> dict[str, object]:
    """Every hostile student (or those in ``only``): a notebook, raw bytes for the broken files, or
    ``(file name, notebook)``."""
    students: dict[str, object] = {}
    students["release"] = released()
    students["correct"] = answered()
    students["one_wrong"] = answered(loss=UNSTABLE_LOSS)
    # Correct answers that also draw and switch plots: matplotlib's own IPython hooks are not tampering.
    students["correct_with_plots"] = answered(
        extra_loss="\nimport matplotlib.pyplot as plt\nplt.plot([0, 1], [1, 0]); plt.show()\n",
        extra_reward="\n%matplotlib inline\nplt.figure(); plt.plot([1, 2]); plt.close('all')\n")

    # The test cells come from the source, whatever the submission did to them: full answers keep full marks.
    nb = answered()
    for cell in check_cells(nb):
        cell.source = "print('✓ passed')"
    students["edited_test"] = nb

    nb = answered()
    nb.cells = [c for c in nb.cells if not c.metadata.get("nbgrader", {}).get("grade")]
    students["deleted_test"] = nb

    nb = answered()
    for i, cell in enumerate(nb.cells):
        if cell.metadata.get("nbgrader", {}).get("grade"):
            nb.cells[i] = nbformat.v4.new_markdown_cell(cell.source, metadata=cell.metadata)
    students["test_to_markdown"] = nb

    students["monkeypatch_checks"] = answered(extra_loss='''
import sys
import rlhf_core.checks as _checks
_checking = sys.modules[type(_checks.EXERCISES["dpo_loss"]).__module__]    # the checks' framework module
_real_run_case = _checking.run_case
_checking.run_case = lambda case, fn: _real_run_case(case, _checks.EXERCISES["dpo_loss"].reference)
for _name in dir(_checks):
    if _name.startswith(("check_", "sanity_")):
        setattr(_checks, _name, lambda *a, **k: print("✓ passed"))
''')

    # Tampering is the grader's machinery removed or replaced (grader.kernel_probe's watch), each change named.
    students["removes_ipython_callback"] = answered(extra_loss='''
_ip = get_ipython()
_ip.events.unregister("pre_execute", _ip._clear_warning_registry)
''')
    students["replaces_checks_probe"] = answered(extra_loss='''
import rlhf_core.checks as _checks
_checks.probe = lambda exercise, candidate, seed=0: {"exercise": exercise.name, "seed": seed, "cases": {}}
''')
    # An added callback is not tampering, but what it patches before each probe is.
    students["pre_run_cell_patches_checks"] = answered(extra_loss='''
import sys
import rlhf_core.checks as _checks
_checking = sys.modules[type(_checks.EXERCISES["dpo_loss"]).__module__]
def _patch(info=None):
    _checking.run_case = lambda case, fn: {"ok": True}
get_ipython().events.register("pre_run_cell", _patch)
''')
    # A displayhook swapped for good (in IPython's display trap: IPython puts sys.displayhook back at every cell)
    # runs after each probe cell's record; the record it forges is a second one, which the judge refuses.
    students["displayhook_forges_records"] = answered(extra_loss='''
import json
from IPython.display import publish_display_data
def _forging_hook(value):
    for _name in ("check_dpo_loss", "check_implicit_reward", "sanity_1_4_6"):
        publish_display_data({"application/vnd.dpo-grader.record": json.dumps({"grade_id": _name, "tampering": [], "probes": []})})
get_ipython().display_trap.hook = _forging_hook
''')

    students["always_true_eq"] = answered(loss='''
class Anything(float):
    def __new__(cls): return float.__new__(cls, 0.6931471805599453)
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __float__(self): return 0.6931471805599453
def dpo_loss(*args, **kwargs):
    return Anything()
''', reward='''
class Same:
    def __eq__(self, other): return True
    def __float__(self): return 0.0
    def __getattr__(self, name): return lambda *a, **k: self
def implicit_reward(*args, **kwargs):
    return Same()
''')

    # (builtins.isinstance is left alone: replacing it hangs IPython itself, a timeout that proves nothing)
    students["shadowed_builtins"] = answered(extra_loss='''
import builtins
isinstance = lambda *a: True
float = lambda *a: 0.6931471805599453
abs = lambda x: 0.0
builtins.abs = lambda x: 0.0
''')

    # Printed "passed" lines and records published from a learner's cell: only the probe cells' records count.
    students["fake_passed_lines"] = answered(extra_loss='''
from IPython.display import publish_display_data
for name in ("check_dpo_loss", "check_implicit_reward", "sanity_1_4_6"):
    print(f"✓ {name}: all checks passed")
    publish_display_data({"application/vnd.dpo-grader.record": '{"grade_id": "%s", "tampering": [], "probes": []}' % name})
''')

    students["infinite_loop"] = answered(extra_reward="\nwhile True:\n    pass\n")
    students["swallows_interrupt"] = answered(extra_reward='''
import time
while True:
    try:
        time.sleep(0.1)
    except KeyboardInterrupt:
        pass
''')
    students["memory_bomb"] = answered(extra_reward='''
hog = []
while True:
    hog.append(bytearray(50_000_000))
''')
    # Forks until the process cap says no; the children wait, and the kernel then ends them, so the
    # remaining checks run: full marks, and fewer processes than the cap allows.
    students["fork_bomb"] = answered(extra_reward='''
import os, signal, time
children = []
for _ in range(300):
    try:
        pid = os.fork()
    except OSError:
        continue
    if pid == 0:
        time.sleep(600)
        os._exit(0)
    children.append(pid)
print(f"forked {len(children)} processes")
for pid in children:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
''')
    students["os_exit"] = answered(extra_reward="\nimport os\nos._exit(0)\n")
    students["sys_exit"] = answered(extra_reward="\nimport sys\nsys.exit(1)\n")
    students["connects_out"] = answered(extra_reward=f'''
import socket
try:
    socket.create_connection(("127.0.0.1", {server.port}), timeout=2).close()
    print("connected")
except OSError as exc:
    print("no network:", exc)
''')
    solutions_path = ROOT / "solutions" / f"{LESSON}.ipynb"
    students["reads_solutions"] = stubs_with(f'''
import json, re
try:
    source = json.load(open({str(solutions_path)!r}))
    for cell in source["cells"]:
        code = "".join(cell["source"]).replace("### BEGIN SOLUTION", "").replace("### END SOLUTION", "")
        if "def dpo_loss" in code or "def implicit_reward" in code:
            exec(code, globals())
    print("read the solutions")
except Exception as exc:
    print("cannot read the solutions:", exc)
''')
    students["writes_out"] = answered(extra_reward=f'''
import os
for target in ({str(out / "grades.csv")!r}, {str(out / "results" / "writes_out" / "injected.json")!r}):
    try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "w") as f:
            f.write("student,notebook,score\\nwrites_out,{LESSON},999\\n")
        print("wrote", target)
    except OSError as exc:
        print("cannot write", target, exc)
''')
    students["invalid_json"] = b'{"cells": [ this is not json'
    students["nbformat_3"] = json.dumps({"nbformat": 3, "nbformat_minor": 0, "metadata": {},
                                         "worksheets": [{"cells": []}]}).encode()
    students["empty_file"] = b""
    students["huge_output"] = answered(extra_reward="\nimport sys\nchunk = 'x' * 1_000_000\nfor _ in range(100):\n    sys.stdout.write(chunk)\n")
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 8_000_000).decode()
    students["large_images"] = answered(extra_reward=f'''
from IPython.display import publish_display_data
for _ in range(3):
    publish_display_data({{"image/png": "{png[:100]}" * {len(png) // 100}}})
''')
    students["non_utf8"] = b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5, "x": "\xff\xfe\xfa"}'
    # rlhf_core's own dpo_loss, reached by every route there is: the lesson's references are withheld while it
    # is graded, so each earns nothing for the checks of dpo_loss; the learner's own implicit_reward keeps its point.
    for route, loss in BORROWED_LOSSES.items():
        students[f"borrowed_{route}"] = answered(loss=loss)
    students["borrowed_both"] = answered(loss=BORROWED_LOSSES["attribute"], reward=BORROWED_REWARD)
    students["borrowed_library_file"] = answered(loss=reads_library_file())
    students["renamed"] = ("02_my_copy_of_lesson.ipynb", answered())
    students["unexpected"] = ("scratch_work.ipynb", answered())

    if only is not None:
        students = {k: v for k, v in students.items() if k in only}
    write_submissions(submissions, students)
    return students


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    base = tmp_path_factory.mktemp("hostile")
    submissions, out = base / "submissions", base / "out"
    server = LoopbackServer()
    build(submissions, out, server)
    limits = Limits(cell_timeout=20, notebook_timeout=60, memory_mb=700, max_processes=MAX_PROCESSES)
    code = autograde(submissions, out, jobs=2, limits=limits, log=lambda *a: None)
    server.stop = True
    assert code == 0
    return {"rows": read_grades(out), "out": out, "server": server, "submissions": submissions}


def row(graded, student, notebook=LESSON):
    matches = [r for r in graded["rows"].get(student, []) if r["notebook"] == notebook]
    assert len(matches) == 1, f"{student}: expected one row for {notebook}, got {graded['rows'].get(student)}"
    return matches[0]


def assert_grade(graded, student, score, status="graded", notebook=LESSON):
    r = row(graded, student, notebook)
    assert (float(r["score"]), r["status"]) == (score, status), f"{student}: {r}"
    assert r["message"], f"{student}: every row needs a reason"
    return r


def cells_of(graded, student, notebook=LESSON) -> dict[str, dict]:
    """The per-check verdicts of a student's notebook, by grade id (from OUT/results)."""
    result = json.loads((graded["out"] / "results" / student / f"{notebook}.json").read_text())
    return {c["grade_id"]: c for c in result["cells"]}


def test_every_student_has_exactly_one_row_per_notebook_and_the_isolation_is_stated(graded):
    for student, rows in graded["rows"].items():
        notebooks = [r["notebook"] for r in rows]
        assert len(notebooks) == len(set(notebooks)), (student, notebooks)
        assert all(r["isolation"] == ISO.summary() for r in rows)


def test_unmodified_release_scores_zero(graded):
    r = assert_grade(graded, "release", 0)
    assert "not implemented yet" in r["message"]


def test_correct_answers_score_full_marks(graded):
    assert_grade(graded, "correct", FULL)


def test_plots_in_a_correct_submission_are_not_taken_for_tampering(graded):
    assert_grade(graded, "correct_with_plots", FULL)


def test_one_wrong_answer_gets_partial_credit(graded):
    r = assert_grade(graded, "one_wrong", FULL - 3)
    assert "check_dpo_loss" in r["message"] and "logsigmoid" in r["message"]


@pytest.mark.parametrize("student", ["edited_test", "deleted_test", "test_to_markdown"])
def test_tampered_test_cells_change_nothing(graded, student):
    assert_grade(graded, student, FULL)


def assert_withheld_verdict(cell: dict, reached: str, borrowed: bool = False) -> None:
    """The verdict of a check whose answer reached rlhf_core's own (``borrowed``: is one of its functions)."""
    assert cell["score"] == 0 and not cell["passed"], cell
    assert cell["message"].startswith("✗ ") and "expected your own implementation" in cell["message"], cell
    said = "rlhf_core's own function" if borrowed else "withholds while this lesson is graded"
    assert reached in cell["message"] and said in cell["message"] and "no credit" in cell["message"], cell


@pytest.mark.parametrize("route", sorted(BORROWED_LOSSES))
def test_rlhf_cores_own_answer_earns_nothing_however_it_is_reached(graded, route):
    assert_grade(graded, f"borrowed_{route}", 1)          # 3 + 1 points of dpo_loss lost; implicit_reward is theirs
    cells = cells_of(graded, f"borrowed_{route}")
    reached = {"alias": "rlhf_core.losses.dpo_losses", "mistake_helper": "rlhf_core.checks.dpo_loss._margin"}.get(
        route, "rlhf_core.losses.dpo_loss")
    borrowed = route == "imported"               # the library's function object itself
    assert_withheld_verdict(cells["check_dpo_loss"], reached, borrowed)
    assert_withheld_verdict(cells["sanity_1_4_6"], reached, borrowed)
    assert cells["check_implicit_reward"]["passed"]


def test_both_references_borrowed_earn_nothing(graded):
    r = assert_grade(graded, "borrowed_both", 0)
    assert "withholds" in r["message"]
    assert_withheld_verdict(cells_of(graded, "borrowed_both")["check_implicit_reward"], "rlhf_core.losses.implicit_reward")


@needs_sandbox
def test_the_library_file_read_from_disk_is_the_withheld_copy(graded):
    """Without the sandbox the real file is readable at its path (the isolation column says so)."""
    assert_grade(graded, "borrowed_library_file", 1)
    assert_withheld_verdict(cells_of(graded, "borrowed_library_file")["check_dpo_loss"], "rlhf_core.losses.dpo_loss")


def test_lesson_cells_run_on_the_learners_functions(graded):
    """While its references are withheld, the lesson's own cells use the learner's dpo_loss (and, through the
    learner's implicit_reward, the gradient weight rlhf_core computes from the margin)."""
    nb = nbformat.read(graded["out"] / "autograded" / "correct" / "dpo" / f"{LESSON}.ipynb", as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code" and 'yours_or_reference("dpo_loss"' in c.source)
    text = "".join(o.get("text", "") for o in cell.outputs)
    assert not [o for o in cell.outputs if o.output_type == "error"], cell.outputs
    assert "the cells below use your dpo_loss" in text, text
    autograd, formula = (line.split(":", 1)[1] for line in text.splitlines() if line.startswith(("autograd", "formula")))
    assert autograd == formula, text


def test_monkeypatched_checks_are_caught(graded):
    r = assert_grade(graded, "monkeypatch_checks", 0)
    assert "tampering: rlhf_core.checks" in r["message"] and "was replaced" in r["message"]


@pytest.mark.parametrize("student, said", [
    ("removes_ipython_callback", "IPython's 'pre_execute' callback IPython.core.interactiveshell.InteractiveShell."
                                 "_clear_warning_registry was removed"),
    ("replaces_checks_probe", "rlhf_core.checks.probe was replaced by __main__.<lambda>"),
    ("pre_run_cell_patches_checks", "rlhf_core.checks.framework.run_case was replaced by __main__._patch.<locals>.<lambda>"),
    ("displayhook_forges_records", "more than one result was published for this check"),
])
def test_the_graders_machinery_removed_or_replaced_is_tampering_and_named(graded, student, said):
    r = assert_grade(graded, student, 0)
    assert "tampering: " in r["message"], r
    cell = cells_of(graded, student)["check_dpo_loss"]
    assert cell["kind"] == "tampering" and said in cell["message"], cell


def test_always_true_eq_results_earn_nothing(graded):
    assert_grade(graded, "always_true_eq", 0)


def test_shadowed_builtins_are_tampering(graded):
    r = assert_grade(graded, "shadowed_builtins", 0)
    assert "tampering" in r["message"] and "builtins.abs was replaced" in r["message"]


def test_printed_fake_passed_lines_and_fake_records_change_nothing(graded):
    assert_grade(graded, "fake_passed_lines", FULL)


@pytest.mark.parametrize("student", ["infinite_loop", "swallows_interrupt"])
def test_endless_cells_time_out_with_partial_credit(graded, student):
    r = assert_grade(graded, student, 3, status="timeout")
    assert "limit" in r["message"]


@needs_sandbox
def test_memory_bomb_hits_the_memory_cap_with_partial_credit(graded):
    assert_grade(graded, "memory_bomb", 3, status="memory")


@needs_sandbox
def test_fork_bomb_is_contained(graded):
    assert_grade(graded, "fork_bomb", FULL)
    nb = nbformat.read(graded["out"] / "autograded" / "fork_bomb" / "dpo" / f"{LESSON}.ipynb", as_version=4)
    said = [o.text for c in nb.cells if c.cell_type == "code" for o in c.outputs
            if o.output_type == "stream" and "forked" in o.text]
    assert len(said) == 1, said
    forked = int(said[0].split()[1])
    assert 0 < forked < MAX_PROCESSES, f"the process cap ({MAX_PROCESSES}) did not stop the fork bomb: {said[0]}"


def test_os_exit_ends_the_kernel_with_partial_credit(graded):
    r = assert_grade(graded, "os_exit", 3, status="kernel died")
    assert "died" in r["message"]


def test_sys_exit_is_just_an_error(graded):
    assert_grade(graded, "sys_exit", FULL)


@needs_sandbox
def test_no_network_even_to_loopback(graded):
    assert_grade(graded, "connects_out", FULL)
    assert graded["server"].connections == 0


@needs_sandbox
def test_solutions_are_out_of_reach(graded):
    assert_grade(graded, "reads_solutions", 0)


@needs_sandbox
def test_out_is_out_of_reach(graded):
    assert_grade(graded, "writes_out", FULL)
    assert not (graded["out"] / "results" / "writes_out" / "injected.json").exists()
    assert "999" not in (graded["out"] / "grades.csv").read_text()


@pytest.mark.parametrize("student, words", [("invalid_json", "JSON"), ("nbformat_3", "format 3"),
                                            ("empty_file", "empty"), ("non_utf8", "UTF-8")])
def test_broken_files_are_invalid_notebooks_with_a_reason(graded, student, words):
    r = assert_grade(graded, student, 0, status="invalid notebook")
    assert words in r["message"]


@pytest.mark.parametrize("student", ["huge_output", "large_images"])
def test_outputs_are_capped(graded, student):
    assert_grade(graded, student, FULL)
    graded_nb = graded["out"] / "autograded" / student / "dpo" / f"{LESSON}.ipynb"
    feedback = graded["out"] / "feedback" / student / f"{LESSON}.html"
    assert graded_nb.stat().st_size < 2_000_000 and feedback.stat().st_size < 3_000_000


def test_a_renamed_notebook_is_graded_and_said_so(graded):
    r = assert_grade(graded, "renamed", FULL)
    assert "renamed" in r["message"]


def test_an_unexpected_notebook_is_listed_not_graded(graded):
    r = assert_grade(graded, "unexpected", 0, status="unexpected notebook", notebook="scratch_work")
    assert "not a lesson" in r["message"]
    assert_grade(graded, "unexpected", 0, status="missing notebook")


def test_feedback_for_every_graded_notebook(graded):
    feedback = (graded["out"] / "feedback" / "one_wrong" / f"{LESSON}.html").read_text()
    assert "check_dpo_loss" in feedback and "logsigmoid" in feedback
    assert "BEGIN HIDDEN TESTS" not in feedback and "seed=101" not in feedback      # hidden tests stay hidden
    assert "__dpo_grader" not in feedback                                            # so does the grader's preamble


def test_the_gradebook_agrees_with_the_csv(graded):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{graded['out'] / 'gradebook.db'}", course_id="dpo-paper-to-code") as gb:
        for student in ("correct", "one_wrong", "release"):
            submission = gb.find_submission_notebook(LESSON, LESSON, student)   # one assignment per lesson
            assert submission.score == float(row(graded, student)["score"]), student


def test_nbgraders_own_export_reads_the_result(graded):
    """`nbgrader export` in OUT (to another file: its default name would overwrite grades.csv)."""
    import subprocess
    import sys

    out = graded["out"]
    done = subprocess.run([sys.executable, "-m", "nbgrader", "export", "--to", "nbgrader-export.csv"], cwd=out,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    with open(out / "nbgrader-export.csv", newline="") as f:
        exported = {r["student_id"]: r for r in csv.DictReader(f)}
    for student in ("correct", "one_wrong", "release"):
        assert float(exported[student]["score"]) == float(row(graded, student)["score"]), student
        assert float(exported[student]["max_score"]) >= FULL


def test_formgrader_lists_the_graded_submissions(graded):
    """formgrader's API (a Jupyter server started in OUT) serves the same scores."""
    import os
    import secrets
    import subprocess
    import sys
    import time
    import urllib.request

    out = graded["out"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = secrets.token_hex(8)
    server = subprocess.Popen([sys.executable, "-m", "jupyter_server", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
                               f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={out}",
                               *(["--allow-root"] if os.geteuid() == 0 else [])],
                              cwd=out, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline, submissions = time.monotonic() + 60, None
        while time.monotonic() < deadline and submissions is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/formgrader/api/submissions/{LESSON}?token={token}", timeout=5) as r:
                    submissions = json.load(r)
            except OSError:
                time.sleep(0.5)
        assert submissions is not None, "formgrader did not answer"
        by_student = {s["student"]: s for s in submissions}
        for student in ("correct", "one_wrong", "release"):
            assert float(by_student[student]["score"]) == float(row(graded, student)["score"]), student
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_no_message_in_the_csv_is_cut_inside_a_word(graded):
    """Each row's message is its result's message whole, or a short form of it that ends on a sentence
    (or on a word, with …); the result file keeps the full text."""
    from grader.results import result_path

    checked = 0
    for student, rows in graded["rows"].items():
        for r in rows:
            full = json.loads(result_path(graded["out"], student, r["notebook"]).read_text())["message"]
            assert is_whole(r["message"], full), f"{student}: the CSV says {r['message']!r} of {full!r}"
            checked += 1
    assert checked >= 28


def test_the_class_report_of_the_run_counts_each_way_of_failing(graded):
    """The report written at the end of the run: the named mistake under its id, tampering, withheld and
    stubs as their kinds, and every status of grades.csv in the counts."""
    out = graded["out"]
    with open(out / "mistakes.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    names = lambda **match: {n for r in rows if all(r[k] == v for k, v in match.items()) for n in r["names"].split(";")}
    assert "one_wrong" in names(check="check_dpo_loss", mistake="dpo_loss/dpo_log_sigmoid")
    assert {"monkeypatch_checks", "shadowed_builtins", "removes_ipython_callback"} <= names(kind="tampering")
    assert {"borrowed_attribute", "borrowed_importlib"} <= names(check="check_dpo_loss", kind="withheld")
    assert "release" in names(check="check_dpo_loss", kind="not implemented")
    page = (out / "report.html").read_text()
    assert "<script" not in page.lower()
    statuses = Counter(r["status"] for rows_ in graded["rows"].values() for r in rows_ if r["notebook"] == LESSON)
    for status, n in statuses.items():
        assert f"data-status='{status}'>{n}<" in page, (status, n)
