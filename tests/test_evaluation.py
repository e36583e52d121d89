"""Evaluation on samples: the two estimators of the sequence KL and what they share (lesson 09 §5)."""

from __future__ import annotations

import statistics

import pytest
import torch

from rlhf_core import task
from rlhf_core.checkpoint import load_sft_model
from rlhf_core.data import collate_prompts, join_prompt_response
from rlhf_core.evaluation import sample_and_score, token_kl_sums
from rlhf_core.train import make_reference


@pytest.fixture(scope="module")
def perturbed():
    """The SFT model as reference, and a copy of it with every weight nudged: a policy a few tenths of a nat away."""
    policy, tokenizer, _ = load_sft_model()
    reference = make_reference(policy)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(0.01 * torch.randn_like(p))
    return policy, reference, tokenizer


def _brute_force_token_kl(policy, reference, batch) -> list[float]:
    """Σ over response positions of Σ_v p_v log(p_v / q_v), one row and one position at a time, in float64."""
    out = []
    with torch.no_grad():
        lp = torch.log_softmax(policy(batch["input_ids"], batch["attention_mask"]).double(), -1)
        lq = torch.log_softmax(reference(batch["input_ids"], batch["attention_mask"]).double(), -1)
    for b in range(batch["input_ids"].shape[0]):
        total = 0.0
        for t in range(1, batch["input_ids"].shape[1]):
            if batch["response_mask"][b, t]:   # token t is a response token: scored by the logits at t − 1
                p, q = lp[b, t - 1], lq[b, t - 1]
                total += float((p.exp() * (p - q)).sum())
        out.append(total)
    return out


def test_token_level_kl_is_the_chain_rule_sum_over_response_positions(perturbed):
    policy, reference, tokenizer = perturbed
    prompts = list(task.HELDOUT_PROMPTS[:3])
    ids, mask = collate_prompts(prompts, tokenizer)
    responses = policy.generate(ids, mask, max_new_tokens=12, temperature=1.0, eos_id=tokenizer.eos_id,
                                pad_id=tokenizer.pad_id, generator=torch.Generator().manual_seed(1))
    batch = join_prompt_response(ids, mask, responses, tokenizer.pad_id)
    sums, n_tokens = token_kl_sums(policy, reference, batch)
    assert sums.tolist() == pytest.approx(_brute_force_token_kl(policy, reference, batch), rel=1e-4, abs=1e-6)
    assert n_tokens.tolist() == batch["response_mask"][:, 1:].sum(-1).tolist()
    assert not policy.training and not reference.training


def test_both_estimators_are_exactly_zero_when_the_policy_is_the_reference():
    model, tokenizer, _ = load_sft_model()
    report = sample_and_score(model, model, tokenizer, task.HELDOUT_PROMPTS[:5], n_per_prompt=4, seed=2, token_kl=True)
    assert report.kl == 0.0 and report.log_ratios == [0.0] * 20
    assert max(abs(v) for v in report.token_kl) < 1e-6


def test_the_sampled_estimator_is_noisy_and_can_be_negative_the_token_level_one_is_not(perturbed):
    """What lesson 09 prints: on the same samples both estimate the same KL, but single samples of the
    course's estimator (log π(y) − log π_ref(y)) are often negative, and its spread is many times larger."""
    policy, reference, tokenizer = perturbed
    report = sample_and_score(policy, reference, tokenizer, task.HELDOUT_PROMPTS, n_per_prompt=4, seed=5, token_kl=True)
    sampled, token = report.log_ratios, report.token_kl
    assert len(sampled) == len(token) == len(report.n_tokens) == 4 * len(task.HELDOUT_PROMPTS)
    assert min(token) >= 0.0
    assert sum(v < 0 for v in sampled) / len(sampled) > 0.1
    assert statistics.pstdev(sampled) > 5 * statistics.pstdev(token)
    se = statistics.pstdev(sampled) / len(sampled) ** 0.5
    assert abs(statistics.fmean(sampled) - statistics.fmean(token)) < 4 * se   # one expectation, two estimators
    assert report.kl == pytest.approx(statistics.fmean(sampled))
