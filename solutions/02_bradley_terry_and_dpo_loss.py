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
# # 02 · Bradley–Terry and the DPO loss
#
# RLHF fits a reward model to human preferences, then optimises a policy against it. DPO's central step
# is to notice that the reward can be written *through the policy itself*, and that when you plug that
# expression into the preference model, the one intractable quantity — the partition function
# $Z(x)$ — cancels. What is left is a loss you can write in four lines. This notebook makes that
# cancellation concrete, has you write the loss and its implicit reward, and shows what its gradient
# does.
#
# **Goals**
# - state the Bradley–Terry model and why only reward *differences* matter;
# - watch $Z(x)$ cancel numerically, and state the paper's Theorem 1 on what the reparameterisation keeps;
# - say when minimising the DPO loss gives the RLHF optimum, and how finite data break it;
# - implement `dpo_loss` and `implicit_reward`, stable at any margin;
# - read the gradient: which pairs DPO learns from most, and what it does (and does not) promise.
#
# **Prerequisites:** notebook 01 (the closed-form optimum $\pi^* \propto \pi_\text{ref}\, e^{r/\beta}$);
# PyTorch tensors; $\sigma(x) = 1/(1+e^{-x})$.
#
# **Time:** about 45 minutes.

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-01", "locked": true, "schema_version": 3, "solution": false}
# ## 1. Bradley–Terry: preferences come from reward differences
#
# Given a prompt $x$ and two responses, the Bradley–Terry model says a person prefers $y_w$ over $y_l$
# with probability
#
# $$P(y_w \succ y_l \mid x) = \sigma\big(r(x, y_w) - r(x, y_l)\big).$$
#
# Only the *difference* of the rewards enters. Add the same constant to both rewards — any constant,
# and it may depend on the prompt — and the probability does not move.
#
# **Ties.** The data DPO trains on are *hard* labels: in every pair, $y_w$ was preferred. A pair judged a
# tie has no $y_w$, so the DPO loss cannot take it, and it is dropped from the data: it carries no
# information *for that loss*. Under Bradley–Terry a tie is still information — $P = \tfrac12$ says the
# two rewards are equal — and losses that take soft labels use it. Conservative DPO (Mitchell 2023)
# trains on the smoothed label $1 - \varepsilon$; a tie is $\varepsilon = \tfrac12$, where its loss
# $-\tfrac12\log\sigma(h) - \tfrac12\log\sigma(-h)$ is smallest at a margin of 0. IPO (Azar et al. 2023)
# is written on preference probabilities; a tie entered as the pair counted once each way gives
# $(m - \tfrac{1}{2\beta})^2 + (-m - \tfrac{1}{2\beta})^2$, also smallest at $m = 0$. The cell measures both.

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false}
# Setup: run this cell first. Where rlhf_core is missing (Colab, a fresh kernel) it installs the course
# library, keeping the torch already there; then it checks the environment and fixes the random seed.
COURSE_REPO_URL = "https://github.com/dpo-paper-to-code/dpo-paper-to-code"
SEED = 2
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
from rlhf_core.objective import bradley_terry_prob

r_w, r_l = torch.tensor(1.3), torch.tensor(0.4)
for shift in [0.0, 5.0, -100.0]:
    p = bradley_terry_prob(r_w + shift, r_l + shift)
    print(f"shift both rewards by {shift:7.1f}: P(y_w > y_l) = {p.item():.6f}")

# a tie as soft labels, on a grid of unscaled margins m (β = 0.1); reference log-probs 0
from rlhf_core import losses

m = torch.arange(-3000, 3001, dtype=torch.float64) / 100      # -30, -29.99, ..., 30 nats (0 exactly)
zero = torch.zeros_like(m)
cdpo_tie = 0.5 * losses.dpo_losses(m, zero, zero, zero, 0.1) + 0.5 * losses.dpo_losses(zero, m, zero, zero, 0.1)
ipo_tie = losses.ipo_losses(m, zero, zero, zero, 0.1) + losses.ipo_losses(zero, m, zero, zero, 0.1)
print(f"\na tie: conservative DPO (ε = 1/2) is smallest at m = {m[cdpo_tie.argmin()].item():+.2f}, "
      f"IPO counted both ways at m = {m[ipo_tie.argmin()].item():+.2f} (a sure preference: IPO aims at m = 1/(2β) = 5)")

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-02", "locked": true, "schema_version": 3, "solution": false}
# ## 2. The reward, written through the policy — and $Z(x)$ cancelling
#
# Notebook 01 showed that the KL-regularised objective has the optimum
# $\pi^*(y|x) = \pi_\text{ref}(y|x)\, e^{r(x,y)/\beta} / Z(x)$. Solve it for the reward:
#
# $$r(x, y) = \beta \log \frac{\pi^*(y|x)}{\pi_\text{ref}(y|x)} + \beta \log Z(x).$$
#
# $Z(x) = \sum_y \pi_\text{ref}(y|x)\, e^{r(x,y)/\beta}$ sums over *every possible response* — hopeless for
# a language model. But substitute the reward into Bradley–Terry: both responses share the prompt, so
# $\beta \log Z(x)$ appears in both rewards and cancels in the difference:
#
# $$P(y_w \succ y_l \mid x) = \sigma\Big(\beta \log \frac{\pi^*(y_w|x)}{\pi_\text{ref}(y_w|x)} - \beta \log \frac{\pi^*(y_l|x)}{\pi_\text{ref}(y_l|x)}\Big).$$
#
# **This is the reparameterisation, and the paper's Theorem 1 says what it keeps** (Rafailov et al. 2023,
# §5.1: Lemmas 1–2 and Theorem 1). Call two rewards *equivalent* when they differ by a function of the
# prompt alone, $r'(x, y) = r(x, y) + f(x)$. Equivalent rewards give the same Bradley–Terry preferences
# (Lemma 1) and the same KL-regularised optimal policy (Lemma 2). Theorem 1, as the paper states it: under
# mild assumptions, every equivalence class of rewards consistent with Bradley–Terry (indeed Plackett–Luce)
# preferences can be *represented* as $\beta \log \frac{\pi(y|x)}{\pi_\text{ref}(y|x)}$ for some policy $\pi$. The
# assumptions, spelled out in the appendix's restatement, are $\beta > 0$ and a reference with **full
# support**, $\pi_\text{ref}(y|x) > 0$ for every response, so that every log-ratio is finite; and the proof
# there (Appendix A.6) also shows the representative is *unique* within its class. For the class of $r$ it
# is $r - \beta\log Z(x)$, with $\pi$ the optimum $\pi^*$. So writing the reward through a policy loses no
# reward that Bradley–Terry preferences can tell apart.
#
# Below, a small discrete problem: we compute the true rewards from the optimal policy *with* $\log Z$
# and *with a wrong* $\log Z$ (anything at all), and the preference probabilities agree to the last digit.
# Then Theorem 1's representative: the true reward minus $\beta \log \frac{\pi^*}{\pi_\text{ref}}$ is one
# constant per prompt, $\beta \log Z(x)$.

# %% id="demo-02"
from rlhf_core.objective import log_partition, optimal_policy, reward_from_policy

beta = 0.5
ref = torch.log_softmax(torch.randn(3, 5), dim=-1)      # 3 prompts x 5 responses
true_reward = torch.randn(3, 5)
pi_star = optimal_policy(ref, true_reward, beta)
log_z = log_partition(ref, true_reward, beta)[:, None]   # (3, 1): one constant per prompt

for label, z in [("the true log Z(x)", log_z), ("log Z(x) = 0", 0.0), ("a random log Z(x)", torch.randn(3, 1) * 10)]:
    r = reward_from_policy(pi_star, ref, beta, z)
    p = bradley_terry_prob(r[:, 0], r[:, 1])              # response 0 vs response 1, per prompt
    print(f"{label:<20} P(y0 > y1) per prompt = {[round(v, 6) for v in p.tolist()]}")
print("reward recovered exactly with the true log Z:", torch.allclose(reward_from_policy(pi_star, ref, beta, log_z), true_reward, atol=1e-5))

offset = true_reward - beta * (pi_star - ref)             # (3, 5): the reward minus the class's β·log π*/π_ref
spread = (offset.max(-1).values - offset.min(-1).values).tolist()
print("true reward − β·log(π*/π_ref), spread over the 5 responses of each prompt:", [f"{v:.1e}" for v in spread])
print("and that constant is β·log Z(x):", torch.allclose(offset, (beta * log_z).expand_as(offset), atol=1e-5))

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-03", "locked": true, "schema_version": 3, "solution": false}
# ## 3. The DPO loss
#
# Replace $\pi^*$ by the policy $\pi_\theta$ being trained, and maximise the likelihood of the observed
# preferences. The negative log-likelihood of one pair is
#
# $$\mathcal{L} = -\log \sigma\Big(\beta\big[(\log \pi_\theta(y_w) - \log \pi_\text{ref}(y_w)) - (\log \pi_\theta(y_l) - \log \pi_\text{ref}(y_l))\big]\Big),$$
#
# averaged over the batch. Line by line (the hint under the exercise's check has the code for each line):
#
# | step | math |
# |---|---|
# | the chosen log-ratio | $\log \pi_\theta(y_w) - \log \pi_\text{ref}(y_w)$ |
# | the rejected log-ratio | the same for $y_l$ |
# | the scaled margin | $h = \beta\,[\dots - \dots]$ |
# | the loss | $-\log\sigma(h)$, averaged over the batch |
#
# The inputs are **summed** log-probs of whole responses, shape `(B,)` (notebook 04 computes them from
# a model). Write $-\log\sigma(h)$ as `-F.logsigmoid(h)`: `-torch.log(torch.sigmoid(h))` is the same
# number until $\sigma(h)$ comes out as 0, and then it is `inf` — in float32 that happens well before the
# true $\sigma(h)$ would leave the float32 range; section 5 measures where.

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-optimum", "locked": true, "schema_version": 3, "solution": false}
# ### When is DPO's answer the RLHF answer?
#
# The derivation shows that the RLHF optimum $\pi^*$ makes this preference likelihood as large as it can
# be, so minimising the DPO loss on the *population* of preferences recovers $\pi^*$ (Rafailov et al.
# 2023, §4–5). That needs three things:
#
# 1. **Bradley–Terry preferences**: they really come from some reward $r$ through $\sigma(r_w - r_l)$;
# 2. **a policy class that can represent $\pi^*$** $= \pi_\text{ref}\, e^{r/\beta} / Z$: a restricted class
#    gets the best fit it can reach, which need not be what the RLHF objective would pick;
# 3. **data that cover the responses**: the loss only sees the pairs in the data, so the argument needs
#    every response compared, often enough to pin down its preference probability.
#
# A real data set is a finite list of hard labels, and the third condition fails in two ways that the
# cell below measures. The loss depends on the policy only through the margins of the observed pairs,
# so its minimisers form a large set — any policy with the same margins is as good — and some of them
# move probability to responses that no pair mentions. And a hard label is never fully satisfied: the
# loss keeps falling as a margin grows, so it has no finite minimiser and the KL anchor that β sets
# stops holding the policy (Azar et al. 2023). Xu et al. (2024, Theorem 4.1) prove the general case:
# every policy that RLHF with a reward model and PPO can reach from such data also minimises the DPO
# loss, but not the other way round.

# %% id="demo-finite-data"
from rlhf_core import losses

# one prompt, four responses, a uniform reference; the data: one comparison, y0 preferred to y1
ref4 = torch.full((4,), 0.25, dtype=torch.float64).log()


def loss_on_the_data(logits):
    logp = torch.log_softmax(logits.double(), -1)
    return losses.dpo_loss(logp[:1], logp[1:2], ref4[:1], ref4[1:2], beta=0.1).item(), logp.exp()


# two policies with the same margin on the observed pair, log π(y0) − log π(y1) = 3
for name, logits in (("A", [3.0, 0.0, -4.0, -4.0]), ("B", [3.0, 0.0, 6.0, 6.0])):
    loss, p = loss_on_the_data(torch.tensor(logits))
    print(f"policy {name}: DPO loss {loss:.6f}   π(y0) = {p[0]:.3f}   mass on y2, y3 (in no pair) = {p[2:].sum():.3f}")

# and the loss keeps falling as the observed margin grows: no finite minimiser
for margin in (3.0, 10.0, 30.0, 100.0):
    print(f"margin {margin:5.0f} nats: DPO loss {loss_on_the_data(torch.tensor([margin, 0.0, 0.0, 0.0]))[0]:.2e}")

# %% [markdown] nbgrader={"grade": false, "grade_id": "ex1-header", "locked": true, "schema_version": 3, "solution": false}
# ### Exercise 1 — `dpo_loss` · ★★☆ · 10 min
#
# Implement the mean sigmoid DPO loss. At the start of training the policy equals the reference, every
# log-ratio is 0 and the loss must be exactly $\log 2 \approx 0.6931$.

# %% nbgrader={"grade": false, "grade_id": "dpo_loss", "locked": false, "schema_version": 3, "solution": true}
import torch.nn.functional as F


def dpo_loss(logp_pol_chosen, logp_pol_rejected, logp_ref_chosen, logp_ref_rejected, beta=0.1):
    """Mean sigmoid DPO loss, a 0-dim tensor.

    Each argument is a (B,) tensor of summed per-sequence log-probs: the chosen / rejected response
    under the policy and under the frozen reference. Must stay finite for margins of ±1e4.
    """
    ### BEGIN SOLUTION
    chosen_logratio = logp_pol_chosen - logp_ref_chosen
    rejected_logratio = logp_pol_rejected - logp_ref_rejected
    logits = beta * (chosen_logratio - rejected_logratio)
    return -F.logsigmoid(logits).mean()
    ### END SOLUTION


# %% check="dpo_loss"

# %% [markdown] nbgrader={"grade": false, "grade_id": "ex1-hint", "locked": true, "schema_version": 3, "solution": false}
# <details><summary>Hint</summary>
#
# The table of section 3, with its code:
#
# | math | code |
# |---|---|
# | $\log \pi_\theta(y_w) - \log \pi_\text{ref}(y_w)$ | `chosen_logratio = logp_pol_chosen - logp_ref_chosen` |
# | the same for $y_l$ | `rejected_logratio = logp_pol_rejected - logp_ref_rejected` |
# | $h = \beta\,[\dots - \dots]$ | `h = beta * (chosen_logratio - rejected_logratio)` |
# | $-\log\sigma(h)$, averaged | `-F.logsigmoid(h).mean()` |
#
# The check feeds margins of ±1e4: if it reports `inf`, you wrote `log(sigmoid(...))`. If it says the
# reference term is missing, you compared `logp_pol_chosen - logp_pol_rejected` alone. If it says β is
# ignored, applied twice or outside the log-sigmoid, compare where β sits with the third line.
# </details>

# %% [markdown] nbgrader={"grade": false, "grade_id": "ex2-header", "locked": true, "schema_version": 3, "solution": false}
# ### Exercise 2 — `implicit_reward` · ★☆☆ · 5 min
#
# The quantity inside the loss, $\hat r(x, y) = \beta \log \frac{\pi_\theta(y|x)}{\pi_\text{ref}(y|x)}$, is
# DPO's *implicit reward*: the reward this policy is optimal for, up to the per-prompt constant
# $\beta \log Z(x)$. It is how you read a reward off a trained policy — no reward model involved.

# %% nbgrader={"grade": false, "grade_id": "implicit_reward", "locked": false, "schema_version": 3, "solution": true}
def implicit_reward(logp_pol, logp_ref, beta=0.1):
    """beta * (log pi(y|x) - log pi_ref(y|x)), elementwise: same shape in and out."""
    ### BEGIN SOLUTION
    return beta * (logp_pol - logp_ref)
    ### END SOLUTION


# %% check="implicit_reward"

# %% [markdown] nbgrader={"grade": false, "grade_id": "ex2-hint", "locked": true, "schema_version": 3, "solution": false}
# <details><summary>Hint</summary>
#
# One line, elementwise. The inputs are already log-probabilities: subtract them, do not divide them or
# take another log.
# </details>

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-04", "locked": true, "schema_version": 3, "solution": false}
# ## 4. Three of the drill's sanity checks
#
# The 60-minute drill (notebook 10) ends with six sanity checks. Three of them need only the loss and
# the reward: **(1)** the loss is $\log 2$ when policy and reference agree; **(4)** a bigger margin lowers
# the loss and swapping chosen and rejected raises it; **(6)** the implicit reward scales linearly with $\beta$.

# %% nbgrader={"grade": true, "grade_id": "sanity_1_4_6", "locked": true, "points": 1, "schema_version": 3, "solution": false}
from rlhf_core.checks import sanity_loss_at_init, sanity_margin_monotone, sanity_reward_scales_with_beta
sanity_loss_at_init(dpo_loss)
sanity_margin_monotone(dpo_loss)
sanity_reward_scales_with_beta(implicit_reward)

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-05", "locked": true, "schema_version": 3, "solution": false}
# ## 5. Why the six checks are not enough
#
# The sanity checks test a few friendly inputs. Here is a loss that passes checks 1 and 4 — and still
# returns `inf` on the first badly ranked pair with a large margin. The stronger `check_dpo_loss`
# catches it, and says why. First, the cell measures where float32's $\sigma(h)$ becomes 0 on this
# machine: the exact point depends on how the library computes $\sigma$, and it is well before the
# $-104$ at which the true $\sigma(h)$ would round to 0 (the smallest float32 is about $e^{-103.3}$).

# %% id="demo-03"
from rlhf_core.checks import check_dpo_loss
from rlhf_core.checks import sanity_loss_at_init, sanity_margin_monotone


def naive_dpo_loss(logp_pol_chosen, logp_pol_rejected, logp_ref_chosen, logp_ref_rejected, beta=0.1):
    h = beta * ((logp_pol_chosen - logp_ref_chosen) - (logp_pol_rejected - logp_ref_rejected))
    return -torch.log(torch.sigmoid(h)).mean()        # looks right; inf once sigmoid(h) is 0 (measured below)


import math

grid = -torch.arange(0, 12000, dtype=torch.float32) / 100       # h = 0, -0.01, ..., -119.99
zero_from = grid[torch.sigmoid(grid) == 0].max().item()         # the largest h whose sigmoid is 0
at = torch.tensor([zero_from])
print(f"float32 torch.sigmoid(h) is 0 from h = {zero_from:.2f} on (device: {grid.device}); there "
      f"-log(sigmoid(h)) = {-torch.log(torch.sigmoid(at)).item()} and -logsigmoid(h) = {-F.logsigmoid(at).item():.2f}")
print(f"for comparison: e^{{-h}} overflows float32 past h = -{math.log(torch.finfo(torch.float32).max):.2f}; "
      f"the true sigmoid(h) would round to 0 only below h = {math.log(2.0 ** -150):.2f}\n")

sanity_loss_at_init(naive_dpo_loss)
sanity_margin_monotone(naive_dpo_loss)
try:
    check_dpo_loss(naive_dpo_loss)
except AssertionError as verdict:
    print(verdict)

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-06", "locked": true, "schema_version": 3, "solution": false}
# ## 6. What the gradient does
#
# Differentiate the loss with respect to the policy's parameters:
#
# $$\nabla_\theta \mathcal{L} = -\beta\, \underbrace{\sigma\big(\hat r(y_l) - \hat r(y_w)\big)}_{\text{weight}}\,
# \big[\nabla_\theta \log \pi_\theta(y_w) - \nabla_\theta \log \pi_\theta(y_l)\big].$$
#
# The weight is $\sigma(-h)$, how wrong the policy currently is about the pair. It is **½ at a tie**
# ($h = 0$: every pair at the start, when policy = reference); it falls towards 0 as the pair is ranked
# correctly by a wider margin, and it tends to 1 only as the mis-ranking grows — at $h = -2$ it is
# still 0.88. What the gradient pushes is the *difference* $\log \pi_\theta(y_w) - \log \pi_\theta(y_l)$:
# a small enough step is sure to raise the margin, not to raise $\log \pi_\theta(y_w)$. When the
# responses share parameters (any real model), the chosen response's probability can fall as long as the
# rejected one falls faster — notebook 08 measures it (*likelihood displacement*). Below, the autograd
# gradient with respect to `logp_pol_chosen` equals $-\beta\,\sigma(-h)/B$ per pair, and the weight read
# off autograd at a few margins, using your `dpo_loss` if it passes its check.

# %% id="demo-04"
import matplotlib.pyplot as plt
from rlhf_core.losses import dpo_gradient_weight
from rlhf_core.course.notebook import yours_or_reference

loss_fn = yours_or_reference("dpo_loss", dpo_loss)
B, beta = 6, 0.1
pc = (-torch.rand(B) * 30).requires_grad_(True)
pr, rc, rr = -torch.rand(B) * 30, -torch.rand(B) * 30, -torch.rand(B) * 30
loss_fn(pc, pr, rc, rr, beta=beta).backward()
predicted = -beta * dpo_gradient_weight(pc.detach(), pr, rc, rr, beta) / B
print("autograd :", [round(v, 5) for v in pc.grad.tolist()])
print("formula  :", [round(v, 5) for v in predicted.tolist()])

for h0 in (-6.0, -2.0, 0.0, 2.0, 6.0):                      # one pair at h = β·margin = h0
    one = torch.tensor([h0 / beta], requires_grad=True)
    loss_fn(one, torch.zeros(1), torch.zeros(1), torch.zeros(1), beta=beta).backward()
    print(f"h = {h0:+.0f}: weight σ(−h) from autograd = {-one.grad.item() / beta:.3f}")

h = torch.linspace(-8, 8, 200)
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.2))
ax1.plot(h, -torch.nn.functional.logsigmoid(h))
ax1.axhline(torch.log(torch.tensor(2.0)), ls="--", c="grey", label="log 2 (h = 0)")
ax1.set(xlabel="h = β·(margin)", ylabel="loss −log σ(h)", title="the loss of one pair")
ax1.legend()
ax2.plot(h, torch.sigmoid(-h), c="C1")
ax2.set(xlabel="h = β·(margin)", ylabel="gradient weight σ(−h)", title="how much the pair is learned from")
fig.tight_layout()

# %% [markdown] nbgrader={"grade": false, "grade_id": "takeaways", "locked": true, "schema_version": 3, "solution": false}
# ## Takeaways
#
# - Bradley–Terry only sees reward differences, so a per-prompt constant — such as $\beta \log Z(x)$ —
#   cancels. That is why DPO never needs $Z(x)$ or a reward model.
# - The DPO loss is a logistic loss on $h = \beta\,[\text{chosen log-ratio} - \text{rejected log-ratio}]$;
#   it is $\log 2$ at the start, and it needs `F.logsigmoid` to stay finite.
# - The implicit reward $\beta \log \pi_\theta/\pi_\text{ref}$ is how you read preferences off a policy.
# - Theorem 1: when $\pi_\text{ref}$ has full support, each Bradley–Terry class of rewards can be written as
#   $\beta \log \pi/\pi_\text{ref}$ (the theorem), by exactly one such reward (the appendix's proof), so the
#   reparameterisation loses nothing. DPO's minimiser is the RLHF optimum only for Bradley–Terry
#   preferences, a policy class that can represent $\pi^*$ and data covering the responses; on a finite
#   set of hard labels the minimisers form a large set that can move mass to responses outside the data.
# - The gradient weights each pair by $\sigma(-h)$: ½ at a tie, towards 1 only as a pair is badly
#   mis-ranked, towards 0 once it is ranked right by a wide margin. Only the *difference* of the two
#   log-probs is sure to move the right way (notebook 08: likelihood displacement).
# - Ties carry no information only for hard labels; conservative DPO and IPO can use them.
#
# ## Interview questions this prepares you for
#
# 1. Where did the partition function go? Why can DPO ignore it?
# 2. Write the DPO loss. What exactly is being compared — and why against a reference?
# 3. What is the loss at initialisation, and why is that a useful check?
# 4. Why `logsigmoid` rather than `log(sigmoid(x))`?
# 5. What does the gradient's weighting term do, and how does it differ from plain maximum likelihood on chosen responses?
# 6. Does DPO reach the same policy as RLHF? Under which conditions, and what goes wrong with a finite data set?
