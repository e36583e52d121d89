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
# # 01 · The RLHF objective and its closed-form optimum
#
# Everything DPO does rests on one fact: the objective that RLHF's reinforcement-learning stage
# maximises — expected reward minus a KL penalty that keeps the policy near a reference model — has an
# optimum you can write down in one line, $\pi^* \propto \pi_\text{ref}\, e^{r/\beta}$. On a
# language model that formula cannot be evaluated directly, which is why PPO samples and climbs
# gradients instead. Here we shrink the world to a handful of candidate responses, where every sum is
# exact: you will write the objective and its optimum, watch gradient ascent converge to the formula,
# and see what the temperature $\beta$ trades away.
#
# **Goals**
# - state the KL-regularised objective $J(\pi) = \mathbb{E}_{y\sim\pi}[r(y)] - \beta\,\mathrm{KL}(\pi\,\|\,\pi_\text{ref})$ and what each term is for;
# - derive $\pi^* = \pi_\text{ref}\, e^{r/\beta} / Z$ and $J(\pi^*) = \beta \log Z$ in three lines;
# - implement `rlhf_objective` (with $0 \cdot \log 0 = 0$) and `optimal_policy` (stable for small $\beta$);
# - check numerically that gradient ascent reaches the closed form and that no policy beats it;
# - read the reward-vs-KL trade-off that $\beta$ controls.
#
# **Prerequisites:** expectations and the KL divergence $\mathrm{KL}(p\,\|\,q) = \sum_y p(y) \log \frac{p(y)}{q(y)}$;
# PyTorch tensors, `torch.log_softmax` and `torch.logsumexp`. No earlier notebook.
#
# **Time:** about 45 minutes.

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-01", "locked": true, "schema_version": 3, "solution": false}
# ## 1. The objective RLHF maximises
#
# RLHF fine-tunes a language model in three stages: supervised fine-tuning gives a reference policy
# $\pi_\text{ref}$; a reward model $r(x, y)$ is fitted to human preference pairs (notebook 02); then
# reinforcement learning — PPO, in InstructGPT and in the DPO paper's Eq. 3 — maximises
#
# $$J(\pi) = \mathbb{E}_{x\sim\mathcal{D}}\Big[\, \mathbb{E}_{y\sim\pi(\cdot|x)}\big[r(x, y)\big] \;-\; \beta\, \mathrm{KL}\big(\pi(\cdot|x)\,\|\,\pi_\text{ref}(\cdot|x)\big) \Big].$$
#
# - **The reward term** $\mathbb{E}_{y\sim\pi}[r]$ is averaged over the policy's *own* responses: raising it
#   means moving probability towards responses the reward model likes.
# - **The KL term** $\mathrm{KL}(\pi\,\|\,\pi_\text{ref}) = \sum_y \pi(y) \log \frac{\pi(y)}{\pi_\text{ref}(y)} \ge 0$
#   is zero only when $\pi = \pi_\text{ref}$. It is a leash: the reward model was trained on responses
#   like the reference's and is only trustworthy near them. Without it the policy piles all its mass
#   on whatever the reward model happens to overrate (*reward hacking*), and loses the fluency and
#   variety of the reference.
# - **$\beta > 0$** is the exchange rate: how much reward one nat of divergence must buy to be worth it.
#
# Prompts do not interact — each prompt's term depends only on $\pi(\cdot|x)$ — so we can study one
# prompt at a time, and a batch of prompts is just a batch of independent problems. For a language
# model $y$ ranges over all token sequences and PPO can only *estimate* these expectations from samples.
# Here one prompt has **6 candidate responses**, a policy is a vector of 6 probabilities (kept as
# log-probs), and every sum is exact.
#
# | math | code (`policy_logprobs`, `ref_logprobs`, `rewards`: shape `(..., N)`) |
# |---|---|
# | $\pi(y)$ | `p = policy_logprobs.exp()` |
# | $\mathbb{E}_{y\sim\pi}[r] = \sum_y \pi(y)\, r(y)$ | `(p * rewards).sum(-1)` |
# | $\mathrm{KL}(\pi\,\|\,\pi_\text{ref}) = \sum_y \pi(y)\,\big(\log\pi(y) - \log\pi_\text{ref}(y)\big)$ | `(p * (policy_logprobs - ref_logprobs)).sum(-1)`, with a guard (Exercise 1) |
# | $J = \mathbb{E}_\pi[r] - \beta\,\mathrm{KL}$ | `expected_reward - beta * kl`: one number per prompt |
#
# Our prompt and its six responses: a reference that mostly produces middling answers, and a reward
# model that likes the rarely produced *helpful* one best.

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false}
# Setup: run this cell first. Where rlhf_core is missing (Colab, a fresh kernel) it installs the course
# library, keeping the torch already there; then it checks the environment and fixes the random seed.
COURSE_REPO_URL = "https://github.com/dpo-paper-to-code/dpo-paper-to-code"
SEED = 1
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

import matplotlib.pyplot as plt
import torch

RESPONSES = ["terse", "helpful", "verbose", "hedging", "off-topic", "rude"]
ref_probs = torch.tensor([0.30, 0.08, 0.27, 0.20, 0.10, 0.05])
ref = ref_probs.log()                                    # log π_ref(y), shape (6,)
reward = torch.tensor([0.3, 1.0, 0.6, 0.1, -0.8, -1.5])  # r(y), shape (6,)

print(f"expected reward under the reference, E_ref[r] = {(ref_probs * reward).sum():.3f}")
print(f"best single response: {RESPONSES[reward.argmax()]!r} with r = {reward.max():.1f}, "
      f"which the reference says {ref_probs[reward.argmax()]:.0%} of the time")

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3))
ax1.bar(RESPONSES, ref_probs, color="0.6")
ax1.set(title="reference policy π_ref(y)", ylabel="probability")
ax2.bar(RESPONSES, reward, color=["tab:green" if v > 0 else "tab:red" for v in reward.tolist()])
ax2.axhline(0, c="k", lw=0.8)
ax2.set(title="reward r(y)", ylabel="reward")
for ax in (ax1, ax2):
    ax.tick_params(axis="x", labelrotation=30)
fig.tight_layout()


# %% [markdown] nbgrader={"grade": false, "grade_id": "ex1-header", "locked": true, "schema_version": 3, "solution": false}
# ### Exercise 1 — `rlhf_objective` · ★★☆ · 10 min
#
# Compute $J(\pi) = \sum_y \pi(y)\, r(y) - \beta \sum_y \pi(y)\big(\log \pi(y) - \log \pi_\text{ref}(y)\big)$
# over the last axis, so that `(6,)` inputs give a 0-dim tensor and `(P, 6)` inputs give `(P,)`.
#
# Two things to get right. The expectation and the KL are both weighted by the **policy** $\pi$, and the
# KL is $\mathrm{KL}(\pi\,\|\,\pi_\text{ref})$, policy first. And a policy may put **no** mass on some
# responses: then $\log \pi(y) = -\infty$ and that response contributes $0 \cdot \log 0 = 0$ to the KL
# (the limit of $p \log p$ as $p \to 0$) — but in floating point `0 * (-inf)` is `nan`. The check
# includes such a deterministic policy.

# %% nbgrader={"grade": false, "grade_id": "rlhf_objective", "locked": false, "schema_version": 3, "solution": true}
def rlhf_objective(policy_logprobs, ref_logprobs, rewards, beta):
    """J = E_{y~pi}[r(y)] - beta * KL(pi || pi_ref), one value per prompt.

    policy_logprobs, ref_logprobs: (..., N) log-probabilities over N responses (rows sum to 1 in
    probability; policy_logprobs may be -inf where pi(y) = 0). rewards: (..., N). beta: a float > 0.
    Returns a tensor of shape (...): the last axis is summed out.
    """
    ### BEGIN SOLUTION
    p = policy_logprobs.exp()
    expected_reward = (p * rewards).sum(-1)
    kl_terms = torch.where(p > 0, p * (policy_logprobs - ref_logprobs), torch.zeros_like(p))
    return expected_reward - beta * kl_terms.sum(-1)
    ### END SOLUTION


# %% check="rlhf_objective"

# %% [markdown] nbgrader={"grade": false, "grade_id": "ex1-hint", "locked": true, "schema_version": 3, "solution": false}
# <details><summary>Hint</summary>
#
# Start with `p = policy_logprobs.exp()`; the reward term is `(p * rewards).sum(-1)`. For the KL, build
# the per-response terms `p * (policy_logprobs - ref_logprobs)` and replace the ones where `p == 0` by
# zero *before* summing: `torch.where(p > 0, terms, torch.zeros_like(p))`. (Where `p == 0` the
# log-prob is `-inf`, so the raw term is `0 * (-inf) = nan`, and one `nan` poisons the whole sum.)
# Then `expected_reward - beta * kl`. If the check says the KL is reversed, you wrote
# $\mathrm{KL}(\pi_\text{ref}\,\|\,\pi)$.
# </details>

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-02", "locked": true, "schema_version": 3, "solution": false}
# ### Three policies at three exchange rates
#
# Your objective (or the library's, until yours passes) scores three simple policies: stay with the
# reference, spread evenly, or always give the best answer. The greedy policy has log-prob $-\infty$ on
# five responses, so this also exercises your $0 \cdot \log 0$ guard. Which policy wins depends on
# $\beta$: a cheap KL rewards going all-in, an expensive one rewards staying put.

# %% id="demo-02"
from rlhf_core.course.notebook import yours_or_reference
from rlhf_core.objective import kl_divergence

objective_fn = yours_or_reference("rlhf_objective", rlhf_objective)

greedy = torch.full((6,), -math.inf)
greedy[RESPONSES.index("helpful")] = 0.0                 # all mass on 'helpful'
policies = {"reference": ref, "uniform": torch.full((6,), -math.log(6)), "always 'helpful'": greedy}

print(f"{'policy':<18}{'E_pi[r]':>9}{'KL(pi||ref)':>13}" + "".join(f"{'J, beta=' + str(b):>14}" for b in (0.05, 0.5, 5.0)))
for name, logp in policies.items():
    expected = (logp.exp() * reward).sum().item()
    kl = kl_divergence(logp, ref).item()
    scores = [objective_fn(logp, ref, reward, b).item() for b in (0.05, 0.5, 5.0)]
    print(f"{name:<18}{expected:>9.3f}{kl:>13.3f}" + "".join(f"{s:>14.3f}" for s in scores))

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-03", "locked": true, "schema_version": 3, "solution": false}
# At $\beta = 0.05$ the greedy policy wins, at $\beta = 5$ the reference does. At $\beta = 0.5$ none of
# the three is best — the maximiser is somewhere in between, and the next section finds it exactly.
#
# ## 2. The closed-form optimum
#
# Fix one prompt. Fold the reward into the logarithm and name the normaliser
# $Z = \sum_y \pi_\text{ref}(y)\, e^{r(y)/\beta}$ (the *partition function*) and the distribution
# $\pi^*(y) = \pi_\text{ref}(y)\, e^{r(y)/\beta} / Z$:
#
# $$
# \begin{aligned}
# J(\pi) &= \sum_y \pi(y)\Big[r(y) - \beta \log\frac{\pi(y)}{\pi_\text{ref}(y)}\Big]
#         = -\beta \sum_y \pi(y) \log\frac{\pi(y)}{\pi_\text{ref}(y)\, e^{r(y)/\beta}} \\
#        &= -\beta \sum_y \pi(y) \log\frac{\pi(y)}{Z\, \pi^*(y)}
#         = \beta \log Z - \beta\, \mathrm{KL}\big(\pi\,\|\,\pi^*\big).
# \end{aligned}
# $$
#
# ($\sum_y \pi(y) = 1$ turns $\sum_y \pi(y) \log Z$ into $\log Z$.) The first term does not depend on
# $\pi$, and a KL is $\ge 0$ with equality only when the two distributions agree. So:
#
# $$\boxed{\;\pi^*(y) = \frac{\pi_\text{ref}(y)\, e^{r(y)/\beta}}{Z}\;\text{ is the unique maximiser, and } J(\pi^*) = \beta \log Z.\;}$$
#
# This is Eq. 4 of the DPO paper (the result itself is older). Three readings:
#
# - $\pi^*$ **re-weights** the reference by $e^{r/\beta}$: each unit of reward multiplies a response's
#   odds by $e^{1/\beta}$. A response the reference never produces ($\pi_\text{ref}(y) = 0$) stays at 0:
#   the optimum cannot invent responses, only re-weight them.
# - $J(\pi^*) = \beta \log \mathbb{E}_{y\sim\pi_\text{ref}}\big[e^{r(y)/\beta}\big]$ is a *soft maximum* of the
#   reward: it tends to $\max_y r(y)$ as $\beta \to 0$ and to $\mathbb{E}_{\pi_\text{ref}}[r]$ as $\beta \to \infty$.
# - The identity $J(\pi) = \beta \log Z - \beta\,\mathrm{KL}(\pi\,\|\,\pi^*)$ says maximising the RLHF
#   objective is the same as **fitting $\pi^*$** in reverse KL — the gap to the ceiling is exactly
#   $\beta$ times the distance to $\pi^*$.
#
# In code, in log space:
#
# | math | code |
# |---|---|
# | $\log\big(\pi_\text{ref}(y)\, e^{r(y)/\beta}\big) = \log \pi_\text{ref}(y) + r(y)/\beta$ | `ref_logprobs + rewards / beta` |
# | $\log Z = \log \sum_y \exp(\dots)$ | `torch.logsumexp(..., dim=-1)` |
# | $\log \pi^*(y) = \log \pi_\text{ref}(y) + r(y)/\beta - \log Z$ | subtract it — or do both steps at once with the right `torch` call |

# %% [markdown] nbgrader={"grade": false, "grade_id": "ex2-header", "locked": true, "schema_version": 3, "solution": false}
# ### Exercise 2 — `optimal_policy` · ★★☆ · 10 min
#
# Return $\log \pi^*$, normalised over the last axis. Stay in log space: the textbook recipe
# "multiply $\pi_\text{ref}$ by `exp(r / beta)` and divide by the sum" breaks for small $\beta$. With
# $r = 2$ and $\beta = 0.01$, $e^{r/\beta} = e^{200}$, and float32 overflows to `inf` beyond about
# $e^{88.7}$; then `inf / inf` is `nan`. The check uses $\beta = 0.01$.

# %% nbgrader={"grade": false, "grade_id": "optimal_policy", "locked": false, "schema_version": 3, "solution": true}
import torch.nn.functional as F


def optimal_policy(ref_logprobs, rewards, beta):
    """log pi*(y) = log pi_ref(y) + r(y)/beta - log Z, normalised over the last axis.

    ref_logprobs: (..., N) log-probabilities; rewards: (..., N); beta: a float > 0.
    Returns (..., N) log-probabilities (each row's exp sums to 1); finite for beta as small as 0.01.
    """
    ### BEGIN SOLUTION
    return F.log_softmax(ref_logprobs + rewards / beta, dim=-1)
    ### END SOLUTION


# %% check="optimal_policy"

# %% [markdown] nbgrader={"grade": false, "grade_id": "ex2-hint", "locked": true, "schema_version": 3, "solution": false}
# <details><summary>Hint</summary>
#
# One line. The unnormalised log-weights are `ref_logprobs + rewards / beta`; normalising log-weights
# over the last axis is exactly what `F.log_softmax(..., dim=-1)` does (it subtracts the `logsumexp`
# after shifting by the maximum, so nothing overflows). Return log-probabilities, not probabilities,
# and divide the reward by $\beta$ — do not multiply.
# </details>

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-04", "locked": true, "schema_version": 3, "solution": false}
# ### Why log space matters
#
# The same formula, computed naively and with yours, at $\beta = 0.01$ (the rewards over $\beta$ reach
# 100). The ceiling $\beta \log Z$ is computed with `logsumexp`; the last line checks that your two
# functions agree with it: $J(\pi^*) = \beta \log Z$.

# %% id="demo-03"
policy_fn = yours_or_reference("optimal_policy", optimal_policy)

beta = 0.01
weights = ref.exp() * torch.exp(reward / beta)          # e^(100) overflows float32 → inf
naive = (weights / weights.sum()).log()
print("naive  π*:", [round(v, 3) for v in naive.exp().tolist()])
print("log-space:", [round(v, 3) for v in policy_fn(ref, reward, beta).exp().tolist()])

for beta in (0.01, 0.5, 5.0):
    pi_star = policy_fn(ref, reward, beta)
    ceiling = beta * torch.logsumexp(ref + reward / beta, dim=-1)
    print(f"beta = {beta:<5} J(π*) = {objective_fn(pi_star, ref, reward, beta).item():.5f}"
          f"   beta·log Z = {ceiling.item():.5f}")

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-05", "locked": true, "schema_version": 3, "solution": false}
# ## 3. Gradient ascent finds the same policy
#
# PPO does not know the formula; it climbs the gradient of $J$. We can do the same here, exactly:
# `rlhf_core.objective.gradient_ascent_policy` keeps free logits $\theta$ with $\pi = \mathrm{softmax}(\theta)$,
# starts at $\pi = \pi_\text{ref}$, and runs Adam on $-J$ for a few hundred steps. If the derivation is
# right, the objective climbs towards the ceiling $\beta \log Z$ and never passes it, and the policy it
# ends at is $\pi^*$.

# %% id="demo-04"
from rlhf_core.objective import gradient_ascent_policy

beta = 0.5
pi_star = policy_fn(ref, reward, beta)
ceiling = objective_fn(pi_star, ref, reward, beta).item()
pi_ga, curve = gradient_ascent_policy(ref, reward, beta, steps=300, lr=0.1)

print(f"J after 300 steps = {curve[-1]:.5f}, ceiling β·log Z = {ceiling:.5f}")
print(f"largest |π_ascent − π*| = {(pi_ga.exp() - pi_star.exp()).abs().max():.1e}")

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9.4, 3.4))
ax1.plot(curve, label="J(π) during gradient ascent")
ax1.axhline(ceiling, ls="--", c="k", label="ceiling β·log Z = J(π*)")
ax1.axhline(curve[0], ls=":", c="0.5", label="start: J(π_ref) = E_ref[r]")
ax1.set(xlabel="step", ylabel="objective J", title=f"climbing the objective (β = {beta})")
ax1.legend(fontsize=9)
x = torch.arange(6)
ax2.bar(x - 0.27, ref.exp(), 0.27, color="0.65", label="π_ref")
ax2.bar(x, pi_ga.exp(), 0.27, color="tab:orange", label="gradient ascent")
ax2.bar(x + 0.27, pi_star.exp(), 0.27, color="tab:blue", label="closed form π*")
ax2.set_xticks(x, RESPONSES, rotation=30)
ax2.set(ylabel="probability", title="where the policy ends up")
ax2.legend(fontsize=9)
fig.tight_layout()

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-06", "locked": true, "schema_version": 3, "solution": false}
# Gradient ascent moved mass to *helpful* and *verbose* and away from *off-topic* and *rude* — but
# *verbose*, not *helpful*, ends up the most likely response: the reference's odds of 27 : 8 in its
# favour outweigh *helpful*'s extra 0.4 of reward, which at $\beta = 0.5$ is worth only a factor
# $e^{0.4/0.5} \approx 2.2$. The same holds on a batch of prompts, each
# solved independently (random references and rewards, 4 prompts × 6 responses):

# %% id="demo-05"
g = torch.Generator().manual_seed(1)
ref_batch = torch.log_softmax(torch.randn(4, 6, generator=g), dim=-1)   # (P, N)
reward_batch = torch.randn(4, 6, generator=g)                           # (P, N)
ga_batch, _ = gradient_ascent_policy(ref_batch, reward_batch, beta, steps=300, lr=0.1)
star_batch = policy_fn(ref_batch, reward_batch, beta)

j_ga = objective_fn(ga_batch, ref_batch, reward_batch, beta)            # (P,)
j_star = objective_fn(star_batch, ref_batch, reward_batch, beta)        # (P,)
for k in range(4):
    print(f"prompt {k}: J(gradient ascent) = {j_ga[k]:.5f}   J(π*) = β·log Z = {j_star[k]:.5f}"
          f"   max |Δπ| = {(ga_batch[k].exp() - star_batch[k].exp()).abs().max():.1e}")

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-07", "locked": true, "schema_version": 3, "solution": false}
# ## 4. What $\beta$ does
#
# $\beta$ sets how far $\pi^*$ may travel from $\pi_\text{ref}$:
#
# - $\beta \to \infty$: $e^{r/\beta} \to 1$, so $\pi^* \to \pi_\text{ref}$ — the reward is ignored, KL $\to 0$.
# - $\beta \to 0$: the largest $r/\beta$ dominates the softmax, so $\pi^*$ collapses onto $\arg\max_y r(y)$
#   (among responses with $\pi_\text{ref} > 0$), however rarely the reference produced it — reward
#   $\to \max r$, KL $\to -\log \pi_\text{ref}(\arg\max r)$.
#
# Between the two, each $\beta$ picks one point of a curve: expected reward $\mathbb{E}_{\pi^*}[r]$
# against the distance paid for it, $\mathrm{KL}(\pi^*\,\|\,\pi_\text{ref})$. That curve is the best
# reward any policy can get for a given KL budget (section 5 checks it), and along it the slope
# $d\,\mathbb{E}[r] / d\,\mathrm{KL}$ equals $\beta$ — the exchange rate again. Notebook 09 measures the
# same frontier for DPO-trained language models, where each point costs a training run.

# %% id="demo-06"
import numpy as np

betas_shown = [0.05, 0.2, 1.0, 5.0, 50.0]
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9.4, 4.2), gridspec_kw={"width_ratios": [1.4, 1]})
width = 0.8 / (len(betas_shown) + 1)
x = np.arange(6)
ax1.bar(x - 0.4 + width / 2, ref.exp(), width, color="0.4", label="π_ref")
colors = plt.cm.viridis(np.linspace(0.1, 0.9, len(betas_shown)))
for i, (b, c) in enumerate(zip(betas_shown, colors)):
    ax1.bar(x - 0.4 + (i + 1.5) * width, policy_fn(ref, reward, b).exp(), width, color=c, label=f"π*, β = {b:g}")
ax1.set_xticks(x, [f"{name}\nr = {v:+.1f}" for name, v in zip(RESPONSES, reward.tolist())], fontsize=8)
ax1.set(ylabel="probability", title="the optimal policy for several β")
ax1.legend(fontsize=9, loc="upper right")

betas = np.logspace(-2.5, 2.5, 200)
rewards_at, kls_at = [], []
for b in betas:
    p = policy_fn(ref, reward, float(b))
    rewards_at.append((p.exp() * reward).sum().item())
    kls_at.append(kl_divergence(p, ref).item())
ax2.plot(kls_at, rewards_at, c="tab:blue", label="π*(β), β from 0.003 to 300")
for b, c in zip(betas_shown, colors):
    p = policy_fn(ref, reward, b)
    ax2.scatter(kl_divergence(p, ref), (p.exp() * reward).sum(), color=c, zorder=3)
    ax2.annotate(f"β={b:g}", (kl_divergence(p, ref).item(), (p.exp() * reward).sum().item()),
                 textcoords="offset points", xytext=(5, -10), fontsize=8)
ax2.axhline(reward.max(), ls="--", c="0.5", lw=1, label="max r  (β → 0)")
ax2.axvline(-ref[reward.argmax()], ls=":", c="0.5", lw=1, label="−log π_ref(best)")
ax2.set(xlabel="KL(π* ‖ π_ref)  (nats)", ylabel="E_π*[r]", title="reward bought with KL")
ax2.legend(fontsize=9, loc="lower right")
fig.tight_layout()

# the slope of the curve at β = 0.5, by finite differences
lo, hi = policy_fn(ref, reward, 0.49), policy_fn(ref, reward, 0.51)
d_reward = ((hi.exp() - lo.exp()) * reward).sum()
d_kl = kl_divergence(hi, ref) - kl_divergence(lo, ref)
print(f"slope dE[r]/dKL at β = 0.5: {(d_reward / d_kl).item():.3f}")

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-08", "locked": true, "schema_version": 3, "solution": false}
# Read the bars left to right: at $\beta = 50$ the optimum is the reference; as $\beta$ shrinks, mass
# drains from *off-topic* and *rude* first, then from everything but *helpful*, and at $\beta = 0.05$
# the policy is almost deterministic. The curve bends: the first nats of KL buy reward cheaply, the
# last ones are dear — going from $\beta = 0.2$ (*helpful* at 63 %) to the deterministic policy costs
# another 1.4 nats of KL for 0.18 more reward.
#
# ## 5. No policy beats $\pi^*$
#
# The derivation says $J(\pi) \le \beta \log Z$ for *every* policy, with equality only at $\pi^*$.
# Test it against 20 000 random policies (from nearly uniform to nearly deterministic), the six
# deterministic ones, and the gradient-ascent iterate, scoring all of them with your
# `rlhf_objective`. The identity $J(\pi) = \beta \log Z - \beta\,\mathrm{KL}(\pi\,\|\,\pi^*)$ should hold
# for each to float precision.
#
# On the reward–KL plane, policies with the same $J$ lie on a straight line of slope $\beta$
# ($\mathbb{E}[r] = J + \beta\,\mathrm{KL}$). The highest such line that touches any policy touches the
# frontier at $\pi^*$, and every random policy sits below it.

# %% id="demo-07"
beta = 0.5
g = torch.Generator().manual_seed(0)
n = 20_000
temperature = torch.logspace(-1, 1.3, n)[:, None]                      # spread from flat to peaked
random_pols = torch.log_softmax(torch.randn(n, 6, generator=g) * temperature, dim=-1)   # (n, 6)
deterministic = torch.full((6, 6), -math.inf).fill_diagonal_(0.0)      # row k: all mass on response k
candidates = torch.cat([random_pols, deterministic, pi_ga[None]])      # (n + 7, 6)

pi_star = policy_fn(ref, reward, beta)
log_z = torch.logsumexp(ref + reward / beta, dim=-1)
j_all = objective_fn(candidates, ref.expand_as(candidates), reward.expand_as(candidates), beta)
j_star = objective_fn(pi_star, ref, reward, beta)

print(f"J(π*) = β·log Z         = {j_star.item():.5f}")
print(f"best random policy      = {j_all[:n].max().item():.5f}")
print(f"best deterministic      = {j_all[n:n + 6].max().item():.5f}  ({RESPONSES[j_all[n:n + 6].argmax()]!r})")
print(f"gradient-ascent iterate = {j_all[-1].item():.5f}")
print("every candidate below the ceiling:", bool((j_all <= j_star + 1e-5).all()))
identity = beta * log_z - beta * kl_divergence(candidates, pi_star.expand_as(candidates))
print(f"identity J = β·log Z − β·KL(π‖π*): largest error {(identity - j_all).abs().max():.1e} "
      f"over all {len(candidates)} policies")

fig, ax = plt.subplots(figsize=(6.5, 4))
kl_c, r_c = kl_divergence(random_pols, ref.expand_as(random_pols)), (random_pols.exp() * reward).sum(-1)
ax.scatter(kl_c, r_c, s=2, c="0.7", alpha=0.5, label="random policies")
ax.plot(kls_at, rewards_at, c="tab:blue", label="frontier π*(β)")
kl_line = np.linspace(0, float(kl_c.max()), 50)
ax.plot(kl_line, j_star.item() + beta * kl_line, "k--", lw=1, label=f"J = β·log Z (slope β = {beta})")
ax.scatter(kl_divergence(pi_star, ref), (pi_star.exp() * reward).sum(), c="tab:red", zorder=3, label="π*, β = 0.5")
ax.set(xlabel="KL(π ‖ π_ref)  (nats)", ylabel="E_π[r]", xlim=(0, 3.5), ylim=(-1.6, 1.2),
       title="every policy lies below the line through π*")
ax.legend(fontsize=9, loc="lower right")
fig.tight_layout()

# %% [markdown] nbgrader={"grade": false, "grade_id": "takeaways", "locked": true, "schema_version": 3, "solution": false}
# ## Takeaways
#
# - RLHF's RL stage maximises $J(\pi) = \mathbb{E}_{y\sim\pi}[r] - \beta\,\mathrm{KL}(\pi\,\|\,\pi_\text{ref})$: reward
#   under the policy's own samples, minus a leash to the reference that limits reward hacking and keeps
#   the reference's fluency; $\beta$ is the exchange rate between the two.
# - Completing the KL gives $J(\pi) = \beta \log Z - \beta\,\mathrm{KL}(\pi\,\|\,\pi^*)$, so the unique optimum is
#   $\pi^* = \pi_\text{ref}\, e^{r/\beta} / Z$ and the best achievable value is $\beta \log Z$. Gradient ascent
#   reaches it, and no policy beats it.
# - Compute it in log space: `log_softmax(log π_ref + r/β)`; guard $0 \cdot \log 0$ in the KL.
# - $\beta \to \infty$ gives back $\pi_\text{ref}$, $\beta \to 0$ the argmax of the reward; in between, $\pi^*(\beta)$
#   traces the best reward attainable for each KL budget, with slope $\beta$.
# - For a language model $Z(x)$ sums over every possible sequence, so $\pi^*$ cannot be normalised
#   directly. Notebook 02 shows how DPO makes $Z$ cancel.
#
# ## Interview questions this prepares you for
#
# 1. Write down the objective RLHF's PPO stage maximises. Why the KL penalty — what goes wrong without it?
# 2. What is the optimal policy of the KL-regularised objective? Derive it, and say what $J(\pi^*)$ equals.
# 3. Why can't you just compute $\pi_\text{ref}(y|x)\, e^{r(x,y)/\beta}$ and normalise it for a language model?
# 4. What do $\beta \to 0$ and $\beta \to \infty$ give? Can $\pi^*$ put mass on a response $\pi_\text{ref}$ never produces?
# 5. Why is the expectation taken under $\pi$ and the KL written as $\mathrm{KL}(\pi\,\|\,\pi_\text{ref})$, not the other way round?
# 6. How would you compute $\pi^*$ stably when $r/\beta$ is in the hundreds?
