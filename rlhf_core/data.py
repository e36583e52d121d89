"""Preference pairs: the ``{prompt, chosen, rejected}`` schema, collation, files, and construction.

Conventions of every collated sequence (the ones the loss silently depends on):

* a sequence is ``[BOS] prompt-tokens response-tokens [EOS]``: EOS is appended to each response
  and *is* part of the response (the model must learn when to stop);
* ``response_mask`` is aligned with ``input_ids`` and is 1 exactly on the response tokens and the
  EOS, 0 on BOS, the prompt and padding; ``attention_mask`` is 1 on every real token;
* training batches are padded on the **right** with ``pad_id``; prompts for sampling are padded
  on the **left**, so that every row's next token is generated at the same column;
* the chosen and the rejected sequence of a pair share the same prompt, and both are padded to one
  common length ``T``, so they can be stacked into one ``(2B, T)`` batch for a single forward pass.

Pairs come from three places: a ``datasets.Dataset`` built from rows, an HH-style JSON/JSONL file
(read offline) or a hub dataset by name (online), and construction from model samples — by the
ground-truth reward (best vs worst of N, the course's default, or every pair of the N, the paper's
sentiment construction), or the from-scratch write-up's way (the dataset's response chosen, a
T = 0.9, top-k 50 sample of the reference rejected).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import torch
from torch import Tensor

from . import task
from .paths import HH_SAMPLE_PATH
from .tokenizer import WordTokenizer

__all__ = [
    "PAIR_COLUMNS",
    "encode_example",
    "collate_pairs",
    "collate_sft",
    "collate_prompts",
    "join_prompt_response",
    "pairs_dataset",
    "split_hh_transcript",
    "load_preference_file",
    "load_preference_dataset",
    "sample_responses",
    "pairs_by_reward",
    "pairs_from_samples",
    "PAIRINGS",
    "pairs_vs_reference_samples",
    "HH_SAMPLE_PATH",
]

PAIR_COLUMNS = ("prompt", "chosen", "rejected")


# --------------------------------------------------------------------------------------------
# collation


def encode_example(tokenizer: WordTokenizer, prompt: str, response: str) -> tuple[list[int], list[int]]:
    """``[BOS] prompt response [EOS]`` as ids, and its response mask (1 on response tokens and EOS)."""
    prompt_ids = [tokenizer.bos_id] + tokenizer.encode(prompt)
    response_ids = tokenizer.encode(response) + [tokenizer.eos_id]
    return prompt_ids + response_ids, [0] * len(prompt_ids) + [1] * len(response_ids)


def _pad_right(rows: Sequence[list[int]], length: int, value: int) -> Tensor:
    out = torch.full((len(rows), length), value, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    return out


def _check_length(length: int, max_length: int | None) -> None:
    if max_length is not None and length > max_length:
        raise ValueError(f"a collated sequence has {length} tokens, more than max_length={max_length}; "
                         "shorten the responses or raise the model's max_seq_len")


def collate_pairs(examples: Sequence[dict], tokenizer: WordTokenizer, max_length: int | None = None) -> dict[str, Tensor]:
    """Rows ``{prompt, chosen, rejected}`` → six ``(B, T)`` long tensors, right-padded to one common ``T``.

    Keys: ``chosen_input_ids``, ``chosen_attention_mask``, ``chosen_response_mask`` and the same for
    ``rejected_``. ``T`` is the longest chosen *or* rejected sequence of the batch.
    """
    chosen = [encode_example(tokenizer, ex["prompt"], ex["chosen"]) for ex in examples]
    rejected = [encode_example(tokenizer, ex["prompt"], ex["rejected"]) for ex in examples]
    length = max(len(ids) for ids, _ in chosen + rejected)
    _check_length(length, max_length)
    batch = {}
    for side, encoded in (("chosen", chosen), ("rejected", rejected)):
        ids = [e[0] for e in encoded]
        batch[f"{side}_input_ids"] = _pad_right(ids, length, tokenizer.pad_id)  # (B, T)
        batch[f"{side}_attention_mask"] = _pad_right([[1] * len(r) for r in ids], length, 0)  # (B, T)
        batch[f"{side}_response_mask"] = _pad_right([e[1] for e in encoded], length, 0)  # (B, T)
    return batch


def collate_sft(examples: Sequence[dict], tokenizer: WordTokenizer, max_length: int | None = None) -> dict[str, Tensor]:
    """Rows ``{prompt, response}`` → ``input_ids``, ``attention_mask``, ``response_mask`` ``(B, T)``, right-padded.

    SFT learns the response tokens (and EOS) only: ``response_mask`` marks what the loss counts.
    """
    encoded = [encode_example(tokenizer, ex["prompt"], ex["response"]) for ex in examples]
    length = max(len(ids) for ids, _ in encoded)
    _check_length(length, max_length)
    ids = [e[0] for e in encoded]
    return {
        "input_ids": _pad_right(ids, length, tokenizer.pad_id),
        "attention_mask": _pad_right([[1] * len(r) for r in ids], length, 0),
        "response_mask": _pad_right([e[1] for e in encoded], length, 0),
    }


def collate_prompts(prompts: Sequence[str], tokenizer: WordTokenizer) -> tuple[Tensor, Tensor]:
    """``[BOS] prompt`` for each prompt, LEFT-padded: ids ``(B, Tp)`` and mask ``(B, Tp)`` (1 = real)."""
    rows = [[tokenizer.bos_id] + tokenizer.encode(p) for p in prompts]
    length = max(len(r) for r in rows)
    ids = torch.full((len(rows), length), tokenizer.pad_id, dtype=torch.long)
    mask = torch.zeros(len(rows), length, dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, length - len(row):] = torch.tensor(row)
        mask[i, length - len(row):] = 1
    return ids, mask


def join_prompt_response(prompt_ids: Tensor, prompt_mask: Tensor, response_ids: Tensor, pad_id: int) -> dict[str, Tensor]:
    """Left-padded prompts ``(B, Tp)`` + sampled responses ``(B, N)`` (pad after EOS) → one scoring batch.

    Returns ``input_ids``, ``attention_mask`` and ``response_mask``, all ``(B, Tp + N)``: padding on
    both sides, which the model and ``get_logps`` handle through the masks. Used to score samples
    under the policy and the reference (the KL estimate) without re-tokenising text.
    """
    response_real = (response_ids != pad_id).long()  # (B, N): pad only ever follows EOS
    return {
        "input_ids": torch.cat([prompt_ids, response_ids], dim=1),  # (B, Tp + N)
        "attention_mask": torch.cat([prompt_mask.long(), response_real], dim=1),
        "response_mask": torch.cat([torch.zeros_like(prompt_mask, dtype=torch.long), response_real], dim=1),
    }


# --------------------------------------------------------------------------------------------
# datasets and files


def pairs_dataset(rows: Iterable[dict]):
    """A ``datasets.Dataset`` with (at least) the columns ``prompt``, ``chosen``, ``rejected``."""
    from datasets import Dataset

    rows = list(rows)
    for i, row in enumerate(rows):
        missing = [c for c in PAIR_COLUMNS if not isinstance(row.get(c), str)]
        if missing:
            raise ValueError(f"preference row {i} lacks the text column(s) {missing}; every row needs "
                             f"{list(PAIR_COLUMNS)} as strings, got keys {sorted(row)}")
    if not rows:
        return Dataset.from_dict({c: [] for c in PAIR_COLUMNS})
    return Dataset.from_list(rows)


_ASSISTANT = "\n\nAssistant:"


def split_hh_transcript(chosen: str, rejected: str) -> tuple[str, str, str]:
    """Split two full HH transcripts into ``(prompt, chosen_response, rejected_response)``.

    Anthropic-HH rows hold two whole dialogues that share every turn but the assistant's last. The
    prompt is the shared text up to and including the last ``"\\n\\nAssistant:"`` they have in
    common; the responses are what follows it.
    """
    common = 0
    for a, b in zip(chosen, rejected):
        if a != b:
            break
        common += 1
    cut = chosen.rfind(_ASSISTANT, 0, common)  # the last assistant turn lying wholly in the shared text
    if cut < 0:
        raise ValueError("an HH transcript pair has no shared '\\n\\nAssistant:' turn to split the prompt at")
    end = cut + len(_ASSISTANT)
    return chosen[:end], chosen[end:].strip(), rejected[end:].strip()


def _normalise_rows(raw_rows: Iterable[dict], source: str) -> list[dict]:
    rows = []
    for i, raw in enumerate(raw_rows):
        if not isinstance(raw, dict):
            raise ValueError(f"{source}: row {i} is not a JSON object")
        if isinstance(raw.get("prompt"), str) and isinstance(raw.get("chosen"), str) and isinstance(raw.get("rejected"), str):
            rows.append({"prompt": raw["prompt"], "chosen": raw["chosen"], "rejected": raw["rejected"]})
        elif isinstance(raw.get("chosen"), str) and isinstance(raw.get("rejected"), str):
            prompt, chosen, rejected = split_hh_transcript(raw["chosen"], raw["rejected"])
            rows.append({"prompt": prompt, "chosen": chosen, "rejected": rejected})
        else:
            raise ValueError(f"{source}: row {i} has neither {{prompt, chosen, rejected}} nor HH-style "
                             f"{{chosen, rejected}} transcripts (keys: {sorted(raw)})")
    return rows


def load_preference_file(path: str | Path):
    """Read a JSON (a list of rows) or JSONL (a row per line) preference file, offline.

    Rows are either ``{prompt, chosen, rejected}`` or HH-style ``{chosen, rejected}`` transcripts,
    which are split with :func:`split_hh_transcript`. Returns a ``datasets.Dataset``.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl" or not text.lstrip().startswith("["):
        raw = []
        for n, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    raw.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}: line {n} is not valid JSON ({exc.msg})") from None
    else:
        raw = json.loads(text)
    return pairs_dataset(_normalise_rows(raw, str(path)))


def load_preference_dataset(name_or_path: str | Path, split: str = "train", **load_kwargs):
    """A preference dataset from a local JSON/JSONL file (offline) or from the hub by name (online).

    A path that exists is read with :func:`load_preference_file`. Anything else goes to
    ``datasets.load_dataset(name, split=split)`` — a hub name such as ``"Anthropic/hh-rlhf"``, or a
    local dataset folder — and its rows are normalised to ``{prompt, chosen, rejected}`` the same way.
    """
    path = Path(name_or_path)
    if path.is_file():
        return load_preference_file(path)
    from datasets import load_dataset

    try:
        loaded = load_dataset(str(name_or_path), split=split, **load_kwargs)
    except Exception as exc:  # offline, unknown name, bad files: one sentence instead of a long trace
        raise RuntimeError(f"could not load the preference dataset {str(name_or_path)!r} ({type(exc).__name__}: "
                           f"{str(exc).splitlines()[0] if str(exc) else ''}). Offline, pass a local JSON/JSONL file; "
                           f"see rlhf_core.data.HH_SAMPLE_PATH for the format.") from exc
    return pairs_dataset(_normalise_rows(loaded, str(name_or_path)))


# --------------------------------------------------------------------------------------------
# pairs from model samples


@torch.no_grad()
def sample_responses(model, tokenizer: WordTokenizer, prompts: Sequence[str], n_per_prompt: int = 1,
                     temperature: float = 1.0, top_k: int | None = None, max_new_tokens: int = 28,
                     seed: int = 0, batch_size: int = 512) -> list[str]:
    """Sample ``n_per_prompt`` responses for every prompt; returns texts, prompt-major (prompt 0's first)."""
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    expanded = [p for p in prompts for _ in range(n_per_prompt)]
    texts: list[str] = []
    for start in range(0, len(expanded), batch_size):
        ids, mask = collate_prompts(expanded[start:start + batch_size], tokenizer)
        out = model.generate(ids.to(device), mask.to(device), max_new_tokens=max_new_tokens, temperature=temperature,
                             top_k=top_k, eos_id=tokenizer.eos_id, pad_id=tokenizer.pad_id, generator=generator)
        texts.extend(tokenizer.decode(row.tolist()) for row in out.cpu())
    return texts


PAIRINGS = ("best_worst", "all")


def pairs_from_samples(prompts: Sequence[str], samples: Sequence[str], n_samples: int,
                       reward_fn: Callable[[str], float] = task.reward, min_gap: float = 1e-9,
                       pairing: str = "best_worst"):
    """Preference pairs from ``n_samples`` scored samples per prompt (``samples`` prompt-major, as
    :func:`sample_responses` returns them); the higher-reward sample of a pair is ``chosen``.

    ``pairing="best_worst"``: one pair per prompt, its best vs its worst sample (the course's default),
    and none when those two score within ``min_gap`` (a tie). ``pairing="all"``: every pair of
    samples ``i < j`` of a prompt whose rewards differ by more than ``min_gap`` — at most
    ``C(n_samples, 2)`` per prompt, in sample order (the paper's sentiment task labels all 6 pairs of
    4 samples). Returns a Dataset with ``prompt, chosen, rejected, chosen_reward, rejected_reward``.
    """
    if pairing not in PAIRINGS:
        raise ValueError(f"pairing must be one of {PAIRINGS}, got {pairing!r}")
    if len(samples) != len(prompts) * n_samples:
        raise ValueError(f"expected {n_samples} samples for each of {len(prompts)} prompts "
                         f"({len(prompts) * n_samples}), got {len(samples)}")
    rows = []
    for i, prompt in enumerate(prompts):
        group = samples[i * n_samples:(i + 1) * n_samples]
        if pairing == "best_worst":
            scored = sorted(((reward_fn(t), t) for t in group), key=lambda s: s[0])
            (low, worst), (high, best) = scored[0], scored[-1]
            if high - low > min_gap:
                rows.append({"prompt": prompt, "chosen": best, "rejected": worst,
                             "chosen_reward": float(high), "rejected_reward": float(low)})
            continue
        scores = [reward_fn(t) for t in group]
        for a in range(len(group)):
            for b in range(a + 1, len(group)):
                if abs(scores[a] - scores[b]) <= min_gap:
                    continue  # a tie: under a hard label it has no right direction
                hi, lo = (a, b) if scores[a] > scores[b] else (b, a)
                rows.append({"prompt": prompt, "chosen": group[hi], "rejected": group[lo],
                             "chosen_reward": float(scores[hi]), "rejected_reward": float(scores[lo])})
    return pairs_dataset(rows)


def pairs_by_reward(model, tokenizer: WordTokenizer, prompts: Sequence[str], n_samples: int = 4,
                    temperature: float = 1.0, top_k: int | None = None, reward_fn: Callable[[str], float] = task.reward,
                    seed: int = 0, min_gap: float = 1e-9, max_new_tokens: int = 28, pairing: str = "best_worst"):
    """Pairs from ``n_samples`` model samples per prompt, ranked by the ground-truth reward.

    Like the paper's sentiment task: preferences come from a known reward, not from people. By
    default (``pairing="best_worst"``) each prompt gives one pair, its best vs its worst sample, and
    a prompt whose best and worst samples score within ``min_gap`` (a tie) gives none.
    ``pairing="all"`` keeps every pair of a prompt's samples that is not a tie, as the paper does
    (4 samples, 6 pairs per prefix); see :func:`pairs_from_samples`. Returns a Dataset with
    ``prompt, chosen, rejected, chosen_reward, rejected_reward``.
    """
    if pairing not in PAIRINGS:  # before sampling, which takes a while
        raise ValueError(f"pairing must be one of {PAIRINGS}, got {pairing!r}")
    texts = sample_responses(model, tokenizer, prompts, n_samples, temperature, top_k, max_new_tokens, seed)
    return pairs_from_samples(prompts, texts, n_samples, reward_fn, min_gap, pairing)


def pairs_vs_reference_samples(reference, tokenizer: WordTokenizer, examples: Sequence[dict],
                               temperature: float = 0.9, top_k: int | None = 50, seed: int = 0,
                               max_new_tokens: int = 28):
    """The write-up's construction: the dataset's response is chosen, a reference sample rejected.

    ``examples`` are ``{prompt, response}`` rows; the rejected response is sampled from the frozen
    reference at ``temperature`` 0.9 with top-k 50. It assumes the dataset response is always the
    better one — no reward checks it, so some pairs are noise (the sample may be just as good).
    """
    prompts = [ex["prompt"] for ex in examples]
    samples = sample_responses(reference, tokenizer, prompts, 1, temperature, top_k, max_new_tokens, seed)
    return pairs_dataset({"prompt": ex["prompt"], "chosen": ex["response"], "rejected": s}
                         for ex, s in zip(examples, samples))


def shuffled(rows: Sequence, seed: int) -> list:
    """A seeded shuffle (a copy)."""
    out = list(rows)
    random.Random(seed).shuffle(out)
    return out
