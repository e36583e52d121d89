"""check_dpo_loss and check_implicit_reward: pass on the reference, name each known mistake."""

import json

import pytest
import torch
import torch.nn.functional as F

from checkhelpers import assert_fails_with, assert_passes
from rlhf_core.checks import EXERCISES, check_dpo_loss, check_implicit_reward, judge, probe
from rlhf_core.losses import dpo_loss, implicit_reward


def test_passes_on_the_reference(capsys):
    assert_passes(check_dpo_loss, dpo_loss, capsys)
    assert_passes(check_implicit_reward, implicit_reward, capsys)


def test_passes_on_a_differently_written_correct_loss(capsys):
    def mine(pc, pr, rc, rr, beta=0.1):
        logits = beta * (pc - pr) - beta * (rc - rr)
        return F.softplus(-logits).mean()

    assert_passes(check_dpo_loss, mine, capsys)


# -- known-wrong dpo_loss implementations, written the way a learner would write them --------

def no_reference(pc, pr, rc, rr, beta=0.1):
    return -F.logsigmoid(beta * (pc - pr)).mean()


def log_of_sigmoid(pc, pr, rc, rr, beta=0.1):
    h = beta * ((pc - rc) - (pr - rr))
    return -torch.log(torch.sigmoid(h)).mean()


def beta_outside(pc, pr, rc, rr, beta=0.1):
    return (-beta * F.logsigmoid((pc - rc) - (pr - rr))).mean()


def swapped(pc, pr, rc, rr, beta=0.1):
    return -F.logsigmoid(beta * ((pr - rr) - (pc - rc))).mean()


def summed(pc, pr, rc, rr, beta=0.1):
    return -F.logsigmoid(beta * ((pc - rc) - (pr - rr))).sum()


def no_mean(pc, pr, rc, rr, beta=0.1):
    return -F.logsigmoid(beta * ((pc - rc) - (pr - rr)))


def returns_item(pc, pr, rc, rr, beta=0.1):
    return (-F.logsigmoid(beta * ((pc - rc) - (pr - rr))).mean()).item()


def hard_coded_beta(pc, pr, rc, rr, beta=0.1):
    return -F.logsigmoid(0.1 * ((pc - rc) - (pr - rr))).mean()


def sigmoid_instead(pc, pr, rc, rr, beta=0.1):
    return torch.sigmoid(beta * ((pc - rc) - (pr - rr))).mean()


def beta_ignored(pc, pr, rc, rr, beta=0.1):
    return -F.logsigmoid((pc - rc) - (pr - rr)).mean()


def beta_squared(pc, pr, rc, rr, beta=0.1):
    h = beta * ((pc - rc) - (pr - rr))
    return -F.logsigmoid(beta * h).mean()


def beta_inside_and_outside(pc, pr, rc, rr, beta=0.1):
    return (-beta * F.logsigmoid(beta * ((pc - rc) - (pr - rr)))).mean()


def stub(pc, pr, rc, rr, beta=0.1):
    raise NotImplementedError


def crashes(pc, pr, rc, rr, beta=0.1):
    return torch.cat([pc, pr], dim=1).mean()


def nan_out(pc, pr, rc, rr, beta=0.1):
    return torch.log(pc).mean()


@pytest.mark.parametrize("impl, fragments", [
    (no_reference, ["drop log π_ref", "expected", "got"]),
    (log_of_sigmoid, ["±1e4", "got inf", "F.logsigmoid"]),
    (beta_outside, ["β is outside the log-sigmoid", "β·log 2 instead of log 2"]),
    (beta_ignored, ["β is ignored", "β = 1 would give"]),
    (beta_squared, ["β is applied twice: the loss is the one β² would give"]),
    (beta_inside_and_outside, ["β is applied twice, inside the log-sigmoid and again on the loss outside it"]),
    (swapped, ["swapped"]),
    (summed, ["summed over the batch"]),
    (no_mean, ["expected a scalar", "got shape (8,)", ".mean()"]),
    (returns_item, ["cut off from autograd", ".item()"]),
    (hard_coded_beta, ["β = 0.5", "hard-coded"]),
    (sigmoid_instead, ["sigmoid(h)"]),
    (stub, ["not implemented yet", "NotImplementedError"]),
    (crashes, ["raised IndexError", "return torch.cat"]),
    (nan_out, ["got nan"]),
])
def test_dpo_loss_check_names_the_mistake(impl, fragments):
    assert_fails_with(check_dpo_loss, impl, *fragments)


BETA_MISTAKES = {beta_outside: "β is outside the log-sigmoid", beta_ignored: "β is ignored",
                 beta_squared: "the one β² would give", beta_inside_and_outside: "again on the loss outside it",
                 hard_coded_beta: "hard-coded"}


@pytest.mark.parametrize("seed", [0, 101, 202])   # the visible check's seed and the hidden tests' seeds
def test_each_beta_mistake_gets_its_own_hint_on_every_seed(seed):
    for impl, own in BETA_MISTAKES.items():
        with pytest.raises(AssertionError) as info:
            check_dpo_loss(impl, seed=seed, quiet=True)
        text = str(info.value)
        assert own in text, (impl.__name__, text)
        assert all(other not in text for other in BETA_MISTAKES.values() if other != own), (impl.__name__, text)


def test_the_beta_mistakes_the_drill_sanity_checks_miss_are_caught_here():
    from rlhf_core.checks import sanity_gradient_flows, sanity_loss_at_init, sanity_margin_monotone

    # check 4 runs at β = 1, and checks 1 and 3 do not depend on β's value
    for impl, hint in ((beta_ignored, "β is ignored"), (beta_squared, "β² would give")):
        sanity_loss_at_init(impl)
        sanity_gradient_flows(impl)
        sanity_margin_monotone(impl)
        with pytest.raises(AssertionError, match=hint):
            check_dpo_loss(impl, quiet=True)


def test_check_rejects_what_is_not_a_function():
    assert_fails_with(check_dpo_loss, dpo_loss(torch.zeros(2), torch.zeros(2), torch.zeros(2), torch.zeros(2)),
                      "expected a function", "without calling it")


def test_other_seeds_draw_other_inputs_and_still_pass():
    for seed in (1, 2, 3):
        check_dpo_loss(dpo_loss, seed=seed)


def test_the_record_is_plain_json_and_judging_it_needs_no_candidate():
    exercise = EXERCISES["dpo_loss"]
    record = json.loads(json.dumps(probe(exercise, no_reference, seed=0)))
    with pytest.raises(AssertionError, match="drop log π_ref"):
        judge(exercise, record)
    good = json.loads(json.dumps(probe(exercise, dpo_loss, seed=0)))
    assert judge(exercise, good).startswith("dpo_loss matches")


def test_a_forged_record_cannot_pass():
    exercise = EXERCISES["dpo_loss"]
    record = probe(exercise, dpo_loss, seed=0)
    first = next(iter(record["cases"].values()))
    first["values"]["out"]["data"] = [0.0]
    with pytest.raises(AssertionError):
        judge(exercise, record)
    with pytest.raises(AssertionError, match="malformed"):
        judge(exercise, {"exercise": "dpo_loss", "cases": "all passed"})


# -- implicit_reward -------------------------------------------------------------------------

def reward_no_beta(lp, lr, beta=0.1):
    return lp - lr


def reward_reversed(lp, lr, beta=0.1):
    return beta * (lr - lp)


def reward_probability_ratio(lp, lr, beta=0.1):
    return beta * lp.exp() / lr.exp()


def reward_averaged(lp, lr, beta=0.1):
    return (beta * (lp - lr)).mean()


def reward_divided(lp, lr, beta=0.1):
    return (lp - lr) / beta


def reward_log_of_logs(lp, lr, beta=0.1):
    return beta * torch.log(lp / lr)


@pytest.mark.parametrize("impl, fragments", [
    (reward_no_beta, ["β is missing"]),
    (reward_reversed, ["sign is flipped"]),
    (reward_probability_ratio, ["exponentiated"]),
    (reward_averaged, ["expected shape (8,)", "elementwise"]),
    (reward_divided, ["divided by β"]),
    (reward_log_of_logs, ["expected", "got"]),
])
def test_implicit_reward_check_names_the_mistake(impl, fragments):
    assert_fails_with(check_implicit_reward, impl, *fragments)


# -- hostile values: read with the one serialiser and error record the sanity checks use too -------

class _UnprintableError(Exception):
    def __str__(self):
        raise RuntimeError("no message for you")


class _LyingInt(int):
    def __float__(self):
        return 0.6931471805599453

    def __eq__(self, other):
        return True

    __hash__ = int.__hash__


class _LyingTensor(torch.Tensor):
    """Claims log 2 through item() and tolist(); its numbers are 5."""

    def item(self):
        return 0.6931471805599453

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        out = super().__torch_function__(func, types, args, kwargs or {})
        return [0.6931471805599453] if func is torch.Tensor.tolist else out


def _raises_unprintable(*args, **kwargs):
    raise _UnprintableError()


@pytest.mark.parametrize("impl, fragments", [
    (_raises_unprintable, ["raised _UnprintableError: (the message could not be printed)"]),
    (lambda *a, beta=0.1: _LyingInt(0), ["expected a tensor, got an object of type _LyingInt"]),
    (lambda *a, beta=0.1: torch.tensor(5.0).as_subclass(_LyingTensor), ["got 5."]),
    (lambda *a, beta=0.1: 10 ** 400, ["expected a tensor, got an object of type int"]),
    (lambda *a, beta=0.1: torch.zeros(20_000), ["expected a scalar (0-dim tensor), got shape (20000,)", ".mean()"]),
])
def test_hostile_values_and_exceptions_become_verdicts(impl, fragments):
    assert_fails_with(check_dpo_loss, impl, *fragments)


def test_one_serialiser_and_one_error_record_for_every_check():
    from rlhf_core.checks import framework, sanity_probe

    assert sanity_probe.serialise is framework.serialise and sanity_probe.error_record is framework.error_record
    record = framework.error_record(_UnprintableError())
    assert record == {"type": "_UnprintableError", "message": "(the message could not be printed)", "where": "",
                      "not_implemented": False}
    assert framework.serialise(_LyingInt(3)) == {"kind": "other", "type": "_LyingInt"}
    lying = framework.serialise(torch.tensor([5.0]).as_subclass(_LyingTensor))
    assert lying == {"kind": "tensor", "type": "_LyingTensor", "dtype": "float32", "shape": [1], "requires_grad": False,
                     "data": [5.0]}
    big = framework.serialise(torch.zeros(framework.MAX_NUMBERS + 1))
    assert big["data"] is None and big["shape"] == [framework.MAX_NUMBERS + 1]
