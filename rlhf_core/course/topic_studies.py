"""The measured studies behind "topics a strong interviewer asks next" in lessons 08 and 09.

1. **On-policy study** (lesson 08) — one round of iterative DPO against offline DPO, and the implicit reward as a
   reward model. Round 1 is the course default (:data:`rlhf_core.recipes.DEFAULT_DPO`) on the standard pairs; from
   the round-1 policy, three second rounds of the same 200 steps each change one thing at a time:

   * ``offline``: the original pairs again, the SFT model still the reference (400 steps on offline data in all);
   * ``on-policy pairs``: fresh best-vs-worst-of-4 pairs sampled from the round-1 policy (the same recipe,
     :func:`rlhf_core.recipes.reward_pairs`), the SFT model still the reference;
   * ``iterative``: the same fresh pairs, and the round-1 policy as the new, frozen reference — one round of
     iterative (online) DPO as in Xu et al. 2024 and Tajwar et al. 2024.

   Every policy is scored on held-out prompts against the **SFT model** (16 samples per prompt): reward, KL to
   the SFT model, grammatical fraction. The same seed's round-1 policy is then read as a reward model
   (``β log π/π_ref``, Lin et al. 2024) beside an explicit reward model — the SFT trunk with a linear head on the
   last token, trained with the Bradley–Terry loss on the same pairs for the same 200 steps — on two held-out
   pair sets labelled by the ground-truth reward (every untied pair of 4 samples): the SFT model's samples (the
   training pairs' distribution) and the round-1 policy's (shifted).
2. **Over-optimisation study** (lesson 09) — the course default's recipe run 2.5 times longer (500 steps, about
   6 epochs of the 2768 pairs), at β 0.1 and 0.3, two seeds each, with the held-out sampled ground-truth reward,
   the KL to the reference and the grammatical fraction every 50 steps: does the gold reward rise, then fall, as
   Rafailov et al. 2024 (*Scaling laws for reward model overoptimization in direct alignment algorithms*) find
   with learned judges? The held-out pair margin and accuracy (the implicit reward's) are logged alongside.

``python -m rlhf_core.course.topic_studies`` (about 8 minutes on 2 cores) writes both files to
``rlhf_core/assets/``; ``--only on_policy`` or ``--only overoptimisation`` writes one. Each file carries the
producing machine's fingerprint. Seed 0 trains on the shipped standard pairs (:func:`rlhf_core.recipes.course_pairs`,
lesson 08's run); seed s > 0 builds its pairs as :func:`rlhf_core.recipes.default_dpo_run` does at seed s.
Lessons load the files; ``tests/test_topic_studies.py`` holds the prose to them and re-runs a slice.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import random
import time
from pathlib import Path

import torch
from torch import nn

from .. import task
from ..checkpoint import load_sft_model, machine_fingerprint
from ..data import collate_pairs
from ..evaluation import evaluate_policy
from ..metrics import MetricsHistory
from ..model import TinyLM, rope_angles
from ..paths import ASSETS_DIR, ON_POLICY_STUDY_PATH, OVEROPTIMISATION_STUDY_PATH
from ..recipes import DEFAULT_DPO, course_pairs, reward_pairs
from ..train import SHIPPED_THREADS, lr_at, make_reference, reference_logps, train_dpo

__all__ = [
    "ON_POLICY_SEEDS", "ROUND_TWO_ARMS", "OVEROPT_BETAS", "OVEROPT_SEEDS", "OVEROPT_STEPS", "OVEROPT_EVERY",
    "SCORE_SAMPLES", "seed_data", "held_out_score", "pair_stats", "RewardHead", "train_reward_model",
    "implicit_accuracy", "explicit_accuracy", "run_on_policy_seed", "run_on_policy_study", "run_overoptimisation",
    "run_overoptimisation_study", "load_on_policy_study", "load_overoptimisation_study", "ON_POLICY_STUDY_PATH",
    "OVEROPTIMISATION_STUDY_PATH",
]

ON_POLICY_SEEDS = (0, 1)
#: round two's arms: (pairs, reference) — "original"/"fresh" pairs, "sft"/"round1" reference
ROUND_TWO_ARMS: dict[str, tuple[str, str]] = {
    "offline": ("original", "sft"),
    "on-policy pairs": ("fresh", "sft"),
    "iterative": ("fresh", "round1"),
}
OVEROPT_BETAS = (0.1, 0.3)
OVEROPT_SEEDS = (0, 1)
OVEROPT_STEPS = 500
OVEROPT_EVERY = 50
SCORE_SAMPLES = 16     # samples per held-out prompt when a study scores a final policy (688 in all)
_SCORE_SEED = 7
_FRESH_SEED, _SFT_PAIRS_SEED, _POLICY_PAIRS_SEED = 100, 200, 300   # + the study's seed


def seed_data(seed: int = 0):
    """``(sft, reference, tokenizer, train_pairs, eval_pairs)`` of :func:`rlhf_core.recipes.default_dpo_run` at
    ``seed`` (seed 0: the shipped standard pairs, lesson 08's)."""
    sft, tokenizer, _ = load_sft_model()
    reference = make_reference(sft)
    if seed == 0:
        train_pairs, eval_pairs = course_pairs(reference, tokenizer)
    else:
        train_pairs = reward_pairs(reference, tokenizer, seed=seed + 1)
        eval_pairs = reward_pairs(reference, tokenizer, task.HELDOUT_PROMPTS, groups_per_prompt=4, seed=seed + 2)
    return sft, reference, tokenizer, train_pairs, eval_pairs


def held_out_score(policy: TinyLM, sft_reference: TinyLM, tokenizer, n_per_prompt: int = SCORE_SAMPLES) -> dict:
    """Reward, its sd, sequence KL to the **SFT model** and grammatical fraction of ``policy``'s samples on the
    held-out prompts (``n_per_prompt`` each, seed 7)."""
    s = evaluate_policy(policy, sft_reference, tokenizer, task.HELDOUT_PROMPTS, n_per_prompt, seed=_SCORE_SEED)
    return {"reward": s["eval/reward"], "reward_std": s["eval/reward_std"], "kl_to_sft": s["eval/kl"],
            "grammatical": s["eval/grammatical"]}


def pair_stats(pairs: list[dict]) -> dict:
    """How many pairs, and the mean ground-truth reward of their chosen and rejected responses and of the gap."""
    chosen = [p["chosen_reward"] for p in pairs]
    rejected = [p["rejected_reward"] for p in pairs]
    return {"n": len(pairs), "chosen_reward": sum(chosen) / len(pairs), "rejected_reward": sum(rejected) / len(pairs),
            "gap": sum(c - r for c, r in zip(chosen, rejected)) / len(pairs)}


# ------------------------------------------------------------------------------------------------
# the explicit reward model

class RewardHead(nn.Module):
    """A reward model: a trainable copy of a ``TinyLM``'s trunk, and a linear head on the last real token's
    final hidden state (the EOS of a right-padded ``[BOS] prompt response [EOS]`` row) → one scalar."""

    def __init__(self, lm: TinyLM):
        super().__init__()
        self.lm = copy.deepcopy(lm).requires_grad_(True)
        self.head = nn.Linear(lm.config.d_model, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        lm = self.lm
        B, T = input_ids.shape
        positions, attn = lm._prefix_mask(attention_mask, T, input_ids.device)
        cos, sin = rope_angles(positions, lm.head_dim, lm.config.rope_base)
        x = lm.tok_emb(input_ids)  # (B, T, D)
        for block in lm.blocks:
            x, _ = block(x, cos, sin, attn)
        x = lm.norm_f(x)  # (B, T, D)
        last = attention_mask.sum(1) - 1  # (B,): right padding, the EOS
        return self.head(x[torch.arange(B), last]).squeeze(-1)  # (B,)

    def pair_rewards(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        return (self(batch["chosen_input_ids"], batch["chosen_attention_mask"]),
                self(batch["rejected_input_ids"], batch["rejected_attention_mask"]))


def train_reward_model(sft: TinyLM, tokenizer, pairs: list[dict], steps: int = DEFAULT_DPO.steps,
                       batch_size: int = DEFAULT_DPO.batch_size, lr: float = DEFAULT_DPO.lr,
                       warmup_steps: int = DEFAULT_DPO.warmup_steps, seed: int = 0) -> tuple[RewardHead, list[float]]:
    """A :class:`RewardHead` on ``sft`` trained with the Bradley–Terry loss ``−log σ(r(y_w) − r(y_l))`` on
    ``pairs``, with DPO's settings (same steps, batch, AdamW learning rate, warm-up and cosine decay, clipping 1.0).
    Returns the model (eval mode) and its per-step training losses."""
    torch.manual_seed(seed)
    rng = random.Random(seed)
    model = RewardHead(sft).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    losses, order = [], []
    for step in range(steps):
        if len(order) < batch_size:
            fresh = list(range(len(pairs)))
            rng.shuffle(fresh)
            order.extend(fresh)
        idx = [order.pop() for _ in range(batch_size)]
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, steps, lr, warmup_steps)
        chosen, rejected = model.pair_rewards(collate_pairs([pairs[i] for i in idx], tokenizer))
        loss = -torch.nn.functional.logsigmoid(chosen - rejected).mean()
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
    return model.eval(), losses


@torch.no_grad()
def explicit_accuracy(model: RewardHead, tokenizer, pairs: list[dict]) -> float:
    """Fraction of ``pairs`` whose reward model score puts the chosen (higher ground-truth reward) response first."""
    right = 0
    for start in range(0, len(pairs), 256):
        chosen, rejected = model.pair_rewards(collate_pairs(pairs[start:start + 256], tokenizer))
        right += int((chosen > rejected).sum())
    return right / len(pairs)


def implicit_accuracy(policy: TinyLM, reference: TinyLM, tokenizer, pairs: list[dict]) -> float:
    """Fraction of ``pairs`` whose implicit reward ``β log π/π_ref`` puts the chosen response first (any β > 0)."""
    pol_c, pol_r = reference_logps(policy, pairs, tokenizer)
    ref_c, ref_r = reference_logps(reference, pairs, tokenizer)
    return ((pol_c - ref_c) - (pol_r - ref_r) > 0).float().mean().item()


# ------------------------------------------------------------------------------------------------
# the on-policy study (lesson 08)

def _short(history: MetricsHistory, names=("loss", "rewards/accuracies", "logratio/margin")) -> dict:
    """The first step's and the last 20 steps' mean of a few training metrics."""
    out = {}
    for name in names:
        values = history.values(name)
        out[name] = {"first": values[0], "last20": sum(values[-20:]) / len(values[-20:])}
    return out


def run_on_policy_seed(seed: int = 0, progress: bool = False, arms: dict | None = None,
                       reward_models: bool = True, steps: int = DEFAULT_DPO.steps) -> dict:
    """One seed of the on-policy study (the module docstring); ``arms`` picks some of :data:`ROUND_TWO_ARMS`,
    ``steps`` shortens every run (the reward model's too) for a cheap slice."""
    arms = ROUND_TWO_ARMS if arms is None else arms
    config = dataclasses.replace(DEFAULT_DPO, seed=seed, steps=steps)
    sft, reference, tokenizer, train_pairs, eval_pairs = seed_data(seed)
    start = time.perf_counter()
    round1 = copy.deepcopy(sft)
    h1 = train_dpo(round1, reference, tokenizer, train_pairs, config, eval_pairs=eval_pairs, progress=progress)
    fresh = reward_pairs(round1, tokenizer, seed=_FRESH_SEED + seed)   # the same recipe, sampled from the round-1 policy
    pairs = {"original": train_pairs, "fresh": fresh}
    refs = {"sft": reference, "round1": make_reference(round1)}
    out = {"seed": seed, "config": config.to_dict(), "sft": held_out_score(sft, reference, tokenizer),
           "round1": {**held_out_score(round1, reference, tokenizer), "train": _short(h1),
                      "heldout_accuracy": h1.last("eval/accuracy")},
           "pairs": {name: pair_stats(p) for name, p in pairs.items()}, "round2": {}}
    for name, (which_pairs, which_ref) in arms.items():
        policy = copy.deepcopy(round1)
        h = train_dpo(policy, refs[which_ref], tokenizer, pairs[which_pairs], config, eval_pairs=None, eval_prompts=None,
                      progress=progress)
        out["round2"][name] = {"pairs": which_pairs, "reference": which_ref, **held_out_score(policy, reference, tokenizer),
                               "train": _short(h)}
    if reward_models:
        out["reward_models"] = _reward_model_comparison(sft, reference, round1, tokenizer, train_pairs, seed, steps)
    out["seconds"] = round(time.perf_counter() - start, 1)
    return out


def _reward_model_comparison(sft, reference, round1, tokenizer, train_pairs, seed, steps) -> dict:
    """The round-1 policy's implicit reward and an explicit reward model, trained on the same pairs, ranked against
    the ground-truth reward on the training pairs and on two held-out sets (every untied pair of 4 samples)."""
    held_out = {
        "SFT samples": reward_pairs(reference, tokenizer, task.HELDOUT_PROMPTS, groups_per_prompt=4,
                                    seed=_SFT_PAIRS_SEED + seed, pairing="all"),
        "policy samples": reward_pairs(round1, tokenizer, task.HELDOUT_PROMPTS, groups_per_prompt=4,
                                       seed=_POLICY_PAIRS_SEED + seed, pairing="all"),
    }
    rm, losses = train_reward_model(sft, tokenizer, train_pairs, steps=steps, seed=seed)
    out = {"train_loss_last20": sum(losses[-20:]) / 20, "sets": {}}
    for name, pairs in {"training pairs": train_pairs, **held_out}.items():
        out["sets"][name] = {**pair_stats(pairs), "implicit": implicit_accuracy(round1, reference, tokenizer, pairs),
                             "explicit": explicit_accuracy(rm, tokenizer, pairs)}
    return out


def run_on_policy_study(seeds=ON_POLICY_SEEDS, progress: bool = True) -> dict:
    return {"machine": machine_fingerprint(), "score_samples_per_prompt": SCORE_SAMPLES,
            "seeds": [run_on_policy_seed(s, progress=progress) for s in seeds]}


def load_on_policy_study(path: Path = ON_POLICY_STUDY_PATH) -> dict:
    """``{"machine", "score_samples_per_prompt", "seeds": [{seed, config, sft, round1, pairs, round2: {arm: {...}},
    reward_models: {train_loss_last20, sets: {name: {n, chosen_reward, rejected_reward, gap, implicit, explicit}}},
    seconds}]}``; every score is a :func:`held_out_score` dict."""
    return json.loads(Path(path).read_text())


# ------------------------------------------------------------------------------------------------
# the over-optimisation study (lesson 09)

_KEEP = ("eval/kl", "eval/reward", "eval/reward_std", "eval/grammatical", "eval/margin", "eval/accuracy")


def run_overoptimisation(beta: float, seed: int = 0, steps: int = OVEROPT_STEPS, eval_every: int = OVEROPT_EVERY,
                         progress: bool = False) -> dict:
    """One long run of the course default's recipe at ``beta``: its held-out evaluations (every ``eval_every``
    steps: reward, KL to the reference, grammatical fraction, held-out pair margin and accuracy) and the training
    margin and loss averaged over each ``eval_every`` steps."""
    sft, reference, tokenizer, train_pairs, eval_pairs = seed_data(seed)
    config = dataclasses.replace(DEFAULT_DPO, beta=beta, steps=steps, eval_every=eval_every, seed=seed)
    start = time.perf_counter()
    h = train_dpo(sft, reference, tokenizer, train_pairs, config, eval_pairs=eval_pairs, progress=progress)
    steps_logged, _ = h.series("eval/kl")
    evals = [{"step": s, **{k.split("/")[1]: round(h.at(k, s), 5) for k in _KEEP}} for s in steps_logged]
    train = []
    for lo in range(1, steps + 1, eval_every):
        window = [r for r in h.rows if lo <= r["step"] < lo + eval_every and "loss" in r]
        train.append({"steps": [lo, lo + eval_every - 1],
                      **{k: round(sum(r[k] for r in window) / len(window), 5) for k in ("loss", "logratio/margin",
                                                                                         "rewards/accuracies")}})
    return {"beta": beta, "seed": seed, "config": config.to_dict(), "epochs": steps * config.batch_size / len(train_pairs),
            "evals": evals, "train": train, "seconds": round(time.perf_counter() - start, 1)}


def run_overoptimisation_study(betas=OVEROPT_BETAS, seeds=OVEROPT_SEEDS, progress: bool = True) -> dict:
    return {"machine": machine_fingerprint(), "eval_samples_per_prompt": DEFAULT_DPO.eval_samples_per_prompt,
            "runs": [run_overoptimisation(b, s, progress=progress) for b in betas for s in seeds]}


def load_overoptimisation_study(path: Path = OVEROPTIMISATION_STUDY_PATH) -> dict:
    """``{"machine", "eval_samples_per_prompt", "runs": [{beta, seed, config, epochs, evals: [{step, kl, reward,
    reward_std, grammatical, margin, accuracy}], train: [{steps, loss, logratio/margin, rewards/accuracies}],
    seconds}]}``."""
    return json.loads(Path(path).read_text())


def peak(run: dict) -> dict:
    """The evaluation with the highest held-out reward of an over-optimisation run (the first, on a tie)."""
    return max(run["evals"], key=lambda e: (e["reward"], -e["step"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the on-policy and over-optimisation studies; write them as JSON.")
    parser.add_argument("--out", type=Path, default=ASSETS_DIR)
    parser.add_argument("--only", choices=("on_policy", "overoptimisation"))
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(SHIPPED_THREADS)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.only in (None, "on_policy"):
        study = run_on_policy_study(progress=not args.quiet)
        (args.out / ON_POLICY_STUDY_PATH.name).write_text(json.dumps(study, indent=1))
        for run in study["seeds"]:
            print(f"seed {run['seed']} ({run['seconds']} s): SFT {run['sft']}\n  round 1 {run['round1']}")
            for name, arm in run["round2"].items():
                print(f"  {name:<16} {arm}")
            print(f"  pairs {run['pairs']}\n  reward models {run['reward_models']}")
    if args.only in (None, "overoptimisation"):
        study = run_overoptimisation_study(progress=not args.quiet)
        (args.out / OVEROPTIMISATION_STUDY_PATH.name).write_text(json.dumps(study))
        for run in study["runs"]:
            p, last = peak(run), run["evals"][-1]
            print(f"β {run['beta']} seed {run['seed']} ({run['seconds']} s): peak reward {p['reward']:.3f} at step "
                  f"{p['step']} (KL {p['kl']:.2f}, gramm. {p['grammatical']:.0%}); last {last['reward']:.3f} "
                  f"(KL {last['kl']:.2f}, gramm. {last['grammatical']:.0%})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
