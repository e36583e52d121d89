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
# # 10 · The timed mock interview: DPO from paper to code in 60 minutes
#
# A paper-to-code interview gives you a paper you may know only by name, an hour, and a blank notebook.
# It tests three things at once: can you pull the one idea out of the paper, can you say why it matters
# in a few sentences, and can you turn the equation into code that you can *show* is right. This
# notebook is that hour, on a clock: read a summary of the DPO paper, explain its benefit, implement
# the loss, the implicit reward and a training step from stubs, train a toy policy, and prove your code
# right with six sanity checks. At the end, a scorecard built from what your code actually does — not
# from what you meant it to do — tells you where the hour went.
#
# **Goals**
# - run the full drill in 60 minutes: read 15 → explain 5 → implement 30 → sanity-check 10;
# - explain what DPO buys over RLHF, where $Z(x)$ goes, why the reference is frozen and what $\beta$ does — without a red flag;
# - implement `dpo_loss`, `implicit_reward` and `toy_dpo_step` from memory, and train a toy policy whose implicit reward recovers a known ranking;
# - narrate the six sanity checks, then read your scorecard and practise the follow-up questions.
#
# **Prerequisites:** notebooks 01–09 (or, coming in cold: the DPO paper, Rafailov et al. 2023, and a
# PyTorch training loop). During the drill you do not look back at them.
#
# **Time:** 60 minutes for the drill, plus about 15 for the debrief (scorecard and follow-up questions).

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-01", "locked": true, "schema_version": 3, "solution": false}
# ## How to run the drill
#
# | time | block | what you produce |
# |---|---|---|
# | 0:00–0:15 | **Read** | the DPO loss, and why it removes the reward model and the RL loop |
# | 0:15–0:20 | **Explain** | a spoken (then written) answer: the benefit, $Z(x)$, the reference, $\beta$ |
# | 0:20–0:50 | **Implement** | `dpo_loss`, `implicit_reward`, `toy_dpo_step`, each passing its check; a trained toy policy |
# | 0:50–1:00 | **Sanity-check** | all six sanity checks passing, each narrated out loud |
# | 1:00–1:10 | *Diagnose (optional)* | a run's curves: name what went wrong and the first thing to change |
#
# **Rules**
# - **No looking back** at lessons 01–09 or at `rlhf_core`'s source until the scorecard. The PyTorch
#   documentation is fine, as it would be in an interview.
# - **Talk out loud** the whole time, as if an interviewer were listening: what you read, what you are
#   about to write, why a check failed. Silence is what interviewers mark down most.
# - **Move on when a block's time is up.** Each check cell prints the clock and says "over budget"
#   when you are. A half-finished exercise with a clear explanation beats a perfect one you never reach:
#   later cells fall back to the library's version when yours does not pass yet.
# - The hints (click **Hint**) are there if you are stuck; each one you open is worth noting in your
#   debrief — in an interview you would have asked the interviewer instead.
#
# **Variants: a drill you cannot memorise.** The first attempt is DPO. After that, `start_drill()`
# draws another paper at random — IPO, conservative DPO, SimPO or ORPO's odds-ratio term, never the previous
# attempt's — from a seed it prints (`VARIANT = "ipo"` and the others choose one; `"random"` draws one).
# The drill then shows *that* paper's summary, asks its questions, and Exercise 1 becomes its loss; the cells
# of the other variants skip. Your history (below the scorecard) records which papers you have done.
#
# Run the next cell when you are ready: it starts the clock. Running it again does not reset it
# (`start_drill(restart=True)` starts over, for your next attempt).

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false}
# Setup: run this cell first. Where rlhf_core is missing (Colab, a fresh kernel) it installs the course
# library, keeping the torch already there; then it checks the environment and fixes the random seed.
COURSE_REPO_URL = "https://github.com/dpo-paper-to-code/dpo-paper-to-code"
SEED = 10
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
from rlhf_core.course.drill import start_drill

VARIANT = None   # None: DPO on a first attempt, a random other paper after; or "dpo", "ipo", "cdpo", "simpo", "orpo", "random"
drill = start_drill(variant=VARIANT)

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-read", "locked": true, "schema_version": 3, "solution": false}
# ## Block 1 · Read (0:00–0:15)
#
# The cell below shows a structured summary of **this attempt's paper**: problem, idea, evidence,
# limitations, with its citation and the conventions of the loss you will write. Read the paper itself in
# that order if you have it. The DPO paper follows in full: it is the first attempt's reading, and for every
# other variant the derivation its paper starts from.

# %% id="demo-read"
drill.show_read()

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-02", "locked": true, "schema_version": 3, "solution": false}
# ### The DPO paper
#
# *Direct Preference Optimization: Your Language Model is Secretly a Reward Model* — Rafailov, Sharma,
# Mitchell, Ermon, Manning, Finn (NeurIPS 2023, arXiv 2305.18290). Below is a structured summary, in
# the order you should read the paper itself: problem, idea, evidence, limitations. Work through the
# derivation with a pen; the questions at the end are what the next block asks.
#
# ### The problem: RLHF has three stages, and the last two are expensive
#
# 1. **SFT.** Fine-tune a pretrained model on good demonstrations: $\pi_\text{SFT}$.
# 2. **Reward model.** Collect pairs $(x, y_w, y_l)$ where people preferred $y_w$ to $y_l$, and fit a
#    reward model $r_\phi(x, y)$ by maximum likelihood under Bradley–Terry:
#    $P(y_w \succ y_l \mid x) = \sigma\big(r(x, y_w) - r(x, y_l)\big)$.
# 3. **RL.** Maximise the learned reward while staying close to a frozen reference
#    $\pi_\text{ref}$ (normally $\pi_\text{SFT}$):
#    $$\max_{\pi_\theta}\; \mathbb{E}_{x,\, y \sim \pi_\theta}\big[r_\phi(x, y)\big] - \beta\, \mathrm{KL}\big(\pi_\theta(\cdot|x)\,\|\,\pi_\text{ref}(\cdot|x)\big),$$
#    in practice with PPO: sampling from the policy during training, a value function, several models
#    in memory at once, and many hyperparameters to keep it stable.
#
# ### The idea, in five steps
#
# 1. **Closed-form optimum.** Over all policies, the KL-regularised objective is maximised by
#    $$\pi^*(y|x) = \frac{1}{Z(x)}\,\pi_\text{ref}(y|x)\, \exp\!\big(r(x, y)/\beta\big), \qquad Z(x) = \sum_y \pi_\text{ref}(y|x)\, e^{r(x,y)/\beta}.$$
#    $Z(x)$ sums over every possible response: intractable for a language model.
# 2. **Reward through the policy.** Take logs and solve for the reward:
#    $r(x, y) = \beta \log \frac{\pi^*(y|x)}{\pi_\text{ref}(y|x)} + \beta \log Z(x)$.
# 3. **Bradley–Terry.** Preferences depend only on reward *differences* between two responses to the
#    same prompt.
# 4. **$Z$ cancels.** Substitute step 2 into step 3: $\beta \log Z(x)$ appears in both rewards and drops out,
#    $$P(y_w \succ y_l \mid x) = \sigma\Big(\beta \log \tfrac{\pi^*(y_w|x)}{\pi_\text{ref}(y_w|x)} - \beta \log \tfrac{\pi^*(y_l|x)}{\pi_\text{ref}(y_l|x)}\Big).$$
# 5. **The loss.** Put the trainable policy $\pi_\theta$ in place of $\pi^*$ and maximise the likelihood of
#    the observed preferences:
#    $$\mathcal{L}_\text{DPO}(\pi_\theta; \pi_\text{ref}) = -\,\mathbb{E}_{(x, y_w, y_l)}\Big[\log \sigma\Big(\beta \log \tfrac{\pi_\theta(y_w|x)}{\pi_\text{ref}(y_w|x)} - \beta \log \tfrac{\pi_\theta(y_l|x)}{\pi_\text{ref}(y_l|x)}\Big)\Big].$$
#
# So $\hat r_\theta(x, y) = \beta \log \frac{\pi_\theta(y|x)}{\pi_\text{ref}(y|x)}$ is a reward — the *implicit
# reward* — and the loss is Bradley–Terry reward learning with that reward: "your language model is
# secretly a reward model". Its gradient pushes $\log \pi_\theta(y_w)$ up and $\log \pi_\theta(y_l)$ down,
# each pair weighted by $\sigma\big(\hat r_\theta(y_l) - \hat r_\theta(y_w)\big)$, i.e. by how badly the
# implicit reward currently mis-ranks it. The paper also shows that every class of rewards that differ
# only by a function of $x$ (which Bradley–Terry cannot tell apart) contains exactly one reward of this
# form, so the reparameterisation loses nothing.

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-03", "locked": true, "schema_version": 3, "solution": false}
# ### The evidence (quote the shape of each result, not the digits)
#
# - **Controlled sentiment** (IMDb, GPT-2-large, a sentiment classifier as the true reward): plotting
#   reward against $\mathrm{KL}(\pi_\theta \| \pi_\text{ref})$, DPO's frontier lies above PPO's — more reward at
#   every KL — even above PPO given the true reward.
# - **Summarisation** (Reddit TL;DR, win rate against the human reference summaries, judged by GPT-4):
#   DPO's best win rate is around 60 %, a few points above PPO's best, and it degrades much less as the
#   sampling temperature rises.
# - **Single-turn dialogue** (Anthropic HH, Pythia-2.8B): DPO is the only cheap method that beats the
#   data set's chosen responses, roughly level with best-of-128 sampling against a reward model.
# - **Checks on the evaluation:** a human study found GPT-4's judgements agree with people about as
#   often as people agree with each other; DPO also held up better than PPO on an out-of-distribution
#   summarisation set (CNN/DailyMail news).
#
# ### Limitations (have an opinion)
#
# - **Offline.** It learns only from the pairs it is given: no exploration, and pairs far from where the
#   policy ends up teach it little (distribution shift).
# - **Over-optimisation.** With small $\beta$, or with preferences that are never contradicted, the
#   margins can grow without bound and the policy drifts far from the reference.
# - **Data biases go straight in**, such as a preference for longer answers — exactly as they would into
#   a reward model.
# - **Scale and judge.** Models up to about 6B parameters; much of the evaluation relies on GPT-4 as a judge.
#
# ### While you read, answer these (the explain block asks them)
#
# 1. Which two of RLHF's three stages does DPO remove, and what replaces them?
# 2. What is the closed-form optimum of the KL-regularised objective, and why is $Z(x)$ the obstacle to using it directly?
# 3. Where does $Z(x)$ go? What property of Bradley–Terry makes that happen?
# 4. What is the implicit reward, and why does sorting responses by it reproduce the preferences?
# 5. Why must $\pi_\text{ref}$ stay frozen? What does $\beta$ trade off?
# 6. What is the loss when $\pi_\theta = \pi_\text{ref}$? (You will check it in block 4.)

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-04", "locked": true, "schema_version": 3, "solution": false}
# ## Block 2 · Explain (0:15–0:20)
#
# Run the next cell to start the block: it prints the questions for this attempt's paper. For DPO they are
# these four; answer them **out loud first**, in about two minutes:
#
# 1. In one paragraph: what does DPO buy you over RLHF?
# 2. Where did the partition function $Z(x)$ go?
# 3. Why is the reference policy frozen?
# 4. What does $\beta$ do? What happens when it is too small or too large?
#
# Then write your answer into `EXPLANATION` below, in plain sentences (ASCII is fine: `pi_ref`, `beta`).
# The scorecard scans it for red flags.

# %% id="demo-02"
drill.begin("explain")

# %% nbgrader={"grade": false, "grade_id": "written_explanation", "locked": false, "schema_version": 3, "solution": true}
# Your explanation, in plain sentences, between the triple quotes (replace what is there).
# The scorecard scans it for red flags; the rubric below is yours to grade.
EXPLANATION = """
### BEGIN SOLUTION
DPO gets what RLHF is after with one supervised loss. RLHF first fine-tunes a model (SFT), then fits
a separate reward model to human preference pairs, then optimises the policy against that reward with
reinforcement learning and a KL penalty to the SFT model. DPO keeps the same KL-regularised
objective but uses its closed-form optimum, pi*(y|x) = pi_ref(y|x) exp(r(x, y)/beta) / Z(x), solved
for the reward: r(x, y) = beta log pi*(y|x)/pi_ref(y|x) + beta log Z(x).

Z went away in the preference model. Bradley-Terry only looks at the difference of two rewards for
the same prompt, so beta log Z(x) appears in both and cancels. The preference likelihood becomes a
logistic loss: -log sigmoid(beta [(log pi(y_w) - log pi_ref(y_w)) - (log pi(y_l) - log pi_ref(y_l))]),
a binary classification of which response was preferred, on log-ratios to the reference rather than
on raw log-probs.

The policy's log-ratio is the implicit reward, r_hat(y) = beta log(pi_theta(y|x) / pi_ref(y|x)).
Training makes r_hat(y_w) - r_hat(y_l) large for every pair, so sorting responses by r_hat
reproduces the preferences: the language model is its own reward model.

The reference (usually the SFT model) stays frozen because its log-probs are what is left of the KL
penalty: the anchor. If it moved with the policy, every log-ratio difference would be 0 and nothing
would hold the policy near where it started. Beta is the strength of that anchor: large beta keeps
the policy close to the reference, small beta lets it chase the preferences and drift further.

What DPO buys: no reward model to train, no RL loop and no value function, no sampling from the
policy while training. It trains offline on a fixed data set of (prompt, chosen, rejected) triples,
with one model being trained and one frozen.

It reaches the same optimum as the RLHF objective under three conditions: the preferences follow
Bradley-Terry, the policy class can represent pi*, and the data cover the responses (every response
the policy can put probability on is compared in some pair). Then the policy that minimises the DPO
loss is pi* (Rafailov et al. 2023, sections 4 and 5). Without them it need not be. Preferences that are
never contradicted push the margins to infinity whatever beta is, so the KL anchor stops holding
(Azar et al. 2023). And the loss says nothing about a response that no pair compares, so its
minimisers include policies that put probability on such responses (Xu et al. 2024).
### END SOLUTION
"""

# %% id="demo-03"
print(f"{len(EXPLANATION.split())} words")

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-05", "locked": true, "schema_version": 3, "solution": false}
# ### Grade your explanation: the rubric and the red flags
#
# An interviewer listens for four things (DPO's are below; another variant's are printed by the next cell). Grade yourself honestly in `RUBRIC` below — `True` if you
# said it clearly, `False` if not — now or after the scorecard; items left at `None` show as `?`.
#
# 1. DPO is RLHF **without a separate reward model and without RL/PPO**: one classification-style loss on preference pairs.
# 2. The loss is on **log-prob differences relative to a frozen reference**, not on raw log-probs.
# 3. The **implicit reward** $\hat r(y) = \beta \log \pi_\theta(y|x)/\pi_\text{ref}(y|x)$, and why ordering by it recovers the preferences.
# 4. The **reference is frozen**, and why: it anchors the KL constraint.
#
# And four **red flags**, each a sign of a misunderstanding rather than a slip:
#
# | red flag | why it is wrong |
# |---|---|
# | describing a PPO loop (rollouts, advantages, a value function) | DPO has no RL loop: one supervised loss on fixed pairs |
# | training a reward model | the policy's log-ratio to the reference *is* the reward; none is fitted |
# | forgetting the reference term | without $\log \pi_\text{ref}$ the loss compares raw log-probs and the KL anchor is gone |
# | claiming DPO needs online sampling | vanilla DPO is offline: a fixed data set of $(x, y_w, y_l)$ |
#
# The scorecard looks for the first, second and fourth in `EXPLANATION` (by keyword: a sentence that
# says DPO does *not* do it is fine) and for the third in your *code*. Keywords are blunt: describing
# RLHF's own stages ("RLHF trains a reward model, then runs PPO") can trip them. If it does, read the
# flag as a question — did you say clearly that DPO does not do that?

# %% id="demo-04"
RUBRIC = {item: None for item in drill.rubric_items}
# Set each item to True or False, for example:
# RUBRIC[drill.rubric_items[0]] = True

for i, item in enumerate(drill.rubric_items):
    print(f"drill.rubric_items[{i}]  {item}")
flags = drill.red_flags(EXPLANATION)
print("\nred flags in EXPLANATION so far:", "none" if not flags else "")
for flag, instead in flags:
    print(f"  ⚠ {flag} — {instead}")

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-06", "locked": true, "schema_version": 3, "solution": false}
# ## Block 3 · Implement (0:20–0:50)
#
# About 30 minutes. **Exercise 1 is the loss of this attempt's paper**: `dpo_loss` for DPO, or one of the
# four variant cells after it; write only yours (the start cell named it). You need not run the other papers'
# exercise cells: their check cells say "skipped: not your paper". Then `implicit_reward`, and, in the DPO drill,
# `toy_dpo_step` (another variant trains the toy with your loss through the course's step instead). Each check
# cell prints a ✓ line (or what is wrong) and the clock. If the kernel restarts, run the setup cell, then carry
# on from your own cell: the check cell picks the drill back up (same paper, same clock), and a cell you have
# not run again counts as not written until you do.
# Inputs are log-probabilities of whole responses, one number per response, shape `(B,)`: summed for
# DPO and cDPO, length-averaged for SimPO and ORPO (IPO: either, see its docstring).

# %% id="demo-05"
drill.begin("implement")

# %% [markdown] nbgrader={"grade": false, "grade_id": "ex1-header", "locked": true, "schema_version": 3, "solution": false}
# ### Exercise 1 (DPO) — `dpo_loss` · ★★☆ · 10 min
#
# Only if this attempt's paper is DPO; otherwise its check cell skips.
#
# Write the mean sigmoid DPO loss over a batch of $B$ pairs,
#
# $$\mathcal{L} = -\frac{1}{B}\sum_{i=1}^{B} \log \sigma\Big(\beta\big[(\log \pi_\theta(y_w^i) - \log \pi_\text{ref}(y_w^i)) - (\log \pi_\theta(y_l^i) - \log \pi_\text{ref}(y_l^i))\big]\Big).$$
#
# It must stay finite for margins of $\pm 10^4$ and keep the graph to the policy's log-probs.

# %% nbgrader={"grade": false, "grade_id": "dpo_loss", "locked": false, "schema_version": 3, "solution": true}
import torch
import torch.nn.functional as F


def dpo_loss(logp_pol_chosen, logp_pol_rejected, logp_ref_chosen, logp_ref_rejected, beta=0.1):
    """Mean sigmoid DPO loss, a 0-dim tensor.

    Each argument is a (B,) tensor of summed per-response log-probs: the chosen (y_w) and rejected
    (y_l) response under the policy being trained and under the frozen reference.
    """
    ### BEGIN SOLUTION
    chosen_logratio = logp_pol_chosen - logp_ref_chosen        # (B,)
    rejected_logratio = logp_pol_rejected - logp_ref_rejected  # (B,)
    logits = beta * (chosen_logratio - rejected_logratio)      # (B,)
    return -F.logsigmoid(logits).mean()
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_dpo_loss", "locked": true, "points": 2, "schema_version": 3, "solution": false}
from rlhf_core.checks import check_dpo_loss
from rlhf_core.course.drill import resume_drill
drill = resume_drill(globals())   # this kernel's drill, even after a restart; a cell not run yet counts as a stub
drill.check("dpo_loss", check_dpo_loss, dpo_loss)
### BEGIN HIDDEN TESTS
if drill.applies("dpo_loss"):
    check_dpo_loss(dpo_loss, seed=101, quiet=True)
    check_dpo_loss(dpo_loss, seed=202, quiet=True)
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "ex1-hint", "locked": true, "schema_version": 3, "solution": false}
# <details><summary>Hint</summary>
#
# The equation, line by line:
#
# | math | code |
# |---|---|
# | $\log \pi_\theta(y_w) - \log \pi_\text{ref}(y_w)$ | `chosen = logp_pol_chosen - logp_ref_chosen` |
# | $\log \pi_\theta(y_l) - \log \pi_\text{ref}(y_l)$ | `rejected = logp_pol_rejected - logp_ref_rejected` |
# | $h = \beta\,[\dots - \dots]$ | `h = beta * (chosen - rejected)` |
# | $-\log\sigma(h)$, averaged | `-F.logsigmoid(h).mean()` |
#
# `-torch.log(torch.sigmoid(h))` is the same number until $\sigma(h)$ comes out as 0 (in float32 with torch
# on a CPU already at $h = -89$, well before $-104$; notebook 02 measures where) and then it is `inf`. If
# the check says the reference term is missing, you wrote `logp_pol_chosen - logp_pol_rejected` alone.
# </details>

# %% [markdown] nbgrader={"grade": false, "grade_id": "ex1-ipo-header", "locked": true, "schema_version": 3, "solution": false}
# ### Exercise 1 (IPO) — `ipo_loss` · ★★☆ · 20 min
#
# Only if this attempt's paper is IPO (the start cell said so); otherwise its check cell skips. The squared
# loss that pulls the **unscaled** log-ratio margin $h = (\log \pi_\theta(y_w) - \log \pi_\text{ref}(y_w)) - (\log \pi_\theta(y_l) - \log \pi_\text{ref}(y_l))$
# to the target $1/(2\beta)$, averaged over pairs: $\mathcal{L}_\text{IPO} = \frac{1}{B}\sum_i \big(h_i - \tfrac{1}{2\beta}\big)^2$.

# %% nbgrader={"grade": false, "grade_id": "ipo_loss", "locked": false, "schema_version": 3, "solution": true}
import torch
import torch.nn.functional as F


def ipo_loss(logp_pol_chosen, logp_pol_rejected, logp_ref_chosen, logp_ref_rejected, beta=0.1):
    """Mean IPO loss (Azar et al. 2023), a 0-dim tensor.

    Inputs: four (B,) tensors of per-sequence log-probs, as for dpo_loss (policy chosen, policy
    rejected, reference chosen, reference rejected). The course, like TRL, feeds length-averaged
    log-probs (get_logps(..., average=True)); the paper uses summed ones. The formula is the same.
    Conventions: the margin is the policy's log-ratio to the reference on y_w minus the same on y_l,
    *unscaled* (β does not multiply it); β only sets the target the margin is pulled to, 1/(2β)
    (the paper's τ is this β). Return the mean over pairs.
    """
    ### BEGIN SOLUTION
    margin = (logp_pol_chosen - logp_ref_chosen) - (logp_pol_rejected - logp_ref_rejected)  # (B,), unscaled
    target = 1.0 / (2.0 * beta)
    return ((margin - target) ** 2).mean()
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_ipo_loss", "locked": true, "points": 6, "schema_version": 3, "solution": false}
from rlhf_core.checks import check_ipo_loss
from rlhf_core.course.drill import resume_drill
drill = resume_drill(globals())   # this kernel's drill, even after a restart; a cell not run yet counts as a stub
drill.check("ipo_loss", check_ipo_loss, ipo_loss)
### BEGIN HIDDEN TESTS
if drill.applies("ipo_loss"):
    check_ipo_loss(ipo_loss, seed=101, quiet=True)
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "ex1-ipo-hint", "locked": true, "schema_version": 3, "solution": false}
# <details><summary>Hint</summary>
#
# Compute the two log-ratios, subtract them, and do **not** multiply by `beta`: β only enters through the
# target `1 / (2 * beta)`. Square the difference from the target and average. If the check says the loss at
# initialisation is log 2, you wrote DPO's logistic loss; if it says the minimum is in the wrong place, look
# at where β went.
# </details>

# %% [markdown] nbgrader={"grade": false, "grade_id": "ex1-cdpo-header", "locked": true, "schema_version": 3, "solution": false}
# ### Exercise 1 (cDPO) — `conservative_dpo_loss` · ★★☆ · 20 min
#
# Only if this attempt's paper is conservative DPO; otherwise its check cell skips. Each label is flipped
# with probability $\varepsilon$ (`label_smoothing`), so the loss is the DPO loss of the given order with
# weight $1 - \varepsilon$ plus the DPO loss of the flipped order with weight $\varepsilon$, with
# $h = \beta\,[\text{log-ratio on } y_w - \text{log-ratio on } y_l]$:
# $\mathcal{L} = -\frac{1}{B}\sum_i \big[(1-\varepsilon)\log\sigma(h_i) + \varepsilon \log\sigma(-h_i)\big]$.

# %% nbgrader={"grade": false, "grade_id": "conservative_dpo_loss", "locked": false, "schema_version": 3, "solution": true}
import torch
import torch.nn.functional as F


def conservative_dpo_loss(logp_pol_chosen, logp_pol_rejected, logp_ref_chosen, logp_ref_rejected, beta=0.1,
                          label_smoothing=0.1):
    """Mean conservative DPO (cDPO) loss (Mitchell 2023), a 0-dim tensor.

    Inputs: four (B,) tensors of *summed* per-sequence log-probs, as for dpo_loss, β, and
    label_smoothing = ε in [0, 0.5): the probability that a pair's label is flipped.
    Conventions: β scales the margin inside each log-sigmoid, as in DPO; the given order (y_w over
    y_l) is trusted with weight 1 − ε and the flipped order with weight ε. ε = 0 is plain DPO.
    Numerically stable for margins of ±1e4. Return the mean over pairs.
    """
    ### BEGIN SOLUTION
    logits = beta * ((logp_pol_chosen - logp_ref_chosen) - (logp_pol_rejected - logp_ref_rejected))  # (B,)
    given = -F.logsigmoid(logits)       # the label as given: y_w preferred
    flipped = -F.logsigmoid(-logits)    # the label flipped: y_l preferred
    return ((1.0 - label_smoothing) * given + label_smoothing * flipped).mean()
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_conservative_dpo_loss", "locked": true, "points": 6, "schema_version": 3, "solution": false}
from rlhf_core.checks import check_conservative_dpo_loss
from rlhf_core.course.drill import resume_drill
drill = resume_drill(globals())   # this kernel's drill, even after a restart; a cell not run yet counts as a stub
drill.check("conservative_dpo_loss", check_conservative_dpo_loss, conservative_dpo_loss)
### BEGIN HIDDEN TESTS
if drill.applies("conservative_dpo_loss"):
    check_conservative_dpo_loss(conservative_dpo_loss, seed=101, quiet=True)
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "ex1-cdpo-hint", "locked": true, "schema_version": 3, "solution": false}
# <details><summary>Hint</summary>
#
# Start from your DPO logits `h`. The given order costs `-F.logsigmoid(h)`, the flipped order
# `-F.logsigmoid(-h)`; weigh them by `1 - label_smoothing` and `label_smoothing` and average. With
# `label_smoothing = 0` the loss must be exactly DPO's. `-log(sigmoid(...))` overflows at large margins:
# keep `logsigmoid`.
# </details>

# %% [markdown] nbgrader={"grade": false, "grade_id": "ex1-simpo-header", "locked": true, "schema_version": 3, "solution": false}
# ### Exercise 1 (SimPO) — `simpo_loss` · ★★☆ · 20 min
#
# Only if this attempt's paper is SimPO; otherwise its check cell skips. No reference model: the reward of
# a response is $\beta$ times its **length-averaged** log-prob, and the loss asks the chosen response's
# reward to beat the rejected one's by a margin $\gamma$:
# $\mathcal{L} = -\frac{1}{B}\sum_i \log\sigma\big(\beta\,\bar\ell_w^i - \beta\,\bar\ell_l^i - \gamma\big)$.

# %% nbgrader={"grade": false, "grade_id": "simpo_loss", "locked": false, "schema_version": 3, "solution": true}
import torch
import torch.nn.functional as F


def simpo_loss(avg_logp_chosen, avg_logp_rejected, beta=2.0, gamma=0.5):
    """Mean SimPO loss (Meng, Xia, Chen 2024), a 0-dim tensor. No reference model.

    Inputs: two (B,) tensors of *length-averaged* log-probs of the chosen and rejected responses
    (get_logps(..., average=True)): the reward of a response is β times its average log-prob.
    Conventions: γ is the target margin between the two rewards, in the units of the β-scaled
    rewards: it is subtracted as it is, not multiplied by β. Numerically stable for large gaps.
    Return the mean over pairs.
    """
    ### BEGIN SOLUTION
    logits = beta * (avg_logp_chosen - avg_logp_rejected) - gamma   # (B,): reward gap minus the target margin
    return -F.logsigmoid(logits).mean()
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_simpo_loss", "locked": true, "points": 6, "schema_version": 3, "solution": false}
from rlhf_core.checks import check_simpo_loss
from rlhf_core.course.drill import resume_drill
drill = resume_drill(globals())   # this kernel's drill, even after a restart; a cell not run yet counts as a stub
drill.check("simpo_loss", check_simpo_loss, simpo_loss)
### BEGIN HIDDEN TESTS
if drill.applies("simpo_loss"):
    check_simpo_loss(simpo_loss, seed=101, quiet=True)
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "ex1-simpo-hint", "locked": true, "schema_version": 3, "solution": false}
# <details><summary>Hint</summary>
#
# There is no reference term at all. The logits are `beta * (chosen - rejected) - gamma`: γ is subtracted
# after the β scaling, not inside it. At a tie the loss is `log(1 + e^γ)`, not log 2. Use `F.logsigmoid`
# for large gaps.
# </details>

# %% [markdown] nbgrader={"grade": false, "grade_id": "ex1-orpo-header", "locked": true, "schema_version": 3, "solution": false}
# ### Exercise 1 (ORPO) — `orpo_odds_ratio_loss` · ★★★ · 20 min
#
# Only if this attempt's paper is ORPO; otherwise its check cell skips. No reference model. With
# $p = e^{\bar\ell}$ the per-token probability of a response ($\bar\ell$ its length-averaged log-prob) and
# $\mathrm{odds} = p/(1-p)$, the odds-ratio term is
# $\mathcal{L}_\text{OR} = -\frac{1}{B}\sum_i \log\sigma\big(\log \mathrm{odds}(y_w^i) - \log \mathrm{odds}(y_l^i)\big)$.
# It must stay finite and accurate when $p$ is within $10^{-6}$ of 1.

# %% nbgrader={"grade": false, "grade_id": "orpo_odds_ratio_loss", "locked": false, "schema_version": 3, "solution": true}
import torch
import torch.nn.functional as F


def orpo_odds_ratio_loss(avg_logp_chosen, avg_logp_rejected):
    """Mean odds-ratio term of ORPO (Hong, Lee, Thorne 2024), a 0-dim tensor. No reference model.

    Inputs: two (B,) tensors of *length-averaged* log-probs a = (1/|y|)·Σ_t log p(y_t | x, y_<t) ≤ 0,
    so p = exp(a) is the response's per-token (geometric-mean) probability.
    Conventions: odds(y) = p / (1 − p); the term contrasts the log-odds of y_w and y_l through a
    log-sigmoid (Bradley–Terry on log-odds). Only this term: ORPO's full loss is the SFT loss on y_w
    plus λ times it, added outside. p can be within 1e-6 of 1: compute log(1 − p) stably from a.
    Return the mean over pairs.
    """
    ### BEGIN SOLUTION
    def log_odds(avg_logp):                           # log p − log(1 − p), with log(1 − e^a) = log(−expm1(a))
        return avg_logp - torch.log(-torch.expm1(avg_logp))

    return -F.logsigmoid(log_odds(avg_logp_chosen) - log_odds(avg_logp_rejected)).mean()
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_orpo_odds_ratio_loss", "locked": true, "points": 6, "schema_version": 3, "solution": false}
from rlhf_core.checks import check_orpo_odds_ratio_loss
from rlhf_core.course.drill import resume_drill
drill = resume_drill(globals())   # this kernel's drill, even after a restart; a cell not run yet counts as a stub
drill.check("orpo_odds_ratio_loss", check_orpo_odds_ratio_loss, orpo_odds_ratio_loss)
### BEGIN HIDDEN TESTS
if drill.applies("orpo_odds_ratio_loss"):
    check_orpo_odds_ratio_loss(orpo_odds_ratio_loss, seed=101, quiet=True)
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "ex1-orpo-hint", "locked": true, "schema_version": 3, "solution": false}
# <details><summary>Hint</summary>
#
# `log odds = a - log(1 - exp(a))`. The second term is the trap: `1 - torch.exp(a)` rounds to 0 in float32
# as `a` nears 0. `torch.expm1(a)` computes `exp(a) - 1` without that loss, so `log(1 - exp(a))` is
# `torch.log(-torch.expm1(a))`. Then one `F.logsigmoid` of the log-odds difference, negated and averaged.
# </details>

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-your-loss", "locked": true, "schema_version": 3, "solution": false}
# ### Your loss
#
# The cells below use the loss of this attempt's paper under one name, `YOUR_LOSS`.

# %% id="demo-your-loss"
from rlhf_core.course.drill import resume_drill

drill = resume_drill(globals())   # the other papers' exercises you did not run are stand-ins: only yours is used
YOUR_LOSS = {"dpo_loss": dpo_loss, "ipo_loss": ipo_loss, "conservative_dpo_loss": conservative_dpo_loss,
             "simpo_loss": simpo_loss, "orpo_odds_ratio_loss": orpo_odds_ratio_loss}[drill.variant.exercise]
print(f"YOUR_LOSS is your {YOUR_LOSS.__name__} ({drill.variant.title.split(' — ')[0]})")


# %% [markdown] nbgrader={"grade": false, "grade_id": "ex2-header", "locked": true, "schema_version": 3, "solution": false}
# ### Exercise 2 — `implicit_reward` · ★☆☆ · 5 min
#
# The reward the policy is optimal for, up to the per-prompt constant $\beta \log Z(x)$:
# $\hat r(x, y) = \beta \log \frac{\pi_\theta(y|x)}{\pi_\text{ref}(y|x)}$, elementwise.

# %% nbgrader={"grade": false, "grade_id": "implicit_reward", "locked": false, "schema_version": 3, "solution": true}
def implicit_reward(logp_pol, logp_ref, beta=0.1):
    """beta * (log pi(y|x) - log pi_ref(y|x)), elementwise: any shape in, the same shape out."""
    ### BEGIN SOLUTION
    return beta * (logp_pol - logp_ref)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_implicit_reward", "locked": true, "points": 1, "schema_version": 3, "solution": false}
from rlhf_core.checks import check_implicit_reward
from rlhf_core.course.drill import resume_drill
drill = resume_drill(globals())   # this kernel's drill, even after a restart; a cell not run yet counts as a stub
drill.check("implicit_reward", check_implicit_reward, implicit_reward)
### BEGIN HIDDEN TESTS
check_implicit_reward(implicit_reward, seed=101, quiet=True)
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "ex2-hint", "locked": true, "schema_version": 3, "solution": false}
# <details><summary>Hint</summary>
#
# One line. The inputs are already log-probabilities: subtract them and scale by `beta` — no division,
# no further `log`, no reduction over the batch.
# </details>

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-07", "locked": true, "schema_version": 3, "solution": false}
# ### The toy task
#
# To see DPO work without a language model, the interviewer hands you a tiny one. A **policy** is one
# categorical distribution over 6 responses for each of 2 prompts: `ToyPolicy(2, 6)` holds a `(2, 6)`
# tensor of logits (starting at zero, the uniform policy), and `policy.logprobs(prompt_idx)` returns
# the log-softmax rows for a `(K,)` tensor of prompt indices, shape `(K, 6)`. The **reference** is a
# frozen copy of the policy at the start (`frozen_copy`). The **preferences** come from a known
# ranking per prompt — prompt 0: $0 \succ 1 \succ \dots \succ 5$, prompt 1 the reverse — and every
# ordered pair of a ranking is one preference $(x, y_w, y_l)$: 15 per prompt, 30 in all. A **batch** is
# three `(K,)` long tensors `(prompt_idx, chosen_idx, rejected_idx)`. No reward model anywhere: after
# training, the implicit reward alone must rank the responses.

# %% id="demo-06"
from rlhf_core.toy import TOY_RANKINGS, ToyPolicy, frozen_copy, make_toy_pairs

policy = ToyPolicy(2, 6)
ref = frozen_copy(policy)
batch = make_toy_pairs(TOY_RANKINGS)
prompt_idx, chosen_idx, rejected_idx = batch
print("rankings (best first):", TOY_RANKINGS)
print("batch:", len(prompt_idx), "pairs;  first five (prompt, chosen, rejected):",
      list(zip(prompt_idx.tolist(), chosen_idx.tolist(), rejected_idx.tolist()))[:5])
print("policy.logprobs(prompt_idx):", tuple(policy.logprobs(prompt_idx).shape),
      "  reference frozen:", not any(p.requires_grad for p in ref.parameters()))


# %% [markdown] nbgrader={"grade": false, "grade_id": "ex3-header", "locked": true, "schema_version": 3, "solution": false}
# ### Exercise 3 (DPO) — `toy_dpo_step` · ★★☆ · 15 min
#
# The DPO drill only: another variant trains the toy with your loss through the course's step, and this check skips.
#
# One full DPO update of the toy policy: read the policy's and the reference's log-probs of each pair's
# chosen and rejected response, compute **your** `dpo_loss` from Exercise 1, and take one optimizer
# step. Return the loss (the one the gradient came from) as a Python float. The reference's log-probs
# carry no gradient, and the reference must never change.

# %% nbgrader={"grade": false, "grade_id": "toy_dpo_step", "locked": false, "schema_version": 3, "solution": true}
import torch


def toy_dpo_step(policy, ref, batch, optimizer, beta=0.1):
    """One DPO update of a ToyPolicy; returns the loss before the update, as a float.

    policy: the ToyPolicy being trained, logits (P, N); ref: the frozen reference ToyPolicy.
    batch = (prompt_idx, chosen_idx, rejected_idx), each a (K,) long tensor.
    optimizer: built on policy.parameters(). Uses dpo_loss from Exercise 1.
    """
    ### BEGIN SOLUTION
    prompt_idx, chosen_idx, rejected_idx = batch
    logp_pol = policy.logprobs(prompt_idx)            # (K, N)
    with torch.no_grad():
        logp_ref = ref.logprobs(prompt_idx)           # (K, N), no graph

    def pick(logp, idx):                              # (K, N), (K,) -> (K,)
        return logp.gather(1, idx[:, None]).squeeze(1)

    loss = dpo_loss(pick(logp_pol, chosen_idx), pick(logp_pol, rejected_idx),
                    pick(logp_ref, chosen_idx), pick(logp_ref, rejected_idx), beta=beta)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_toy_dpo_step", "locked": true, "points": 2, "schema_version": 3, "solution": false}
from rlhf_core.checks import check_toy_dpo_step
from rlhf_core.course.drill import resume_drill
drill = resume_drill(globals())   # this kernel's drill, even after a restart; a cell not run yet counts as a stub
drill.check("toy_dpo_step", check_toy_dpo_step, toy_dpo_step)
### BEGIN HIDDEN TESTS
if drill.applies("toy_dpo_step"):
    check_toy_dpo_step(toy_dpo_step, seed=101, quiet=True)
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "ex3-hint", "locked": true, "schema_version": 3, "solution": false}
# <details><summary>Hint</summary>
#
# Unpack the batch. `policy.logprobs(prompt_idx)` is a `(K, N)` table; `table.gather(1, idx[:, None]).squeeze(1)`
# picks one entry per row, giving `(K,)`. Compute the reference's table the same way inside
# `with torch.no_grad():`. Call `dpo_loss(...)` with `beta=beta` passed on, then `optimizer.zero_grad()`,
# `loss.backward()`, `optimizer.step()` in that order, and return `loss.item()`. If the check says the
# loss is stuck at $\log 2$, your "reference" log-probs came from the policy. If it reports a wrong loss
# value that "matches none of the common mistakes" while your step looks right, look at `dpo_loss`:
# the step uses yours, so it must pass its own check first.
# </details>

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-08", "locked": true, "schema_version": 3, "solution": false}
# ### Train the toy policy with your step
#
# 400 full-batch steps, Adam at learning rate 0.05, $\beta = 0.1$: `run_toy_task` builds the policy, the
# frozen reference and the 30 pairs, and calls your `toy_dpo_step` (or the library's, if yours does not
# pass its check yet); in another variant's drill it trains with `YOUR_LOSS` through the course's step. Say out loud what you expect before you run it: the loss starts at $\log 2$, the
# mass moves onto each prompt's top response, and the implicit reward sorts the responses as the
# rankings do.

# %% id="demo-07"
from rlhf_core.plots import plot_probability_bars

result = drill.train_toy(YOUR_LOSS, toy_dpo_step)
start = drill.variant.init_loss(**drill.variant.params)
print(f"loss: {result['losses'][0]:.4f} at step 0 (expected {start:.4f} for {drill.variant.key}) → {result['losses'][-1]:.4f} after 400 steps")
for p, order in result["rankings"].items():
    by_reward = result["rewards"][p].argsort(descending=True).tolist()
    print(f"prompt {p}: ranking by implicit reward {by_reward}, preferences {order}, match: {by_reward == order}")
fig = plot_probability_bars(result["before"], result["after"], highlight=[order[0] for order in result["rankings"].values()],
                            title="π(y|x) before and after training on preferences alone (bold: the top-ranked response)")

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-09", "locked": true, "schema_version": 3, "solution": false}
# ## Block 4 · Sanity-check (0:50–1:00)
#
# An implementation is not done until you can show it is right. Run the checks in one go, and for
# each ✓ line say out loud *what* it tests and *which bug* it would have caught. The table is DPO's six;
# another variant keeps those that make sense for its loss and replaces the others (IPO's loss at
# initialisation is $(1/(2\beta))^2$, not $\log 2$; SimPO and ORPO have no reference to freeze):
# `drill.begin("sanity-check")` prints its plan, and the cell after the check cell runs it on your loss.
#
# | # | check | what must hold | the bug it catches |
# |---|---|---|---|
# | 1 | loss at initialisation | policy = reference ⇒ loss $= -\log\sigma(0) = \log 2 \approx 0.693$ | a missing reference term, a missing minus, sum instead of mean |
# | 2 | reference frozen | after training, no reference parameter requires grad and none moved | the reference handed to the optimizer, or aliased to the policy |
# | 3 | gradient flows | the loss sends a non-zero, finite gradient to the policy (on the loss alone, and through your step) | `.item()` or `.detach()` in the loss; a missing `optimizer.step()` |
# | 4 | margin monotone | a bigger margin lowers the loss, swapping chosen and rejected raises it | chosen and rejected swapped |
# | 5 | ranking recovered | after training, the implicit reward ranks every response as preferred | a step that never moves the policy, or moves it the wrong way |
# | 6 | reward linear in $\beta$ | doubling $\beta$ doubles $\beta \log \pi_\theta/\pi_\text{ref}$ | $\beta$ applied in the wrong place |
#
# The check cell runs them on **your** functions (no fallback), so it fails until all three exercises
# are done.

# %% id="demo-08"
drill.begin("sanity-check")

# %% nbgrader={"grade": true, "grade_id": "six_sanity_checks", "locked": true, "points": 2, "schema_version": 3, "solution": false}
from rlhf_core.checks import (check_toy_training, sanity_gradient_flows, sanity_loss_at_init,
                              sanity_margin_monotone, sanity_reward_scales_with_beta)
from rlhf_core.course.drill import resume_drill
drill = resume_drill(globals())   # this kernel's drill, even after a restart; a cell not run yet counts as a stub


def six_sanity_checks(dpo_loss, implicit_reward, toy_dpo_step):
    sanity_loss_at_init(dpo_loss)                     # 1
    sanity_gradient_flows(dpo_loss)                   # 3, on the loss alone
    sanity_margin_monotone(dpo_loss)                  # 4
    sanity_reward_scales_with_beta(implicit_reward)   # 6
    check_toy_training(toy_dpo_step)                  # 3 through your step, then 2 and 5 after training


drill.check("six sanity checks", six_sanity_checks, dpo_loss, implicit_reward, toy_dpo_step)

# %% id="demo-variant-sanity"
# Another variant's sanity plan, on your loss (DPO's six ran in the check cell above; this cell never fails:
# read its ✗ lines)
if not drill.variant.standard_sanity:
    variant_sanity = drill.sanity_checks(YOUR_LOSS, implicit_reward)

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-diagnose", "locked": true, "schema_version": 3, "solution": false}
# ## Block 5 (optional) · Diagnose (1:00–1:10)
#
# Interviewers often end with a run: *here are my training curves — what went wrong, and what would you change
# first?* The next cell draws one of six runs of the course's own trainer on the shipped SFT model (a healthy
# run, a margin explosion, likelihood displacement, β too large, a mask that scores the prompt tokens, a
# "reference" whose log-probs come from the policy itself) and plots its curves under TRL's metric names. Read
# them out loud — loss, accuracy, the β-scaled and the unscaled margin, both log-probs — then answer in the cell
# after it: **one point for the right letter, one for a first change that names the right lever** (judged by
# keywords). The verdict shows the model answer. Skip this block if your hour is up.

# %% id="demo-diagnose"
drill.begin("diagnose")
case = drill.diagnosis_case()

# %% id="demo-diagnose-answer"
DIAGNOSIS = None    # a letter, A–F
FIRST_FIX = ""      # one sentence: the first thing you would change
judgement = drill.judge_diagnosis(DIAGNOSIS, FIRST_FIX)

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-10", "locked": true, "schema_version": 3, "solution": false}
# ## The scorecard
#
# Time is up. The next cell runs everything again on what you wrote — the six sanity checks, the
# stronger checks of each exercise (they catch what the six miss, such as `log(sigmoid(x))` overflowing),
# the time you spent per block, your rubric, and the red flags in `EXPLANATION` and in your code. It
# never fails: a stub or a crash shows up as a ✗ with the reason. Read every ✗ line: each one says
# what to fix.

# %% id="demo-09"
from rlhf_core.course.drill import resume_drill

drill = resume_drill(globals())   # after a restart: EXPLANATION and RUBRIC count as not written until their cells run
card = drill.scorecard(RUBRIC, EXPLANATION, dpo_loss=dpo_loss, implicit_reward=implicit_reward, toy_step=toy_dpo_step,
                      variant_loss=YOUR_LOSS)

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-progress", "locked": true, "schema_version": 3, "solution": false}
# ## Your progress over attempts
#
# The drill is worth repeating: a week later, with `start_drill(restart=True)`. To see whether you are
# getting faster and greener, keep each attempt's scorecard. `card.save()` appends it to a history on
# this machine — one JSON line in `history.jsonl` and the card as Markdown, in `~/.rlhf_course/drill`
# (set the environment variable `RLHF_DRILL_HISTORY`, or pass `card.save(path)`, to keep it elsewhere;
# nothing is sent anywhere). `drill_history()` lists every saved attempt: minutes per block, the sanity
# checks and stronger checks that passed, the red flags, and plots them. Set `SAVE_ATTEMPT = False` to
# leave this attempt out.
#
# Only an **attempt** is kept: a run in which you wrote something — an exercise that no longer raises
# `NotImplementedError`, an `EXPLANATION`, a graded rubric item or a diagnosis. A Run All of the untouched
# lesson, to look around, is not saved (`card.save(force=True)` keeps one anyway, and it still does not count),
# so your first real attempt is DPO and the next paper is drawn from real attempts only. To remove an attempt
# from the history, pass its number in the table: `drill_history(drop=3)` drops attempt 3 (its card too). A
# history from an older version of the course may start with such a Run All: the table marks it "counts: no",
# the draw skips it, and `drop` removes it.

# %% id="demo-progress"
from rlhf_core.course.drill import drill_history

SAVE_ATTEMPT = True     # False: do not keep this attempt
if SAVE_ATTEMPT:
    card.save()         # kept only if you wrote something; ~/.rlhf_course/drill unless RLHF_DRILL_HISTORY says otherwise
attempts = drill_history()   # drill_history(drop=N) removes attempt N

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-11", "locked": true, "schema_version": 3, "solution": false}
# ## Debrief: the follow-up questions
#
# After the code, an interviewer probes the edges. Answer each out loud in under a minute, then open
# the model answer. The next cell shows the questions on this attempt's paper; the DPO questions follow
# it, and every variant's interviewer may ask them too.
#
# **1. How does DPO relate to PPO-based RLHF?**
# <details><summary>Model answer</summary>
#
# Same objective — expected reward minus $\beta$ times the KL to the reference — solved differently. PPO
# optimises it approximately: it samples from the current policy, scores the samples with a learned
# reward model, and follows a clipped policy gradient with a value function as baseline. DPO uses the
# exact optimum of that objective to rewrite the reward in terms of the policy, so fitting the
# preferences *is* optimising the policy. The two reach the same policy only under conditions: the
# preferences follow Bradley–Terry, the policy class can represent $\pi^*$, and the data cover the responses
# (each compared, often enough). On finitely many hard labels the DPO loss has no finite minimiser, and its
# minimisers can move mass to responses no pair mentions (Azar et al. 2023; Xu et al. 2024); PPO additionally
# explores responses that are not in the data.
# </details>
#
# **2. Why does the partition function cancel?**
# <details><summary>Model answer</summary>
#
# $Z(x)$ depends only on the prompt. Bradley–Terry compares two responses *to the same prompt* through
# the difference of their rewards, and $\beta \log Z(x)$ is the same in both. Rewards that differ by any
# function of $x$ give identical preference probabilities, so the data cannot tell them apart and the
# loss does not need to.
# </details>
#
# **3. What if the reference is bad, or there is none?**
# <details><summary>Model answer</summary>
#
# Dropping the reference terms amounts to a uniform reference: the loss then compares raw
# log-probabilities, there is no KL anchor to the SFT model, and nothing stops the policy drifting into
# degenerate text (for sequences it also simply favours whichever response is shorter or likelier).
# A reference that is far from the data — say, not fine-tuned on the kind of responses in the pairs —
# gives very negative, noisy $\log \pi_\text{ref}$ and weak anchoring where it matters. The paper's
# remedy when no SFT model exists: first fine-tune on the preferred responses and use that as
# $\pi_\text{ref}$.
# </details>
#
# **4. What breaks if $\beta$ is too small or too large?**
# <details><summary>Model answer</summary>
#
# $\beta$ is the KL strength. Too small: the policy chases the preferences far from the reference —
# margins blow up, probability mass collapses onto a few responses, the text degenerates, and any bias
# in the data is exploited. Too large: the policy barely moves and underfits the preferences. The
# useful range is found on the reward-vs-KL frontier; typical values are around 0.1 to 0.5.
# </details>
#
# **5. Online or offline?**
# <details><summary>Model answer</summary>
#
# Vanilla DPO is offline: a fixed data set of $(x, y_w, y_l)$ triples, with no sampling during training.
# That makes it cheap and stable, but the pairs come from other models, so they say little about the
# responses the trained policy now produces. Online or iterative variants sample from the current
# policy, label the new pairs (a reward model, a judge model or people) and train again, which
# recovers some of RL's exploration.
# </details>
#
# **6. Which variants do you know, and what does each fix?**
# <details><summary>Model answer</summary>
#
# - **IPO** (Azar et al., 2023): with preferences that are never contradicted, DPO's loss has no finite
#   minimum and margins grow without bound; IPO regresses the log-ratio margin onto a fixed target with
#   a squared loss, so it stops.
# - **KTO** (Ethayarajh et al., 2024): learns from unpaired "good" / "bad" labels, with a loss shaped like
#   prospect theory's value function, relative to a reference point.
# - **ORPO** (Hong et al., 2024): no reference model and no separate SFT stage — the SFT loss plus an
#   odds-ratio term that favours the chosen response.
# - Others aimed at length: **R-DPO** adds a length penalty to the margin; **SimPO** uses the
#   length-normalised log-prob with a target margin and no reference.
# </details>
#
# **7. Does DPO have a length bias?**
# <details><summary>Model answer</summary>
#
# It can. The log-probs are summed over tokens, and preference data sets often favour longer answers, so
# DPO-trained models tend to get more verbose, and a judge that likes length rewards it again. Watch the
# response length during training; remedies include length-controlled data, a length penalty in the
# loss (R-DPO), length-normalised log-probs (SimPO), and length-controlled evaluation.
# </details>

# %% id="demo-debrief"
drill.show_debrief()

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-dpo-debrief", "locked": true, "schema_version": 3, "solution": false}
# ### The DPO questions

# %% [markdown] nbgrader={"grade": false, "grade_id": "takeaways", "locked": true, "schema_version": 3, "solution": false}
# ## Takeaways
#
# - The drill is four blocks on a clock: read 15, explain 5, implement 30, sanity-check 10. Moving on
#   when time is up beats finishing one part perfectly.
# - The explanation that scores: DPO is RLHF's KL-regularised objective solved in closed form; the
#   reward written through the policy; $Z(x)$ cancels in Bradley–Terry; one logistic loss on log-ratios
#   to a frozen reference; no reward model, no RL loop, offline.
# - The code is short — a log-ratio difference, `-F.logsigmoid(β·h).mean()`, and a standard optimizer step
#   with the reference under `no_grad` — and the six sanity checks are how you show it is right.
# - The scorecard judges what the code does, not what you meant: a loss without the reference term
#   passes "loss at init = log 2" on zeros and fails it on anything else.
# - Repeat the drill in a week with `start_drill(restart=True)`: after the first attempt it draws another paper
#   (IPO, cDPO, SimPO, ORPO), so the second time tests reading, not memory. Aim for every check green inside 60 minutes.
#
# ## Interview questions this prepares you for
#
# 1. In one paragraph: what does DPO buy you over RLHF with PPO?
# 2. Derive the DPO loss from the KL-regularised objective. Where does $Z(x)$ go?
# 3. Implement the DPO loss and one training step. How do you know your implementation is right?
# 4. Why is the reference frozen, and what happens without it? What does $\beta$ control?
# 5. What is the loss at initialisation, and which bugs does checking it catch?
# 6. Online versus offline preference optimisation; IPO, KTO, ORPO — what does each change?
