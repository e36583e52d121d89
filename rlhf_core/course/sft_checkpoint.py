"""Produce the shipped SFT checkpoint: ``python -m rlhf_core.course.sft_checkpoint --config configs/sft.json``.

Trains :func:`rlhf_core.train.train_sft` with the JSON config, measures the held-out loss and the
grammatical fraction of temperature-1 samples, and writes ``rlhf_core/assets/sft.pt`` with the
config, those figures and this machine's fingerprint inside (``docs/measurements.md`` quotes the figures; a test checks
them, bit for bit only on the machine whose fingerprint the checkpoint carries).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from .. import task
from ..checkpoint import SFT_CHECKPOINT, machine_fingerprint, save_checkpoint
from ..evaluation import sample_and_score
from ..toy import frozen_copy
from ..train import SFTConfig, train_sft


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/sft.json", help="JSON file with SFTConfig fields")
    parser.add_argument("--out", default=str(SFT_CHECKPOINT), help="where to write the checkpoint")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    config = SFTConfig.from_dict(json.loads(Path(args.config).read_text()))
    start = time.perf_counter()
    model, tokenizer, history = train_sft(config, progress=not args.quiet)
    seconds = time.perf_counter() - start
    report = sample_and_score(model, frozen_copy(model), tokenizer, task.HELDOUT_PROMPTS, n_per_prompt=24, seed=123)
    summary = report.summary()
    metrics = {
        "train_loss": history.last("loss"),
        "eval_loss": history.last("eval/loss"),
        "grammatical_t1": summary["eval/grammatical"],
        "sample_reward_mean": summary["eval/reward"],
        "sample_reward_std": summary["eval/reward_std"],
        "train_seconds": round(seconds, 1),
        "loss_curve": history.values("loss"),  # per step: lets a test re-run a prefix and compare
    }
    save_checkpoint(args.out, model, tokenizer, config.to_dict(), metrics, machine=machine_fingerprint())
    print(json.dumps({k: v for k, v in metrics.items() if k != "loss_curve"}, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
