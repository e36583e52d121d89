"""The course's DPO against TRL's ``DPOTrainer`` on the same exported model, measured side by side in one run.

``step`` — one DPO update on the same batch of the course's pairs, reference log-probs cached in both:
the course's :func:`rlhf_core.train.dpo_step` on the TinyLM, and TRL's ``training_step`` plus the
optimizer step on the exported ``LlamaForCausalLM``. Rounds are interleaved (course, TRL, course, …),
the median per method is reported, and the ratio.

``runs`` — the whole training, same setting (β, learning rate, batch, steps, warm-up, cosine decay,
clipping, cached reference), for each seed: held-out reward and sequence KL of the trained policy by the
course's ground-truth reward (:func:`rlhf_core.evaluation.evaluate_policy`), and the seed-to-seed spread
of each trainer. The two trainers draw their batches in different orders, so they agree when their
difference is within that spread.

    python bench/trl_vs_course.py step [--batch 32] [--rounds 7] [--steps 5] [--threads 2]
    python bench/trl_vs_course.py runs [--seeds 0 1 2 3 4] [--steps 40] [--threads 2]
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import time
from dataclasses import replace

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import torch  # noqa: E402

from rlhf_core import hf, task  # noqa: E402
from rlhf_core.checkpoint import load_sft_model  # noqa: E402
from rlhf_core.data import collate_pairs  # noqa: E402
from rlhf_core.recipes import DEFAULT_DPO  # noqa: E402
from rlhf_core.train import dpo_step, make_reference, reference_logps  # noqa: E402
from rlhf_core.trl_dpo import compare_with_course, trl_arguments  # noqa: E402


def _machine(threads: int) -> str:
    return f"{threads} threads, torch {torch.__version__}, {platform.processor() or platform.machine()}"


def bench_step(args) -> None:
    import tempfile

    from datasets import Dataset
    from trl import DPOTrainer

    sft, tokenizer, _ = load_sft_model()
    reference = make_reference(sft)
    corpus = task.make_corpus(2 * args.batch, seed=7)
    pairs = [{"prompt": a["prompt"], "chosen": a["response"], "rejected": b["response"]}
             for a, b in zip(corpus[0::2], corpus[1::2])]
    batch = collate_pairs(pairs, tokenizer)
    logp_ref_chosen, logp_ref_rejected = reference_logps(reference, pairs, tokenizer)
    policy = copy.deepcopy(sft).train()
    optimizer = torch.optim.AdamW(policy.parameters(), lr=1e-6)  # tiny lr: the weights barely move

    config = replace(DEFAULT_DPO, batch_size=args.batch, steps=10**6, warmup_steps=0)
    with tempfile.TemporaryDirectory() as out:
        trainer = DPOTrainer(model=hf.export_model(sft, tokenizer), ref_model=hf.export_model(reference, tokenizer),
                             args=trl_arguments(config, out, learning_rate=1e-6),
                             train_dataset=Dataset.from_list(hf.trl_rows(pairs)),
                             processing_class=hf.export_tokenizer(tokenizer))
        trl_batch = next(iter(trainer.get_train_dataloader()))  # the same pairs, with TRL's cached reference
        trainer.create_optimizer()
        trainer.current_gradient_accumulation_steps = 1  # what Trainer.train() sets before its first step
        trl_model = trainer.model.train()

        def course() -> None:
            dpo_step(policy, batch, logp_ref_chosen, logp_ref_rejected, optimizer, config.beta)

        def trl() -> None:
            trainer.training_step(trl_model, trl_batch)
            trainer.optimizer.step()
            trainer.optimizer.zero_grad()

        methods = {"course dpo_step (TinyLM)": course, "TRL training_step (LlamaForCausalLM)": trl}
        for fn in methods.values():  # warm-up
            fn()
        times = {name: [] for name in methods}
        for _ in range(args.rounds):
            for name, fn in methods.items():
                start = time.perf_counter()
                for _ in range(args.steps):
                    fn()
                times[name].append((time.perf_counter() - start) / args.steps)
    print(f"one DPO update, batch {args.batch} pairs, cached reference, {_machine(args.threads)}, "
          f"median of {args.rounds} interleaved rounds × {args.steps} steps")
    median = {name: statistics.median(t) * 1000 for name, t in times.items()}
    for name, ms in median.items():
        print(f"  {name:<38} {ms:7.1f} ms/step")
    ours, theirs = median.values()
    print(f"  TRL / course: {theirs / ours:.2f}x")


def bench_runs(args) -> None:
    print(f"course trainer vs TRL DPOTrainer, {args.steps} steps of the course's default setting "
          f"(β {DEFAULT_DPO.beta}, lr {DEFAULT_DPO.lr}, batch {DEFAULT_DPO.batch_size}), {_machine(args.threads)}")
    results = compare_with_course(args.seeds, args.steps, report=lambda line: print("  " + line, flush=True))
    spread = (lambda xs: statistics.stdev(xs) if len(xs) > 1 else float("nan"))
    print(f"  mean ± standard deviation over {len(args.seeds)} seeds:")
    for name, rows in results.items():
        reward, kl = [r["eval/reward"] for r in rows], [r["eval/kl"] for r in rows]
        print(f"  {name:<7} reward {statistics.mean(reward):+.3f} ± {spread(reward):.3f}   "
              f"KL {statistics.mean(kl):.3f} ± {spread(kl):.3f}   {statistics.mean(r['seconds'] for r in rows):.1f} s/run")
    for metric in ("eval/reward", "eval/kl"):
        course, trl = ([r[metric] for r in results[name]] for name in ("course", "TRL"))
        print(f"  {metric}: course − TRL = {statistics.mean(course) - statistics.mean(trl):+.3f}; "
              f"seed-to-seed spread (sd) {spread(course):.3f} (course), {spread(trl):.3f} (TRL)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    step = sub.add_parser("step")
    step.add_argument("--batch", type=int, default=32)
    step.add_argument("--rounds", type=int, default=7)
    step.add_argument("--steps", type=int, default=5)
    runs = sub.add_parser("runs")
    runs.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    runs.add_argument("--steps", type=int, default=40)
    for p in (step, runs):
        p.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    (bench_step if args.what == "step" else bench_runs)(args)


if __name__ == "__main__":
    main()
