"""Every check, for every exercise: passes on the reference, fails on each registered mistake with
that mistake's own hint, and says 'not implemented' for the stub in rlhf_core.course.exercises. The one
registry (rlhf_core.checks.EXERCISES) names each exercise's reference: the library's own function."""

import importlib
import inspect

import pytest

from rlhf_core import checks
from rlhf_core.checks import CheckFailed, check
from rlhf_core.course import exercises

SLOW = {"sft_step", "dpo_step"}   # each probe trains a tiny transformer: seconds per case


def _param(name, *rest):
    return pytest.param(name, *rest, marks=pytest.mark.slow, id="-".join(map(str, (name, *rest)))) if name in SLOW else \
        pytest.param(name, *rest, id="-".join(map(str, (name, *rest))))


CASES = [_param(name, i) for name, ex in checks.EXERCISES.items() for i in range(len(ex.mistakes))]
NAMES = [_param(name) for name in sorted(checks.EXERCISES)]


def test_every_exercise_has_a_check_function_and_a_stub():
    assert exercises.EXERCISE_NAMES == tuple(checks.EXERCISES)   # one list: the stubs follow the registry
    assert exercises.EXERCISE_NAMES == (   # in lesson order, whatever order the lesson modules are imported in
        "optimal_policy", "rlhf_objective", "dpo_loss", "implicit_reward", "toy_dpo_step", "get_logps",
        "rms_norm", "swiglu", "apply_rope", "sft_step", "collate_pairs", "dpo_step", "diagnose_run",
        "ipo_loss", "conservative_dpo_loss", "simpo_loss", "orpo_odds_ratio_loss", "export_model")
    lessons = [exercise.lesson for exercise in checks.EXERCISES.values()]
    assert lessons == sorted(lessons) and set(lessons) == set(range(1, 12))   # 10: the drill's interview variants
    for name in exercises.EXERCISE_NAMES:
        assert callable(getattr(checks, f"check_{name}"))
        assert callable(getattr(exercises, name))


@pytest.mark.parametrize("name", sorted(checks.EXERCISES))
def test_each_check_has_at_least_five_known_mistakes(name):
    assert len(checks.EXERCISES[name].mistakes) >= 5


@pytest.mark.parametrize("name", NAMES)
def test_the_reference_passes(name, capsys):
    exercise = checks.EXERCISES[name]
    assert check(exercise, exercise.reference) is None
    assert capsys.readouterr().out.strip() == "✓ " + exercise.summary
    assert check(exercise, exercise.reference, quiet=True) == "✓ " + exercise.summary
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("name, index", CASES)
def test_each_known_mistake_fails_with_its_own_hint(name, index):
    exercise = checks.EXERCISES[name]
    mistake = exercise.mistakes[index]
    with pytest.raises(CheckFailed) as info:
        check(exercise, mistake.fn, quiet=True)
    assert mistake.hint in str(info.value), f"{name}: mistake {index} was reported as: {info.value}"


@pytest.mark.parametrize("name", sorted(checks.EXERCISES))
def test_the_stub_is_reported_as_not_implemented(name):
    with pytest.raises(CheckFailed, match="not implemented yet"):
        check(checks.EXERCISES[name], getattr(exercises, name), quiet=True)


LIBRARY_MODULES = {   # where the library keeps each exercise's reference
    "optimal_policy": "rlhf_core.objective", "rlhf_objective": "rlhf_core.objective", "dpo_loss": "rlhf_core.losses",
    "implicit_reward": "rlhf_core.losses", "toy_dpo_step": "rlhf_core.toy", "get_logps": "rlhf_core.logps",
    "rms_norm": "rlhf_core.model", "swiglu": "rlhf_core.model", "apply_rope": "rlhf_core.model",
    "sft_step": "rlhf_core.train", "collate_pairs": "rlhf_core.data", "dpo_step": "rlhf_core.train",
    "diagnose_run": "rlhf_core.diagnostics", "export_model": "rlhf_core.hf",
    "ipo_loss": "rlhf_core.losses", "conservative_dpo_loss": "rlhf_core.losses", "simpo_loss": "rlhf_core.losses",
    "orpo_odds_ratio_loss": "rlhf_core.losses",
}


def test_every_reference_is_the_library_function_itself():
    from rlhf_core.model import LIBRARY_PARTS

    assert set(LIBRARY_MODULES) == set(checks.EXERCISES)
    for name, module in LIBRARY_MODULES.items():
        reference = checks.EXERCISES[name].reference
        assert reference.__module__ == module and reference.__name__ == name, (name, reference)
        assert getattr(importlib.import_module(module), name) is reference, name   # not a copy, not a wrapper
        if name in LIBRARY_PARTS:
            assert LIBRARY_PARTS[name] is reference


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


@pytest.mark.parametrize("name", sorted(LIBRARY_MODULES))
def test_yours_or_reference_falls_back_to_a_library_function_that_passes(name, capsys):
    from rlhf_core.course.notebook import yours_or_reference

    chosen = yours_or_reference(name, getattr(exercises, name))     # the stub fails its check
    assert chosen is checks.EXERCISES[name].reference
    out = capsys.readouterr().out
    assert "does not pass its check yet" in out and f"({name} — not implemented yet)" in out
    check(checks.EXERCISES[name], chosen, quiet=True)                # and the fallback passes it


@pytest.mark.parametrize("name", sorted(LIBRARY_MODULES))
def test_stub_signatures_match_the_library(name):
    reference = checks.EXERCISES[name].reference
    stub = getattr(exercises, name)
    # the library's extras (a swappable loss_fn, keyword-only options) are not part of the exercise
    ref_params = [p.name for p in inspect.signature(reference).parameters.values()
                  if p.kind is not inspect.Parameter.KEYWORD_ONLY and p.name != "loss_fn"]
    stub_params = list(inspect.signature(stub).parameters)
    assert stub_params == ref_params, (stub_params, ref_params)


def test_the_dpo_step_stub_names_the_cached_reference_like_dpo_loss():
    params = list(inspect.signature(exercises.dpo_step).parameters)
    assert params == ["policy", "batch", "logp_ref_chosen", "logp_ref_rejected", "optimizer", "beta"]


def test_module_mode_runner_reports_every_stub(capsys):
    assert exercises.main() == 1
    out = capsys.readouterr().out
    assert out.count("not implemented yet") == len(exercises.EXERCISE_NAMES)
    assert f"0/{len(exercises.EXERCISE_NAMES)} exercises pass" in out


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
