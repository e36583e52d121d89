"""The checks of lesson 08 — one DPO step on a tiny model with a cached reference: ``dpo_step``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from .. import losses, train
from .cases import flat_params, tiny_model, tiny_rows
from .framework import Case, Exercise, Missing, Mistake, plain_number, register

DPO_METRIC_KEYS = ("loss", "rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins",
                   "logps/chosen", "logps/rejected", "logratio/margin")


def _dpo_step_case(name: str, seed: int, beta: float, steps: int) -> Case:
    def run(fn: Callable) -> dict[str, Any]:
        g = torch.Generator().manual_seed(seed)
        policy = tiny_model(seed)
        optimizer = torch.optim.SGD(policy.parameters(), lr=0.5)
        values: dict[str, Any] = {}
        for step in range(1, steps + 1):
            ids_c, att_c, resp_c = tiny_rows(g, batch=4, length=12)
            ids_r, att_r, resp_r = tiny_rows(g, batch=4, length=12)
            batch = {"chosen_input_ids": ids_c, "chosen_attention_mask": att_c, "chosen_response_mask": resp_c,
                     "rejected_input_ids": ids_r, "rejected_attention_mask": att_r, "rejected_response_mask": resp_r}
            logp_ref_chosen = -(torch.rand(4, generator=g) * 10 + 15)  # the cached reference log-probs
            logp_ref_rejected = -(torch.rand(4, generator=g) * 10 + 15)
            # pair 0 is a tie (the same response twice): it must not count as correct
            ids_r[0], att_r[0], resp_r[0] = ids_c[0], att_c[0], resp_c[0]
            logp_ref_rejected[0] = logp_ref_chosen[0]
            out = fn(policy, batch, logp_ref_chosen, logp_ref_rejected, optimizer, beta=beta)
            for key in DPO_METRIC_KEYS:
                if not isinstance(out, dict):  # each metric then reports what came back instead of a dict
                    values[f"{key!r} at step {step}"] = out
                else:
                    values[f"{key!r} at step {step}"] = plain_number(out.get(key, Missing(key)))
            values[f"the policy's parameters after step {step}"] = flat_params(policy)
        return values

    return Case(name, run)


def _dpo_step_cases(seed: int) -> list[Case]:
    return [
        _dpo_step_case("two DPO steps on a tiny model, β = 0.1 (SGD, lr 0.5)", seed, 0.1, 2),
        _dpo_step_case("one DPO step, β = 0.5", seed + 1, 0.5, 1),
    ]


def _dpo_step_generic(policy, batch, logp_ref_chosen, logp_ref_rejected, optimizer, beta=0.1, *, swap=False,
                      reward_beta=True, ge=False, average=False, zero_grad=True, metrics_after=False,
                      unscaled_rewards_margin=False, use_beta=True):
    logp_pol_chosen, logp_pol_rejected = train.concatenated_logps(policy, batch, average=average)
    if swap:
        logp_pol_chosen, logp_pol_rejected = logp_pol_rejected, logp_pol_chosen
    loss = losses.dpo_loss(logp_pol_chosen, logp_pol_rejected, logp_ref_chosen, logp_ref_rejected, beta if use_beta else 0.1)
    if zero_grad:
        optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if metrics_after:
        with torch.no_grad():
            logp_pol_chosen, logp_pol_rejected = train.concatenated_logps(policy, batch, average=average)
    logp_pol_chosen, logp_pol_rejected = logp_pol_chosen.detach(), logp_pol_rejected.detach()
    scale = beta if reward_beta else 1.0
    chosen, rejected = scale * (logp_pol_chosen - logp_ref_chosen), scale * (logp_pol_rejected - logp_ref_rejected)
    margins = chosen - rejected
    return {
        "loss": loss.item(),
        "rewards/chosen": chosen.mean().item(),
        "rewards/rejected": rejected.mean().item(),
        "rewards/accuracies": ((chosen >= rejected) if ge else (chosen > rejected)).float().mean().item(),
        "rewards/margins": (margins / scale if unscaled_rewards_margin else margins).mean().item(),
        "logps/chosen": logp_pol_chosen.mean().item(),
        "logps/rejected": logp_pol_rejected.mean().item(),
        "logratio/margin": (margins / scale).mean().item(),
    }


register(Exercise(
    name="dpo_step",
    lesson=8,
    points=3,
    cases=_dpo_step_cases,
    reference=train.dpo_step,  # called positionally by the cases
    mistakes=[
        Mistake("Chosen and rejected are swapped.", lambda *a, beta=0.1: _dpo_step_generic(*a, beta=beta, swap=True), id="step_swapped"),
        Mistake("The log-probs are averaged per token; DPO sums them (get_logps(..., average=False)).",
                lambda *a, beta=0.1: _dpo_step_generic(*a, beta=beta, average=True), id="step_averaged_logps"),
        Mistake("The gradients accumulate across steps: call optimizer.zero_grad() before loss.backward().",
                lambda *a, beta=0.1: _dpo_step_generic(*a, beta=beta, zero_grad=False), id="step_no_zero_grad"),
        Mistake("β is not passed on to dpo_loss (it runs with its default 0.1).",
                lambda *a, beta=0.1: _dpo_step_generic(*a, beta=beta, use_beta=False), id="step_beta_not_passed"),
        Mistake("The rewards miss β: rewards/chosen is β·(log π − log π_ref).",
                lambda *a, beta=0.1: _dpo_step_generic(*a, beta=beta, reward_beta=False), id="step_rewards_without_beta"),
        Mistake("rewards/margins is the β-scaled margin; the unscaled one goes in logratio/margin.",
                lambda *a, beta=0.1: _dpo_step_generic(*a, beta=beta, unscaled_rewards_margin=True), id="step_unscaled_reward_margin"),
        Mistake("Accuracy counts ties as correct; a pair is correct only when the chosen reward is strictly higher.",
                lambda *a, beta=0.1: _dpo_step_generic(*a, beta=beta, ge=True), id="step_ties_correct"),
        Mistake("The metrics are measured after the update; report those of the batch the gradient came from.",
                lambda *a, beta=0.1: _dpo_step_generic(*a, beta=beta, metrics_after=True), id="step_metrics_after_update"),
    ],
    summary="dpo_step computes policy log-probs in one pass, the loss against the cached reference, one update, and the conventional metrics",
    formula="pc, pr = summed log-probs of chosen/rejected under the policy; loss = dpo_loss(pc, pr, ref_c, ref_r, beta); "
            "zero_grad, backward, step; rewards = β·(logp − ref); accuracy = mean(chosen reward > rejected reward)",
))
