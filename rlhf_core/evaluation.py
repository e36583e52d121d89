"""Evaluate a policy the way the paper's sentiment experiment does: on *sampled* text.

For held-out prompts, sample responses from the policy at temperature 1 (not greedy: the greedy
response is one point of the distribution and hides how much mass moved), then measure

* the ground-truth reward of each sample (``task.reward``), its mean and standard deviation;
* the sequence KL to the reference, estimated on the same samples:
  ``KL(π ‖ π_ref) ≈ mean over y ~ π of [log π(y|x) − log π_ref(y|x)]``, each term a sum over the
  response tokens (EOS included) — nats per sequence, as in the paper's reward-vs-KL frontier;
* the fraction of samples the grammar accepts (``task.is_grammatical``).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from . import task
from .data import collate_prompts, join_prompt_response
from .logps import get_logps
from .tokenizer import WordTokenizer

__all__ = ["SampleReport", "sample_and_score", "evaluate_policy", "sequence_logps"]


@dataclass
class SampleReport:
    """What :func:`sample_and_score` measured, one entry per sample (prompt-major)."""

    prompts: list[str]
    responses: list[str]
    rewards: list[float]
    grammatical: list[bool]
    logp_policy: list[float]
    logp_reference: list[float]

    @property
    def kl(self) -> float:
        """Monte-Carlo estimate of the sequence KL(π ‖ π_ref), in nats."""
        return statistics.fmean(p - r for p, r in zip(self.logp_policy, self.logp_reference))

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
def sample_and_score(policy, reference, tokenizer: WordTokenizer, prompts: Sequence[str], n_per_prompt: int = 8,
                     temperature: float = 1.0, top_k: int | None = None, max_new_tokens: int = 28,
                     seed: int = 0, batch_size: int = 1024) -> SampleReport:
    """Sample from ``policy``, then score every sample: reward, grammar, log π and log π_ref."""
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
