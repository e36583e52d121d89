"""check_toy_dpo_step (notebook 03): one DPO update of the toy policy."""

import pytest
import torch
import torch.nn.functional as F

from checkhelpers import assert_fails_with, assert_passes
from rlhf_core.checks import check_toy_dpo_step
from rlhf_core.losses import dpo_loss
from rlhf_core.toy import toy_dpo_step


def test_passes_on_the_reference(capsys):
    assert_passes(check_toy_dpo_step, toy_dpo_step, capsys)


def _logps(policy, ref, batch, use_policy_as_ref=False):
    prompt, chosen, rejected = batch
    lp = policy.logprobs(prompt)
    lr = lp.detach() if use_policy_as_ref else ref.logprobs(prompt)
    return lp[torch.arange(len(prompt)), chosen], lp[torch.arange(len(prompt)), rejected], \
        lr[torch.arange(len(prompt)), chosen], lr[torch.arange(len(prompt)), rejected]


def test_passes_on_a_differently_written_correct_step(capsys):
    def mine(policy, ref, batch, optimizer, beta=0.1):
        pc, pr, rc, rr = _logps(policy, ref, batch)
        loss = -F.logsigmoid(beta * ((pc - pr) - (rc.detach() - rr.detach()))).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    assert_passes(check_toy_dpo_step, mine, capsys)


def forgets_zero_grad(policy, ref, batch, optimizer, beta=0.1):
    loss = dpo_loss(*_logps(policy, ref, batch), beta=beta)
    loss.backward()
    optimizer.step()
    return loss.item()


def forgets_step(policy, ref, batch, optimizer, beta=0.1):
    optimizer.zero_grad()
    loss = dpo_loss(*_logps(policy, ref, batch), beta=beta)
    loss.backward()
    return loss.item()


def policy_as_reference(policy, ref, batch, optimizer, beta=0.1):
    optimizer.zero_grad()
    loss = dpo_loss(*_logps(policy, ref, batch, use_policy_as_ref=True), beta=beta)
    loss.backward()
    optimizer.step()
    return loss.item()


def swaps_pairs(policy, ref, batch, optimizer, beta=0.1):
    pc, pr, rc, rr = _logps(policy, ref, batch)
    optimizer.zero_grad()
    loss = dpo_loss(pr, pc, rr, rc, beta=beta)
    loss.backward()
    optimizer.step()
    return loss.item()


def drops_beta(policy, ref, batch, optimizer, beta=0.1):
    optimizer.zero_grad()
    loss = dpo_loss(*_logps(policy, ref, batch))
    loss.backward()
    optimizer.step()
    return loss.item()


def unfreezes_and_trains_reference(policy, ref, batch, optimizer, beta=0.1):
    for p in ref.parameters():
        p.requires_grad_(True)
    opt_ref = torch.optim.SGD(ref.parameters(), lr=1.0)
    optimizer.zero_grad()
    opt_ref.zero_grad()
    loss = dpo_loss(*_logps(policy, ref, batch), beta=beta)
    loss.backward()
    optimizer.step()
    opt_ref.step()
    return loss.item()


def returns_nothing(policy, ref, batch, optimizer, beta=0.1):
    optimizer.zero_grad()
    loss = dpo_loss(*_logps(policy, ref, batch), beta=beta)
    loss.backward()
    optimizer.step()


@pytest.mark.parametrize("impl, fragments", [
    (forgets_zero_grad, ["step 2", "zero_grad"]),
    (forgets_step, ["never moves", "optimizer.step()"]),
    (policy_as_reference, ["stuck at log 2", "ref.logprobs"]),
    (swaps_pairs, ["swapped"]),
    (drops_beta, ["β = 0.5", "β is not passed"]),
    (unfreezes_and_trains_reference, ["reference", "must stay frozen"]),
    (returns_nothing, ["returned loss", "got None", "return"]),
])
def test_toy_step_check_names_the_mistake(impl, fragments):
    assert_fails_with(check_toy_dpo_step, impl, *fragments)
