"""The drill's toy task: a categorical policy learns a known ranking from preference pairs alone.

Two prompts, six responses each. Each prompt has a known ranking (best → worst); every ordered pair
``(better, worse)`` of it is a preference ``(x, y_w, y_l)`` — 15 per prompt, 30 in all. The policy
``π(y|x) = softmax(logits[x])`` starts uniform, the reference is a frozen copy of that start, and
training uses ``dpo_loss`` only: no reward model is ever fitted. Afterwards the implicit reward
``β·log(π/π_ref)`` ranks the responses exactly as the preferences did.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .losses import dpo_loss, implicit_reward

__all__ = ["ToyPolicy", "TOY_RANKINGS", "make_toy_pairs", "frozen_copy", "toy_dpo_step", "run_toy_task"]

TOY_RANKINGS: dict[int, list[int]] = {0: [0, 1, 2, 3, 4, 5], 1: [5, 4, 3, 2, 1, 0]}


class ToyPolicy(nn.Module):
    """``π(y|x)``: one categorical over ``n_responses`` per prompt; the logits *are* the policy.

    ``.logits`` is an ``nn.Parameter`` of zeros ``(n_prompts, n_responses)``: the uniform policy.
    """

    def __init__(self, n_prompts: int, n_responses: int):
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(n_prompts, n_responses))

    def logprobs(self, prompt_idx: Tensor) -> Tensor:
        """Log-softmax rows for the given prompts: ``(K,)`` long → ``(K, n_responses)``."""
        return F.log_softmax(self.logits[prompt_idx], dim=-1)


def make_toy_pairs(rankings: dict[int, list[int]] = TOY_RANKINGS) -> tuple[Tensor, Tensor, Tensor]:
    """All ``(prompt, chosen, rejected)`` pairs implied by the rankings, as three ``(n_pairs,)`` long tensors."""
    triples = [
        (prompt, order[i], order[j])
        for prompt, order in rankings.items()
        for i in range(len(order))
        for j in range(i + 1, len(order))
    ]
    prompts, chosen, rejected = zip(*triples)
    return torch.tensor(prompts), torch.tensor(chosen), torch.tensor(rejected)


def frozen_copy(module: nn.Module) -> nn.Module:
    """A deep copy with every parameter's ``requires_grad`` off, in eval mode: a reference policy."""
    ref = copy.deepcopy(module)
    for p in ref.parameters():
        p.requires_grad_(False)
    return ref.eval()


def _pick(logprobs: Tensor, idx: Tensor) -> Tensor:
    return logprobs.gather(1, idx[:, None]).squeeze(1)  # (K, N), (K,) → (K,)


def toy_dpo_step(
    policy: ToyPolicy,
    ref: ToyPolicy,
    batch: tuple[Tensor, Tensor, Tensor],
    optimizer: torch.optim.Optimizer,
    beta: float = 0.1,
    loss_fn: Callable[..., Tensor] = dpo_loss,
) -> float:
    """One DPO step on the toy policy; returns the loss as a float.

    ``batch = (prompt_idx, chosen_idx, rejected_idx)``, each ``(K,)`` long. The reference's
    log-probs are computed without a graph; only the policy's parameters receive gradients.
    """
    prompt_idx, chosen_idx, rejected_idx = batch
    logp_pol = policy.logprobs(prompt_idx)  # (K, N)
    with torch.no_grad():
        logp_ref = ref.logprobs(prompt_idx)  # (K, N)
    loss = loss_fn(
        _pick(logp_pol, chosen_idx),
        _pick(logp_pol, rejected_idx),
        _pick(logp_ref, chosen_idx),
        _pick(logp_ref, rejected_idx),
        beta=beta,
    )
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def run_toy_task(
    seed: int = 0,
    beta: float = 0.1,
    steps: int = 400,
    *,
    loss_fn: Callable[..., Tensor] | None = None,
    lr: float = 0.05,
    step_fn: Callable[..., float] | None = None,
) -> dict:
    """Train a :class:`ToyPolicy` with DPO on all pairs of :data:`TOY_RANKINGS`.

    Returns ``dict(before, after, rewards, rankings, ref, policy)`` plus ``losses`` (per step):
    ``before``/``after`` are ``(2, 6)`` probabilities, ``rewards`` the ``(2, 6)`` implicit rewards
    after training, ``ref`` the frozen reference (a copy of the initial policy), ``policy`` the
    trained one. The task itself is deterministic (uniform start, full batch); ``seed`` only seeds
    torch's global generator, for a ``loss_fn`` or ``step_fn`` that draws random numbers.
    ``loss_fn`` swaps in another loss with ``dpo_loss``'s signature (a learner's own);
    ``step_fn`` swaps in another step with :func:`toy_dpo_step`'s signature (minus ``loss_fn``).
    """
    torch.manual_seed(seed)
    loss_fn = dpo_loss if loss_fn is None else loss_fn
    n_prompts, n_responses = 2, 6
    policy = ToyPolicy(n_prompts, n_responses)
    ref = frozen_copy(policy)
    batch = make_toy_pairs(TOY_RANKINGS)
    all_prompts = torch.arange(n_prompts)

    before = policy.logprobs(all_prompts).exp().detach()  # (2, 6)
    optimizer = torch.optim.Adam(policy.parameters(), lr=lr)
    if step_fn is None:
        losses = [toy_dpo_step(policy, ref, batch, optimizer, beta, loss_fn) for _ in range(steps)]
    else:
        losses = [step_fn(policy, ref, batch, optimizer, beta=beta) for _ in range(steps)]

    with torch.no_grad():
        logp_pol = policy.logprobs(all_prompts)  # (2, 6)
        rewards = implicit_reward(logp_pol, ref.logprobs(all_prompts), beta=beta)  # (2, 6)
    return dict(
        before=before,
        after=logp_pol.exp(),
        rewards=rewards,
        rankings={k: list(v) for k, v in TOY_RANKINGS.items()},
        ref=ref,
        policy=policy,
        losses=losses,
    )
