"""``python -m grader check`` warns, before the learner hands a notebook in, about what would cost points at grading
without showing in the verdicts (issue 25; :func:`grader.selfcheck.hand_in_warnings`): a renamed file, exercise cells
that lost their nbgrader metadata or cannot be found, copied or re-typed exercise cells, and code the grader's kernel
reads as tampering (:func:`grader.selfcheck.tampering_in`, a static scan).

The scan must never cry wolf: a corpus of honest habits (below, and ``tests/honest_habits.py``'s) gives no warning,
alone or in a lesson, and every notebook the course releases gives none; each tampering snippet gives its warning.
"""

from __future__ import annotations

import copy
from pathlib import Path

import nbformat
import pytest

from grader.course import load_lessons
from grader.selfcheck import hand_in_warnings, tampering_in
from grading_helpers import LESSON, RIGHT_LOSS, UNSTABLE_LOSS, answered, cell_by_id, released

ROOT = Path(__file__).resolve().parents[1]
FILE = Path(f"{LESSON}.ipynb")

# Habits of honest learners, none of which the grader's kernel reports as tampering (grader/kernel_probe.py: it
# watches what is *replaced or removed* in builtins, json, rlhf_core.checks, IPython's event callbacks and the display
# publisher; it does not watch sys.stdout, nor callbacks a learner adds).
HONEST = {
    "autoreload": "%load_ext autoreload\n%autoreload 2",
    "matplotlib_inline": "%matplotlib inline\nimport matplotlib.pyplot as plt\nplt.plot([0, 1])",
    "tqdm": "from tqdm.auto import tqdm\nfor _ in tqdm(range(3)):\n    pass",
    "filter_warnings": "import warnings\nwarnings.filterwarnings('ignore', category=DeprecationWarning)",
    "torch_threads": "import torch\ntorch.set_num_threads(1)",
    "star_import_checks": "from rlhf_core.checks import *",
    "call_a_check": "from rlhf_core.checks import check_dpo_loss\ncheck_dpo_loss(dpo_loss)",
    "rebind_a_check_name": "from rlhf_core.checks import check_dpo_loss\ncheck_dpo_loss = None   # my own global, not the module's",
    "read_the_registry": "from rlhf_core.checks import EXERCISES\nprint(sorted(EXERCISES))\nrecord = EXERCISES['dpo_loss']\nprint(record.points)",
    "shadow_a_builtin_globally": "sum = 0\nfor x in range(3):\n    sum += x",
    "builtins_read_only": "import builtins\nprint(builtins.abs(-1), builtins.__name__)",
    "input_replaced": "import builtins\nbuiltins.input = lambda prompt='': '0.1'   # ipykernel swaps input() itself",
    "tee_stdout": "import sys\nclass Tee:\n    def __init__(self, s): self.s = s\n    def write(self, t): return self.s.write(t)\n"
                  "    def flush(self): self.s.flush()\nsys.stdout = Tee(sys.stdout)",
    "redirect_stdout": "import contextlib, io\nwith contextlib.redirect_stdout(io.StringIO()):\n    print('noise')",
    "cell_timer": "import time\n_t = {}\ndef tic(info=None):\n    _t['t'] = time.perf_counter()\n"
                  "get_ipython().events.register('pre_run_cell', tic)",
    "cell_timer_removed_again": "get_ipython().events.register('post_run_cell', print)\ndef toc(r=None): pass\n"
                                "get_ipython().events.register('post_run_cell', toc)\nget_ipython().events.unregister('post_run_cell', toc)",
    "json_used": "import json\ntext = json.dumps({'beta': 0.1})\njson.loads(text)",
    "a_temporary_patch_put_back": "import builtins\n_print = builtins.print\nbuiltins.print = lambda *a, **k: None\n"
                                  "noisy()\nbuiltins.print = _print",
    "parameter_named_json": "import json\ndef save(json, value):\n    json.value = value   # json is my own object here",
    "a_file_named_like_a_module": "from pathlib import Path\nnotes = Path('json.notes.txt').read_text() if Path('json.notes.txt').exists() else ''",
    "mock_patch_as_context": "from unittest import mock\nwith mock.patch('rlhf_core.checks.framework.run_case'):\n    pass",
    "environ_and_seeds": "import os, random, torch\nos.environ['TOKENIZERS_PARALLELISM'] = 'false'\nrandom.seed(0)\ntorch.manual_seed(0)",
    "pandas_options": "import pandas as pd\npd.set_option('display.precision', 3)",
    "ipython_magic_cell": "%%capture out\nprint('hidden')",
    "not_python": "this is not python (",
}

# Code the kernel's watch reports: each with the words its warning must carry.
TAMPERING = {
    "builtins_attribute": ("import builtins\nbuiltins.abs = lambda x: 0.0", "replaces a builtin"),
    "builtins_dunder": ("__builtins__.len = lambda x: 0", "replaces a builtin"),
    "builtins_setattr": ("import builtins as b\nsetattr(b, 'float', lambda *a: 0.69)", "replaces a builtin"),
    "checks_setattr_loop": ("import rlhf_core.checks as _checks\nfor _n in dir(_checks):\n    setattr(_checks, _n, print)",
                            "changes the course's checks"),
    "checks_attribute": ("import rlhf_core.checks\nrlhf_core.checks.check_dpo_loss = lambda f: None", "changes the course's checks"),
    "checks_from_import": ("from rlhf_core import checks\nchecks.probe = lambda *a: {}", "changes the course's checks"),
    "exercise_cases": ("from rlhf_core.checks import EXERCISES\nEXERCISES['dpo_loss'].cases = lambda seed: []",
                       "changes the course's checks"),
    "registry_cleared": ("from rlhf_core.checks.framework import EXERCISES\nEXERCISES.clear()", "changes the course's checks"),
    "sys_modules": ("import sys\nsys.modules['rlhf_core.checks.framework'].run_case = None", "changes the course's checks"),
    "mock_patch_started": ("from unittest import mock\nmock.patch('rlhf_core.checks.framework.run_case').start()",
                           "changes the course's checks"),
    "json_dumps": ("import json\njson.dumps = lambda *a, **k: '{}'", "json module"),
    "events_unregistered": ("ip = get_ipython()\nfor cb in list(ip.events.callbacks['post_execute']):\n"
                            "    ip.events.unregister('post_execute', cb)", "removes IPython event callbacks"),
    "events_cleared": ("get_ipython().events.callbacks['pre_run_cell'].clear()", "removes IPython event callbacks"),
    "display_hook": ("get_ipython().display_pub.register_hook(lambda msg: None)", "display publisher"),
    "session_send": ("get_ipython().display_pub.session.send = lambda *a, **k: None", "display publisher"),
    "inside_a_function": ("import builtins\ndef setup():\n    builtins.abs = lambda x: 0\nsetup()", "replaces a builtin"),
}


@pytest.mark.parametrize("name", sorted(HONEST))
def test_an_honest_habit_is_no_tampering(name):
    assert tampering_in(HONEST[name]) == []


def test_tests_honest_habits_are_no_tampering():
    """The corpus the kernel's watch is tested on (tests/honest_habits.py): no static warning either."""
    habits = pytest.importorskip("honest_habits")
    assert len(habits.HABITS) >= 15
    assert {h.name: tampering_in(h.source) for h in habits.HABITS if tampering_in(h.source)} == {}


@pytest.mark.parametrize("name", sorted(TAMPERING))
def test_tampering_is_warned_of_with_its_fix(name):
    code, words = TAMPERING[name]
    found = tampering_in(code)
    assert len(found) == 1, found
    what, line = found[0]
    assert words in what and "remove it" in what
    assert line.startswith("`") and line.endswith("`")


def test_the_corpora_are_large_enough():
    assert len(HONEST) >= 15 and len(TAMPERING) >= 5


def test_the_hostile_shadowed_builtins_are_warned_of():
    """The shadowed builtins of tests/test_autograde_hostile.py: only the builtin replaced is warned of, not the globals."""
    nb = answered(extra_loss="\nimport builtins\nisinstance = lambda *a: True\nbuiltins.abs = lambda x: 0.0\n")
    warnings = hand_in_warnings(FILE, nb, load_lessons()[LESSON])
    assert warnings == [f"cell {index_of(nb, 'dpo_loss') + 1} (`builtins.abs = lambda x: 0.0`) replaces a builtin: the "
                        "grader reads that as tampering and scores the checks after it 0 — remove it (a global of your own "
                        "with that name is fine)"]


def index_of(nb, grade_id):
    return next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


# -- the notebook as a whole ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def lessons():
    return load_lessons()


def test_every_released_and_solved_lesson_gives_no_warning(lessons):
    for name, lesson in lessons.items():
        for folder in ("notebooks", "solutions"):
            nb = nbformat.read(ROOT / folder / f"{name}.ipynb", as_version=4)
            assert hand_in_warnings(Path(f"{name}.ipynb"), nb, lesson) == [], (folder, name)


def test_an_honest_lesson_with_every_habit_gives_no_warning(lessons):
    nb = answered()
    at = index_of(nb, "setup") + 1
    for code in HONEST.values():
        nb.cells.insert(at, nbformat.v4.new_code_cell(code))
    assert hand_in_warnings(FILE, nb, lessons[LESSON]) == []


def test_a_renamed_file_says_the_name_expected(lessons):
    warnings = hand_in_warnings(Path("Copy of 02_bradley_terry_and_dpo_loss.ipynb"), answered(), lessons[LESSON])
    assert warnings == ["the file is named 'Copy of 02_bradley_terry_and_dpo_loss.ipynb', not "
                        f"{LESSON}.ipynb: rename it to {LESSON}.ipynb, the name the grader looks for in your folder"]


def stripped(nb, ids=True):
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        cell.metadata.pop("nbgrader", None)
        if ids:
            cell.pop("id", None)
    if ids:
        nb.nbformat_minor = 4
    return nb


def test_lost_metadata_is_warned_of(lessons):
    warnings = hand_in_warnings(FILE, stripped(answered()), lessons[LESSON])
    assert warnings == ["the exercise cells of dpo_loss and implicit_reward lost their nbgrader metadata (the notebook "
                        "was re-made in another editor, or the cell re-created): the grader finds them only by the "
                        "functions they define; to be safe, paste your code into the exercise cells of a fresh copy of "
                        "the released notebook"]
    by_id = hand_in_warnings(FILE, stripped(answered(), ids=False), lessons[LESSON])
    assert len(by_id) == 1 and "only by their cell ids" in by_id[0]


def test_an_exercise_the_grader_cannot_find_is_warned_of(lessons):
    nb = stripped(answered())
    nb.cells = [c for c in nb.cells if "def dpo_loss" not in c.source]
    warnings = hand_in_warnings(FILE, nb, lessons[LESSON])
    assert warnings[0] == ("the exercise cell of implicit_reward lost its nbgrader metadata (the notebook was re-made "
                           "in another editor, or the cell re-created): the grader finds it only by the function it "
                           "defines; to be safe, paste your code into the exercise cells of a fresh copy of the released notebook")
    assert warnings[1].startswith("the grader cannot find your dpo_loss: no cell has the nbgrader metadata of its "
                                  "exercise cell or defines dpo_loss, so the released stub would be graded")


def test_copied_exercise_cells_are_warned_of_only_when_they_differ(lessons):
    nb = answered()
    copy_cell = copy.deepcopy(cell_by_id(nb, "dpo_loss"))
    copy_cell.id = "my-copy"
    nb.cells.insert(index_of(nb, "dpo_loss") + 1, copy_cell)
    assert hand_in_warnings(FILE, nb, lessons[LESSON]) == []          # an identical copy changes nothing
    copy_cell.source = UNSTABLE_LOSS
    assert hand_in_warnings(FILE, nb, lessons[LESSON]) == [
        "2 cells carry the nbgrader metadata of the exercise cell of dpo_loss (a copied cell keeps it): the grader "
        "grades the first of them only — put your final dpo_loss there and delete the copies"]


def test_re_typed_exercise_cells_are_warned_of(lessons):
    """Without metadata, different cells defining the function; with it, an answer above a stub that undoes it."""
    nb = stripped(answered())
    nb.cells.insert(next(i for i, c in enumerate(nb.cells) if "def dpo_loss" in c.source), nbformat.v4.new_code_cell(UNSTABLE_LOSS))
    assert ("more than one cell defines dpo_loss, with different code: the grader takes the last one before its check "
            "cell — delete the copies you do not mean to hand in") in hand_in_warnings(FILE, nb, lessons[LESSON])

    nb = released()
    nb.cells.insert(index_of(nb, "dpo_loss"), nbformat.v4.new_code_cell(RIGHT_LOSS))
    assert hand_in_warnings(FILE, nb, lessons[LESSON]) == [
        f"your dpo_loss is in a cell of your own (cell {index_of(nb, 'dpo_loss')}) above its exercise cell, which still "
        "holds the released stub: that stub runs after your cell and undoes it — move your code into the exercise cell"]
    below = released()   # below the stub and above the check, the grader runs it after the stub, as the learner did
    below.cells.insert(index_of(below, "dpo_loss") + 1, nbformat.v4.new_code_cell(RIGHT_LOSS))
    assert hand_in_warnings(FILE, below, lessons[LESSON]) == []


def test_grader_check_prints_the_warnings_before_it_runs(tmp_path, monkeypatch):
    """``check_notebooks`` logs each warning, then runs the notebook (the run itself stubbed out here)."""
    import grader.grading
    from grader.result import NotebookResult, Status
    from grader.selfcheck import check_notebooks

    path = tmp_path / "02_my_copy.ipynb"
    nbformat.write(stripped(answered()), path)
    ran = []

    def grade_one(lesson, nb, *args, **kwargs):
        ran.append(lesson.name)
        return NotebookResult("you", lesson.name, 5, 5, Status.GRADED, "all 3 checks passed"), None

    monkeypatch.setattr(grader.grading, "grade_one", grade_one)
    lines = []
    assert check_notebooks([path], log=lines.append) == 0
    assert ran == [LESSON]
    warned = [line for line in lines if line.startswith("  ! before you hand it in: ")]
    assert [w.split(": ", 1)[1][:30] for w in warned] == ["the file is named '02_my_copy.", "the exercise cells of dpo_loss"]
    assert lines.index(warned[-1]) < next(i for i, line in enumerate(lines) if line.startswith("running"))
