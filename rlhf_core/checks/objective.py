"""The checks of lesson 01 — the RLHF objective and its closed-form optimum: ``optimal_policy`` and ``rlhf_objective``."""

from __future__ import annotations

import math

import torch

from .. import objective
from .cases import fn_case, policy_logprobs, reduction_hint
from .framework import Case, Exercise, Mistake, register


def _optimal_policy_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    ref1, r1 = policy_logprobs(g, 6), torch.randn(6, generator=g)
    ref2, r2 = policy_logprobs(g, 3, 5), torch.randn(3, 5, generator=g)
    ref3, r3 = policy_logprobs(g, 4), torch.tensor([2.0, -1.0, 1.5, 0.0])
    uniform = torch.full((5,), -math.log(5.0))
    r4 = torch.randn(5, generator=g)
    return [
        fn_case("one prompt, 6 responses, β = 0.5", (ref1, r1, 0.5)),
        fn_case("3 prompts × 5 responses, β = 1", (ref2, r2, 1.0)),
        fn_case("β = 0.01, so r/β reaches 200 (overflows exp)", (ref3, r3, 0.01)),
        fn_case("uniform reference, β = 0.25", (uniform, r4, 0.25)),
    ]


def _op_probs(ref, r, beta):
    return torch.softmax(ref + r / beta, -1)


def _op_unnormalised(ref, r, beta):
    return ref + r / beta


def _op_times_beta(ref, r, beta):
    return torch.log_softmax(ref + r * beta, -1)


def _op_no_ref(ref, r, beta):
    return torch.log_softmax(r / beta, -1)


def _op_wrong_axis(ref, r, beta):
    return torch.log_softmax(ref + r / beta, 0)


def _op_naive_exp(ref, r, beta):
    unnorm = ref.exp() * torch.exp(r / beta)
    return torch.log(unnorm / unnorm.sum(-1, keepdim=True))


def _op_sign(ref, r, beta):
    return torch.log_softmax(ref - r / beta, -1)


register(Exercise(
    name="optimal_policy",
    lesson=1,
    points=2,
    cases=_optimal_policy_cases,
    reference=objective.optimal_policy,
    mistakes=[
        Mistake("That matches the naive form π_ref·exp(r/β)/Σ(...): exp overflows for small β. "
                "Work in log space: log_softmax(log π_ref + r/β).", _op_naive_exp),
        Mistake("Those are probabilities; the function returns log-probs (take the log, or use log_softmax).", _op_probs),
        Mistake("Not normalised: subtract log Z(x) = logsumexp(log π_ref + r/β) (log_softmax does it).", _op_unnormalised),
        Mistake("The reward is multiplied by β; the exponent is r/β.", _op_times_beta),
        Mistake("π_ref is missing: π* ∝ π_ref·exp(r/β), so add log π_ref before normalising.", _op_no_ref),
        Mistake("Normalised over the wrong axis: normalise over responses (the last axis, dim=-1).", _op_wrong_axis),
        Mistake("The sign of the exponent is flipped: higher reward must get more mass, exp(+r/β).", _op_sign),
    ],
    summary="optimal_policy is the closed form log π* = log π_ref + r/β − log Z, stable for small β",
    formula="log π*(y) = log π_ref(y) + r(y)/β − logsumexp(log π_ref + r/β) over the last axis",
    shape_hint=reduction_hint("optimal_policy"),
))


def _objective_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    pol1, ref1, r1 = policy_logprobs(g, 6), policy_logprobs(g, 6), torch.randn(6, generator=g)
    pol2, ref2, r2 = policy_logprobs(g, 3, 5), policy_logprobs(g, 3, 5), torch.randn(3, 5, generator=g)
    ref3, r3 = policy_logprobs(g, 4), torch.randn(4, generator=g)
    greedy = torch.tensor([0.0, -math.inf, -math.inf, -math.inf])  # all mass on response 0
    return [
        fn_case("one prompt, 6 responses, β = 0.5", (pol1, ref1, r1, 0.5)),
        fn_case("3 prompts × 5 responses, β = 0.1", (pol2, ref2, r2, 0.1)),
        fn_case("policy == reference (no KL cost)", (ref3, ref3.clone(), r3, 2.0)),
        fn_case("a deterministic policy (log π = -inf on 3 responses)", (greedy, ref3, r3, 0.5)),
    ]


def _kl_naive(p, q):
    return (p.exp() * (p - q)).sum(-1)


def _obj_reverse_kl(pol, ref, r, beta):
    return (pol.exp() * r).sum(-1) - beta * objective.kl_divergence(ref, pol)


def _obj_plus_kl(pol, ref, r, beta):
    return (pol.exp() * r).sum(-1) + beta * objective.kl_divergence(pol, ref)


def _obj_ref_expectation(pol, ref, r, beta):
    return (ref.exp() * r).sum(-1) - beta * objective.kl_divergence(pol, ref)


def _obj_plain_mean(pol, ref, r, beta):
    return r.mean(-1) - beta * objective.kl_divergence(pol, ref)


def _obj_no_beta(pol, ref, r, beta):
    return (pol.exp() * r).sum(-1) - objective.kl_divergence(pol, ref)


def _obj_naive_kl(pol, ref, r, beta):
    return (pol.exp() * r).sum(-1) - beta * _kl_naive(pol, ref)


def _obj_logratio_mean(pol, ref, r, beta):
    return (pol.exp() * r).sum(-1) - beta * (pol - ref).mean(-1)


register(Exercise(
    name="rlhf_objective",
    lesson=1,
    points=2,
    cases=_objective_cases,
    reference=objective.rlhf_objective,
    mistakes=[
        Mistake("A response with π(y) = 0 contributes 0·log 0 = 0 to the KL, but 0·(-inf) is NaN in floating point: "
                "guard those terms (torch.where(p > 0, …, 0)).", _obj_naive_kl),
        Mistake("The KL is reversed: the objective uses KL(π ‖ π_ref) = Σ π·(log π − log π_ref), policy first.", _obj_reverse_kl),
        Mistake("The KL penalty is added; the objective subtracts it: E_π[r] − β·KL.", _obj_plus_kl),
        Mistake("The expected reward is taken under π_ref; it must be under the policy π: Σ π(y)·r(y).", _obj_ref_expectation),
        Mistake("The expected reward is Σ π(y)·r(y), weighted by the policy, not the plain mean of r.", _obj_plain_mean),
        Mistake("β is missing on the KL term.", _obj_no_beta),
        Mistake("The KL is Σ π(y)·(log π − log π_ref), weighted by π, not the plain mean of the log-ratio.", _obj_logratio_mean),
    ],
    summary="rlhf_objective computes E_π[r] − β·KL(π ‖ π_ref) per prompt, 0·log 0 included",
    formula="J = Σ_y π(y)·r(y) − β·Σ_y π(y)·(log π(y) − log π_ref(y)), per prompt (last axis reduced)",
    shape_hint=reduction_hint("rlhf_objective"),
))
