"""check_sft_step, check_collate_pairs, check_dpo_step, check_diagnose_run on learner-style wrong code."""

import math

import pytest
import torch
import torch.nn.functional as F

from checkhelpers import assert_fails_with, assert_passes
from rlhf_core.checks import check_collate_pairs, check_diagnose_run, check_dpo_step, check_sft_step
from rlhf_core.checks.diagnosis import diagnosis_histories
from rlhf_core.data import collate_pairs
from rlhf_core.diagnostics import diagnose
from rlhf_core.logps import get_logps
from rlhf_core.losses import dpo_loss
from rlhf_core.train import dpo_step, sft_step


def test_pass_on_the_library(capsys):
    assert_passes(check_sft_step, sft_step, capsys)
    assert_passes(check_collate_pairs, collate_pairs, capsys)
    assert_passes(check_dpo_step, dpo_step, capsys)
    assert_passes(check_diagnose_run, lambda h: diagnose(h).label, capsys)


# ---- SFT ----------------------------------------------------------------------------------

def sft_with(loss_of):
    def step(model, batch, optimizer):
        optimizer.zero_grad()
        loss = loss_of(model(batch["input_ids"], batch["attention_mask"]), batch)
        loss.backward()
        optimizer.step()
        return loss.item()
    return step


def _tok(logits, ids):
    return torch.log_softmax(logits[:, :-1], -1).gather(-1, ids[:, 1:, None]).squeeze(-1)


sft_unshifted_mask = sft_with(lambda lg, b: -(_tok(lg, b["input_ids"]) * b["response_mask"][:, :-1]).sum() / b["response_mask"][:, :-1].sum())
sft_all_tokens = sft_with(lambda lg, b: -(_tok(lg, b["input_ids"]) * b["attention_mask"][:, 1:]).sum() / b["attention_mask"][:, 1:].sum())
sft_cross_entropy_everything = sft_with(lambda lg, b: F.cross_entropy(lg[:, :-1].reshape(-1, lg.shape[-1]), b["input_ids"][:, 1:].reshape(-1)))
sft_sum = sft_with(lambda lg, b: -(_tok(lg, b["input_ids"]) * b["response_mask"][:, 1:]).sum())
sft_per_sequence = sft_with(lambda lg, b: -get_logps(lg, b["input_ids"], b["response_mask"], average=True).mean())


def sft_no_zero_grad(model, batch, optimizer):
    logits = model(batch["input_ids"], batch["attention_mask"])
    mask = batch["response_mask"][:, 1:]
    loss = -(_tok(logits, batch["input_ids"]) * mask).sum() / mask.sum()
    loss.backward()
    optimizer.step()
    return loss.item()


@pytest.mark.slow
@pytest.mark.parametrize("impl, fragments", [
    (sft_unshifted_mask, ["not shifted"]),
    (sft_all_tokens, ["prompt tokens"]),
    (sft_cross_entropy_everything, ["expected", "got"]),
    (sft_sum, ["summed"]),
    (sft_per_sequence, ["per sequence"]),
    (sft_no_zero_grad, ["step 2", "zero_grad"]),
])
def test_sft_step_mistakes(impl, fragments):
    assert_fails_with(check_sft_step, impl, *fragments)


# ---- collation ------------------------------------------------------------------------------

def collate_variant(*, eos=True, prompt_mask=False, left=False, each_own_length=False):
    def collate(examples, tokenizer, max_length=None):
        out = {}
        seqs = {}
        for side in ("chosen", "rejected"):
            rows = []
            for ex in examples:
                p = [tokenizer.bos_id] + tokenizer.encode(ex["prompt"])
                r = tokenizer.encode(ex[side]) + ([tokenizer.eos_id] if eos else [])
                rows.append((p + r, [int(prompt_mask)] * len(p) + [1] * len(r)))
            seqs[side] = rows
        common = max(len(ids) for rows in seqs.values() for ids, _ in rows)
        for side, rows in seqs.items():
            T = max(len(ids) for ids, _ in rows) if each_own_length else common
            ids_t = torch.zeros(len(rows), T, dtype=torch.long)
            att_t = torch.zeros(len(rows), T, dtype=torch.long)
            msk_t = torch.zeros(len(rows), T, dtype=torch.long)
            for i, (ids, mask) in enumerate(rows):
                sl = slice(T - len(ids), T) if left else slice(0, len(ids))
                ids_t[i, sl], att_t[i, sl], msk_t[i, sl] = torch.tensor(ids), 1, torch.tensor(mask)
            out.update({f"{side}_input_ids": ids_t, f"{side}_attention_mask": att_t, f"{side}_response_mask": msk_t})
        return out
    return collate


def collate_missing_key(examples, tokenizer, max_length=None):
    out = collate_pairs(examples, tokenizer)
    del out["rejected_response_mask"]
    return out


@pytest.mark.parametrize("impl, fragments", [
    (collate_variant(eos=False), ["EOS is missing"]),
    (collate_variant(prompt_mask=True), ["covers the prompt"]),
    (collate_variant(left=True), ["left"]),
    (collate_variant(each_own_length=True), ["common", "one (2B, T) batch"]),
    (collate_missing_key, ["no key 'rejected_response_mask'"]),
    (lambda examples, tokenizer, max_length=None: [collate_pairs(examples, tokenizer)], ["expected a tensor", "list"]),
])
def test_collate_mistakes(impl, fragments):
    assert_fails_with(check_collate_pairs, impl, *fragments)


# ---- DPO step ---------------------------------------------------------------------------------

def dpo_step_variant(*, separate_passes=False, averaged=False, beta_in_loss=True, ge=False, swapped=False):
    def step(policy, batch, logp_ref_chosen, logp_ref_rejected, optimizer, beta=0.1):
        def logps(side):
            ids = batch[f"{side}_input_ids"]
            logits = policy(ids, batch[f"{side}_attention_mask"])
            return get_logps(logits, ids, batch[f"{side}_response_mask"], average=averaged)
        logp_pol_chosen, logp_pol_rejected = logps("chosen"), logps("rejected")  # two passes: slower, but the same numbers
        if swapped:
            logp_pol_chosen, logp_pol_rejected = logp_pol_rejected, logp_pol_chosen
        loss = dpo_loss(logp_pol_chosen, logp_pol_rejected, logp_ref_chosen, logp_ref_rejected, beta if beta_in_loss else 0.1)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        rc = beta * (logp_pol_chosen.detach() - logp_ref_chosen)
        rj = beta * (logp_pol_rejected.detach() - logp_ref_rejected)
        return {"loss": loss.item(), "rewards/chosen": rc.mean().item(), "rewards/rejected": rj.mean().item(),
                "rewards/accuracies": ((rc >= rj) if ge else (rc > rj)).float().mean().item(),
                "rewards/margins": (rc - rj).mean().item(), "logps/chosen": logp_pol_chosen.mean().item(),
                "logps/rejected": logp_pol_rejected.mean().item(), "logratio/margin": ((rc - rj) / beta).mean().item()}
    return step


def test_two_separate_forward_passes_are_also_correct(capsys):
    assert_passes(check_dpo_step, dpo_step_variant(separate_passes=True), capsys)


def dpo_step_missing_metric(policy, batch, logp_ref_chosen, logp_ref_rejected, optimizer, beta=0.1):
    out = dpo_step(policy, batch, logp_ref_chosen, logp_ref_rejected, optimizer, beta)
    out.pop("logratio/margin")
    return out


@pytest.mark.slow
@pytest.mark.parametrize("impl, fragments", [
    (dpo_step_variant(averaged=True), ["averaged per token"]),
    (dpo_step_variant(beta_in_loss=False), ["β = 0.5", "not passed on"]),
    (dpo_step_variant(ge=True), ["ties"]),
    (dpo_step_variant(swapped=True), ["swapped"]),
    (dpo_step_missing_metric, ["no key 'logratio/margin'"]),
])
def test_dpo_step_mistakes(impl, fragments):
    assert_fails_with(check_dpo_step, impl, *fragments)


# ---- diagnosis ----------------------------------------------------------------------------------

def test_the_textbook_histories_get_their_intended_labels():
    intended = ["healthy", "margin_explosion", "no_learning", "diverged", "reversed_preferences", "margin_explosion", "healthy"]
    for (name, rows), label in zip(diagnosis_histories(0), intended):
        assert diagnose(rows).label == label, name


def by_last_loss(history):
    loss = history[-1]["loss"]
    return "margin_explosion" if loss < 0.01 else "healthy"


def threshold_scaled(history):
    if any(math.isnan(r["loss"]) for r in history):
        return "diverged"
    if history[-1]["rewards/accuracies"] < 0.3:
        return "reversed_preferences"
    if all(abs(r["loss"] - math.log(2)) < 1e-3 for r in history):
        return "no_learning"
    return "margin_explosion" if max(r["rewards/margins"] for r in history) > 50 else "healthy"


def forgets_nan(history):
    margins = [r["logratio/margin"] for r in history]
    if max(margins) > 50:
        return "margin_explosion"
    return "healthy"


@pytest.mark.parametrize("impl, fragments", [
    (lambda history: "healthy", ["called healthy"]),
    (by_last_loss, ["expected", "got"]),
    (threshold_scaled, ["β-scaled"]),
    (forgets_nan, ["expected", "got"]),
    (lambda history: None, ["got None"]),
])
def test_diagnosis_mistakes(impl, fragments):
    assert_fails_with(check_diagnose_run, impl, *fragments)


def test_a_step_returning_a_numpy_scalar_passes_and_a_float_subclass_does_not(capsys):
    """np.mean(...) hands back numpy's own float64: a number, not a hostile float subclass."""
    import numpy as np

    def numpy_step(model, batch, optimizer):
        return np.float64(sft_step(model, batch, optimizer))

    assert_passes(check_sft_step, numpy_step, capsys)

    class Always(float):
        def __eq__(self, other):
            return True

    def lying_step(model, batch, optimizer):
        return Always(sft_step(model, batch, optimizer))

    assert_fails_with(check_sft_step, lying_step, "an object of type Always")
