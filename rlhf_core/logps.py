"""Sequence log-probabilities from a causal LM's logits: the shift and the mask.

Conventions (the ones that fail silently when wrong):

* ``logits[:, t]`` is the model's prediction for token ``t + 1``. So token ``t`` is scored by
  ``logits[:, t - 1]``; token 0 (BOS) is never scored.
* ``response_mask`` is aligned with ``input_ids``: ``response_mask[b, t] == 1`` means token ``t``
  of row ``b`` belongs to the response (EOS included); 0 on the prompt and on padding. After the
  shift it must be shifted too: the label of ``logits[:, t]`` is ``input_ids[:, t + 1]``, so its
  mask entry is ``response_mask[:, t + 1]``. Using ``response_mask[:, :-1]`` instead gives label
  ``t + 1`` the mask of position ``t``: the first response token is dropped and the token after EOS
  (padding) is scored. The loss still looks normal.
* ``average=False`` sums the response tokens' log-probs: ``log π(y|x)`` of the whole response,
  what DPO is defined on. ``average=True`` divides by the number of response tokens; a row with
  no response token gives 0 either way, never NaN.
* Padding may be on either side; only ``response_mask`` decides what counts.

The same, one level up: :func:`concatenated_logps` runs a model once over the chosen and the rejected
sequences of a :func:`~rlhf_core.data.collate_pairs` batch stacked into ``(2B, T)`` and returns both
``(B,)`` log-probs, as DPO's training step does; :func:`side_logps` scores one side on its own.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["get_token_logps", "get_logps", "get_logps_loop", "side_logps", "concatenated_logps"]


def get_token_logps(logits: Tensor, input_ids: Tensor) -> Tensor:
    """``log p(token_{t+1} | tokens_≤t)`` for every position: logits ``(B, T, V)``, ids ``(B, T)`` → ``(B, T-1)``.

    Computed in float32 at least (half-precision log-softmax loses the small log-probs).
    """
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    shifted_logits = logits[:, :-1, :]  # (B, T-1, V): position t predicts token t+1
    labels = input_ids[:, 1:]  # (B, T-1): the tokens being predicted
    logprobs = torch.log_softmax(shifted_logits, dim=-1)  # (B, T-1, V)
    return logprobs.gather(-1, labels.unsqueeze(-1)).squeeze(-1)  # (B, T-1)


def get_logps(logits: Tensor, input_ids: Tensor, response_mask: Tensor, average: bool = False) -> Tensor:
    """Per-sequence log-prob of the response tokens: ``(B, T, V)``, ``(B, T)``, ``(B, T)`` → ``(B,)``.

    Sum (``average=False``) or mean (``average=True``) over the tokens where ``response_mask`` is 1
    of ``log p(token_t | tokens_<t)``. See the module docstring for the shift and the mask.
    """
    if logits.dim() != 3 or input_ids.shape != logits.shape[:2] or response_mask.shape != input_ids.shape:
        raise ValueError(
            "get_logps expects logits (B, T, V), input_ids (B, T) and response_mask (B, T); got "
            f"{tuple(logits.shape)}, {tuple(input_ids.shape)}, {tuple(response_mask.shape)}"
        )
    token_logps = get_token_logps(logits, input_ids)  # (B, T-1)
    mask = response_mask[:, 1:].bool()  # (B, T-1): the mask of the *predicted* tokens
    summed = torch.where(mask, token_logps, torch.zeros_like(token_logps)).sum(-1)  # (B,)
    if not average:
        return summed
    n_tokens = mask.sum(-1).clamp(min=1)  # (B,); an empty response divides by 1 and stays 0
    return summed / n_tokens


def get_logps_loop(logits: Tensor, input_ids: Tensor, response_mask: Tensor, average: bool = False) -> Tensor:
    """Brute-force oracle for :func:`get_logps`: one Python loop iteration per token.

    Slow and obviously right: for every row ``b`` and every response token ``t ≥ 1``, add
    ``log_softmax(logits[b, t-1])[input_ids[b, t]]``. Returns float64 ``(B,)``.
    """
    batch, length = input_ids.shape
    out = torch.zeros(batch, dtype=torch.float64)
    for b in range(batch):
        total, count = 0.0, 0
        for t in range(1, length):
            if response_mask[b, t]:
                dist = torch.log_softmax(logits[b, t - 1].double(), dim=-1)
                total += dist[input_ids[b, t]].item()
                count += 1
        out[b] = total / max(count, 1) if average else total
    return out


# ------------------------------------------------------------------------------------------------
# the log-probs of a preference-pair batch under a model (a :func:`~rlhf_core.data.collate_pairs` batch)


def side_logps(model: torch.nn.Module, batch: dict[str, Tensor], side: str, average: bool = False) -> Tensor:
    """Summed (or averaged) log-probs ``(B,)`` of one side (``"chosen"`` or ``"rejected"``) of a
    :func:`~rlhf_core.data.collate_pairs` batch, from its own forward pass — the naive alternative
    to :func:`concatenated_logps`."""
    ids = batch[f"{side}_input_ids"]  # (B, T)
    return get_logps(model(ids, batch[f"{side}_attention_mask"]), ids, batch[f"{side}_response_mask"], average=average)


def concatenated_logps(model: torch.nn.Module, batch: dict[str, Tensor], average: bool = False) -> tuple[Tensor, Tensor]:
    """Chosen and rejected log-probs ``(B,)`` each, from ONE forward pass over the stacked ``(2B, T)`` batch."""
    ids = torch.cat([batch["chosen_input_ids"], batch["rejected_input_ids"]])  # (2B, T)
    attention = torch.cat([batch["chosen_attention_mask"], batch["rejected_attention_mask"]])  # (2B, T)
    response = torch.cat([batch["chosen_response_mask"], batch["rejected_response_mask"]])  # (2B, T)
    logps = get_logps(model(ids, attention), ids, response, average=average)  # (2B,)
    half = batch["chosen_input_ids"].shape[0]
    return logps[:half], logps[half:]
