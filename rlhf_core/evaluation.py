"""Evaluate a policy the way the paper's sentiment experiment does: on *sampled* text.

For held-out prompts, sample responses from the policy at temperature 1 (not greedy: the greedy
response is one point of the distribution and hides how much mass moved), then measure

* the ground-truth reward of each sample (``task.reward``), its mean and standard deviation;
* the sequence KL to the reference, estimated on the same samples:
  ``KL(π ‖ π_ref) ≈ mean over y ~ π of [log π(y|x) − log π_ref(y|x)]``, each term a sum over the
  response tokens (EOS included) — nats per sequence, as in the paper's reward-vs-KL frontier;
* the fraction of samples the grammar accepts (``task.is_grammatical``).

Two estimators of the same sequence KL, both from samples y ~ π (``sample_and_score(...,
token_kl=True)`` computes the second as well):

* **sampled** (the one every evaluation logs as ``eval/kl``): ``log π(y|x) − log π_ref(y|x)`` per
  sample, i.e. the sum over positions of the *sampled token's* log-ratio. Unbiased, but one sample's
  value can be negative (a sample the reference likes more than the policy does), and it is noisy;
* **token-level** (chain rule): by the chain rule of KL,
  ``KL(π(·|x) ‖ π_ref(·|x)) = E_{y~π} Σ_t KL(π(·|x, y_<t) ‖ π_ref(·|x, y_<t))``, so summing the *exact*
  next-token KL over the vocabulary at each sampled prefix gives another unbiased estimate whose
  every term is ≥ 0, and whose variance is lower (it averages over the next token exactly instead of
  sampling it). PPO-style RLHF puts a per-token penalty ``−β log π(y_t|…)/π_ref(y_t|…)`` on the
  sampled tokens; summed over a response that is the sampled estimator of the sequence KL.

On held-out *pairs* instead of samples, :func:`heldout_pair_metrics` gives the unscaled margin and the
accuracy a DPO run logs as ``eval/margin`` and ``eval/accuracy``.

Runs are compared on the **reward-vs-KL frontier** (the paper's controlled-sentiment figure), the
course's one way to compare methods. A run is a :class:`FrontierPoint` (its sequence KL to the reference and its mean ground-truth reward);
:func:`pareto_frontier` keeps the points no other beats on both; :func:`baseline_reward_at` reads the
best reward a baseline reaches within a KL budget off its frontier (a staircase, no interpolation);
:func:`frontier_gap` says how far each point sits above that, and :func:`betas_above_baseline` gives
the per-β verdict lesson 09 prints.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from . import task
from .data import collate_pairs, collate_prompts, join_prompt_response
from .logps import concatenated_logps, get_logps
from .tokenizer import WordTokenizer

__all__ = ["SampleReport", "sample_and_score", "evaluate_policy", "heldout_pair_metrics", "sequence_logps",
           "token_kl_sums", "FrontierPoint", "pareto_frontier", "baseline_reward_at", "frontier_gap",
           "betas_above_baseline"]


@dataclass
class SampleReport:
    """What :func:`sample_and_score` measured, one entry per sample (prompt-major)."""

    prompts: list[str]
    responses: list[str]
    rewards: list[float]
    grammatical: list[bool]
    logp_policy: list[float]
    logp_reference: list[float]
    token_kl: list[float] = field(default_factory=list)  # filled only by sample_and_score(..., token_kl=True)
    n_tokens: list[int] = field(default_factory=list)    # response tokens scored per sample (EOS included)

    @property
    def kl(self) -> float:
        """Monte-Carlo estimate of the sequence KL(π ‖ π_ref), in nats."""
        return statistics.fmean(p - r for p, r in zip(self.logp_policy, self.logp_reference))

    @property
    def log_ratios(self) -> list[float]:
        """Per sample, ``log π(y|x) − log π_ref(y|x)``: the sampled estimator's terms (any sign)."""
        return [p - r for p, r in zip(self.logp_policy, self.logp_reference)]

    def summary(self) -> dict[str, float]:
        return {
            "eval/kl": self.kl,
            "eval/reward": statistics.fmean(self.rewards),
            "eval/reward_std": statistics.pstdev(self.rewards),
            "eval/grammatical": statistics.fmean(float(g) for g in self.grammatical),
        }


@torch.no_grad()
def sequence_logps(model, batch: dict[str, torch.Tensor], chunk: int = 512) -> torch.Tensor:
    """Summed response log-probs ``(B,)`` of a scoring batch (``input_ids``, ``attention_mask``, ``response_mask``)."""
    was_training = model.training
    model.eval()
    out = []
    for start in range(0, batch["input_ids"].shape[0], chunk):
        part = {k: v[start:start + chunk] for k, v in batch.items()}
        logits = model(part["input_ids"], part["attention_mask"])  # (b, T, V)
        out.append(get_logps(logits, part["input_ids"], part["response_mask"]))
    model.train(was_training)
    return torch.cat(out)


@torch.no_grad()
def token_kl_sums(policy, reference, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row of a scoring batch, ``Σ_t KL(π(·|prefix_t) ‖ π_ref(·|prefix_t))`` over the response
    positions — the exact next-token KL over the whole vocabulary at each prefix, summed — and the
    number of response tokens: ``(B,)`` floats, ``(B,)`` ints.

    Positions are those :func:`~rlhf_core.logps.get_logps` scores (``response_mask[:, 1:]``: logits at
    ``t`` predict token ``t + 1``; EOS included, the prompt not). Both models in eval mode.
    """
    was = policy.training, reference.training
    policy.eval()
    reference.eval()
    ids, attention = batch["input_ids"], batch["attention_mask"]  # (B, T)
    logp = torch.log_softmax(policy(ids, attention)[:, :-1].float(), dim=-1)      # (B, T-1, V)
    logq = torch.log_softmax(reference(ids, attention)[:, :-1].float(), dim=-1)   # (B, T-1, V)
    per_position = (logp.exp() * (logp - logq)).sum(-1)                           # (B, T-1), each ≥ 0
    mask = batch["response_mask"][:, 1:].bool()                                   # (B, T-1)
    policy.train(was[0])
    reference.train(was[1])
    return torch.where(mask, per_position, torch.zeros_like(per_position)).sum(-1), mask.sum(-1)


@torch.no_grad()
def sample_and_score(policy, reference, tokenizer: WordTokenizer, prompts: Sequence[str], n_per_prompt: int = 8,
                     temperature: float = 1.0, top_k: int | None = None, max_new_tokens: int = 28,
                     seed: int = 0, batch_size: int = 1024, token_kl: bool = False) -> SampleReport:
    """Sample from ``policy``, then score every sample: reward, grammar, log π and log π_ref (and the
    number of response tokens). ``token_kl=True`` also fills ``token_kl`` (:func:`token_kl_sums`)."""
    device = next(policy.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    expanded = [p for p in prompts for _ in range(n_per_prompt)]
    report = SampleReport([], [], [], [], [], [])
    for start in range(0, len(expanded), batch_size):
        chunk_prompts = expanded[start:start + batch_size]
        ids, mask = collate_prompts(chunk_prompts, tokenizer)
        ids, mask = ids.to(device), mask.to(device)
        responses = policy.generate(ids, mask, max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k,
                                    eos_id=tokenizer.eos_id, pad_id=tokenizer.pad_id, generator=generator)
        scoring = join_prompt_response(ids, mask, responses, tokenizer.pad_id)
        lp_pol = sequence_logps(policy, scoring)
        lp_ref = sequence_logps(reference, scoring)
        report.n_tokens.extend(scoring["response_mask"][:, 1:].sum(-1).tolist())
        if token_kl:
            report.token_kl.extend(token_kl_sums(policy, reference, scoring)[0].tolist())
        for prompt, row, a, b in zip(chunk_prompts, responses.cpu(), lp_pol.tolist(), lp_ref.tolist()):
            text = tokenizer.decode(row.tolist())
            report.prompts.append(prompt)
            report.responses.append(text)
            report.rewards.append(task.reward(text))
            report.grammatical.append(task.is_grammatical(prompt, text))
            report.logp_policy.append(a)
            report.logp_reference.append(b)
    return report


def evaluate_policy(policy, reference, tokenizer: WordTokenizer, prompts: Sequence[str] = task.HELDOUT_PROMPTS,
                    n_per_prompt: int = 8, seed: int = 0, temperature: float = 1.0) -> dict[str, float]:
    """``eval/kl``, ``eval/reward``, ``eval/reward_std`` and ``eval/grammatical`` on sampled responses."""
    return sample_and_score(policy, reference, tokenizer, prompts, n_per_prompt, temperature, seed=seed).summary()


def heldout_pair_metrics(policy, pairs: Sequence[dict], logp_ref_chosen: torch.Tensor,
                         logp_ref_rejected: torch.Tensor, tokenizer: WordTokenizer,
                         average: bool = False) -> dict[str, float]:
    """Mean unscaled margin and accuracy of ``policy`` on ``pairs`` (no gradient, eval mode, one batch).

    ``logp_ref_chosen``, ``logp_ref_rejected``: the reference's log-probs of the pairs, ``(N,)`` each
    (:func:`rlhf_core.train.reference_logps`). Returns ``{"eval/margin": …, "eval/accuracy": …}``, the margin in nats.
    """
    was_training = policy.training
    policy.eval()
    with torch.no_grad():
        device = next(policy.parameters()).device
        batch = {k: v.to(device) for k, v in collate_pairs(pairs, tokenizer).items()}
        logp_pol_chosen, logp_pol_rejected = concatenated_logps(policy, batch, average)
    policy.train(was_training)
    margins = (logp_pol_chosen.cpu() - logp_ref_chosen) - (logp_pol_rejected.cpu() - logp_ref_rejected)  # unscaled, (N,)
    return {"eval/margin": margins.mean().item(), "eval/accuracy": (margins > 0).float().mean().item()}


# --------------------------------------------------------------------------------------------
# the reward-vs-KL frontier


@dataclass
class FrontierPoint:
    """One run's place on the reward-vs-KL plane.

    ``label`` names the method ("DPO", "preferred-FT", "PPO", ...); ``param`` is what was varied to
    get the point (β for DPO, the number of steps or the learning rate for preferred-FT); ``kl`` is
    the sequence-level KL(π‖π_ref) in nats on samples; ``reward`` the mean ground-truth reward of
    those samples.
    """

    label: str
    param: float
    kl: float
    reward: float



def pareto_frontier(points: Sequence[FrontierPoint]) -> list[FrontierPoint]:
    """The upper-left envelope: the points no other point beats on both KL (lower) and reward.

    Sorted by KL; each kept point has a reward strictly above every point with lower KL (of equal
    KLs, only the highest reward survives). Points with a non-finite KL or reward are dropped.
    Labels are ignored: pass one method's points to get that method's frontier.
    """
    finite = [p for p in points if math.isfinite(p.kl) and math.isfinite(p.reward)]
    ordered = sorted(finite, key=lambda p: (p.kl, -p.reward))
    frontier: list[FrontierPoint] = []
    best = -math.inf
    for p in ordered:
        if p.reward > best:
            frontier.append(p)
            best = p.reward
    return frontier


def baseline_reward_at(baseline: Sequence[FrontierPoint], kl: float) -> float:
    """The best reward ``baseline`` reaches at a KL of at most ``kl``: its frontier read as a staircase
    (the last :func:`pareto_frontier` point with KL ≤ ``kl``). ``-inf`` when it has no point that close.

    A staircase, not a line through the frontier's points: a method cannot be credited with a reward it
    never reached at that KL, and past its last point it stays at its best (a plateau stays a plateau).
    """
    best = -math.inf
    for p in pareto_frontier(baseline):
        if p.kl > kl:
            break
        best = p.reward
    return best


def frontier_gap(points: Sequence[FrontierPoint], baseline: Sequence[FrontierPoint],
                 kl_min: float = 0.5) -> list[tuple[FrontierPoint, float]]:
    """How far each of ``points`` with KL > ``kl_min`` sits above ``baseline``'s frontier at its KL:
    ``(point, point.reward − baseline_reward_at(baseline, point.kl))``, in the order given.

    Positive: more reward than the baseline ever got for that much KL or less. ``-inf`` reached by the
    baseline means the gap is ``+inf`` (it never got that close to the reference). Non-finite points
    are left out. The course's one frontier comparison: lesson 09 and the tests use it through
    :func:`betas_above_baseline`.
    """
    gaps = []
    for p in points:
        if math.isfinite(p.kl) and math.isfinite(p.reward) and p.kl > kl_min:
            gaps.append((p, float(p.reward - baseline_reward_at(baseline, p.kl))))
    return gaps


def betas_above_baseline(points: Sequence[FrontierPoint], kl_min: float = 0.5, method: str = "DPO",
                         baseline: str = "Preferred-FT") -> dict[float, bool]:
    """For each ``param`` (β) of ``method``'s points: is every one of its points with KL > ``kl_min``
    strictly above ``baseline``'s frontier (:func:`frontier_gap` > 0)? A ``param`` with no point past
    ``kl_min`` gets no verdict.

    >>> from rlhf_core.course.studies import load_frontier
    >>> betas_above_baseline(load_frontier())   # lesson 09: {0.1: True, 0.3: True, 1.0: True, 2.0: False}
    """
    base = [p for p in points if p.label == baseline]
    verdict: dict[float, bool] = {}
    for p, gap in frontier_gap([p for p in points if p.label == method], base, kl_min):
        verdict[p.param] = verdict.get(p.param, True) and gap > 0
    return verdict
