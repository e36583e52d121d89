"""The checks of lesson 07 — collating preference pairs: ``collate_pairs``."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import torch

from .. import task
from ..data import collate_pairs
from ..tokenizer import WordTokenizer
from .framework import Case, Exercise, Missing, Mistake, register

PAIR_KEYS = tuple(f"{side}_{part}" for side in ("chosen", "rejected") for part in ("input_ids", "attention_mask", "response_mask"))


def _pair_examples(seed: int, n: int) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        prompt, chosen = task.sample_review(rng, "positive")
        _, rejected = task.sample_review(rng, "negative", prompt=prompt)
        rows.append({"prompt": prompt, "chosen": chosen, "rejected": rejected})
    return rows


def _collate_case(name: str, examples: list[dict]) -> Case:
    def run(fn: Callable) -> dict[str, Any]:
        out = fn([dict(e) for e in examples], WordTokenizer.for_task())
        if not isinstance(out, dict):  # every key then reports what came back instead of a dict
            return {key: out for key in PAIR_KEYS}
        return {key: out.get(key, Missing(key)) for key in PAIR_KEYS}

    return Case(name, run)


def _collate_cases(seed: int) -> list[Case]:
    short = {"prompt": "the film was", "chosen": "great .", "rejected": "very dull and slow . it was bad ."}
    return [
        _collate_case("a batch of 5 pairs of different lengths", _pair_examples(seed, 5)),
        _collate_case("a short chosen and a longer rejected response", [short]),
    ]


def _collate_generic(examples, tokenizer, max_length=None, *, bos=True, eos=True, prompt_in_mask=False,
                     eos_in_mask=True, left=False, separate_lengths=False, pad_id=None, attention_on_eos=True):
    pad = tokenizer.pad_id if pad_id is None else pad_id
    encoded = {}
    for side in ("chosen", "rejected"):
        rows = []
        for ex in examples:
            p = ([tokenizer.bos_id] if bos else []) + tokenizer.encode(ex["prompt"])
            r = tokenizer.encode(ex[side]) + ([tokenizer.eos_id] if eos else [])
            mask = [1 if prompt_in_mask else 0] * len(p) + [1] * len(r)
            if eos and not eos_in_mask:
                mask[-1] = 0
            attn = [1] * (len(p) + len(r))
            if eos and not attention_on_eos:
                attn[-1] = 0
            rows.append((p + r, attn, mask))
        encoded[side] = rows
    common = max(len(r[0]) for side in encoded.values() for r in side)
    out = {}
    for side, rows in encoded.items():
        length = max(len(r[0]) for r in rows) if separate_lengths else common
        for part, index, fill in (("input_ids", 0, pad), ("attention_mask", 1, 0), ("response_mask", 2, 0)):
            t = torch.full((len(rows), length), fill, dtype=torch.long)
            for i, row in enumerate(rows):
                values = torch.tensor(row[index], dtype=torch.long)
                if left:
                    t[i, length - len(values):] = values
                else:
                    t[i, : len(values)] = values
            out[f"{side}_{part}"] = t
    return out


register(Exercise(
    name="collate_pairs",
    lesson=7,
    points=3,
    cases=_collate_cases,
    reference=collate_pairs,
    mistakes=[
        Mistake("EOS is missing: append tokenizer.eos_id to every response (the model must learn to stop).",
                lambda e, t, m=None: _collate_generic(e, t, eos=False), id="pairs_no_eos"),
        Mistake("BOS is missing: every sequence starts with tokenizer.bos_id.", lambda e, t, m=None: _collate_generic(e, t, bos=False), id="pairs_no_bos"),
        Mistake("The response mask covers the prompt too: it must be 0 on BOS and the prompt, 1 on the response and EOS.",
                lambda e, t, m=None: _collate_generic(e, t, prompt_in_mask=True), id="pairs_prompt_in_mask"),
        Mistake("The response mask leaves out EOS; EOS is part of the response (its probability is learned too).",
                lambda e, t, m=None: _collate_generic(e, t, eos_in_mask=False), id="pairs_eos_not_in_mask"),
        Mistake("Padded on the left; training batches are padded on the right (pad after EOS).",
                lambda e, t, m=None: _collate_generic(e, t, left=True), id="pairs_left_padded"),
        Mistake("Chosen and rejected are padded to different lengths; pad both to one common T so they can be stacked into one (2B, T) batch.",
                lambda e, t, m=None: _collate_generic(e, t, separate_lengths=True), id="pairs_separate_lengths"),
        Mistake("Padding uses the wrong id: pad with tokenizer.pad_id (0).", lambda e, t, m=None: _collate_generic(e, t, pad_id=t.eos_id), id="pairs_wrong_pad_id"),
        Mistake("The attention mask is 0 on EOS; it is 1 on every real token, EOS included.",
                lambda e, t, m=None: _collate_generic(e, t, attention_on_eos=False), id="pairs_no_attention_on_eos"),
    ],
    summary="collate_pairs builds [BOS] prompt response [EOS], right-padded to one length, with masks on real and response tokens",
    formula="ids = [bos] + encode(prompt) + encode(response) + [eos]; response_mask 1 on response+EOS; attention_mask 1 on real "
            "tokens; right-pad chosen and rejected to the longest of both with pad_id",
    shape_hint=lambda e, g: "Chosen and rejected must share one padded length T (the longest of both)." if e[:1] == g[:1] else None,
    rtol=0.0,
    atol=0.0,
))
