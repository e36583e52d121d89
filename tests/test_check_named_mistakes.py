"""Plausible mistakes that once got "matches none of the common mistakes" (issue 26) are now named.

Each implementation below is written here the way a learner would write it, independently of the
record's own mistake functions; the check must report that mistake's id and its own hint, on the visible
seed and on the hidden tests' seeds, and never fall back to the generic formula.
"""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F

from rlhf_core.checks import EXERCISES, CheckFailed, check

# -- get_logps ------------------------------------------------------------------------------------


def always_averages(logits, input_ids, response_mask, average=False):
    logp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, input_ids[:, 1:, None]).squeeze(-1)
    mask = response_mask[:, 1:].float()
    return (logp * mask).sum(-1) / mask.sum(-1).clamp(min=1)          # whatever `average` says


def raw_logits(logits, input_ids, response_mask, average=False):
    scores = logits[:, :-1].gather(-1, input_ids[:, 1:, None]).squeeze(-1)   # no log_softmax
    mask = response_mask[:, 1:].bool()
    total = scores.masked_fill(~mask, 0).sum(-1)
    return total / mask.sum(-1).clamp(min=1) if average else total


def log_softmax_over_time(logits, input_ids, response_mask, average=False):
    logp = F.log_softmax(logits[:, :-1], dim=1).gather(2, input_ids[:, 1:].unsqueeze(2)).squeeze(2)
    mask = response_mask[:, 1:].to(logp.dtype)
    total = (logp * mask).sum(dim=1)
    return total / mask.sum(dim=1).clamp(min=1) if average else total


def log_softmax_over_time_before_the_shift(logits, input_ids, response_mask, average=False):
    logp = F.log_softmax(logits, dim=1)[:, :-1].gather(2, input_ids[:, 1:].unsqueeze(2)).squeeze(2)
    mask = response_mask[:, 1:].to(logp.dtype)
    total = (logp * mask).sum(dim=1)
    return total / mask.sum(dim=1).clamp(min=1) if average else total


def log_softmax_without_dim(logits, input_ids, response_mask, average=False):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")       # "Implicit dimension choice for log_softmax has been deprecated"
        logp = F.log_softmax(logits[:, :-1])  # picks dim 0 for a 3-d tensor
    logp = logp.gather(-1, input_ids[:, 1:, None]).squeeze(-1)
    mask = response_mask[:, 1:].float()
    total = (logp * mask).sum(-1)
    return total / mask.sum(-1).clamp(min=1) if average else total


# -- dpo_loss -------------------------------------------------------------------------------------


def minus_sigmoid(pc, pr, rc, rr, beta=0.1):
    logits = beta * ((pc - rc) - (pr - rr))
    return -torch.sigmoid(logits).mean()


def minus_functional_sigmoid(pc, pr, rc, rr, beta=0.1):
    return (-F.sigmoid(beta * ((pc - pr) - (rc - rr)))).mean()


def one_minus_sigmoid(pc, pr, rc, rr, beta=0.1):
    return (1 - torch.sigmoid(beta * ((pc - rc) - (pr - rr)))).mean()


def sigmoid_of_minus_margin(pc, pr, rc, rr, beta=0.1):
    return torch.sigmoid(-beta * ((pc - rc) - (pr - rr))).mean()     # 1 − σ(h), written another way


def chosen_log_ratio_twice(pc, pr, rc, rr, beta=0.1):
    chosen_ratio = pc - rc
    rejected_ratio = pc - rc                                          # copy-pasted from the line above
    return -F.logsigmoid(beta * (chosen_ratio - rejected_ratio)).mean()


def rejected_log_ratio_twice(pc, pr, rc, rr, beta=0.1):
    return -F.logsigmoid(beta * ((pr - rr) - (pr - rr))).mean()


# -- implicit_reward ------------------------------------------------------------------------------


def reward_beta_squared(lp, lr, beta=0.1):
    return beta ** 2 * (lp - lr)


def reward_beta_twice(lp, lr, beta=0.1):
    scaled = beta * lp - beta * lr
    return beta * scaled


NAMED = [
    ("get_logps", always_averages, "lp_always_averages"),
    ("get_logps", raw_logits, "lp_raw_logits"),
    ("get_logps", log_softmax_over_time, "lp_over_time"),
    ("get_logps", log_softmax_over_time_before_the_shift, "lp_over_time_unshifted"),
    ("get_logps", log_softmax_without_dim, "lp_over_batch"),
    ("dpo_loss", minus_sigmoid, "dpo_sigmoid_negated"),
    ("dpo_loss", minus_functional_sigmoid, "dpo_sigmoid_negated"),
    ("dpo_loss", one_minus_sigmoid, "dpo_one_minus_sigmoid"),
    ("dpo_loss", sigmoid_of_minus_margin, "dpo_one_minus_sigmoid"),
    ("dpo_loss", chosen_log_ratio_twice, "dpo_chosen_twice"),
    ("dpo_loss", rejected_log_ratio_twice, "dpo_rejected_twice"),
    ("implicit_reward", reward_beta_squared, "reward_beta_squared"),
    ("implicit_reward", reward_beta_twice, "reward_beta_squared"),
]


def _mistake(name, mistake_id):
    found = [m for m in EXERCISES[name].mistakes if m.id == mistake_id]
    assert len(found) == 1, f"{name} has no registered mistake {mistake_id!r}"
    return found[0]


@pytest.mark.parametrize("name, impl, mistake_id", NAMED, ids=[impl.__name__ for _, impl, _ in NAMED])
def test_each_once_unnamed_mistake_gets_its_own_hint(name, impl, mistake_id):
    exercise, mistake = EXERCISES[name], _mistake(name, mistake_id)
    for seed in (0, *exercise.hidden_seeds):
        with pytest.raises(CheckFailed) as info:
            check(exercise, impl, seed=seed, quiet=True)
        text = str(info.value)
        assert info.value.mistake == mistake_id, (seed, text)
        assert mistake.hint in text, (seed, text)
        assert "matches none of the common mistakes" not in text, (seed, text)


def test_the_reference_still_passes_with_the_new_mistakes_registered():
    for name in ("get_logps", "dpo_loss", "implicit_reward"):
        exercise = EXERCISES[name]
        for seed in (0, *exercise.hidden_seeds, 1, 2, 3):
            check(exercise, exercise.reference, seed=seed, quiet=True)


def test_the_new_hints_do_not_give_the_formula_away():
    formula_bits = {"get_logps": ["dim=-1", "log_softmax(logits"], "dpo_loss": ["logsigmoid", "F.logsigmoid"],
                    "implicit_reward": ["beta * (logp_pol - logp_ref)"]}
    for name, _, mistake_id in NAMED:
        hint = _mistake(name, mistake_id).hint
        assert not any(bit in hint for bit in formula_bits[name]), (mistake_id, hint)
