"""The KL-regularised objective, its closed-form optimum, and Bradley–Terry."""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from rlhf_core import objective


@st.composite
def problems(draw):
    n = draw(st.integers(2, 8))
    seed = draw(st.integers(0, 10_000))
    g = torch.Generator().manual_seed(seed)
    ref = torch.log_softmax(torch.randn(n, generator=g, dtype=torch.float64) * 2, -1)
    rewards = torch.randn(n, generator=g, dtype=torch.float64) * 2
    beta = draw(st.sampled_from([0.05, 0.3, 1.0, 4.0]))
    return ref, rewards, beta


@given(problems(), st.integers(0, 10_000))
def test_the_closed_form_beats_every_other_policy(problem, seed):
    ref, rewards, beta = problem
    best = objective.rlhf_objective(objective.optimal_policy(ref, rewards, beta), ref, rewards, beta)
    g = torch.Generator().manual_seed(seed)
    for _ in range(20):
        other = torch.log_softmax(torch.randn(len(ref), generator=g, dtype=torch.float64) * 3, -1)
        assert objective.rlhf_objective(other, ref, rewards, beta) <= best + 1e-9


@given(problems())
def test_the_optimum_value_is_beta_log_z(problem):
    ref, rewards, beta = problem
    value = objective.rlhf_objective(objective.optimal_policy(ref, rewards, beta), ref, rewards, beta)
    assert value.item() == pytest.approx(beta * objective.log_partition(ref, rewards, beta).item(), rel=1e-9, abs=1e-9)


@given(problems())
def test_inverting_the_closed_form_recovers_the_reward(problem):
    ref, rewards, beta = problem
    pi_star = objective.optimal_policy(ref, rewards, beta)
    log_z = objective.log_partition(ref, rewards, beta)
    assert torch.allclose(objective.reward_from_policy(pi_star, ref, beta, log_z), rewards, atol=1e-9)


@given(problems(), st.floats(-50, 50))
def test_a_per_prompt_constant_cancels_in_bradley_terry(problem, constant):
    ref, rewards, beta = problem
    p = objective.bradley_terry_prob(rewards[0], rewards[1])
    shifted = objective.bradley_terry_prob(rewards[0] + constant, rewards[1] + constant)
    assert shifted.item() == pytest.approx(p.item(), rel=1e-9, abs=1e-12)


def test_gradient_ascent_converges_to_the_closed_form():
    g = torch.Generator().manual_seed(0)
    ref = torch.log_softmax(torch.randn(2, 6, generator=g), -1)
    rewards = torch.randn(2, 6, generator=g)
    found, curve = objective.gradient_ascent_policy(ref, rewards, beta=0.5, steps=600, lr=0.1)
    closed = objective.optimal_policy(ref, rewards, 0.5)
    assert torch.allclose(found.exp(), closed.exp(), atol=2e-3)
    ceiling = (0.5 * objective.log_partition(ref, rewards, 0.5)).sum().item()
    assert curve[0] < curve[-1] <= ceiling + 1e-5


def test_beta_limits():
    ref = torch.log_softmax(torch.tensor([0.5, 0.0, -1.0]), -1)
    rewards = torch.tensor([0.0, 1.0, 0.5])
    assert objective.optimal_policy(ref, rewards, 1e-3).exp().argmax().item() == 1  # β → 0: argmax of reward
    assert torch.allclose(objective.optimal_policy(ref, rewards, 1e4).exp(), ref.exp(), atol=1e-3)  # β → ∞: the reference


def test_kl_handles_zero_probabilities():
    p = torch.tensor([0.0, -math.inf])
    q = torch.log(torch.tensor([0.5, 0.5]))
    assert objective.kl_divergence(p, q).item() == pytest.approx(math.log(2))
    assert math.isinf(objective.kl_divergence(q, p).item())


def test_bradley_terry_nll_is_the_dpo_loss_with_the_implicit_reward():
    from rlhf_core.losses import dpo_loss, implicit_reward

    pc, pr, rc, rr = (torch.randn(5) for _ in range(4))
    nll = objective.bradley_terry_nll(implicit_reward(pc, rc, 0.2), implicit_reward(pr, rr, 0.2))
    assert torch.allclose(nll, dpo_loss(pc, pr, rc, rr, 0.2))
