"""Every exercise is one record (rlhf_core.checks.EXERCISES), and everything else is read from it: these
tests read the registry, never a list of names kept beside it.

For every record: the reference passes its check, each registered mistake fails with that mistake's own
hint, the module-mode stub is reported 'not implemented', the stub carries the reference's signature and
docstring, ``check_<name>`` is exported with one signature; and the record keeps the rules the grader's
source rewriting depends on (see rlhf_core.checks.framework's docstring). Each rule is a function that
returns what is wrong with a record, tested on records that break it, so a rule that cannot fail is caught.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import textwrap
from pathlib import Path

import pytest

from rlhf_core import checks
from rlhf_core.checks import CheckFailed, check
from rlhf_core.checks.derived import check_cell_source, exercise_signature, stub_source
from rlhf_core.checks.framework import Exercise, Mistake
from rlhf_core.course import exercises

SLOW = {"sft_step", "dpo_step"}   # each probe trains a tiny transformer: seconds per case
LIBRARY = Path(checks.__file__).resolve().parents[1]


def _param(name, *rest):
    return pytest.param(name, *rest, marks=pytest.mark.slow, id="-".join(map(str, (name, *rest)))) if name in SLOW else \
        pytest.param(name, *rest, id="-".join(map(str, (name, *rest))))


CASES = [_param(name, i) for name, ex in checks.EXERCISES.items() for i in range(len(ex.mistakes))]
NAMES = [_param(name) for name in sorted(checks.EXERCISES)]


# ---- the rules, each a function that says what is wrong ----------------------------------------------


def reference_problem(exercise) -> str | None:
    """A reference must be the library's own module-level function of the exercise's name (not a copy, a
    wrapper, a lambda, or a function of the checks or the course machinery)."""
    from rlhf_core.model import LIBRARY_PARTS

    reference = exercise.reference
    module, name = getattr(reference, "__module__", "") or "", getattr(reference, "__name__", "")
    if not inspect.isfunction(reference):
        return f"{exercise.name}: the reference {reference!r} is not a function"
    if not module.startswith("rlhf_core.") or module.startswith(("rlhf_core.checks", "rlhf_core.course")):
        return f"{exercise.name}: the reference lives in {module!r}, not in the library's own modules"
    if name != exercise.name:
        return f"{exercise.name}: the reference is named {name!r}"
    found = LIBRARY_PARTS.get(name) if name in LIBRARY_PARTS else getattr(importlib.import_module(module), name, None)
    if found is not reference:
        return f"{exercise.name}: {module}.{name} is not the reference itself"
    return None


def mistakes_problem(exercise) -> str | None:
    """At least five named mistakes, each with its own id and its own hint."""
    ids, hints = [m.id for m in exercise.mistakes], [m.hint for m in exercise.mistakes]
    if len(ids) < 5:
        return f"{exercise.name}: {len(ids)} known mistakes, at least 5 needed"
    if len(set(ids)) != len(ids) or len(set(hints)) != len(hints):
        return f"{exercise.name}: two mistakes share an id or a hint"
    return None


def record_problem(exercise, source: str) -> str | None:
    """The record is written ``register(Exercise(name="…", …))``, keywords only, in the source of the module
    that holds its ``cases`` (what grader.withheld rewrites)."""
    calls = [node for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Call)
             and getattr(node.func, "id", getattr(node.func, "attr", None)) == "Exercise"]
    for call in calls:
        named = {k.arg: k.value for k in call.keywords if k.arg}
        if isinstance(named.get("name"), ast.Constant) and named["name"].value == exercise.name:
            if call.args or any(k.arg is None for k in call.keywords):
                return f"{exercise.name}: Exercise(...) takes positional or ** arguments; keywords only"
            return None
    return f"{exercise.name}: no Exercise(name={exercise.name!r}, ...) in the module of its cases"


PRIVATE_NAME = re.compile(r"(?<![A-Za-z0-9_])_[A-Za-z0-9_]+")   # as grader.withheld reads them


def shared_private_names(module_source: str, other_sources: dict[str, str]) -> dict[str, list[str]]:
    """The module-level private functions of a record's module whose bare name appears in another file of
    the library, with those files: while the lesson is graded such a helper would stay readable."""
    tree = ast.parse(module_source)
    private = {node.name for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("_")}
    shared: dict[str, list[str]] = {}
    for path, text in other_sources.items():
        for name in private & set(PRIVATE_NAME.findall(text)):
            shared.setdefault(name, []).append(path)
    return shared


def _module_source(exercise) -> tuple[str, str]:
    module = importlib.import_module(exercise.cases.__module__)
    return str(Path(module.__file__).resolve().relative_to(LIBRARY)), Path(module.__file__).read_text()


# ---- the rules can fail --------------------------------------------------------------------------------


def _a_record(**changes) -> Exercise:
    fields = dict(name="dpo_loss", cases=lambda seed: [], reference=checks.EXERCISES["dpo_loss"].reference,
                  mistakes=[Mistake(f"hint {i}", lambda *a, **k: None, id=f"m{i}") for i in range(5)],
                  summary="s", formula="f", lesson=2)
    return Exercise(**{**fields, **changes})


def test_the_rules_catch_records_that_break_them():
    assert reference_problem(_a_record()) is None and mistakes_problem(_a_record()) is None
    assert "not a function" in reference_problem(_a_record(reference=object()))
    assert "library's own modules" in reference_problem(_a_record(reference=check))         # a function of the checks
    assert "library's own modules" in reference_problem(_a_record(reference=exercises.dpo_loss))   # the stub
    assert "library's own modules" in reference_problem(_a_record(reference=lambda *a: 0))
    from rlhf_core import losses
    assert "named 'dpo_losses'" in reference_problem(_a_record(reference=losses.dpo_losses))

    def dpo_loss(*args):   # a copy under the right name, in the right module
        return losses.dpo_loss(*args)

    dpo_loss.__module__ = "rlhf_core.losses"
    assert "not the reference itself" in reference_problem(_a_record(reference=dpo_loss))
    assert "4 known mistakes" in mistakes_problem(_a_record(mistakes=_a_record().mistakes[:4]))
    twice = [*_a_record().mistakes, Mistake("hint 0", lambda *a: None, id="again")]
    assert "share an id or a hint" in mistakes_problem(_a_record(mistakes=twice))
    good = 'register(Exercise(name="dpo_loss", lesson=2))'
    assert record_problem(_a_record(), good) is None
    assert "keywords only" in record_problem(_a_record(), 'register(Exercise("dpo_loss", name="dpo_loss"))')
    assert "keywords only" in record_problem(_a_record(), 'register(Exercise(name="dpo_loss", **extra))')
    assert "no Exercise" in record_problem(_a_record(), 'register(Exercise(name=NAME))')
    source = "def _helper():\n    pass\n\ndef _only_here():\n    pass\n"
    assert shared_private_names(source, {"a.py": "x = _helper()", "b.py": "# _only_here_too"}) == {"_helper": ["a.py"]}


# ---- every record keeps them ----------------------------------------------------------------------------


def test_the_registry_is_in_lesson_order_and_covers_every_lesson():
    lessons = [exercise.lesson for exercise in checks.EXERCISES.values()]
    assert lessons == sorted(lessons) and set(lessons) == set(range(1, 12))   # 10: the drill's interview variants
    assert exercises.EXERCISE_NAMES == tuple(checks.EXERCISES)                 # one list: the stubs follow the registry


@pytest.mark.parametrize("name", sorted(checks.EXERCISES))
def test_each_record_keeps_the_rules(name):
    exercise = checks.EXERCISES[name]
    path, source = _module_source(exercise)
    problems = [reference_problem(exercise), mistakes_problem(exercise), record_problem(exercise, source)]
    assert [p for p in problems if p] == []
    assert exercise.points > 0 and all(isinstance(s, int) and s != 0 for s in exercise.hidden_seeds)


def test_no_private_helper_of_a_record_module_shares_its_name_with_another_module():
    sources = {str(p.relative_to(LIBRARY)): p.read_text() for p in LIBRARY.rglob("*.py") if "__pycache__" not in p.parts}
    shared = {}
    for path, source in {_module_source(e) for e in checks.EXERCISES.values()}:
        shared.update(shared_private_names(source, {p: t for p, t in sources.items() if p != path}))
    assert shared == {}, f"private helpers named in other modules too (rename them): {shared}"


def test_points_and_hidden_seeds_agree_with_the_shipped_lessons():
    """The record's points and seeds are those of its check cell in its own lesson (grader/lessons.json)."""
    from grader.course import read_lessons_json

    cells = {}
    for lesson, graded in read_lessons_json().items():
        for cell in graded:
            cells[(int(lesson[:2]), cell.grade_id)] = cell
    for name, exercise in checks.EXERCISES.items():
        cell = cells.get((exercise.lesson, f"check_{name}"))
        assert cell is not None, f"lesson {exercise.lesson:02d} has no check cell check_{name}: add it ({check_cell_source(exercise)!r})"
        seeds = tuple(p.seed for p in cell.probes if p.kind == "exercise" and p.name == name)
        assert (cell.points, seeds) == (exercise.points, (0, *exercise.hidden_seeds)), name


# ---- what derives from a record ----------------------------------------------------------------------------


def test_every_exercise_has_an_exported_check_with_one_signature():
    exported = {name for name in checks.__all__ if name.startswith("check_")}
    assert exported == {f"check_{name}" for name in checks.EXERCISES} | {"check_toy_training"}   # and the sanity run
    for name, exercise in checks.EXERCISES.items():
        fn = getattr(checks, f"check_{name}")
        assert fn.__name__ == f"check_{name}" and fn.__module__ == "rlhf_core.checks"
        assert list(inspect.signature(fn).parameters) == ["candidate", "seed", "quiet"]
        assert fn.__doc__.startswith(f"Check your ``{name}(") and exercise.summary in fn.__doc__
    from rlhf_core.checks import check_plackett_luce_loss  # importable by name like any other
    assert check_plackett_luce_loss is checks.CHECKS["check_plackett_luce_loss"]


@pytest.mark.parametrize("name", NAMES)
def test_the_reference_passes(name, capsys):
    exercise = checks.EXERCISES[name]
    check_fn = getattr(checks, f"check_{name}")
    assert check_fn(exercise.reference) is None                      # every check_<name> returns None
    assert capsys.readouterr().out.strip() == "✓ " + exercise.summary
    assert check_fn(exercise.reference, quiet=True) is None
    assert capsys.readouterr().out == ""
    assert check(exercise, exercise.reference, quiet=True) == "✓ " + exercise.summary   # the framework's returns it


@pytest.mark.parametrize("name, index", CASES)
def test_each_known_mistake_fails_with_its_own_hint(name, index):
    exercise = checks.EXERCISES[name]
    mistake = exercise.mistakes[index]
    with pytest.raises(CheckFailed) as info:
        check(exercise, mistake.fn, quiet=True)
    assert mistake.hint in str(info.value), f"{name}: mistake {index} was reported as: {info.value}"
    assert info.value.mistake == mistake.id


@pytest.mark.parametrize("name", sorted(checks.EXERCISES))
def test_the_stub_is_reported_as_not_implemented(name):
    with pytest.raises(CheckFailed, match="not implemented yet"):
        check(checks.EXERCISES[name], getattr(exercises, name), quiet=True)


@pytest.mark.parametrize("name", sorted(checks.EXERCISES))
def test_the_stub_carries_the_references_contract(name):
    exercise = checks.EXERCISES[name]
    stub = getattr(exercises, name)
    assert inspect.getdoc(stub) == inspect.getdoc(exercise.reference) != ""
    assert str(inspect.signature(stub)) == str(exercise_signature(exercise))
    # the library's extras (a swappable loss_fn, keyword-only options) are not part of the exercise
    ref_params = [p.name for p in inspect.signature(exercise.reference).parameters.values()
                  if p.kind is not inspect.Parameter.KEYWORD_ONLY and p.name != "loss_fn"]
    assert list(inspect.signature(stub).parameters) == ref_params
    with pytest.raises(NotImplementedError):
        stub(*[None] * len(ref_params))


def test_the_dpo_step_stub_names_the_cached_reference_like_dpo_loss():
    params = list(inspect.signature(exercises.dpo_step).parameters)
    assert params == ["policy", "batch", "logp_ref_chosen", "logp_ref_rejected", "optimizer", "beta"]


def test_the_check_cell_holds_the_visible_check_and_the_hidden_seeds():
    text = check_cell_source(checks.EXERCISES["implicit_reward"])
    assert text == ("from rlhf_core.checks import check_implicit_reward\ncheck_implicit_reward(implicit_reward)\n"
                    "### BEGIN HIDDEN TESTS\ncheck_implicit_reward(implicit_reward, seed=303, quiet=True)\n"
                    "### END HIDDEN TESTS\n")
    from grader.spec import probes_in_source

    assert [p.seed for p in probes_in_source(text)] == [0, 303]     # what the grader reads from such a cell


def test_the_model_parts_references_survive_using_parts():
    from rlhf_core import model

    with model.using_parts(rms_norm=lambda x, w, eps=1e-6: x, swiglu=lambda *a: a[0], apply_rope=lambda x, c, s: x):
        for name in ("rms_norm", "swiglu", "apply_rope"):
            assert checks.EXERCISES[name].reference is model.LIBRARY_PARTS[name]
            assert checks.EXERCISES[name].reference is not getattr(model, name)
        check(checks.EXERCISES["rms_norm"], model.LIBRARY_PARTS["rms_norm"], quiet=True)


def test_the_notebook_helper_reads_the_registry(monkeypatch, capsys):
    from rlhf_core.course import notebook

    def stand_in(*args, **kwargs):
        raise AssertionError("never called")

    monkeypatch.setattr(checks.EXERCISES["dpo_loss"], "reference", stand_in)
    assert notebook.yours_or_reference("dpo_loss", exercises.dpo_loss) is stand_in   # no second table to agree with
    assert not hasattr(notebook, "REFERENCES")


@pytest.mark.parametrize("name", NAMES)
def test_yours_or_reference_falls_back_to_a_library_function_that_passes(name, capsys):
    from rlhf_core.course.notebook import yours_or_reference

    chosen = yours_or_reference(name, getattr(exercises, name))     # the stub fails its check
    assert chosen is checks.EXERCISES[name].reference
    out = capsys.readouterr().out
    assert "does not pass its check yet" in out and f"({name} — not implemented yet)" in out
    check(checks.EXERCISES[name], chosen, quiet=True)                # and the fallback passes it


# ---- module mode -------------------------------------------------------------------------------------------


def test_module_mode_runner_reports_every_stub(capsys):
    assert exercises.main([]) == 1
    out = capsys.readouterr().out
    assert out.count("not implemented yet") == len(exercises.EXERCISE_NAMES)
    assert f"0/{len(exercises.EXERCISE_NAMES)} exercises pass" in out and "init my_exercises.py" in out


def test_module_mode_a_learners_file_from_init_to_a_pass(tmp_path, capsys):
    path = tmp_path / "mine.py"
    assert exercises.main(["init", str(path)]) == 0
    text = path.read_text()
    for exercise in checks.EXERCISES.values():
        assert stub_source(exercise) in text
    compile(text, str(path), "exec")
    assert exercises.main([str(path), "dpo_loss", "plackett_luce_loss"]) == 1
    assert capsys.readouterr().out.count("not implemented yet") == 2

    body = textwrap.indent("h = beta * (logp_pol - logp_ref)\n"
                           "remaining = torch.logcumsumexp(h.flip(-1), dim=-1).flip(-1)\n"
                           "return -(h - remaining).sum(-1).mean()\n", "    ")
    start = text.index("def plackett_luce_loss(")
    end = text.index("raise NotImplementedError", start)
    path.write_text(text[:end] + body.lstrip() + text[end + len("raise NotImplementedError\n"):])
    assert exercises.main([str(path), "plackett_luce_loss"]) == 0
    assert "✓ plackett_luce_loss" in capsys.readouterr().out

    # init again keeps the learner's work and only adds what the file lacks
    kept = path.read_text()
    start = kept.index("# ---- lesson 01: rlhf_objective")
    end = kept.index("# ---- lesson 02: dpo_loss")
    path.write_text(kept[:start] + kept[end:])
    assert exercises.write_stubs(path) == ["rlhf_objective"]
    assert exercises.write_stubs(path) == []
    assert "return -(h - remaining).sum(-1).mean()" in path.read_text()
    assert exercises.main([str(path), "no_such_exercise"]) == 2


def test_a_failed_check_shows_its_verdict_in_jupyter_not_a_traceback(monkeypatch):
    from rlhf_core.checks import check_dpo_loss, render

    def stub(*args, **kwargs):
        raise NotImplementedError()

    try:
        check_dpo_loss(stub)
    except CheckFailed as exc:
        shown = exc._render_traceback_()      # what IPython prints in place of the traceback (a terminal here)
        monkeypatch.setattr(render, "in_notebook", lambda: True)
        import IPython.display

        monkeypatch.setattr(IPython.display, "display", lambda *a, **k: None)
        in_lab = exc._render_traceback_()     # in a notebook: the HTML block is displayed, then one short line
    else:
        raise AssertionError("a stub passed check_dpo_loss")
    assert len(shown) == 1 and "not implemented yet" in shown[0] and "File " not in shown[0]
    assert len(in_lab) == 1 and "not implemented yet" in in_lab[0] and "\n" not in in_lab[0]
