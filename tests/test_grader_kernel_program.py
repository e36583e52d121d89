"""The kernel program (:mod:`grader.kernel_probe`) as the preamble cell runs it: a real module, set up by JSON
settings, that leaves one name in the learner's namespace and records what the probes measure.

Run here in an IPython shell (no kernel, no sandbox: the sandboxed runs are ``tests/test_autograde_hostile.py``)."""

from __future__ import annotations

import ast
import builtins
import inspect
import json
import sys
from types import SimpleNamespace

import pytest
from IPython.core.interactiveshell import InteractiveShell

import rlhf_core.checks as checks
from grader import kernel_probe
from grader.kernel_side import FIGURE_LINE, RECORD_MIME, preamble_settings, preamble_source, probe_source
from grader.spec import GradeCell, Probe
from grader.wording import CRASH_LIMIT


@pytest.fixture
def shell():
    """A fresh IPython shell whose display messages are kept in ``shell.published``."""
    InteractiveShell.clear_instance()
    shell = InteractiveShell.instance()
    shell.published = []
    shell.display_pub.publish = lambda data, metadata=None, **kw: shell.published.append(data)
    yield shell
    InteractiveShell.clear_instance()


def run(shell, source: str):
    result = shell.run_cell(source)
    assert result.success, result.error_in_exec or result.error_before_exec


def records(shell) -> list[dict]:
    return [json.loads(data[RECORD_MIME]) for data in shell.published if RECORD_MIME in data]


def test_the_preamble_leaves_only_the_probe_function_in_the_namespace(shell):
    before = set(shell.user_ns)
    run(shell, preamble_source())
    assert set(shell.user_ns) - before - {"_i", "_i1", "_ii", "_iii", "In", "Out", "_"} == {"__dpo_grader_probe"}


def test_a_probe_cell_records_the_learners_function_borrowed_absent_crashed_and_tampering(shell, monkeypatch):
    import builtins

    from rlhf_core import dpo_loss

    monkeypatch.setattr(builtins, "abs", builtins.abs)   # the shell runs in this process: put abs back afterwards

    run(shell, preamble_source())
    cell = GradeCell("check_dpo_loss", 3, [Probe("exercise", "dpo_loss", ("dpo_loss",), 0)])
    shell.user_ns["dpo_loss"] = dpo_loss
    run(shell, probe_source(cell, {}))
    run(shell, "del dpo_loss")
    run(shell, probe_source(cell, {}))
    run(shell, "def dpo_loss(a, b, c, d, beta=0.1):\n    return (a - b - c + d).mean() * 0")
    unknown = GradeCell("check_dpo_loss", 3, [Probe("exercise", "no such exercise " * 40, ("dpo_loss",), 0)])
    run(shell, probe_source(unknown, {}))    # the probe itself fails: recorded, clipped to the settings' limit
    run(shell, "import builtins\nbuiltins.abs = lambda x: x")
    run(shell, probe_source(cell, {}))
    borrowed, absent, crashed, tampered = records(shell)
    assert borrowed["probes"] == [{"borrowed": "dpo_loss=rlhf_core.losses.dpo_loss"}] and not borrowed["tampering"]
    assert absent["probes"] == [{"absent": ["dpo_loss"]}]
    message = crashed["probes"][0]["crashed"]
    assert message.startswith("KeyError: 'no such exercise") and message.endswith("…") and len(message) <= CRASH_LIMIT
    assert "builtins.abs was replaced by __main__.<lambda>" in tampered["tampering"]
    assert tampered["probes"][0].get("cases"), tampered["probes"]     # the learner's function was measured


def test_the_record_goes_out_through_the_publisher_the_preamble_holds(shell):
    """A display publisher swapped later (``%%capture`` does so for a cell; here for good) does not reach the
    record: the preamble keeps the publisher's ``publish`` it found."""
    from rlhf_core import implicit_reward

    run(shell, preamble_source())
    run(shell, "from IPython.core.displaypub import CapturingDisplayPublisher\n"
               "get_ipython().display_pub = CapturingDisplayPublisher()")
    shell.user_ns["implicit_reward"] = lambda logp_pol, logp_ref, beta=0.1: implicit_reward(logp_pol, logp_ref, beta) * 1
    run(shell, probe_source(GradeCell("check_implicit_reward", 1, [Probe("exercise", "implicit_reward", ("implicit_reward",), 0)]), {}))
    (record,) = records(shell)
    assert record["grade_id"] == "check_implicit_reward" and record["tampering"] == [] and record["probes"][0]["cases"]


# --- the tampering rule itself (grader.kernel_probe.__dpo_grader_tampering_watch), on a fake shell -------------------

class FakeSession:
    """What ipykernel's display publisher calls to send a message."""

    def send(self, *args, **kwargs):
        pass

    def msg(self, *args, **kwargs):
        pass


class FakePublisher:
    """ipykernel's ZMQDisplayPublisher, as far as the watch reads it: a session and the display hooks."""

    def __init__(self):
        self.session, self._hooks = FakeSession(), []


class IPythonOwn:
    def _clear_warning_registry(self):   # as IPython registers on 'pre_execute'
        pass


def flush_figures():   # stands for matplotlib's own hook (``benign``): switching backends removes it
    pass


def fake_shell():
    from IPython.core.events import EventManager, available_events

    shell = SimpleNamespace(events=EventManager(None, available_events), display_pub=FakePublisher(), own=IPythonOwn())
    shell.events.register("pre_execute", shell.own._clear_warning_registry)
    shell.events.register("post_execute", flush_figures)
    return shell


def learner_callback(*args):
    pass


def forged(*args, **kwargs):
    return {}


def empty_vars(module=None):   # a vars() that would hide every replaced attribute from a watch that looked it up late
    return {}


class AutoReloader:
    """IPython's autoreload extension registers two bound methods of its own."""

    def pre_run_cell(self, info=None):
        pass

    def post_execute(self):
        pass


# Changes a learner's cell makes, each as (name, what it does to a fake shell, what the watch must list): the
# honest ones add beside the machinery and must list nothing; the hostile ones remove or replace it.
HONEST_CHANGES = {
    "adds event callbacks (autoreload)": lambda sh, mp: (sh.events.register("pre_run_cell", AutoReloader().pre_run_cell),
                                                       sh.events.register("post_execute", AutoReloader().post_execute)),
    "adds a cell timer": lambda sh, mp: (sh.events.register("pre_run_cell", learner_callback),
                                         sh.events.register("post_run_cell", learner_callback)),
    "switches matplotlib's backend": lambda sh, mp: sh.events.unregister("post_execute", flush_figures),
    "re-registers an existing callback": lambda sh, mp: (sh.events.unregister("pre_execute", sh.own._clear_warning_registry),
                                                        sh.events.register("pre_execute", sh.own._clear_warning_registry)),
    "swaps the display publisher (%%capture)": lambda sh, mp: setattr(sh, "display_pub", FakePublisher()),
    "wraps sys.stdout for good (a tee)": lambda sh, mp: mp.setattr(sys, "stdout", SimpleNamespace(write=print)),
    "replaces sys.stderr and sys.displayhook": lambda sh, mp: (mp.setattr(sys, "stderr", SimpleNamespace()),
                                                              mp.setattr(sys, "displayhook", learner_callback)),
    "input() swapped per request (ipykernel)": lambda sh, mp: mp.setattr(builtins, "input", learner_callback),
    "adds a builtin and a module attribute": lambda sh, mp: (mp.setattr(builtins, "my_helper", learner_callback, raising=False),
                                                            mp.setattr(json, "my_note", 1, raising=False)),
}
HOSTILE_CHANGES = {
    "removes IPython's own callback": (
        lambda sh, mp: sh.events.unregister("pre_execute", sh.own._clear_warning_registry),
        "IPython's 'pre_execute' callback test_grader_kernel_program.IPythonOwn._clear_warning_registry was removed"),
    "replaces IPython's own callback": (
        lambda sh, mp: sh.events.callbacks["pre_execute"].__setitem__(0, learner_callback),
        "IPython's 'pre_execute' callback test_grader_kernel_program.IPythonOwn._clear_warning_registry was removed, "
        "replaced by test_grader_kernel_program.learner_callback"),
    "replaces a builtin": (lambda sh, mp: mp.setattr(builtins, "abs", learner_callback),
                           "builtins.abs was replaced by test_grader_kernel_program.learner_callback"),
    "replaces vars() to hide it": (lambda sh, mp: mp.setattr(builtins, "vars", empty_vars),
                                   "builtins.vars was replaced by test_grader_kernel_program.empty_vars"),
    "replaces json.dumps": (lambda sh, mp: mp.setattr(json, "dumps", forged),
                            "json.dumps was replaced by test_grader_kernel_program.forged"),
    "replaces rlhf_core.checks.probe": (lambda sh, mp: mp.setattr(checks, "probe", forged),
                                       "rlhf_core.checks.probe was replaced by test_grader_kernel_program.forged"),
    "deletes a checks attribute": (lambda sh, mp: mp.delattr(checks, "probe_sanity"),
                                   "rlhf_core.checks.probe_sanity was deleted"),
    "replaces an exercise's cases": (lambda sh, mp: mp.setattr(checks.EXERCISES["dpo_loss"], "cases", forged),
                                     "the inputs of check_dpo_loss (Exercise.cases) were replaced by test_grader_kernel_program.forged"),
    "adds a display hook that sees the record": (
        lambda sh, mp: sh.display_pub._hooks.append(forged),
        "a display hook test_grader_kernel_program.forged was added to the publisher the grader's record goes through"),
    "replaces the session's send": (lambda sh, mp: setattr(sh.display_pub.session, "send", forged),
                                    "the display publisher's session.send was replaced by test_grader_kernel_program.forged"),
    "replaces the publisher's session": (lambda sh, mp: setattr(sh.display_pub, "session", FakeSession()),
                                         "the display publisher's session was replaced by test_grader_kernel_program.FakeSession"),
}


def watch(shell):
    return kernel_probe.__dpo_grader_tampering_watch(shell, [flush_figures], dict(checks.EXERCISES))


@pytest.mark.parametrize("change", sorted(HONEST_CHANGES))
def test_what_a_learner_adds_beside_the_grader_is_not_tampering(change, monkeypatch):
    shell = fake_shell()
    tampering = watch(shell)
    HONEST_CHANGES[change](shell, monkeypatch)
    assert tampering() == []


@pytest.mark.parametrize("change", sorted(HOSTILE_CHANGES))
def test_what_removes_or_replaces_the_graders_machinery_is_named(change, monkeypatch):
    shell = fake_shell()
    tampering = watch(shell)
    assert tampering() == []
    act, said = HOSTILE_CHANGES[change]
    act(shell, monkeypatch)
    assert tampering() == [said]


def test_the_settings_reach_the_kernel_as_json_and_set_the_drill_variant(shell, monkeypatch):
    from rlhf_core.course.drill import VARIANT_ENV

    assert json.loads(json.dumps(preamble_settings(True))) == {"record_mime": RECORD_MIME, "crash_limit": CRASH_LIMIT,
                                                               "draw_figures": True, "figure_line": FIGURE_LINE,
                                                               "environ": {}}
    monkeypatch.setenv(VARIANT_ENV, "dpo")
    run(shell, preamble_source(variant="ipo"))
    run(shell, f"import os\nvariant = os.environ[{VARIANT_ENV!r}]")
    assert shell.user_ns["variant"] == "ipo"


def test_the_settings_decide_how_figures_show(shell):
    run(shell, preamble_source(figures=False))
    run(shell, "import matplotlib.pyplot as plt\nfigure = plt.figure()")
    data, _ = shell.display_formatter.format(shell.user_ns["figure"])
    assert data["text/plain"] == FIGURE_LINE and "image/png" not in data
    InteractiveShell.clear_instance()
    drawn = InteractiveShell.instance()
    drawn.run_cell(preamble_source(figures=True))
    drawn.run_cell("import matplotlib.pyplot as plt\nfigure = plt.figure()")
    data, _ = drawn.display_formatter.format(drawn.user_ns["figure"])
    assert data["text/plain"] != FIGURE_LINE


def test_the_kernel_program_is_only_functions_that_import_what_they_use():
    """What the preamble copies must stand alone in the learner's kernel: top-level functions only (named so as
    not to meet a learner's names), no module-level import, no annotation the kernel would have to evaluate."""
    tree = ast.parse(inspect.getsource(kernel_probe))
    body = tree.body[1:] if ast.get_docstring(tree) is not None else tree.body
    assert body and all(isinstance(node, ast.FunctionDef) for node in body), [type(n).__name__ for n in body]
    assert all(node.name.startswith("__dpo_grader_") for node in body)
    for node in body:
        arguments = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
        assert node.returns is None and all(a.annotation is None for a in arguments), node.name
    source = preamble_source()
    assert all(f"def {node.name}(" in source for node in body) and source.rstrip().splitlines()[-1].startswith("del ")
