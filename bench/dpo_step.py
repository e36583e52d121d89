"""Per-step time of three ways to write a DPO step, measured side by side in one run.

* naive        — four forward passes: policy on chosen, policy on rejected, reference on chosen,
                 reference on rejected (the reference under ``torch.no_grad``);
* concatenated — two forward passes over the stacked ``(2B, T)`` batch: policy, then reference;
* cached       — one forward pass (the policy's); the reference's log-probs were computed once,
                 before training, and are looked up (``rlhf_core.train.reference_logps``).

All three run the same batches, the same backward pass and the same optimizer step; rounds are
interleaved (naive, concatenated, cached, naive, …) so that machine noise hits all three alike.
The reference's share of the work bounds the cached step's speed-up near 4/3: a forward pass
costs about a third of forward + backward, and only the reference's forward is saved.

    python bench/dpo_step.py [--batch 32] [--rounds 7] [--steps 10] [--threads 2]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from rlhf_core import task
from rlhf_core.checkpoint import load_sft_model
from rlhf_core.data import collate_pairs
from rlhf_core.logps import concatenated_logps, side_logps
from rlhf_core.losses import dpo_loss
from rlhf_core.train import make_reference, reference_logps


def naive_step(policy, reference, batch, cached, optimizer):
    logp_pol_chosen = side_logps(policy, batch, "chosen")
    logp_pol_rejected = side_logps(policy, batch, "rejected")
    with torch.no_grad():
        logp_ref_chosen = side_logps(reference, batch, "chosen")
        logp_ref_rejected = side_logps(reference, batch, "rejected")
    return logp_pol_chosen, logp_pol_rejected, logp_ref_chosen, logp_ref_rejected


def concatenated_step(policy, reference, batch, cached, optimizer):
    logp_pol_chosen, logp_pol_rejected = concatenated_logps(policy, batch)
    with torch.no_grad():
        logp_ref_chosen, logp_ref_rejected = concatenated_logps(reference, batch)
    return logp_pol_chosen, logp_pol_rejected, logp_ref_chosen, logp_ref_rejected


def cached_step(policy, reference, batch, cached, optimizer):
    logp_pol_chosen, logp_pol_rejected = concatenated_logps(policy, batch)
    return logp_pol_chosen, logp_pol_rejected, cached[0], cached[1]


def run(method, policy, reference, batches, cache, optimizer) -> float:
    start = time.perf_counter()
    for batch, cached in zip(batches, cache):
        loss = dpo_loss(*method(policy, reference, batch, cached, optimizer), beta=0.1)  # the four log-probs in order
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - start) / len(batches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32, help="pairs per step")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=10, help="steps per method per round")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    policy, tokenizer, _ = load_sft_model()
    reference = make_reference(policy)
    policy.train()
    corpus = task.make_corpus(2 * args.batch * args.steps, seed=7)
    rows = [{"prompt": a["prompt"], "chosen": a["response"], "rejected": b["response"]}
            for a, b in zip(corpus[0::2], corpus[1::2])]
    groups = [rows[i:i + args.batch] for i in range(0, len(rows), args.batch)]
    batches = [collate_pairs(g, tokenizer) for g in groups]
    cache = [reference_logps(reference, g, tokenizer) for g in groups]
    optimizer = torch.optim.AdamW(policy.parameters(), lr=1e-6)  # tiny lr: the weights barely move between methods

    methods = {"naive (4 passes)": naive_step, "concatenated (2 passes)": concatenated_step,
               "cached reference (1 pass)": cached_step}
    for method in methods.values():  # warm-up
        run(method, policy, reference, batches[:2], cache[:2], optimizer)
    times = {name: [] for name in methods}
    for _ in range(args.rounds):
        for name, method in methods.items():
            times[name].append(run(method, policy, reference, batches, cache, optimizer))

    print(f"DPO step at batch {args.batch} pairs, {args.threads} threads, torch {torch.__version__}, "
          f"{platform.processor() or platform.machine()}, median of {args.rounds} rounds × {args.steps} steps")
    median = {name: statistics.median(t) * 1000 for name, t in times.items()}
    for name, ms in median.items():
        print(f"  {name:<26} {ms:7.1f} ms/step")
    naive, concat, cached = median.values()
    print(f"  speed-up concatenated vs naive: {naive / concat:.2f}x")
    print(f"  speed-up cached vs naive:       {naive / cached:.2f}x")
    print(f"  speed-up cached vs concatenated: {concat / cached:.2f}x")


if __name__ == "__main__":
    main()
