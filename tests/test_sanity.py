"""The drill's six sanity checks: they hold for the library and fail, with a reason, on wrong code."""

import copy

import pytest
import torch
import torch.nn.functional as F

from rlhf_core import dpo_loss, implicit_reward, run_toy_task
from rlhf_core.checks import (
    SANITY_CHECKS,
    run_sanity_checks,
    sanity_gradient_flows,
    sanity_loss_at_init,
    sanity_margin_monotone,
    sanity_ranking_recovered,
    sanity_reference_frozen,
    sanity_reward_scales_with_beta,
)


@pytest.fixture(scope="module")
def toy():
    return run_toy_task(seed=0, beta=0.1, steps=400)


@pytest.mark.slow
def test_all_six_hold_for_the_library(toy, capsys):
    results = run_sanity_checks(dpo_loss, implicit_reward, toy)
    assert [r.number for r in results] == [1, 2, 3, 4, 5, 6]
    assert all(r.passed for r in results), [r.message for r in results if not r.passed]
    assert capsys.readouterr().out.count("✓ sanity check") == 6


def no_reference(pc, pr, rc, rr, beta=0.1):
    return -F.logsigmoid(beta * (pc - pr)).mean()


def swapped(pc, pr, rc, rr, beta=0.1):
    return -F.logsigmoid(beta * ((pr - rr) - (pc - rc))).mean()


def detached(pc, pr, rc, rr, beta=0.1):
    return dpo_loss(pc.detach(), pr.detach(), rc, rr, beta)


def summed(pc, pr, rc, rr, beta=0.1):
    return -F.logsigmoid(beta * ((pc - rc) - (pr - rr))).sum()


def no_minus(pc, pr, rc, rr, beta=0.1):
    return F.logsigmoid(beta * ((pc - rc) - (pr - rr))).mean()


def test_check1_catches_a_missing_reference_term():
    # zeros alone would not catch it: the second, non-zero case does
    with pytest.raises(AssertionError, match="reference term"):
        sanity_loss_at_init(no_reference)


@pytest.mark.parametrize("impl, hint", [(summed, "summed over the batch"), (no_minus, "minus sign")])
def test_check1_names_the_value_at_initialisation(impl, hint):
    with pytest.raises(AssertionError, match=hint):
        sanity_loss_at_init(impl)


@pytest.mark.slow
def test_check2_catches_an_unfrozen_or_moved_reference(toy):
    moved = dict(toy, ref=copy.deepcopy(toy["ref"]))
    with torch.no_grad():
        moved["ref"].logits[0, 0] += 1.0
    with pytest.raises(AssertionError, match="changed during training"):
        sanity_reference_frozen(moved)
    trainable = dict(toy, ref=copy.deepcopy(toy["ref"]))
    trainable["ref"].logits.requires_grad_(True)
    with pytest.raises(AssertionError, match="still require grad"):
        sanity_reference_frozen(trainable)
    with pytest.raises(AssertionError, match="policy object itself"):
        sanity_reference_frozen(dict(toy, ref=toy["policy"]))


def test_check3_catches_a_detached_loss():
    with pytest.raises(AssertionError, match="does not require grad"):
        sanity_gradient_flows(detached)
    with pytest.raises(AssertionError, match="not a tensor"):
        sanity_gradient_flows(lambda *a, beta=0.1: dpo_loss(*a, beta=beta).item())


def test_check4_catches_a_flipped_sign():
    with pytest.raises(AssertionError, match="swapped"):
        sanity_margin_monotone(swapped)


@pytest.mark.slow
def test_check5_catches_a_reversed_ranking():
    reversed_run = run_toy_task(steps=200, loss_fn=swapped)
    with pytest.raises(AssertionError, match="reversed"):
        sanity_ranking_recovered(reversed_run)
    untrained = run_toy_task(steps=0)
    with pytest.raises(AssertionError, match="never moved"):
        sanity_ranking_recovered(untrained)


def _policy_as_reference(policy, ref, batch, optimizer, beta=0.1):
    """A toy step whose "reference" log-probs are the policy's own (computed without a graph)."""
    from rlhf_core.toy import toy_dpo_step

    return toy_dpo_step(policy, policy, batch, optimizer, beta)


def test_check5_names_a_reference_taken_from_the_policy():
    # checks 2 and 3 cannot see it: the real reference stays frozen and the loss still sends a gradient
    run = run_toy_task(steps=60, step_fn=_policy_as_reference)
    sanity_reference_frozen(run)
    with pytest.raises(AssertionError, match="computed from the policy itself") as info:
        sanity_ranking_recovered(run)
    assert "stayed at exactly log 2" in str(info.value) and "train longer" not in str(info.value)
    # the same mistake inside the loss (a dpo_loss that uses the policy's own log-probs as the reference)
    as_loss = run_toy_task(steps=60, loss_fn=lambda pc, pr, rc, rr, beta=0.1: dpo_loss(pc, pr, pc.detach(), pr.detach(), beta))
    with pytest.raises(AssertionError, match="computed from the policy itself"):
        sanity_ranking_recovered(as_loss)


def test_check5_keeps_its_verdicts_on_a_correct_run_and_on_other_mistakes():
    sanity_ranking_recovered(run_toy_task(steps=60))                 # the correct step, as short as the wrong one
    with pytest.raises(AssertionError, match="exactly reversed") as info:
        sanity_ranking_recovered(run_toy_task(steps=60, loss_fn=swapped))
    assert "log 2" not in str(info.value)
    with pytest.raises(AssertionError, match="never moved"):        # loss at log 2 *and* no movement: no step at all
        sanity_ranking_recovered(run_toy_task(steps=5, lr=0.0))
    with pytest.raises(AssertionError, match="train longer"):       # one step: a single log 2 is no evidence
        sanity_ranking_recovered(run_toy_task(steps=1))


def test_scorecard_shows_the_reference_taken_from_the_policy():
    run = run_toy_task(steps=60, step_fn=_policy_as_reference)
    results = run_sanity_checks(dpo_loss, implicit_reward, run, quiet=True)
    assert {r.number: r.passed for r in results} == {1: True, 2: True, 3: True, 4: True, 5: False, 6: True}
    assert "computed from the policy itself" in results[4].message


def test_check6_catches_a_reward_without_beta_and_a_zero_reward():
    with pytest.raises(AssertionError, match="doubling β"):
        sanity_reward_scales_with_beta(lambda lp, lr, beta=0.1: lp - lr)
    with pytest.raises(AssertionError, match="is 0"):
        sanity_reward_scales_with_beta(lambda lp, lr, beta=0.1: beta * torch.zeros_like(lp))


def test_a_crashing_or_unimplemented_function_is_a_verdict_not_a_traceback():
    def stub(*a, **k):
        raise NotImplementedError

    with pytest.raises(AssertionError, match="not implemented"):
        sanity_loss_at_init(stub)
    with pytest.raises(AssertionError, match="raised ZeroDivisionError"):
        sanity_margin_monotone(lambda *a, beta=0.1: 1 / 0)


@pytest.mark.slow
def test_scorecard_reports_failures_without_raising(toy):
    results = run_sanity_checks(no_reference, lambda lp, lr, beta=0.1: lp - lr, toy, quiet=True)
    passed = {r.number: r.passed for r in results}
    assert passed == {1: False, 2: True, 3: True, 4: True, 5: True, 6: False}
    assert "reference term" in results[0].message


def test_scorecard_marks_missing_inputs_as_not_run():
    results = run_sanity_checks(dpo_loss, quiet=True)
    assert [r.passed for r in results] == [True, False, True, True, False, False]
    assert results[1].message.startswith("not run")
    assert len(SANITY_CHECKS) == 6


def test_scorecard_survives_garbage_input():
    results = run_sanity_checks(dpo_loss, implicit_reward, toy_result={"ref": 3}, quiet=True)
    assert not results[1].passed and ("could not run" in results[1].message or "✗" in results[1].message)


@pytest.mark.slow
def test_check_toy_training_passes_on_the_library_step(capsys):
    from rlhf_core.checks import check_toy_training
    from rlhf_core.toy import toy_dpo_step

    check_toy_training(toy_dpo_step)
    assert capsys.readouterr().out.count("✓ sanity check") == 3


@pytest.mark.parametrize("kind, hint", [("stub", "not implemented"), ("no_step", "did not move"),
                                        ("no_backward", "no gradient"),
                                        pytest.param("swapped", "reversed", marks=pytest.mark.slow)])
def test_check_toy_training_names_what_is_wrong(kind, hint):
    from rlhf_core.checks import check_toy_training
    from test_sanity_records import make_step

    with pytest.raises(AssertionError, match=hint):
        check_toy_training(make_step(kind))


def test_using_parts_swaps_and_restores_the_model_functions():
    from rlhf_core import model as m

    net = m.TinyLM(m.ModelConfig(vocab_size=10, d_model=16, n_layers=1, n_heads=2, d_ff=32)).eval()
    ids = torch.randint(0, 10, (2, 5))
    base = net(ids)
    with m.using_parts(rms_norm=lambda x, w, eps=1e-6: x * w):  # no normalisation at all
        changed = net(ids)
    assert not torch.allclose(base, changed)
    assert torch.equal(net(ids), base)
    with pytest.raises(RuntimeError), m.using_parts(swiglu=lambda *a: (_ for _ in ()).throw(RuntimeError("boom"))):
        net(ids)
    assert torch.equal(net(ids), base)
