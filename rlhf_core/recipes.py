"""The course's standard DPO run in one call, shared by the README, the tests, the benchmarks and
the notebooks, so that every figure quoted comes from the same code.

The recipe mirrors the paper's controlled-sentiment experiment: the shipped SFT model is the
reference; preference pairs are built from its own temperature-1 samples on the training prompts,
ranked by the ground-truth reward (best vs worst of 4, ties dropped); DPO then trains a copy of
it, and the held-out prompts measure the sampled reward and the KL to the reference.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from . import task
from .checkpoint import load_sft_model
from .data import pairs_by_reward
from .metrics import MetricsHistory
from .model import TinyLM
from .paths import COURSE_PAIRS_PATH, SFT_CHECKPOINT
from .tokenizer import WordTokenizer
from .train import DPOConfig, make_reference, train_dpo

__all__ = ["DEFAULT_DPO", "DPORun", "reward_pairs", "course_pairs", "write_course_pairs", "default_dpo_run"]

#: The README's "default DPO run": β = 0.3, batch 32, 200 steps, AdamW 3e-4 with cosine decay.
#: Chosen by a sweep over three seeds (β 0.1 drifted further: KL 6-8 nats, 65-72 % grammatical samples).
DEFAULT_DPO = DPOConfig(beta=0.3, batch_size=32, steps=200, lr=3e-4, warmup_steps=10, eval_every=50)


@dataclass
class DPORun:
    policy: TinyLM
    reference: TinyLM
    tokenizer: WordTokenizer
    train_pairs: list[dict]
    eval_pairs: list[dict]
    history: MetricsHistory
    seconds: float  # wall time of pair construction + training + evaluation


def reward_pairs(reference: TinyLM, tokenizer: WordTokenizer, prompts: Sequence[str] = task.TRAIN_PROMPTS,
                 groups_per_prompt: int = 16, n_samples: int = 4, seed: int = 1,
                 pairing: str = "best_worst") -> list[dict]:
    """Pairs from the reference's own samples, best vs worst of ``n_samples`` by ground-truth reward,
    ``groups_per_prompt`` independent groups per prompt. ``pairing="all"`` keeps every untied pair of
    each group instead, the paper's construction (:func:`rlhf_core.data.pairs_by_reward`)."""
    return list(pairs_by_reward(reference, tokenizer, list(prompts) * groups_per_prompt, n_samples=n_samples,
                                seed=seed, pairing=pairing))


def _checkpoint_digest(path=SFT_CHECKPOINT) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _standard_pairs(reference: TinyLM, tokenizer: WordTokenizer) -> tuple[list[dict], list[dict]]:
    """The course's standard pairs, built live: 16 best-vs-worst groups per training prompt (seed 1) and 4 per
    held-out prompt (seed 2), the pairs of lesson 08 and of :func:`default_dpo_run`."""
    return (reward_pairs(reference, tokenizer, seed=1),
            reward_pairs(reference, tokenizer, task.HELDOUT_PROMPTS, groups_per_prompt=4, seed=2))


def course_pairs(reference: TinyLM, tokenizer: WordTokenizer, *, log=print) -> tuple[list[dict], list[dict]]:
    """``(train_pairs, eval_pairs)``: the course's standard pairs of the shipped SFT model, read from
    ``rlhf_core/assets/course_pairs.json.gz`` instead of sampled again (about 10 s on one thread).

    The file holds what :func:`_standard_pairs` built from the shipped checkpoint on the machine it names, with
    the checkpoint's SHA-256; when ``reference`` is not that checkpoint's model (its weights differ), or the
    checkpoint has changed since the file was made, the pairs are built live instead and ``log`` says why. On
    another CPU the live pairs would differ in a few samples, not in their statistics (the reward gap's mean
    moves by about 0.003 from one sampling seed to another: tests/test_course_pairs.py)."""
    reason = None
    if not COURSE_PAIRS_PATH.exists():
        reason = f"{COURSE_PAIRS_PATH.name} is missing"
    else:
        shipped = json.loads(gzip.decompress(COURSE_PAIRS_PATH.read_bytes()))
        if shipped["checkpoint_sha256"] != _checkpoint_digest():
            reason = "the SFT checkpoint has changed since the shipped pairs were made"
        elif not _is_shipped_model(reference):
            reason = "the reference is not the shipped SFT model"
    if reason is None:
        return shipped["train"], shipped["eval"]
    log(f"building the pairs live ({reason}; about 10 s) ...")
    return _standard_pairs(reference, tokenizer)


def _is_shipped_model(model: TinyLM) -> bool:
    """Whether ``model`` has the shipped checkpoint's weights (compared tensor by tensor)."""
    weights = torch.load(SFT_CHECKPOINT, map_location="cpu", weights_only=True)["state_dict"]
    own = model.state_dict()
    return set(own) == set(weights) and all(torch.equal(own[k].cpu(), weights[k]) for k in own)


def write_course_pairs(path=COURSE_PAIRS_PATH) -> dict:
    """Build the standard pairs from the shipped SFT model and write them, gzipped, with the checkpoint's
    digest and the machine that built them (``python -m rlhf_core.recipes``)."""
    policy, tokenizer, _ = load_sft_model()
    train, held_out = _standard_pairs(make_reference(policy), tokenizer)
    record = {"made_by": "python -m rlhf_core.recipes", "checkpoint_sha256": _checkpoint_digest(),
              "machine": f"{platform.machine()} {platform.processor() or ''}".strip(), "torch": torch.__version__,
              "train": train, "eval": held_out}
    path.write_bytes(gzip.compress(json.dumps(record).encode(), mtime=0))
    return record


def default_dpo_run(config: DPOConfig | None = None, seed: int = 0, progress: bool = True,
                    device: str | torch.device = "cpu") -> DPORun:
    """Load the SFT model, build reward-ranked pairs, train DPO with ``config`` (default :data:`DEFAULT_DPO`)."""
    config = config or DEFAULT_DPO
    start = time.perf_counter()
    policy, tokenizer, _ = load_sft_model(device)
    reference = make_reference(policy)
    train_pairs = reward_pairs(reference, tokenizer, seed=seed + 1)
    eval_pairs = reward_pairs(reference, tokenizer, task.HELDOUT_PROMPTS, groups_per_prompt=4, seed=seed + 2)
    history = train_dpo(policy, reference, tokenizer, train_pairs, config, eval_pairs=eval_pairs, progress=progress)
    return DPORun(policy, reference, tokenizer, train_pairs, eval_pairs, history, time.perf_counter() - start)


if __name__ == "__main__":
    made = write_course_pairs()
    print(f"wrote {COURSE_PAIRS_PATH}: {len(made['train'])} training and {len(made['eval'])} held-out pairs")
