"""The sanity checks in two halves: a probe that records plain data, a judge that gives the verdict.

A grader probes in the submission's kernel, ships the record as JSON and judges it elsewhere, so
for every learner function the verdict on the JSON round trip must equal the in-process one, and
the record must hold nothing but JSON data.
"""

import json
import math
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

import rlhf_core.checks as checks
from rlhf_core.checks import SANITY_PROBES, CheckFailed, check_toy_training, judge_sanity, probe_sanity, sanity_loss_at_init
from rlhf_core.losses import dpo_loss, implicit_reward
from rlhf_core.toy import toy_dpo_step

TOY_STEPS = 60  # enough for the toy run to show a reversed ranking; the passing case uses the default 400


def assert_plain(value, where="record"):
    """Only dict (str keys), list, str, int, float, bool, None — no tensors, no learner objects."""
    if isinstance(value, dict):
        for key, item in value.items():
            assert type(key) is str, f"{where}: key {key!r}"
            assert_plain(item, f"{where}[{key!r}]")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            assert_plain(item, f"{where}[{i}]")
    else:
        assert value is None or type(value) in (str, int, float, bool), f"{where}: {type(value).__name__}"


def outcome(name, record):
    try:
        return ("pass", judge_sanity(name, record))
    except CheckFailed as exc:
        return ("fail", str(exc), exc.passed)


def judged(name, fn, **options):
    """Probe once; judge in process and after a JSON round trip; both must agree."""
    record = probe_sanity(name, fn, **options)
    assert record["sanity"] == name
    assert_plain(record)
    text = json.dumps(record, allow_nan=True)  # no `default=`: a non-JSON value would raise here
    here, there = outcome(name, record), outcome(name, json.loads(text))
    assert here == there
    return here


# --------------------------------------------------------------------------------------------
# known-wrong learner functions


def stub(*args, **kwargs):
    raise NotImplementedError


def no_reference(pc, pr, rc, rr, beta=0.1):
    return -F.logsigmoid(beta * (pc - pr)).mean()


def swapped(pc, pr, rc, rr, beta=0.1):
    return -F.logsigmoid(beta * ((pr - rr) - (pc - rc))).mean()


def returns_item(*args, beta=0.1):
    return dpo_loss(*args, beta=beta).item()


def detached(pc, pr, rc, rr, beta=0.1):
    return dpo_loss(pc.detach(), pr.detach(), rc, rr, beta)


def no_mean(pc, pr, rc, rr, beta=0.1):
    return -F.logsigmoid(beta * ((pc - rc) - (pr - rr)))


def not_scalar(*args, beta=0.1):
    return torch.stack([dpo_loss(*args, beta=beta)] * 2)


def crashes(*args, beta=0.1):
    raise ValueError("shapes do not match\n" + "x" * 500)


class Unprintable(Exception):
    def __str__(self):
        raise RuntimeError("no message")


def unprintable(*args, **kwargs):
    raise Unprintable()


class Liar:
    """Equal to everything, and claims to be log 2."""

    def __eq__(self, other):
        return True

    __hash__ = object.__hash__

    def __float__(self):
        return math.log(2.0)


def returns_liar(*args, **kwargs):
    return Liar()


class LyingInt(int):
    def __float__(self):
        return math.log(2.0)


class LyingTensor(torch.Tensor):
    """A tensor subclass whose item(), tolist() and requires_grad claim the right answer."""

    requires_grad = property(lambda self: True)

    def item(self):
        return math.log(2.0)

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        out = super().__torch_function__(func, types, args, kwargs or {})
        return [math.log(2.0)] if func is torch.Tensor.tolist else out


def returns_lying_tensor(*args, **kwargs):
    return torch.tensor(5.0).as_subclass(LyingTensor)


def reward_without_beta(lp, lr, beta=0.1):
    return lp - lr


def reward_zero(lp, lr, beta=0.1):
    return beta * torch.zeros_like(lp)


def reward_item(lp, lr, beta=0.1):
    return (beta * (lp - lr))[0].item()


def reward_summed(lp, lr, beta=0.1):
    return (beta * (lp - lr)).sum()


def reward_long(lp, lr, beta=0.1):
    return (100 * beta * (lp - lr)).long()


def make_step(kind):
    """A toy step with one mistake (``kind``); see the parametrisation below."""

    def step(policy, ref, batch, optimizer, beta=0.1):
        if kind == "stub":
            raise NotImplementedError
        if kind == "swapped":
            prompts, chosen, rejected = batch
            return toy_dpo_step(policy, ref, (prompts, rejected, chosen), optimizer, beta)
        if kind == "unfreezes_reference":
            ref.logits.requires_grad_(True)
            return toy_dpo_step(policy, ref, batch, optimizer, beta)
        if kind == "trains_reference":
            loss = toy_dpo_step(policy, ref, batch, optimizer, beta)
            with torch.no_grad():
                ref.logits.add_(0.01 * policy.logits)
            return loss
        if kind == "returns_liar":
            toy_dpo_step(policy, ref, batch, optimizer, beta)
            return Liar()
        if kind == "policy_as_reference":  # the "reference" log-probs are the policy's own, without a graph
            return toy_dpo_step(policy, policy, batch, optimizer, beta)
        if kind == "policy_as_reference_returns_liar":
            toy_dpo_step(policy, policy, batch, optimizer, beta)
            return Liar()
        prompts, chosen, rejected = batch
        lp = policy.logprobs(prompts)
        lr = lp if kind == "policy_as_reference_with_graph" else ref.logprobs(prompts)
        idx = torch.arange(len(prompts))
        loss = dpo_loss(lp[idx, chosen], lp[idx, rejected], lr[idx, chosen], lr[idx, rejected], beta)
        optimizer.zero_grad()
        if kind != "no_backward":
            loss.backward()
        if kind != "no_step":
            optimizer.step()
        return loss.item()

    step.__name__ = f"toy_dpo_step_{kind}"
    return step


# --------------------------------------------------------------------------------------------
# the API


def test_probes_name_every_public_function():
    assert SANITY_PROBES == {"sanity_loss_at_init": "loss_at_init", "sanity_gradient_flows": "gradient_flows",
                             "sanity_margin_monotone": "margin_monotone",
                             "sanity_reward_scales_with_beta": "reward_scales_with_beta",
                             "check_toy_training": "toy_training"}
    for name in ("probe_sanity", "judge_sanity", "SANITY_PROBES", *SANITY_PROBES):
        assert name in checks.__all__ and hasattr(checks, name)


@pytest.mark.parametrize("name, fn, lines", [
    ("loss_at_init", dpo_loss, 1),
    ("gradient_flows", dpo_loss, 1),
    ("margin_monotone", dpo_loss, 1),
    ("reward_scales_with_beta", implicit_reward, 1),
    pytest.param("toy_training", toy_dpo_step, 3, marks=pytest.mark.slow),  # the default 400 steps
])
def test_the_library_passes_through_json(name, fn, lines):
    verdict, passed = judged(name, fn)
    assert verdict == "pass" and len(passed) == lines
    assert all(line.startswith("✓ sanity check") for line in passed)


@pytest.mark.parametrize("name, fn, expected", [
    ("loss_at_init", stub, "stub is not implemented yet (it raises NotImplementedError)."),
    ("loss_at_init", no_reference, "reference term is probably missing"),
    ("loss_at_init", crashes, "crashes raised ValueError: shapes do not match"),
    ("loss_at_init", unprintable, "unprintable raised Unprintable: (the message could not be printed)"),
    ("margin_monotone", unprintable, "unprintable raised Unprintable: (the message could not be printed)"),
    ("loss_at_init", returns_liar, "the loss should be a number or a 0-dim tensor, got Liar."),
    ("loss_at_init", lambda *a, beta=0.1: LyingInt(5), "got LyingInt."),
    ("loss_at_init", returns_lying_tensor, "with all log-probs 0 the loss is 5.000000"),
    ("loss_at_init", no_mean, "got a tensor of shape (8,) — did you forget .mean()?"),
    ("gradient_flows", stub, "not implemented yet"),
    ("gradient_flows", returns_item, "the loss is a float, not a tensor"),
    ("gradient_flows", detached, "the loss does not require grad"),
    ("gradient_flows", not_scalar, "loss.backward() failed: grad can be implicitly created only for scalar outputs"),
    ("gradient_flows", returns_liar, "the loss is a Liar, not a tensor"),
    ("gradient_flows", returns_lying_tensor, "the loss does not require grad"),
    ("gradient_flows", lambda *a, beta=0.1: torch.tensor(0.69, requires_grad=True), "got no gradient"),
    ("margin_monotone", stub, "not implemented yet"),
    ("margin_monotone", swapped, "chosen and rejected are swapped (sign flipped)"),
    ("margin_monotone", lambda *a, beta=0.1: 1 / 0, "raised ZeroDivisionError: division by zero"),
    ("margin_monotone", returns_liar, "got Liar."),
    ("margin_monotone", returns_lying_tensor, "base 5.0000, bigger margin 5.0000, swapped 5.0000"),
    ("reward_scales_with_beta", stub, "not implemented yet"),
    ("reward_scales_with_beta", reward_without_beta, "doubling β should double the reward"),
    ("reward_scales_with_beta", reward_zero, "the implicit reward is 0"),
    ("reward_scales_with_beta", reward_item, "expected a tensor of shape (2,) (one reward per response), got float."),
    ("reward_scales_with_beta", reward_summed, "got Tensor of shape ()."),
    ("reward_scales_with_beta", reward_long, "β 0.1 → [6, -10], β 0.2 → [13, -21]"),
    ("reward_scales_with_beta", returns_liar, "got Liar."),
])
def test_wrong_functions_fail_the_same_way_through_json(name, fn, expected):
    verdict, message, _ = judged(name, fn)
    assert verdict == "fail" and message.startswith("✗ sanity check") and expected in message, message
    with pytest.raises(CheckFailed) as raised:  # the public function raises the very same message
        getattr(checks, next(k for k, v in SANITY_PROBES.items() if v == name))(fn)
    assert str(raised.value) == message


@pytest.mark.parametrize("kind, number, expected", [
    ("stub", 3, "toy_dpo_step_stub is not implemented yet"),
    ("no_backward", 3, "have no gradient"),
    ("no_step", 3, "its logits did not move: is optimizer.step() called?"),
    ("unfreezes_reference", 2, "reference parameters ['logits'] still require grad"),
    ("trains_reference", 2, "the reference's logits changed during training"),
    ("swapped", 5, "exactly reversed"),
    # the policy's own log-probs as the "reference": checks 3 and 2 pass, and check 5 names the cause
    ("policy_as_reference", 5, f"the loss stayed at exactly log 2 = 0.6931 on all {TOY_STEPS} training steps, yet the "
                               "policy moved away from the frozen reference"),
    ("policy_as_reference", 5, "the signature of 'reference' log-probs computed from the policy itself"),
    ("policy_as_reference_with_graph", 3, "got a gradient of exactly 0: backward() ran"),
    ("policy_as_reference_with_graph", 3, "are the 'reference' log-probs the policy's own"),
])
def test_wrong_toy_steps_fail_the_same_way_through_json(kind, number, expected, capsys):
    verdict, message, passed = judged("toy_training", make_step(kind), steps=TOY_STEPS)
    assert verdict == "fail" and message.startswith(f"✗ sanity check {number} —") and expected in message, message
    assert len(passed) == {3: 0, 2: 1, 5: 2}[number]  # the ✓ lines of the checks before the failing one
    with pytest.raises(CheckFailed) as raised:
        check_toy_training(make_step(kind), steps=TOY_STEPS)
    assert str(raised.value) == message
    assert capsys.readouterr().out.splitlines() == passed  # printed before the failure, as before


def test_what_a_step_returns_does_not_matter():
    verdict, passed = judged("toy_training", make_step("returns_liar"), steps=TOY_STEPS)
    assert verdict == "pass" and len(passed) == 3


def test_the_losses_a_run_returned_are_recorded_as_numbers():
    record = probe_sanity("toy_training", toy_dpo_step, steps=TOY_STEPS)
    losses = record["ranking"]["losses"]
    assert len(losses) == TOY_STEPS and all(type(v) is float for v in losses)
    assert losses[0] == pytest.approx(math.log(2.0)) and losses[-1] < losses[0]   # log 2 at the start, then lower
    liar = probe_sanity("toy_training", make_step("returns_liar"), steps=3)["ranking"]["losses"]
    assert liar == [None, None, None]   # a value that is not one number is recorded as None, never read by its methods


def test_the_log2_rule_leaves_correct_and_other_wrong_runs_alone():
    # a correct step passes at the short length the wrong steps are tested at: its loss leaves log 2 after step 1
    verdict, passed = judged("toy_training", toy_dpo_step, steps=TOY_STEPS)
    assert verdict == "pass" and len(passed) == 3
    # one step: the only loss is log 2 (policy == reference at the start), which is no evidence; the ranking verdict stays
    verdict, message, _ = judged("toy_training", toy_dpo_step, steps=1)
    assert verdict == "fail" and "train longer or check the pairs" in message and "exactly log 2" not in message
    # the steps' return values are the evidence, read as numbers only: a wrong step that returns no number is not
    # accused by this rule (a blind spot: it is judged on its ranking alone)
    verdict, *rest = judged("toy_training", make_step("policy_as_reference_returns_liar"), steps=TOY_STEPS)
    assert not any("exactly log 2" in str(part) for part in rest)
    # a record without the losses (an older probe) is judged on the ranking alone
    record = probe_sanity("toy_training", make_step("policy_as_reference"), steps=TOY_STEPS)
    del record["ranking"]["losses"]
    assert outcome("toy_training", record)[0] == "pass"


def test_a_loss_stuck_at_log2_while_the_policy_did_not_move_says_it_never_moved():
    from rlhf_core.checks import sanity_ranking_recovered
    from rlhf_core.toy import run_toy_task

    frozen = run_toy_task(steps=3, lr=0.0)   # losses all log 2, rewards all 0: the older, more precise verdict wins
    assert frozen["losses"] == [pytest.approx(math.log(2.0))] * 3
    with pytest.raises(CheckFailed, match="never moved"):
        sanity_ranking_recovered(frozen)


def test_a_failing_check_calls_the_learner_no_more_than_before():
    calls = []

    def counted(*args, **kwargs):
        calls.append(1)
        raise NotImplementedError

    for name, expected in (("loss_at_init", 1), ("margin_monotone", 1), ("reward_scales_with_beta", 1)):
        calls.clear()
        probe_sanity(name, counted)
        assert len(calls) == expected, name
    calls.clear()
    record = probe_sanity("loss_at_init", lambda *a, beta=0.1: calls.append(1) or torch.tensor(0.0))
    assert len(calls) == 1 and "equal" not in record  # wrong on zeros: the second case is not run

    steps = []
    no_step = make_step("no_step")
    record = probe_sanity("toy_training", lambda *a, **k: steps.append(1) or no_step(*a, **k))
    assert len(steps) == 1 and "run" not in record  # check 3 failed: the toy task is not trained


def test_exceptions_are_recorded_as_data():
    record = probe_sanity("margin_monotone", crashes)
    error = record["base"]["error"]
    assert error["type"] == "ValueError" and len(error["message"]) <= 200
    assert judged("margin_monotone", crashes)[1] == (  # the message as str() gave it, 200 characters of it
        "✗ sanity check 4 — crashes raised ValueError: " + ("shapes do not match\n" + "x" * 500)[:200])
    assert error["not_implemented"] is False and record["base"]["value"] is None
    record = probe_sanity("gradient_flows", stub)
    assert record["loss"]["error"]["type"] == "NotImplementedError" and record["loss"]["error"]["not_implemented"]


def test_returned_values_are_recorded_by_kind():
    record = probe_sanity("reward_scales_with_beta", implicit_reward)
    value = record["beta_1"]["value"]
    assert value["kind"] == "tensor" and value["type"] == "Tensor" and value["shape"] == [2]
    assert value["requires_grad"] is False and value["dtype"] == "float32" and len(value["data"]) == 2
    lying = probe_sanity("loss_at_init", returns_lying_tensor)["zeros"]["value"]
    assert lying["type"] == "LyingTensor" and lying["data"] == [5.0] and lying["requires_grad"] is False
    assert probe_sanity("loss_at_init", returns_item)["zeros"]["value"] == {
        "kind": "number", "type": "float", "data": [pytest.approx(math.log(2.0))], "shape": []}
    for fn, type_name in ((returns_liar, "Liar"), (lambda *a, beta=0.1: LyingInt(5), "LyingInt")):
        assert probe_sanity("loss_at_init", fn)["zeros"]["value"] == {"kind": "other", "type": type_name}


def test_nan_and_inf_survive_the_round_trip_and_fail():
    for scale in (float("nan"), float("inf")):
        for name in ("loss_at_init", "gradient_flows", "margin_monotone"):
            assert judged(name, lambda *a, beta=0.1, scale=scale: dpo_loss(*a, beta=beta) * scale)[0] == "fail", (name, scale)
        verdict = judged("reward_scales_with_beta", lambda lp, lr, beta=0.1, scale=scale: implicit_reward(lp, lr, beta) * scale)
        assert verdict[0] == "fail" and ("finite" in verdict[1] or "double" in verdict[1]), verdict
    verdict = judged("loss_at_init", lambda *a, beta=0.1: dpo_loss(*a, beta=beta) * float("nan"))
    assert "not a finite number" in verdict[1]


@pytest.mark.slow
def test_the_verdict_runs_in_a_process_that_never_saw_the_learner():
    record = probe_sanity("margin_monotone", swapped)
    code = ("import json, sys\nfrom rlhf_core.checks import judge_sanity\n"
            "try:\n    print(judge_sanity('margin_monotone', json.load(sys.stdin)))\n"
            "except AssertionError as exc:\n    print(exc)\n")
    done = subprocess.run([sys.executable, "-c", code], input=json.dumps(record), capture_output=True,
                          text=True, check=True)
    assert done.stdout.strip() == outcome("margin_monotone", record)[1]


def test_a_wrong_or_incomplete_record_fails():
    record = probe_sanity("loss_at_init", dpo_loss)
    with pytest.raises(CheckFailed, match="expected the record of 'margin_monotone'"):
        judge_sanity("margin_monotone", record)
    del record["equal"]
    with pytest.raises(CheckFailed, match="sanity check 1 — the record is incomplete"):
        judge_sanity("loss_at_init", record)
    with pytest.raises(ValueError):
        probe_sanity("no_such_check", dpo_loss)


def test_the_public_functions_print_the_verdict(capsys):
    sanity_loss_at_init(dpo_loss)
    assert capsys.readouterr().out.splitlines() == judge_sanity("loss_at_init", probe_sanity("loss_at_init", dpo_loss))
