"""The checks of lesson 06 — one SFT step on a tiny model: ``sft_step``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ..train import sft_step
from .cases import flat_params, tiny_model, tiny_rows
from .framework import Case, Exercise, Mistake, plain_number, register


def _sft_case(name: str, seed: int, steps: int) -> Case:
    def run(fn: Callable) -> dict[str, Any]:
        g = torch.Generator().manual_seed(seed)
        model = tiny_model(seed)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
        values: dict[str, Any] = {}
        for step in range(1, steps + 1):
            ids, attention, response = tiny_rows(g, batch=4, length=12)
            loss = fn(model, {"input_ids": ids, "attention_mask": attention, "response_mask": response}, optimizer)
            values[f"the returned loss at step {step}"] = plain_number(loss)
            values[f"the model's parameters after step {step}"] = flat_params(model)
        return values

    return Case(name, run)


def _sft_cases(seed: int) -> list[Case]:
    return [_sft_case("two SFT steps on a tiny model (SGD, lr 0.5)", seed, 2)]


def _sft_generic(model, batch, optimizer, *, shift=True, mask_shift=True, mask="response", reduce="tokens",
                 zero_grad=True, step=True):
    ids = batch["input_ids"]
    logits = model(ids, batch["attention_mask"])
    if shift:
        logp = torch.log_softmax(logits[:, :-1], -1).gather(-1, ids[:, 1:, None]).squeeze(-1)
    else:
        logp = torch.log_softmax(logits, -1).gather(-1, ids[..., None]).squeeze(-1)
    chosen_mask = batch["response_mask"] if mask == "response" else batch["attention_mask"]
    if shift:
        m = chosen_mask[:, 1:] if mask_shift else chosen_mask[:, :-1]
    else:
        m = chosen_mask
    m = m.float()
    if reduce == "tokens":
        loss = -(logp * m).sum() / m.sum()
    elif reduce == "sum":
        loss = -(logp * m).sum()
    else:  # per-sequence means, then the batch mean
        loss = (-(logp * m).sum(-1) / m.sum(-1)).mean()
    if zero_grad:
        optimizer.zero_grad()
    loss.backward()
    if step:
        optimizer.step()
    return loss.item()


register(Exercise(
    name="sft_step",
    same_answer={"rlhf_core.train.sft_loss": None},   # the step's whole loss
    lesson=6,
    points=2,
    cases=_sft_cases,
    reference=sft_step,
    mistakes=[
        Mistake("The mask is not shifted with the labels: use response_mask[:, 1:] next to input_ids[:, 1:].",
                lambda m, b, o: _sft_generic(m, b, o, mask_shift=False), id="sft_mask_not_shifted"),
        Mistake("There is no shift: logits[:, t] predict token t+1, so compare logits[:, :-1] with input_ids[:, 1:].",
                lambda m, b, o: _sft_generic(m, b, o, shift=False), id="sft_no_shift"),
        Mistake("The loss counts prompt tokens: SFT learns the response, so mask with response_mask, not attention_mask.",
                lambda m, b, o: _sft_generic(m, b, o, mask="attention"), id="sft_prompt_in_loss"),
        Mistake("You summed the token losses; average them over the response tokens of the batch.",
                lambda m, b, o: _sft_generic(m, b, o, reduce="sum"), id="sft_summed"),
        Mistake("You averaged per sequence, then over the batch; this course's SFT loss averages over all response "
                "tokens of the batch at once: -(logp·mask).sum() / mask.sum().",
                lambda m, b, o: _sft_generic(m, b, o, reduce="sequences"), id="sft_per_sequence_mean"),
        Mistake("The gradients accumulate across steps: call optimizer.zero_grad() before loss.backward().",
                lambda m, b, o: _sft_generic(m, b, o, zero_grad=False), id="sft_no_zero_grad"),
        Mistake("The model never moves: call optimizer.step() after loss.backward().",
                lambda m, b, o: _sft_generic(m, b, o, step=False), id="sft_no_step"),
    ],
    summary="sft_step averages the negative log-prob over response tokens (shifted), and updates the model like the reference",
    formula="logits = model(input_ids, attention_mask); token log-probs of input_ids[:, 1:] under logits[:, :-1]; "
            "loss = -(logp · response_mask[:, 1:]).sum() / response_mask[:, 1:].sum(); zero_grad, backward, step; return loss.item()",
))
