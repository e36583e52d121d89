"""The checks of lesson 04 — sequence log-probs, the shift and the mask: ``get_logps``."""

from __future__ import annotations

import torch

from .. import logps
from .cases import fn_case
from .framework import Case, Exercise, Mistake, register


def _logps_batch(g: torch.Generator, batch=4, length=10, vocab=7, left_pad=False, empty_row=None, scale=1.0):
    """Ragged prompts and responses, padded on one side; ``response_mask`` aligned with ``input_ids``."""
    input_ids = torch.zeros(batch, length, dtype=torch.long)
    response_mask = torch.zeros(batch, length, dtype=torch.long)
    for b in range(batch):
        prompt_len = int(torch.randint(2, 5, (1,), generator=g))
        resp_len = int(torch.randint(2, length - prompt_len + 1, (1,), generator=g))
        row = torch.randint(1, vocab, (prompt_len + resp_len,), generator=g)
        start = length - len(row) if left_pad else 0
        input_ids[b, start:start + len(row)] = row
        if b != empty_row:
            response_mask[b, start + prompt_len:start + len(row)] = 1
    logits = torch.randn(batch, length, vocab, generator=g) * scale
    return logits, input_ids, response_mask


def _logps_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    right = _logps_batch(g)
    left = _logps_batch(g, left_pad=True)
    empty = _logps_batch(g, empty_row=1)
    extreme = _logps_batch(g, scale=100.0)
    return [
        fn_case("ragged prompts, right padding, sum", right, {"average": False}, grad=("arg0",)),
        fn_case("the same batch, average=True", right, {"average": True}),
        fn_case("left padding, sum", left, {"average": False}),
        fn_case("a fully masked row (must give 0), sum", empty, {"average": False}),
        fn_case("a fully masked row (must give 0, not NaN), average=True", empty, {"average": True}),
        fn_case("logits ×100, sum", extreme, {"average": False}),
    ]


def _lp_generic(logits, input_ids, mask, average, *, shift_logits=True, shift_mask=True, log=True, use_mask=True,
                clamp=True, denominator=None, reduce_batch=False):
    if shift_logits:
        lg, labels = logits[:, :-1], input_ids[:, 1:]
    else:
        lg, labels = logits, input_ids
    if log:
        tok = torch.log_softmax(lg, -1).gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    else:
        tok = torch.softmax(lg, -1).gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    if not shift_logits:
        m = mask
    elif shift_mask == "wrong":
        m = mask[:, :-1]
    else:
        m = mask[:, 1:]
    m = m.to(tok.dtype) if use_mask else torch.ones_like(tok)
    total = (tok * m).sum(-1)
    if average:
        count = m.sum(-1) if denominator is None else torch.full_like(total, float(tok.shape[-1]))
        total = total / (count.clamp(min=1) if clamp else count)
    return total.mean() if reduce_batch else total


def _lp_unshifted_mask(logits, input_ids, mask, average=False):
    return _lp_generic(logits, input_ids, mask, average, shift_mask="wrong")


def _lp_no_shift(logits, input_ids, mask, average=False):
    return _lp_generic(logits, input_ids, mask, average, shift_logits=False)


def _lp_wrong_direction(logits, input_ids, mask, average=False):
    tok = torch.log_softmax(logits[:, 1:], -1).gather(-1, input_ids[:, :-1].unsqueeze(-1)).squeeze(-1)
    m = mask[:, :-1].to(tok.dtype)
    total = (tok * m).sum(-1)
    return total / m.sum(-1).clamp(min=1) if average else total


def _lp_no_mask(logits, input_ids, mask, average=False):
    return _lp_generic(logits, input_ids, mask, average, use_mask=False)


def _lp_naive_log_softmax(logits, input_ids, mask, average=False):
    tok = torch.log(torch.softmax(logits[:, :-1], -1)).gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    m = mask[:, 1:].bool()
    total = torch.where(m, tok, torch.zeros_like(tok)).sum(-1)
    return total / m.sum(-1).clamp(min=1) if average else total


def _lp_nan_empty(logits, input_ids, mask, average=False):
    return _lp_generic(logits, input_ids, mask, average, clamp=False)


def _lp_wrong_denominator(logits, input_ids, mask, average=False):
    return _lp_generic(logits, input_ids, mask, average, denominator="all")


def _lp_ignores_average(logits, input_ids, mask, average=False):
    return _lp_generic(logits, input_ids, mask, False)


def _lp_probabilities(logits, input_ids, mask, average=False):
    return _lp_generic(logits, input_ids, mask, average, log=False)


def _lp_batch_mean(logits, input_ids, mask, average=False):
    return _lp_generic(logits, input_ids, mask, average, reduce_batch=True)


def _lp_always_averages(logits, input_ids, mask, average=False):
    return _lp_generic(logits, input_ids, mask, True)


def _lp_raw_logits(logits, input_ids, mask, average=False):
    tok = logits[:, :-1].gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    m = mask[:, 1:].to(tok.dtype)
    total = (tok * m).sum(-1)
    return total / m.sum(-1).clamp(min=1) if average else total


def _lp_axis(logits, input_ids, mask, average, dim, shift_first):
    """Token log-probs normalised over axis ``dim`` of the logits, shifted before or after the normalising."""
    if shift_first:
        norm = torch.log_softmax(logits[:, :-1], dim)
    else:
        norm = torch.log_softmax(logits, dim)[:, :-1]
    tok = norm.gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    m = mask[:, 1:].to(tok.dtype)
    total = (tok * m).sum(-1)
    return total / m.sum(-1).clamp(min=1) if average else total


def _lp_over_time(logits, input_ids, mask, average=False):
    return _lp_axis(logits, input_ids, mask, average, 1, True)


def _lp_over_time_unshifted(logits, input_ids, mask, average=False):
    return _lp_axis(logits, input_ids, mask, average, 1, False)


def _lp_over_batch(logits, input_ids, mask, average=False):
    return _lp_axis(logits, input_ids, mask, average, 0, False)


def _logps_shape_hint(expected: tuple, got: tuple) -> str | None:
    if len(got) == 2:
        return "That is one value per token: sum (or average) over the response tokens to get one per sequence."
    if got == ():
        return "You reduced over the batch too: return one value per sequence, shape (B,)."
    return None


register(Exercise(
    name="get_logps",
    same_answer={
        "rlhf_core.logps.get_logps_loop": "get_logps(logits, input_ids, response_mask, average).double()",  # the oracle
        "rlhf_core.logps.get_token_logps": None,            # the shifted token log-probs, before the mask
    },
    lesson=4,
    points=3,
    cases=_logps_cases,
    reference=logps.get_logps,
    mistakes=[
        Mistake("The mask is not shifted with the labels: after logits[:, :-1] / input_ids[:, 1:] use response_mask[:, 1:]. "
                "As written you drop the first response token and score the token after EOS (padding, predicted from "
                "the EOS position) — the loss looks normal, which is why this bug is silent.", _lp_unshifted_mask),
        Mistake("There is no shift: logits[:, t] predict token t+1, so compare logits[:, :-1] with input_ids[:, 1:].", _lp_no_shift),
        Mistake("The shift goes the wrong way: it is logits[:, :-1] against input_ids[:, 1:], not logits[:, 1:] against input_ids[:, :-1].", _lp_wrong_direction),
        Mistake("response_mask is ignored: prompt and padding tokens are being scored.", _lp_no_mask),
        Mistake("log(softmax(x)) underflows to -inf for large logits: use torch.log_softmax.", _lp_naive_log_softmax),
        Mistake("A fully masked row divides 0 by 0: clamp the token count to at least 1 (.clamp(min=1)).", _lp_nan_empty),
        Mistake("average=True divides by the sequence length; divide by the number of response tokens of each row.", _lp_wrong_denominator),
        Mistake("average=True is ignored: with it, divide each row's sum by its number of response tokens.", _lp_ignores_average),
        Mistake("You summed probabilities; sum log-probabilities (log_softmax, then gather).", _lp_probabilities),
        Mistake("You reduced over the batch: return one value per sequence, shape (B,).", _lp_batch_mean),
        Mistake("average=False is ignored: your function averages over the response tokens either way. average=False "
                "asks for the log-probability of the whole response, which is what DPO compares.", _lp_always_averages),
        Mistake("You scored raw logits: a logit is not a log-probability (it is defined only up to a constant per "
                "position, and can be positive). Normalise each position's logits into log-probabilities before "
                "gathering.", _lp_raw_logits),
        Mistake("The log-softmax normalises over dim=1, the time axis, after the shift: each token's score then depends "
                "on the logits of the other positions. A position's logits are a distribution over the vocabulary.",
                _lp_over_time),
        Mistake("The log-softmax normalises the unshifted logits over dim=1, the time axis: each token's score then "
                "depends on the logits of every position. A position's logits are a distribution over the vocabulary.",
                _lp_over_time_unshifted),
        Mistake("The log-softmax normalises over dim=0, the batch axis (what F.log_softmax picks for a 3-d tensor when "
                "no dim= is given: see its warning). A position's logits are a distribution over the vocabulary.",
                _lp_over_batch),
    ],
    summary="get_logps shifts logits and mask together, sums (or averages) response tokens only, 0 for empty rows, stable at logits ×100",
    formula="token t is scored by log_softmax(logits[:, t-1])[input_ids[:, t]]; sum over t where response_mask[:, t] == 1 "
            "(divide by that count, at least 1, when average=True)",
    shape_hint=_logps_shape_hint,
))
