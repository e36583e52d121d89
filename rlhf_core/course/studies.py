"""The measured studies behind lessons 08 and 09, and the files they write.

1. **Margin study** — the from-scratch write-up's pathology (batch size 1, β = 0.1) on the shipped
   SFT model, next to the candidate fixes, all on the same reward-ranked pairs. The write-up
   trained a ~1M-parameter model at lr 1e-5; our 0.4M model needs a larger step (1e-2) for the
   same symptoms to appear within 30 steps. Each variant changes one thing.
2. **Frontier** — mean sampled ground-truth reward against sequence KL(π ‖ π_ref) on held-out
   prompts, for DPO at several β and for Preferred-FT (SFT on the chosen responses only), each
   measured at several points of its training: the analogue of the paper's sentiment frontier.
3. **Displacement study** (lesson 08) — the course default run (:func:`rlhf_core.recipes.default_dpo_run`,
   lesson 08's run at seed 0) at three seeds, each next to the same run with RPO's NLL term on the
   chosen responses (``rpo_alpha`` 1, Pang et al. 2024): per pair, how the chosen and rejected
   log-probs moved; on held-out samples, reward, KL, grammar and length before and after.

``python -m rlhf_core.course.studies`` (about 3 minutes on 2 cores) writes the first two to
``rlhf_core/assets/`` as JSON; ``python -m rlhf_core.course.studies --only displacement`` (six 200-step
runs: a few minutes more) writes the third. Each file carries the fingerprint of the machine that ran
it (:func:`rlhf_core.checkpoint.machine_fingerprint`); lessons 08 and 09 load them (and can recompute
them with a switch). The explosion rule is :func:`rlhf_core.diagnostics.first_explosion_step` and the
frontier comparison :func:`rlhf_core.evaluation.betas_above_baseline`: this module runs the studies, it
does not judge them.

A test re-runs the pathology: on the machine whose fingerprint the study carries it must repeat the
stored losses; on any other machine the run is chaotic (batch 1 at a large step: float reordering
changes the losses by whole nats within 30 steps), so only its signature is compared. Another
re-runs seed 0 of the displacement study (batch 32, not chaotic) and compares it within the spread
of the three shipped seeds.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch

from .. import task
from ..checkpoint import load_sft_model, machine_fingerprint
from ..diagnostics import EXPLOSION_THRESHOLD, first_explosion_step
from ..evaluation import FrontierPoint, betas_above_baseline
from ..metrics import MetricsHistory
from ..paths import ASSETS_DIR, DISPLACEMENT_STUDY_PATH, FRONTIER_PATH, MARGIN_STUDY_PATH
from ..recipes import DEFAULT_DPO, reward_pairs
from ..train import SHIPPED_THREADS, DPOConfig, make_reference, reference_logps, train_dpo, train_preferred_ft

__all__ = [
    "PATHOLOGY", "FIX_VARIANTS", "FRONTIER_BETAS", "PREFERRED_FT_LRS", "MARGIN_STUDY_PATH", "FRONTIER_PATH",
    "EXPLOSION_BY_STEP", "explosion_rule", "study_data", "run_variant", "run_margin_study", "run_frontier",
    "summarise_variant", "load_margin_study", "load_frontier", "MARGIN_CAP", "DISPLACEMENT_VARIANTS",
    "DISPLACEMENT_SEEDS", "DISPLACEMENT_STUDY_PATH", "pair_changes", "sample_summary", "run_displacement_seed",
    "run_displacement_study", "load_displacement_study",
]

#: The pathological run: one pair per step, β = 0.1, a large step, no warm-up.
PATHOLOGY = DPOConfig(beta=0.1, batch_size=1, steps=200, lr=1e-2, warmup_steps=0, eval_every=10,
                      eval_samples_per_prompt=4, seed=0)

#: One change each, relative to :data:`PATHOLOGY`.
FIX_VARIANTS: dict[str, dict] = {
    "batch 1 · β 0.1 · lr 1e-2 (the pathology)": {},
    "batch 32": {"batch_size": 32},
    "β 1.0": {"beta": 1.0},
    "length-normalised log-probs": {"average_logps": True},
    "IPO (length-normalised)": {"loss_type": "ipo", "average_logps": True},
    "conservative DPO (ε 0.1)": {"loss_type": "cdpo", "label_smoothing": 0.1},
    "smaller step: lr 3e-4": {"lr": 3e-4},
    "batch 32 · lr 3e-4 · β 0.3 (the course default)": {"batch_size": 32, "lr": 3e-4, "beta": 0.3, "warmup_steps": 10},
}

#: The write-up's margin cap ("clip the reward margin at ~10"), run on the pathology: the hinge loss stops
#: pulling a pair once its unscaled margin reaches 1/β (10 nats at β 0.1). Not in the shipped study;
#: lesson 09 runs it live for 30 steps and ``tests/test_experiments.py`` holds what it shows.
MARGIN_CAP = {"loss_type": "hinge"}

FRONTIER_BETAS = (0.1, 0.3, 1.0, 2.0)
PREFERRED_FT_LRS = (3e-4, 1e-3, 3e-3)
FRONTIER_GROUPS = 16  # the course default's 2768 pairs
EXPLOSION_BY_STEP = 30  # the write-up's pathology had exploded by step 30


def explosion_rule() -> dict:
    """How the study's ``first_explosion_step`` fields were computed, as stored in its JSON."""
    return {"function": "rlhf_core.diagnostics.first_explosion_step", "metric": "logratio/margin",
            "threshold": EXPLOSION_THRESHOLD, "by_step": EXPLOSION_BY_STEP}


def study_data(seed: int = 1, groups_per_prompt: int = 4):
    """``(policy, reference, tokenizer, train_pairs, eval_pairs)``: a fresh copy of the SFT model and
    the reward-ranked pairs (``groups_per_prompt`` best-vs-worst-of-4 pairs per training prompt;
    86 held-out pairs)."""
    policy, tokenizer, _ = load_sft_model()
    reference = make_reference(policy)
    train_pairs = reward_pairs(reference, tokenizer, groups_per_prompt=groups_per_prompt, seed=seed)
    eval_pairs = reward_pairs(reference, tokenizer, task.HELDOUT_PROMPTS, groups_per_prompt=2, seed=seed + 1)
    return policy, reference, tokenizer, train_pairs, eval_pairs


def run_variant(changes: dict, progress: bool = False) -> MetricsHistory:
    """Train one variant of :data:`PATHOLOGY` from the SFT model; returns its history."""
    policy, reference, tokenizer, train_pairs, eval_pairs = study_data()
    config = dataclasses.replace(PATHOLOGY, **changes)
    return train_dpo(policy, reference, tokenizer, train_pairs, config, eval_pairs=eval_pairs, progress=progress)


def summarise_variant(history: MetricsHistory, changes: dict, seconds: float) -> dict:
    """One variant's entry of the study: its changes, full config, the explosion rule's verdict
    (``first_explosion_step`` by step :data:`EXPLOSION_BY_STEP`), wall time and history."""
    return {
        "changes": changes,
        "config": dataclasses.replace(PATHOLOGY, **changes).to_dict(),
        "first_explosion_step": first_explosion_step(history, by_step=EXPLOSION_BY_STEP),
        "seconds": round(seconds, 1),
        "history": history.to_dict(),
    }


def run_margin_study(progress: bool = True) -> dict:
    """Every :data:`FIX_VARIANTS` entry, trained and evaluated; returns the JSON-able study."""
    results = {}
    for name, changes in FIX_VARIANTS.items():
        start = time.perf_counter()
        history = run_variant(changes, progress=progress)
        results[name] = summarise_variant(history, changes, time.perf_counter() - start)
    return {"explosion_rule": explosion_rule(), "machine": machine_fingerprint(), "variants": results}


def run_frontier(progress: bool = True, eval_samples_per_prompt: int = 16) -> list[FrontierPoint]:
    """(KL, reward) points of DPO at each β in :data:`FRONTIER_BETAS` and of Preferred-FT at each lr,
    measured every 50 steps of a 200-step run on the course default's pairs."""
    points: list[FrontierPoint] = []
    for beta in FRONTIER_BETAS:
        policy, reference, tokenizer, train_pairs, _ = study_data(groups_per_prompt=FRONTIER_GROUPS)
        config = DPOConfig(beta=beta, eval_every=50, eval_samples_per_prompt=eval_samples_per_prompt)
        history = train_dpo(policy, reference, tokenizer, train_pairs, config, progress=progress)
        points += _points(history, "DPO", beta)
    for lr in PREFERRED_FT_LRS:
        policy, reference, tokenizer, train_pairs, _ = study_data(groups_per_prompt=FRONTIER_GROUPS)
        history = train_preferred_ft(policy, reference, tokenizer, train_pairs, lr=lr, eval_every=50,
                                     eval_samples_per_prompt=eval_samples_per_prompt, progress=progress)
        points += _points(history, "Preferred-FT", lr)
    return points


def _points(history: MetricsHistory, label: str, param: float) -> list[FrontierPoint]:
    steps, kls = history.series("eval/kl")
    return [FrontierPoint(label, param, kl, history.at("eval/reward", s)) for s, kl in zip(steps, kls) if s > 0]


def load_margin_study(path: Path = MARGIN_STUDY_PATH) -> dict:
    """The shipped margin study: ``{"explosion_rule", "machine", "variants": {name: {changes, config,
    first_explosion_step, seconds, history}}}``; each ``history`` is a :class:`MetricsHistory` dict.
    ``machine`` is the fingerprint of the machine that ran it (``None`` or ``"unknown"``: not recorded)."""
    return json.loads(Path(path).read_text())


def load_frontier(path: Path = FRONTIER_PATH) -> list[FrontierPoint]:
    """The shipped frontier points (the file also carries the producing machine's fingerprint)."""
    return [FrontierPoint(**p) for p in json.loads(Path(path).read_text())["points"]]


# ------------------------------------------------------------------------------------------------
# the displacement study (lesson 08)

DISPLACEMENT_SEEDS = (0, 1, 2)
#: Lesson 08's run, and the same run with RPO's NLL term (α 1, as in Pang et al. 2024).
DISPLACEMENT_VARIANTS: dict[str, dict] = {"DPO": {}, "DPO + NLL (RPO, α 1)": {"rpo_alpha": 1.0}}
_SAMPLE_SEED, _SAMPLES_PER_PROMPT = 3, 4  # as lesson 08's before/after samples


def pair_changes(logp_ref_chosen, logp_ref_rejected, logp_pol_chosen, logp_pol_rejected) -> dict[str, float]:
    """How a trained policy moved each training pair's log-probs (all ``(N,)``; reference = before):
    the fraction of pairs whose chosen (rejected) log-prob fell, the median change of each in nats,
    and the fraction of pairs with a positive unscaled margin."""
    d_chosen, d_rejected = logp_pol_chosen - logp_ref_chosen, logp_pol_rejected - logp_ref_rejected  # (N,)
    return {"chosen_fell": (d_chosen < 0).float().mean().item(), "chosen_median_change": d_chosen.median().item(),
            "rejected_fell": (d_rejected < 0).float().mean().item(), "rejected_median_change": d_rejected.median().item(),
            "margin_positive": ((d_chosen - d_rejected) > 0).float().mean().item()}


def sample_summary(policy, reference, tokenizer) -> dict[str, float]:
    """Mean reward, length (words and response tokens, EOS included), grammatical fraction and sampled KL
    of ``policy``'s samples on the held-out prompts (4 per prompt, seed 3: lesson 08's before/after cell)."""
    from statistics import fmean

    from ..evaluation import sample_and_score

    rep = sample_and_score(policy, reference, tokenizer, list(task.HELDOUT_PROMPTS), n_per_prompt=_SAMPLES_PER_PROMPT,
                           seed=_SAMPLE_SEED)
    return {"reward": fmean(rep.rewards), "words": fmean(len(r.split()) for r in rep.responses),
            "tokens": fmean(rep.n_tokens), "grammatical": fmean(float(g) for g in rep.grammatical), "kl": rep.kl}


def run_displacement_seed(seed: int = 0, variants: dict[str, dict] | None = None, progress: bool = False) -> dict:
    """One seed of the displacement study: the data of :func:`rlhf_core.recipes.default_dpo_run` at
    ``seed`` (seed 0 is lesson 08's run), each variant of :data:`DEFAULT_DPO` trained on it from the SFT
    model. Returns ``{"before": sample_summary, "variants": {name: {changes, pairs, after, history}}}``."""
    variants = DISPLACEMENT_VARIANTS if variants is None else variants
    sft, tokenizer, _ = load_sft_model()
    reference = make_reference(sft)
    train_pairs = reward_pairs(reference, tokenizer, seed=seed + 1)
    eval_pairs = reward_pairs(reference, tokenizer, task.HELDOUT_PROMPTS, groups_per_prompt=4, seed=seed + 2)
    ref_chosen, ref_rejected = reference_logps(reference, train_pairs, tokenizer)
    out = {"seed": seed, "before": sample_summary(reference, reference, tokenizer), "variants": {}}
    for name, changes in variants.items():
        policy, _, _ = load_sft_model()
        config = dataclasses.replace(DEFAULT_DPO, seed=seed, **changes)
        history = train_dpo(policy, reference, tokenizer, train_pairs, config, eval_pairs=eval_pairs, progress=progress)
        pol_chosen, pol_rejected = reference_logps(policy, train_pairs, tokenizer)  # the trained policy's, (N,) each
        out["variants"][name] = {"changes": changes, "config": config.to_dict(),
                                 "pairs": pair_changes(ref_chosen, ref_rejected, pol_chosen, pol_rejected),
                                 "after": sample_summary(policy, reference, tokenizer), "history": history.to_dict()}
    return out


def run_displacement_study(seeds=DISPLACEMENT_SEEDS, progress: bool = True) -> dict:
    """:func:`run_displacement_seed` at every seed; the JSON-able study, with the machine's fingerprint."""
    return {"machine": machine_fingerprint(), "seeds": [run_displacement_seed(s, progress=progress) for s in seeds]}


def load_displacement_study(path: Path = DISPLACEMENT_STUDY_PATH) -> dict:
    """The shipped displacement study: ``{"machine", "seeds": [{seed, before, variants: {name: {changes,
    config, pairs, after, history}}}]}``."""
    return json.loads(Path(path).read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run lesson 09's margin study and frontier; write them as JSON.")
    parser.add_argument("--out", type=Path, default=ASSETS_DIR)
    parser.add_argument("--only", choices=("margin", "frontier", "displacement"),
                        help="run one study (default: the margin study and the frontier)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(SHIPPED_THREADS)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.only in (None, "margin"):
        study = run_margin_study(progress=not args.quiet)
        (args.out / MARGIN_STUDY_PATH.name).write_text(json.dumps(study))
        for name, v in study["variants"].items():
            h = MetricsHistory.from_dict(v["history"])
            print(f"{name:<50} explosion by step 30: {v['first_explosion_step']}  held-out margin {h.last('eval/margin'):6.2f}"
                  f"  grammatical {h.last('eval/grammatical'):.2f}  KL {h.last('eval/kl'):7.2f}  reward {h.last('eval/reward'):.3f}")
    if args.only == "displacement":
        study = run_displacement_study(progress=not args.quiet)
        (args.out / DISPLACEMENT_STUDY_PATH.name).write_text(json.dumps(study))
        for run in study["seeds"]:
            for name, v in run["variants"].items():
                print(f"seed {run['seed']} {name:<22} {v['pairs']}  after {v['after']}")
    if args.only in (None, "frontier"):
        points = run_frontier(progress=not args.quiet)
        (args.out / FRONTIER_PATH.name).write_text(json.dumps({"machine": machine_fingerprint(), "points": [dataclasses.asdict(p) for p in points]}, indent=1))
        for p in points:
            print(f"{p.label:<13} {p.param:<7} KL {p.kl:6.2f}  reward {p.reward:.3f}")
        print("DPO above Preferred-FT at every point with KL > 0.5, per β:", betas_above_baseline(points))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
