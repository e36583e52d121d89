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
