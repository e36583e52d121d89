"""Every check, for every exercise: passes on the reference, fails on each registered mistake with
that mistake's own hint, and says 'not implemented' for the stub in rlhf_core.exercises."""

import inspect

import pytest

from rlhf_core import checks, exercises
from rlhf_core.checking import CheckFailed, check

CASES = [(name, i) for name, ex in checks.EXERCISES.items() for i in range(len(ex.mistakes))]


def test_every_exercise_has_a_check_function_and_a_stub():
    assert set(checks.EXERCISES) == set(exercises.EXERCISE_NAMES)
    for name in exercises.EXERCISE_NAMES:
        assert callable(getattr(checks, f"check_{name}"))
        assert callable(getattr(exercises, name))


@pytest.mark.parametrize("name", sorted(checks.EXERCISES))
def test_each_check_has_at_least_five_known_mistakes(name):
    assert len(checks.EXERCISES[name].mistakes) >= 5


@pytest.mark.parametrize("name", sorted(checks.EXERCISES))
def test_the_reference_passes(name, capsys):
    exercise = checks.EXERCISES[name]
    assert check(exercise, exercise.reference) is None
    assert capsys.readouterr().out.strip() == "✓ " + exercise.summary
    assert check(exercise, exercise.reference, quiet=True) == "✓ " + exercise.summary
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("name, index", CASES, ids=[f"{n}-{i}" for n, i in CASES])
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


LIBRARY_REFERENCES = {
    "optimal_policy": "rlhf_core.objective", "rlhf_objective": "rlhf_core.objective", "dpo_loss": "rlhf_core.losses",
    "implicit_reward": "rlhf_core.losses", "toy_dpo_step": "rlhf_core.toy", "get_logps": "rlhf_core.logps",
    "rms_norm": "rlhf_core.model", "swiglu": "rlhf_core.model", "apply_rope": "rlhf_core.model",
    "sft_step": "rlhf_core.train", "collate_pairs": "rlhf_core.data", "dpo_step": "rlhf_core.train",
    "diagnose_run": "rlhf_core.diagnostics",
}


def test_every_exercise_has_a_library_reference_for_yours_or_reference():
    from rlhf_core.notebook import REFERENCES

    assert REFERENCES == LIBRARY_REFERENCES
    assert set(REFERENCES) == set(checks.EXERCISES)


@pytest.mark.parametrize("name", sorted(LIBRARY_REFERENCES))
def test_yours_or_reference_falls_back_to_a_library_function_that_passes(name, capsys):
    from rlhf_core.notebook import yours_or_reference

    chosen = yours_or_reference(name, getattr(exercises, name))     # the stub fails its check
    assert chosen is not getattr(exercises, name)
    assert "does not pass its check yet" in capsys.readouterr().out
    check(checks.EXERCISES[name], chosen, quiet=True)                # and the fallback passes it


@pytest.mark.parametrize("name, module", sorted(LIBRARY_REFERENCES.items()))
def test_stub_signatures_match_the_library(name, module):
    import importlib

    reference = getattr(importlib.import_module(module), name)
    stub = getattr(exercises, name)
    ref_params = list(inspect.signature(reference).parameters)
    stub_params = list(inspect.signature(stub).parameters)
    assert stub_params == [p for p in ref_params if p != "loss_fn"], (stub_params, ref_params)


def test_module_mode_runner_reports_every_stub(capsys):
    assert exercises.main() == 1
    out = capsys.readouterr().out
    assert out.count("not implemented yet") == len(exercises.EXERCISE_NAMES)
    assert f"0/{len(exercises.EXERCISE_NAMES)} exercises pass" in out


def test_a_failed_check_shows_its_verdict_in_jupyter_not_a_traceback():
    from rlhf_core.checking import CheckFailed
    from rlhf_core.checks import check_dpo_loss

    def stub(*args, **kwargs):
        raise NotImplementedError()

    try:
        check_dpo_loss(stub)
    except CheckFailed as exc:
        shown = exc._render_traceback_()      # what IPython prints in place of the traceback
    else:
        raise AssertionError("a stub passed check_dpo_loss")
    assert len(shown) == 1 and "not implemented yet" in shown[0] and "File " not in shown[0]
