"""check_optimal_policy and check_rlhf_objective (notebook 01)."""

import pytest
import torch

from checkhelpers import assert_fails_with, assert_passes
from rlhf_core.checks import check_optimal_policy, check_rlhf_objective
from rlhf_core.objective import optimal_policy, rlhf_objective


def test_pass_on_the_reference(capsys):
    assert_passes(check_optimal_policy, optimal_policy, capsys)
    assert_passes(check_rlhf_objective, rlhf_objective, capsys)


def policy_as_probabilities(ref, r, beta):
    p = ref.exp() * torch.exp(r / beta)
    return p / p.sum(-1, keepdim=True)


def policy_naive_in_log_space(ref, r, beta):
    p = ref.exp() * torch.exp(r / beta)
    return (p / p.sum(-1, keepdim=True)).log()


def policy_unnormalised(ref, r, beta):
    return ref + r / beta


def policy_without_reference(ref, r, beta):
    return torch.log_softmax(r / beta, dim=-1)


def policy_beta_multiplies(ref, r, beta):
    return torch.log_softmax(ref + beta * r, dim=-1)


def policy_first_axis(ref, r, beta):
    return torch.log_softmax(ref + r / beta, dim=0)


@pytest.mark.parametrize("impl, fragments", [
    (policy_as_probabilities, ["log-probs"]),
    (policy_naive_in_log_space, ["β = 0.01", "overflow", "log space"]),
    (policy_unnormalised, ["not normalised", "logsumexp"]),
    (policy_without_reference, ["π_ref is missing"]),
    (policy_beta_multiplies, ["r/β"]),
    (policy_first_axis, ["wrong axis"]),
])
def test_optimal_policy_check_names_the_mistake(impl, fragments):
    assert_fails_with(check_optimal_policy, impl, *fragments)


def objective_reverse_kl(pol, ref, r, beta):
    return (pol.exp() * r).sum(-1) - beta * (ref.exp() * (ref - pol)).sum(-1)


def objective_plus_kl(pol, ref, r, beta):
    return (pol.exp() * r).sum(-1) + beta * (pol.exp() * (pol - ref)).sum(-1)


def objective_under_reference(pol, ref, r, beta):
    return (ref.exp() * r).sum(-1) - beta * torch.where(pol.exp() > 0, pol.exp() * (pol - ref), torch.zeros_like(pol)).sum(-1)


def objective_naive_zero_prob(pol, ref, r, beta):
    return (pol.exp() * r).sum(-1) - beta * (pol.exp() * (pol - ref)).sum(-1)


def objective_mean_reward(pol, ref, r, beta):
    return r.mean(-1) - beta * torch.where(pol.exp() > 0, pol.exp() * (pol - ref), torch.zeros_like(pol)).sum(-1)


def objective_total_over_prompts(pol, ref, r, beta):
    kl = torch.where(pol.exp() > 0, pol.exp() * (pol - ref), torch.zeros_like(pol)).sum(-1)
    return ((pol.exp() * r).sum(-1) - beta * kl).sum()


@pytest.mark.parametrize("impl, fragments", [
    (objective_reverse_kl, ["KL is reversed"]),
    (objective_plus_kl, ["subtracts"]),
    (objective_under_reference, ["under π_ref"]),
    (objective_naive_zero_prob, ["deterministic policy", "got nan.", "0·log 0"]),
    (objective_mean_reward, ["plain mean of r"]),
    (objective_total_over_prompts, ["expected shape (3,)", "reduced over one axis too many"]),
])
def test_rlhf_objective_check_names_the_mistake(impl, fragments):
    assert_fails_with(check_rlhf_objective, impl, *fragments)
