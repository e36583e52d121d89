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
# # 06 · The task, the tokenizer and SFT: the reference policy
#
# DPO never trains a model from nothing. It starts from a *reference policy* $\pi_\text{ref}$ — a model
# that already speaks the language of the task — and moves it towards preferred responses while the
# KL term (and hence $\beta$) keeps it close. In the paper that model comes from supervised fine-tuning
# (SFT): GPT-2-large fine-tuned on IMDb movie reviews. This notebook builds the course's offline
# analogue: a small language of movie reviews with a sentiment reward you can compute by hand, a
# word-level tokenizer, and the SFT step that turns a random transformer into the reference policy
# every later lesson starts from. It ends with the way that policy must be measured: on *sampled*
# text, never on its greedy output.
#
# **Goals**
# - know the task: its prompts, its grammar and its ground-truth reward — and why the reward is a mean, not a sum;
# - tokenize a review and lay it out as an SFT example;
# - implement `sft_step` (the loss on response tokens only) and watch a fresh model learn the language;
# - read the shipped reference policy through temperature-1 samples, and see why greedy decoding misleads.
#
# **Prerequisites:** notebook 04 (the shift and the response mask) and notebook 05 (`TinyLM`);
# a PyTorch training loop (`zero_grad`, `backward`, `step`).
#
# **Time:** about 45 minutes.

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-01", "locked": true, "schema_version": 3, "solution": false}
# ## 1. The task: the paper's IMDb experiment, offline
#
# In the paper's *controlled sentiment generation* experiment (§6.1), a prompt $x$ is the beginning of
# an IMDb movie review, the policy writes a continuation $y$, and the goal is a *positive* continuation.
# Whether it is positive is decided by a pre-trained sentiment classifier, which plays the
# **ground-truth reward** $r(x, y)$. Because the reward is known, the paper can measure what matters —
# the expected reward a policy reaches against its KL divergence from the reference — instead of asking
# people.
#
# The course keeps that structure and makes every part small enough for a CPU:
#
# | paper (IMDb) | this course (`rlhf_core.task`) |
# |---|---|
# | prefix of a real movie review | one of 216 prompts `[OPENER] the NOUN COPULA`, e.g. "honestly , the plot felt" |
# | GPT-2 writes the continuation | `TinyLM` (notebook 05) writes the rest of the review |
# | sentiment classifier = reward | a transparent rule: the mean sentiment of the adjective phrases, in $[-1, 1]$ |
# | SFT on IMDb reviews | SFT on reviews drawn from a small grammar (this notebook) |
#
# The responses follow a regular grammar (words are lowercase, and "," and "." are words too):
#
# ```
# AP        := [ "not" ] [ INTENSIFIER ] ADJECTIVE            good · very good · not very good
# AP_LIST   := AP ( ("and" | "but") AP ){0,2}                good but slow
# FRAME     := "the" NOUN COPULA | "i found it" | "overall it was" | "it was"
# SENTENCE  := FRAME AP_LIST "."                              the pacing felt slow .
# RESPONSE  := AP_LIST "." SENTENCE{0,2}        with 8 to 24 words in all
# ```
#
# The grammar knows nothing about sentiment. The *generator* of the corpus does: it first draws a latent
# sentiment for the review — positive (30 %), negative (30 %) or mixed (40 %) — and that sentiment
# colours the choice of every adjective phrase. `task.is_grammatical(prompt, response)` recognises the
# language exactly; we will use it to ask whether a model has learnt to write it.

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false}
# Setup: run this cell first. Where rlhf_core is missing (Colab, a fresh kernel) it installs the course
# library, keeping the torch already there; then it checks the environment and fixes the random seed.
COURSE_REPO_URL = "https://github.com/dpo-paper-to-code/dpo-paper-to-code"
SEED = 6
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
import statistics

import matplotlib.pyplot as plt
import pandas as pd
import torch
from rlhf_core import task

print(f"{len(task.PROMPTS)} prompts: {len(task.TRAIN_PROMPTS)} for training, "
      f"{len(task.HELDOUT_PROMPTS)} held out for evaluation")
print("for example:", " | ".join(task.PROMPTS[i] for i in (0, 40, 95, 150, 210)))
print(f"{len(task.ADJECTIVES)} adjectives ({len(task.POSITIVE)} positive, {len(task.NEGATIVE)} negative, "
      f"{len(task.NEUTRAL)} neutral), intensifiers: {', '.join(task.INTENSIFIERS)}\n")

rows = task.make_corpus(8, seed=SEED)                 # [{prompt, response, sentiment}, ...]
table = pd.DataFrame(rows)
table["grammatical"] = [task.is_grammatical(r["prompt"], r["response"]) for r in rows]
table

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-02", "locked": true, "schema_version": 3, "solution": false}
# ## 2. The ground-truth reward
#
# `task.reward(response)` scores every adjective phrase of the response and averages:
#
# 1. an adjective scores $+2$ (strong positive, "great"), $+1$ (mild, "good"), $0$ (neutral, "long"),
#    $-1$ (mild negative, "dull") or $-2$ (strong negative, "awful");
# 2. an intensifier right before it multiplies by $1.5$: "very good" $= +1.5$, "really awful" $= -3$;
# 3. "not" right before the (intensified) adjective multiplies by $-0.5$ — negation flips *and damps*:
#    "not bad" $= +0.5$, "not great" $= -1$, "not very good" $= -0.75$;
# 4. with phrase scores $s_1, \dots, s_k$,
#
# $$r(y) = \frac{1}{3}\cdot\frac{1}{k}\sum_{j=1}^{k} s_j \;\in [-1, 1] \qquad (r = 0 \text{ when } k = 0),$$
#
# where 3 is the largest possible $|s_j|$ (an intensified strong adjective). The prompt never enters the
# reward. `task.reward_breakdown(response)` lists the phrases with their scores, so you can check any
# reward by hand:

# %% id="demo-02"
examples = [
    "good . it was very long .",
    "not bad but quite dull .",
    "very good but not great . the pacing felt slow .",
    "great . i found it not bad .",
    "really awful and not very good .",
]
for response in examples:
    phrases = task.reward_breakdown(response)
    worked = " + ".join(f"{s:g}" for _, s in phrases)
    print(f"{response:<52} {phrases}")
    print(f"{'':<52} r = ({worked}) / {len(phrases)} / 3 = {task.reward(response):+.4f}")


# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-03", "locked": true, "schema_version": 3, "solution": false}
# ### Why a mean and not a sum
#
# A sum of phrase scores (or a count of positive words) would grow with every extra positive phrase, so
# a policy could raise its reward by simply writing **longer** reviews — the length exploitation that
# real RLHF runs are known for. With the mean, saying the same thing twice changes nothing, padding a
# review with a lukewarm sentence *lowers* the reward, and the only way up is to say *more positive*
# things. Below, one review and a few edits of it, scored both ways.

# %% id="demo-03"
def sum_reward(response):
    # the alternative we reject: add the phrase scores up instead of averaging them
    return sum(score for _, score in task.reward_breakdown(response)) / task.REWARD_SCALE


review = "great . i found it not bad ."
edits = {
    "the review": review,
    "said twice": review + " " + review,
    "said three times": " ".join([review] * 3),
    "+ a lukewarm sentence": review + " it was long .",
    "+ a more positive sentence": review + " the cast was brilliant .",
}
pd.DataFrame([{"edit": name, "response": text, "words": len(text.split()),
               "mean reward (the task's)": round(task.reward(text), 4), "sum reward": round(sum_reward(text), 4)}
              for name, text in edits.items()]).set_index("edit")

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-04", "locked": true, "schema_version": 3, "solution": false}
# The same effect across the corpus: within the positive reviews, the mean reward is uncorrelated with
# length, while a sum would be strongly correlated with it — a model could "earn" reward by talking more.

# %% id="demo-04"
corpus = task.make_corpus(4000, seed=0)                      # the reviews behind corpus_reward_stats()
positive = [row["response"] for row in corpus if row["sentiment"] == "positive"]
lengths = [len(text.split()) for text in positive]
print(f"correlation with length, {len(positive)} positive reviews:  "
      f"mean reward {statistics.correlation(lengths, [task.reward(t) for t in positive]):+.2f}   "
      f"sum reward {statistics.correlation(lengths, [sum_reward(t) for t in positive]):+.2f}")

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-05", "locked": true, "schema_version": 3, "solution": false}
# ### The reward over the corpus
#
# Each latent sentiment gives its own bump: positive reviews sit around $+0.5$, negative ones around
# $-0.5$, mixed ones around $0$. `task.corpus_reward_stats()` gives the overall mean and standard
# deviation; later lessons measure reward gains in units of that standard deviation. Moving *all* of a
# model's probability to positive reviews would raise the expected reward by about $0.53$, i.e. about
# $1.2$ standard deviations — for a KL cost of about $\log(1/0.3) \approx 1.2$ nats if nothing else
# changed. High reward is reachable by a modest shift of the distribution, as in the paper's experiment.

# %% id="demo-05"
stats = task.corpus_reward_stats()
print(f"corpus reward: mean {stats['mean']:+.3f}, std {stats['std']:.3f}")

corpus_rewards = [task.reward(row["response"]) for row in corpus]
bins = torch.linspace(-1, 1, 41).tolist()
fig, ax = plt.subplots(figsize=(7, 3.2))
for sentiment, color in zip(task.SENTIMENTS, ["C2", "C3", "C7"]):
    rs = [task.reward(row["response"]) for row in corpus if row["sentiment"] == sentiment]
    ax.hist(rs, bins=bins, alpha=0.6, color=color, label=f"{sentiment} ({len(rs)}), mean {statistics.fmean(rs):+.2f}")
ax.axvline(stats["mean"], c="k", ls="--", lw=1, label=f"overall mean {stats['mean']:+.2f}, std {stats['std']:.2f}")
ax.set(xlabel="reward r(y)", ylabel="reviews", title="reward of 4000 corpus reviews, by latent sentiment")
ax.legend(fontsize=9)
fig.tight_layout()

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-06", "locked": true, "schema_version": 3, "solution": false}
# ## 3. The tokenizer: one id per word
#
# The language is already split into words, so the tokenizer only numbers them
# (`rlhf_core.tokenizer.WordTokenizer`). Ids 0–3 are special tokens: `<pad>` fills batches on the right
# (the losses mask it out), `<bos>` starts every sequence, `<eos>` ends every response — generation
# stops there — and `<unk>` stands for a word outside the vocabulary. An SFT example is laid out as in
# notebook 04, `<bos> prompt response <eos>`, with a response mask that is 1 on the response and on
# `<eos>`: stopping is part of the answer.

# %% id="demo-06"
from rlhf_core.data import collate_sft, encode_example
from rlhf_core.tokenizer import WordTokenizer

tokenizer = WordTokenizer.for_task()
print(f"{tokenizer}: {len(tokenizer.SPECIALS)} specials + {len(tokenizer.words)} words")
print("special ids:", {t: tokenizer.token_to_id(t) for t in tokenizer.SPECIALS})

example = rows[0]
ids, response_mask = encode_example(tokenizer, example["prompt"], example["response"])
print("\ndecode(ids)                      :", repr(tokenizer.decode(ids)))
print("decode(ids, skip_special=False)  :", repr(tokenizer.decode(ids, skip_special=False)))
print("an unknown word becomes <unk>    :", tokenizer.encode("the film was mesmerizing"),
      "→", repr(tokenizer.decode(tokenizer.encode("the film was mesmerizing"))))
pd.DataFrame({"token": [tokenizer.id_to_token(i) for i in ids], "id": ids, "response_mask": response_mask}).T

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-07", "locked": true, "schema_version": 3, "solution": false}
# `collate_sft` does this for a list of `{prompt, response}` rows and pads them on the right into three
# `(B, T)` tensors: `input_ids`, `attention_mask` (1 on every real token) and `response_mask`.

# %% id="demo-07"
batch = collate_sft(rows[:3], tokenizer)
print({name: tuple(t.shape) for name, t in batch.items()})
print(batch["response_mask"])

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-08", "locked": true, "schema_version": 3, "solution": false}
# ## 4. The SFT loss
#
# SFT is maximum likelihood on the corpus, **conditional on the prompt**: the model learns
# $\pi(y \mid x)$, the distribution DPO will later treat as $\pi_\text{ref}$. With the whole sequence
# written $s_0, \dots, s_{T-1}$ and $m_t$ its response mask, the loss of a batch is the mean negative
# log-probability per response token:
#
# $$\mathcal{L}_\text{SFT}(\theta) = -\frac{\sum_{b}\sum_{t=1}^{T-1} m_{b,t}\,\log p_\theta\big(s_{b,t} \mid s_{b,<t}\big)}
# {\sum_{b}\sum_{t=1}^{T-1} m_{b,t}} .$$
#
# Prompt tokens are **context, not targets**: the model reads them but is never scored on predicting
# them — at generation time the prompt is given. The shift is the one from notebook 04: logit row $t-1$
# scores token $t$, and the mask moves with the tokens.
#
# | math | code | shape |
# |---|---|---|
# | $\log p_\theta(\cdot \mid s_{<t})$ for $t = 1..T-1$ | `torch.log_softmax(logits[:, :-1], dim=-1)` | `(B, T-1, V)` |
# | pick the actual token $s_t$ | `.gather(-1, input_ids[:, 1:, None]).squeeze(-1)` | `(B, T-1)` |
# | $m_{b,t}$, shifted with the tokens | `response_mask[:, 1:]` | `(B, T-1)` |
# | $-\sum m \log p \,/\, \sum m$ | `-(logp * mask).sum() / mask.sum()` | `()` |
#
# Two choices to notice. The average runs over **all response tokens of the batch at once** (not per
# sequence, then over sequences), so every token weighs the same. And it is an average, not a sum,
# unlike the summed log-probs DPO compares in notebook 04: a per-token mean keeps the loss's scale — and
# so the useful learning rate — independent of how long the responses in a batch happen to be.
#
# What masking the prompt means in practice: the shipped SFT model (trained with this loss) puts little
# probability on the *prompt* words — it was never asked to predict them — and that costs nothing.

# %% id="demo-08"
from rlhf_core.checkpoint import load_sft_model
from rlhf_core.logps import get_token_logps

sft, _, meta = load_sft_model()                      # the shipped reference policy (eval mode)
heldout_batch = collate_sft(task.make_corpus(256, seed=SEED, prompts=task.HELDOUT_PROMPTS), tokenizer)
with torch.no_grad():
    token_logps = get_token_logps(sft(heldout_batch["input_ids"], heldout_batch["attention_mask"]),
                                  heldout_batch["input_ids"])                       # (B, T-1)
response = heldout_batch["response_mask"][:, 1:].float()                            # (B, T-1)
prompt = heldout_batch["attention_mask"][:, 1:].float() - response                  # real, but not response
nll = lambda m: (-(token_logps * m).sum() / m.sum()).item()
print(f"nats per token on the response: {nll(response):.2f}   (what SFT trained)")
print(f"nats per token on the prompt  : {nll(prompt):.2f}   (never a target; a uniform guess would be "
      f"log {tokenizer.vocab_size} = {torch.log(torch.tensor(float(tokenizer.vocab_size))).item():.2f})")


# %% [markdown] nbgrader={"grade": false, "grade_id": "ex1-header", "locked": true, "schema_version": 3, "solution": false}
# ### Exercise 1 — `sft_step` · ★★☆ · 10 min
#
# Write one SFT update: the forward pass, the loss above, then `zero_grad`, `backward`, `step`. Return
# the loss as a plain Python float (`loss.item()`), which is what a training loop logs.

# %% nbgrader={"grade": false, "grade_id": "sft_step", "locked": false, "schema_version": 3, "solution": true}
def sft_step(model, batch, optimizer):
    """One SFT update on a collate_sft batch; returns the loss (a Python float).

    batch["input_ids"], batch["attention_mask"], batch["response_mask"]: (B, T), right-padded;
    response_mask is 1 on the response tokens and <eos>. model(input_ids, attention_mask) -> logits (B, T, V).
    loss = mean negative log-prob over the response tokens of the whole batch.
    """
    ### BEGIN SOLUTION
    input_ids = batch["input_ids"]                                        # (B, T)
    logits = model(input_ids, batch["attention_mask"])                    # (B, T, V)
    logprobs = torch.log_softmax(logits[:, :-1], dim=-1)                  # (B, T-1, V): row t predicts token t+1
    token_logps = logprobs.gather(-1, input_ids[:, 1:, None]).squeeze(-1)  # (B, T-1)
    mask = batch["response_mask"][:, 1:].to(token_logps.dtype)            # (B, T-1): shifted with the tokens
    loss = -(token_logps * mask).sum() / mask.sum()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
    ### END SOLUTION


# %% check="sft_step"

# %% [markdown] nbgrader={"grade": false, "grade_id": "ex1-hint", "locked": true, "schema_version": 3, "solution": false}
# <details><summary>Hint</summary>
#
# Four moves: `logits = model(ids, batch["attention_mask"])`; the log-probs of the tokens
# `ids[:, 1:]` under `logits[:, :-1]` (`torch.log_softmax(..., -1).gather(-1, ids[:, 1:, None]).squeeze(-1)`,
# or `rlhf_core.logps.get_token_logps(logits, ids)`); `mask = batch["response_mask"][:, 1:].float()`; and
# `loss = -(logp * mask).sum() / mask.sum()`. Then `optimizer.zero_grad()`, `loss.backward()`,
# `optimizer.step()`, `return loss.item()`. The check names the usual slips: an unshifted mask,
# `attention_mask` instead of `response_mask`, a sum instead of a mean, a forgotten `zero_grad`.
# </details>

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-09", "locked": true, "schema_version": 3, "solution": false}
# ## 5. Watch a fresh model learn the language
#
# A fresh `TinyLM` with the course's configuration (the one in `configs/sft.json`: $D = 128$, 2 layers,
# 4 heads) knows nothing: its loss starts near $\log V = \log 90 \approx 4.5$ nats. Below it trains for
# 200 steps on fresh batches of 64 corpus reviews, with your `sft_step` if it passes its check, AdamW at
# a constant learning rate of $3 \cdot 10^{-3}$. Every 50 steps the loop pauses to sample 4 reviews for
# each held-out prompt at temperature 1 and counts how many the grammar accepts. (10–20 s on a laptop CPU.)

# %% id="demo-09"
from tqdm.auto import tqdm
from rlhf_core.evaluation import sample_and_score
from rlhf_core.model import ModelConfig, TinyLM
from rlhf_core.course.notebook import yours_or_reference
from rlhf_core.train import SFTConfig

step = yours_or_reference("sft_step", sft_step)
config = SFTConfig()                                       # the shipped run's settings (configs/sft.json)
torch.manual_seed(SEED)
short_model = TinyLM(ModelConfig(vocab_size=tokenizer.vocab_size, **config.model))
optimizer = torch.optim.AdamW(short_model.parameters(), lr=config.lr, betas=(0.9, 0.95),
                              weight_decay=config.weight_decay)
STEPS, B = 200, config.batch_size
train_rows = task.make_corpus(STEPS * B, seed=SEED)       # a fresh batch of reviews at every step


def grammatical_fraction(model, n_per_prompt=4):
    # (fraction of grammatical T=1 samples on the held-out prompts, [(prompt, sample), ...])
    report = sample_and_score(model, model, tokenizer, task.HELDOUT_PROMPTS, n_per_prompt=n_per_prompt, seed=SEED)
    return report.summary()["eval/grammatical"], list(zip(report.prompts, report.responses))


short_losses, short_grammar = [], {}
short_model.train()
for i in tqdm(range(STEPS), desc="SFT, 200 steps"):
    short_losses.append(step(short_model, collate_sft(train_rows[i * B:(i + 1) * B], tokenizer), optimizer))
    if (i + 1) % 50 == 0:
        short_grammar[i + 1], short_samples = grammatical_fraction(short_model)
short_model.eval()
print(f"loss: step 1 {short_losses[0]:.3f} → step {STEPS} {statistics.fmean(short_losses[-20:]):.3f} (mean of the last 20)")
print("grammatical fraction of T=1 samples:", {s: f"{g:.0%}" for s, g in short_grammar.items()})

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-10", "locked": true, "schema_version": 3, "solution": false}
# The shipped reference policy was trained by `python -m rlhf_core.course.sft_checkpoint --config configs/sft.json`:
# the same model and batches of 64, but **1500** steps, with a learning-rate warm-up (50 steps), a cosine
# decay to $3 \cdot 10^{-4}$ and gradient clipping (`rlhf_core.train.train_sft`). Its checkpoint stores
# that config, its final figures and its loss at every step; below, the short run is drawn on top of it.

# %% id="demo-10"
shipped = {k: v for k, v in meta["metrics"].items() if k != "loss_curve"}
print("shipped SFT checkpoint:", {k: round(v, 4) for k, v in shipped.items()})
shipped_curve = meta["metrics"]["loss_curve"]

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9.4, 4))
ax1.plot(range(1, len(shipped_curve) + 1), shipped_curve, c="grey", lw=1, label="shipped run (1500 steps)")
ax1.plot(range(1, STEPS + 1), short_losses, c="C0", lw=1, label=f"your short run ({STEPS} steps)")
ax1.set(xscale="log", xlabel="step (log scale)", ylabel="loss (nats per response token)",
        title="the SFT loss flattens within ~100 steps")
ax1.legend()
ax2.plot(list(short_grammar), list(short_grammar.values()), "o-", c="C0", label="your short run")
ax2.plot([len(shipped_curve)], [shipped["grammatical_t1"]], "*", ms=14, c="grey", label="shipped model")
ax2.set(xscale="log", xlim=(30, 2500), ylim=(0, 1.02), xlabel="step (log scale)",
        ylabel="grammatical fraction", title="…but the grammar keeps improving")
ax2.legend(loc="lower right")
fig.tight_layout()

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-11", "locked": true, "schema_version": 3, "solution": false}
# (The shipped run starts more slowly because of its warm-up.) Look at the two panels together. After ~100 steps the loss is within a few hundredths of a nat of the
# shipped model's final $\approx 2.02$, yet more than one sample in ten is still ungrammatical at step
# 200; the shipped model gets that down to about one in fifty. Most of the remaining loss is the **irreducible entropy
# of the corpus** — which adjective, which frame, how many sentences are genuinely random choices, and
# no model can predict them — so the rare structural mistakes (a missing ".", a frame in the middle of a
# phrase list, a review of 27 words) move the loss very little. The lesson generalises: a flat loss does
# not tell you a language model is done; read its samples. A few from the short run:

# %% id="demo-11"
pd.DataFrame([{"prompt": p, "sample from the 200-step model": t, "grammatical": task.is_grammatical(p, t)}
              for p, t in short_samples[:24:3]])

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-12", "locked": true, "schema_version": 3, "solution": false}
# ### Why the reference is an SFT model
#
# DPO's loss compares the policy with $\pi_\text{ref}$ on the preference pairs, and its derivation
# assumes those pairs are responses $\pi_\text{ref}$ could have produced — in the paper's sentiment
# experiment, as in this course, they are samples of the SFT model ranked by the ground-truth reward. The paper therefore sets
# $\pi_\text{ref} = \pi_\text{SFT}$, and when no SFT model is available it first fits $\pi_\text{ref}$ by
# maximum likelihood on the *preferred* responses, to reduce the mismatch between the reference and the
# distribution the data came from. A model that cannot yet write the language would be a poor anchor:
# the KL term would hold the policy close to nonsense, and its samples would make pairs about grammar,
# not sentiment.
#
# ## 6. The shipped reference policy, read through its samples
#
# `rlhf_core.evaluation.sample_and_score` samples responses at temperature 1 for a list of prompts and
# scores each one: its reward, whether it is grammatical, and its log-probability under the policy and
# under a reference (for the KL estimate; here the reference is the model itself, so the KL is 0).
# Below, 8 samples for each of the 43 held-out prompts — prompts the model never saw in training.

# %% id="demo-12"
from rlhf_core.evaluation import sample_and_score

report = sample_and_score(sft, sft, tokenizer, task.HELDOUT_PROMPTS, n_per_prompt=8, seed=SEED)
summary = report.summary()
print(f"{len(report.responses)} samples: grammatical {summary['eval/grammatical']:.1%}, "
      f"reward mean {summary['eval/reward']:+.3f}, std {summary['eval/reward_std']:.3f}")
pd.DataFrame({"prompt": report.prompts, "response": report.responses, "reward": report.rewards,
              "grammatical": report.grammatical}).iloc[::43].round(3)

# %% id="demo-13"
fig, ax = plt.subplots(figsize=(7, 3.2))
ax.hist(corpus_rewards, bins=bins, density=True, alpha=0.5, color="C7",
        label=f"corpus: mean {statistics.fmean(corpus_rewards):+.2f}, std {statistics.pstdev(corpus_rewards):.2f}")
ax.hist(report.rewards, bins=bins, density=True, alpha=0.6, color="C0",
        label=f"SFT samples: mean {summary['eval/reward']:+.2f}, std {summary['eval/reward_std']:.2f}")
ax.set(xlabel="reward r(y)", ylabel="density", title="reward of T=1 samples from the SFT model vs the corpus")
ax.legend(fontsize=9)
fig.tight_layout()

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-13", "locked": true, "schema_version": 3, "solution": false}
# The samples are grammatical and centred where the corpus is, but their reward distribution is
# **narrower**: fewer reviews are clearly positive or clearly negative. A two-layer model writes the
# language well yet only partly learns to *stay in one sentiment* for a whole review ("amazing but
# boring but truly awful"), so more of its samples come out mixed. That is fine for what follows: DPO
# needs a reference that covers the language, and it will learn from pairs of these very samples which
# direction to move.
#
# ## 7. Why greedy samples mislead
#
# Greedy decoding takes the most probable token at every step. It is deterministic: one prompt, one
# response, whatever you do.

# %% id="demo-14"
from rlhf_core.data import sample_responses

prompt = task.HELDOUT_PROMPTS[0]
print(f"prompt: {prompt!r}")
for temperature in (0.0, 1.0):
    for text in sample_responses(sft, tokenizer, [prompt], n_per_prompt=3, temperature=temperature, seed=SEED):
        print(f"  T = {temperature:g}: {text:<66} r = {task.reward(text):+.3f}")

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-14", "locked": true, "schema_version": 3, "solution": false}
# Now greedy on all 43 held-out prompts. In this task the response does not depend on the prompt, and
# neither, almost, does the greedy response: a handful of distinct texts for 43 prompts. And the greedy
# reward has little to do with the policy's expected reward:

# %% id="demo-15"
from collections import Counter
from rlhf_core.data import collate_prompts

greedy = sample_and_score(sft, sft, tokenizer, task.HELDOUT_PROMPTS, n_per_prompt=1, temperature=0.0)
distinct = Counter(greedy.responses)
print(f"{len(greedy.responses)} prompts → {len(distinct)} distinct greedy response(s):")
for text, n in distinct.items():
    print(f"  {n:2d} × {text!r}   reward {task.reward(text):+.3f}")

prompt_ids, prompt_mask = collate_prompts([prompt], tokenizer)                # <bos> prompt: (1, Tp)
with torch.no_grad():
    first = torch.softmax(sft(prompt_ids, prompt_mask)[0, -1], dim=-1)        # (V,): the first response word
top = first.topk(6)
print("first word of the response:", ", ".join(f"{tokenizer.id_to_token(i)} {p:.0%}"
                                             for p, i in zip(top.values.tolist(), top.indices.tolist())))

fig, ax = plt.subplots(figsize=(7, 3.2))
ax.hist(report.rewards, bins=bins, alpha=0.6, color="C0", label="rewards of T=1 samples")
ax.axvline(summary["eval/reward"], c="C0", ls="--", label=f"expected reward ≈ {summary['eval/reward']:+.2f}")
ax.axvline(statistics.fmean(greedy.rewards), c="C3", lw=2.5, label=f"greedy reward {statistics.fmean(greedy.rewards):+.2f}")
ax.set(xlabel="reward r(y)", ylabel="samples", title="one greedy response vs the distribution it came from")
ax.legend(fontsize=9)
fig.tight_layout()

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-15", "locked": true, "schema_version": 3, "solution": false}
# "not" is the single most likely first word, at about 16 % — so greedy takes it, although 84 % of the
# samples start differently. Greedy follows the most probable *token* at each step; the result is
# neither the most probable response nor a typical one, and its reward is one point of the distribution,
# not its mean. The paper's frontier plots the **expected** reward $\mathbb{E}_{y \sim \pi(\cdot|x)}[r(x, y)]$
# against $\mathrm{KL}(\pi \,\|\, \pi_\text{ref})$, both averages over samples from the policy.
#
# Worse, greedy output and the policy can move independently. To show it without training anything,
# tilt the SFT model's next-token distribution by a fixed bias per word,
# $\pi'(w \mid \cdot) \propto \pi(w \mid \cdot)\, e^{b_w}$ (a per-token cousin of notebook 01's
# $\pi^* \propto \pi_\text{ref}\, e^{r/\beta}$): give the output head a bias vector $b$. Two tilts:
#
# - **sentiment**: $b = +1$ on every positive adjective, $-1$ on every negative one — a real change of policy;
# - **one word**: $b = -0.8$ on "not" only — a nudge to a single token.

# %% id="demo-16"
import copy


def tilted(model, bias):
    # a copy of `model` whose next-token logits get `bias` (V,) added: π'(w|·) ∝ π(w|·)·exp(bias[w])
    new = copy.deepcopy(model)
    head = torch.nn.Linear(model.config.d_model, model.config.vocab_size, bias=True)
    head.weight = new.tok_emb.weight                        # keep the tied output matrix
    with torch.no_grad():
        head.bias.copy_(bias)
    new.lm_head = head
    return new.eval()


sentiment_bias = torch.zeros(tokenizer.vocab_size)
for word, score in task.ADJECTIVES.items():
    sentiment_bias[tokenizer.token_to_id(word)] = (score > 0) - (score < 0)     # +1, -1 or 0
not_bias = torch.zeros(tokenizer.vocab_size)
not_bias[tokenizer.token_to_id("not")] = -0.8

comparison = [{"policy": "SFT (the reference)", "KL to SFT (nats)": report.kl, "expected reward (T=1)": summary["eval/reward"],
               "greedy response": greedy.responses[0], "greedy reward": greedy.rewards[0]}]   # measured above
for name, bias in [("sentiment tilt ±1", sentiment_bias), ("'not' −0.8", not_bias)]:
    policy = tilted(sft, bias)
    sampled = sample_and_score(policy, sft, tokenizer, task.HELDOUT_PROMPTS, n_per_prompt=8, seed=SEED)
    greedy_text = sample_responses(policy, tokenizer, [prompt], temperature=0.0)[0]
    comparison.append({"policy": name, "KL to SFT (nats)": sampled.kl, "expected reward (T=1)": sampled.summary()["eval/reward"],
                       "greedy response": greedy_text, "greedy reward": task.reward(greedy_text)})
print(f"greedy responses for {prompt!r}; expected rewards from {len(sampled.rewards)} samples per policy")
pd.set_option("display.max_colwidth", 70)
pd.DataFrame(comparison).set_index("policy").round(3)

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-16", "locked": true, "schema_version": 3, "solution": false}
# The sentiment tilt moves the policy by more than a nat of KL and raises its expected reward by about
# 0.35 — three quarters of a corpus standard deviation — and its greedy response does not change at all
# (it even contains two positive adjectives: both are *negated*). The one-word nudge costs a few
# hundredths of a nat and leaves the expected reward where it was — and its greedy response jumps from
# a clearly negative review ($-0.5$) to one with the highest reward there is ($+1$).
# Judged by greedy output, the first policy did nothing and the second was a triumph; the samples say
# the opposite. This is why **every evaluation in this course samples at temperature 1** and reports
# means over many samples (`evaluate_policy`, `sample_and_score`): it is the only reading that measures
# the distribution DPO actually changes.

# %% [markdown] nbgrader={"grade": false, "grade_id": "takeaways", "locked": true, "schema_version": 3, "solution": false}
# ## Takeaways
#
# - The course's task is an offline copy of the paper's IMDb experiment: prompts, a grammar of reviews,
#   and a ground-truth sentiment reward you can compute by hand (`task.reward_breakdown`).
# - The reward **averages** phrase scores: repeating a review leaves it unchanged and padding lowers it,
#   so length cannot be exploited; a sum would reward talking more.
# - SFT is conditional maximum likelihood: the mean negative log-prob per **response** token, with the
#   shift and the response mask of notebook 04. The prompt is context, never a target.
# - The SFT loss flattens long before the samples are right: read samples (the grammatical fraction), not
#   only the loss. The shipped reference writes grammatical reviews about 98 % of the time.
# - Evaluate a policy on temperature-1 samples. A greedy response is one deterministic point of the
#   distribution; a policy can change a lot while its greedy output does not, and the other way round.
#
# ## Interview questions this prepares you for
#
# 1. What is the reference policy in DPO, and why run SFT before DPO rather than start from a base model?
# 2. Why does the SFT loss mask the prompt tokens? What would go wrong if it did not?
# 3. Why evaluate on temperature-1 samples rather than greedy outputs? Give an example where the two disagree.
# 4. Why should a reward average over the response rather than sum? What behaviour does a summed reward invite?
# 5. The SFT loss is flat; is the model done? What would you look at?
