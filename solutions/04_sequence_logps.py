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
# # 04 · Sequence log-probs: the shift and the mask
#
# Every DPO quantity — the loss, the implicit reward, the margins you log — is built from one number per
# sequence: $\log \pi(y \mid x)$, the log-probability the model gives the whole response. A causal
# language model does not hand you that number; it hands you a `(B, T, V)` tensor of logits, one row per
# position, and you have to line them up with the right tokens and keep only the response. Two
# off-by-one choices decide whether you get it right: which logit row scores which token (the *shift*),
# and which positions count (the *mask*). Get either wrong and nothing crashes, the loss still looks like
# a loss, and the model quietly learns from the wrong tokens. This notebook makes both explicit, has you
# write `get_logps`, and then breaks it on purpose so you know what the failure looks like.
#
# **Goals**
# - read a collated batch: `[BOS] prompt response [EOS]`, padding, attention mask, response mask;
# - write $\log \pi(y|x)$ as a sum over response tokens and say which logit row scores each token;
# - implement `get_logps` (sum or mean), test it against a slow per-token oracle;
# - recognise the unshifted-mask bug from its symptoms, and show that padding side does not matter;
# - decide between summed and averaged log-probs, and handle a row with no response tokens.
#
# **Prerequisites:** notebook 02 (the DPO loss takes summed log-probs of whole responses); PyTorch
# indexing (`[:, 1:]`, `gather`); what a causal language model's logits are.
#
# **Time:** about 45 minutes.

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-01", "locked": true, "schema_version": 3, "solution": false}
# ## 1. How a sequence is laid out
#
# The course's task is short movie reviews: a prompt such as *"frankly , the direction felt"* and a
# response such as *"superb . i found it weak but excellent ."* (`help(rlhf_core.task)` has the grammar). The
# tokenizer numbers words; ids 0–3 are the special tokens `<pad>`, `<bos>`, `<eos>`, `<unk>`.
# `rlhf_core.data.encode_example` turns a (prompt, response) into
#
# $$\underbrace{\texttt{<bos>}\ \ \text{prompt tokens}}_{\text{response mask } 0}\ \
# \underbrace{\text{response tokens}\ \ \texttt{<eos>}}_{\text{response mask } 1}$$
#
# The end-of-sequence token belongs to the **response**: stopping is part of the answer, and the model
# must be scored on it. The response mask is aligned with `input_ids` — entry $t$ says whether *token*
# $t$ is a response token.

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false}
# Setup: run this cell first. Where rlhf_core is missing (Colab, a fresh kernel) it installs the course
# library, keeping the torch already there; then it checks the environment and fixes the random seed.
COURSE_REPO_URL = "https://github.com/dpo-paper-to-code/dpo-paper-to-code"
SEED = 4
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
import pandas as pd
import torch
from rlhf_core import task
from rlhf_core.data import collate_pairs, encode_example
from rlhf_core.tokenizer import WordTokenizer

tok = WordTokenizer.for_task()
example = task.make_corpus(1, seed=0)[0]
ids, response_mask = encode_example(tok, example["prompt"], example["response"])
print(f"prompt   : {example['prompt']!r}\nresponse : {example['response']!r}\n")
pd.DataFrame({"token": [tok.id_to_token(i) for i in ids], "id": ids, "response_mask": response_mask}).T

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-02", "locked": true, "schema_version": 3, "solution": false}
# A batch holds sequences of different lengths, so `collate_pairs` pads them on the **right** with
# `<pad>` (id 0) to one common length $T$ — the chosen and the rejected response of a pair share that
# $T$, so both can go through the model in one `(2B, T)` forward pass. Two masks come with the ids:
# `attention_mask` is 1 on every real token (what the model may look at) and `response_mask` is 1 on the
# response and `<eos>` only (what the log-prob counts). Padding is 0 in both.

# %% id="demo-02"
import random

rng = random.Random(3)
prompt = example["prompt"]
pair = {"prompt": prompt,
        "chosen": task.sample_review(rng, "positive", prompt)[1],
        "rejected": task.sample_review(rng, "negative", prompt)[1]}
batch = collate_pairs([pair], tok)
print({k: tuple(v.shape) for k, v in batch.items()}, "\n")
columns = {}
for side in ("chosen", "rejected"):
    columns[side] = [tok.id_to_token(i) for i in batch[f"{side}_input_ids"][0].tolist()]
    columns[f"{side} attention_mask"] = batch[f"{side}_attention_mask"][0].tolist()
    columns[f"{side} response_mask"] = batch[f"{side}_response_mask"][0].tolist()
table = pd.DataFrame(columns)
table.index.name = "t"
table

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-03", "locked": true, "schema_version": 3, "solution": false}
# ## 2. The chain rule, and the shift
#
# A causal language model factorises the probability of a sequence token by token. For a response
# $y = (y_1, \dots, y_n)$ after a prompt $x$ (with `<eos>` as $y_n$),
#
# $$\log \pi(y \mid x) \;=\; \sum_{i=1}^{n} \log p_\theta\big(y_i \,\big|\, x,\ y_{<i}\big).$$
#
# In tensor terms, with the whole sequence written $s_0, s_1, \dots, s_{T-1}$ and $m_t$ its response mask:
#
# $$\log \pi(y \mid x) \;=\; \sum_{t=1}^{T-1} m_t \,\log \operatorname{softmax}\big(\text{logits}[t-1]\big)[s_t].$$
#
# The index $t-1$ is the **shift**: the model's output at position $t$ has read tokens $0..t$ and is its
# guess for token $t+1$. So token $t$ is scored by logit row $t-1$; token 0 (`<bos>`) is never scored;
# the last logit row predicts a token that is not there and is never used. In code, pair them by
# slicing both:
#
# | position $t$ | 0 | 1 | … | $t$ | … | $T-2$ | $T-1$ |
# |---|---|---|---|---|---|---|---|
# | `logits[:, :-1]` (rows 0..T−2) | row 0 | row 1 | … | row $t$ | … | row $T-2$ | — (dropped) |
# | `input_ids[:, 1:]` (what each row must predict) | $s_1$ | $s_2$ | … | $s_{t+1}$ | … | $s_{T-1}$ | |
# | `response_mask[:, 1:]` (does that token count?) | $m_1$ | $m_2$ | … | $m_{t+1}$ | … | $m_{T-1}$ | |
#
# The mask describes *tokens*, so once the tokens are shifted (`input_ids[:, 1:]`) the mask must be
# shifted with them (`response_mask[:, 1:]`). Below, the shipped SFT model scores our example; each line
# is one logit row and the token it predicts.

# %% id="demo-03"
from rlhf_core.checkpoint import load_sft_model

model, tok, _ = load_sft_model()                       # the reference policy of every DPO run in the course
ids_t = torch.tensor([ids])                            # (1, T)
mask_t = torch.tensor([response_mask])                 # (1, T)
with torch.no_grad():
    logits = model(ids_t, torch.ones_like(ids_t))      # (1, T, V): row t is a distribution over token t+1
print("logits:", tuple(logits.shape))

rows = []
for t in range(ids_t.shape[1] - 1):
    target = ids[t + 1]
    rows.append({"logit row": t, "has read up to": tok.id_to_token(ids[t]), "predicts token": t + 1,
                 "which is": tok.id_to_token(target),
                 "log p": round(torch.log_softmax(logits[0, t], -1)[target].item(), 3),
                 "counted (response_mask[t+1])": response_mask[t + 1]})
pd.DataFrame(rows).set_index("logit row")

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-04", "locked": true, "schema_version": 3, "solution": false}
# ## 3. A brute-force oracle
#
# Before vectorising anything, write the definition down as literally as possible: walk over every
# token, skip it unless it is a response token, and add the log-probability its *previous* row gave it.
# It is slow — one `log_softmax` per token — and obviously right, which makes it the yardstick for the
# fast version. `rlhf_core.logps.get_logps_loop` is the same loop for whole batches (in float64).

# %% id="demo-04"
from rlhf_core.logps import get_logps_loop


def logp_one_sequence(logits_row, ids_row, mask_row):
    # logits_row (T, V), ids_row (T,), mask_row (T,) -> a Python float
    total = 0.0
    for t in range(1, len(ids_row)):               # token 0 (<bos>) has no row before it
        if mask_row[t]:                            # only response tokens (and <eos>) count
            total += torch.log_softmax(logits_row[t - 1], -1)[ids_row[t]].item()
    return total


mine = logp_one_sequence(logits[0], ids, response_mask)
print(f"log π(y|x) by the loop above : {mine:.4f}")
print(f"rlhf_core's get_logps_loop   : {get_logps_loop(logits, ids_t, mask_t).item():.4f}")
print(f"per response token, on average: {mine / sum(response_mask[1:]):.3f} nats")


# %% [markdown] nbgrader={"grade": false, "grade_id": "ex1-header", "locked": true, "schema_version": 3, "solution": false}
# ### Exercise 1 — `get_logps` · ★★★ · 15 min
#
# Vectorise the oracle. From `logits` `(B, T, V)`, `input_ids` `(B, T)` and `response_mask` `(B, T)`
# (aligned with `input_ids`), return one number per sequence, shape `(B,)`:
#
# | step | math | shape |
# |---|---|---|
# | pair each row with its token | rows $0..T-2$ and the tokens they predict, $s_1..s_{T-1}$ | $(B, T-1, V)$, $(B, T-1)$ |
# | the token log-probs | $\ell_t = \log \operatorname{softmax}(\text{logits}[t-1])[s_t]$ for every $t$ | $(B, T-1)$ |
# | which tokens count | $m_t$, shifted with the labels | $(B, T-1)$ |
# | the sum | $\sum_t m_t \,\ell_t$ | $(B,)$ |
# | `average=True` | divide by $\max(1, \sum_t m_t)$ | $(B,)$ |
#
# The hint under the check has the code for each line.
#
# Requirements the check tests: right *and* left padding; a row with no response token gives 0 (never
# NaN, also when averaging); logits scaled ×100 stay finite; gradients flow back to `logits`.

# %% nbgrader={"grade": false, "grade_id": "get_logps", "locked": false, "schema_version": 3, "solution": true}
def get_logps(logits, input_ids, response_mask, average=False):
    """Per-sequence log-prob of the response: logits (B, T, V), input_ids (B, T), response_mask (B, T) -> (B,).

    logits[:, t] predicts token t+1; response_mask[b, t] == 1 when token t of row b is a response token
    (EOS included). Sum over those tokens (average=False) or take their mean (average=True); a row with
    no response token gives 0.
    """
    ### BEGIN SOLUTION
    labels = input_ids[:, 1:]                                              # (B, T-1): the predicted tokens
    token_logps = torch.log_softmax(logits[:, :-1].float(), dim=-1)        # (B, T-1, V)
    token_logps = token_logps.gather(-1, labels.unsqueeze(-1)).squeeze(-1)  # (B, T-1)
    mask = response_mask[:, 1:].bool()                                     # (B, T-1): shifted with the labels
    summed = torch.where(mask, token_logps, torch.zeros_like(token_logps)).sum(-1)  # (B,)
    if not average:
        return summed
    return summed / mask.sum(-1).clamp(min=1)
    ### END SOLUTION


# %% check="get_logps"

# %% [markdown] nbgrader={"grade": false, "grade_id": "ex1-hint", "locked": true, "schema_version": 3, "solution": false}
# <details><summary>Hint</summary>
#
# The table of the exercise, with its code:
#
# | math | code |
# |---|---|
# | rows $0..T-2$ and the tokens they predict | `logits[:, :-1]`, `labels = input_ids[:, 1:]` |
# | $\ell_t$ for every $t$ | `torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, labels.unsqueeze(-1)).squeeze(-1)` → `(B, T-1)` |
# | $m_t$, shifted with the labels | `mask = response_mask[:, 1:]` → `(B, T-1)` |
# | $\sum_t m_t \,\ell_t$ | zero the unmasked entries, then `.sum(-1)` → `(B,)` |
# | `average=True` | divide by `mask.sum(-1).clamp(min=1)` |
#
# The `gather` picks, in each row, the log-prob of the token that actually came next. Prefer
# `torch.where(mask.bool(), lp, 0)` over `lp * mask`: a `-inf` at a masked position times 0 is NaN. If the
# check says the mask is not shifted, you wrote `response_mask[:, :-1]` — section 5 is about exactly that.
# </details>

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-05", "locked": true, "schema_version": 3, "solution": false}
# ## 4. Yours against the oracle, on the SFT model
#
# A check on random logits is good; agreement with the per-token loop on a real model's logits, over a
# batch of ragged sequences, is the test you would write at work. Time both as well: the loop is the
# definition, the vectorised version is what training runs.

# %% id="demo-05"
import time
from rlhf_core.data import collate_sft
from rlhf_core.course.notebook import yours_or_reference

logps_fn = yours_or_reference("get_logps", get_logps)
sft_batch = collate_sft(task.make_corpus(32, seed=1), tok)       # 32 reviews, right-padded
with torch.no_grad():
    sft_logits = model(sft_batch["input_ids"], sft_batch["attention_mask"])   # (32, T, V)



def best_time(fn, repeats=5):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn(sft_logits, sft_batch["input_ids"], sft_batch["response_mask"])
        times.append(time.perf_counter() - start)
    return out, min(times)


fast, t_fast = best_time(logps_fn)
slow, t_slow = best_time(get_logps_loop)
print(f"batch {tuple(sft_batch['input_ids'].shape)}; first rows: {[round(v, 3) for v in fast[:4].tolist()]}")
print(f"largest |vectorised − loop| over 32 rows: {(fast.double() - slow).abs().max().item():.2e}")
print(f"vectorised {t_fast * 1e3:.1f} ms, loop {t_slow * 1e3:.0f} ms (best of 5)")


# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-06", "locked": true, "schema_version": 3, "solution": false}
# ## 5. The silent failure: a mask that was not shifted
#
# Shift the logits and the labels but forget the mask — pair `response_mask[:, :-1]` with
# `input_ids[:, 1:]` — and every mask entry lands one token too early. Entry $t$ now asks "is token $t$
# a response token?" while the value next to it scores token $t+1$. A token is counted when the token
# *before* it is a response token, so:
#
# - the **first** response token is dropped (the token before it is the last prompt token);
# - the token **after** `<eos>` is added: a `<pad>`, scored by the row at `<eos>` — a prediction nobody
#   trained — or nothing at all in the longest row of the batch, whose `<eos>` is the last column.
#
# The opposite slip — shifting a mask twice, for instance in the collator *and* again in `get_logps` —
# scores the last prompt token and drops `<eos>`. The table shows all three on the chosen row of the pair
# from section 1.

# %% id="demo-06"
def get_logps_unshifted(logits, input_ids, response_mask, average=False):
    # the bug: labels are shifted, the mask is not
    lp = torch.log_softmax(logits[:, :-1], -1).gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    mask = response_mask[:, :-1].to(lp.dtype)
    summed = (lp * mask).sum(-1)
    return summed / mask.sum(-1).clamp(min=1) if average else summed


ids_row = batch["chosen_input_ids"][0].tolist()
m = batch["chosen_response_mask"][0].tolist()
counted = {
    "right: response_mask[:, 1:]": [None] + m[1:],          # token t counts if m[t]
    "bug: response_mask[:, :-1]": [None] + m[:-1],          # token t counts if m[t-1]
    "bug: shifted twice": [None] + m[2:] + [0],             # token t counts if m[t+1]
}
table = pd.DataFrame({"token": [tok.id_to_token(i) for i in ids_row], "response_mask": m,
                      **{k: ["" if v is None else ("✓" if v else "") for v in col] for k, col in counted.items()}})
table.index.name = "t"
table

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-07", "locked": true, "schema_version": 3, "solution": false}
# The same comparison for a few rows of a batch: green tokens are counted by both versions, orange ones
# only by the correct one (dropped by the bug), red ones only by the bug.

# %% id="demo-07"
import matplotlib.pyplot as plt
from matplotlib.colors import ListedColormap

rng = random.Random(5)
demo_pairs = []
for p in task.TRAIN_PROMPTS[:3]:
    demo_pairs.append({"prompt": p, "chosen": task.sample_review(rng, "positive", p)[1],
                       "rejected": task.sample_review(rng, "negative", p)[1]})
demo = collate_pairs(demo_pairs, tok)
demo_ids = torch.cat([demo["chosen_input_ids"], demo["rejected_input_ids"]])          # (6, T)
demo_mask = torch.cat([demo["chosen_response_mask"], demo["rejected_response_mask"]])  # (6, T)
right = torch.zeros_like(demo_mask)
right[:, 1:] = demo_mask[:, 1:]            # token t counts if m[t]   (token 0 never does)
buggy = torch.zeros_like(demo_mask)
buggy[:, 1:] = demo_mask[:, :-1]           # token t counts if m[t-1]
category = right * 1 + (right & (1 - buggy)) * 1 + (buggy & (1 - right)) * 3   # 0 none, 1 both, 2 dropped, 3 extra

fig, ax = plt.subplots(figsize=(7.5, 7))
ax.imshow(category.T, cmap=ListedColormap(["#eeeeee", "#9fd89f", "#ffbf66", "#ff7b7b"]), vmin=0, vmax=3, aspect="auto")
for b in range(demo_ids.shape[0]):
    for t in range(demo_ids.shape[1]):
        ax.text(b, t, tok.id_to_token(demo_ids[b, t].item()), ha="center", va="center", fontsize=8)
ax.set_xticks(range(6), [f"chosen {i}" for i in range(3)] + [f"rejected {i}" for i in range(3)])
ax.set_ylabel("position t")
ax.set_title("green: counted by both · orange: dropped by the bug · red: added by the bug", fontsize=9)
fig.tight_layout()

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-08", "locked": true, "schema_version": 3, "solution": false}
# ### Why nobody notices
#
# Let a policy move away from the reference — five DPO steps on pairs of a positive (chosen) and a negative
# (rejected) review of the same prompt — and compute the batch's DPO numbers both ways. Both columns look
# like a healthy DPO run: finite, negative log-probs of plausible size, a loss below $\log 2$, accuracy
# well above one half. Nothing flags the second one. (The bug's log-probs are lower here
# because a `<pad>` after `<eos>` is improbable; with a different tokenizer or padding token, the sign of
# that difference could go either way.)

# %% id="demo-08"
from rlhf_core.losses import dpo_loss
from rlhf_core.train import dpo_step, make_reference, reference_logps

rng = random.Random(0)
pairs = [{"prompt": p, "chosen": task.sample_review(rng, "positive", p)[1],
          "rejected": task.sample_review(rng, "negative", p)[1]} for p in task.TRAIN_PROMPTS[:32]]
pair_batch = collate_pairs(pairs, tok)
policy, _, _ = load_sft_model()                       # a fresh copy: `model` stays the SFT model
reference = make_reference(policy)
logp_ref_chosen, logp_ref_rejected = reference_logps(reference, pairs, tok)
optimizer = torch.optim.AdamW(policy.parameters(), lr=2e-3)
for _ in range(5):
    dpo_step(policy, pair_batch, logp_ref_chosen, logp_ref_rejected, optimizer, beta=0.1)   # the correct log-probs

both_ids = torch.cat([pair_batch["chosen_input_ids"], pair_batch["rejected_input_ids"]])
both_att = torch.cat([pair_batch["chosen_attention_mask"], pair_batch["rejected_attention_mask"]])
both_resp = torch.cat([pair_batch["chosen_response_mask"], pair_batch["rejected_response_mask"]])
policy.eval()
with torch.no_grad():
    pol_logits, ref_logits = policy(both_ids, both_att), reference(both_ids, both_att)
B = len(pairs)
report = {}
for name, fn in [("correct mask", logps_fn), ("unshifted mask (bug)", get_logps_unshifted)]:
    pol, ref = fn(pol_logits, both_ids, both_resp), fn(ref_logits, both_ids, both_resp)
    margin = (pol[:B] - ref[:B]) - (pol[B:] - ref[B:])
    report[name] = {"DPO loss (β=0.1)": dpo_loss(pol[:B], pol[B:], ref[:B], ref[B:], beta=0.1).item(),
                    "mean log π(chosen)": pol[:B].mean().item(), "mean log π(rejected)": pol[B:].mean().item(),
                    "reward accuracy": (margin > 0).float().mean().item(), "mean log-ratio margin": margin.mean().item()}
pd.DataFrame(report).round(3)

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-09", "locked": true, "schema_version": 3, "solution": false}
# The bug is not harmless for being quiet. The first response token — in this task the start of the first
# adjective phrase, where the review picks its sentiment — never enters the loss, and part of the gradient
# goes into moving the probability of `<pad>` after `<eos>`, a token the model never has to produce. In SFT it is worse: the model is never trained to produce the
# first word of an answer. A check that compares against a known-right implementation catches it at once,
# and `check_get_logps` recognises this particular mistake and names the fix:

# %% id="demo-09"
from rlhf_core.checks import check_get_logps

try:
    check_get_logps(get_logps_unshifted)
except AssertionError as verdict:
    print(verdict)

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-10", "locked": true, "schema_version": 3, "solution": false}
# ## 6. Right or left padding: only the mask decides
#
# Training batches here are padded on the right; batches built from sampled responses have padding on the
# left of the prompt (so that generation starts in the same column) and after `<eos>`. A correct
# `get_logps` must not care, and neither must the model: `TinyLM` takes the `attention_mask`, counts
# positions over real tokens only and never attends to padding. Below, the same six reviews padded on
# either side give the same log-probs. Two things break it. Leave out the attention mask and the model
# reads left padding as text and counts it in the positions: the scores drift (only slightly, for this
# model). Count padding in the sum and a sequence's log-prob depends on how long the *other* sequences of
# its batch are — here by hundreds of nats.

# %% id="demo-10"
reviews = task.make_corpus(6, seed=7)
right_pad = collate_sft(reviews, tok)                              # input_ids, attention_mask, response_mask
n_real = right_pad["attention_mask"].sum(-1)                       # (6,)
T = right_pad["input_ids"].shape[1]
left_pad = {k: torch.zeros_like(v) for k, v in right_pad.items()}  # pad id is 0, masks are 0 on padding
for b in range(len(reviews)):
    n = int(n_real[b])
    for k in right_pad:
        left_pad[k][b, T - n:] = right_pad[k][b, :n]               # the same tokens, moved to the right end

with torch.no_grad():
    lp_right = logps_fn(model(right_pad["input_ids"], right_pad["attention_mask"]), right_pad["input_ids"], right_pad["response_mask"])
    lp_left = logps_fn(model(left_pad["input_ids"], left_pad["attention_mask"]), left_pad["input_ids"], left_pad["response_mask"])
    lp_left_no_attn = logps_fn(model(left_pad["input_ids"]), left_pad["input_ids"], left_pad["response_mask"])
    logits_right = model(right_pad["input_ids"], right_pad["attention_mask"])
    counting_pads = right_pad["response_mask"] | (1 - right_pad["attention_mask"])
    lp_with_pads = logps_fn(logits_right, right_pad["input_ids"], counting_pads)
    short = int(n_real.argmin())                                   # the shortest row: the most padding
    n = int(n_real[short])
    alone = logps_fn(model(right_pad["input_ids"][short:short + 1, :n]), right_pad["input_ids"][short:short + 1, :n],
                     right_pad["response_mask"][short:short + 1, :n])

pd.DataFrame({"tokens": n_real.tolist(), "right-padded": lp_right.tolist(), "left-padded": lp_left.tolist(),
              "left, no attention_mask": lp_left_no_attn.tolist(), "padding counted": lp_with_pads.tolist()}).round(4)

# %% id="demo-11"
print(f"largest |right − left| with the masks: {(lp_right - lp_left).abs().max().item():.1e}")
print(f"row {short} ({n} tokens) scored on its own, no padding : {alone.item():.4f}")
print(f"row {short} in the batch, padding not counted       : {lp_right[short].item():.4f}")
print(f"row {short} in the batch, padding counted           : {lp_with_pads[short].item():.4f}")

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-11", "locked": true, "schema_version": 3, "solution": false}
# ## 7. Summed or averaged?
#
# DPO uses the **sum**. The whole derivation is about probabilities of complete responses: the optimal
# policy $\pi^*(y|x) \propto \pi_\text{ref}(y|x)\, e^{r(x,y)/\beta}$ and the implicit reward
# $\beta \log \frac{\pi_\theta(y|x)}{\pi_\text{ref}(y|x)}$ both use $\log \pi(y|x) = \sum_t \log p(y_t \mid \dots)$,
# and the paper's loss is written on exactly those. The mean $\frac1n \sum_t \log p(y_t \mid \dots)$ is not
# the log-probability of anything; plug it in and the KL-regularised optimum behind DPO no longer applies.
#
# Averaging still has its uses. Every token adds a negative term to the sum, so raw summed log-probs
# favour short responses: compare two responses by $\log \pi(y|x)$ alone and the shorter one tends to win.
# The average takes the token count out, which is why length-normalised objectives use it. Two of them:
#
# - **SimPO** (Meng et al. 2024) is a DPO-like loss with no reference model: its reward is β times the
#   *average* log-prob of the response, and it asks for a margin γ between chosen and rejected. With no
#   reference to cancel length against, the average is what keeps it from simply preferring short answers.
# - **IPO** (Azar et al. 2023; lesson 09 trains with it) swaps DPO's log-sigmoid for a squared loss that
#   pulls the margin to a finite target, $1/(2\beta)$. The paper writes it on whole-sequence log-ratios;
#   TRL's implementation (`loss_type="ipo"`), and the course's with it, averages per token first
#   (`average=True` in this course's `get_logps`), which makes the target $1/(2\beta)$ nats *per token*.
#
# In DPO the reference's own sum over the same tokens removes most of the length effect from the
# log-*ratio* — but a longer response still offers more tokens whose ratios can move, which may be one
# reason why DPO-trained models often drift towards longer answers, an effect Park et al. (2024) measure
# and correct for.
#
# Below: 108 responses sampled from the SFT model, one per prompt, scored both ways.

# %% id="demo-12"
from rlhf_core.data import sample_responses

prompts = task.PROMPTS[::2]                                   # 108 of the 216 prompts
samples = sample_responses(model, tok, prompts, n_per_prompt=1, seed=0)
scored = collate_sft([{"prompt": p, "response": r} for p, r in zip(prompts, samples)], tok)
with torch.no_grad():
    lg = model(scored["input_ids"], scored["attention_mask"])
total = logps_fn(lg, scored["input_ids"], scored["response_mask"], average=False)
mean = logps_fn(lg, scored["input_ids"], scored["response_mask"], average=True)
length = scored["response_mask"].sum(-1).float()              # response tokens, <eos> included

slope = ((length - length.mean()) * (total - total.mean())).sum() / ((length - length.mean()) ** 2).sum()
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.3), sharex=True)
ax1.scatter(length, total, s=10, alpha=0.6)
ax1.set(xlabel="response length (tokens)", ylabel="summed log-prob", title=f"sum: about {slope:.2f} nats per extra token")
ax2.scatter(length, mean, s=10, alpha=0.6, c="C1")
ax2.set(xlabel="response length (tokens)", ylabel="mean log-prob per token", title="mean: the length trend mostly gone")
for ax, y in [(ax1, total), (ax2, mean)]:
    r = torch.corrcoef(torch.stack([length, y]))[0, 1].item()
    ax.text(0.03, 0.05, f"correlation with length {r:+.2f}", transform=ax.transAxes, fontsize=8)
fig.tight_layout()

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-12", "locked": true, "schema_version": 3, "solution": false}
# ## 8. A row with no response tokens
#
# Sometimes a row has no response token at all: a long prompt truncated to the model's context that lost
# its whole response, or an example masked out on purpose. Its summed log-prob is an empty sum, 0. Its
# average is 0 / 0 — NaN, unless you clamp the count to at least 1. One NaN row makes the batch's loss NaN,
# `backward()` fills every gradient with NaN, and after one optimizer step every weight of the model is
# NaN: the run is lost, not just the batch.

# %% id="demo-13"
empty = collate_sft(task.make_corpus(3, seed=8), tok)
empty["response_mask"][1] = 0                                   # row 1: no response token left
with torch.no_grad():
    lg = model(empty["input_ids"], empty["attention_mask"])
print("sum              :", [round(v, 3) for v in logps_fn(lg, empty["input_ids"], empty["response_mask"]).tolist()])
print("average (clamped):", [round(v, 3) for v in logps_fn(lg, empty["input_ids"], empty["response_mask"], average=True).tolist()])

lp = torch.log_softmax(lg[:, :-1], -1).gather(-1, empty["input_ids"][:, 1:].unsqueeze(-1)).squeeze(-1)
m = empty["response_mask"][:, 1:].float()
unclamped = (lp * m).sum(-1) / m.sum(-1)
print("average, no clamp:", [round(v, 3) for v in unclamped.tolist()], "→ batch mean", unclamped.mean().item())

# %% [markdown] nbgrader={"grade": false, "grade_id": "takeaways", "locked": true, "schema_version": 3, "solution": false}
# ## Takeaways
#
# - A training sequence is `[BOS] prompt response [EOS]`, right-padded; `response_mask` is aligned with
#   the tokens and is 1 on the response and `<eos>`, 0 on `<bos>`, the prompt and padding.
# - $\log \pi(y|x)$ is the sum over response tokens of $\log p(y_t \mid \text{everything before})$.
#   Logit row $t$ scores token $t+1$: pair `logits[:, :-1]` with `input_ids[:, 1:]` **and**
#   `response_mask[:, 1:]`.
# - An unshifted mask drops the first response token and scores whatever follows `<eos>`; the numbers it
#   gives look normal. Test `get_logps` against a per-token loop, on ragged, padded batches.
# - With the attention mask given to the model and only `response_mask` deciding what counts, padding side
#   does not matter; counting padding makes a sequence's score depend on its batch.
# - DPO sums (the paper's $\log \pi(y|x)$); averages remove length and belong to length-normalised
#   variants such as SimPO. Clamp the token count so an empty row averages to 0, not NaN.
#
# ## Interview questions this prepares you for
#
# 1. Which logit predicts which token? Why is `<bos>` never scored, and what happens to the last logit row?
# 2. Why must the response mask be shifted together with the labels? What goes wrong if it is not, and why
#    does the loss still look fine?
# 3. How would you test a `get_logps` implementation?
# 4. Should DPO sum or average the per-token log-probs? What changes if you average?
# 5. What happens with left padding? What does the model need, and what must `get_logps` ignore?
# 6. What does a fully masked row give — and why must it not be NaN?
