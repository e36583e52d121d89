"""The checks of lesson 03 — the toy categorical policy: one DPO training step, ``toy_dpo_step``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from .. import losses
from ..toy import ToyPolicy, frozen_copy, make_toy_pairs, toy_dpo_step
from .framework import Case, Exercise, Mistake, plain_number, register

REF_LOGITS = "the reference's logits (must not move)"
REF_TRAINABLE = "reference parameters requiring grad (must be 0)"


def _toy_step_case(name: str, seed: int, beta: float, steps: int, n_pairs: int) -> Case:
    def run(fn: Callable) -> dict[str, Any]:
        g = torch.Generator().manual_seed(seed)
        ref = ToyPolicy(2, 6)
        with torch.no_grad():
            ref.logits.copy_(torch.randn(2, 6, generator=g) * 0.5)
        ref = frozen_copy(ref)
        policy = ToyPolicy(2, 6)
        with torch.no_grad():
            policy.logits.copy_(ref.logits + torch.randn(2, 6, generator=g) * 0.3)  # the policy has moved away already
        prompts, chosen, rejected = make_toy_pairs()
        pick = torch.randperm(len(prompts), generator=g)[:n_pairs]
        batch = (prompts[pick], chosen[pick], rejected[pick])
        optimizer = torch.optim.SGD(policy.parameters(), lr=1.0)
        per_step: dict[str, Any] = {}
        for step in range(1, steps + 1):
            loss = fn(policy, ref, batch, optimizer, beta=beta)
            per_step[f"the returned loss at step {step}"] = plain_number(loss)
            per_step[f"the policy's logits after step {step}"] = policy.logits.detach().clone()
        return {  # the reference first: a moved reference is the first thing to report
            REF_LOGITS: ref.logits.detach().clone(),
            REF_TRAINABLE: sum(p.requires_grad for p in ref.parameters()),
            **per_step,
        }

    return Case(name, run)


def _toy_cases(seed: int) -> list[Case]:
    return [
        _toy_step_case("two steps on 12 pairs, β = 0.1 (SGD, lr 1)", seed, 0.1, 2, 12),
        _toy_step_case("one step on all 30 pairs, β = 0.5", seed + 1, 0.5, 1, 30),
    ]


def _toy_logps(policy, ref, batch, ref_from_policy=False):
    """``(logp_pol_chosen, logp_pol_rejected, logp_ref_chosen, logp_ref_rejected)`` of a toy batch."""
    prompts, chosen, rejected = batch
    logp_pol = policy.logprobs(prompts)
    logp_ref = logp_pol.detach() if ref_from_policy else ref.logprobs(prompts)
    pick = lambda t, i: t.gather(1, i[:, None]).squeeze(1)
    return pick(logp_pol, chosen), pick(logp_pol, rejected), pick(logp_ref, chosen), pick(logp_ref, rejected)


def _update(loss, optimizer, zero_grad: bool = True, step: bool = True) -> float:
    """The step's update, with the parts a mistake leaves out: zero_grad, backward, step; the loss as a float."""
    if zero_grad:
        optimizer.zero_grad()
    loss.backward()
    if step:
        optimizer.step()
    return loss.item()


def _toy_no_zero_grad(policy, ref, batch, optimizer, beta=0.1):
    return _update(losses.dpo_loss(*_toy_logps(policy, ref, batch), beta=beta), optimizer, zero_grad=False)


def _toy_no_step(policy, ref, batch, optimizer, beta=0.1):
    return _update(losses.dpo_loss(*_toy_logps(policy, ref, batch), beta=beta), optimizer, step=False)


def _toy_swapped(policy, ref, batch, optimizer, beta=0.1):
    logp_pol_chosen, logp_pol_rejected, logp_ref_chosen, logp_ref_rejected = _toy_logps(policy, ref, batch)
    return _update(losses.dpo_loss(logp_pol_rejected, logp_pol_chosen, logp_ref_rejected, logp_ref_chosen, beta=beta),
                   optimizer)


def _toy_policy_as_ref(policy, ref, batch, optimizer, beta=0.1):
    return _update(losses.dpo_loss(*_toy_logps(policy, ref, batch, ref_from_policy=True), beta=beta), optimizer)


def _toy_default_beta(policy, ref, batch, optimizer, beta=0.1):
    return _update(losses.dpo_loss(*_toy_logps(policy, ref, batch)), optimizer)


def _toy_loss_after_step(policy, ref, batch, optimizer, beta=0.1):
    _update(losses.dpo_loss(*_toy_logps(policy, ref, batch), beta=beta), optimizer)
    with torch.no_grad():
        return losses.dpo_loss(*_toy_logps(policy, ref, batch), beta=beta).item()


register(Exercise(
    name="toy_dpo_step",
    lesson=3,
    points=2,
    library_only=("loss_fn",),
    cases=_toy_cases,
    reference=toy_dpo_step,
    mistakes=[
        Mistake("The gradients accumulate across steps: call optimizer.zero_grad() before loss.backward().", _toy_no_zero_grad),
        Mistake("The policy never moves: call optimizer.step() after loss.backward() — after, not before, since "
                "zero_grad() clears the gradients step() would use.", _toy_no_step),
        Mistake("The policy moves the wrong way: chosen and rejected are swapped.", _toy_swapped),
        Mistake("The reference log-probs come from the policy itself, so every log-ratio difference is 0 and the loss "
                "is stuck at log 2: use ref.logprobs(...) for the reference terms.", _toy_policy_as_ref),
        Mistake("β is not passed on to the loss (it runs with its default 0.1).", _toy_default_beta),
        Mistake("The returned loss is computed after the update; return the loss the gradient came from.", _toy_loss_after_step),
    ],
    summary="toy_dpo_step updates the policy exactly like the reference step, returns the loss, and leaves the reference frozen",
    key_hints={
        REF_LOGITS: "The reference moved: it is the KL anchor and must stay frozen — never give its parameters to an optimizer.",
        REF_TRAINABLE: "The reference's parameters were switched back to requires_grad=True: leave them frozen.",
    },
    formula="loss = dpo_loss(policy chosen/rejected log-probs, reference chosen/rejected log-probs (no grad), beta); "
            "optimizer.zero_grad(); loss.backward(); optimizer.step(); return loss.item(). (This check compares with the "
            "library's dpo_loss: if your step calls your own dpo_loss, make sure check_dpo_loss passes first.)",
))
