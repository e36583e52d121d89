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
# # 09 · When the margin explodes: reading a DPO run
#
# A DPO run can look perfect by its own numbers — loss 0.000, accuracy 1.00 — and produce word salad. A
# from-scratch write-up of DPO on a ~1M-parameter transformer hit exactly this: with one preference pair per
# update and $\beta = 0.1$, the loss reached 0 by step 30 while the *reward margin* climbed to 599 and the
# samples became incoherent. This notebook reproduces that failure live on the course's tiny model, explains
# where it comes from, tests the fixes the write-up proposed against each other, and places DPO on the
# paper's reward-versus-KL frontier. You finish by writing the function that names what went wrong in a run.
#
# **Goals**
# - read a DPO run from its metrics: why loss 0 and accuracy 1 are not good news, and why the unscaled
#   margin is a symptom to check, not a measure of drift (it is not a KL);
# - explain why a large step taken on one pair at a time drives the policy away from the reference, with
#   Adam's step size measured over a run, not only at its first step;
# - tell apart the fixes that only *bound the margin* from the one that *stops the drift*, using the held-out
#   KL and samples; place IPO, conservative DPO, SimPO, ORPO and KTO;
# - read a reward-vs-KL frontier — which KL it plots, how noisy its estimate is, what one seed can say — and
#   say what $\beta$ trades off;
# - implement `diagnose_run`: name a run's failure from its history.
#
# **Prerequisites:** notebook 02 (the DPO loss, the implicit reward) and notebook 08 (`train_dpo` and the
# metrics it logs). Comfort with AdamW.
#
# **Time:** about 60 minutes (the notebook itself runs in under a minute).

# %% [markdown] nbgrader={"grade": false, "grade_id": "s1", "locked": true, "schema_version": 3, "solution": false}
# ## 1. What the write-up saw, and which number to watch
#
# The write-up trained DPO with batch size 1, $\beta = 0.1$ and AdamW at learning rate $10^{-5}$, for 200
# steps. From step 30 on the loss sat at (or very near) 0 and the accuracy at 1. Its reward margin:
#
# | step | 30 | 70 | 80 | 150 | 200 |
# |---|---|---|---|---|---|
# | reward margin | 56.9 | 240.7 | 295.8 | 599.2 | 329.7 |
#
# It called a margin of 1–10 healthy; its samples read like *"The capital of France is made up of Water
# Exercise ore of comm …"*.
#
# That margin is the **unscaled** one. Per pair, with $\Delta_w = \log \pi_\theta(y_w|x) - \log \pi_\text{ref}(y_w|x)$
# and $\Delta_l$ the same for $y_l$:
#
# | quantity | math | logged as |
# |---|---|---|
# | unscaled margin (nats) | $m = \Delta_w - \Delta_l$ | `logratio/margin` |
# | β-scaled margin | $\beta m = \hat r(y_w) - \hat r(y_l)$ | `rewards/margins` |
# | loss | $-\log \sigma(\beta m)$ | `loss` |
# | accuracy | $\mathbb{1}[m > 0]$ | `rewards/accuracies` |
# | gradient weight | $\sigma(-\beta m)$ | (notebook 02) |
#
# $m$ is how many nats the policy has moved the chosen response *relative to* the rejected one, on **those two
# responses**: fixed texts from the data (here, samples of the reference), not samples of the policy. So it
# is **not a KL**. The KL that the RLHF objective charges for,
# $\mathrm{KL}(\pi\,\|\,\pi_\text{ref}) = \mathbb{E}_{y\sim\pi}\big[\log \pi(y|x) - \log \pi_\text{ref}(y|x)\big]$,
# weights every response by how often the *policy* writes it. Pushing down a rejected response to which the
# reference gave almost no mass raises $m$ by hundreds of nats while the KL hardly moves (the second cell
# below computes it); the other way round, a policy can drift far from the reference while its margin stays
# small (section 4). A large margin is a symptom to check. What shows drift is the held-out KL of the
# policy's own samples, the samples themselves, and both log-probs falling.
#
# The loss, in contrast, goes blind once $\beta m$ passes a few units: at $\beta = 0.1$ a margin of 50 and a
# margin of 500 both give a loss of ~0.00 and an accuracy of 1. The cell below makes that concrete.

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false}
# Setup: run this cell first. Where rlhf_core is missing (Colab, a fresh kernel) it installs the course
# library, keeping the torch already there; then it checks the environment and fixes the random seed.
COURSE_REPO_URL = "https://github.com/dpo-paper-to-code/dpo-paper-to-code"
SEED = 9
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
import math

beta = 0.1
print(f"β = {beta}:   m (nats)   β·m      loss = −log σ(β·m)   accuracy   gradient weight σ(−β·m)")
for m in [0.0, 1.0, 5.0, 10.0, 50.0, 500.0]:
    h = beta * m
    loss = math.log1p(math.exp(-h))
    print(f"          {m:8.1f}   {h:5.1f}   {loss:18.6f}   {float(m > 0):8.0f}   {1 / (1 + math.exp(h)):.2e}")
print(f"\nthe loss drops below 0.01 once m > {math.log(1 / math.expm1(0.01)) / beta:.1f} nats (at β = {beta})")

# %% [markdown] nbgrader={"grade": false, "grade_id": "s1-kl", "locked": true, "schema_version": 3, "solution": false}
# **A margin that costs no KL.** One prompt; the policy equals the reference except on one rejected response
# $y_l$, whose probability it divides by $e^{D}$; every other response, $y_w$ included, is scaled up by the
# same small factor so that the probabilities still sum to 1. Then $\Delta_l = -D$, $\Delta_w$ is that tiny
# rescaling, and $m \approx D$. But
#
# $$\mathrm{KL}(\pi\,\|\,\pi_\text{ref}) = \pi(y_l)\,(-D) + \big(1-\pi(y_l)\big)\log\frac{1-\pi(y_l)}{1-\pi_\text{ref}(y_l)} \;\approx\; \pi_\text{ref}(y_l)
# \quad\text{for large } D:$$
#
# never more than $-\log(1-\pi_\text{ref}(y_l))$, the mass the reference gave $y_l$, however large $D$. A whole
# sampled review of this task has a log-prob of about −30 under the reference (the cell in section 2
# prints the mean over the training pairs), so its mass is of the order of $e^{-30}$.

# %% id="demo-margin-kl"
print("log π_ref(y_l)   pushed down by D (nats)   margin m (nats)   KL(π‖π_ref) (nats)")
for log_p_ref in (-2.0, -30.0):
    p_ref = math.exp(log_p_ref)
    for D in (10.0, 100.0, 300.0):
        p_new = p_ref * math.exp(-D)                            # π(y_l)
        rescale = math.log1p(-p_new) - math.log1p(-p_ref)       # the log-ratio of every other response, y_w's too
        margin = rescale - (-D)                                 # Δ_w − Δ_l
        kl = p_new * (-D) + (1 - p_new) * rescale
        print(f"{log_p_ref:14.0f}   {D:23.0f}   {margin:15.1f}   {kl:18.3g}")

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-01", "locked": true, "schema_version": 3, "solution": false}
# ## 2. The pathology, live
#
# `rlhf_core.course.studies.PATHOLOGY` is the write-up's recipe on our model: batch 1, $\beta = 0.1$, 200 steps,
# no warm-up — and a learning rate of $10^{-2}$ (section 3 says why ours is larger than theirs).
# `study_data()` loads the shipped SFT model, a frozen copy as the reference, and builds the course's pairs
# (lesson 07): 4 samples of the reference per prompt, best versus worst by the ground-truth reward (the
# paper's sentiment experiment labels all six pairs of the 4 samples instead). Held-out pairs come from prompts never trained on. The run takes a few seconds.
# We hand `train_dpo` its own AdamW (`dpo_optimizer`, the optimizer it would build anyway) and an
# `UpdateSizeMonitor`, which records after every step how far the weights moved: section 3 reads it.

# %% id="demo-02"
from rlhf_core.diagnostics import first_explosion_step
from rlhf_core.course.studies import PATHOLOGY, study_data
from rlhf_core.metrics import UpdateSizeMonitor
from rlhf_core.train import dpo_optimizer, train_dpo

policy, reference, tokenizer, train_pairs, eval_pairs = study_data()
print(f"{len(train_pairs)} training pairs, {len(eval_pairs)} held-out pairs")
print(PATHOLOGY)
optimizer = dpo_optimizer(policy, PATHOLOGY)            # the AdamW train_dpo builds by default, kept to watch it
steps_seen = UpdateSizeMonitor(policy, optimizer)       # median |Δθ| / η after every step
history = train_dpo(policy, reference, tokenizer, train_pairs, PATHOLOGY, eval_pairs=eval_pairs, progress=True,
                    optimizer=optimizer, on_log=steps_seen)

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-02", "locked": true, "schema_version": 3, "solution": false}
# The explosion rule used throughout — by `diagnose` for its `margin_explosion` label, by the shipped study's
# "explodes by 30" column and by this notebook — is one function, `rlhf_core.diagnostics.first_explosion_step`:
# the first logged step whose unscaled training margin (`logratio/margin`) is above 50 nats
# (`EXPLOSION_THRESHOLD`); with `by_step=30`, only steps up to 30 count, and it returns `None` if there is
# none. Loss and accuracy are not part of the rule, because a healthy run at a large β also has loss ~0
# and accuracy 1. Here they follow from it: at batch 1 and $\beta = 0.1$, a margin above 50 means
# $\beta m > 5$, so the loss is below $-\log\sigma(5) \approx 0.0067$ and the accuracy is 1.
#
# The threshold is the course's, calibrated to this setting, not a constant of DPO. The sigmoid loss
# saturates at $\beta m \approx 5$, that is at $m \approx 5/\beta$: 50 nats at β = 0.1, but 10 at β = 0.5 and 500
# at β = 0.01 (where a margin of 50 is still in the learning range: its gradient weight is $\sigma(-0.5) = 0.38$).
# And the margin is a sum over the response's tokens: 50 nats is about 3 nats per token of this task's short
# reviews (printed below), while the same per-token change on a response twenty times longer gives a margin
# twenty times larger. The course keeps one rule at 50 nats — pass another `threshold` for another setting.

# %% id="demo-03"
import statistics

from rlhf_core.diagnostics import EXPLOSION_THRESHOLD
from rlhf_core.train import reference_logps

step = first_explosion_step(history, by_step=30)
print(f"first explosion step (by step 30): {step}")
print(f"  at step {step}: loss {history.at('loss', step):.2e}, accuracy {history.at('rewards/accuracies', step):.0f}, "
      f"unscaled margin {history.at('logratio/margin', step):.1f} nats")

writeup = {30: 56.9, 70: 240.7, 80: 295.8, 150: 599.2, 200: 329.7}
print("\nstep   write-up margin   ours: this step's pair   ours: held-out margin (86 pairs)   held-out accuracy")
for s, theirs in writeup.items():
    print(f"{s:4d}   {theirs:15.1f}   {history.at('logratio/margin', s):22.1f}   "
          f"{history.at('eval/margin', s):32.1f}   {history.at('eval/accuracy', s):17.2f}")

ref_chosen, ref_rejected = reference_logps(reference, train_pairs, tokenizer)     # (N,) each, summed over tokens
mean_tokens = statistics.fmean(len(tokenizer.encode(p[side])) + 1 for p in train_pairs for side in ("chosen", "rejected"))
print(f"\ntraining responses: {mean_tokens:.1f} tokens on average (EOS included); mean log π_ref(y_l) "
      f"{ref_rejected.mean():.1f} nats, log π_ref(y_w) {ref_chosen.mean():.1f} nats")
print(f"the rule's {EXPLOSION_THRESHOLD:.0f} nats = {EXPLOSION_THRESHOLD / mean_tokens:.1f} nats per token of a typical response")
print("β:                                    " + "".join(f"{b:>8g}" for b in (0.01, 0.1, 0.3, 0.5, 1.0)))
print("margin where the loss saturates (5/β): " + "".join(f"{5 / b:8.0f}" for b in (0.01, 0.1, 0.3, 0.5, 1.0)))

# %% id="demo-04"
from rlhf_core.plots import plot_loss_and_margin

fig = plot_loss_and_margin(history, title="The pathology: batch 1, β = 0.1, lr 1e-2")

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-03", "locked": true, "schema_version": 3, "solution": false}
# With batch size 1 every logged training number is *one pair's* number, measured just before the step
# that trains on it: the accuracy is 0 or 1, the loss is either ~0 or large, and the margin swings by more
# than a hundred nats either way (from −122 to +158 in the shipped study's run, made on the machine that made
# the shipped data). The held-out metrics, averaged over 86 pairs and measured on samples, tell the story the
# training curve cannot.
#
# The run is also *chaotic*: each step's large update amplifies the smallest difference, so on another CPU
# (which sums floats in another order) the first few losses agree to many digits and, after about ten steps,
# the curves part ways. What follows holds on any machine; the exact figures in brackets are the shipped run's.

# %% id="demo-05"
from rlhf_core.plots import plot_training_curves

fig = plot_training_curves(history, names=["eval/margin", "eval/accuracy", "eval/kl",
                                           "eval/grammatical", "eval/reward", "logratio/margin"],
                           title="The pathology, held-out: margin, accuracy, KL, grammar, reward")

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-04", "locked": true, "schema_version": 3, "solution": false}
# - **KL to the reference** — the measurement that shows drift, because it is taken on the policy's own
#   samples: well over 100 nats by the first evaluation (step 10; 234 in the shipped run) and still well over
#   100 at the end (183). A useful policy on this task is a few nats away.
# - **Grammatical samples:** from 98 % to 0 % by step 10, and they never come back.
# - **Held-out margin:** it rises to tens of nats (17 in the shipped run), but the held-out *accuracy* stays
#   far from 1 (0.6): the pairs' log-ratios moved by tens of nats in directions that barely generalise — and
#   that margin, on fixed pairs, is not what measures the drift; the KL above is.
# - **Reward:** it *rises* (to 0.47 in the shipped run) while not one sample is grammatical. Our reward scores
#   sentiment words wherever they occur, and the policy has learned to string positive adjectives together —
#   the small-scale version of the write-up's reward model giving 7.13 to nonsense. A reward curve alone would
#   have called this run a success.
#
# `diagnose` (from `rlhf_core.diagnostics`) reads the same history and says what it sees: a label from the
# training metrics (here the explosion rule), and from the held-out KL whether the policy drifted — its
# companion signal `first_drift_step`, the first evaluation whose `eval/kl` is above 10 nats
# (`DRIFT_KL_THRESHOLD`, lesson 08's bar). A run that drifted is never `ok`, whatever its label. (Its advice
# comes from `rlhf_core.fixes`, the course's one source of advice.)

# %% id="demo-06"
from rlhf_core.diagnostics import diagnose

d = diagnose(history)
print(d)
print(f"\nlabel {d.label!r}, first step over the margin rule {d.step}, first evaluation over the drift threshold {d.drift_step}, ok = {d.ok}")

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-05", "locked": true, "schema_version": 3, "solution": false}
# And the samples — one per held-out prompt, at temperature 1, from the reference and from the trained
# policy (✓ = the grammar accepts it, r = the ground-truth reward):

# %% id="demo-07"
from rlhf_core import task
from rlhf_core.evaluation import sample_and_score

prompts = task.HELDOUT_PROMPTS[:4]
before = sample_and_score(reference, reference, tokenizer, prompts, n_per_prompt=1, seed=3)
after = sample_and_score(policy, reference, tokenizer, prompts, n_per_prompt=1, seed=3)
mark = {True: "✓", False: "✗"}
for i, prompt in enumerate(prompts):
    print(f"prompt: {prompt!r}")
    for who, rep in (("reference", before), ("exploded ", after)):
        print(f"  {who} {mark[rep.grammatical[i]]} r={rep.rewards[i]:+.2f}  {rep.responses[i]}")

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-06", "locked": true, "schema_version": 3, "solution": false}
# ## 3. Why: the first steps set the drift, and one pair sets each step's direction
#
# **What Adam's step is.** AdamW moves one weight by
#
# $$\Delta\theta_t = -\eta_t\,\frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon}\qquad(\text{plus weight decay, 0 here}),$$
#
# where $\hat m_t$ and $\hat v_t$ are bias-corrected running means of the gradient and of its square, with
# memories of about $1/(1-\beta_1) = 10$ and $1/(1-\beta_2) = 1000$ steps (torch's defaults: $\beta_1 = 0.9$,
# $\beta_2 = 0.999$, $\epsilon = 10^{-8}$). The step is $\approx \eta$ when $|\hat m_t| \approx \sqrt{\hat v_t} \gg \epsilon$:
# when the gradient has kept its sign *and its size* over the steps those averages remember. On the very first
# step $\hat m = g$ and $\sqrt{\hat v} = |g|$, so every weight with $|g| \gg \epsilon$ moves by exactly $\eta$, however
# small or large its gradient: Adam is scale-free at the start. After that the step falls below $\eta$ when the
# gradient changes sign ($\hat m$ averages it away) — and also when it keeps its sign but **shrinks**: $\hat v$
# still remembers the earlier, larger gradients, so $\hat m/\sqrt{\hat v}$ becomes about the ratio of the new
# gradient to the old ones. (A gradient that grows does the reverse, for a while: steps above $\eta$.) The cell
# below shows it on one scalar weight whose gradient keeps its sign and drops 1000× at step 51.

# %% id="demo-adam-scalar"
import torch


def adam_steps(gradients, lr=1e-2):
    # |Δθ| / lr at every step of AdamW (torch's defaults, no weight decay) on one scalar weight
    w = torch.nn.Parameter(torch.zeros(()))
    opt = torch.optim.AdamW([w], lr=lr, weight_decay=0.0)
    ratios = []
    for g in gradients:
        before = w.item()
        w.grad = torch.tensor(float(g))
        opt.step()
        ratios.append(abs(w.item() - before) / lr)
    return ratios


runs = {"shrinks ×1000 at 51": adam_steps([1.0] * 50 + [1e-3] * 150),   # same sign throughout
        "1e-3 from step 1": adam_steps([1e-3] * 200),
        "alternating sign": adam_steps([1.0, -1.0] * 100)}
print("|Δθ| / η at step   " + "".join(f"{name:>22}" for name in runs))
for s in (1, 2, 10, 50, 51, 55, 60, 70, 80, 100, 150, 200):
    print(f"{s:17d}   " + "".join(f"{r[s - 1]:22.4f}" for r in runs.values()))

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-adam-run", "locked": true, "schema_version": 3, "solution": false}
# The same gradient of $10^{-3}$ moves the weight by a full $\eta$ when it is all the optimizer has seen, and by
# a few thousandths of $\eta$ when it follows fifty gradients of 1: the step shrinks within tens of steps of the
# drop and stays small for as long as $\hat v$ remembers (its memory is 1000 steps). So *"a weight moves by
# less than $\eta$ only when its gradient keeps changing sign"* is wrong, and so is *"a saturated loss still takes
# full-size steps"*: a loss whose gradient has become small after large ones takes small steps.
#
# And on the pathology run? `steps_seen` recorded, after each of its 200 steps, the median over all weights
# of $|\Delta\theta|/\eta_t$, with $\eta_t$ the learning rate that step used. By windows of steps, next to how often
# that step's pair had a saturated loss (below 0.01):

# %% id="demo-adam-run"
ratio = dict(zip(steps_seen.steps, steps_seen.median_ratio))
print("steps      median |Δθ| / η_t   pairs with loss < 0.01   held-out KL at the window's end (nats)")
for lo, hi in [(1, 1), (2, 10), (11, 30), (31, 100), (101, 200)]:
    window = [s for s in steps_seen.steps if lo <= s <= hi]
    saturated = statistics.fmean(history.at("loss", s) < 0.01 for s in window)
    kl = history.at("eval/kl", hi)
    print(f"{lo:>3}–{hi:<3}  {statistics.median(ratio[s] for s in window):17.3f}   {saturated:22.0%}   "
          f"{'—' if kl != kl else f'{kl:.1f}':>10}")
late = [s for s in steps_seen.steps if s > 30]
for label, keep in (("saturated (loss < 0.01)", lambda s: history.at("loss", s) < 0.01),
                    ("not saturated          ", lambda s: history.at("loss", s) >= 0.01)):
    chosen = [ratio[s] for s in late if keep(s)]
    print(f"after step 30, steps whose pair was {label}: {len(chosen):3d}, median |Δθ| / η_t {statistics.median(chosen):.3f}")

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-adam-run-2", "locked": true, "schema_version": 3, "solution": false}
# Read it with the scalar in mind. Step 1 moves the median weight by exactly $\eta$. Then the steps shrink fast —
# well below $\eta$ within ten steps, and to a few per cent of $\eta$ after step 30 — and about equally on the steps
# whose pair is saturated and on the others: the shrinking comes from $\hat v$ remembering the large gradients
# of the first steps and from the direction changing with every pair, not from the current pair's loss. The
# learning rate matters because of the **first** steps: at $\eta = 10^{-2}$ each of them moves a weight by up to
# 40 % of a typical SFT weight (printed below), and by the first evaluation, at step 10, the held-out KL is far
# over 100 nats. The later, smaller steps never bring the policy back.
#
# **At batch size 1, each step's direction comes from one pair.** A step of up to $\eta$ in every weight, aimed
# at one pair, mostly serves that pair. The cell below takes *one* AdamW step — step 1 of a fresh optimizer,
# where the step is $\eta\,\mathrm{sign}(g)$ — from the SFT model on one training pair, and measures how far the
# weights moved, how much the margin of *that* pair changed, and how much the mean margin of the 86 held-out
# pairs changed — at two learning rates, and with the loss multiplied by 1/1000 (a 1000× smaller gradient).

# %% id="demo-08"
import copy

from rlhf_core.data import collate_pairs
from rlhf_core.losses import dpo_loss
from rlhf_core.evaluation import heldout_pair_metrics
from rlhf_core.logps import concatenated_logps
from rlhf_core.train import reference_logps

heldout_ref = reference_logps(reference, eval_pairs, tokenizer)


def mean_margin(model, pairs, ref_chosen, ref_rejected):
    return heldout_pair_metrics(model, pairs, ref_chosen, ref_rejected, tokenizer)["eval/margin"]


def one_adam_step(pair, lr, loss_scale=1.0):
    # one AdamW step from the SFT model on one pair; returns (median |Δθ| / lr, Δ margin of that pair, Δ held-out margin)
    batch = collate_pairs([pair], tokenizer)
    ref_c, ref_r = reference_logps(reference, [pair], tokenizer)
    model = copy.deepcopy(reference).requires_grad_(True).train()      # a fresh copy of the SFT model
    start = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    chosen, rejected = concatenated_logps(model, batch)
    (loss_scale * dpo_loss(chosen, rejected, ref_c, ref_r, beta=0.1)).backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    moved = torch.cat([(p.detach() - s).abs().flatten() for p, s in zip(model.parameters(), start)])
    return (moved[moved > 0].median().item() / lr, mean_margin(model, [pair], ref_c, ref_r),
            mean_margin(model, eval_pairs, *heldout_ref))


weights = torch.cat([p.flatten() for p in reference.parameters()])
print(f"{weights.numel():,} weights; the median |weight| of the SFT model is {weights.abs().median():.3f}\n")
print("lr      gradient   median |Δθ| / lr   margin of the pair trained on   held-out margin   (both start at 0)")
for lr in (1e-2, 3e-4):
    for scale in (1.0, 1e-3):
        runs = [one_adam_step(pair, lr, scale) for pair in train_pairs[:4]]
        step_ratio, pair_gain, heldout_gain = (sum(col) / len(runs) for col in zip(*runs))
        print(f"{lr:<7g} ×{scale:<8g}  {step_ratio:16.2f}   {pair_gain:+29.2f}   {heldout_gain:+15.3f}")

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-07", "locked": true, "schema_version": 3, "solution": false}
# Read it row by row:
#
# - **Step size, on step 1 of a fresh optimizer.** At full gradient the median weight moves by the learning
#   rate (ratio ≈ 1.0). A gradient 1000× smaller still moves it by about half of it: this model's gradients are
#   then so small that the $\epsilon$ in Adam's denominator starts to count. That is the first step only; over a
#   run the step shrinks, as above. At $\eta = 10^{-2}$ a first step is ~40 % of a typical SFT weight
#   (median ~0.026).
# - **Overfitting the pair in hand.** At $\eta = 10^{-2}$ one step moves that pair's margin by many nats
#   (the pairs differ; the step can even overshoot and make it negative), and the held-out margin by a small
#   fraction of that. At $\eta = 3\times10^{-4}$ both changes are small. Twenty such steps, each aimed at a
#   different pair, send the policy hundreds of nats of KL from the reference, as section 2 showed.
#
# **An honest note on the learning rate, and the paper's own settings.** The write-up saw this at
# $\eta = 10^{-5}$ on its ~1M-parameter model. Our 0.4M-parameter model at batch 1 and $\eta = 3\times10^{-4}$ stays grammatical (section 4), so we
# use a larger step to make the same signature — loss < 0.01, accuracy 1, unscaled margin > 50 by step 30 —
# appear. The setups differ in more than the step (their chosen responses were human-written and their
# rejected ones the model's own samples at temperature 0.9, a much easier pair to separate; longer responses;
# another model), so do not read our $10^{-2}$ as the threshold for theirs. What carries over is the
# mechanism and how to read it. For scale, the paper's own recipe (Rafailov et al. 2023, Appendix B) next to
# the course's:
#
# | | the paper (Appendix B) | the write-up | the pathology here | the course default |
# |---|---|---|---|---|
# | model | GPT-2-large (sentiment), GPT-J 6B (TL;DR), Pythia-2.8B (dialogue) | ~1M parameters | 0.4M (the course's SFT model) | 0.4M |
# | β | 0.1 (0.5 for TL;DR summarisation) | 0.1 | 0.1 | 0.3 |
# | batch | 64 | 1 | 1 | 32 |
# | optimiser, peak learning rate | RMSprop, $10^{-6}$ | AdamW, $10^{-5}$ | AdamW, $10^{-2}$ | AdamW, $3\times10^{-4}$, cosine decay to 0 |
# | warm-up | linear from 0 over 150 steps | — | none | 10 steps |
#
# RMSprop is Adam without the first moment: its step $\eta\,g/(\sqrt{v}+\epsilon)$ is just as scale-free, so the
# paper's small learning rate and long warm-up play the role that a small step plays here — keeping the
# first updates of a pretrained model small. A tiny model trained from scratch on a small task needs, and
# tolerates, a far larger learning rate than a 6B-parameter one; what transfers is the order: start small,
# warm up, average over a real batch.

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-08", "locked": true, "schema_version": 3, "solution": false}
# ## 4. The fixes, side by side
#
# The write-up proposed: a larger batch, bounding the margin (a cap, or length-normalised log-probabilities),
# a different $\beta$, and early stopping. `rlhf_core.course.studies.FIX_VARIANTS` changes **one thing at a time**
# relative to the pathology, on the same pairs, and adds IPO and conservative DPO, two losses designed not to
# push the margin to infinity. Per pair, with $m$ the unscaled margin (summed log-probs unless the row says
# otherwise):
#
# | variant | loss | what it changes |
# |---|---|---|
# | the pathology (DPO) | $-\log\sigma(\beta m)$ | — |
# | batch 32 | the same | each step averages the gradient of 32 pairs |
# | β 1.0 | the same | the loss saturates at a 10× smaller margin |
# | length-normalised log-probs | $-\log\sigma(\beta \bar m)$, $\bar m$ from per-token means | margins in nats *per token* |
# | IPO (Azar et al. 2023) | $(\bar m - \tfrac{1}{2\beta})^2$ | regresses the margin onto a finite target |
# | conservative DPO, ε 0.1 | $-(1-\varepsilon)\log\sigma(\beta m) - \varepsilon\log\sigma(-\beta m)$ | assumes a fraction ε of the labels flipped: a minimum at a finite margin |
# | lr 3e-4 | $-\log\sigma(\beta m)$ | a 33× smaller step |
# | the course default | the same | batch 32, lr 3e-4, β 0.3, 10 warm-up steps |
#
# Two conventions to know. **IPO** is defined on log-ratios of *whole sequences* (Azar et al. 2023); the course,
# like TRL's `loss_type="ipo"`, averages the log-probs per token first ($\bar m$), so β = 0.1 sets a target of
# $1/(2\beta) = 5$ nats **per token** — printed below in nats per response. **Conservative DPO** is the label-smoothing
# loss of Mitchell's note on DPO with noisy preferences (2023), with `label_smoothing = ε`; its minimum is at
# $\beta m = \log\frac{1-\varepsilon}{\varepsilon}$. Older TRL versions computed it inside their `"sigmoid"` loss;
# TRL 1.16's `"sigmoid"` ignores `label_smoothing`, and the TRL 1.16 losses that read it — `"robust"` (robust
# DPO, Chowdhury et al. 2024: it subtracts the flipped-label term and rescales), `"exo_pair"`, `"aot"` and
# `"aot_unpaired"` — are other losses (lesson 11 measures the first two facts).
#
# The write-up's **margin cap** ("clip the reward margin at about 10") is not in the study; it is run
# live below, as the hinge loss $\max(0,\, 1 - \beta m)$ on reference-normalised log-ratios (`loss_type="hinge"`,
# also TRL's): the hinge of RSO (Liu et al. 2023, *Statistical Rejection Sampling Improves Preference
# Optimization*, arXiv 2309.06657). SLiC-HF (Zhao et al. 2023) puts the same kind of hinge on the policy's raw
# log-likelihoods, with no reference. A pair stops pulling once $m \ge 1/\beta$ = 10 nats.
#
# Three successors the study does not run, and where they would sit: **SimPO** (Meng et al. 2024) drops the
# reference and rewards the length-averaged log-prob, with a target margin γ:
# $-\log\sigma\big(\beta(\bar a_w - \bar a_l) - \gamma\big)$ — nothing in it anchors the policy to the SFT model.
# **ORPO** (Hong et al. 2024) also drops the reference: the SFT loss on $y_w$ plus λ times an odds-ratio term,
# $-\log\sigma\big(\log\mathrm{odds}(y_w) - \log\mathrm{odds}(y_l)\big)$, so the chosen response's likelihood is pushed
# up by construction (the NLL term of lesson 08's RPO, built in). **KTO** (Ethayarajh et al. 2024) needs no
# pairs at all: each response is labelled desirable or undesirable on its own and scored against a reference
# point, an estimate of the policy's KL to the reference, through a prospect-theory value function. SimPO
# and ORPO are in `rlhf_core.losses`; none of the three is trained in this course.
#
# The course ships the measured study (`rlhf_core/assets/margin_study.json`, written by
# `python -m rlhf_core.course.studies`), **one seed per variant**. The figures quoted in this section and in
# section 5 are the shipped study's, made on the machine that made the shipped data. Set `RECOMPUTE = True` to
# rerun it yourself: about 1.5 minutes for the study and 2.5 for the frontier of section 5, on 2 CPU cores. On
# another CPU the float sums run in another order, so a recomputed study matches the shipped one in its
# conclusions, not in every digit: the batch-1 runs are chaotic and can differ by whole nats after a few steps.

# %% id="demo-losses"
eps, b = 0.1, PATHOLOGY.beta
print(f"conservative DPO (ε {eps}) at β {b}: minimum at m = log((1 − ε)/ε) / β = {math.log((1 - eps) / eps) / b:.1f} nats")
print(f"IPO at β {b}: target 1/(2β) = {1 / (2 * b):.0f} nats per token (the course's and TRL's averaged log-probs), "
      f"i.e. about {mean_tokens / (2 * b):.0f} nats over a {mean_tokens:.1f}-token response; on summed log-probs "
      f"(the paper's definition) the same β aims at {1 / (2 * b):.0f} nats per response")
print(f"margin cap (hinge) at β {b}: a pair stops pulling once m ≥ 1/β = {1 / b:.0f} nats")

# %% id="demo-09"
from rlhf_core.course.studies import load_margin_study, run_margin_study
from rlhf_core.metrics import MetricsHistory

RECOMPUTE = False   # True: rerun run_margin_study() (~1.5 min) and run_frontier() (~2.5 min) instead of loading

study = run_margin_study() if RECOMPUTE else load_margin_study()
runs = {name: MetricsHistory.from_dict(v["history"]) for name, v in study["variants"].items()}

print(f"{'variant':<50} {'explodes':>8} {'last train':>10} {'held-out':>8} {'held-out':>8} {'gramm-':>6} {'KL':>7} {'reward':>6}")
print(f"{'':<50} {'by 30':>8} {'margin':>10} {'margin':>8} {'acc.':>8} {'atical':>6} {'nats':>7} {'':>6}")
for name, h in runs.items():
    explodes = study["variants"][name]["first_explosion_step"]
    print(f"{name:<50} {str(explodes or '—'):>8} {h.last('logratio/margin'):10.1f} {h.last('eval/margin'):8.1f} "
          f"{h.last('eval/accuracy'):8.2f} {h.last('eval/grammatical'):6.0%} {h.last('eval/kl'):7.1f} {h.last('eval/reward'):6.2f}")

# %% id="demo-10"
import matplotlib.pyplot as plt
from rlhf_core.diagnostics import HEALTHY_MARGIN_BAND

fig, axes = plt.subplots(1, 3, figsize=(9.4, 5.7), layout="constrained")
for name, h in runs.items():
    style = dict(lw=2.5) if "lr 3e-4" in name else dict(lw=1.2, alpha=0.8)
    for ax, metric in zip(axes, ["eval/margin", "eval/kl", "eval/grammatical"]):
        ax.plot(*h.series(metric), label=name, **style)
axes[0].axhspan(*HEALTHY_MARGIN_BAND, color="tab:green", alpha=0.12, lw=0)
axes[0].set(title="Held-out unscaled margin", ylabel="nats (shaded: 1–10)", xlabel="step")
axes[1].set(title="Held-out KL to the reference", ylabel="nats per response (log scale)", xlabel="step", yscale="symlog")
axes[2].set(title="Grammatical samples", ylabel="fraction of samples", xlabel="step", ylim=(-0.05, 1.05))
for ax in axes:
    ax.grid(alpha=0.3)
fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=2, fontsize=9, frameon=False)
fig.suptitle("Eight variants (thick lines: learning rate 3e-4)")

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-cap", "locked": true, "schema_version": 3, "solution": false}
# ### The write-up's margin cap, live
#
# The cap the write-up proposed, as the hinge loss on the pathology's settings (batch 1, β 0.1, lr $10^{-2}$),
# for 30 steps (so its cosine schedule decays over 30 steps, not 200): does bounding each pair's pull stop the
# drift? About five seconds.

# %% id="demo-margin-cap"
import dataclasses

from rlhf_core.checkpoint import load_sft_model
from rlhf_core.course.studies import MARGIN_CAP

cap_config = dataclasses.replace(PATHOLOGY, steps=30, **MARGIN_CAP)    # loss_type="hinge": no pull once m ≥ 1/β
cap_policy, _, _ = load_sft_model()                                      # a fresh copy of the SFT model
capped = train_dpo(cap_policy, reference, tokenizer, train_pairs, cap_config, eval_pairs=eval_pairs, progress=True)
print(f"largest training margin {max(capped.values('logratio/margin')):.1f} nats "
      f"(the cap stops the pull at {1 / cap_config.beta:.0f}; one step can still overshoot it)")
print("step   held-out margin   held-out KL (nats)   grammatical")
for s in (10, 20, 30):
    print(f"{s:4d}   {capped.at('eval/margin', s):15.1f}   {capped.at('eval/kl', s):18.1f}   {capped.at('eval/grammatical', s):11.0%}")
print(f"diagnose: {diagnose(capped).label}, drift at step {diagnose(capped).drift_step}")

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-09", "locked": true, "schema_version": 3, "solution": false}
# What the study says (one seed per variant; the contrasts below — 0 % against 85–94 % grammatical samples,
# a KL of 90 or more nats against 2–3 — are far larger than what a rerun moves: the last table of this
# notebook prints the live pathology next to the shipped one):
#
# - **Every variant at learning rate $10^{-2}$ degenerates**: 0 % grammatical samples and a KL of 90–340 nats,
#   whatever else it changes. So does the margin cap (above): it keeps the held-out margin small, and the KL
#   is as large as the pathology's.
# - **Some fixes only bound or move the margin.** Length-normalised log-probabilities and IPO keep the
#   held-out margin at ~3 and ~1.7 — inside the "healthy" band — but their margins are *per token*, small by
#   construction (and IPO's per-token target, in nats per response, is itself past 50: printed above), and
#   the policy is as broken as the pathology: a KL above 300 nats. β 1.0 and conservative DPO change where the
#   loss saturates, not the step size (conservative DPO's margin passes 50 nats at step 17 while its loss stays
#   near 1: the explosion rule watches the margin, not the loss). The margin is a symptom; the KL and the
#   samples show the damage.
# - **Batch 32 at $10^{-2}$ is worse on the margin, not better**: no single-pair explosion by step 30, but a
#   held-out margin of 53. Averaging over 32 pairs makes the direction less noisy, so the explosion
#   *generalises*; it does not shrink Adam's step.
# - **Only a smaller step stops the drift.** Learning rate $3\times10^{-4}$ at batch 1 stays grammatical (85 %)
#   but learns little (reward 0.09). The course default (batch 32, lr $3\times10^{-4}$, β 0.3) keeps the held-out
#   margin at 5.9 with 94 % grammatical samples and reward 0.50.
#
# One of the write-up's suggestions needs correcting: it proposed *lowering* β to 0.05 to "tighten the KL
# constraint". β multiplies the KL penalty in the RLHF objective, so a smaller β *loosens* it; to stay closer
# to the reference, raise β.
#
# Now the fix, live: the course default on the same pairs (about 16 seconds). To save time it is evaluated only at
# its end (the study evaluates every 10 steps; evaluation samples from a generator of its own, so the training is
# the same), and the next section reads the shipped run's curve. On another CPU than the one that made the shipped
# study the floats are summed in another order and the run drifts a little, but it is not chaotic like the
# pathology: on an Intel Xeon its held-out margin came out at 6.01 nats against the shipped 5.91. How close is
# close enough? A rerun on another CPU moves a non-chaotic run less than a new seed does, so the check below
# allows three standard deviations of the seed-to-seed spread of the same recipe, measured over the three seeds of
# lesson 08's displacement study (printed with it).

# %% id="demo-11"
import dataclasses

from rlhf_core.checkpoint import load_sft_model
from rlhf_core.course.studies import FIX_VARIANTS, load_displacement_study

FIX = "batch 32 · lr 3e-4 · β 0.3 (the course default)"
fixed_config = dataclasses.replace(PATHOLOGY, **FIX_VARIANTS[FIX], eval_every=PATHOLOGY.steps)  # at step 0 and the end
fixed_policy, _, _ = load_sft_model()          # a fresh copy of the SFT model; same reference, same pairs
fixed = train_dpo(fixed_policy, reference, tokenizer, train_pairs, fixed_config, eval_pairs=eval_pairs, progress=True)

margin, grammatical = fixed.last("eval/margin"), fixed.last("eval/grammatical")
print(f"held-out margin {margin:.2f} nats (healthy band 1–10: {1 <= margin <= 10}), "
      f"grammatical samples {grammatical:.0%} (≥ 75 %: {grammatical >= 0.75}), "
      f"KL {fixed.last('eval/kl'):.1f} nats, reward {fixed.last('eval/reward'):.2f}")
shipped = runs[FIX]
seed_runs = [MetricsHistory.from_dict(r["variants"]["DPO"]["history"]) for r in load_displacement_study()["seeds"]]
tol_margin = 3 * statistics.stdev(h.last("eval/margin") for h in seed_runs)
tol_gram = 3 * statistics.stdev(h.last("eval/grammatical") for h in seed_runs)
print(f"seed-to-seed spread of this recipe (3 seeds, lesson 08's study): 3 sd = {tol_margin:.2f} nats of held-out margin, "
      f"{tol_gram:.0%} of grammatical samples")
print(f"close to the shipped study: held-out margin {margin:.2f} vs {shipped.last('eval/margin'):.2f} "
      f"(within {tol_margin:.2f}: {abs(margin - shipped.last('eval/margin')) <= tol_margin}), grammatical {grammatical:.0%} vs "
      f"{shipped.last('eval/grammatical'):.0%} (within {tol_gram:.0%}: {abs(grammatical - shipped.last('eval/grammatical')) <= tol_gram})")
print(f"diagnose: {diagnose(fixed).label}")


# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-10", "locked": true, "schema_version": 3, "solution": false}
# ### Early stopping on the held-out margin
#
# Early stopping evaluates every few steps and keeps the checkpoint with the best held-out metric, stopping
# once it has not improved for a while (the *patience*). Watching the *held-out* margin rather than the
# training loss guards against memorising the training pairs: the training margin keeps growing, the
# held-out margin stops. Below, a minimal rule — keep the best held-out margin, stop after 3 evaluations
# without a gain of 0.1 nats — applied to the live pathology and to the shipped course-default run (both evaluated
# every 10 steps), with what the kept checkpoint looks like.

# %% id="demo-12"
def early_stop(history, name="eval/margin", patience=3, min_delta=0.1):
    # (step of the checkpoint to keep, step at which training would stop, or None if it never stops)
    steps, values = history.series(name)
    best_step, best, waited = steps[0], values[0], 0
    for s, v in zip(steps[1:], values[1:]):
        if v > best + min_delta:
            best_step, best, waited = s, v, 0
        else:
            waited += 1
            if waited == patience:
                return best_step, s
    return best_step, None


for label, h in (("pathology", history), ("course default", shipped)):   # the shipped run: evaluated every 10 steps
    keep, stop = early_stop(h)
    first = h.series("eval/kl")[0][1]
    print(f"{label:<15} keeps step {keep:3d}, stops at {stop if stop is not None else 'the end (never)'}: "
          f"held-out margin {h.at('eval/margin', keep):5.1f}, KL {h.at('eval/kl', keep):6.1f}, "
          f"grammatical {h.at('eval/grammatical', keep):4.0%}")
    print(f"{'':<15} first evaluation (step {first}): KL {h.at('eval/kl', first):6.1f}, grammatical {h.at('eval/grammatical', first):4.0%}")

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-11", "locked": true, "schema_version": 3, "solution": false}
# For the pathology, early stopping cannot help at this step size: the damage is done **before the first
# evaluation** — at step 10 the KL is already over 100 nats and no sample is grammatical, and the held-out
# margin keeps rising afterwards, so a rule that waits for it to stall keeps a broken checkpoint. For the
# course default the held-out margin climbs slowly and flattens near the end, so the rule keeps a late
# checkpoint. Early stopping is a guard for a run whose step size is already sane; it is not a fix for one
# whose is not. When you do use it, also watch the KL and read samples.

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-12", "locked": true, "schema_version": 3, "solution": false}
# ## 5. β and the reward-versus-KL frontier
#
# RLHF maximises $\mathbb{E}_{\pi}[r] - \beta\,\mathrm{KL}(\pi \,\|\, \pi_\text{ref})$, and DPO aims at the same optimum
# through its implicit reward $\beta \log \pi_\theta/\pi_\text{ref}$ — when the preferences are Bradley–Terry, the
# policy class can represent $\pi^*$ and the data cover the responses (lesson 02); on finitely many hard
# labels its minimisers need not be that optimum, and its margins can grow without bound. So $\beta$ prices the KL:
# a small $\beta$ makes drift cheap and lets the policy chase more reward; a large $\beta$ keeps it near the
# reference. In the loss, $\beta$ sets where a pair stops teaching: the weight $\sigma(-\beta m)$ is small
# once $m \gg 1/\beta$.
#
# To compare methods fairly, the paper's controlled-sentiment experiment (Figure 2, left: GPT-2-large on
# IMDb prefixes, a sentiment classifier as the ground-truth reward) plots each trained policy as a point:
# x = its KL to the reference, y = the mean reward of its samples. Upper-left is better — more reward for
# less drift. Sweeping β and other settings, DPO's points lie above PPO's at every KL.
#
# Our analogue, on held-out prompts: DPO at β ∈ {0.1, 0.3, 1.0, 2.0} against **Preferred-FT** — supervised
# fine-tuning on the chosen responses only, at three learning rates — each measured every 50 steps of a
# 200-step run on the course default's pairs. The comparison is `rlhf_core.evaluation.betas_above_baseline`
# (the course's one way to compare two frontiers): for each β, is every DPO point with KL > 0.5 nats above
# the best reward Preferred-FT reaches at that KL or less — Preferred-FT's Pareto frontier read as a
# staircase (`baseline_reward_at`), never interpolated between its points?

# %% [markdown] nbgrader={"grade": false, "grade_id": "s5-kl", "locked": true, "schema_version": 3, "solution": false}
# ### Which KL the frontier plots, and how the course estimates it
#
# The x-axis is a **sequence-level** KL: the paper's objective charges $\beta\,\mathbb{D}_\text{KL}[\pi_\theta(y|x)\,\|\,\pi_\text{ref}(y|x)]$
# between distributions over whole responses, and its frontier plots that KL, in nats per response. By the chain
# rule it is the expected sum of **token-level** KLs along the response:
#
# $$\mathrm{KL}\big(\pi(\cdot|x)\,\|\,\pi_\text{ref}(\cdot|x)\big) = \mathbb{E}_{y\sim\pi}\Big[\sum_t \mathrm{KL}\big(\pi(\cdot|x,y_{<t})\,\|\,\pi_\text{ref}(\cdot|x,y_{<t})\big)\Big].$$
#
# PPO-based RLHF (Ziegler et al. 2019; Stiennon et al. 2020; Ouyang et al. 2022) applies the penalty per
# token: each sampled token's reward gets $-\beta\log\frac{\pi(y_t|x,y_{<t})}{\pi_\text{ref}(y_t|x,y_{<t})}$, and summed over a
# response that is $-\beta$ times one sample of the sequence KL. The course estimates the frontier's KL the same
# way (`eval/kl`, from `evaluate_policy`): the mean over samples $y\sim\pi$ of $\log\pi(y|x) - \log\pi_\text{ref}(y|x)$.
# It is unbiased, but a single term can be **negative** — a sample the reference likes more than the policy
# does — and the terms are noisy. Summing the *exact* token-level KL over the vocabulary at each sampled
# prefix (the chain rule's inner terms; `sample_and_score(..., token_kl=True)`) estimates the same number
# with every term ≥ 0 and a much smaller spread. The cell compares them on the course default trained above,
# 8 samples for each of the 43 held-out prompts, and measures the spread of the samples' rewards: the error
# bar of a frontier point.

# %% id="demo-kl-estimators"
from rlhf_core.evaluation import sample_and_score

report = sample_and_score(fixed_policy, reference, tokenizer, task.HELDOUT_PROMPTS, n_per_prompt=8, seed=11, token_kl=True)
n = len(report.rewards)
print(f"{n} samples of the course default              mean (nats)   sd of one sample   standard error   negative samples")
for name, values in (("sampled: log π(y) − log π_ref(y)", report.log_ratios),
                     ("token-level: Σ_t KL(π‖π_ref | y_<t)", report.token_kl)):
    sd = statistics.pstdev(values)
    print(f"{name:<44} {statistics.fmean(values):11.2f}   {sd:16.2f}   {sd / math.sqrt(n):14.3f}   "
          f"{statistics.fmean(v < 0 for v in values):16.0%}")
print(f"per token: {statistics.fmean(report.token_kl) / statistics.fmean(report.n_tokens):.3f} nats, "
      f"over {statistics.fmean(report.n_tokens):.1f} response tokens on average")
sft_rewards = sample_and_score(reference, reference, tokenizer, task.HELDOUT_PROMPTS, n_per_prompt=8, seed=11).rewards
reward_sd = max(statistics.pstdev(report.rewards), statistics.pstdev(sft_rewards))
print(f"reward of one sample: sd {statistics.pstdev(sft_rewards):.2f} (SFT model), {statistics.pstdev(report.rewards):.2f} (course default)")

# %% id="demo-13"
from rlhf_core.course.studies import FRONTIER_BETAS, load_frontier, run_frontier
from rlhf_core.evaluation import betas_above_baseline, frontier_gap
from rlhf_core.plots import plot_frontier

points = run_frontier() if RECOMPUTE else load_frontier()
fig = plot_frontier(points, title="Held-out reward vs KL: DPO and Preferred-FT, every 50 steps of each run",
                    param_names={"DPO": "β", "Preferred-FT": "lr"})
print("DPO above Preferred-FT at every point with KL > 0.5 nats, per β:", betas_above_baseline(points))
print(f"Preferred-FT's best reward: {max(p.reward for p in points if p.label == 'Preferred-FT'):.2f}")
print(f"KL of the best-of-4 policy to the reference (Beirami et al. 2024): at most log 4 − 3/4 = {math.log(4) - 3 / 4:.3f} nats; "
      f"Preferred-FT's largest measured KL: {max(p.kl for p in points if p.label == 'Preferred-FT'):.2f} nats")
print(f"mean reward of the chosen (best-of-4) responses in our pairs: {statistics.fmean(task.reward(p['chosen']) for p in train_pairs):.2f}")

se = reward_sd / math.sqrt(16 * len(task.HELDOUT_PROMPTS))     # each frontier point averages 16 samples × 43 prompts
print(f"\nerror bar of one point's reward: sd / √{16 * len(task.HELDOUT_PROMPTS)} ≈ {se:.3f} (one seed; a gap between two points: ≈ {se * math.sqrt(2):.3f})")
gaps = frontier_gap([p for p in points if p.label == "DPO"], [p for p in points if p.label == "Preferred-FT"])
for beta in FRONTIER_BETAS:
    worst = min(g for p, g in gaps if p.param == beta)
    print(f"β {beta:<4g} smallest gap over Preferred-FT's staircase past 0.5 nats: {worst:+.3f} reward = {worst / se:+.1f} standard errors")

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-13", "locked": true, "schema_version": 3, "solution": false}
# These are one seed's points (the shipped frontier), each a mean over 688 samples; the error bar printed
# above is what one seed allows.
#
# - **Preferred-FT plateaus** near reward 0.30, at a KL of 0.5–0.7 nats. It imitates the chosen responses,
#   which are the best of 4 samples of the reference. The best-of-$N$ policy — the best of $N$ fresh samples
#   of the reference, as a distribution — is at most $\log N - \tfrac{N-1}{N}$ nats from the reference
#   (Beirami et al. 2024, *Theoretical guarantees on the best-of-n alignment policy*), $\approx 0.64$ for
#   $N = 4$, and its mean reward is that of the chosen responses: the target imitation aims at. Preferred-FT
#   fits finitely many chosen responses by maximum likelihood instead, and a fit can overfit past that bound:
#   its point at the largest learning rate is measured at 0.76 nats (printed above), with no more reward.
# - **DPO keeps going**: it also pushes the rejected responses down, so its target is not bounded by the
#   best of its data. With β 0.1 and 0.3 its points reach reward 0.5–0.6 at 2.7–6.5 nats; β 1.0 stops near 1.8 nats
#   (reward 0.47); β 2.0 stays below 0.8 nats. A larger β buys a smaller KL with less reward — the trade-off
#   the objective prices.
# - **At small KL, DPO is not above Preferred-FT.** Imitating the best of 4 is a strong policy for its KL
#   budget, and DPO's early points (KL < 0.5) sit on or below Preferred-FT's. β 2.0 never gets far past that
#   region, and one of its points is a hundredth of a reward unit below Preferred-FT's best at the same KL, so
#   it does not pass the comparison's strict test — but that gap is smaller than one standard error (printed
#   above): with one seed, β 2.0 and Preferred-FT are a **tie** there, not a win for either. β 0.1, 0.3 and 1.0
#   clear it by many standard errors.
# - The pathology of section 2 would sit far off this plot, at a KL of ~180 nats and 0 % grammatical samples:
#   the frontier is only meaningful for policies that still produce the language.

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-overopt", "locked": true, "schema_version": 3, "solution": false}
# ### Over-optimisation: does the gold reward fall if you train longer?
#
# Rafailov et al. 2024 (*Scaling laws for reward model overoptimization in direct alignment algorithms*) trained
# DPO, IPO and SLiC at several β and model sizes and had GPT-4 judge the checkpoints: the judged quality rose,
# peaked, then fell as the KL to the reference grew, often within the first epoch — the hump Gao et al. 2023 found
# for RLHF against a learned reward model. DPO has no reward model to exploit, yet it over-optimises too: its
# implicit reward is fitted to finitely many pairs, and the loss can keep falling by moving probability to
# responses that no pair covers. Their judge was itself a proxy; this course has what they lacked at small
# scale, the ground-truth reward.
#
# The shipped study (`rlhf_core/assets/overoptimisation_study.json`, written by
# `python -m rlhf_core.course.topic_studies --only overoptimisation`, a few minutes per run on one core) runs the
# course default's recipe 2.5 times longer — 500 steps, about 5.8 epochs of the 2768 pairs, its cosine schedule
# stretched over the 500 — at β 0.1 and 0.3, two seeds each. Every 50 steps it measures the held-out reward, the
# KL to the reference and the grammatical fraction (8 samples per held-out prompt), and the held-out pair accuracy
# of the implicit reward. The figures are the shipped study's, made on the machine that made the shipped data.

# %% id="demo-overopt"
from rlhf_core.course.topic_studies import load_overoptimisation_study, peak

over = load_overoptimisation_study()
fig, axes = plt.subplots(1, 2, figsize=(9.4, 3.9))
for run in over["runs"]:
    e = run["evals"]
    style = dict(c="tab:blue" if run["beta"] == 0.1 else "tab:orange", ls="-" if run["seed"] == 0 else "--", marker=".")
    label = f"β {run['beta']}, seed {run['seed']}"
    axes[0].plot([x["kl"] for x in e], [x["reward"] for x in e], label=label, **style)
    axes[1].plot([x["step"] for x in e], [x["grammatical"] for x in e], label=label, **style)
axes[0].set(xlabel="KL(π‖π_ref), nats (sampled)", ylabel="held-out ground-truth reward", title="gold reward against KL")
axes[1].set(xlabel="step", ylabel="fraction grammatical", title="grammatical samples", ylim=(0, 1.02))
for ax in axes:
    ax.grid(alpha=0.3)
axes[0].legend(fontsize=9)
fig.tight_layout()

print(f"{'run':<16}{'epochs':>7}   {'best reward (step, KL, gramm.)':<34}{'at the end (KL, gramm.)':<28}{'held-out pair accuracy: best → end':>36}")
for run in over["runs"]:
    p, last = peak(run), run["evals"][-1]
    best_acc = max(run["evals"], key=lambda x: x["accuracy"])
    print(f"β {run['beta']}, seed {run['seed']:<4}{run['epochs']:7.1f}   {p['reward']:.3f} ({p['step']:3d}, {p['kl']:5.2f}, {p['grammatical']:4.0%})"
          f"{'':<6}{last['reward']:.3f} ({last['kl']:5.2f}, {last['grammatical']:4.0%}){'':<8}"
          f"{best_acc['accuracy']:.2f} (step {best_acc['step']}) → {last['accuracy']:.2f}")

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-overopt-2", "locked": true, "schema_version": 3, "solution": false}
# What the task shows, in all four runs:
#
# - **The gold reward rises, then flattens: no hump.** It climbs to about 0.6 by step 150, at a KL of 13–24 nats,
#   then stays near its best: the best evaluation of each run is 0.64–0.69, and the last is at most 0.04 below it.
#   One run dips: β 0.1 at seed 1 falls from 0.644 at step 250 to 0.588 at step 400 while its KL climbs to 44
#   nats; the same β at seed 0 does not, so one seed's dip is not a law of the task.
# - **The quality falls, and the reward cannot see it.** The grammatical fraction, 98–99 % at step 0 and above 80 %
#   at step 100 in every run, drops to 12–30 % by step 150 and ends at 6–26 %. The spread of the samples' rewards
#   shrinks from about 0.3 to about 0.1: the policy writes one kind of review, positive adjectives stacked past
#   what the grammar allows — section 2's pathology, reached slowly.
# - **The implicit reward still agrees with the labels.** From step 50 on its held-out pair accuracy stays between
#   0.86 and 0.98, while the samples fall apart: judged by its own pairs, the implicit reward model looks fine.
#
# So DPO over-optimises here in the sense that matters — it buys what the reward pays for with what the reward
# does not measure — while the gold reward itself only plateaus, because ours scores sentiment and nothing else
# (a mean of phrase scores, at most 1). A judge that also scored fluency, as the paper's GPT-4 did, would score
# these late checkpoints lower. Read a flat gold reward as the reward's blind spot being exploited, not as safety,
# and choose the checkpoint by held-out quality and KL, not by how long the run was.

# %% [markdown] nbgrader={"grade": false, "grade_id": "ex1-header", "locked": true, "schema_version": 3, "solution": false}
# ### Exercise 1 — `diagnose_run` · ★★☆ · 15 min
#
# Write the function that names a run's failure from its metrics history: a list of row dicts such as
# `{"step": 40, "loss": 0.31, "rewards/accuracies": 0.8, "rewards/margins": 0.4, "logratio/margin": 4.0, ...}`
# (training rows; evaluation rows may carry other names, and not every row has every name). Return one of:
#
# | label | the pattern |
# |---|---|
# | `"diverged"` | a NaN or an inf in any logged value |
# | `"reversed_preferences"` | accuracy ends well below 0.5 (under ~0.3 over the last quarter of the run) and the margin ends negative |
# | `"no_learning"` | the loss stays at $\log 2 \approx 0.693$ and the margin at ~0 throughout |
# | `"margin_explosion"` | the **unscaled** margin (`logratio/margin`) passes 50 nats at some step (the explosion rule above) |
# | `"healthy"` | none of the above |
#
# When several apply, the first in this order wins. The check runs seven textbook runs (including a
# β = 0.5 run whose loss is ~0 at a margin of 120, and a slow but steady one) and compares your labels with
# the library's `diagnose`.

# %% nbgrader={"grade": false, "grade_id": "diagnose_run", "locked": false, "schema_version": 3, "solution": true}
import math

LOG2 = math.log(2.0)


def diagnose_run(history) -> str:
    """Name what went wrong in a DPO run from its metrics history.

    history: a list of row dicts {"step": int, name: float, ...} (or a MetricsHistory, whose .rows is that
    list). Returns "healthy", "margin_explosion", "no_learning", "diverged" or "reversed_preferences".
    """
    ### BEGIN SOLUTION
    rows = list(getattr(history, "rows", history))

    def series(name):
        return [float(row[name]) for row in rows if name in row]

    def last_quarter_mean(values):
        tail = values[-max(1, len(values) // 4):]
        return sum(tail) / len(tail)

    # 1. NaN/inf first: every comparison with NaN is False, so the rules below would miss it
    for row in rows:
        for key, value in row.items():
            if key != "step" and not math.isfinite(float(value)):
                return "diverged"

    losses, accuracies = series("loss"), series("rewards/accuracies")
    margins = series("logratio/margin")            # unscaled: comparable across β

    # 2. the model prefers the rejected responses
    if accuracies and margins and last_quarter_mean(accuracies) < 0.3 and last_quarter_mean(margins) < -0.5:
        return "reversed_preferences"
    # 3. the policy never moved: loss at log 2, margin at 0
    if losses and all(abs(loss - LOG2) < 0.02 for loss in losses) and all(abs(m) < 0.5 for m in margins):
        return "no_learning"
    # 4. the unscaled margin ran away
    if margins and max(margins) > 50:
        return "margin_explosion"
    return "healthy"
    ### END SOLUTION


# %% check="diagnose_run"

# %% [markdown] nbgrader={"grade": false, "grade_id": "ex1-hint", "locked": true, "schema_version": 3, "solution": false}
# <details><summary>Hint</summary>
#
# Collect each metric as a list over the rows that carry it (`[r[name] for r in rows if name in r]`), then
# test the labels in order. **NaN first:** `nan > 50`, `nan < 0.3` and `abs(nan - 0.693) < 0.02` are all
# `False`, so a run with NaNs slips through every later rule; `math.isfinite` catches NaN and inf alike.
# **Use the unscaled margin** `logratio/margin`, not the β-scaled `rewards/margins`: at β = 0.1 an unscaled
# margin of 500 is a scaled 50, and at β = 0.5 a scaled 60 is only 120 nats. **Loss at log 2 with a zero margin
# means no learning** (policy = reference, or no gradient reaching it). Don't use the loss or the accuracy to
# detect an explosion: a healthy run at a large β also has loss ~0 and accuracy ~1.
# </details>

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-14", "locked": true, "schema_version": 3, "solution": false}
# ### Your diagnosis on real runs
#
# Your `diagnose_run` (if it passes its check) on the live runs and on every variant of the shipped study,
# next to what it cannot see — the samples' grammar and the held-out KL — and next to the library's
# `diagnose`, which reads the KL through its drift signal.

# %% id="demo-14"
from rlhf_core.course.notebook import yours_or_reference

diagnose_fn = yours_or_reference("diagnose_run", diagnose_run)

everything = {"live: the pathology": history, "live: the margin cap (30 steps)": capped, "live: the course default": fixed,
              **runs}
print(f"\n{'run':<50} {'diagnose_run':<17} {'diagnose':<24} {'drift at':>8} {'grammatical':>11} {'KL (nats)':>9}")
for name, h in everything.items():
    d = diagnose(h)
    print(f"{name:<50} {diagnose_fn(h.rows):<17} {d.label:<24} {str(d.drift_step or '—'):>8} "
          f"{h.last('eval/grammatical'):11.0%} {h.last('eval/kl'):9.1f}")

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-15", "locked": true, "schema_version": 3, "solution": false}
# The five-label rule catches the explosions — and calls the length-normalised and IPO runs **healthy**,
# although not one of their samples is grammatical and they sit ~300 nats from the reference: their margins
# are per-token and bounded, so nothing in the training margins looks wrong. (The library's `diagnose` calls
# them `likelihood_displacement`, since both log-probs fall, a label the exercise folds into `healthy`.) The
# drift column is what settles it: every run at learning rate $10^{-2}$ passes the 10-nat KL threshold at its
# first evaluation, and no run at $3\times10^{-4}$ does. A diagnosis from training metrics is a first filter; a
# run is healthy only when its held-out KL is modest and its samples still read well.

# %% [markdown] nbgrader={"grade": false, "grade_id": "takeaways", "locked": true, "schema_version": 3, "solution": false}
# ## Takeaways
#
# - Loss ~0 and accuracy 1 say only that the training pairs are separated; past $\beta m \approx 5$ the loss
#   cannot tell a margin of 50 from 500. Watch the **unscaled** margin (`logratio/margin`), the held-out
#   margin and accuracy, the **KL to the reference**, and read samples.
# - The margin is not a KL: it is a log-ratio difference on two fixed, off-policy responses. Crushing a
#   rejected response the reference barely produced raises it by hundreds of nats at almost no KL, and a
#   drifted policy can keep it small. Drift shows in the held-out sampled KL, in the samples, and in both
#   log-probs falling; the margin is the symptom that sends you to look. The course's one explosion rule
#   (50 nats) is calibrated for β = 0.1 and short responses: it scales like 5/β and with response length.
# - Adam's step is $\eta\,\hat m/(\sqrt{\hat v}+\epsilon)$: exactly $\eta$ on the first step, $\approx\eta$ while the gradient
#   keeps its sign and size, and a small fraction of $\eta$ once it shrinks after larger ones (or keeps flipping).
#   In the pathology the step fell to a few per cent of $\eta$ — the damage was done by the first, full-size
#   steps, so the learning rate sets the drift; at batch size 1 each of those steps serves one pair.
# - Length-normalisation, IPO (5 nats *per token* at β 0.1 in the course's and TRL's convention), conservative
#   DPO, a margin cap and a larger β bound or move the margin; a larger batch makes the drift generalise. In
#   our study (one seed per variant, contrasts far beyond seed noise) only a smaller step stopped the drift —
#   and early stopping cannot rescue a run whose damage is done before the first evaluation.
# - β prices the KL. On the reward-vs-KL frontier — a sequence-level KL, estimated from samples with an
#   estimator that is unbiased but noisy and negative for some samples — DPO goes past Preferred-FT's plateau
#   (the best-of-4 imitation; the population best-of-4 policy is ≤ 0.64 nats from the reference, Beirami et
#   al. 2024), though not at the smallest KLs, where one seed cannot separate them.
# - Trained 2.5 times longer, DPO over-optimises: the ground-truth reward climbs, then plateaus,
#   while the grammatical fraction collapses and the implicit reward's held-out accuracy stays high. Pick a
#   checkpoint by held-out quality and KL.
#
# ## Interview questions this prepares you for
#
# 1. Your DPO run reaches loss 0 and accuracy 1 by step 30. Good or bad? What do you look at next?
# 2. What is a healthy reward margin, and why quote it unscaled? Is the margin a KL? How can it grow by
#    hundreds of nats while the KL barely moves?
# 3. Why does batch size 1 hurt? What is Adam's step, when is it about the learning rate, and what happens to
#    it when the gradient shrinks?
# 4. Which fixes bound the margin and which stop the drift? How would you tell them apart in a run?
# 5. Why can single-pair training margins be far larger than the held-out margin?
# 6. What does β trade off? What does the reward-vs-KL frontier show, which KL does it plot, and why does
#    Preferred-FT plateau?
# 7. Token-level or sequence-level KL: how are they related, which does PPO penalise, and why can one
#    sample's KL estimate be negative?
# 8. Where do IPO, conservative DPO, SimPO, ORPO and KTO differ from DPO's loss, and which of them keep a
#    reference model?
# 9. Does DPO over-optimise without a reward model? What happens to a gold reward, to the samples and to the
#    implicit reward's accuracy when you train much longer?
