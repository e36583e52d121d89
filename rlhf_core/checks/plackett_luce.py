"""The check of lesson 07's ranking exercise: the Plackett–Luce (K-wise) DPO loss, ``plackett_luce_loss``.

The paper's Appendix A.3 generalises DPO from a pair to a ranking of K responses: the ranking's
likelihood under Plackett–Luce is K successive choices, each of the best response among those not yet
placed, with the implicit reward ``β·log π/π_ref`` as the score. Lesson 07 draws four samples per prompt
and ranks them by a known reward: exactly the data this loss is for.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import losses
from .cases import fn_case, seq_logps
from .framework import Case, Exercise, Mistake, register


def _pl_ranked(g: torch.Generator, batch: int, k: int, dtype=torch.float32) -> Tensor:
    """``(batch, k)`` summed log-probs, one row of K responses per prompt."""
    return torch.stack([seq_logps(g, k, dtype) for _ in range(batch)])


def _pl_orders(fn, logp_pol: Tensor, logp_ref: Tensor, beta: float) -> dict:
    """The loss on a ranking and on the same responses in another order (the order is the data)."""
    order = torch.tensor([2, 0, 3, 1])
    return {"loss on the ranking (y1, y2, y3, y4)": fn(logp_pol.clone(), logp_ref.clone(), beta=beta),
            "loss on the same responses ranked (y3, y1, y4, y2)": fn(logp_pol[:, order], logp_ref[:, order], beta=beta)}


def _pl_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    random4 = (_pl_ranked(g, 6, 4), _pl_ranked(g, 6, 4))
    pairs = (_pl_ranked(g, 8, 2), _pl_ranked(g, 8, 2))
    same = _pl_ranked(g, 5, 4)
    beta_half = (_pl_ranked(g, 5, 3), _pl_ranked(g, 5, 3))
    extreme = (torch.tensor([[-1.0, -10001.0, -5001.0, -20001.0], [-20001.0, -1.0, -10001.0, -5001.0]]),
               torch.full((2, 4), -5001.0))                 # unscaled margins up to ±2e4 between neighbours
    worked = (torch.tensor([[-3.0, -7.0, -5.0]]), torch.tensor([[-4.0, -4.0, -4.0]]))
    f64 = (_pl_ranked(g, 4, 5, torch.float64), _pl_ranked(g, 4, 5, torch.float64))
    orders = (_pl_ranked(g, 3, 4), _pl_ranked(g, 3, 4))
    return [
        fn_case("a random batch of 6 rankings of K = 4 responses, β = 0.1", random4, {"beta": 0.1}, grad=("arg0",)),
        fn_case("K = 2: must equal dpo_loss on columns 0 and 1 (β = 0.1)", pairs, {"beta": 0.1}),
        fn_case("policy == reference, K = 4: the loss must be log 4! ≈ 3.1781", (same, same.clone()), {"beta": 0.1}),
        fn_case("β = 0.5, K = 3", beta_half, {"beta": 0.5}),
        fn_case("margins of ±1e4 (K = 4, β = 0.1)", extreme, {"beta": 0.1}),
        fn_case("the worked example, K = 3, β = 0.5 (answer 1.7209)", worked, {"beta": 0.5}),
        fn_case("float64 inputs, K = 5, β = 0.2", f64, {"beta": 0.2}),
        Case("the same responses in another order (β = 0.1)", lambda fn: _pl_orders(fn, *orders, beta=0.1)),
    ]


def _pl_rewards(logp_pol, logp_ref, beta):
    return beta * (logp_pol - logp_ref)


def _pl_suffix_lse(h):
    return torch.logcumsumexp(h.flip(-1), dim=-1).flip(-1)


def _pl_whole_ranking(logp_pol, logp_ref, beta=0.1):
    h = _pl_rewards(logp_pol, logp_ref, beta)
    return -(h - torch.logsumexp(h, dim=-1, keepdim=True)).sum(-1).mean()


def _pl_worst_first(logp_pol, logp_ref, beta=0.1):
    h = _pl_rewards(logp_pol, logp_ref, beta)
    return -(h - torch.logcumsumexp(h, dim=-1)).sum(-1).mean()


def _pl_no_reference(logp_pol, logp_ref, beta=0.1):
    h = beta * logp_pol
    return -(h - _pl_suffix_lse(h)).sum(-1).mean()


def _pl_beta_outside(logp_pol, logp_ref, beta=0.1):
    h = logp_pol - logp_ref
    return -beta * (h - _pl_suffix_lse(h)).sum(-1).mean()


def _pl_beta_ignored(logp_pol, logp_ref, beta=0.1):
    h = logp_pol - logp_ref
    return -(h - _pl_suffix_lse(h)).sum(-1).mean()


def _pl_batch_sum(logp_pol, logp_ref, beta=0.1):
    h = _pl_rewards(logp_pol, logp_ref, beta)
    return -(h - _pl_suffix_lse(h)).sum()


def _pl_positions_mean(logp_pol, logp_ref, beta=0.1):
    h = _pl_rewards(logp_pol, logp_ref, beta)
    return -(h - _pl_suffix_lse(h)).mean()


def _pl_exp_then_log(logp_pol, logp_ref, beta=0.1):
    h = _pl_rewards(logp_pol, logp_ref, beta)
    weights = torch.exp(h)
    return -torch.log(weights / weights.flip(-1).cumsum(-1).flip(-1)).sum(-1).mean()


def _pl_top_choice_only(logp_pol, logp_ref, beta=0.1):
    h = _pl_rewards(logp_pol, logp_ref, beta)
    return -(h[:, 0] - torch.logsumexp(h, dim=-1)).mean()


def _pl_previous_still_in(logp_pol, logp_ref, beta=0.1):
    h = _pl_rewards(logp_pol, logp_ref, beta)
    remaining = _pl_suffix_lse(h)
    return -(h - torch.cat([remaining[:, :1], remaining[:, :-1]], dim=-1)).sum(-1).mean()


def _pl_self_left_out(logp_pol, logp_ref, beta=0.1):
    h = _pl_rewards(logp_pol, logp_ref, beta)
    return -(h[:, :-1] - _pl_suffix_lse(h)[:, 1:]).sum(-1).mean()


def _pl_adjacent_pairs(logp_pol, logp_ref, beta=0.1):
    h = _pl_rewards(logp_pol, logp_ref, beta)
    return -F.logsigmoid(h[:, :-1] - h[:, 1:]).sum(-1).mean()


def _pl_every_pair(logp_pol, logp_ref, beta=0.1):
    h = _pl_rewards(logp_pol, logp_ref, beta)
    better, worse = torch.triu_indices(h.shape[-1], h.shape[-1], offset=1)
    return -F.logsigmoid(h[:, better] - h[:, worse]).sum(-1).mean()


def _pl_sorted_by_reward(logp_pol, logp_ref, beta=0.1):
    h = _pl_rewards(logp_pol, logp_ref, beta).sort(dim=-1, descending=True).values
    return -(h - _pl_suffix_lse(h)).sum(-1).mean()


def _pl_shape_hint(expected: tuple, got: tuple) -> str | None:
    if expected == () and len(got) == 1:
        return "That is one loss per prompt: the loss is one number, the mean over the batch (.mean())."
    if expected == () and len(got) == 2:
        return ("That is one term per position and prompt: sum the K positions' log-probabilities (the ranking's "
                "log-likelihood), then average over the batch.")
    return None


register(Exercise(
    name="plackett_luce_loss",
    lesson=7,
    points=2,
    hidden_seeds=(101, 202),
    cases=_pl_cases,
    reference=losses.plackett_luce_loss,
    mistakes=[
        Mistake("Every position's softmax runs over the whole ranking: at position k the denominator must hold only "
                "the responses not yet placed (positions k … K), not those already chosen above it.", _pl_whole_ranking),
        Mistake("The ranking is read worst → best: each response is compared with the ones ranked *above* it. "
                "Column 0 of each row is the best, and position k's denominator sums over positions k … K "
                "(torch.logcumsumexp accumulates from the left: a suffix needs the last axis flipped).",
                _pl_worst_first),
        Mistake("That is the loss without the reference term — did you drop log π_ref? Each response's score is its "
                "implicit reward β·(log π − log π_ref).", _pl_no_reference),
        Mistake("β is outside: it multiplies the loss instead of scaling each response's log-ratio, so at policy == "
                "reference the loss would be β·log K! instead of log K!.", _pl_beta_outside),
        Mistake("β is ignored: the loss is the one β = 1 would give. Each score is β·(log π − log π_ref).",
                _pl_beta_ignored),
        Mistake("You summed over the batch; the loss is the mean over prompts (sum over the K positions, then "
                ".mean() over the rows).", _pl_batch_sum),
        Mistake("You averaged over the K positions too: a ranking's log-likelihood is the *sum* of its K choices' "
                "log-probabilities (the product of the choices); average over the batch only.", _pl_positions_mean),
        Mistake("Numerically unstable: log(exp(h_k) / Σ exp(h_j)) overflows once a β-scaled margin passes ~88 "
                "(float32). Work in log space: h_k − logsumexp of the remaining h_j.", _pl_exp_then_log),
        Mistake("Only the first choice is scored (the best response against all K): the Plackett–Luce likelihood "
                "multiplies one choice per position — the second best among the rest, and so on.", _pl_top_choice_only),
        Mistake("At each position the denominator still holds the response placed just before it: an off-by-one "
                "in the suffix. Position k's choice is among positions k … K only.", _pl_previous_still_in),
        Mistake("Each denominator leaves out the response being chosen: position k's choice is among positions "
                "k … K, itself included (softmax over the remaining responses).", _pl_self_left_out),
        Mistake("That is DPO summed over neighbouring pairs (1 vs 2, 2 vs 3, …): for K > 2 the Plackett–Luce loss is "
                "one likelihood of the whole ranking, a softmax over the remaining responses at each position.",
                _pl_adjacent_pairs),
        Mistake("That is DPO summed over every pair of the ranking (the 'all pairs' construction of this lesson): "
                "for K > 2 the Plackett–Luce loss is a softmax over the remaining responses at each position.",
                _pl_every_pair),
        Mistake("You sorted the responses by their implicit reward first: the ranking is the data's (column 0 the "
                "preferred one), whatever order the policy's rewards are in.", _pl_sorted_by_reward),
    ],
    summary="plackett_luce_loss matches the reference: DPO at K = 2, log K! at the start, a softmax over the "
            "remaining responses at each position, exact at margins of ±1e4",
    formula="-mean over rows of Σ_k (h_k − logsumexp(h_k, …, h_K)), h = β·(logp_pol − logp_ref), each row ranked "
            "best → worst",
    shape_hint=_pl_shape_hint,
))
