"""The KL-regularised RLHF objective on a discrete response set, its closed-form optimum, Bradley–Terry.

For one prompt ``x`` with responses ``y ∈ {0 … N-1}``, a policy is a vector of log-probs ``(N,)``
(or ``(P, N)`` for ``P`` prompts: every function works on the last axis). The objective is

    J(π) = E_{y~π}[r(y)] − β·KL(π ‖ π_ref),

and its maximiser is ``π*(y) = π_ref(y)·exp(r(y)/β) / Z`` with ``Z = Σ_y π_ref(y)·exp(r(y)/β)``.
At the optimum ``J(π*) = β·log Z``. Inverting the closed form gives the reward in terms of the
policy, ``r(y) = β·log(π*(y)/π_ref(y)) + β·log Z``: the implicit reward plus a per-prompt constant
which cancels in the Bradley–Terry probability ``P(y_w ≻ y_l) = σ(r(y_w) − r(y_l))``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "kl_divergence",
    "rlhf_objective",
    "optimal_policy",
    "log_partition",
    "reward_from_policy",
    "bradley_terry_prob",
    "bradley_terry_nll",
    "gradient_ascent_policy",
]


def kl_divergence(p_logprobs: Tensor, q_logprobs: Tensor) -> Tensor:
    """``KL(p ‖ q) = Σ_y p(y)·(log p(y) − log q(y))`` over the last axis: ``(..., N)`` → ``(...)``.

    Terms with ``p(y) = 0`` contribute 0 (the limit of ``p log p``), so a policy that puts no mass on
    a response is fine; ``q(y) = 0`` where ``p(y) > 0`` gives ``inf``, as it should.
    """
    p = p_logprobs.exp()
    terms = torch.where(p > 0, p * (p_logprobs - q_logprobs), torch.zeros_like(p))  # (..., N)
    return terms.sum(-1)


def rlhf_objective(policy_logprobs: Tensor, ref_logprobs: Tensor, rewards: Tensor, beta: float) -> Tensor:
    """``J(π) = Σ_y π(y)·r(y) − β·KL(π ‖ π_ref)`` per prompt: ``(..., N)`` log-probs and rewards → ``(...)``.

    The expectation is under the *policy* π (not the reference), and the KL is ``KL(π ‖ π_ref)``
    (the policy first), exactly the objective RLHF's PPO stage maximises.
    """
    expected_reward = (policy_logprobs.exp() * rewards).sum(-1)  # (...,)
    return expected_reward - beta * kl_divergence(policy_logprobs, ref_logprobs)


def optimal_policy(ref_logprobs: Tensor, rewards: Tensor, beta: float) -> Tensor:
    """The closed-form maximiser of :func:`rlhf_objective`, as log-probs over the last axis.

    ``log π*(y) = log π_ref(y) + r(y)/β − log Z`` with ``log Z = logsumexp(log π_ref + r/β)``.
    Shapes: ``ref_logprobs`` and ``rewards`` ``(..., N)`` → ``(..., N)``.
    """
    return F.log_softmax(ref_logprobs + rewards / beta, dim=-1)


def log_partition(ref_logprobs: Tensor, rewards: Tensor, beta: float) -> Tensor:
    """``log Z = log Σ_y π_ref(y)·exp(r(y)/β)`` per prompt: ``(..., N)`` → ``(...)``."""
    return torch.logsumexp(ref_logprobs + rewards / beta, dim=-1)


def reward_from_policy(policy_logprobs: Tensor, ref_logprobs: Tensor, beta: float, log_z: Tensor | float = 0.0) -> Tensor:
    """Invert the closed form: ``r(y) = β·log(π(y)/π_ref(y)) + β·log Z``, elementwise.

    With ``log_z = 0`` this is DPO's implicit reward, which differs from the true reward by the
    per-prompt constant ``β·log Z`` (pass ``log_z`` with shape ``(..., 1)`` to add it back).
    """
    return beta * (policy_logprobs - ref_logprobs) + beta * log_z


def bradley_terry_prob(reward_chosen: Tensor, reward_rejected: Tensor) -> Tensor:
    """``P(y_w ≻ y_l) = σ(r(y_w) − r(y_l))``: only the reward *difference* matters."""
    return torch.sigmoid(reward_chosen - reward_rejected)


def bradley_terry_nll(reward_chosen: Tensor, reward_rejected: Tensor) -> Tensor:
    """Mean negative log-likelihood of the observed preferences under Bradley–Terry (0-dim).

    This is the reward-model loss of RLHF; substituting the implicit reward gives the DPO loss.
    """
    return -F.logsigmoid(reward_chosen - reward_rejected).mean()


def gradient_ascent_policy(
    ref_logprobs: Tensor,
    rewards: Tensor,
    beta: float,
    steps: int = 500,
    lr: float = 0.1,
) -> tuple[Tensor, list[float]]:
    """Maximise :func:`rlhf_objective` numerically, over free logits initialised at ``π_ref``.

    Returns ``(log-probs (..., N), objective per step)``; for several prompts the curve is the
    objective *summed* over prompts. The closed form's value ``β·log Z`` (summed likewise) is the
    ceiling the curve approaches.
    """
    logits = ref_logprobs.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([logits], lr=lr)
    curve = []
    for _ in range(steps):
        objective = rlhf_objective(F.log_softmax(logits, -1), ref_logprobs, rewards, beta).sum()
        opt.zero_grad()
        (-objective).backward()
        opt.step()
        curve.append(objective.item())
    return F.log_softmax(logits.detach(), -1), curve
