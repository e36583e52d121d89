"""DPO on the course's task with TRL's ``DPOTrainer``: the same setting as :func:`rlhf_core.train.train_dpo`.

:func:`trl_arguments` turns the course's :class:`~rlhf_core.train.DPOConfig` into TRL's, field by
field (the table below); :func:`train_with_trl` exports the SFT model (:mod:`rlhf_core.hf`), trains it
with ``DPOTrainer`` offline, and brings the weights back into a ``TinyLM`` so that the course's own
ground-truth reward and KL (:func:`rlhf_core.evaluation.evaluate_policy`) score it.

==========================  =================================  ==============================================
course (``DPOConfig``)      TRL (``trl.DPOConfig``)            note
==========================  =================================  ==============================================
``beta``                    ``beta``                           the same β
``loss_type="sigmoid"``     ``loss_type=["sigmoid"]``          the paper's loss
``average_logps=True``      ``loss_type=["sigmoid_norm"]``     length-normalised DPO
``loss_type="ipo"``         ``loss_type=["ipo"]``              both average the log-ratios per token
``loss_type="cdpo"``        —                                  no TRL 1.16 loss: ``"sigmoid"`` ignores
                                                               ``label_smoothing``; ``"robust"`` (robust DPO),
                                                               ``"exo_pair"``, ``"aot"``, ``"aot_unpaired"``
                                                               read it, and are other losses
``rpo_alpha``               — (not mapped here)                TRL 1.16 has no ``rpo_alpha``: RPO there is
                                                               ``loss_type=["sigmoid", "sft"]`` with
                                                               ``loss_weights=[1.0, α]``; its NLL averages over
                                                               the batch's chosen tokens, the course's per
                                                               response
``batch_size``              ``per_device_train_batch_size``    × processes = the global batch
``grad_accum_steps``        ``gradient_accumulation_steps``
``steps``, ``lr``           ``max_steps``, ``learning_rate``
``warmup_steps``            ``warmup_steps`` +                 linear warm-up, cosine decay to 0 (TRL's warm-up
                            ``lr_scheduler_type="cosine"``     starts at 0, the course's at lr/warmup)
``weight_decay``,           the same names                     AdamW with torch's defaults in both
``max_grad_norm``
(cached reference)          ``precompute_ref_log_probs=True``  lesson 08's cache: the reference runs once
``seed``                    ``seed``                           also shuffles TRL's batches (its own order)
==========================  =================================  ==============================================

The two trainers draw their batches in different orders, so one seed of each is one sample of the
same distribution: compare them across seeds (``bench/trl_vs_course.py``), not step by step.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import hf
from .model import TinyLM
from .tokenizer import WordTokenizer
from .train import DPOConfig

__all__ = ["TRLRun", "trl_arguments", "train_with_trl", "loss_on_batch", "compare_with_course", "first_step"]


@dataclass
class TRLRun:
    """What :func:`train_with_trl` returns: the trained policy as a TinyLM, TRL's log, the wall time."""

    policy: TinyLM
    log: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def _trl_loss_type(config: DPOConfig) -> list[str]:
    if config.loss_type == "sigmoid":
        return ["sigmoid_norm" if config.average_logps else "sigmoid"]
    if config.loss_type == "ipo":
        return ["ipo"]
    raise ValueError(f"TRL has no loss equal to the course's {config.loss_type!r}: its 'sigmoid' ignores label_smoothing, "
                     "and its 'robust' is robust DPO ((1−ε)·ℓ(h) − ε·ℓ(−h))/(1−2ε), not conservative DPO; "
                     "use loss_type 'sigmoid' or 'ipo'")


def trl_arguments(config: DPOConfig, output_dir: str | Path, num_processes: int = 1, **overrides):
    """TRL's ``DPOConfig`` for the course's ``config`` (see the module's table). ``num_processes``
    splits the course's batch over data-parallel processes, so the global batch stays the same."""
    if config.rpo_alpha:
        raise ValueError(f"rpo_alpha={config.rpo_alpha:g} is not mapped: TRL 1.16 has no rpo_alpha; RPO there is "
                         f"loss_type=['sigmoid', 'sft'] with loss_weights=[1.0, {config.rpo_alpha:g}] (pass them as "
                         "overrides), whose NLL averages over all chosen tokens of the batch, not per response")
    if config.batch_size % num_processes:
        raise ValueError(f"batch_size {config.batch_size} does not split over {num_processes} processes")
    settings = dict(
        beta=config.beta, loss_type=_trl_loss_type(config),
        per_device_train_batch_size=config.batch_size // num_processes,
        gradient_accumulation_steps=config.grad_accum_steps, max_steps=config.steps,
        learning_rate=config.lr, warmup_steps=config.warmup_steps, lr_scheduler_type="cosine",
        weight_decay=config.weight_decay, max_grad_norm=config.max_grad_norm, seed=config.seed,
        precompute_ref_log_probs=True,
    )
    settings.update(overrides)
    return hf.trl_config(output_dir, **settings)


@contextlib.contextmanager
def _dataset_bars(show: bool):
    """TRL tokenizes and caches through ``datasets``, whose progress bars ignore ``disable_tqdm``."""
    from datasets.utils import logging as datasets_logging

    was = datasets_logging.is_progress_bar_enabled()
    (datasets_logging.enable_progress_bar if show else datasets_logging.disable_progress_bar)()
    try:
        yield
    finally:
        (datasets_logging.enable_progress_bar if was else datasets_logging.disable_progress_bar)()


def _trainer(policy: TinyLM, reference: TinyLM, tokenizer: WordTokenizer, rows, args):
    from trl import DPOTrainer

    with hf.quiet_deprecations():
        trainer = DPOTrainer(model=hf.export_model(policy, tokenizer), ref_model=hf.export_model(reference, tokenizer),
                             args=args, train_dataset=rows, processing_class=hf.export_tokenizer(tokenizer))
    if args.disable_tqdm:  # no progress bar: then transformers prints every log line; keep the output quiet instead
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)
    return trainer


def loss_on_batch(policy: TinyLM, reference: TinyLM, tokenizer: WordTokenizer, pairs: Sequence[dict],
                  beta: float = 0.1, output_dir: str | Path | None = None, **overrides) -> tuple[float, dict, dict]:
    """TRL's ``DPOTrainer`` loss on ``pairs`` as one batch, with no update: ``(loss, metrics, batch)``.

    ``metrics`` are what TRL logs for that batch (``rewards/chosen``, ``logps/rejected``, …), ``batch``
    is TRL's own collated batch (its ``input_ids``, ``completion_mask``, …: chosen rows first, then the
    rejected ones, in TRL's shuffled order). ``overrides`` go to TRL's ``DPOConfig`` (``loss_type``, …).
    """
    from datasets import Dataset

    with tempfile.TemporaryDirectory(prefix="trl-dpo-") as scratch:
        args = hf.trl_config(output_dir or scratch, beta=beta, per_device_train_batch_size=len(pairs), seed=0, **overrides)
        with _dataset_bars(False):
            trainer = _trainer(policy, reference, tokenizer, Dataset.from_list(hf.trl_rows(pairs)), args)
        batch = next(iter(trainer.get_train_dataloader()))
        trainer.model.train()  # TRL logs under "train"; the exported model has no dropout, so nothing changes
        with torch.no_grad(), hf.quiet_deprecations():
            loss = trainer.compute_loss(trainer.model, batch)
    metrics = {name: float(values[-1]) for name, values in trainer._metrics["train"].items()}
    return float(loss.item()), metrics, batch


def train_with_trl(policy: TinyLM, reference: TinyLM, tokenizer: WordTokenizer, train_pairs: Sequence[dict],
                   config: DPOConfig | None = None, output_dir: str | Path | None = None, num_processes: int = 1,
                   progress: bool = False, **overrides) -> TRLRun:
    """Train a copy of ``policy`` with TRL's ``DPOTrainer`` on ``train_pairs`` against ``reference``.

    Offline (no hub, no telemetry, no reporting), float32, on the CPU unless a GPU is present.
    ``progress`` shows TRL's progress bar. ``overrides`` go to TRL's ``DPOConfig`` (e.g.
    ``logging_steps``). ``policy`` itself is not changed.
    """
    from datasets import Dataset, load_from_disk

    config = config or DPOConfig()
    start = time.perf_counter()
    rows = Dataset.from_list(hf.trl_rows(train_pairs))
    if num_processes > 1:
        # TRL's processes share its caches through the dataset's files: keep them in one folder all can reach
        from accelerate import PartialState

        if output_dir is None:
            raise ValueError("training over several processes needs an output_dir that every process can reach")
        state, data_dir = PartialState(cpu=not torch.cuda.is_available()), Path(output_dir) / "pairs"
        with state.main_process_first():
            if state.is_main_process:
                shutil.rmtree(data_dir, ignore_errors=True)
                rows.save_to_disk(data_dir)
        rows = load_from_disk(data_dir)
    with tempfile.TemporaryDirectory(prefix="trl-dpo-") as scratch:
        args = trl_arguments(config, output_dir or scratch, num_processes, **{"disable_tqdm": not progress, **overrides})
        with _dataset_bars(progress):
            trainer = _trainer(policy, reference, tokenizer, rows, args)
            with hf.quiet_deprecations():
                trainer.train()
        trained = hf.import_model(trainer.accelerator.unwrap_model(trainer.model), policy.config)
    return TRLRun(trained, list(trainer.state.log_history), time.perf_counter() - start)


def compare_with_course(seeds: Sequence[int] = (0, 1, 2), steps: int = 40, config: DPOConfig | None = None,
                        report: Callable[[str], None] | None = None) -> dict[str, list[dict]]:
    """Both trainers in the same setting, once per seed: ``{"course": [...], "TRL": [...], "SFT": [...]}``,
    each entry :func:`~rlhf_core.evaluation.evaluate_policy`'s held-out scores plus ``seconds``.

    For seed ``s`` both start from the shipped SFT model and train on the same reward-ranked pairs
    (sampled with seed ``s + 1``; ``steps × batch_size`` of them, each seen once) with ``config`` (default: the course's default DPO setting, ``steps``
    steps); the course's trainer and TRL's each draw their own batch order from ``s``, and the held-out
    samples are drawn with seed ``s`` for every policy. The spread over seeds is what a difference
    between the two trainers is measured against (``report`` receives one line per run).
    """
    import copy
    from dataclasses import replace

    from .checkpoint import load_sft_model
    from .evaluation import evaluate_policy
    from .recipes import DEFAULT_DPO, reward_pairs
    from .train import make_reference, train_dpo

    sft, tokenizer, _ = load_sft_model()
    reference = make_reference(sft)
    base = replace(config or DEFAULT_DPO, steps=steps, eval_every=10**9)
    results: dict[str, list[dict]] = {"SFT": [], "course": [], "TRL": []}
    for seed in seeds:
        # as many pairs as the run takes (each seen once): the reference's pass over them is no longer than needed
        pairs = reward_pairs(reference, tokenizer, groups_per_prompt=8, seed=seed + 1)[: base.steps * base.batch_size]
        run_config = replace(base, seed=seed)
        start = time.perf_counter()
        policy = copy.deepcopy(sft)
        train_dpo(policy, reference, tokenizer, pairs, run_config, eval_prompts=None, progress=False)
        course_seconds = time.perf_counter() - start
        trl_run = train_with_trl(sft, reference, tokenizer, pairs, run_config)
        for name, trained, seconds in (("SFT", sft, 0.0), ("course", policy, course_seconds),
                                       ("TRL", trl_run.policy, trl_run.seconds)):
            scores = {**evaluate_policy(trained, reference, tokenizer, seed=seed), "seconds": seconds}
            results[name].append(scores)
            if report is not None:
                report(f"seed {seed} {name:<7} reward {scores['eval/reward']:+.3f}  KL {scores['eval/kl']:5.3f}  "
                       f"grammatical {scores['eval/grammatical']:.0%}  ({seconds:.1f} s)")
    return results


def first_step(n_pairs: int = 16, batch_size: int = 8, beta: float = 0.1, seed: int = 0,
               output_dir: str | Path | None = None) -> dict[str, float]:
    """TRL's log of its first training step on ``n_pairs`` reward-ranked pairs of the shipped SFT
    model, at global batch ``batch_size``: the same under one process and under ``accelerate
    launch --num_processes N`` (each process then takes ``batch_size // N`` pairs of the step).

    The policy starts from the SFT weights plus seeded noise (std 0.02), so that its first loss
    depends on which pairs the batch holds (at policy == reference every loss is log 2)."""
    from accelerate import PartialState

    from . import task
    from .checkpoint import load_sft_model
    from .data import pairs_by_reward
    from .train import make_reference

    processes = PartialState(cpu=not torch.cuda.is_available()).num_processes
    sft, tokenizer, _ = load_sft_model()
    reference = make_reference(sft)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in sft.parameters():
            p.add_(0.02 * torch.randn(p.shape, generator=generator))
    prompts = list(task.TRAIN_PROMPTS[:n_pairs])
    pairs = list(pairs_by_reward(reference, tokenizer, prompts, n_samples=4, seed=seed + 1))
    config = DPOConfig(beta=beta, batch_size=batch_size, steps=1, warmup_steps=0, seed=seed)
    run = train_with_trl(sft, reference, tokenizer, pairs, config, output_dir, num_processes=processes)
    first = next(row for row in run.log if "loss" in row)
    return {"processes": processes, **{k: float(v) for k, v in first.items() if isinstance(v, (int, float))}}


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json

    parser = argparse.ArgumentParser(prog="python -m rlhf_core.trl_dpo",
                                     description="TRL's DPOTrainer on the course's task (offline).")
    sub = parser.add_subparsers(dest="command", required=True)
    step = sub.add_parser("first-step", help="print TRL's log of the first training step as JSON")
    step.add_argument("--pairs", type=int, default=16)
    step.add_argument("--batch", type=int, default=8, help="the global batch (split over processes)")
    step.add_argument("--beta", type=float, default=0.1)
    step.add_argument("--output-dir", type=Path, default=Path("trl-output"),
                      help="a folder every process can reach (TRL's caches of the pairs live there)")
    args = parser.parse_args(argv)
    from accelerate import PartialState

    row = first_step(args.pairs, args.batch, args.beta, output_dir=args.output_dir)
    if PartialState(cpu=not torch.cuda.is_available()).is_main_process:
        print(json.dumps(row, sort_keys=True))
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
