# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
#   language_info:
#     name: python
# ---

# %% [markdown] nbgrader={"grade": false, "grade_id": "intro", "locked": true, "schema_version": 3, "solution": false}
# # 08 · Full DPO on the tiny transformer
#
# Everything so far was a part: the loss (02), a toy policy (03), sequence log-probs (04), the model (05),
# preference pairs (07). This lesson puts them together and runs the paper's recipe end to end on a real
# (if tiny) language model: start from the SFT model, keep a frozen copy of it as the reference, and train
# on reward-ranked pairs of its own samples. Then we check the result the way the paper's sentiment
# experiment does — by *sampling* from the trained policy on prompts it never saw, and scoring the samples
# with the ground-truth reward — and look closely at one surprise that every real DPO run shows: the
# probability of the *chosen* responses usually goes down.
#
# **Goals**
# - set up a DPO run: a trainable policy, a frozen reference, cached reference log-probs;
# - implement `dpo_step` — one update plus the metrics every DPO trainer logs;
# - train for 200 steps and read the curves: loss, accuracy, margins, KL, sampled reward;
# - show the policy improved on held-out prompts (reward up ≥ 1 corpus std at KL < 10 nats, ≥ 75 % grammatical);
# - explain likelihood displacement — why DPO lets the chosen responses lose probability — measure it on this
#   run, and measure the NLL-regularised fix (RPO) over three seeds.
#
# **Prerequisites:** notebook 02 (`dpo_loss`, the implicit reward), 04 (`get_logps`: summed response
# log-probs), 07 (how the pairs are built). A PyTorch training step (`zero_grad`, `backward`, `step`).
#
# **Time:** about 70 minutes (the notebook itself runs in under a minute on 2 CPU cores).

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-01", "locked": true, "schema_version": 3, "solution": false}
# ## 1. The set-up: one model, three roles
#
# * **The policy** $\pi_\theta$ — the model we train. It starts as the shipped SFT model.
# * **The reference** $\pi_\text{ref}$ — the *same* SFT model, frozen. `make_reference` returns a copy
#   with every parameter's `requires_grad` off, in eval mode. DPO's loss measures how far the policy has
#   moved from it, so it must not move itself.
# * **The data** — the course's pairs of lesson 07: for each training prompt, draw 4 samples from the
#   reference at temperature 1, score them with the ground-truth reward, keep the best as *chosen* $y_w$
#   and the worst as *rejected* $y_l$ (ties dropped); 16 such groups per prompt. The paper's sentiment
#   experiment samples the same way but labels all six pairs of each group's 4 samples; the course keeps
#   the widest one (lesson 07 compares the two; `reward_pairs(..., pairing="all")` builds the paper's). The same
#   recipe on the **held-out prompts** gives evaluation pairs; the held-out prompts also serve for sampling
#   during evaluation.
#
# Building the pairs means sampling about 11 000 responses, about 10 s on one thread, so the course ships them
# (`course_pairs`: what `reward_pairs` built from the shipped SFT model, checked against it; lesson 07 built
# a smaller set live with the same code).

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false}
# Setup: run this cell first. Where rlhf_core is missing (Colab, a fresh kernel) it installs the course
# library, keeping the torch already there; then it checks the environment and fixes the random seed.
COURSE_REPO_URL = "https://github.com/dpo-paper-to-code/dpo-paper-to-code"
SEED = 8
import importlib, importlib.util, os, subprocess, sys
if importlib.util.find_spec("rlhf_core") is None:
    source = os.environ.get("DPO_COURSE_SOURCE") or f"git+{COURSE_REPO_URL}"
    where = "Colab" if "google.colab" in sys.modules else "this kernel"
    print(f"rlhf_core is missing in {where}: installing it from {source} (about a minute) ...")
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--upgrade-strategy", "only-if-needed", source],
                         capture_output=True, text=True)
    if pip.returncode != 0:
        said = ((pip.stderr or pip.stdout).strip().splitlines() or ["no message"])[-1]
        raise RuntimeError(f"pip could not install {source} ({said}); check the network, or install the course yourself")
    importlib.invalidate_caches()
from rlhf_core.course.notebook import setup
setup(seed=SEED)

# %% id="demo-01"
import copy
import time

import torch
from rlhf_core import task
from rlhf_core.checkpoint import load_sft_model
from rlhf_core.recipes import DEFAULT_DPO, course_pairs
from rlhf_core.train import make_reference

policy, tokenizer, _ = load_sft_model()      # the policy starts as the SFT model ...
reference = make_reference(policy)           # ... and a frozen copy of it is the reference
print(f"policy:    {sum(p.requires_grad for p in policy.parameters())} of {len(list(policy.parameters()))} "
      f"parameter tensors require grad")
print(f"reference: {sum(p.requires_grad for p in reference.parameters())} of {len(list(reference.parameters()))} "
      f"parameter tensors require grad, training mode = {reference.training}")

# lesson 07's recipe, reward_pairs(reference, tokenizer, seed=1) and 4 groups per held-out prompt (seed=2), as shipped:
# sampling them again takes about 10 s (course_pairs builds them live when the reference is not the shipped model)
train_pairs, eval_pairs = course_pairs(reference, tokenizer)
print(f"\n{len(train_pairs)} training pairs from {len(task.TRAIN_PROMPTS)} prompts (16 groups each), "
      f"{len(eval_pairs)} held-out pairs from {len(task.HELDOUT_PROMPTS)} held-out prompts")

example = train_pairs[0]
print(f"\nprompt  : {example['prompt']}")
print(f"chosen  : {example['chosen']}   (reward {example['chosen_reward']:+.2f})")
print(f"rejected: {example['rejected']}   (reward {example['rejected_reward']:+.2f})")
corpus_std = task.corpus_reward_stats()["std"]
print(f"\nthe reward's standard deviation over the SFT corpus: {corpus_std:.3f} (the unit of the bar below)")

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-02", "locked": true, "schema_version": 3, "solution": false}
# ## 2. The reference never changes — compute its log-probs once
#
# The loss of one pair, with $\log \pi(y|x)$ the **summed** log-prob of the response tokens:
#
# $$\mathcal{L} = -\log \sigma\Big(\beta\big[\underbrace{\log \pi_\theta(y_w|x) - \log \pi_\text{ref}(y_w|x)}_{\text{chosen log-ratio}}
# - \underbrace{(\log \pi_\theta(y_l|x) - \log \pi_\text{ref}(y_l|x))}_{\text{rejected log-ratio}}\big]\Big).$$
#
# Four log-probs per pair, but only two of them depend on $\theta$. The reference's two are the same at
# step 1 and at step 200, so a careful trainer computes them **once**, before training, for every pair, and
# looks them up by index afterwards (`reference_logps`). A naive one runs the reference on every batch: two
# extra forward passes per step, for numbers it already knew.
#
# The policy's two log-probs need one more trick. Chosen and rejected are already padded to one common length
# $T$ by `collate_pairs`, so they can be **stacked** into a single $(2B, T)$ batch, run through the model
# in one forward pass, and split in half again (`concatenated_logps`). One large matrix multiply is faster
# than two half-size ones, the model's weights are read once instead of twice, and under multi-GPU sharding
# it means one communication round instead of two.
#
# | math | code |
# |---|---|
# | $\log \pi_\text{ref}(y_w\|x),\ \log \pi_\text{ref}(y_l\|x)$ for all $N$ pairs | `logp_ref_chosen, logp_ref_rejected = reference_logps(reference, train_pairs, tokenizer)` — `(N,)` each, once |
# | the same, for a batch of indices `idx` | `logp_ref_chosen[idx], logp_ref_rejected[idx]` — a lookup |
# | $\log \pi_\theta(y_w\|x),\ \log \pi_\theta(y_l\|x)$ | `logp_pol_chosen, logp_pol_rejected = concatenated_logps(policy, batch)` — one pass over `(2B, T)` |

# %% id="demo-02"
from rlhf_core.data import collate_pairs
from rlhf_core.logps import concatenated_logps, side_logps
from rlhf_core.train import reference_logps

start = time.perf_counter()
logp_ref_chosen, logp_ref_rejected = reference_logps(reference, train_pairs, tokenizer)   # (N,), (N,): once, kept
print(f"reference log-probs of all {len(logp_ref_chosen)} training pairs: {time.perf_counter() - start:.2f} s, "
      f"shapes {tuple(logp_ref_chosen.shape)} and {tuple(logp_ref_rejected.shape)}")

# one pass over the stacked batch gives the same numbers as two separate passes
batch = collate_pairs(train_pairs[:8], tokenizer)
with torch.no_grad():
    logp_chosen, logp_rejected = concatenated_logps(reference, batch)
    logp_chosen_alone = side_logps(reference, batch, "chosen")           # the chosen side on its own
print("stacked (2B, T) batch:", tuple(torch.cat([batch["chosen_input_ids"], batch["rejected_input_ids"]]).shape),
      f"| max |stacked − separate| = {(logp_chosen - logp_chosen_alone).abs().max().item():.1e}",
      f"| matches the cache: {torch.allclose(logp_chosen, logp_ref_chosen[:8], atol=1e-4)}"
      f" and {torch.allclose(logp_rejected, logp_ref_rejected[:8], atol=1e-4)}")

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-03", "locked": true, "schema_version": 3, "solution": false}
# How much does it save? `bench/dpo_step.py` times the whole step (forward, backward, optimizer) at batch 32
# on an idle 2-core CPU: **naive, 4 forward passes: 73.8 ms/step; cached reference + one stacked pass:
# 51.0 ms/step — 1.45× faster.** The saving has a ceiling: only the reference's forward passes go away, while
# the policy's forward *and* backward (a backward costs about two forwards) stay. The cell below times
# forward + backward on four batches, live, on your machine. On a busy machine the numbers jump about; the
# bench's median over many rounds is the reliable figure.

# %% id="demo-03"
import statistics
from rlhf_core.losses import dpo_loss

probe = copy.deepcopy(policy).train()          # a throw-away copy: the real policy stays untouched
batches = [collate_pairs(train_pairs[i:i + 32], tokenizer) for i in range(0, 4 * 32, 32)]
index = [torch.arange(i, i + 32) for i in range(0, 4 * 32, 32)]


def naive(b, idx):                              # 4 forward passes per step
    logp_pol = side_logps(probe, b, "chosen"), side_logps(probe, b, "rejected")
    with torch.no_grad():
        logp_ref = side_logps(reference, b, "chosen"), side_logps(reference, b, "rejected")
    return (*logp_pol, *logp_ref)                # the order of dpo_loss's four arguments


def cached(b, idx):                             # 1 forward pass per step
    logp_pol = concatenated_logps(probe, b)
    return (*logp_pol, logp_ref_chosen[idx], logp_ref_rejected[idx])


def ms_per_step(method):
    start = time.perf_counter()
    for b, idx in zip(batches, index):
        probe.zero_grad()
        dpo_loss(*method(b, idx), beta=0.3).backward()
    return 1000 * (time.perf_counter() - start) / len(batches)


times = {"naive (4 passes)": [], "cached + stacked (1 pass)": []}
for _ in range(3):                              # interleaved rounds: machine noise hits both alike
    for name, method in zip(times, (naive, cached)):
        times[name].append(ms_per_step(method))
med = {name: statistics.median(t) for name, t in times.items()}
for name, ms in med.items():
    print(f"{name:<27} {ms:6.1f} ms per forward + backward")
print(f"speed-up: {med['naive (4 passes)'] / med['cached + stacked (1 pass)']:.2f}x   (bench, idle CPU, with the optimizer step: 1.45x)")

# %% [markdown] nbgrader={"grade": false, "grade_id": "ex1-header", "locked": true, "schema_version": 3, "solution": false}
# ### Exercise 1 — `dpo_step` · ★★★ · 20 min
#
# Write one DPO update on a `collate_pairs` batch, using the cached reference log-probs, and return the
# metrics every DPO trainer logs (the names are those of the common trainers, so real logs read the same).
# All inputs of the metrics are `(B,)` tensors; every value returned is a Python `float` (a batch mean):
#
# | key | value |
# |---|---|
# | `loss` | the DPO loss of the batch (`dpo_loss`) |
# | `rewards/chosen` | mean of $\beta\,(\log \pi_\theta(y_w) - \log \pi_\text{ref}(y_w))$ — the implicit reward of the chosen |
# | `rewards/rejected` | the same for the rejected |
# | `rewards/accuracies` | fraction of pairs whose chosen reward is **strictly** above the rejected one |
# | `rewards/margins` | mean of chosen reward − rejected reward (β-scaled) |
# | `logps/chosen`, `logps/rejected` | mean summed log-prob of the chosen / rejected under the policy |
# | `logratio/margin` | the *unscaled* margin, `rewards/margins / beta` |
#
# The metrics describe the batch the gradient came from: compute them from the log-probs of the forward
# pass, not from a second pass after the update. Use your `get_logps` from lesson 04 (the library's is
# imported below) and either one forward pass over the stacked batch or two, one per side.

# %% nbgrader={"grade": false, "grade_id": "dpo_step", "locked": false, "schema_version": 3, "solution": true}
from rlhf_core.logps import get_logps
from rlhf_core.losses import dpo_loss


def dpo_step(policy, batch, logp_ref_chosen, logp_ref_rejected, optimizer, beta=0.1):
    """One DPO update; returns a dict of floats (the keys in the table above).

    batch: a collate_pairs batch, six (B, T) tensors: chosen_/rejected_ + input_ids, attention_mask,
           response_mask.
    logp_ref_chosen, logp_ref_rejected: (B,) cached summed log-probs of the reference.
    policy(input_ids, attention_mask) -> logits (B, T, V).
    """
    ### BEGIN SOLUTION
    ids = torch.cat([batch["chosen_input_ids"], batch["rejected_input_ids"]])              # (2B, T)
    attention = torch.cat([batch["chosen_attention_mask"], batch["rejected_attention_mask"]])
    response = torch.cat([batch["chosen_response_mask"], batch["rejected_response_mask"]])
    logps = get_logps(policy(ids, attention), ids, response)                               # (2B,) summed
    n = batch["chosen_input_ids"].shape[0]
    logp_pol_chosen, logp_pol_rejected = logps[:n], logps[n:]                              # (B,), (B,)

    loss = dpo_loss(logp_pol_chosen, logp_pol_rejected, logp_ref_chosen, logp_ref_rejected, beta)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()

    with torch.no_grad():
        chosen, rejected = logp_pol_chosen.detach(), logp_pol_rejected.detach()
        reward_chosen = beta * (chosen - logp_ref_chosen)                                  # (B,)
        reward_rejected = beta * (rejected - logp_ref_rejected)                            # (B,)
        margins = reward_chosen - reward_rejected                                          # (B,)
        return {
            "loss": loss.item(),
            "rewards/chosen": reward_chosen.mean().item(),
            "rewards/rejected": reward_rejected.mean().item(),
            "rewards/accuracies": (reward_chosen > reward_rejected).float().mean().item(),
            "rewards/margins": margins.mean().item(),
            "logps/chosen": chosen.mean().item(),
            "logps/rejected": rejected.mean().item(),
            "logratio/margin": (margins / beta).mean().item(),
        }
    ### END SOLUTION


# %% check="dpo_step"

# %% [markdown] nbgrader={"grade": false, "grade_id": "ex1-hint", "locked": true, "schema_version": 3, "solution": false}
# <details><summary>Hint</summary>
#
# Three blocks. (1) Log-probs: `torch.cat` the chosen and rejected `input_ids`, `attention_mask` and
# `response_mask` along dim 0, run `policy(ids, attention)`, take `get_logps(logits, ids, response)` (it
# sums by default — keep it that way), and split the `(2B,)` result at `B` into `logp_pol_chosen` and
# `logp_pol_rejected`. (2) The update:
# `loss = dpo_loss(logp_pol_chosen, logp_pol_rejected, logp_ref_chosen, logp_ref_rejected, beta)`, then
# `optimizer.zero_grad()`, `loss.backward()`, `optimizer.step()`. (3) The metrics, from the detached policy
# log-probs: `beta * (logp_pol_chosen.detach() - logp_ref_chosen)` and the same for the rejected; accuracy
# with `>` (a tie is not a win);
# `.mean().item()` on everything. The check names the usual slips: swapped sides, averaged instead of summed
# log-probs, a forgotten `zero_grad`, β missing from the loss or the rewards.
# </details>

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-04", "locked": true, "schema_version": 3, "solution": false}
# ## 3. Your step, on a few batches
#
# A first sanity check of any DPO loop: at step 1 the policy *is* the reference, every log-ratio is 0 and the
# loss is exactly $\log 2 \approx 0.6931$, the accuracy is 0 (all rewards tie). Then the loss should leave
# $\log 2$ downwards, slowly at first. Below, your `dpo_step` (if it passes its check) trains a throw-away
# copy of the SFT model for 12 steps at batch 32 with $\beta = 0.3$ and a constant learning rate of 3e-4.

# %% id="demo-04"
import random
from rlhf_core.course.notebook import yours_or_reference

step_fn = yours_or_reference("dpo_step", dpo_step)
trial = copy.deepcopy(policy).train()                      # the real policy stays at the SFT weights
optimizer = torch.optim.AdamW(trial.parameters(), lr=3e-4)
rng = random.Random(0)
print(f"log 2 = {torch.log(torch.tensor(2.0)).item():.4f}")
print("step   loss    acc   rewards/chosen  rewards/rejected  logratio/margin")
for step in range(1, 13):
    idx = rng.sample(range(len(train_pairs)), 32)
    m = step_fn(trial, collate_pairs([train_pairs[i] for i in idx], tokenizer), logp_ref_chosen[idx],
                logp_ref_rejected[idx], optimizer, beta=0.3)
    print(f"{step:>4}  {m['loss']:.4f}  {m['rewards/accuracies']:.2f}  {m['rewards/chosen']:+14.4f}  "
          f"{m['rewards/rejected']:+16.4f}  {m['logratio/margin']:+15.3f}")

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-05", "locked": true, "schema_version": 3, "solution": false}
# ## 4. The full run
#
# The library's `train_dpo` runs the library's `dpo_step` — the one your exercise was checked against — once
# per update, and adds what a real trainer needs (through `dpo_step`'s keyword arguments, or around it):
#
# * **gradient clipping** (global norm 1.0) — one batch with a huge gradient cannot throw the policy far;
# * **a learning-rate schedule** — linear warm-up over 10 steps to 3e-4, then cosine decay to 0;
# * **gradient accumulation** (`grad_accum_steps`) — several small batches per update when one large batch
#   does not fit in memory (here 1: a batch of 32 pairs fits easily);
# * **its own reference cache** (the same `reference_logps` call as above);
# * **periodic evaluation**, at step 0 and every 50 steps: the unscaled margin and accuracy on the held-out
#   pairs, and — the real test — 8 samples per held-out prompt at temperature 1, scored for ground-truth
#   reward, grammaticality, and the sequence KL to the reference,
#   $\mathrm{KL} \approx \frac{1}{n}\sum_{y \sim \pi_\theta} [\log \pi_\theta(y|x) - \log \pi_\text{ref}(y|x)]$ (nats per
#   response: the sequence KL, estimated from the policy's own samples; lesson 09 compares this estimator
#   with the token-level one).
#
# The configuration is the course's default (`DEFAULT_DPO`): $\beta = 0.3$, batch 32, 200 steps, AdamW at
# 3e-4. About 20 s on two cores.

# %% id="demo-05"
from rlhf_core.train import train_dpo

print(DEFAULT_DPO)
history = train_dpo(policy, reference, tokenizer, train_pairs, DEFAULT_DPO, eval_pairs=eval_pairs, progress=True)

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-06", "locked": true, "schema_version": 3, "solution": false}
# ## 5. Reading the curves
#
# Top row: the loss leaves $\log 2$ (dashed) and falls; the training accuracy climbs from 0 (all ties at step
# 1) to above 0.9; the unscaled margin grows into the shaded 1–10 nats band and stays there — it does not run
# off to hundreds. That band is a rule of thumb for this task only — its β (0.1–0.3) and its short reviews of
# about 14 tokens (lesson 09 prints the mean): the margin is a sum over a response's tokens and the loss
# saturates near $\beta m \approx 5$, so the band scales with $1/\beta$ and with response length, as lesson 09
# says of its 50-nat rule. A margin in the hundreds would say the policy is overfitting its training pairs; it
# would not by itself say how far the policy drifted, because the margin is measured on two fixed responses
# and the KL (middle row) on the policy's own samples (lesson 09). Middle row: the implicit rewards of chosen
# and rejected, and the KL. Bottom row: the held-out numbers — sampled reward, the margin on pairs the model
# never trained on, and the grammatical fraction.

# %% id="demo-06"
from rlhf_core.plots import plot_training_curves

fig = plot_training_curves(history, names=["loss", "rewards/accuracies", "logratio/margin",
                                           "rewards/chosen", "rewards/rejected", "eval/kl",
                                           "eval/reward", "eval/margin", "eval/grammatical"],
                           title="DPO on the tiny transformer (β = 0.3, batch 32, 200 steps)")

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-07", "locked": true, "schema_version": 3, "solution": false}
# ### Did the policy get better?
#
# Three numbers, all measured on samples from the **held-out** prompts (8 per prompt, temperature 1), at
# step 0 (the SFT model) and after training. The bars: the mean reward rises by at least one standard
# deviation of the reward over the SFT corpus, the policy stays within 10 nats of KL of the reference, and at
# least 75 % of its samples are still grammatical reviews.

# %% id="demo-07"
last = DEFAULT_DPO.steps
reward_before, reward_after = history.at("eval/reward", 0), history.at("eval/reward", last)
rise = (reward_after - reward_before) / corpus_std
kl = history.at("eval/kl", last)
gram_before, gram_after = history.at("eval/grammatical", 0), history.at("eval/grammatical", last)
ok = lambda passed: "PASS" if passed else "FAIL"


def row(name, step0, final, bar, verdict):
    print(f"{name:<28}{step0:>14}{final:>16}   {bar:<44}{verdict}")


row("held-out samples", "SFT (step 0)", f"DPO (step {last})", "bar", "")
row("mean ground-truth reward", f"{reward_before:+.3f}", f"{reward_after:+.3f}",
    f"rise ≥ 1 corpus std ({corpus_std:.3f}): {rise:.2f} std", ok(rise >= 1.0))
row("sequence KL(π‖π_ref), nats", f"{history.at('eval/kl', 0):.2f}", f"{kl:.2f}", "KL < 10 nats", ok(kl < 10))
row("grammatical fraction", f"{gram_before:.1%}", f"{gram_after:.1%}", "≥ 75 % grammatical", ok(gram_after >= 0.75))
print(f"\nheld-out pairs: accuracy {history.at('eval/accuracy', last):.1%}, "
      f"unscaled margin {history.at('eval/margin', last):.2f} nats")

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-08", "locked": true, "schema_version": 3, "solution": false}
# ### Before and after, side by side
#
# Four samples for every held-out prompt, at temperature 1, from the SFT model (before) and the DPO policy
# (after), with the same random seed, so both draw the same random numbers. Below, the first sample for six
# prompts with its reward in brackets, then averages over all of them.

# %% id="demo-08"
import statistics
from rlhf_core.evaluation import sample_and_score

prompts = list(task.HELDOUT_PROMPTS)           # 4 samples for each of the 43 held-out prompts
before = sample_and_score(reference, reference, tokenizer, prompts, n_per_prompt=4, temperature=1.0, seed=3)
after = sample_and_score(policy, reference, tokenizer, prompts, n_per_prompt=4, temperature=1.0, seed=3)
for i in range(0, 6 * 4, 4):                   # the first sample of the first 6 prompts
    print(f"▶ {before.prompts[i]} …")
    for label, rep in (("before", before), ("after ", after)):
        mark = "   [ungrammatical]" if not rep.grammatical[i] else ""
        print(f"   {label} [{rep.rewards[i]:+.2f}]  {rep.responses[i]}{mark}")

training_texts = {p["chosen"] for p in train_pairs} | {p["rejected"] for p in train_pairs}
print(f"\nall {len(after.responses)} samples      before   after")
print(f"mean reward          {statistics.fmean(before.rewards):+7.2f} {statistics.fmean(after.rewards):+7.2f}")
print(f"mean length (words)  {statistics.fmean(len(r.split()) for r in before.responses):7.1f} "
      f"{statistics.fmean(len(r.split()) for r in after.responses):7.1f}")
print(f"grammatical          {statistics.fmean(before.grammatical):7.0%} {statistics.fmean(after.grammatical):7.0%}")
print(f"a training response  {statistics.fmean(r in training_texts for r in before.responses):7.0%} "
      f"{statistics.fmean(r in training_texts for r in after.responses):7.0%}   (word for word, chosen or rejected)")

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-09", "locked": true, "schema_version": 3, "solution": false}
# The policy has learned what the reward pays for: strongly positive adjectives, intensified and stacked
# into lists, and longer reviews that fit more of them in (the mean length above rises by a few words; it
# does in each of the three seeds of section 7's study, too). It still writes in the SFT model's frames and
# word order — staying close to the reference is what the KL term in DPO's objective asks for. Stacking has a
# cost, though: the grammar allows at most three adjective phrases per list and 24 words per review, and most
# of the policy's ungrammatical samples are stacking gone too far — a fourth phrase, a review that runs past
# 24 words, an intensifier with no adjective after it ("very and fantastic"), or the unknown-word token.
# None of its samples is a training response word for word: the probability went to *new* text.
#
# ## 6. Likelihood displacement: the chosen responses lose probability too
#
# DPO's loss sees only the **difference** of the two log-ratios: it is as happy to lower $\log \pi(y_l)$ as to
# raise $\log \pi(y_w)$, and nothing in it says where the mass taken from $y_l$ must go. It can flow to
# responses that are in **neither** set. (A ceiling is not the reason: a whole review's summed
# $\log \pi(y_w)$ sits tens of nats below the bound of 0 — the `logps/chosen` column printed below.)
# *Likelihood displacement* is the name for
# what often follows: the margin grows while the chosen log-ratio — `rewards/chosen` $/\beta$ — falls below zero.
#
# Why the chosen side falls is a question the literature has measured, and its answers are mechanisms, not
# theorems about every run. Razin et al. (2024, *Unintentional Unalignment: Likelihood Displacement in
# Direct Preference Optimization*) trace it to how similar the chosen and rejected responses are in the
# model's hidden representations (their centered hidden-embedding similarity score picks out the pairs
# that displace most); Pal et al. (2024, *Smaug*, which proposes DPO-Positive) show that when the two
# differ in only a few tokens the standard loss can lower both; Feng et al. (2024, *Towards Analyzing and
# Understanding the Limitations of DPO*) compare the gradients on the two sides and find the rejected
# response's probability falling faster than the chosen one's rises; and Rafailov et al. (2024,
# *From r to Q\**) argue that, starting from an SFT model, the chosen responses' implicit reward is
# *expected* to fall during DPO — so a falling chosen log-ratio is normal, not by itself a failure. Here
# $y_w$ and $y_l$ usually share most of their tokens (the same frames, many of the same adjectives).
#
# Is it here? The left panel follows the chosen and rejected log-ratios over training (batch means, smoothed
# over 20 steps). The other two compare, for every one of the training pairs, the policy's log-probs before
# (= the reference's, cached) and after training.

# %% id="demo-09"
import matplotlib.pyplot as plt
import numpy as np

beta = DEFAULT_DPO.beta
steps, chosen_reward = history.series("rewards/chosen")
rejected_reward = history.values("rewards/rejected")
window = 20
smooth = lambda v: np.convolve(np.asarray(v) / beta, np.ones(window) / window, mode="valid")   # log-ratio, unscaled
s_steps = steps[window - 1:]
chosen_lr, rejected_lr = smooth(chosen_reward), smooth(rejected_reward)

logp_pol_chosen, logp_pol_rejected = reference_logps(policy, train_pairs, tokenizer)  # the trained policy's, (N,) each
d_chosen, d_rejected = logp_pol_chosen - logp_ref_chosen, logp_pol_rejected - logp_ref_rejected  # log-ratios after training

fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(9.4, 4.6))
ax1.plot(s_steps, chosen_lr, label="chosen log-ratio  log π/π_ref (y_w)")
ax1.plot(s_steps, rejected_lr, label="rejected log-ratio (y_l)")
ax1.plot(s_steps, chosen_lr - rejected_lr, ls="--", c="0.4", label="margin = chosen − rejected")
ax1.axhline(0, c="k", lw=0.8)
ax1.set(xlabel="step", ylabel="nats (batch mean, 20-step average)", title="during training")
ax1.legend(fontsize=9, loc="upper center", bbox_to_anchor=(0.5, -0.16), frameon=False)

ax2.scatter(logp_ref_chosen, logp_pol_chosen, s=4, alpha=0.3, label="chosen y_w")
ax2.scatter(logp_ref_rejected, logp_pol_rejected, s=4, alpha=0.3, label="rejected y_l")
lims = [min(logp_ref_chosen.min(), logp_ref_rejected.min(), logp_pol_rejected.min()).item(),
        max(logp_ref_chosen.max(), logp_ref_rejected.max()).item()]
ax2.plot(lims, lims, c="k", lw=0.8, label="unchanged")
ax2.set(xlabel="log π_ref(y|x)  (before)", ylabel="log π_θ(y|x)  (after)", title="each training pair: log-probs")
ax2.legend(fontsize=9, markerscale=3)

bins = np.linspace(min(d_rejected.min(), d_chosen.min()).item(), max(d_rejected.max(), d_chosen.max()).item(), 60)
ax3.hist(d_chosen.numpy(), bins=bins, alpha=0.6, label="chosen")
ax3.hist(d_rejected.numpy(), bins=bins, alpha=0.6, label="rejected")
ax3.axvline(0, c="k", lw=0.8)
ax3.set(xlabel="log-ratio after training (nats)", ylabel="pairs", title="each training pair: log-ratio")
ax3.legend(fontsize=9)
fig.tight_layout()

print("steps      rewards/chosen  chosen log-ratio  logps/chosen  logps/rejected   (batch means over the steps)")
for lo, hi in [(1, 20), (21, 60), (61, 100), (101, 150), (151, 200)]:
    mean = lambda name, lo=lo, hi=hi: statistics.fmean(v for s, v in zip(*history.series(name)) if lo <= s <= hi)
    print(f"{lo:>3}–{hi:<3}  {mean('rewards/chosen'):+16.3f}  {mean('rewards/chosen') / beta:+16.2f}  "
          f"{mean('logps/chosen'):12.2f}  {mean('logps/rejected'):14.2f}")
peak = int(np.argmax(chosen_lr))
print(f"chosen log-ratio, 20-step average: peaks at {chosen_lr[peak]:+.2f} nats (step {s_steps[peak]}), "
      f"ends at {chosen_lr[-1]:+.2f};  rejected ends at {rejected_lr[-1]:+.2f}")
print(f"over all {len(train_pairs)} training pairs after training:")
print(f"  log π(y_w) fell for {(d_chosen < 0).float().mean():.1%} of pairs (median change {d_chosen.median():+.2f} nats)")
print(f"  log π(y_l) fell for {(d_rejected < 0).float().mean():.2%} of pairs, all but {int((d_rejected >= 0).sum())} "
      f"(median change {d_rejected.median():+.2f} nats)")
print(f"  the margin is positive for {((d_chosen - d_rejected) > 0).float().mean():.0%} of pairs")

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-10", "locked": true, "schema_version": 3, "solution": false}
# So yes — this run shows it, and the cell prints the figures. For the first tens of steps the chosen
# log-ratio rises a little, as you would naively expect; then it turns, and by the end the chosen responses of
# most pairs are *less* likely than under the reference, while the rejected responses fell for nearly every
# pair, and by several times more (compare the two medians). Section 7's study finds the same in each of three
# seeds. The margin grew because the rejected fell faster, not because the chosen rose. (The batch means of
# `logps/chosen` show the same drift, but noisily: each batch holds different pairs of different lengths.
# The log-ratio subtracts each pair's own reference value, which is why it is the metric to watch.)
#
# Where did the probability go? Not to the chosen responses, and not to any other training response: it went
# to new text — the longer, more positive, sometimes ungrammatical samples of section 5. Here that is fine,
# even the point: the chosen responses were only the best of four SFT samples, and the policy found better
# ones; the drop in grammaticality printed in section 5 is the price of the KL printed next to it.
#
# **When it matters.** When the chosen responses are what you actually want the model to say — a curated
# gold answer, the one correct solution to a maths problem, a required format — a run whose
# `rewards/chosen` sinks well below zero is moving mass *away* from them, to something neither you nor the
# data vouched for. It is worst when chosen and rejected differ in a few tokens only (they then share almost
# all gradients). Watch `rewards/chosen` in every run; the usual remedies are a larger $\beta$, fewer steps, or
# a supervised term on the chosen responses added to the loss — the next section measures that one.

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-rpo", "locked": true, "schema_version": 3, "solution": false}
# ## 7. The NLL-regularised fix (RPO), measured
#
# The simplest remedy adds a supervised term on the chosen response to the DPO loss. RPO (Pang et al. 2024,
# *Iterative Reasoning Preference Optimization*) trains on
#
# $$\mathcal{L} = \mathcal{L}_\text{DPO} + \alpha\cdot\Big(-\frac{\log \pi_\theta(y_w|x)}{|y_w|}\Big),$$
#
# the DPO loss plus α times the chosen response's negative log-likelihood per token (α = 1 in the paper).
# TRL 1.16 has no `rpo_alpha`: there the same loss is `loss_type=["sigmoid", "sft"]` with
# `loss_weights=[1.0, α]`, and its NLL term averages over all the chosen tokens of a batch, where the course
# averages per response, then over the batch (lesson 11). The extra term pulls $\log \pi(y_w)$ up directly, so the loss can no longer fall for
# free while it sinks. (DPO-Positive does the same with a one-sided penalty that acts only once
# $\log \pi(y_w)$ is below $\log \pi_\text{ref}(y_w)$.) In the course it is one option: `DPOConfig(rpo_alpha=1.0)`.
#
# Measuring it takes more training than this notebook can afford, so the course ships a small study
# (`rlhf_core/assets/displacement_study.json`, written by `python -m rlhf_core.course.studies --only displacement`,
# a few minutes on 2 cores): this lesson's run at three seeds — seed 0 is the run above, on the same pairs —
# and, at each seed, the same run with `rpo_alpha = 1`. Per training pair: how the log-probs moved. On
# held-out samples (4 per prompt, as in section 5): reward, KL, grammar and length, before (the SFT model)
# and after. The figures are the shipped study's, made on the machine that made the shipped data; set
# `RECOMPUTE = True` to rerun it.

# %% id="demo-rpo"
from rlhf_core.course.studies import load_displacement_study, run_displacement_study
from rlhf_core.metrics import MetricsHistory

RECOMPUTE = False    # True: rerun the study's three seeds (a few minutes on 2 cores) instead of loading the shipped one
study = run_displacement_study() if RECOMPUTE else load_displacement_study()

print(f"{'seed':<5}{'run':<22}{'y_w fell':>9}{'median Δ log π(y_w)':>21}{'median Δ log π(y_l)':>21}{'margin > 0':>11}"
      f"{'reward':>8}{'KL':>6}{'gramm.':>8}{'words':>7}")
for run in study["seeds"]:
    b = run["before"]
    print(f"{run['seed']:<5}{'SFT model (before)':<22}{'':>62}{b['reward']:+8.2f}{b['kl']:6.1f}{b['grammatical']:8.0%}{b['words']:7.1f}")
    for name, v in run["variants"].items():
        p, a = v["pairs"], v["after"]
        print(f"{'':<5}{name:<22}{p['chosen_fell']:9.0%}{p['chosen_median_change']:+21.2f}{p['rejected_median_change']:+21.2f}"
              f"{p['margin_positive']:11.0%}{a['reward']:+8.2f}{a['kl']:6.1f}{a['grammatical']:8.0%}{a['words']:7.1f}")

shipped = study["seeds"][0]["variants"]["DPO"]["pairs"]
print(f"\nthis notebook's run against the study's seed 0 (the same run): y_w fell for {(d_chosen < 0).float().mean():.0%} "
      f"vs {shipped['chosen_fell']:.0%} of pairs, median Δ log π(y_w) {d_chosen.median():+.2f} vs "
      f"{shipped['chosen_median_change']:+.2f}, median Δ log π(y_l) {d_rejected.median():+.2f} vs {shipped['rejected_median_change']:+.2f}")

fig, axes = plt.subplots(1, 2, figsize=(9.4, 4.4))
for run in study["seeds"]:
    for name, v in run["variants"].items():
        h, b = MetricsHistory.from_dict(v["history"]), v["config"]["beta"]
        steps = h.series("rewards/chosen")[0][window - 1:]
        style = dict(c="tab:blue" if name == "DPO" else "tab:orange", alpha=0.8, lw=1.2,
                     label=name if run["seed"] == 0 else None)
        for ax, side in zip(axes, ("chosen", "rejected")):
            values = np.convolve(np.asarray(h.values(f"rewards/{side}")) / b, np.ones(window) / window, mode="valid")
            ax.plot(steps, values, **style)
for ax, side in zip(axes, ("chosen y_w", "rejected y_l")):
    ax.axhline(0, c="k", lw=0.8)
    ax.set(xlabel="step", ylabel="log π/π_ref (nats, batch mean, 20-step average)", title=f"{side}: three seeds each")
    ax.legend(fontsize=9)
fig.tight_layout()

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-rpo-2", "locked": true, "schema_version": 3, "solution": false}
# What the shipped study shows, in each of its three seeds (this notebook's run is its seed 0, and the line
# under the table compares the two):
#
# - **Plain DPO displaces in every seed.** The chosen log-prob fell for about three pairs in four, by a median
#   of a little under 2 nats; the rejected fell for all but a handful of pairs, by a median of about 8.
# - **RPO holds the chosen responses where the reference had them**: about half of them fell and half rose,
#   with a median change within a few tenths of a nat of zero. The rejected still fall, about half as far,
#   and the training pairs are separated as often as with DPO (the `margin > 0` column).
# - **It is a trade, not a free gain.** On held-out samples RPO stays much closer to the reference — about a
#   third of DPO's KL, nearly every sample grammatical, reviews no longer than the SFT model's, where DPO's
#   grew by three to four words — and it collects less reward. Lesson 09's frontier puts DPO at a larger β in
#   about the same place, so read RPO as another point on the reward–KL trade-off whose particular virtue is
#   that the responses the data vouched for stay likely: what you want when they are gold answers.

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-onpolicy", "locked": true, "schema_version": 3, "solution": false}
# ## 8. What an interviewer asks next: on-policy data, and the implicit reward as a reward model
#
# Two questions follow a DPO run in an interview, and the course can measure both.
#
# **Off-policy or on-policy data.** The pairs above were sampled from the SFT model once, before training: for
# every step after the first they are *off-policy* data. After 200 steps the policy writes other text (section 5:
# longer, more positive), where no pair says anything. Xu et al. 2024 (*Is DPO Superior to PPO for LLM
# Alignment? A Comprehensive Study*) trace much of DPO's gap to PPO to this distribution shift, and Tajwar et al.
# 2024 (*Preference Fine-Tuning of LLMs Should Leverage Suboptimal, On-Policy Data*) find that sampling from the
# policy being trained helps. The common fix is **iterative (online) DPO**: train a round, sample fresh pairs from
# the new policy, label them, train again — and, in most recipes, make the last round's policy the reference of
# the next. That is the one place a reference moves: frozen within a round, replaced between rounds. (TRL's
# `sync_ref_model` moves it during training instead: lesson 11.)
#
# The shipped study (`rlhf_core/assets/on_policy_study.json`, written by
# `python -m rlhf_core.course.topic_studies --only on_policy`, a few minutes per seed on 2 cores) runs one round of
# it. Round 1 is this lesson's run (seed 0 is the run above, on the same pairs; seed 1 is a second one). From the
# round-1 policy, three second rounds of the same 200 steps change one thing at a time: the **offline** arm trains
# on the original pairs again (400 steps of offline DPO in all); the **on-policy** arm on fresh pairs built by the
# same recipe from the round-1 policy's own samples, still against the SFT model; the **iterative** arm on the same
# fresh pairs, with the round-1 policy as its frozen reference. Every policy is scored on the held-out prompts,
# 16 samples each, against the SFT model, whatever its own reference was. The figures are the shipped study's,
# made on the machine that made the shipped data.

# %% id="demo-onpolicy"
from rlhf_core.course.topic_studies import load_on_policy_study

on_policy = load_on_policy_study()
print(f"held-out prompts, {on_policy['score_samples_per_prompt']} samples each, scored against the SFT model")
print(f"{'seed':<5}{'policy':<52}{'reward':>8}{'KL to SFT':>11}{'gramm.':>8}")
arm_names = {"offline": "round 2, offline: original pairs, SFT reference",
             "on-policy pairs": "round 2: on-policy pairs, SFT reference",
             "iterative": "round 2, iterative: on-policy pairs, round-1 reference"}
for run in on_policy["seeds"]:
    rows = [("SFT model", run["sft"]), ("round 1: the course default, 200 steps", run["round1"])]
    rows += [(arm_names[name], arm) for name, arm in run["round2"].items()]
    for i, (name, score) in enumerate(rows):
        print(f"{run['seed'] if i == 0 else '':<5}{name:<52}{score['reward']:+8.3f}{score['kl_to_sft']:11.2f}{score['grammatical']:8.0%}")
print("\npairs (best vs worst of 4, ties dropped)        n   reward of y_w   reward of y_l     gap")
for run in on_policy["seeds"]:
    for name, label in (("original", "original: SFT samples"), ("fresh", "fresh: round-1 policy's samples")):
        p = run["pairs"][name]
        print(f"seed {run['seed']} {label:<36}{p['n']:6d}{p['chosen_reward']:+16.3f}{p['rejected_reward']:+16.3f}{p['gap']:8.3f}")

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-onpolicy-2", "locked": true, "schema_version": 3, "solution": false}
# In both seeds:
#
# - **Fresh pairs win, by far.** On-policy pairs lift the held-out reward to 0.89–0.92 at a KL of 6.4–7.0 nats
#   to the SFT model, with 90–92 % of the samples grammatical — more than after round 1. Offline, the same 200
#   more steps on the original pairs reach only 0.66–0.68, at 14–16 nats, with 25–36 % grammatical: the longer
#   offline run drifts as lesson 09's long runs do. The fresh pairs are about what the policy does now: their chosen
#   responses score 0.74–0.76 where the original ones scored 0.36, and their rejected ones are the policy's own
#   worst samples, which the offline data never showed it.
# - **Moving the reference buys no reward here, and spends KL.** The iterative arm ends within 0.02 of the
#   on-policy arm's reward, but at 16.7–17.5 nats from the SFT model, with 30–40 % of its samples grammatical. Its
#   KL is charged against the round-1 policy, so the KL to the SFT model adds up over rounds: nothing holds the
#   policy near where it started. With the SFT model kept as the reference, on-policy data alone gave the gain.
#
# So "the reference is updated" is wrong about DPO within a round, where the reference is the frozen anchor, and
# describes iterative DPO between rounds — a method that then needs another guard on its drift (fewer steps per
# round, a larger β, or the first reference kept, as the on-policy arm does).
#
# **The implicit reward as a reward model.** A DPO policy defines a reward, $\hat r(x,y) = \beta\log\pi_\theta(y|x)/
# \pi_\text{ref}(y|x)$; ranking two responses by it is ranking by the margin. How good a reward model is it? Lin et
# al. 2024 (*On the Limited Generalization Capability of the Implicit Reward Model Induced by Direct Preference
# Optimization*) compare it with an explicit reward model trained on the same data: about as accurate on pairs
# like the training ones, less accurate once the responses shift. The study checks it on this task, where the
# labels come from the ground-truth reward. The explicit model is the SFT model with a linear head on its last
# token (`RewardHead`), trained with the Bradley–Terry loss on the same 2768 pairs with DPO's settings (200 steps,
# batch 32, AdamW 3e-4); the implicit one is the round-1 policy. Both rank three sets of pairs: the training
# pairs; the SFT model's samples on the held-out prompts (every untied pair of 4, about 1000 pairs: new prompts,
# the training pairs' distribution); and the round-1 policy's samples on the same prompts (shifted).

# %% id="demo-implicit-rm"
set_names = {"training pairs": "training pairs (SFT samples, best vs worst)",
             "SFT samples": "held-out prompts, SFT model's samples",
             "policy samples": "held-out prompts, round-1 policy's samples"}
print(f"{'seed':<5}{'pairs ranked by the ground-truth reward':<44}{'n':>6}{'mean gap':>10}{'implicit β log π/π_ref':>24}{'reward model':>14}")
for run in on_policy["seeds"]:
    for name, v in run["reward_models"]["sets"].items():
        print(f"{run['seed']:<5}{set_names[name]:<44}{v['n']:6d}{v['gap']:10.3f}{v['implicit']:24.1%}{v['explicit']:14.1%}")

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-onpolicy-3", "locked": true, "schema_version": 3, "solution": false}
# - On the training pairs and on the SFT model's held-out samples, the implicit reward ranks better in both seeds:
#   95 % and 81–82 % against the reward model's 92–93 % and 75–80 %.
# - On the policy's own samples both fall, to 60–68 %, the implicit reward further: from 81–82 % to 60–63 %, the
#   reward model from 75–80 % to 61–68 %. The reward model ranks them better in both seeds, by 5.5 and 1.2 points,
#   the second within the noise of 1000 pairs (a standard error of about 1.5 points). These pairs are also harder:
#   their reward gap averages about 0.2, against about 0.4 for the SFT model's samples.
#
# That is Lin et al.'s pattern at small scale: a DPO policy is a good reward model on data like its training
# pairs, and a weaker one on the responses it now writes — the very responses iterative DPO has labelled by a real
# judge instead. Here a separately trained reward model did no worse on them, and in one seed clearly better.

# %% [markdown] nbgrader={"grade": false, "grade_id": "takeaways", "locked": true, "schema_version": 3, "solution": false}
# ## Takeaways
#
# - A DPO run needs one model in three roles: the trainable policy, a frozen copy as reference
#   (`requires_grad` off, eval mode), and pairs of responses ranked by a reward or by people.
# - The reference's log-probs never change: compute them once for every pair and look them up. Stack chosen
#   and rejected into one $(2B, T)$ batch for a single policy pass. Together: 1.45× per step in the bench.
# - `dpo_step` is four lines of update and eight lines of metrics; the metrics are the half you need in
#   practice: loss from $\log 2$ down, accuracy up, unscaled margin in the 1–10 band (this task's β and
#   short reviews; it scales with $1/\beta$ and length), `rewards/rejected` falling faster than `rewards/chosen`.
# - The proof that DPO worked is not the training loss: it is the ground-truth reward of *sampled* responses
#   on held-out prompts, next to the KL that bought it (section 5 prints both; the bars: a rise of at least
#   one corpus std at under 10 nats, with three samples in four still grammatical).
# - Likelihood displacement is normal: the loss sees only the difference of the two log-ratios, and in
#   practice it falls mostly by pushing the rejected side down, with the chosen side often following (the
#   literature measures why: representation similarity, the two sides' gradients). It is harmless when
#   the chosen responses are merely better samples, and a warning sign when they are the answers you want;
#   an NLL term on the chosen responses (RPO: the course's `rpo_alpha`) is the direct fix — section 7 measures what it
#   costs and buys.
# - Offline pairs go stale as the policy moves. Fresh pairs from the current policy (one round of iterative DPO)
#   raised the held-out reward far more than more steps on the old pairs, at less KL; refreshing the reference
#   between rounds bought no more reward here and let the KL to the SFT model add up (section 8).
# - The implicit reward $\beta\log\pi_\theta/\pi_\text{ref}$ ranks pairs like its training pairs well and the
#   policy's own new samples much worse.
#
# ## Interview questions this prepares you for
#
# 1. Why cache the reference's log-probs, and what does it save? Why can you not cache the policy's?
# 2. Why concatenate chosen and rejected into one batch? What has to be true of the two for it to work?
# 3. Which metrics do you watch in a DPO run, and what do healthy values look like at step 0 and at the end?
# 4. What is likelihood displacement? Why does the DPO loss allow it, and when is it a problem?
# 5. What does adding an NLL term on the chosen responses (RPO) change, and what does it cost?
# 6. How do you know the policy improved if there is no reward model? (Here: a known ground-truth reward and
#    the reward–KL trade-off, as in the paper's sentiment task; in the paper's summarisation and dialogue
#    experiments: win rates against a baseline, judged by GPT-4 and checked against people.)
# 7. What does `train_dpo` add to a bare DPO step, and why does each addition matter?
# 8. Why do fresh samples from the current policy help DPO? What does refreshing the reference between rounds
#    change — is "the reference is updated" ever right?
# 9. Is a DPO policy a good reward model? Where does its implicit reward rank well, and where not?
