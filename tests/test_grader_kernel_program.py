"""The kernel program (:mod:`grader.kernel_probe`) as the preamble cell runs it: a real module, set up by JSON
settings, that leaves one name in the learner's namespace and records what the probes measure.

Run here in an IPython shell (no kernel, no sandbox: the sandboxed runs are ``tests/test_autograde_hostile.py``)."""

from __future__ import annotations

import ast
import inspect
import json

import pytest
from IPython.core.interactiveshell import InteractiveShell

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
    assert "builtins.abs was replaced" in tampered["tampering"]
    assert tampered["probes"][0].get("cases"), tampered["probes"]     # the learner's function was measured


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
