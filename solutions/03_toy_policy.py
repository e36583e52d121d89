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
# # 03 · A toy categorical policy: DPO recovers a known ranking
#
# Before DPO touches a language model, it is worth watching it work where you can see everything. Here a
# "policy" is one categorical distribution over six responses per prompt, its logits are the only
# parameters, and the preferences come from a ranking we chose. Train with nothing but the DPO loss —
# no reward model, no sampling — and the policy's implicit reward sorts the responses exactly as the
# ranking did. The same small world then shows what $\beta$ really controls, and why preferences that
# are never contradicted push the policy without limit.
#
# **Goals**
# - build the drill's toy task: a categorical policy, a frozen reference, 30 preference pairs;
# - implement one DPO update, `toy_dpo_step`, and train with it;
# - read the learned ranking off the implicit reward $\beta \log \pi_\theta / \pi_\text{ref}$;
# - see that with noisy (Bradley–Terry) preferences DPO lands on the closed-form optimum
#   $\pi^* \propto \pi_\text{ref}\, e^{r/\beta}$ of notebook 01, and that with noiseless ones it never stops.
#
# **Prerequisites:** notebook 01 ($\pi^*$ and the role of $\beta$) and notebook 02 (`dpo_loss`,
# `implicit_reward`); an optimizer loop in PyTorch (`zero_grad`, `backward`, `step`).
#
# **Time:** about 35 minutes.

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-01", "locked": true, "schema_version": 3, "solution": false}
# ## 1. The task: two prompts, six responses, two rankings
#
# The policy $\pi_\theta(y \mid x) = \mathrm{softmax}(\theta_x)_y$ has one row of six logits per prompt
# $x \in \{0, 1\}$ — the logits *are* the policy. `ToyPolicy` starts them at zero, the uniform policy.
# In this toy a "response" is a single choice, so its log-probability is one entry of a log-softmax row
# (for a language model it will be a sum over tokens, notebook 04).
#
# The preferences come from two known rankings, best first: prompt 0 prefers $0 \succ 1 \succ \dots \succ 5$,
# prompt 1 the reverse. Every ordered pair of a ranking is one preference $(x, y_w, y_l)$:
# $\binom{6}{2} = 15$ per prompt, 30 in all. `make_toy_pairs` returns them as three index tensors.

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false}
# Setup: run this cell first. Where rlhf_core is missing (Colab, a fresh kernel) it installs the course
# library, keeping the torch already there; then it checks the environment and fixes the random seed.
COURSE_REPO_URL = "https://github.com/dpo-paper-to-code/dpo-paper-to-code"
SEED = 3
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
import torch
from rlhf_core.toy import TOY_RANKINGS, ToyPolicy, make_toy_pairs

policy = ToyPolicy(n_prompts=2, n_responses=6)
all_prompts = torch.arange(2)
print("logits:", tuple(policy.logits.shape), "requires_grad =", policy.logits.requires_grad)
print("π(y|x) at the start:\n", policy.logprobs(all_prompts).exp().detach())

prompt_idx, chosen_idx, rejected_idx = make_toy_pairs(TOY_RANKINGS)
print(f"\n{len(prompt_idx)} preference pairs (y_w preferred over y_l):")
for p, order in TOY_RANKINGS.items():
    rows = prompt_idx == p
    print(f"prompt {p}  ranking {' > '.join(map(str, order))}")
    print("   y_w (chosen)   :", " ".join(str(int(c)) for c in chosen_idx[rows]))
    print("   y_l (rejected) :", " ".join(str(int(r)) for r in rejected_idx[rows]))

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-02", "locked": true, "schema_version": 3, "solution": false}
# ## 2. The reference must be a frozen *copy*
#
# The $\log \pi_\text{ref}$ terms in the DPO loss are what is left of the KL penalty
# $\beta\,\mathrm{KL}(\pi_\theta \,\|\, \pi_\text{ref})$ of the RLHF objective: the anchor the policy is
# measured against. That anchor is the policy *as it was before training*, and it must stay put:
#
# - **a copy, not the same object.** With `ref = policy` the reference moves with every update, every
#   log-ratio $\log \pi_\theta - \log \pi_\text{ref}$ is identically 0, and the printed loss reads $\log 2$
#   forever — while the policy, pushed by the gradient, drifts with no anchor at all;
# - **frozen.** No optimizer may update it, and it needs no gradients: `requires_grad_(False)` saves the
#   memory and compute of a second backward graph (it matters for a real model) and makes an accidental
#   update impossible;
# - **in eval mode.** A model with dropout would give a *random* reference log-prob otherwise. `ToyPolicy`
#   has no dropout, so here it is only a habit — a good one.
#
# `rlhf_core.toy.frozen_copy` does all three: `copy.deepcopy`, `requires_grad_(False)` on every
# parameter, `.eval()`. The cell below checks each, then shows the aliasing mistake.

# %% id="demo-02"
from rlhf_core import dpo_loss
from rlhf_core.toy import frozen_copy

ref = frozen_copy(policy)
print("a separate object            :", ref is not policy)
print("separate storage             :", ref.logits.data_ptr() != policy.logits.data_ptr())
print("no parameter requires grad   :", not any(p.requires_grad for p in ref.parameters()))
print("eval mode                    :", not ref.training)
print("same values as the policy    :", torch.equal(ref.logits, policy.logits))

# The mistake: the "reference" is the policy itself (a throw-away policy, so ours stays uniform).
pick = lambda t, i: t.gather(1, i[:, None]).squeeze(1)   # (K, N), (K,) -> (K,)
runaway = ToyPolicy(2, 6)
opt = torch.optim.SGD(runaway.parameters(), lr=1.0)
print("\nwith ref = policy:")
for step_no in range(1, 4):
    logp = runaway.logprobs(prompt_idx)
    with torch.no_grad():
        logp_ref = runaway.logprobs(prompt_idx)                      # the same model: log-ratios are 0
    loss = dpo_loss(pick(logp, chosen_idx), pick(logp, rejected_idx),
                    pick(logp_ref, chosen_idx), pick(logp_ref, rejected_idx), beta=0.1)
    opt.zero_grad()
    loss.backward()
    opt.step()
    print(f"  step {step_no}: loss = {loss.item():.4f}   logits of prompt 0 = {runaway.logits[0].detach().numpy().round(3)}")

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-03", "locked": true, "schema_version": 3, "solution": false}
# The loss never leaves $\log 2 \approx 0.6931$, yet the logits move: a run like this looks "stuck" on
# the loss curve while the policy is in fact drifting without any KL anchor.
#
# ## 3. One DPO step on the toy
#
# For a batch of $K$ pairs the loss is notebook 02's, with each response's log-probability read from a
# log-softmax row:
#
# $$\mathcal{L}(\theta) = -\frac{1}{K}\sum_{k} \log \sigma\Big(\beta\big[(\log \pi_\theta(y_w^k|x^k) - \log \pi_\text{ref}(y_w^k|x^k)) - (\log \pi_\theta(y_l^k|x^k) - \log \pi_\text{ref}(y_l^k|x^k))\big]\Big).$$
#
# | math | code |
# |---|---|
# | $\log \pi_\theta(\cdot \mid x^k)$, one row per pair | `logp_pol = policy.logprobs(prompt_idx)` — shape `(K, 6)` |
# | $\log \pi_\theta(y_w^k \mid x^k)$ | `logp_pol.gather(1, chosen_idx[:, None]).squeeze(1)` — shape `(K,)` (same for $y_l$) |
# | $\log \pi_\text{ref}(\cdot \mid x^k)$, a constant | `with torch.no_grad(): logp_ref = ref.logprobs(prompt_idx)` |
# | $\mathcal{L}$ | `dpo_loss(pol_chosen, pol_rejected, ref_chosen, ref_rejected, beta=beta)` |
# | $\theta \leftarrow \theta - \eta\, \nabla_\theta \mathcal{L}$ | `optimizer.zero_grad()`, `loss.backward()`, `optimizer.step()` |
#
# `batch = (prompt_idx, chosen_idx, rejected_idx)` is exactly what `make_toy_pairs` returns (or any
# subset of its rows).

# %% [markdown] nbgrader={"grade": false, "grade_id": "ex1-header", "locked": true, "schema_version": 3, "solution": false}
# ### Exercise 1 — `toy_dpo_step` · ★★☆ · 10 min
#
# Write one full update. The exercise imports the library's `dpo_loss`; to run **your** loss from
# notebook 02 instead, paste your `dpo_loss` definition into this cell in place of the import line — the
# check compares only what the step does, so either works as long as your loss is correct.

# %% nbgrader={"grade": false, "grade_id": "toy_dpo_step", "locked": false, "schema_version": 3, "solution": true}
import torch
from rlhf_core import dpo_loss


def toy_dpo_step(policy, ref, batch, optimizer, beta=0.1):
    """One DPO update of a ToyPolicy; returns the loss (before the update) as a Python float.

    policy: ToyPolicy being trained (its logits are (P, N)); ref: the frozen reference ToyPolicy.
    batch = (prompt_idx, chosen_idx, rejected_idx), each a (K,) long tensor.
    optimizer: built on policy.parameters(). The reference log-probs carry no gradient.
    """
    ### BEGIN SOLUTION
    prompt_idx, chosen_idx, rejected_idx = batch
    logp_pol = policy.logprobs(prompt_idx)                 # (K, N)
    with torch.no_grad():
        logp_ref = ref.logprobs(prompt_idx)                # (K, N), no graph

    def pick(logp, idx):                                   # (K, N), (K,) -> (K,)
        return logp.gather(1, idx[:, None]).squeeze(1)

    loss = dpo_loss(pick(logp_pol, chosen_idx), pick(logp_pol, rejected_idx),
                    pick(logp_ref, chosen_idx), pick(logp_ref, rejected_idx), beta=beta)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
    ### END SOLUTION


# %% check="toy_dpo_step"

# %% [markdown] nbgrader={"grade": false, "grade_id": "ex1-hint", "locked": true, "schema_version": 3, "solution": false}
# <details><summary>Hint</summary>
#
# Unpack the batch; `policy.logprobs(prompt_idx)` gives a `(K, N)` table, and
# `table.gather(1, idx[:, None]).squeeze(1)` picks one entry per row. Compute the reference's table the
# same way inside `with torch.no_grad():`. Then `dpo_loss(...)` with `beta=beta` passed on, and the
# three optimizer calls in the order `zero_grad`, `backward`, `step`. Return `loss.item()` — the loss
# the gradient came from, not one recomputed after the step.
# </details>

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-04", "locked": true, "schema_version": 3, "solution": false}
# ## 4. Training: 400 steps on all 30 pairs
#
# Full batch, Adam with learning rate 0.05, $\beta = 0.1$ — the drill's settings. The first loss must be
# $\log 2$: policy and reference are equal at step 0, so every margin is 0.

# %% id="demo-03"
from tqdm.auto import tqdm
from rlhf_core.course.notebook import yours_or_reference

step = yours_or_reference("toy_dpo_step", toy_dpo_step)
torch.manual_seed(0)
beta = 0.1
policy = ToyPolicy(2, 6)
ref = frozen_copy(policy)
batch = make_toy_pairs(TOY_RANKINGS)
optimizer = torch.optim.Adam(policy.parameters(), lr=0.05)
before = policy.logprobs(all_prompts).exp().detach()

losses = [step(policy, ref, batch, optimizer, beta=beta) for _ in tqdm(range(400), desc="DPO steps")]
after = policy.logprobs(all_prompts).exp().detach()
print(f"loss at step 0: {losses[0]:.4f} (log 2 = {torch.log(torch.tensor(2.0)):.4f});  after 400 steps: {losses[-1]:.4f}")

# %% id="demo-04"
import math
import matplotlib.pyplot as plt
from rlhf_core.plots import plot_probability_bars

fig, ax = plt.subplots(figsize=(5.5, 3))
ax.plot(losses, label="DPO loss")
ax.axhline(math.log(2), ls="--", c="grey", label="log 2: policy = reference")
ax.set(xlabel="step", ylabel="loss", title="training loss, β = 0.1")
ax.legend()
fig.tight_layout()

tops = [order[0] for order in TOY_RANKINGS.values()]
fig2 = plot_probability_bars(before, after, title="π(y|x) before and after DPO (bold: the top-ranked response)",
                             highlight=tops)

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-05", "locked": true, "schema_version": 3, "solution": false}
# The mass has moved onto each prompt's top-ranked response (response 0 for prompt 0, response 5 for
# prompt 1), starting from the uniform $1/6$. Now read the ranking back off the policy, without ever
# having fitted a reward: sort the responses by the implicit reward
# $\hat r(x, y) = \beta \log \frac{\pi_\theta(y|x)}{\pi_\text{ref}(y|x)}$.

# %% id="demo-05"
from rlhf_core import implicit_reward

with torch.no_grad():
    rewards = implicit_reward(policy.logprobs(all_prompts), ref.logprobs(all_prompts), beta=beta)  # (2, 6)

fig, axes = plt.subplots(1, 2, figsize=(9, 3), sharey=True)
for p, ax in enumerate(axes):
    induced = rewards[p].argsort(descending=True).tolist()
    print(f"prompt {p}: implicit rewards {rewards[p].numpy().round(2)}")
    print(f"          ranking they induce {induced}, the preferences' ranking {TOY_RANKINGS[p]}, "
          f"match: {induced == TOY_RANKINGS[p]}")
    colors = ["tab:green" if y == TOY_RANKINGS[p][0] else "tab:blue" for y in range(6)]
    ax.bar(range(6), rewards[p], color=colors)
    for rank, y in enumerate(induced, start=1):
        ax.annotate(f"#{rank}", (y, rewards[p, y].item()), ha="center",
                    va="bottom" if rewards[p, y] >= 0 else "top", fontsize=8)
    ax.axhline(0, c="grey", lw=0.8)
    ax.margins(y=0.15)
    ax.set(xlabel="response", title=f"prompt {p}")
axes[0].set_ylabel("β · log π/π_ref")
fig.suptitle("implicit reward per response (#k: its rank)")
fig.tight_layout()

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-06", "locked": true, "schema_version": 3, "solution": false}
# Every one of the 30 preferences is reproduced: the implicit reward is strictly decreasing along each
# ranking. Is that bound to happen? The loss explains the direction: it is the Bradley–Terry likelihood
# with the implicit reward in place of $r$, so a pair $y_w \succ y_l$ lowers its loss only by making
# $\hat r(y_w) - \hat r(y_l)$ larger, and every pair of each ranking is in the data. It does not promise a
# *strict* order after a given number of steps: Adam's first step moves each logit by $\pm\eta$, the sign of
# its gradient, so several responses get identical updates and tie (the cell below shows step 1). The strict
# order after 400 steps is a measured fact of this run, which sanity check 5 below verifies; it is not implied.

# %% id="demo-05b"
from rlhf_core.toy import toy_dpo_step as library_step

one = ToyPolicy(2, 6)
library_step(one, frozen_copy(one), make_toy_pairs(TOY_RANKINGS), torch.optim.Adam(one.parameters(), lr=0.05), beta=0.1)
print("logits after Adam's first step (lr 0.05):")
print(one.logits.detach().numpy().round(3))
print("distinct logits among the 6 responses, per prompt:", [len(set(row.tolist())) for row in one.logits.detach()])

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-06b", "locked": true, "schema_version": 3, "solution": false}
# ## 5. Sanity checks 2, 3 and 5 of the drill
#
# Notebook 02 passed checks 1, 4 and 6 (the loss and the reward on their own). The remaining three need a
# training step, so they run on **your** `toy_dpo_step` (not the fallback): **(3)** one step sends a
# non-zero, finite gradient to the policy and moves it; **(2)** after 400 steps the reference has no
# trainable parameter and has not moved; **(5)** the implicit reward ranks every prompt's responses as the
# preferences do, and each top response gained probability.

# %% nbgrader={"grade": true, "grade_id": "sanity_2_3_5", "locked": true, "points": 2, "schema_version": 3, "solution": false}
from rlhf_core.checks import check_toy_training
check_toy_training(toy_dpo_step)

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-07", "locked": true, "schema_version": 3, "solution": false}
# ## 6. Preferences that are never contradicted have no finite optimum
#
# The loss above was still falling at step 400. It always will be. Each pair's loss $-\log\sigma(h)$
# reaches 0 only as its margin $h \to \infty$, and in this data no pair is ever seen the other way round,
# so nothing pushes back: the loss has no minimum at any finite logits, and the probability of the best
# response creeps towards 1.
#
# Does a larger $\beta$ hold the policy back? Below, the same training for 800 steps at $\beta = 0.1$ and
# at $\beta = 1$. At steps 100, 400 and 800 the cell prints, for prompt 0: the *unscaled* log-ratio margin
# between the best and the worst response,
# $\log\frac{\pi_\theta(y_\text{best})}{\pi_\text{ref}(y_\text{best})} - \log\frac{\pi_\theta(y_\text{worst})}{\pi_\text{ref}(y_\text{worst})}$
# in nats (lesson 08 logs the same quantity, averaged over a batch, as `logratio/margin`); that margin
# times $\beta$, which is what the loss sees; $\pi(\text{best})$; and $\mathrm{KL}(\pi_\theta \,\|\, \pi_\text{ref})$,
# how far the policy has moved from the reference.

# %% id="demo-06"
steps_long, every, report = 800, 10, (100, 400, 800)
best, worst = TOY_RANKINGS[0][0], TOY_RANKINGS[0][-1]
trace, at, probs_100 = {}, {}, {}
for b in tqdm([0.1, 1.0], desc="β"):
    pol = ToyPolicy(2, 6)
    anchor = frozen_copy(pol)
    opt = torch.optim.Adam(pol.parameters(), lr=0.05)
    rows = []
    for s in range(1, steps_long + 1):
        loss_value = step(pol, anchor, batch, opt, beta=b)
        if s % every == 0:
            with torch.no_grad():
                logp = pol.logprobs(all_prompts)[0]                        # prompt 0: (6,)
                logratio = logp - anchor.logprobs(all_prompts)[0]          # log π/π_ref: (6,)
            ranked = logratio[TOY_RANKINGS[0]]                             # best … worst
            rows.append(dict(step=s, loss=loss_value, margin=(logratio[best] - logratio[worst]).item(),
                             top=logp[best].exp().item(), kl=(logp.exp() * logratio).sum().item(),
                             ordered=bool((ranked[:-1] > ranked[1:]).all())))
            if s == 100:
                probs_100[b] = logp.exp().numpy().round(3)
    trace[b] = rows
    at.update({(b, r["step"]): r for r in rows if r["step"] in report})

print(f"{'prompt 0':<8}{'step':>6}  {'loss':>6}  {'margin best−worst':>17}  {'β × margin':>10}  {'π(best)':>7}  {'KL(π‖π_ref)':>13}")
for (b, s), r in at.items():
    print(f"β = {b:<4}{s:6d}  {r['loss']:.4f}  {r['margin']:12.2f} nats  {b * r['margin']:10.2f}  "
          f"{r['top']:7.4f}  {r['kl']:8.3f} nats")
print("\nπ(y | prompt 0) at step 100:  β = 0.1", probs_100[0.1], "\n                              β = 1  ", probs_100[1.0])
print(f"step 800: the β = 0.1 margin is {at[0.1, 800]['margin'] / at[1.0, 800]['margin']:.1f} times the β = 1 margin")
r = at[0.1, 800]
print(f"\nβ = 0.1, step 800: unscaled margin {r['margin']:.1f} nats; all 15 preferences of prompt 0 still hold: "
      f"{r['ordered']};\n  KL(π‖π_ref) = {r['kl']:.3f} nats (at step 400: {at[0.1, 400]['kl']:.3f}); no policy over six "
      f"responses is further than log 6 = {math.log(6):.3f} nats from a uniform reference")

fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(9.4, 3.5))
for b, rows in trace.items():
    s = [r["step"] for r in rows]
    ax1.plot(s, [r["margin"] for r in rows], label=f"β = {b}")
    ax2.plot(s, [r["top"] for r in rows], label=f"β = {b}")
    ax3.plot(s, [r["kl"] for r in rows], label=f"β = {b}")
ax3.axhline(math.log(6), ls="--", c="grey", lw=1, label="log 6: the most there is")
ax1.set(xlabel="step", ylabel="log π/π_ref: best − worst (nats)", title="the margin never settles")
ax2.set(xlabel="step", ylabel="π(best response | prompt 0)", title="mass piles onto the best response")
ax3.set(xlabel="step", ylabel="KL(π ‖ π_ref) (nats)", title="while the KL levels off")
for ax in (ax1, ax2, ax3):
    ax.legend(fontsize=9)
fig.tight_layout()

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-08", "locked": true, "schema_version": 3, "solution": false}
# **What the numbers show.** A ten times larger $\beta$ does change where the policy is after a fixed
# number of steps, and not in one direction. At step 100 the run with $\beta = 1$ has put *more* of prompt
# 0's mass on the best response than the run with $\beta = 0.1$, while its best–worst margin is the smaller
# one: at $\beta = 0.1$ the two best responses are still close in probability (the rows of $\pi$ printed at
# step 100), at $\beta = 1$ they have already separated. By step 800 the $\beta = 0.1$ margin is the larger
# by a wide factor (printed) and its $\pi(\text{best})$ the closer to 1. Why: DPO weighs each pair's
# gradient by $\sigma(-h)$, with $h$ the pair's margin times $\beta$ (notebook 02). At $\beta = 1$ the pairs
# that are already far apart stop pulling early — the $\beta \times$ margin column is already large at step
# 100 — and what still pulls are the close pairs, the best response against its neighbours; at
# $\beta = 0.1$ every pair keeps pulling for much longer. And Adam does not turn the ten times larger
# initial gradient of $\beta = 1$ into ten times faster logits: its update is unchanged when the *whole*
# gradient is multiplied by one constant, which is what β does at step 1 (every margin is 0 there). That
# holds for a constant rescaling only; when the gradient shrinks during a run, Adam's steps shrink too
# (lesson 09 measures it). At both values the
# margin keeps growing: $\beta$ changes the path, and stops neither.
#
# **A large margin alone is not drift.** At $\beta = 0.1$ the unscaled margin reaches tens of nats while the
# policy does exactly what its noiseless data asks — every preference holds — and from step 400 to 800 it
# keeps climbing while the KL to the reference barely moves (it can never pass $\log 6$ here): what grows is
# the worst response's log-probability heading to $-\infty$, at almost no cost in KL. How far a policy has
# moved is a question for the KL, which lessons 08 and 09 measure next to the margin.
#
# Real preference data is never this clean — annotators disagree — but a data set with many
# near-deterministic pairs drives the same runaway margins. Notebook 09 diagnoses it in real runs.
#
# ## 7. Noisy preferences: DPO lands on $\pi^*$, and $\beta$ sets how far it moves
#
# Now let the labels be *sampled* from a Bradley–Terry model with known, finite rewards. For prompt 0
# take $r = (2, 1.2, 0.5, 0, -0.8, -1.5)$ (prompt 1: the same values reversed), and for every pair
# $(a, b)$ draw many labels, each saying $a \succ b$ with probability $p_{ab} = \sigma(r_a - r_b)$.
#
# What does DPO converge to? A pair seen as $a \succ b$ a fraction $p$ of the time and $b \succ a$
# otherwise contributes, per label, $-p \log\sigma(h) - (1-p)\log\sigma(-h)$ with $h = \hat r(a) - \hat r(b)$.
# Its derivative in $h$ is $\sigma(h) - p$, zero at $\sigma(h) = p$, i.e. $h = r_a - r_b$. So at the
# optimum the implicit reward differences equal the true ones,
# $\beta \log \frac{\pi(y|x)}{\pi_\text{ref}(y|x)} = r(x, y) - c(x)$, which says exactly
# $\pi \propto \pi_\text{ref}\, e^{r/\beta} = \pi^*$ — notebook 01's closed form. With $p = 1$ (section 6)
# the same equation asks for $h = \infty$.
#
# The sampled labels' win rates are not exactly $p_{ab}$, so DPO fits *those* — expect agreement up to
# sampling noise.

# %% id="demo-07"
from rlhf_core.objective import bradley_terry_prob

r0 = torch.tensor([2.0, 1.2, 0.5, 0.0, -0.8, -1.5])
true_r = torch.stack([r0, r0.flip(0)])                    # (2, 6): prompt 1 has the reversed ranking
labels_per_pair = 200
g = torch.Generator().manual_seed(0)
P, C, R = [], [], []
for p in range(2):
    for a in range(6):
        for b in range(a + 1, 6):
            a_wins = torch.rand(labels_per_pair, generator=g) < bradley_terry_prob(true_r[p, a], true_r[p, b])
            P.append(torch.full((labels_per_pair,), p))
            C.append(torch.where(a_wins, a, b))
            R.append(torch.where(a_wins, b, a))
soft_batch = (torch.cat(P), torch.cat(C), torch.cat(R))
print(f"{len(soft_batch[0])} sampled preference labels ({labels_per_pair} per pair of responses)")
for a, b in [(0, 1), (0, 5), (2, 3)]:
    mask = (soft_batch[0] == 0) & (((soft_batch[1] == a) & (soft_batch[2] == b)) | ((soft_batch[1] == b) & (soft_batch[2] == a)))
    rate = (soft_batch[1][mask] == a).float().mean().item()
    print(f"prompt 0, {a} vs {b}: {a} chosen in {rate:.3f} of labels;  σ(r_{a} − r_{b}) = {bradley_terry_prob(r0[a], r0[b]).item():.3f}")

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-09", "locked": true, "schema_version": 3, "solution": false}
# Train a fresh policy on these labels for three values of $\beta$ (same step, full batch, Adam,
# 300 steps) and compare with the exact $\pi^* \propto \pi_\text{ref}\, e^{r/\beta}$ from
# `rlhf_core.optimal_policy`.

# %% id="demo-08"
from rlhf_core import optimal_policy

betas = [0.25, 1.0, 4.0]
trained, exact, ref_logp = {}, {}, {}
for b in tqdm(betas, desc="β"):
    pol = ToyPolicy(2, 6)
    anchor = frozen_copy(pol)
    opt = torch.optim.Adam(pol.parameters(), lr=0.05)
    for _ in range(300):
        step(pol, anchor, soft_batch, opt, beta=b)
    with torch.no_grad():
        trained[b] = pol.logprobs(all_prompts)                                   # (2, 6) log-probs
        ref_logp[b] = anchor.logprobs(all_prompts)                               # (2, 6), uniform
        exact[b] = optimal_policy(ref_logp[b], true_r, b)                        # (2, 6) log-probs
    gap = (trained[b].exp() - exact[b].exp()).abs().max().item()
    print(f"β = {b:<4}  π(best): trained {trained[b][0, 0].exp():.3f}, exact π* {exact[b][0, 0].exp():.3f};  "
          f"largest |π − π*| = {gap:.3f}")

fig, axes = plt.subplots(1, len(betas), figsize=(9.4, 3.3), sharey=True)
x = torch.arange(6)
for ax, b in zip(axes, betas):
    ax.bar(x - 0.2, exact[b][0].exp(), 0.4, label="exact π*", color="0.65")
    ax.bar(x + 0.2, trained[b][0].exp(), 0.4, label="DPO-trained π", color="tab:blue")
    ax.axhline(1 / 6, ls=":", c="0.3", lw=1, label="π_ref (uniform)")
    ax.set(xlabel="response", title=f"prompt 0, β = {b}")
axes[0].set_ylabel("probability")
axes[0].legend(fontsize=9, loc="upper right")
fig.tight_layout()

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-10", "locked": true, "schema_version": 3, "solution": false}
# Small $\beta$ lets the policy move far from $\pi_\text{ref}$ — almost all mass on the best response at
# $\beta = 0.25$ — and large $\beta$ keeps it close to uniform; in each case DPO matches the closed form
# without ever seeing a reward. The trained policies differ a lot, but the *reward* they imply does not:
# $\beta \log \pi/\pi_\text{ref}$ should be $r$ up to a per-prompt constant for every $\beta$. Centre both
# (subtract each prompt's mean over responses) and compare. (Sanity check 6 said the implicit reward
# doubles with $\beta$ — for a *fixed* policy. Here the policy itself changes with $\beta$, exactly so that
# $\beta \log \pi/\pi_\text{ref}$ stays $r$.)

# %% id="demo-09"
fig, ax = plt.subplots(figsize=(4.5, 4))
centred_true = true_r - true_r.mean(dim=1, keepdim=True)
for b, marker in zip(betas, "osD"):
    imp = implicit_reward(trained[b], ref_logp[b], beta=b)                         # (2, 6)
    imp = imp - imp.mean(dim=1, keepdim=True)
    ax.scatter(centred_true.flatten(), imp.flatten(), marker=marker, label=f"β = {b}", alpha=0.7)
    print(f"β = {b:<4}  largest |implicit − true| after centring: {(imp - centred_true).abs().max().item():.3f}")
lim = [-2.5, 2.5]
ax.plot(lim, lim, c="grey", ls="--", lw=1, label="y = x")
ax.set(xlabel="true reward r − mean(r)", ylabel="β·log π/π_ref − its mean", title="the implicit reward recovers r")
ax.legend(fontsize=9)
fig.tight_layout()

# %% [markdown] nbgrader={"grade": false, "grade_id": "takeaways", "locked": true, "schema_version": 3, "solution": false}
# ## Takeaways
#
# - The toy task is DPO with nothing hidden: logits as the policy, a frozen copy as the reference, 30 pairs
#   from two rankings, and the DPO loss as the only training signal — no reward model, no sampling.
# - The reference must be a separate, frozen copy of the starting policy. Aliasing it to the policy
#   pins the loss at $\log 2$ while the policy drifts with no anchor.
# - The loss starts at $\log 2$; after training, sorting by the implicit reward $\beta \log \pi/\pi_\text{ref}$
#   reproduces every preference.
# - With preferences that are never contradicted, the DPO loss has no finite minimum: margins grow for as
#   long as you train, and $\beta$ does not stop them. With Adam, a ten times larger $\beta$ changes the
#   path — which pairs still pull — more than the speed.
# - A large margin is not by itself drift: the toy's margin climbs by tens of nats at almost no cost in KL.
#   How far the policy moved is read off the KL to the reference.
# - With Bradley–Terry-noisy preferences, DPO's optimum is the RLHF optimum
#   $\pi^* \propto \pi_\text{ref}\, e^{r/\beta}$: $\beta$ decides how far the policy moves from the
#   reference, while the implicit reward recovers $r$ up to a per-prompt constant at every $\beta$.
#
# ## Interview questions this prepares you for
#
# 1. Why must the reference policy be frozen — and be a *copy*? What goes wrong if it is the policy itself?
# 2. What is the DPO loss at initialisation, and why?
# 3. Why does ordering responses by the implicit reward recover the preference ranking?
# 4. What happens with deterministic versus noisy preferences? Does the DPO loss always have a finite minimiser?
# 5. What does $\beta$ control? If you double it, what happens to the optimal policy and to the implicit reward?
# 6. A run's unscaled margin is 50 nats. Has the policy drifted far from the reference? What would you measure?
