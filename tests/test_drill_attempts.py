"""Attempts on a variant: which paper a drill is on, how "random" draws it, what the drill skips, and the
variant's sanity plan on right and known-wrong losses."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from rlhf_core import losses
from rlhf_core.checks import check_dpo_loss, check_ipo_loss
from rlhf_core.course import drill as drill_module
from rlhf_core.course.drill import VARIANT_ENV, Drill, choose_variant, drill_history, start_drill
from rlhf_core.course.variant_sanity import margin_minimum, run_variant_sanity
from rlhf_core.course.variants import VARIANTS, get_variant, pick_variant, train_toy_with


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """No drill in this process, no variant fixed by the environment, an empty history in tmp_path."""
    monkeypatch.setattr(drill_module, "_CURRENT", None)
    monkeypatch.delenv(VARIANT_ENV, raising=False)
    monkeypatch.setenv("RLHF_DRILL_HISTORY", str(tmp_path))
    return tmp_path


def _save(drill: Drill) -> None:
    drill.scorecard({}, "", implicit_reward=losses.implicit_reward, dpo_loss=losses.dpo_loss,
                    variant_loss=drill.variant.reference, print_it=False).save()


def test_a_first_attempt_is_dpo_and_the_next_is_random(fresh, capsys):
    first = start_drill()
    assert first.variant.key == "dpo" and first.seed is None
    _save(first)
    drill_module._CURRENT = None                      # a new kernel: only the history remembers
    second = start_drill()
    assert second.variant.key != "dpo" and second.seed is not None and second.left_out == "dpo"
    assert f"seed {second.seed}" in capsys.readouterr().out


def test_two_random_attempts_in_a_row_draw_different_variants_and_the_history_shows_both(fresh, capsys):
    seen = []
    for _ in range(6):
        d = start_drill(variant="random", restart=True)
        seen.append(d.variant.key)
        _save(d)
    assert all(a != b for a, b in zip(seen, seen[1:])), seen
    records = drill_history(plot=False)
    assert [r["variant"] for r in records] == seen
    assert all(isinstance(r["seed"], int) for r in records) and [r["left_out"] for r in records[1:]] == seen[:-1]
    table = capsys.readouterr().out
    assert all(key in table for key in set(seen)) and "variants done: " in table


def test_a_recorded_seed_and_left_out_variant_draw_the_same_paper_again(fresh):
    for seed in range(50):
        for previous in [None, *VARIANTS]:
            key = pick_variant(seed, exclude=previous)
            assert key != previous and key == pick_variant(seed, exclude=previous)
    assert {pick_variant(seed) for seed in range(200)} == set(VARIANTS)
    assert choose_variant("random", seed=7)[0].key == pick_variant(7, exclude=None)


def test_the_environment_fixes_the_variant_and_an_unknown_one_is_refused(fresh, monkeypatch):
    monkeypatch.setenv(VARIANT_ENV, "orpo")
    assert start_drill().variant.key == "orpo"
    with pytest.raises(ValueError, match="unknown drill variant"):
        choose_variant("kto")


def test_the_checks_of_other_variants_skip_and_the_own_one_runs(capsys):
    ipo = Drill(variant=get_variant("ipo"))
    ipo.check("dpo_loss", check_dpo_loss, None)                    # another variant's exercise: skipped, not run
    ipo.check("toy_dpo_step", check_dpo_loss, None)                # DPO only
    assert "skipped" in capsys.readouterr().out and ipo.checks == {}
    with pytest.raises(AssertionError, match="not implemented"):
        ipo.check("ipo_loss", check_ipo_loss, VARIANTS["ipo"].stub_function())
    assert not ipo.checks["ipo_loss"].passed
    assert ipo.applies("implicit_reward") and not ipo.applies("simpo_loss")
    dpo = Drill()
    assert dpo.applies("dpo_loss") and dpo.applies("six sanity checks") and not dpo.applies("ipo_loss")


@pytest.mark.parametrize("key", [k for k in VARIANTS if k != "dpo"])
def test_the_scorecard_of_a_variant_is_green_on_its_reference_and_names_its_rubric(key, capsys):
    d = Drill(variant=get_variant(key))
    card = d.scorecard({}, "", implicit_reward=losses.implicit_reward, variant_loss=VARIANTS[key].reference)
    applying = [r for r in card["sanity"] if r.applies]
    assert applying and all(r.passed for r in applying), [r.message for r in card["sanity"]]
    assert set(card["checks"]) == {VARIANTS[key].exercise, "implicit_reward"} and all(ok for ok, _ in card["checks"].values())
    text = capsys.readouterr().out
    assert VARIANTS[key].title in text and all(item in text for item in VARIANTS[key].rubric)
    assert card.record()["variant"] == key


def test_a_variants_scorecard_shows_a_stub_without_raising(capsys):
    d = Drill(variant=get_variant("simpo"))
    card = d.scorecard({}, "", implicit_reward=losses.implicit_reward, variant_loss=VARIANTS["simpo"].stub_function())
    assert not card["checks"]["simpo_loss"][0]
    failed = [r for r in card["sanity"] if r.applies and not r.passed]
    assert {r.number for r in failed} >= {1, 3, 4, 5, 6}
    assert "training the toy policy with your simpo_loss failed" in next(r.message for r in failed if r.number == 5)


# --- the sanity plan on known-wrong losses: each must fail where the plan says it should ---------------------------

def _ipo_as_dpo(pc, pr, rc, rr, beta=0.1):                 # DPO's logistic loss handed in as IPO
    return losses.dpo_loss(pc, pr, rc, rr, beta=beta)


def _ipo_beta_on_margin(pc, pr, rc, rr, beta=0.1):         # β multiplies the margin, target 1/(2β) kept
    return ((beta * ((pc - rc) - (pr - rr)) - 1 / (2 * beta)) ** 2).mean()


def _cdpo_weights_swapped(pc, pr, rc, rr, beta=0.1, label_smoothing=0.1):
    h = beta * ((pc - rc) - (pr - rr))
    return (-label_smoothing * F.logsigmoid(h) - (1 - label_smoothing) * F.logsigmoid(-h)).mean()


def _simpo_gamma_inside(a, b, beta=2.0, gamma=0.5):
    return -F.logsigmoid(beta * (a - b - gamma)).mean()


def _simpo_no_gamma(a, b, beta=2.0, gamma=0.5):
    return -F.logsigmoid(beta * (a - b)).mean()


def _orpo_naive(a, b):
    log_odds = lambda x: x - torch.log(1 - torch.exp(x))
    return -F.logsigmoid(log_odds(a) - log_odds(b)).mean()


def _orpo_swapped(a, b):
    return losses.orpo_odds_ratio_loss(b, a)


@pytest.mark.parametrize("key, wrong, failing", [
    ("ipo", _ipo_as_dpo, {1, 4}),
    ("ipo", _ipo_beta_on_margin, {4}),       # at a zero margin it is still 25: only the margin probe sees β
    ("cdpo", _cdpo_weights_swapped, {4}),
    ("simpo", _simpo_gamma_inside, {1, 6}),
    ("simpo", _simpo_no_gamma, {1}),
    ("orpo", _orpo_naive, {6}),
    ("orpo", _orpo_swapped, {4}),
])
def test_a_variants_sanity_plan_fails_a_known_wrong_loss_where_it_should(key, wrong, failing):
    results = run_variant_sanity(key, wrong, losses.implicit_reward, None, quiet=True)
    failed = {r.number for r in results if r.applies and not r.passed and not r.message.startswith("not run")}
    assert failing <= failed, [r.message for r in results]
    for r in results:
        if r.number in failing:
            assert r.message.startswith("✗ sanity check") and "expected" in r.message


@pytest.mark.parametrize("key", list(VARIANTS))
def test_every_variants_sanity_plan_passes_its_reference_on_the_trained_toy(key):
    results = run_variant_sanity(key, VARIANTS[key].reference, losses.implicit_reward, train_toy_with(key), quiet=True)
    assert [r.number for r in results] == [1, 2, 3, 4, 5, 6]
    assert all(r.passed for r in results), [r.message for r in results]
    assert [r.number for r in results if not r.applies] == ([2] if not VARIANTS[key].uses_reference else [])


def test_the_margin_minimum_of_each_variant_is_where_its_reference_loss_is_smallest():
    from rlhf_core.course.variants import toy_loss_fn

    def at(loss, margin: float) -> float:
        return float(loss(torch.tensor([margin / 2]), torch.tensor([-margin / 2]), torch.zeros(1), torch.zeros(1)))

    finite = [key for key in VARIANTS if math.isfinite(margin_minimum(key))]
    assert finite == ["ipo", "cdpo"]
    for key in finite:
        m, loss = margin_minimum(key), toy_loss_fn(key)
        assert at(loss, m) < at(loss, 0.9 * m) and at(loss, m) < at(loss, 1.1 * m), key


# --- DPO is one variant among five: the drill reads the record, never the paper's name ---------------------------

def test_no_course_module_branches_on_a_variants_name():
    import pathlib
    import re

    import rlhf_core.course as course

    branches = []
    for path in pathlib.Path(course.__file__).parent.glob("*.py"):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"""(\bkey|variant)\s*(==|!=|in)\s*\(?["'](dpo|ipo|cdpo|simpo|orpo)["']""", line):
                branches.append(f"{path.name}:{number}: {line.strip()}")
    assert not branches, "\n".join(branches)


def test_a_renamed_dpo_record_gets_the_dpo_drill(capsys):
    """The same record under another key: the same exercises, skips, toy training, sanity plan and scorecard."""
    from dataclasses import replace

    from rlhf_core.course import variants as variants_module
    from rlhf_core.toy import toy_dpo_step

    renamed = replace(VARIANTS["dpo"], key="dpo-again", names=("dpo",))
    registry = variants_module.VARIANTS
    saved = dict(registry)   # restored in its own order: that order picks each student's graded variant (plan)
    registry.clear()
    registry.update({(renamed.key if key == "dpo" else key): (renamed if key == "dpo" else v) for key, v in saved.items()})
    try:
        drill = Drill(variant=renamed)
        drill.begin("implement")
        drill.begin("sanity-check")
        out = capsys.readouterr().out
        assert "Your exercises: dpo_loss, implicit_reward, toy_dpo_step" in out and "sanity plan" not in out
        assert drill.applies("toy_dpo_step") and drill.applies("six sanity checks") and not drill.applies("ipo_loss")
        card = drill.scorecard({}, "DPO runs PPO.", dpo_loss=losses.dpo_loss, implicit_reward=losses.implicit_reward,
                               toy_step=toy_dpo_step, print_it=False)
        assert [r.passed for r in card["sanity"]] == [True] * 6 and set(card["checks"]) == set(renamed.exercises)
        assert [f for f, _ in card["red_flags"]] == ["described a PPO / RL loop"]
    finally:
        registry.clear()
        registry.update(saved)
    assert list(registry) == list(saved)


def test_the_dpo_scorecard_trains_the_toy_with_the_learners_step_and_says_when_it_is_missing():
    from rlhf_core.toy import toy_dpo_step

    card = Drill().scorecard({}, "", dpo_loss=losses.dpo_loss, implicit_reward=losses.implicit_reward,
                             toy_step=None, print_it=False)
    missing = {r.number: r.message for r in card["sanity"] if not r.passed}
    assert set(missing) == {2, 5} and all(m == "not run: no toy_result given" for m in missing.values())

    def broken_step(policy, ref, batch, optimizer, beta=0.1):
        raise RuntimeError("element 0 of tensors does not require grad")

    card = Drill().scorecard({}, "", dpo_loss=losses.dpo_loss, implicit_reward=losses.implicit_reward,
                             toy_step=broken_step, print_it=False)
    assert "training the toy policy with your toy_dpo_step failed" in card["sanity"][1].message
    assert not card["checks"]["toy_dpo_step"][0]
    card = Drill().scorecard({}, "", dpo_loss=losses.dpo_loss, implicit_reward=losses.implicit_reward,
                             toy_step=toy_dpo_step, print_it=False)
    assert all(r.passed for r in card["sanity"]) and all(ok for ok, _ in card["checks"].values())


def test_a_reference_free_variants_check_6_says_it_needs_the_loss_not_implicit_reward():
    results = run_variant_sanity("simpo", None, losses.implicit_reward, None, quiet=True)
    assert results[5].message == "not run: no simpo_loss given"


def test_a_history_saved_before_variants_reads_as_the_default_variant(fresh, capsys):
    import json

    (fresh / "history.jsonl").write_text(json.dumps({"saved_at": "2024-01-01T00:00:00+00:00", "blocks": {},
                                                     "sanity": [], "checks": {}}) + "\n")
    (record,) = drill_history(plot=False)
    assert record["variant"] == "dpo" and "variants done: dpo" in capsys.readouterr().out
    assert start_drill().variant.key != "dpo"          # that attempt counts: the next one is drawn at random


# --- what counts as an attempt: a Run All of the untouched lesson is not one ---------------------------------------

def _stub(*args, **kwargs):
    raise NotImplementedError()


_UNTOUCHED_EXPLANATION = '\n# YOUR CODE HERE\nraise NotImplementedError()\n'


def _untouched_card(drill: Drill, **changes):
    given = dict(rubric={}, explanation=_UNTOUCHED_EXPLANATION, dpo_loss=_stub, implicit_reward=_stub,
                 toy_step=_stub) | changes
    return drill.scorecard(given.pop("rubric"), given.pop("explanation"), print_it=False, **given)


def test_an_untouched_run_is_not_saved_and_the_first_real_attempt_is_dpo(fresh, capsys):
    card = _untouched_card(start_drill())
    assert not card.is_attempt and card.evidence == () and "is not an attempt" in card.text
    assert card.save() is None and "Not saved: nothing was written" in capsys.readouterr().out
    assert not (fresh / "history.jsonl").exists()
    assert start_drill(restart=True).variant.key == "dpo"              # the same kernel: still the first attempt
    drill_module._CURRENT = None                                      # a new kernel
    assert start_drill().variant.key == "dpo"


def test_a_forced_save_keeps_an_untouched_run_that_still_does_not_count(fresh, capsys):
    card = _untouched_card(start_drill())
    assert card.save(force=True) == fresh
    (record,) = drill_history(plot=False)
    assert record["real"] is False and record["evidence"] == []
    assert "counts" in capsys.readouterr().out
    drill_module._CURRENT = None
    assert start_drill().variant.key == "dpo"


@pytest.mark.parametrize("change, evidence", [
    (dict(dpo_loss=losses.dpo_loss), "dpo_loss implemented"),
    (dict(explanation="DPO fits the preferences with one logistic loss."), "EXPLANATION written"),
    (dict(rubric={VARIANTS["dpo"].rubric[0]: False}), "rubric graded"),
])
def test_anything_written_makes_a_run_an_attempt(fresh, change, evidence):
    card = _untouched_card(start_drill(), **change)
    assert card.is_attempt and card.evidence == (evidence,)
    assert card.save() == fresh and drill_history(plot=False, print_it=False)[0]["real"] is True
    drill_module._CURRENT = None
    assert start_drill().variant.key != "dpo"                          # a real attempt: the next paper is drawn


def test_a_wrong_function_is_an_attempt_and_a_stand_in_for_a_cell_not_run_is_not(fresh):
    def wrong(*args, **kwargs):
        return torch.tensor(0.0)

    assert _untouched_card(start_drill(), implicit_reward=wrong).evidence == ("implicit_reward implemented",)
    assert _untouched_card(start_drill(), dpo_loss=drill_module._not_run("dpo_loss")).evidence == ()


def _old_record(total_seconds: float, passed: bool = False) -> dict:
    """A line as the course saved it before attempts were told apart (no "real", no "id")."""
    return {"version": 1, "saved_at": "2026-11-01T10:00:00+00:00", "variant": "dpo", "seed": None, "left_out": None,
            "total_seconds": total_seconds, "blocks": {"read": 1.0, "explain": 0.5, "implement": 1.0, "sanity-check": 0.5},
            "sanity": [{"number": n, "name": f"check {n}", "passed": passed, "applies": True} for n in range(1, 7)],
            "checks": {"dpo_loss": passed, "implicit_reward": False, "toy_dpo_step": False},
            "rubric": {item: None for item in VARIANTS["dpo"].rubric}, "red_flags": [], "diagnosis": None}


def test_an_old_untouched_run_all_in_the_history_is_recognised_and_skipped_when_drawing(fresh, capsys):
    import json

    from rlhf_core.course.drill_history import is_real_attempt

    (fresh / "history.jsonl").write_text(json.dumps(_old_record(3.2)) + "\n")
    assert not is_real_attempt(_old_record(3.2))
    assert is_real_attempt(_old_record(3.2, passed=True)) and is_real_attempt(_old_record(2400.0))
    drill_history(plot=False)
    out = capsys.readouterr().out
    assert "Attempt 1: nothing was written" in out and "drill_history(drop=1)" in out and "variants done: none yet" in out
    assert start_drill().variant.key == "dpo"                          # the junk line does not count
    (fresh / "history.jsonl").write_text(json.dumps(_old_record(2400.0)) + "\n")
    assert start_drill(restart=True).variant.key != "dpo"              # a real old attempt does


def test_drill_history_drops_an_attempt_by_its_number_or_its_id(fresh, capsys):
    drills = [start_drill(variant=key, restart=True) for key in ("dpo", "ipo", "simpo")]
    for d in drills:
        _save(d)
    records = drill_history(plot=False, print_it=False)
    assert len(list(fresh.glob("attempt-*.md"))) == 3 and len({r["id"] for r in records}) == 3
    left = drill_history(plot=False, drop=2)
    assert [r["variant"] for r in left] == ["dpo", "simpo"] and "Dropped attempt 2" in capsys.readouterr().out
    assert not (fresh / f"attempt-{records[1]['id']}.md").exists() and len(list(fresh.glob("attempt-*.md"))) == 2
    assert drill_module.drop_attempt(records[2]["id"])["variant"] == "simpo"
    assert [r["variant"] for r in drill_history(plot=False, print_it=False)] == ["dpo"]
    capsys.readouterr()
    assert drill_module.drop_attempt(5) is None and drill_module.drop_attempt("no-such-id") is None
    out = capsys.readouterr().out
    assert "There is no attempt 5" in out and "no attempt with id 'no-such-id'" in out
    assert [r["variant"] for r in drill_history(plot=False, print_it=False)] == ["dpo"]


# --- a kernel restarted halfway: the drill and the names later cells read -----------------------------------------

def test_a_restarted_kernel_resumes_the_drill_and_gets_stand_ins_for_the_cells_it_did_not_run(fresh, capsys):
    first = start_drill(variant="random", seed=3)
    first.begin("implement")
    drill_module._CURRENT = None                                       # the kernel restarts
    namespace = {"ipo_loss": "mine"}
    resumed = drill_module.resume_drill(namespace)
    out = capsys.readouterr().out
    assert resumed is not first and (resumed.variant, resumed.seed, resumed.started) == (first.variant, 3, first.started)
    assert resumed.block_starts == first.block_starts and "resumed the drill" in out
    assert namespace["ipo_loss"] == "mine"                             # a name the learner defined is kept
    assert set(namespace) >= {"dpo_loss", "toy_dpo_step", "simpo_loss", "implicit_reward", "EXPLANATION", "RUBRIC"}
    assert namespace["EXPLANATION"] == "" and set(namespace["RUBRIC"]) == set(resumed.rubric_items)
    with pytest.raises(NotImplementedError, match="not defined in this kernel"):
        namespace["implicit_reward"](torch.zeros(1), torch.zeros(1))
    assert f"Not defined in this kernel yet: {resumed.variant.exercise}" in out or resumed.variant.exercise == "ipo_loss"
    assert drill_module.resume_drill({}) is resumed                    # the same kernel: the same drill, quietly
    drill_module._CURRENT = None
    assert start_drill().started == first.started                      # the start cell run again resumes it too


def test_a_saved_an_empty_or_an_old_drill_is_not_resumed_by_the_start_cell(fresh, capsys):
    import json

    def new_kernel_starts_anew() -> bool:
        capsys.readouterr()
        drill_module._CURRENT = None
        start_drill()
        out = capsys.readouterr().out
        return "Drill started" in out and "Resumed" not in out

    _untouched_card(start_drill())                                     # a Run All of the untouched lesson
    assert new_kernel_starts_anew()
    _save(drill_module._CURRENT)                                       # an attempt kept in the history
    assert new_kernel_starts_anew()
    state = json.loads((fresh / "current-drill.json").read_text())    # a drill begun four hours ago
    state["started"] -= drill_module.RESUME_SECONDS + 3600
    (fresh / "current-drill.json").write_text(json.dumps(state))
    assert new_kernel_starts_anew()
    drill_module._CURRENT = None
    assert not new_kernel_starts_anew()                                # the one just started: resumed


def test_a_rerun_start_cell_after_an_empty_scorecard_starts_the_clock_again(fresh, capsys):
    first = start_drill()
    _untouched_card(first)
    again = start_drill()
    assert again is not first and "not an attempt, so the clock starts again" in capsys.readouterr().out
    assert again.variant.key == "dpo"


def test_no_drill_to_resume_starts_one(fresh, capsys):
    drill = drill_module.resume_drill()
    assert drill.variant.key == "dpo" and "No drill was running in this kernel" in capsys.readouterr().out
