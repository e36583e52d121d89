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
# # 07 · Building preference pairs
#
# DPO learns from nothing but triples $(x, y_w, y_l)$: a prompt, a preferred response and a dispreferred
# one. Every number the loss computes, and everything the trained policy ends up believing, comes from
# those triples — so *where they come from* decides what DPO learns, and *how they are turned into
# tensors* decides whether the loss even scores the right tokens. This notebook builds pairs three ways
# (by hand, from an HH-style file, and from model samples ranked by a known reward), measures how much a
# popular shortcut — "human text is chosen, a model sample is rejected" — actually knows about the
# reward, and has you write the collator that turns pairs into the batch DPO trains on.
#
# **Goals**
# - hold pairs in the `{prompt, chosen, rejected}` schema as a `datasets.Dataset`, and read an
#   Anthropic-HH-style file offline, splitting each transcript pair at its shared prompt;
# - build pairs from model samples ranked by a known reward, both the way the paper's sentiment experiment
#   does (every pair of 4 samples per prompt) and the way this course does (best vs worst of $N$), and
#   compare how many pairs each gives and how wide their reward gaps are;
# - measure, with the ground-truth reward, what "human = chosen, model sample = rejected" pairs teach;
# - implement `collate_pairs`: `[BOS] prompt response [EOS]`, right padding to one common length, and the
#   two masks — and see why one length lets chosen and rejected share a single forward pass, and where the
#   prompt ends once the tokenizer is a subword one.
#
# **Prerequisites:** notebook 02 (the DPO loss takes summed log-probs of chosen and rejected responses),
# notebook 04 (a collated sequence, its attention and response masks, `get_logps`); notebook 06 helps
# (the shipped SFT model, which serves as the reference here).
#
# **Time:** about 50 minutes.

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-01", "locked": true, "schema_version": 3, "solution": false}
# ## 1. What a preference pair is
#
# A preference dataset is a set of triples
#
# $$\mathcal{D} = \big\{(x^{(i)},\, y_w^{(i)},\, y_l^{(i)})\big\}_{i=1}^{M},$$
#
# a prompt $x$, a response $y_w$ judged better ("won") and a response $y_l$ judged worse ("lost"), both
# answering *the same* prompt. The DPO loss reads one triple as one term
# $-\log\sigma\big(\beta[\log\tfrac{\pi_\theta(y_w|x)}{\pi_\text{ref}(y_w|x)} - \log\tfrac{\pi_\theta(y_l|x)}{\pi_\text{ref}(y_l|x)}]\big)$.
# In code, the whole course uses one schema:
#
# | math | code |
# |---|---|
# | $x$ | `row["prompt"]` (a string) |
# | $y_w$ | `row["chosen"]` (the response only, without the prompt) |
# | $y_l$ | `row["rejected"]` |
# | $\log \pi(y \mid x)$ | the summed log-prob of the response tokens of `[BOS] prompt response [EOS]` — `get_logps` (notebook 04) on the batch that `collate_pairs` (section 5) builds |
#
# Three things the schema does *not* hold: an absolute score (a pair only says which of two is better),
# a strength of preference (every pair counts the same in the loss), and ties. The labels are *hard*:
# every row says $y_w \succ y_l$ for certain, which is what the DPO loss takes. Under a hard label a pair
# of two equally good responses has no right direction — either label would be wrong — so it is left out
# of the set. That is a limit of hard labels, not a property of ties: a tie does say something (the two
# rewards are equal), and losses with soft labels use it. Given a tie as the label ½, conservative DPO
# (label smoothing, Mitchell 2023) and IPO (Azar et al. 2023) both pull its margin to 0; notebook 02
# measures it.
# Hugging Face's `datasets.Dataset` is the usual container; `pairs_dataset` builds one and refuses rows
# that lack a column.

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false}
# Setup: run this cell first. Where rlhf_core is missing (Colab, a fresh kernel) it installs the course
# library, keeping the torch already there; then it checks the environment and fixes the random seed.
COURSE_REPO_URL = "https://github.com/dpo-paper-to-code/dpo-paper-to-code"
SEED = 7
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
from rlhf_core.data import pairs_dataset

rows = [
    {"prompt": "the film was",
     "chosen": "great and very clever . the acting felt superb .",
     "rejected": "dull and slow . it was really bad ."},
    {"prompt": "i thought the ending was",
     "chosen": "charming but quite long . overall it was good .",
     "rejected": "silly and slow . it was not good ."},
    {"prompt": "honestly , the soundtrack seemed",
     "chosen": "beautiful . i found it really fun and engaging .",
     "rejected": "so flat . i found it very tedious and bland ."},
]
pairs = pairs_dataset(rows)
print(pairs)
print(pairs[0])

try:
    pairs_dataset([{"prompt": "the film was", "chosen": "great ."}])      # no "rejected"
except ValueError as err:
    print("\nValueError:", err)

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-02", "locked": true, "schema_version": 3, "solution": false}
# ## 2. A file in the Anthropic-HH format
#
# The paper's dialogue experiment uses Anthropic's Helpful-Harmless (HH) preference data. Its rows do not
# follow the schema above: each row holds **two whole transcripts**, `chosen` and `rejected`, that repeat
# the entire conversation and differ only in the assistant's last reply. The course ships a six-row file
# in that format (`HH_SAMPLE_PATH`); here is its first line, exactly as stored:

# %% id="demo-02"
import json
from rlhf_core.data import HH_SAMPLE_PATH

raw_line = HH_SAMPLE_PATH.read_text(encoding="utf-8").splitlines()[0]
print(raw_line)
raw = json.loads(raw_line)
print("\nkeys:", sorted(raw))
print("\n--- the chosen transcript, printed ---", raw["chosen"])
print("\n--- the rejected transcript, printed ---", raw["rejected"])

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-03", "locked": true, "schema_version": 3, "solution": false}
# To get back to `{prompt, chosen, rejected}`, `split_hh_transcript` finds the text the two transcripts
# share and cuts it at the **last `"\n\nAssistant:"` that lies wholly inside the shared part**. Everything
# up to and including that marker is the prompt; what follows is each response.
#
# Why not cut at the first differing character? Because the two replies often *start* the same way. In the
# two-turn example below both answers begin "the pacing felt"; the longest common prefix would swallow
# those words into the prompt, and the pair would compare the fragments "quick and engaging ." and
# "slow . i found it tedious ." instead of two whole replies. Cutting at the turn boundary keeps every word
# the assistant wrote inside the response, where the loss can see it.

# %% id="demo-03"
import os
from rlhf_core.data import split_hh_transcript

rows_hh = [json.loads(line) for line in HH_SAMPLE_PATH.read_text(encoding="utf-8").splitlines() if line.strip()]
two_turn = next(r for r in rows_hh if r["chosen"].count("\n\nAssistant:") == 2)

shared = os.path.commonprefix([two_turn["chosen"], two_turn["rejected"]])
cut = shared.rfind("\n\nAssistant:")
print("the longest common prefix ends with   :", repr(shared[-40:]))
print(f"the last shared '\\n\\nAssistant:' starts at character {cut} of {len(shared)} shared characters")

prompt, chosen, rejected = split_hh_transcript(two_turn["chosen"], two_turn["rejected"])
print("\nprompt  :", repr(prompt))
print("chosen  :", repr(chosen))
print("rejected:", repr(rejected))

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-04", "locked": true, "schema_version": 3, "solution": false}
# `load_preference_file` reads a JSON or JSONL file offline, accepts rows in either format (schema rows are
# kept as they are, HH transcripts are split) and returns a `Dataset`. `load_preference_dataset` does the
# same for a local path and, for anything else, asks the Hugging Face hub — the real data is
# `load_preference_dataset("Anthropic/hh-rlhf", split="test")`. This course runs offline, so the download
# below sits behind a switch that is off; turned on (with internet access) it returns the same three
# columns, tens of thousands of rows of them.

# %% id="demo-04"
import pandas as pd
from rlhf_core.data import load_preference_dataset, load_preference_file

pd.set_option("display.max_colwidth", 90)
pd.set_option("display.width", 200)

DOWNLOAD_FROM_HUB = False            # needs internet access; leave it off in the offline course
if DOWNLOAD_FROM_HUB:
    hh = load_preference_dataset("Anthropic/hh-rlhf", split="test")
else:
    hh = load_preference_file(HH_SAMPLE_PATH)        # the same as load_preference_dataset(HH_SAMPLE_PATH)
print(hh)
hh.to_pandas().assign(prompt=lambda d: d["prompt"].map(repr))

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-05", "locked": true, "schema_version": 3, "solution": false}
# ## 3. Pairs from a known reward: the paper's sentiment task
#
# In the paper's controlled-sentiment experiment no person labels anything. Its appendix (C.1) gives the
# recipe: the prompts are prefixes of IMDb reviews, 2 to 8 tokens long; the SFT model (GPT-2-large,
# fine-tuned on IMDb for one epoch) samples **4 completions for each of 25,000 prefixes**; and a pre-trained
# sentiment classifier (`siebert/sentiment-roberta-large-english`), standing in for the ground-truth
# reward, labels **all 6 pairs** of every prefix's 4 completions. Our toy task has the same structure with a
# reward you can check by hand (`rlhf_core.task.reward`, the mean sentiment of the adjective phrases, in
# $[-1, 1]$). For each prompt $x$, draw $N$ responses from the reference and score them:
#
# $$y_1, \dots, y_N \sim \pi_\text{ref}(\cdot \mid x), \qquad r_j = r(x, y_j).$$
#
# The paper keeps **every pair**, the better response chosen: $\{(y_i, y_j) : r_i > r_j\}$, up to
# $\binom{N}{2}$ per prompt. This course, by default, keeps **one pair per prompt, the best against the
# worst**:
#
# $$y_w = \arg\max_j r_j, \qquad y_l = \arg\min_j r_j,$$
#
# and drops the prompt when $r(x, y_w) = r(x, y_l)$, a tie (all $N$ samples scored the same). Both drop
# ties, for the reason of section 1: the losses here take hard labels.
#
# | step | code |
# |---|---|
# | $y_1..y_N \sim \pi_\text{ref}$, temperature 1 | `sample_responses(reference, tokenizer, prompts, n_per_prompt=N, seed=...)`, prompt-major |
# | $r(x, y_j)$ | `task.reward(text)` for each sample |
# | best vs worst (the default) | `pairs_from_samples(prompts, samples, N)`: sort each group by reward, take the two ends |
# | every pair (the paper's) | `pairs_from_samples(prompts, samples, N, pairing="all")` |
# | drop ties | keep a pair only if its reward gap exceeds `min_gap` |
# | sample and pair in one call | `pairs_by_reward(reference, tokenizer, prompts, n_samples=N, seed=..., pairing=...)` |
#
# Both responses come from the reference itself, so the pairs lie where the reference already puts its
# probability, and by construction the chosen one really is better. The reference is the shipped SFT model,
# frozen with `make_reference`.

# %% id="demo-05"
import random
import statistics
from rlhf_core import task
from rlhf_core.checkpoint import load_sft_model
from rlhf_core.data import pairs_by_reward, pairs_from_samples, sample_responses
from rlhf_core.train import make_reference

sft_model, tokenizer, _ = load_sft_model()
reference = make_reference(sft_model)                      # frozen: requires_grad False, eval mode
prompts = random.Random(0).sample(list(task.TRAIN_PROMPTS), 64)

# two steps, sample then pair; pairs_by_reward(reference, tokenizer, prompts, n_samples=4, seed=1) does both
samples = sample_responses(reference, tokenizer, prompts, n_per_prompt=4, seed=1)   # 4 per prompt, prompt 0's first
reward_pairs = pairs_from_samples(prompts, samples, n_samples=4)                    # best vs worst, the default
print(reward_pairs)
reward_pairs.to_pandas().head(5).round(3)

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-pairings", "locked": true, "schema_version": 3, "solution": false}
# ### Every pair, or best vs worst? The same samples, two data sets
#
# The two constructions start from the same samples and differ only in which pairs they keep. Below, both
# are built from the 256 samples just drawn: how many pairs each gives, and how far apart in reward its
# chosen and rejected responses are.

# %% id="demo-pairings"
import math

both = {"best_worst": reward_pairs, "all": pairs_from_samples(prompts, samples, n_samples=4, pairing="all")}
summary = []
for name, ds in both.items():
    gap = [c - r for c, r in zip(ds["chosen_reward"], ds["rejected_reward"])]
    summary.append({"pairing": name, "pairs": len(ds), "pairs per prompt": len(ds) / len(prompts),
                    "at most per prompt": 1 if name == "best_worst" else math.comb(4, 2),
                    "mean reward gap": statistics.fmean(gap), "smallest gap": min(gap)})
print(pd.DataFrame(summary).round(3).to_string(index=False))
print(f"\n'all' gives {len(both['all']) / len(both['best_worst']):.1f} times the pairs, with "
      f"{summary[1]['mean reward gap'] / summary[0]['mean reward gap']:.2f} times the mean gap")
keys = {name: {(r["prompt"], r["chosen"], r["rejected"]) for r in ds} for name, ds in both.items()}
print("every best-vs-worst pair is one of the 'all' pairs:", keys["best_worst"] <= keys["all"])

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-pairings-why", "locked": true, "schema_version": 3, "solution": false}
# **How they differ.** Every pair uses all the comparisons that four samples offer: close to six pairs per
# prompt (only tied samples drop out) for the same sampling cost. The extra pairs are the close ones — the
# second best against the third, say — so the mean gap is roughly half as large (the ratio is printed), and the DPO
# loss, which sees only the label, treats a pair whose rewards differ by a hair exactly like the widest one.
# The six pairs of a prompt also share their responses (each sample is in three of them), so they are not
# six independent lessons, and a prompt whose four samples all score differently counts six times where a
# prompt with ties counts fewer.
#
# Best vs worst keeps one pair per prompt, the widest: every prompt counts once, and each label sits on the
# largest difference those samples show — the comparison least sensitive to noise in the reward (the
# paper's reward is itself a classifier). The price is the other five comparisons the samples paid for. The
# course keeps it as its default for those two properties, and because its shipped study data and lessons
# 08 and 09 are built on it (`rlhf_core.recipes.reward_pairs`); `pairing="all"` gives the paper's
# construction from the same call.

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-06", "locked": true, "schema_version": 3, "solution": false}
# How many samples per prompt? A larger $N$ stretches the two ends apart: the best of 8 is better, and the
# worst of 8 worse, than the best and worst of 2. Ties also become rarer, since all $N$ samples must score
# the same for a prompt to be dropped. The price is $N$ samples per pair. Below, best vs worst with $N = 2, 4, 8$ on the
# same 64 prompts.

# %% id="demo-06"
import matplotlib.pyplot as plt
from tqdm.auto import tqdm

by_n = {4: reward_pairs}
for n in tqdm([2, 8], desc="sampling N = 2, 8"):
    by_n[n] = pairs_by_reward(reference, tokenizer, prompts, n_samples=n, seed=1)

table, gaps = [], {}
for n in sorted(by_n):
    ds = by_n[n]
    gaps[n] = [c - r for c, r in zip(ds["chosen_reward"], ds["rejected_reward"])]
    table.append({"N": n, "samples drawn": n * len(prompts), "pairs kept": len(ds),
                  "ties dropped": len(prompts) - len(ds),
                  "mean r(chosen)": statistics.fmean(ds["chosen_reward"]),
                  "mean r(rejected)": statistics.fmean(ds["rejected_reward"]),
                  "mean gap": statistics.fmean(gaps[n]), "median gap": statistics.median(gaps[n])})
print(pd.DataFrame(table).round(3).to_string(index=False))

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9.4, 3.4))
bins = [i / 20 for i in range(0, 37)]
for n in sorted(gaps):
    ax1.hist(gaps[n], bins=bins, histtype="step", lw=2, label=f"N = {n}")
ax1.set(xlabel="reward gap  r(chosen) − r(rejected)", ylabel="pairs", title="gap of each kept pair")
ax1.legend()
ns = sorted(by_n)
ax2.plot(ns, [row["mean r(chosen)"] for row in table], "o-", label="chosen (best of N)")
ax2.plot(ns, [row["mean r(rejected)"] for row in table], "o-", label="rejected (worst of N)")
ax2.axhline(task.corpus_reward_stats()["mean"], ls="--", c="grey", label="corpus mean")
ax2.set(xlabel="N samples per prompt", ylabel="mean reward", xticks=ns, title="the two ends spread apart")
ax2.legend(fontsize=9)
fig.tight_layout()

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-07", "locked": true, "schema_version": 3, "solution": false}
# Bigger gaps mean more confident pairs: under Bradley–Terry a gap of $\Delta$ says the chosen response
# wins with probability $\sigma(\Delta)$, so a pair with a large gap is a clear lesson and a pair with a
# tiny gap is close to a coin flip. But "best of 8" also picks responses from the far tails of what the
# reference writes. The course's standard run (`rlhf_core.recipes.reward_pairs`, used from lesson 08 on)
# takes best vs worst of $N = 4$.

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-08", "locked": true, "schema_version": 3, "solution": false}
# ## 4. The write-up's construction: human text chosen, a model sample rejected
#
# Many datasets have only one response per prompt (instruction data such as Alpaca: an instruction and a
# human-written answer). The from-scratch write-up this course draws on made pairs from such data by
# declaring the dataset's answer the winner and a sample of the frozen reference the loser, drawn at
# temperature 0.9 with top-$k$ 50:
#
# $$y_w = y^\text{dataset}, \qquad y_l \sim \pi_\text{ref}^{\,T=0.9,\ \text{top-}k\,50}(\cdot \mid x).$$
#
# The label claims $r(x, y_w) > r(x, y_l)$ for every pair, but nothing checks it. On our task the claim can
# be checked: the corpus reviews (`make_corpus`) play the human answers, `pairs_vs_reference_samples`
# samples the rejected side, and the ground-truth reward scores both.

# %% id="demo-07"
from rlhf_core.data import pairs_vs_reference_samples

corpus = task.make_corpus(192, seed=7)                     # {prompt, response, sentiment} rows: the "human" data
writeup_pairs = pairs_vs_reference_samples(reference, tokenizer, corpus, temperature=0.9, top_k=50, seed=3)

def ranking_report(ds, label):
    gap = [task.reward(c) - task.reward(r) for c, r in zip(ds["chosen"], ds["rejected"])]
    n = len(gap)
    print(f"{label:<34} {n:4d} pairs: chosen better {sum(g > 0 for g in gap) / n:6.1%}   "
          f"tie {sum(g == 0 for g in gap) / n:6.1%}   rejected better {sum(g < 0 for g in gap) / n:6.1%}")
    return gap

writeup_gap = ranking_report(writeup_pairs, "human chosen, sample rejected")
ranked_gap = ranking_report(reward_pairs, "reward-ranked (best vs worst of 4)")

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-09", "locked": true, "schema_version": 3, "solution": false}
# About half: on this task the "human = better" label is right about as often as a coin. That is no bug
# of the construction, it is what a *good* SFT model does — it was trained to imitate the corpus, so its
# samples have the same average sentiment as the corpus, and a random corpus review beats a random sample
# only about half the time. (In the write-up the model was much weaker and its samples were
# often incoherent, so there the human side did win on fluency; the better the reference, the less the
# label means.)
#
# So what *do* such pairs teach? Whatever systematically separates the two sides — and here the only
# thing that does is **where they came from**. Below, a few features of the chosen (corpus) and rejected
# (sampled) sides. The reference scores each response by its average log-prob per token
# (`reference_logps(..., average=True)`, one batched pass).

# %% id="demo-08"
from rlhf_core.train import reference_logps

ref_c, ref_r = reference_logps(reference, list(writeup_pairs), tokenizer, average=True)   # (M,), (M,)

def side_features(texts, prompts, ref_logp):
    return {"mean reward": statistics.fmean(task.reward(t) for t in texts),
            "mean |reward| (how one-sided)": statistics.fmean(abs(task.reward(t)) for t in texts),
            "grammatical": statistics.fmean(task.is_grammatical(p, t) for p, t in zip(prompts, texts)),
            "words": statistics.fmean(len(t.split()) for t in texts),
            "reference log-prob per token": ref_logp.mean().item()}

features = pd.DataFrame({
    "chosen (corpus)": side_features(writeup_pairs["chosen"], writeup_pairs["prompt"], ref_c),
    "rejected (T=0.9 sample)": side_features(writeup_pairs["rejected"], writeup_pairs["prompt"], ref_r),
})
print(features.round(3))
print(f"\npairs whose rejected side is MORE likely under the reference: {(ref_r > ref_c).float().mean().item():.1%}")

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9.4, 3.4))
bins = [i / 10 for i in range(-20, 21)]
ax1.hist(writeup_gap, bins=bins, alpha=0.6, label="human chosen, sample rejected")
ax1.hist(ranked_gap, bins=bins, alpha=0.6, label="reward-ranked, best vs worst of 4")
ax1.axvline(0, c="k", lw=1)
ax1.set(xlabel="true reward gap  r(chosen) − r(rejected)", ylabel="pairs", title="is the chosen one really better?")
ax1.legend(fontsize=9)
ax2.hist((ref_r - ref_c).tolist(), bins=30, color="C2")
ax2.axvline(0, c="k", lw=1)
ax2.set(xlabel="reference log-prob per token: rejected − chosen", ylabel="pairs",
        title="the sampled side is the more 'reference-like'")
fig.tight_layout()

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-10", "locked": true, "schema_version": 3, "solution": false}
# Read the table as DPO would. The reward column barely differs, so pushing chosen up and rejected down
# moves the policy almost nowhere on sentiment. What does differ is source: the sampled side is less
# one-sided (more hedged, "good but slow"-style reviews) and somewhat more probable under the reference
# than the corpus text is. DPO on these pairs therefore learns, above all, "**write less like my own
# samples**" — a push away from the reference's own habits, plus noise — not "write better reviews".
# Reward-ranked pairs avoid the confound: both sides are samples of the same model, so the only thing
# that separates them is the reward.
#
# Pairs of the write-up's kind are still used, and they can be fine when the gap in quality is real and
# large (a strong human answer vs a weak model). The lesson is to *measure* how often the label is right
# whenever you can, and to ask what, besides quality, tells the two sides apart.

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-11", "locked": true, "schema_version": 3, "solution": false}
# ## 5. From pairs to tensors
#
# The loss needs, for every pair, the summed log-prob of the chosen and of the rejected response. A
# language model scores a *sequence*, so each response is written after its prompt:
#
# $$s = \big[\texttt{<bos>},\ \underbrace{x_1, \dots, x_{|x|}}_{\text{prompt}},\ \underbrace{y_1, \dots, y_{|y|},\ \texttt{<eos>}}_{\text{response (counted)}}\big],
# \qquad T = \max_{i,\ \text{side}} |s^{(i)}_\text{side}|.$$
#
# All $2B$ sequences of a batch — chosen *and* rejected — are padded on the right to that one length $T$.
#
# | what | code |
# |---|---|
# | prompt part | `[tokenizer.bos_id] + tokenizer.encode(prompt)` |
# | response part, EOS included | `tokenizer.encode(response) + [tokenizer.eos_id]` |
# | $T$: longest of all chosen and rejected sequences | `max(len(s) for s in chosen_seqs + rejected_seqs)` |
# | right padding | `torch.full((B, T), tokenizer.pad_id)`, then `out[i, :len(s)] = s` |
# | `attention_mask` | 1 on every real token (BOS, prompt, response, EOS), 0 on padding |
# | `response_mask` | 1 on the response tokens and EOS, 0 on BOS, the prompt and padding |
#
# Why EOS belongs to the response: "stop here" is part of the answer. Without it, the loss never sees
# the model's probability of ending, and a policy trained on such pairs is free to ramble on.

# %% [markdown] nbgrader={"grade": false, "grade_id": "ex1-header", "locked": true, "schema_version": 3, "solution": false}
# ### Exercise 1 — `collate_pairs` · ★★☆ · 15 min
#
# Turn a list of rows `{prompt, chosen, rejected}` into six `(B, T)` `torch.long` tensors:
# `chosen_input_ids`, `chosen_attention_mask`, `chosen_response_mask`, and the same three for `rejected_`.
# Both sides share the prompt and the one length $T$. If `max_length` is given and $T$ exceeds it, raise
# a `ValueError` (the model cannot read longer sequences).

# %% nbgrader={"grade": false, "grade_id": "collate_pairs", "locked": false, "schema_version": 3, "solution": true}
import torch


def collate_pairs(examples, tokenizer, max_length=None):
    """Collate preference rows into one right-padded batch.

    examples: a list of B dicts with string values "prompt", "chosen", "rejected".
    tokenizer: a WordTokenizer (encode(text) -> list of ids; bos_id, eos_id, pad_id).
    Returns a dict of six (B, T) long tensors — f"{side}_input_ids", f"{side}_attention_mask" and
    f"{side}_response_mask" for side in ("chosen", "rejected") — where each sequence is
    [BOS] prompt response [EOS], T is the longest sequence of either side, padding is pad_id on the right,
    attention_mask is 1 on real tokens and response_mask is 1 on the response tokens and EOS.
    """
    ### BEGIN SOLUTION
    encoded = {}
    for side in ("chosen", "rejected"):
        rows = []
        for ex in examples:
            prompt_ids = [tokenizer.bos_id] + tokenizer.encode(ex["prompt"])
            response_ids = tokenizer.encode(ex[side]) + [tokenizer.eos_id]
            rows.append((prompt_ids + response_ids, [0] * len(prompt_ids) + [1] * len(response_ids)))
        encoded[side] = rows
    T = max(len(ids) for rows in encoded.values() for ids, _ in rows)
    if max_length is not None and T > max_length:
        raise ValueError(f"a pair needs {T} tokens, more than max_length={max_length}")
    batch = {}
    for side, rows in encoded.items():
        ids = torch.full((len(rows), T), tokenizer.pad_id, dtype=torch.long)   # (B, T)
        attention = torch.zeros(len(rows), T, dtype=torch.long)               # (B, T)
        response = torch.zeros(len(rows), T, dtype=torch.long)                # (B, T)
        for i, (row_ids, row_response) in enumerate(rows):
            n = len(row_ids)
            ids[i, :n] = torch.tensor(row_ids)
            attention[i, :n] = 1
            response[i, :n] = torch.tensor(row_response)
        batch[f"{side}_input_ids"] = ids
        batch[f"{side}_attention_mask"] = attention
        batch[f"{side}_response_mask"] = response
    return batch
    ### END SOLUTION


# %% check="collate_pairs"

# %% [markdown] nbgrader={"grade": false, "grade_id": "ex1-hint", "locked": true, "schema_version": 3, "solution": false}
# <details><summary>Hint</summary>
#
# Encode first, pad second. For each side build a list of `(ids, response_mask)` rows: the ids are
# `[bos_id] + encode(prompt) + encode(response) + [eos_id]`, the mask is 0 for each of the first
# `1 + len(encode(prompt))` positions and 1 for the rest. Only when *both* sides are encoded do you know
# `T = max(len(ids))` over all $2B$ rows. Then fill `torch.full((B, T), pad_id)` (and two `torch.zeros`)
# row by row: `out[i, :len(ids)] = torch.tensor(ids)`. If the check says the lengths differ, you took the
# maximum per side instead of over both sides.
# </details>

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-boundary", "locked": true, "schema_version": 3, "solution": false}
# ### Where the prompt ends, with a subword tokenizer
#
# `collate_pairs` encodes the prompt and the response **separately**, joins the ids, and puts the mask
# boundary where the prompt's ids end. With the course's word-level tokenizer that is the same as encoding
# the whole text `prompt + " " + response`: every word is one token, whatever surrounds it. A subword
# tokenizer (BPE, as GPT-2 and Llama use) is different. Its tokens are merges learned from text, the same
# word is written with different tokens depending on what comes before it, and a merge does not know where
# the prompt ends: in general $\text{encode}(x) + \text{encode}(y) \ne \text{encode}(x \,\|\, y)$, and one
# token of the whole text can *straddle* the boundary, holding the end of the prompt and the start of the
# response.
#
# The cell trains a byte-level BPE of 300 tokens on corpus reviews (GPT-2's scheme, in which a space is the
# first byte of the token after it; offline, a fraction of a second) and encodes the first reward-ranked
# pair of section 3 both ways, with the space between prompt and response in three places.

# %% id="demo-boundary"
try:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
except ImportError:                                  # part of the course's `hf` extra; Colab and Binder have it
    Tokenizer = None
    print("This demo needs the `tokenizers` package (pip install tokenizers); nothing after it does.")

if Tokenizer is not None:
    # a byte-level BPE, GPT-2's scheme: a space is the first byte of the token after it (shown as "Ġ")
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.train_from_iterator([f"{r['prompt']} {r['response']}" for r in task.make_corpus(1000, seed=0)],
                            trainers.BpeTrainer(vocab_size=300, show_progress=False))
    print(f"a BPE of {bpe.get_vocab_size()} tokens, trained on 1000 corpus reviews\n")

    pair = reward_pairs[0]
    cases = [("the course's schema: prompt, a space, response", pair["prompt"], " ", pair["chosen"]),
             ("the prompt carries the space", pair["prompt"] + " ", "", pair["chosen"]),
             ("the response carries the space", pair["prompt"], "", " " + pair["chosen"])]
    for number, (label, prompt, sep, response) in enumerate(cases, start=1):
        n_prompt = len(bpe.encode(prompt).ids)
        apart = bpe.encode(prompt).tokens + bpe.encode(response).tokens       # encode each part, join the ids
        whole = bpe.encode(prompt + sep + response)                              # encode the joined text
        start = len(prompt + sep)                                                # the response's first character
        straddle = [t for t, (a, b) in zip(whole.tokens, whole.offsets) if a < start < b]
        print(f"{number}. {label}: {prompt!r} + {sep!r} + {response[:24]!r}…")
        print(f"   apart, ids joined : {' '.join(apart[:n_prompt])} ‖ {' '.join(apart[n_prompt:n_prompt + 3])} …")
        print(f"   whole text at once: {' '.join(whole.tokens[:n_prompt + 3])} …")
        print(f"   same ids: {apart == whole.tokens} · straddling the boundary: {straddle or 'none'}\n"
              f"   a response mask of 1 after len(encode(prompt)) = {n_prompt} tokens of the whole text starts at "
              f"{whole.tokens[n_prompt]!r}\n")

    rows = list(reward_pairs)
    def differ(sep, lead):
        return sum(bpe.encode(x["prompt"]).ids + bpe.encode(lead + x["chosen"]).ids
                   != bpe.encode(x["prompt"] + sep + lead + x["chosen"]).ids for x in rows)
    print(f"the {len(rows)} pairs of section 3 under the BPE: the two encodings differ for {differ(' ', '')} of them "
          f"as in case 1, for {differ('', ' ')} as in case 3")
    same_words = sum(tokenizer.encode(x["prompt"]) + tokenizer.encode(x["chosen"])
                     == tokenizer.encode(x["prompt"] + " " + x["chosen"]) for x in rows)
    print(f"under the course's word tokenizer: the same ids for {same_words} of {len(rows)}")

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-boundary-fixes", "locked": true, "schema_version": 3, "solution": false}
# Case 1 is the course's own schema under a subword tokenizer. On its own, the response's first word has no
# space before it, so it is not written with the token the whole text uses (that one begins with the
# space): the ids differ for every pair. The straddling token holds only the joining space and the
# response's first word, so a mask after `len(encode(prompt))` tokens still starts in the right place.
# Case 2 is the dangerous one. A prompt that ends with a space (as a template like `"Answer: "` does) gives
# the whole text a token holding the prompt's last character and the response's first word; encoded alone,
# the prompt ends in an extra token of its own, a lone space. A mask of 1 after `len(encode(prompt))`
# tokens then starts one token late and the response loses its first token: the loss scores the wrong text,
# and nothing raises an error.
#
# The usual fixes:
#
# - **Tokenize the prompt and the response separately and concatenate the ids**, as `collate_pairs` does
#   (and TRL's `DPOTrainer.tokenize_row` did in earlier releases). The mask is exact by construction. The
#   price is case 1: the ids at the boundary can be a spelling the tokenizer would never produce for the
#   whole text, so the model is scored on a slightly unnatural sequence.
# - **Put the boundary on a space, and give the space to the response** (case 3). A byte-level tokenizer
#   always splits before a space, so no token crosses the boundary and the two encodings agree for every
#   pair. The TRL release the course pins (1.16) tokenizes `prompt + completion` as one string and starts
#   the completion where its ids stop matching the prompt's own (it warns when they differ); that is why
#   `rlhf_core.hf.trl_rows` gives every response its leading space before lesson 11 hands pairs to TRL.

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-12", "locked": true, "schema_version": 3, "solution": false}
# ## 6. A collated batch, seen
#
# Four pairs of different lengths — three reward-ranked pairs from section 3 and one with a short chosen
# and a long rejected response — go through your `collate_pairs` (if it passes its check). In each row of
# the pictures the token roles run left to right: `<bos>`, the prompt, the response, `<eos>`, then padding
# up to the common $T$.

# %% id="demo-09"
from matplotlib.colors import ListedColormap
from rlhf_core.course.notebook import yours_or_reference

collate = yours_or_reference("collate_pairs", collate_pairs)
examples = [dict(prompt=p["prompt"], chosen=p["chosen"], rejected=p["rejected"]) for p in list(reward_pairs)[:3]]
examples.append({"prompt": "the film was", "chosen": "great .", "rejected": "dull and slow . it was really bad . i found it awful ."})
batch = collate(examples, tokenizer)
for key, value in batch.items():
    print(f"{key:<24} {tuple(value.shape)}")

def roles(side):                                       # 0 pad, 1 bos, 2 prompt, 3 response, 4 eos
    ids, att, resp = (batch[f"{side}_{k}"] for k in ("input_ids", "attention_mask", "response_mask"))
    r = att * 2 + resp                                 # pad 0, prompt 2, response 3
    r = torch.where(ids == tokenizer.bos_id, 1, r)
    return torch.where(ids == tokenizer.eos_id, 4, r).numpy()

role_cmap = ListedColormap(["#f2f2f2", "#555555", "#9ecae1", "#fd8d3c", "#d62728"])
fig, axes = plt.subplots(2, 3, figsize=(9.4, 4.6), sharex=True)
for row, side in enumerate(["chosen", "rejected"]):
    panels = [(roles(side), role_cmap, 4, "token role"),
              (batch[f"{side}_attention_mask"].numpy(), "Greys", 1, "attention_mask (dark = 1)"),
              (batch[f"{side}_response_mask"].numpy(), "Oranges", 1, "response_mask (dark = 1)")]
    for ax, (img, cmap, vmax, title) in zip(axes[row], panels):
        ax.imshow(img, cmap=cmap, vmin=0, vmax=vmax, aspect="auto")
        ax.set(title=f"{side}: {title}", yticks=range(len(examples)), ylabel="pair" if title == "token role" else None)
for ax in axes[1]:
    ax.set_xlabel(f"position (T = {batch['chosen_input_ids'].shape[1]})")
handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in role_cmap.colors]
fig.legend(handles, ["pad", "<bos>", "prompt", "response", "<eos>"], loc="upper center", ncol=5, fontsize=9)
fig.tight_layout(rect=(0, 0, 1, 0.93))

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-13", "locked": true, "schema_version": 3, "solution": false}
# The last pair, token by token. Its chosen side ends at position 6 and is padded all the way to $T$:
# the length is set by the longest sequence of the whole batch, chosen *or* rejected — here a rejected
# response of another pair.

# %% id="demo-10"
from IPython.display import display

last = len(examples) - 1
table = pd.DataFrame({
    f"{side} {what}": ([tokenizer.id_to_token(i) for i in batch[f"{side}_input_ids"][last].tolist()] if what == "token"
                       else batch[f"{side}_{what}"][last].tolist())
    for side in ("chosen", "rejected") for what in ("token", "attention_mask", "response_mask")
}).T
with pd.option_context("display.max_columns", 64):
    display(table)

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-14", "locked": true, "schema_version": 3, "solution": false}
# ### Why one common $T$
#
# DPO needs four log-probs per pair, and two of them come from the policy — chosen and rejected. With both
# sides padded to the same $T$ they stack into one `(2B, T)` batch, and a single forward pass scores them
# all (`rlhf_core.logps.concatenated_logps`, which lesson 08's `dpo_step` uses). One pass instead of two
# means one set of weights read from memory, one larger and better-used matrix multiply, and the same
# normalisation for both halves. Tensors of different widths simply cannot be stacked. And the padding
# costs nothing in correctness: thanks to the masks, extra pad columns leave every log-prob unchanged.

# %% id="demo-11"
from rlhf_core.logps import get_logps
from rlhf_core.logps import concatenated_logps

with torch.no_grad():
    logp_chosen, logp_rejected = concatenated_logps(reference, batch)          # one pass over (2B, T)
    stacked = torch.cat([batch["chosen_input_ids"], batch["rejected_input_ids"]])
    print("stacked ids:", tuple(stacked.shape), " → logps", tuple(logp_chosen.shape), "+", tuple(logp_rejected.shape))

    separate = get_logps(reference(batch["chosen_input_ids"], batch["chosen_attention_mask"]),
                         batch["chosen_input_ids"], batch["chosen_response_mask"])
    print("one stacked pass == a chosen-only pass:", torch.allclose(logp_chosen, separate, atol=1e-5))

    extra = {k: torch.nn.functional.pad(v, (0, 5), value=tokenizer.pad_id if k.endswith("input_ids") else 0)
             for k, v in batch.items()}                                         # 5 more pad columns
    print("5 extra pad columns change nothing      :",
          torch.allclose(concatenated_logps(reference, extra)[0], logp_chosen, atol=1e-5))

try:
    torch.cat([batch["chosen_input_ids"][:, :-3], batch["rejected_input_ids"]])  # pretend chosen had its own T
except RuntimeError as err:
    print("\nwith two different lengths:", str(err).splitlines()[0])

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-plackett-luce", "locked": true, "schema_version": 3, "solution": false}
# ## 7. The whole ranking at once: the Plackett–Luce loss
#
# Best vs worst keeps one pair of the four samples; every pair keeps six overlapping ones. A third way
# uses the **ranking itself**. The paper's Appendix A.3 derives DPO for rankings of $K$ responses under the
# Plackett–Luce model, which reads a ranking $\tau$ (best first) as $K$ successive choices: first the best
# response out of all $K$, then the best of the $K-1$ left, and so on, each choice a softmax of the rewards
# of the responses **not yet placed**:
#
# $$p(\tau \mid x) = \prod_{k=1}^{K} \frac{\exp r(x, y_{\tau(k)})}{\sum_{j=k}^{K} \exp r(x, y_{\tau(j)})}.$$
#
# The same substitution as in lesson 02, $r = \beta \log \frac{\pi}{\pi_\text{ref}} + \beta \log Z(x)$, cancels
# $Z(x)$ again — it is added to every score of one prompt, and a softmax ignores a constant shift — so with
# $h_k = \beta\,(\log \pi(y_{\tau(k)} \mid x) - \log \pi_\text{ref}(y_{\tau(k)} \mid x))$ the loss is
#
# $$\mathcal{L}_\text{PL} = -\,\mathbb{E}\Big[\sum_{k=1}^{K} \Big(h_k - \log \sum_{j=k}^{K} e^{h_j}\Big)\Big].$$
#
# For $K = 2$ the first term is $-\log \sigma(h_1 - h_2)$ and the second is $0$ (a choice among one): exactly
# the DPO loss. When the policy equals the reference every $h_k$ is $0$, each choice is uniform among
# the responses left, and the loss is $\log K!$ ($\log 24 \approx 3.178$ for the four samples here).

# %% [markdown] nbgrader={"grade": false, "grade_id": "ex2-header", "locked": true, "schema_version": 3, "solution": false}
# ### Exercise 2 — `plackett_luce_loss` · ★★☆ · 15 min
#
# Write the Plackett–Luce DPO loss for a batch of rankings: `logp_pol` and `logp_ref` are `(B, K)` summed
# log-probs of $K$ responses to each of $B$ prompts, every row already ranked **best → worst** (column 0
# the preferred response). Return the mean over the $B$ prompts, a 0-dim tensor, finite for margins of
# ±1e4. For $K = 2$ it must equal `dpo_loss`.

# %% nbgrader={"grade": false, "grade_id": "plackett_luce_loss", "locked": false, "schema_version": 3, "solution": true}
import torch


def plackett_luce_loss(logp_pol, logp_ref, beta=0.1):
    """Mean Plackett–Luce (K-wise) DPO loss, a 0-dim tensor.

    logp_pol, logp_ref: (B, K) summed log-probs of K responses per prompt, each row ranked best → worst
    (column 0 the preferred one). For K = 2 it equals dpo_loss; it must stay finite for margins of ±1e4.
    """
    ### BEGIN SOLUTION
    h = beta * (logp_pol - logp_ref)                                # (B, K) implicit rewards, best first
    remaining = torch.logcumsumexp(h.flip(-1), dim=-1).flip(-1)     # (B, K) log Σ_{j ≥ k} exp(h_j)
    return -(h - remaining).sum(-1).mean()
    ### END SOLUTION


# %% check="plackett_luce_loss"

# %% [markdown] nbgrader={"grade": false, "grade_id": "ex2-hint", "locked": true, "schema_version": 3, "solution": false}
# <details><summary>Hint</summary>
#
# Compute the scores $h$ first, `(B, K)`. Position $k$'s denominator is a log-sum-exp over positions
# $k, k+1, \dots, K$ — a *suffix* of the row, not the whole row. `torch.logcumsumexp` gives prefixes:
# flip the last axis, take it, flip back. Then sum $h_k$ minus that over $k$, and average over the batch.
# Never `exp` then `log`: at margins of ±1e4 `exp` overflows.
# </details>

# %% id="demo-plackett-luce"
from rlhf_core.data import collate_pairs as library_collate_pairs
from rlhf_core.losses import dpo_loss
from rlhf_core.logps import concatenated_logps

pl_loss = yours_or_reference("plackett_luce_loss", plackett_luce_loss)
ranked = []                                            # (prompt, its 4 samples best → worst), no ties
for i, prompt in enumerate(prompts):
    group = samples[4 * i:4 * i + 4]
    scores = [task.reward(text) for text in group]
    if len(set(scores)) == 4:
        ranked.append((prompt, [text for _, text in sorted(zip(scores, group), key=lambda s: -s[0])]))
# score the 4 responses of each prompt under the reference: columns (0, 1) then (2, 3), two pairs a prompt
columns = []
for a, b in [(0, 1), (2, 3)]:
    rows = [{"prompt": p, "chosen": texts[a], "rejected": texts[b]} for p, texts in ranked]
    with torch.no_grad():
        columns += list(concatenated_logps(reference, library_collate_pairs(rows, tokenizer)))
logp_ref4 = torch.stack(columns, dim=-1)               # (B, 4) summed log-probs, best first
print(f"{len(ranked)} of {len(prompts)} prompts have four samples with four different rewards")
print(f"policy == reference: Plackett–Luce loss {pl_loss(logp_ref4, logp_ref4).item():.4f}, "
      f"log 4! = {math.log(24):.4f}")
# a policy a little away from the reference: K = 2 (best and worst only) is the DPO loss
logp_pol4 = logp_ref4 + torch.randn(logp_ref4.shape, generator=torch.Generator().manual_seed(0))
pol2, ref2 = logp_pol4[:, [0, 3]], logp_ref4[:, [0, 3]]
print(f"K = 2 on best and worst: {pl_loss(pol2, ref2).item():.6f}; "
      f"dpo_loss on the same pairs: {dpo_loss(pol2[:, 0], pol2[:, 1], ref2[:, 0], ref2[:, 1]).item():.6f}")

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-plackett-luce-why", "locked": true, "schema_version": 3, "solution": false}
# **What it buys, and what it costs.** One loss term per prompt now carries all three choices a ranking of
# four makes, where best vs worst keeps one comparison and "every pair" repeats each response in three
# terms that are not independent. The price is the ranking's demand: Plackett–Luce needs a *strict* order
# of all $K$, so a prompt with any tie among its samples drops out entirely (the count is printed above),
# and it trusts the middle of the ranking — second against third — as much as the top, where a noisy
# reward is least reliable. The paper derives the loss but runs its experiments on pairs.

# %% [markdown] nbgrader={"grade": false, "grade_id": "takeaways", "locked": true, "schema_version": 3, "solution": false}
# ## Takeaways
#
# - A preference pair is `{prompt, chosen, rejected}`: one shared prompt, two responses, and only the
#   *order* between them — no score, no strength. Under such hard labels a tie has no right direction and
#   is dropped; losses with soft labels (conservative DPO, IPO) can use ties, as margin-0 targets.
# - HH-style rows hold two whole transcripts; the prompt ends at the last `"\n\nAssistant:"` they share,
#   not at the first differing character, so each response stays whole.
# - Ranking a model's own samples with a known reward gives pairs whose chosen side is better by
#   construction. The paper labels all 6 pairs of 4 samples per prompt; the course keeps best vs worst (one
#   pair per prompt, the widest gap). `pairing="all"` builds the paper's set from the same samples: several
#   times the pairs, with roughly half the mean gap. Best vs worst of larger $N$ gives wider gaps and fewer
#   ties, at $N$ samples per pair.
# - "Human text = chosen, model sample = rejected" labels are only as right as the human side is better:
#   with a reference that imitates its data well they are close to a coin flip on the reward, and what
#   they mostly teach is the difference between human text and the model's own samples.
# - Collation: `[BOS] prompt response [EOS]`, right padding, `attention_mask` on real tokens,
#   `response_mask` on response + EOS, and one common $T$ for chosen and rejected so both go through the
#   model in one `(2B, T)` pass.
# - With a subword tokenizer, `encode(prompt) + encode(response)` is not `encode(prompt + response)`, and a
#   token can straddle the boundary. Encode the two parts separately and join the ids (the course), or give
#   the space to the response so that the boundary falls where the tokenizer splits.
# - A ranking of $K$ responses can train DPO directly: the Plackett–Luce loss (the paper's Appendix A.3) reads
#   it as $K$ successive softmax choices over the responses not yet placed; $Z(x)$ cancels as for pairs,
#   $K = 2$ is the DPO loss, and it is $\log K!$ when the policy equals the reference.
#
# ## Interview questions this prepares you for
#
# 1. What exactly does a preference pair contain — and what does it not contain?
# 2. Where did the preference pairs come from in the paper's three experiments (sentiment, TL;DR
#    summarisation, Anthropic HH dialogue)?
# 3. An instruction dataset has one human answer per prompt. Someone builds DPO pairs with the human
#    answer as chosen and a model sample as rejected. What are the risks, and how would you measure them?
# 4. Why is EOS appended to every response and counted in the response mask?
# 5. Why are chosen and rejected padded to the same length, and on which side?
# 6. What do you do with ties — why can a tie not simply be kept with an arbitrary label, and which losses
#    can use it?
# 7. Why can `encode(prompt) + encode(response)` differ from `encode(prompt + response)`, and how do you
#    build the response mask so that the difference does no harm?
# 8. Four samples per prompt are ranked by a reward. Write a loss that uses the whole ranking, say why
#    $Z(x)$ still cancels, and what it is when the policy equals the reference.
