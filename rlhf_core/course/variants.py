"""The drill's interview variants: the same 60 minutes on DPO or on one of its successors.

An interviewer rarely hands over the paper you rehearsed. Each :class:`Variant` is everything the
drill needs to run on one paper: its citation, a Read block (problem, idea, evidence, limitations —
the paper's facts in the course's words), the questions of the explain block with a rubric, the
phrases that signal a misunderstanding, the exercise stub and its check, which of the six sanity
checks apply and what replaces the others, the loss at initialisation, and a debrief with model
answers. :data:`VARIANTS` holds five::

    key     paper                                   exercise (check)           log-probs          reference model
    dpo     Rafailov et al. 2023                    dpo_loss                   summed             yes
    ipo     Azar et al. 2023 (AISTATS 2024)         ipo_loss                   length-averaged*   yes
    cdpo    Mitchell 2023 (a note)                  conservative_dpo_loss      summed             yes
    simpo   Meng, Xia, Chen 2024                    simpo_loss                 length-averaged    no
    orpo    Hong, Lee, Thorne 2024                  orpo_odds_ratio_loss (odds-ratio term) length-averaged   no

(* IPO: the paper's log-ratios are of whole sequences; the course, like TRL, averages per token
first. The formula is the same; the target 1/(2β) is then in nats per token.)

``variant="random"`` draws one with :func:`pick_variant` (deterministic in the seed);
:func:`get_variant` resolves a key, ``"random"`` or a :class:`Variant`. :func:`train_toy_with`
trains the course's toy categorical policy with a variant's reference loss and returns what
sanity check 5 reads; :func:`find_red_flags` scans a written explanation for a variant's red flags.

The toy's responses are single tokens, so a response's summed and length-averaged log-probs are the
same number there: every variant trains on :func:`rlhf_core.toy.run_toy_task` unchanged, through
:func:`toy_loss_fn`, an adapter with ``dpo_loss``'s signature.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import losses
from ..checks import EXERCISES, SANITY_CHECKS, check
from ..toy import run_toy_task

__all__ = ["Citation", "ReadBlock", "RedFlag", "SanityStep", "Variant", "VARIANTS", "pick_variant", "get_variant",
           "toy_loss_fn", "train_toy_with", "find_red_flags", "TOY_READOUT_BETA"]

#: The β of the implicit-reward readout for a variant that has no β of its own (ORPO): it scales the
#: toy's rewards, never their order.
TOY_READOUT_BETA = 0.1


@dataclass(frozen=True)
class Citation:
    """Where a variant comes from. ``arxiv`` is the arXiv id, or None where the work has none (``note`` says so)."""

    authors: str
    title: str
    venue: str
    year: int
    arxiv: str | None
    note: str = ""

    def __str__(self) -> str:
        where = f"arXiv:{self.arxiv}" if self.arxiv else (self.note or "no arXiv id")
        return f"{self.authors} ({self.year}). {self.title}. {self.venue}. {where}."


@dataclass(frozen=True)
class ReadBlock:
    """The 15-minute read, condensed: what problem, what idea, what evidence, what limitations."""

    problem: str
    idea: str
    evidence: str
    limitations: str


@dataclass(frozen=True)
class RedFlag:
    """A phrase that signals a misunderstanding: ``pattern`` (a regex, matched on the lower-cased sentence),
    ``flag`` (what it signals), ``why`` (what is true instead), ``example`` (a sentence that raises it)."""

    pattern: str
    flag: str
    why: str
    example: str


@dataclass(frozen=True)
class SanityStep:
    """One of the six sanity checks for a variant: ``applies`` as in :data:`rlhf_core.checks.SANITY_CHECKS`,
    or not, and ``check`` — what to verify for this variant (the replacement where it does not apply)."""

    number: int
    name: str
    applies: bool
    check: str


@dataclass(frozen=True)
class Variant:
    """One paper the drill can run on (see the module's docstring).

    ``stub`` is the exercise's source (signature, a docstring stating its conventions, ``raise
    NotImplementedError``); ``exercise`` the name of its check in :data:`rlhf_core.checks.EXERCISES`;
    ``reference`` the library's loss; ``params`` the hyper-parameters the drill uses (keyword arguments
    of ``reference``); ``init_loss(**params)`` the loss at ``init_condition`` (policy == reference, or a
    tie for the reference-free losses); ``debrief`` ``(question, model answer)`` pairs.
    """

    key: str
    title: str
    citation: Citation
    read: ReadBlock
    explain_questions: tuple[str, ...]
    rubric: tuple[str, ...]
    red_flags: tuple[RedFlag, ...]
    stub: str
    exercise: str
    reference: Callable[..., Tensor]
    params: dict[str, float]
    log_probs: str               # "summed" or "length-averaged": what the loss is fed in the course
    uses_reference: bool         # whether the loss takes the reference model's log-probs
    sanity: tuple[SanityStep, ...]
    init_loss: Callable[..., float]
    init_condition: str
    debrief: tuple[tuple[str, str], ...]
    notes: str = ""              # the conventions chosen, and why

    def stub_function(self) -> Callable:
        """The stub, defined in a fresh namespace (``torch``, ``F`` and ``Tensor`` imported)."""
        namespace: dict[str, Any] = {"torch": torch, "F": F, "Tensor": Tensor}
        exec(compile(self.stub, f"<stub of {self.exercise}>", "exec"), namespace)
        return namespace[self.exercise]

    def check(self, candidate: Callable, seed: int = 0, quiet: bool = False) -> str | None:
        """Run the exercise's check on ``candidate`` (prints ``✓ …`` or raises ``CheckFailed``)."""
        return check(EXERCISES[self.exercise], candidate, seed, quiet)


# ------------------------------------------------------------------------------------------------
# the sanity plan of each variant

_STANDARD = {
    1: "with policy == reference the loss is log 2, whatever β",
    2: "no reference parameter requires grad, and none moved during training",
    3: "the loss sends a non-zero, finite gradient to the policy's parameters",
    4: "a bigger margin lowers the loss, and swapping chosen and rejected raises it",
    5: "after training, the implicit reward β·log(π/π_ref) ranks every prompt's responses as preferred, "
       "and the top response gained probability",
    6: "the implicit reward β·log(π/π_ref) is linear in β",
}


def _plan(**changes: tuple[bool, str]) -> tuple[SanityStep, ...]:
    """The six steps, standard unless ``changes`` (``c1=(applies, what)``…) says otherwise."""
    steps = []
    for number, name, _ in SANITY_CHECKS:
        applies, what = changes.get(f"c{number}", (True, _STANDARD[number]))
        steps.append(SanityStep(number, name, applies, what))
    return tuple(steps)


# ------------------------------------------------------------------------------------------------
# losses at initialisation


def _dpo_init(beta: float = 0.1, **_: float) -> float:
    return math.log(2.0)


def _ipo_init(beta: float = 0.1, **_: float) -> float:
    return (1.0 / (2.0 * beta)) ** 2


def _cdpo_init(beta: float = 0.1, label_smoothing: float = 0.1, **_: float) -> float:
    return math.log(2.0)   # both terms are log 2 at a zero margin: (1 − ε)·log 2 + ε·log 2


def _simpo_init(beta: float = 2.0, gamma: float = 0.5, **_: float) -> float:
    return math.log1p(math.exp(gamma))   # −log σ(−γ) at a tie; log 2 only when γ = 0


def _orpo_init(**_: float) -> float:
    return math.log(2.0)   # equal odds: the log-odds gap is 0


# ------------------------------------------------------------------------------------------------
# the stubs (what the learner fills in)

_DPO_STUB = '''\
def dpo_loss(logp_pol_chosen, logp_pol_rejected, logp_ref_chosen, logp_ref_rejected, beta=0.1):
    """Mean sigmoid DPO loss (Rafailov et al. 2023), a 0-dim tensor.

    Inputs: four (B,) tensors of *summed* per-sequence log-probs (get_logps(..., average=False)):
    policy chosen, policy rejected, reference chosen, reference rejected; the reference is frozen.
    Conventions: β multiplies the margin (the difference of the two log-ratios to the reference)
    inside the log-sigmoid; return the mean over pairs. log 2 when policy == reference; finite and
    exact for margins of ±1e4 (numerically stable).
    """
    raise NotImplementedError
'''

_IPO_STUB = '''\
def ipo_loss(logp_pol_chosen, logp_pol_rejected, logp_ref_chosen, logp_ref_rejected, beta=0.1):
    """Mean IPO loss (Azar et al. 2023), a 0-dim tensor.

    Inputs: four (B,) tensors of per-sequence log-probs, as for dpo_loss (policy chosen, policy
    rejected, reference chosen, reference rejected). The course, like TRL, feeds length-averaged
    log-probs (get_logps(..., average=True)); the paper uses summed ones. The formula is the same.
    Conventions: the margin is the policy's log-ratio to the reference on y_w minus the same on y_l,
    *unscaled* (β does not multiply it); β only sets the target the margin is pulled to, 1/(2β)
    (the paper's τ is this β). Return the mean over pairs.
    """
    raise NotImplementedError
'''

_CDPO_STUB = '''\
def conservative_dpo_loss(logp_pol_chosen, logp_pol_rejected, logp_ref_chosen, logp_ref_rejected, beta=0.1,
                          label_smoothing=0.1):
    """Mean conservative DPO (cDPO) loss (Mitchell 2023), a 0-dim tensor.

    Inputs: four (B,) tensors of *summed* per-sequence log-probs, as for dpo_loss, β, and
    label_smoothing = ε in [0, 0.5): the probability that a pair's label is flipped.
    Conventions: β scales the margin inside each log-sigmoid, as in DPO; the given order (y_w over
    y_l) is trusted with weight 1 − ε and the flipped order with weight ε. ε = 0 is plain DPO.
    Numerically stable for margins of ±1e4. Return the mean over pairs.
    """
    raise NotImplementedError
'''

_SIMPO_STUB = '''\
def simpo_loss(avg_logp_chosen, avg_logp_rejected, beta=2.0, gamma=0.5):
    """Mean SimPO loss (Meng, Xia, Chen 2024), a 0-dim tensor. No reference model.

    Inputs: two (B,) tensors of *length-averaged* log-probs of the chosen and rejected responses
    (get_logps(..., average=True)): the reward of a response is β times its average log-prob.
    Conventions: γ is the target margin between the two rewards, in the units of the β-scaled
    rewards: it is subtracted as it is, not multiplied by β. Numerically stable for large gaps.
    Return the mean over pairs.
    """
    raise NotImplementedError
'''

_ORPO_STUB = '''\
def orpo_odds_ratio_loss(avg_logp_chosen, avg_logp_rejected):
    """Mean odds-ratio term of ORPO (Hong, Lee, Thorne 2024), a 0-dim tensor. No reference model.

    Inputs: two (B,) tensors of *length-averaged* log-probs a = (1/|y|)·Σ_t log p(y_t | x, y_<t) ≤ 0,
    so p = exp(a) is the response's per-token (geometric-mean) probability.
    Conventions: odds(y) = p / (1 − p); the term contrasts the log-odds of y_w and y_l through a
    log-sigmoid (Bradley–Terry on log-odds). Only this term: ORPO's full loss is the SFT loss on y_w
    plus λ times it, added outside. p can be within 1e-6 of 1: compute log(1 − p) stably from a.
    Return the mean over pairs.
    """
    raise NotImplementedError
'''


# ------------------------------------------------------------------------------------------------
# the five variants

_DPO = Variant(
    key="dpo",
    title="DPO — Direct Preference Optimization",
    citation=Citation("Rafailov, Sharma, Mitchell, Ermon, Manning, Finn",
                      "Direct Preference Optimization: Your Language Model is Secretly a Reward Model",
                      "NeurIPS 2023", 2023, "2305.18290"),
    read=ReadBlock(
        problem="RLHF as usually run fits a reward model to human comparisons, then optimises the policy against "
                "it with an on-policy RL algorithm (PPO) under a KL penalty to the SFT model: two models to train, "
                "sampling from the policy during training, and an optimisation that is hard to tune.",
        idea="The KL-regularised reward maximisation has a closed-form optimum, π*(y|x) ∝ π_ref(y|x)·exp(r(x,y)/β). "
             "Read backwards, any reward is β·log(π/π_ref) plus a term of the prompt alone, β·log Z(x). "
             "Bradley–Terry only ever compares two responses to the same prompt, so Z(x) cancels, and fitting the "
             "preferences by maximum likelihood becomes a logistic loss on the policy itself: "
             "−log σ(β·[log-ratio on y_w − log-ratio on y_l]). The reference is frozen; the policy's log-ratio to "
             "it is the reward it implies.",
        evidence="Controlled sentiment generation on IMDb (GPT-2-large): DPO's reward-vs-KL frontier lies above "
                 "PPO's, even PPO given the true reward. TL;DR summarisation (GPT-J 6B): a GPT-4-judged win rate "
                 "against the reference summaries of about 61% at temperature 0, against about 57% for PPO, and "
                 "less sensitivity to the sampling temperature. Anthropic HH single-turn dialogue (Pythia-2.8B): "
                 "the only efficient method of the comparison to improve on the dataset's chosen responses. A "
                 "human study checked the GPT-4 judgements.",
        limitations="The largest model is about 6B parameters; larger scales are left to future work. It is "
                    "offline: it learns only from the fixed pairs, so their coverage limits it and nothing "
                    "explores. How a directly trained policy generalises out of distribution compared with one "
                    "trained on an explicit reward, and reward over-optimisation in this setting, are left open. "
                    "β has to be tuned per task.",
    ),
    explain_questions=(
        "In one paragraph: what does DPO remove from the RLHF pipeline, and why is that allowed?",
        "Where did the partition function Z(x) go?",
        "Why is the reference policy frozen, and what does β do?",
    ),
    rubric=(
        "Explained DPO as RLHF without a separate reward model and without RL/PPO: one classification-style loss "
        "on preference pairs",
        "Knew the loss is on log-prob differences relative to a frozen reference, not on raw log-probs",
        "Stated the implicit reward r(y) = β·log(π_θ(y|x)/π_ref(y|x)) and why ordering by it recovers the preferences",
        "Knew the reference policy is frozen, and why (it anchors the KL constraint)",
    ),
    red_flags=(
        RedFlag(r"\bppo\b|\brollouts?\b|\bvalue (function|head|network)\b|\badvantages?\b",
                "described a PPO / RL loop",
                "DPO has no RL loop: no rollouts, no value function, no advantages — one supervised loss on fixed pairs",
                "DPO runs PPO on the policy with a KL penalty."),
        RedFlag(r"\btrain(s|ed|ing)? (a |the )?(separate )?reward model\b|\bfit(s|ting)? a reward model\b",
                "described training a reward model",
                "no reward model is trained: the policy's log-ratio to the reference is the (implicit) reward",
                "DPO first trains a reward model on the pairs."),
        RedFlag(r"\bonline\b|\bon-policy\b|\bsampl(e|es|ing) from the (current )?policy\b",
                "claimed DPO needs online or on-policy sampling",
                "vanilla DPO is offline: it trains on a fixed dataset of (x, y_w, y_l) pairs",
                "DPO needs on-policy samples from the current policy."),
        RedFlag(r"\b(updat\w*|train\w*|fine-tun\w*) the reference\b|\breference (model |policy )?(is |gets )?(updated|trained)\b",
                "thought the reference is trained",
                "the reference stays frozen: it is the KL anchor, and a moving reference removes the regulariser",
                "The reference model is updated along with the policy."),
    ),
    stub=_DPO_STUB,
    exercise="dpo_loss",
    reference=losses.dpo_loss,
    params={"beta": 0.1},
    log_probs="summed",
    uses_reference=True,
    sanity=_plan(),
    init_loss=_dpo_init,
    init_condition="policy == reference (every log-ratio is 0)",
    debrief=(
        ("Your run reaches loss 0 and accuracy 1 within a few dozen steps. Good news?",
         "Not by itself: past β·m ≈ 5 the loss cannot tell a margin of 50 from one of 500. Look at the unscaled "
         "margin, the held-out margin and accuracy, the KL to the reference and samples (lesson 09)."),
        ("Why does ordering responses by β·log(π/π_ref) recover the preferences?",
         "It is the reward the trained policy is optimal for, up to β·log Z(x), which is the same for every response "
         "to one prompt; the loss fits Bradley–Terry on exactly those differences."),
        ("What breaks if β is too small or too large?",
         "Too small: the policy drifts far from the reference to separate the pairs (degenerate text). Too large: it "
         "barely moves and under-fits the preferences."),
    ),
    notes="The paper's convention: summed log-probs of whole responses.",
)

_IPO = Variant(
    key="ipo",
    title="IPO — Identity Preference Optimisation (ΨPO with Ψ = identity)",
    citation=Citation("Azar, Rowland, Piot, Guo, Calandriello, Valko, Munos",
                      "A General Theoretical Paradigm to Understand Learning from Human Preferences",
                      "AISTATS 2024", 2023, "2310.12036"),
    read=ReadBlock(
        problem="RLHF and DPO both replace pairwise preferences by pointwise rewards through Bradley–Terry. When "
                "preferences are deterministic or nearly so — and a finite dataset makes them look so, since a pair "
                "seen once with one label looks certain — the reward gap this implies is unbounded, and DPO's "
                "optimum sends π(y_l) to 0 whatever β is: the KL term stops regularising. RLHF is partly shielded "
                "because its fitted reward model underfits; DPO has no such buffer.",
        idea="A general objective, ΨPO: maximise the expected Ψ of the probability that the policy's response is "
             "preferred to one from a behaviour policy, minus τ·KL to the reference. With Ψ the logit function and "
             "Bradley–Terry preferences this is the RLHF (and DPO) objective. With Ψ the identity, which is bounded, "
             "the KL term keeps regularising. The paper turns that case into an offline loss on sampled pairs: a "
             "squared regression of the log-ratio margin onto the target 1/(2τ), so a pair stops pulling once its "
             "margin reaches the target (the course's β is the paper's τ).",
        evidence="Mostly theory: why DPO over-fits, the general objective, and the derivation of IPO's squared loss "
                 "with the same minimiser as the identity-Ψ objective. Experiments are small illustrative examples "
                 "with a handful of actions: there DPO drives the probability of some actions to 0 whatever τ is, "
                 "while IPO's solution moves smoothly with τ and stays near the reference for large τ. The paper has "
                 "no experiment on a language model.",
        limitations="No large-scale or language-model evidence in the paper. The target 1/(2τ) is in nats of the "
                    "log-ratio margin, so its meaning depends on whether log-probs are summed (the paper: whole "
                    "sequences) or averaged per token (TRL and this course). Like DPO it is offline on a fixed "
                    "dataset, and bounding the margin does not by itself bound the policy's drift (lesson 09's "
                    "study: IPO kept the margin small at the exploding learning rate, yet the policy was broken).",
    ),
    explain_questions=(
        "What goes wrong with DPO when preferences are (near-)deterministic, and why does a finite dataset make "
        "that common?",
        "What does IPO's loss regress, onto what target, and why does that keep the policy regularised?",
        "What changes in the target's meaning between summed and length-averaged log-probs?",
    ),
    rubric=(
        "Explained that with deterministic preferences DPO's optimum ignores β (π(y_l) → 0), so its KL "
        "regularisation vanishes",
        "Stated IPO's loss as a squared regression of the unscaled log-ratio margin onto 1/(2β)",
        "Knew IPO keeps the frozen reference and the offline pairs of DPO; only the loss on the margin changes",
        "Knew the loss at initialisation is (1/(2β))², not log 2, and that past the target a bigger margin "
        "raises the loss",
    ),
    red_flags=(
        RedFlag(r"\bipo('s)? (loss )?(is|uses|applies|minimi[sz]es) (a |the )?(log-?sigmoid|logistic|binary cross-entropy)",
                "described IPO's loss as a logistic loss",
                "IPO's loss is a squared error between the margin and a finite target, not a log-sigmoid",
                "IPO uses a log-sigmoid of the margin, like DPO."),
        RedFlag(r"\btarget\b[^.;]*?(?<![\w(])1\s*/\s*(β|beta|τ|tau)\b",
                "put the target margin at 1/β",
                "the target is 1/(2β) (the paper's 1/(2τ)): at β = 0.1, 5 nats, not 10",
                "The target margin is 1/β."),
        RedFlag(r"\bipo\b[^.;]*\b(maximi[sz]es|maximi[sz]ing) the margin\b|\bipo\b[^.;]*\bmargin\b[^.;]*\b(to|towards) infinity\b",
                "said IPO maximises the margin",
                "IPO pulls each margin to a finite target and pushes it back beyond it: that is how it keeps regularising",
                "IPO maximises the margin between chosen and rejected."),
    ),
    stub=_IPO_STUB,
    exercise="ipo_loss",
    reference=losses.ipo_loss,
    params={"beta": 0.1},
    log_probs="length-averaged",
    uses_reference=True,
    sanity=_plan(
        c1=(False, "replaced: with policy == reference the margin is 0 and the loss is the squared target, "
                   "(1/(2β))² — 25 at β = 0.1 — not log 2"),
        c4=(False, "replaced: the loss is smallest (0) at a margin of exactly 1/(2β) — 5 nats at β = 0.1; it falls "
                   "as the margin rises towards that target and rises again beyond it (DPO's 'a bigger margin always "
                   "lowers the loss' does not hold); swapping chosen and rejected raises it"),
    ),
    init_loss=_ipo_init,
    init_condition="policy == reference (every log-ratio is 0)",
    debrief=(
        ("Why can DPO over-fit a finite preference dataset even when the true preferences are noisy?",
         "A pair seen once, with one label, is a deterministic preference to the loss; the Bradley–Terry reward gap "
         "that fits it is infinite, so DPO keeps pushing π(y_l) down whatever β is. IPO's squared loss stops at a "
         "finite margin instead."),
        ("At β = 0.1 in the course's convention, what margin does IPO aim for, and in what units?",
         "1/(2β) = 5 nats per token, because the course averages log-probs per token as TRL does; with summed "
         "log-probs, the paper's convention, it would be 5 nats for the whole response."),
        ("What is IPO's loss at initialisation, and why is it not log 2?",
         "(1/(2β))², 25 at β = 0.1: the margin is 0 and the loss is the squared distance to the target; log 2 is "
         "the value of a log-sigmoid at 0, which IPO does not use."),
        ("Does bounding the margin stop the policy drifting from the reference?",
         "Not by itself: in lesson 09's study IPO kept the margin small at the exploding learning rate, yet the "
         "policy's KL passed 300 nats. Only a smaller step stopped the drift."),
    ),
    notes="Length-averaged log-probs, the course's and TRL's convention (lesson 09); the paper's are summed. The "
          "check feeds both: the formula does not depend on it.",
)

_CDPO = Variant(
    key="cdpo",
    title="cDPO — conservative DPO (DPO with noisy preference labels)",
    citation=Citation("Mitchell", "A note on DPO with noisy preferences & relationship to IPO",
                      "technical note", 2023, None,
                      note="no arXiv id: a short note the author published himself; the course knows of no arXiv "
                           "version"),
    read=ReadBlock(
        problem="Preference labels are noisy: annotators disagree and mislabel. DPO treats each label as certain, "
                "so on any pair it can separate it keeps pushing the margin up, fitting the noise.",
        idea="Assume each label is flipped with a known probability ε. The loss under that noise model is a "
             "cross-entropy against a soft label: 1 − ε times DPO's loss on the given order plus ε times DPO's "
             "loss on the flipped order. Its gradient vanishes at a finite margin, β·m = log((1 − ε)/ε), where "
             "the implied preference probability σ(β·m) equals 1 − ε; training stops pushing there. The note "
             "relates this to IPO: both give the margin a finite target instead of an infinite one.",
        evidence="A short derivation, not an empirical study: the loss, its gradient, and where the gradient "
                 "vanishes, compared with IPO's target.",
        limitations="ε has to be chosen, and the noise model is symmetric: every pair is assumed equally likely "
                    "to be flipped, however close its two responses are. A finite minimum bounds the margin of "
                    "each pair, not the policy's drift (in lesson 09's study conservative DPO did not stop the "
                    "margin passing 50 nats at the exploding learning rate). A note, not a peer-reviewed paper.",
    ),
    explain_questions=(
        "What noise model does cDPO assume, and how does it turn into the loss?",
        "Where is the loss's minimum as a function of the margin, and what does that do to training?",
        "How does cDPO relate to IPO: what do they share, and what differs?",
    ),
    rubric=(
        "Stated the noise model: each preference label flipped with probability ε",
        "Wrote the loss as the soft-label mix of DPO on the given and on the flipped order, with weights 1 − ε and ε",
        "Placed the minimum at β·m = log((1 − ε)/ε), a finite margin, and said ε = 0 is plain DPO",
        "Knew the loss at initialisation is still log 2, whatever ε",
    ),
    red_flags=(
        RedFlag(r"\b(discards?|filters? out|throws? away|deletes?|detects?|identif(y|ies)) (the )?(noisy|flipped|wrong|mislabell?ed) (pairs|labels|examples)\b",
                "said cDPO finds or removes the noisy pairs",
                "cDPO keeps every pair and trains each towards a soft label; it never learns which labels are wrong",
                "cDPO discards the noisy pairs."),
        RedFlag(r"\b(cdpo|conservative dpo)\b (is|equals|is the same as|is just) (the )?(robust dpo|rdpo)\b",
                "took cDPO for robust DPO",
                "robust DPO (Chowdhury et al. 2024) is another loss: it subtracts the flipped term and rescales by "
                "1/(1 − 2ε) to debias; cDPO is the soft-label cross-entropy",
                "cDPO is robust DPO under another name."),
        RedFlag(r"\b(cdpo|conservative dpo)\b[^.;]*\bmargin\b[^.;]*\b(to|towards) infinity\b",
                "said cDPO still pushes the margin to infinity",
                "with ε > 0 the loss has its minimum at a finite margin, β·m = log((1 − ε)/ε); beyond it the "
                "gradient pushes back",
                "cDPO still pushes the margin to infinity, only more slowly."),
        RedFlag(r"\b(ε|epsilon|label_smoothing|label smoothing)\b (is|sets|controls) (the )?(learning rate|temperature|kl|strength of the kl|β|beta)\b",
                "confused ε with β or a learning rate",
                "ε is the assumed probability that a label is flipped; β is still the KL strength",
                "ε controls the strength of the KL penalty."),
    ),
    stub=_CDPO_STUB,
    exercise="conservative_dpo_loss",
    reference=losses.conservative_dpo_loss,
    params={"beta": 0.1, "label_smoothing": 0.1},
    log_probs="summed",
    uses_reference=True,
    sanity=_plan(
        c4=(True, "a bigger margin lowers the loss up to its minimum at β·m = log((1 − ε)/ε) — a margin of about "
                  "22 nats at β = 0.1, ε = 0.1 — and raises it beyond; swapping chosen and rejected raises it"),
    ),
    init_loss=_cdpo_init,
    init_condition="policy == reference (every log-ratio is 0)",
    debrief=(
        ("Where does cDPO's loss have its minimum, and what does ε = 0 give?",
         "At β·m = log((1 − ε)/ε): about 2.2 at ε = 0.1, a margin of 22 nats at β = 0.1. With ε = 0 the minimum moves "
         "to infinity and the loss is plain DPO."),
        ("Why is the loss at initialisation still log 2?",
         "At a zero margin both log-sigmoids are log 2, and the weights 1 − ε and ε add up to 1."),
        ("How is cDPO different from robust DPO, which some libraries call label smoothing too?",
         "cDPO adds ε times the flipped-order loss to 1 − ε times the given-order loss. Robust DPO subtracts the "
         "flipped term and divides by 1 − 2ε, an unbiased estimate of the clean loss; the two have different "
         "gradients and minima."),
    ),
    notes="Summed log-probs, as DPO: cDPO changes only the label, not the log-probs.",
)

_SIMPO = Variant(
    key="simpo",
    title="SimPO — Simple Preference Optimization with a reference-free reward",
    citation=Citation("Meng, Xia, Chen", "SimPO: Simple Preference Optimization with a Reference-Free Reward",
                      "NeurIPS 2024", 2024, "2405.14734"),
    read=ReadBlock(
        problem="DPO's implicit reward is a log-ratio against a reference model, while what generation favours is, "
                "roughly, the policy's average log-likelihood of a response; the two can disagree, so a pair can end "
                "up with the right reward order and the wrong likelihood order. DPO also keeps a second model in "
                "memory and runs it on every batch.",
        idea="Make the reward the policy's length-averaged log-probability of the response, scaled by β: "
             "r(y) = (β/|y|)·log π(y|x). No reference model. Add a target margin γ to the Bradley–Terry objective, "
             "so that the chosen reward must beat the rejected one by γ: L = −log σ(r(y_w) − r(y_l) − γ).",
        evidence="Mistral-7B and Llama-3-8B in base (SFT, then preference training on UltraFeedback) and instruct "
                 "set-ups, and later Gemma-2-9B: SimPO beat DPO and its variants (IPO, KTO, ORPO, R-DPO, CPO among "
                 "them) on AlpacaEval 2 (by up to 6.4 points over DPO) and Arena-Hard (up to 7.5 points), without "
                 "much longer responses. Ablations: dropping the length normalisation, or setting γ = 0, hurt. "
                 "Training takes less memory and time than DPO, with no reference forward pass.",
        limitations="Nothing in the loss anchors the policy to the SFT model: no KL term and no reference, so the "
                    "drift is held back only by the learning rate and the length of training. β, γ and the learning "
                    "rate were tuned per set-up and matter. The evaluation is mostly LLM-judged chat benchmarks; the "
                    "paper itself notes drops on reasoning-heavy tasks such as GSM8K math after preference training, "
                    "and leaves a theoretical account of why it works open.",
    ),
    explain_questions=(
        "What is SimPO's reward, and why average over the response's tokens?",
        "What replaces the reference model, and what keeps the policy near its SFT start?",
        "What does γ do, and in which units is it?",
    ),
    rubric=(
        "Stated the reward as β times the length-averaged log-prob under the policy, with no reference model",
        "Explained the length normalisation: it matches how generation scores a response, and a sum would tie the "
        "reward to the length",
        "Placed γ as a target margin subtracted from the β-scaled reward difference inside the log-sigmoid",
        "Knew what is lost: no KL anchor to the SFT model, so the learning rate and training length hold the drift",
    ),
    red_flags=(
        RedFlag(r"\bsimpo\b[^.;]*\b(reference (model|policy)|π_ref|pi_ref|log-?ratio)\b",
                "gave SimPO a reference model",
                "SimPO's reward is the policy's own average log-prob: no reference model is loaded or compared against",
                "SimPO computes the log-ratio to the reference model."),
        RedFlag(r"\bsimpo\b[^.;]*\b(summed|sum of the|total) (token )?log-?probs?\b",
                "used summed log-probs for SimPO",
                "SimPO averages the log-prob over the response's tokens, as generation scores it; a sum makes the "
                "reward depend on the length",
                "SimPO's reward is the summed log-prob of the response."),
        RedFlag(r"\b(γ|gamma)\b (is|acts as|plays the role of) (a |an |the )?(kl|temperature|learning rate|regulari[sz]\w*)",
                "took γ for a KL weight or a temperature",
                "γ is a target margin: the chosen reward must beat the rejected one by γ. SimPO has no KL term",
                "Gamma is the KL coefficient of SimPO."),
    ),
    stub=_SIMPO_STUB,
    exercise="simpo_loss",
    reference=losses.simpo_loss,
    params={"beta": 2.0, "gamma": 0.5},
    log_probs="length-averaged",
    uses_reference=False,
    sanity=_plan(
        c1=(False, "replaced: there is no reference, so no 'policy == reference'; at a tie (equal average "
                   "log-probs, as at the toy's uniform start) the loss is −log σ(−γ) = log(1 + e^γ), about 0.974 "
                   "at γ = 0.5, and log 2 only when γ = 0"),
        c2=(False, "does not apply: the loss takes no reference log-probs, so there is nothing to freeze; watch "
                   "the policy's drift from its starting (SFT) model instead, since nothing in the loss bounds it"),
        c4=(True, "with the loss's own inputs: a bigger gap between the average log-probs lowers the loss, and "
                  "swapping chosen and rejected raises it"),
        c5=(True, "after training, SimPO's reward β·(average log-prob) ranks every prompt's responses as preferred "
                  "and the top response gained probability (the toy keeps a uniform reference, so its implicit "
                  "reward has the same order)"),
        c6=(False, "replaced: SimPO has no implicit reward against a reference; its reward β·(average log-prob) is "
                   "linear in β, and γ shifts the margin without changing the reward"),
    ),
    init_loss=_simpo_init,
    init_condition="a tie: chosen and rejected have equal average log-probs (the toy's uniform start)",
    debrief=(
        ("Why length-normalise the reward?",
         "Generation scores a response, roughly, by its average log-likelihood; training on the same quantity "
         "aligns the two, and keeps the reward from depending on the number of tokens."),
        ("What keeps a SimPO policy close to its SFT start?",
         "Nothing in the loss: there is no reference model and no KL term. Only the learning rate, the number of "
         "steps and starting from the SFT model hold the drift back."),
        ("What is the loss at a tie, and why is it more than log 2?",
         "−log σ(−γ) = log(1 + e^γ), about 0.974 at γ = 0.5: with a target margin, equal rewards are not good "
         "enough; the chosen reward must exceed the rejected one by γ."),
    ),
    notes="γ in the paper's units, the margin on the β-scaled rewards: −log σ(β·(ā_w − ā_l) − γ). Code that "
          "subtracts γ/β inside β·(ā_w − ā_l − γ/β) computes the same loss; subtracting γ there without dividing "
          "scales the margin by β (a registered mistake of the check).",
)

_ORPO = Variant(
    key="orpo",
    title="ORPO — Monolithic preference optimisation without a reference model (the odds-ratio term)",
    citation=Citation("Hong, Lee, Thorne", "ORPO: Monolithic Preference Optimization without Reference Model",
                      "EMNLP 2024", 2024, "2403.07691"),
    read=ReadBlock(
        problem="The usual pipeline runs SFT and then a separate preference stage (RLHF or DPO) against a frozen "
                "reference. The paper observes that SFT on the chosen responses raises the likelihood of the "
                "rejected style too: cross-entropy on y_w alone has nothing that pushes the disfavoured responses "
                "down.",
        idea="One stage from the base model, no reference: add to the SFT loss on y_w a mild penalty contrasting "
             "the odds of the chosen and the rejected response. With P(y|x) the length-normalised likelihood "
             "exp((1/|y|)·Σ log p) and odds(y) = P/(1 − P): L = L_SFT + λ·L_OR, with "
             "L_OR = −log σ(log(odds(y_w)/odds(y_l))). The paper argues that the odds ratio contrasts the two more "
             "gently than the probability ratio, which combined with SFT would suppress the rejected response too "
             "hard.",
        evidence="Models from 125M to 7B parameters. Phi-2 (2.7B), Llama-2 (7B) and Mistral (7B) trained with ORPO "
                 "on UltraFeedback alone, straight from the base model, reach up to 12.20% on AlpacaEval 2.0, "
                 "66.19% on IFEval (instruction-level, loose) and 7.32 on MT-Bench, above several larger "
                 "instruction-tuned models. At smaller scales (OPT models) ORPO is compared with SFT, SFT + PPO and "
                 "SFT + DPO by reward-model win rates.",
        limitations="λ weighs the odds-ratio term against SFT and has to be tuned. With no reference there is no "
                    "KL anchor: the NLL term on y_w is the only thing holding the model to the data. The comparisons "
                    "stop at 7B models and a few preference methods; broader comparisons and larger scales are left "
                    "for future work.",
    ),
    explain_questions=(
        "Why does the paper say SFT alone is not enough, and what does the odds-ratio term add?",
        "Why odds and not probabilities?",
        "What does ORPO not need that DPO needs, and what does that cost?",
    ),
    rubric=(
        "Stated ORPO's loss as the SFT loss on y_w plus λ times the odds-ratio term, in one stage and with no "
        "reference model",
        "Defined odds(y) = P/(1 − P) with P the per-token (length-normalised) likelihood",
        "Explained why odds rather than probabilities: a milder contrast that does not crush the rejected response "
        "alongside SFT",
        "Computed log(1 − P) stably (log(−expm1(a))), since P can be very close to 1",
    ),
    red_flags=(
        RedFlag(r"\borpo\b[^.;]*\b(reference (model|policy)|π_ref|pi_ref)\b",
                "gave ORPO a reference model",
                "ORPO has no reference model: the odds are the policy's own, and the SFT term is the only anchor",
                "ORPO divides the policy's odds by the reference model's odds."),
        RedFlag(r"\bodds( ratio)?\b[^.;]*\b(is|are|means|equals?) (just |simply )?(the |a )?(probability|likelihood) ratio\b",
                "took the odds ratio for the probability ratio",
                "odds(y) = P/(1 − P): the odds ratio differs from the probability ratio, most when P is near 1, "
                "and the paper chose odds for a milder contrast",
                "The odds ratio is just the probability ratio of chosen over rejected."),
        RedFlag(r"\b(separate|prior|first|preceding) (an? )?(sft|supervised fine-tuning) (stage|phase|step|run)\b",
                "said ORPO needs a separate SFT stage first",
                "ORPO is monolithic: its NLL term on y_w is the SFT, trained in the same loss, from the base model",
                "ORPO runs after a separate SFT stage."),
    ),
    stub=_ORPO_STUB,
    exercise="orpo_odds_ratio_loss",
    reference=losses.orpo_odds_ratio_loss,
    params={},
    log_probs="length-averaged",
    uses_reference=False,
    sanity=_plan(
        c1=(False, "replaced: there is no reference, so no 'policy == reference'; at a tie (equal average "
                   "log-probs, equal odds) the odds-ratio term is log 2; ORPO's full loss adds the SFT loss on y_w"),
        c2=(False, "does not apply: the loss takes no reference log-probs, so there is nothing to freeze; the NLL "
                   "term on y_w is ORPO's only anchor"),
        c4=(True, "with the loss's own inputs: a bigger log-odds gap lowers the loss, and swapping chosen and "
                  "rejected raises it"),
        c5=(True, "after training, the log-odds (increasing in the probability, so the same order) ranks every "
                  "prompt's responses as preferred and the top response gained probability (the toy keeps a "
                  "uniform reference, so its implicit reward has the same order)"),
        c6=(False, "replaced: ORPO has no β; check instead that the log-odds stays finite and accurate as the "
                   "average log-prob approaches 0 (P → 1), where 1 − exp(a) loses every digit"),
    ),
    init_loss=_orpo_init,
    init_condition="a tie: chosen and rejected have equal average log-probs, so equal odds (the toy's uniform start)",
    debrief=(
        ("Why compute log(1 − P) as log(−expm1(a)) rather than log(1 − exp(a))?",
         "When the average log-prob a is within a few 1e-8 of 0, exp(a) rounds to 1 in float32 and 1 − exp(a) to "
         "0: the log-odds becomes infinite. expm1 keeps the digits of e^a − 1 for small a."),
        ("What does the odds-ratio term do that the SFT loss cannot?",
         "It pushes the rejected response's odds down relative to the chosen one's; cross-entropy on y_w alone "
         "raises similar responses, rejected ones included."),
        ("Why length-averaged log-probs here?",
         "The odds are of the per-token (geometric-mean) probability: a summed log-prob of a long response is "
         "very negative, its probability near 0 and its odds then equal the probability, so the odds would add "
         "nothing to a probability ratio."),
    ),
    notes="The exercise is the odds-ratio term only (its reference is rlhf_core.losses.orpo_odds_ratio_loss); the "
          "SFT term and λ sit outside, as in the library. The toy trains on this term alone.",
)

#: The drill's variants, by key: "dpo" first (the default), then in the order of the module's table.
VARIANTS: dict[str, Variant] = {v.key: v for v in (_DPO, _IPO, _CDPO, _SIMPO, _ORPO)}


def pick_variant(seed: int, exclude: str | None = None) -> str:
    """The variant ``variant="random"`` stands for: a key of :data:`VARIANTS` other than ``exclude`` (the previous
    attempt's), drawn deterministically from ``seed`` (the same seed and ``exclude`` give the same variant on every
    machine and Python version)."""
    keys = [key for key in VARIANTS if key != exclude]
    return keys[random.Random(int(seed)).randrange(len(keys))]


def get_variant(variant: str | Variant = "dpo", seed: int = 0) -> Variant:
    """A :class:`Variant` from its key, from ``"random"`` (:func:`pick_variant` of ``seed``), or itself."""
    if isinstance(variant, Variant):
        return variant
    key = pick_variant(seed) if variant == "random" else variant
    if key not in VARIANTS:
        raise ValueError(f"unknown drill variant {variant!r}; expected one of {sorted(VARIANTS)} or 'random'")
    return VARIANTS[key]


# ------------------------------------------------------------------------------------------------
# the toy task with a variant's loss


def toy_loss_fn(variant: str | Variant, fn: Callable[..., Tensor] | None = None) -> Callable[..., Tensor]:
    """The variant's loss — its reference, or ``fn`` (a learner's function with the exercise's signature) —
    behind ``dpo_loss``'s signature ``(pc, pr, rc, rr, beta=…)``, with its :attr:`Variant.params`: what
    :func:`rlhf_core.toy.run_toy_task` takes as ``loss_fn``, and what the standard sanity checks can call.

    A reference-free loss ignores the reference log-probs; ORPO, which has no β, ignores ``beta`` too.
    The toy's responses are single tokens, so the summed log-prob it passes is also the average one.
    """
    v = get_variant(variant)
    params = dict(v.params)
    beta0 = params.pop("beta", TOY_READOUT_BETA)
    reference = v.reference if fn is None else fn
    if v.uses_reference:
        def loss(pc: Tensor, pr: Tensor, rc: Tensor, rr: Tensor, beta: float = beta0) -> Tensor:
            return reference(pc, pr, rc, rr, beta=beta, **params)
    elif "beta" in v.params:
        def loss(pc: Tensor, pr: Tensor, rc: Tensor, rr: Tensor, beta: float = beta0) -> Tensor:
            return reference(pc, pr, beta=beta, **params)
    else:
        def loss(pc: Tensor, pr: Tensor, rc: Tensor, rr: Tensor, beta: float = beta0) -> Tensor:
            return reference(pc, pr, **params)
    loss.__name__ = getattr(fn, "__name__", v.exercise) if fn is not None else f"{v.exercise}_on_the_toy"
    return loss


def train_toy_with(variant: str | Variant, seed: int = 0, steps: int = 400) -> dict:
    """Train the toy categorical policy (:func:`rlhf_core.toy.run_toy_task`: 2 prompts × 6 responses, all
    pairs of two known rankings, Adam, a frozen uniform reference) with the variant's reference loss.

    Returns ``run_toy_task``'s dict — ``before``, ``after``, ``rewards`` (the implicit reward
    β·log(π/π_ref), with the variant's β, or :data:`TOY_READOUT_BETA` for ORPO), ``rankings``, ``ref``,
    ``policy``, ``losses`` — which sanity checks 2 and 5 read as they are, plus ``variant`` (the key) and
    ``loss_params``. For a reference-free variant the frozen uniform reference only serves that readout:
    against a uniform reference, β·log(π/π_ref) has the order of SimPO's reward and of ORPO's log-odds.
    """
    v = get_variant(variant)
    beta = v.params.get("beta", TOY_READOUT_BETA)
    result = run_toy_task(seed=seed, beta=beta, steps=steps, loss_fn=toy_loss_fn(v))
    result["variant"] = v.key
    result["loss_params"] = dict(v.params)
    return result


# ------------------------------------------------------------------------------------------------
# red flags in a written explanation

_NEGATED = re.compile(r"\b(no|not|never|without|nor|neither|instead of|rather than|no longer|free of|"
                      r"replac\w*|remov\w*|drop\w*|eliminat\w*|avoid\w*|skip\w*)\b|n't\b")


def find_red_flags(variant: str | Variant, explanation: str) -> list[tuple[str, str]]:
    """``[(red flag, what is true instead)]`` of the variant found in a written explanation, in the variant's
    order, each once. A sentence is matched lower-cased; a match is dropped where a negation ("no", "not",
    "without", "removes", …) stands in it or in the 40 characters before it ("SimPO needs no reference model")."""
    v = get_variant(variant)
    found: list[tuple[str, str]] = []
    sentences = re.split(r"(?<=[.!?;])\s+|\n+", explanation or "")
    for flag in v.red_flags:
        for sentence in sentences:
            lowered = sentence.lower()
            hit = next((m for m in re.finditer(flag.pattern, lowered)
                        if not _NEGATED.search(lowered[max(0, m.start() - 40):m.end()])), None)
            if hit is not None:
                found.append((flag.flag, flag.why))
                break
    return found
