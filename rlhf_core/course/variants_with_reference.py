"""The drill's reference-based papers: DPO, and two successors that keep its frozen reference — IPO and cDPO.

Each is a :class:`~rlhf_core.course.variant_types.Variant` record: its Read block, questions, rubric, red flags,
stub, sanity plan, loss at initialisation and debrief. :mod:`rlhf_core.course.variants` collects them.
"""

from __future__ import annotations

import math

from .. import losses
from .red_flags import RedFlag
from .variant_types import Citation, ReadBlock, Variant, sanity_plan

__all__ = ["DPO", "IPO", "CDPO"]


# the losses at initialisation, and where each is smallest


def _dpo_init(beta: float = 0.1, **_: float) -> float:
    return math.log(2.0)


def _ipo_init(beta: float = 0.1, **_: float) -> float:
    return (1.0 / (2.0 * beta)) ** 2


def _cdpo_init(beta: float = 0.1, label_smoothing: float = 0.1, **_: float) -> float:
    return math.log(2.0)   # both terms are log 2 at a zero margin: (1 − ε)·log 2 + ε·log 2


def _ipo_best_margin(beta: float = 0.1, **_: float) -> float:
    return 1.0 / (2.0 * beta)


def _cdpo_best_margin(beta: float = 0.1, label_smoothing: float = 0.1, **_: float) -> float:
    return math.log((1.0 - label_smoothing) / label_smoothing) / beta


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


DPO = Variant(
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
        RedFlag(r"\bppo\b|\brollouts?\b|\bvalue (function|head|network|model)\b|\badvantages?( estimates?)?\b|"
                r"\bclipp(ed|ing) (ratio|objective)\b|\brl (loop|algorithm|stage|step|phase|update)s?\b|"
                r"\b(uses?|runs?|needs?|requires?|with|via|through|by) reinforcement learning\b",
                "described a PPO / RL loop",
                "DPO has no RL loop: no rollouts, no value function, no advantages — one supervised loss on fixed pairs",
                "DPO runs PPO on the policy with a KL penalty."),
        RedFlag(r"\b(train|fitt?|learn)(s|ed|ing)? (a |the |an )?(separate |explicit |learned )?reward model\b|"
                r"\breward model (is |gets )?(first )?(trained|fitted|learned|learnt)\b",
                "described training a reward model",
                "no reward model is trained: the policy's log-ratio to the reference is the (implicit) reward",
                "DPO first trains a reward model on the pairs."),
        RedFlag(r"\bonline\b|\bon-policy\b|"
                r"\b(sampl|generat|draw)(e|es|ed|ing|s) (new )?(\w+ )?from the (current |trained )?policy\b",
                "claimed DPO needs online or on-policy sampling",
                "vanilla DPO is offline: it trains on a fixed dataset of (x, y_w, y_l) pairs",
                "DPO needs on-policy samples from the current policy."),
        RedFlag(r"\b(updat\w*|train\w*|fine-tun\w*) the reference\b|"
                r"\breference (model |policy )?(is |are |gets |get )?(also )?(updated|trained|fine-tuned)\b",
                "thought the reference is trained",
                "within a round of DPO the reference stays frozen: it is the KL anchor, and a reference that moves with "
                "the policy removes the regulariser (iterative DPO refreshes it between rounds, each round frozen)",
                "The reference model is updated along with the policy."),
    ),
    stub=_DPO_STUB,
    exercise="dpo_loss",
    reference=losses.dpo_loss,
    params={"beta": 0.1},
    log_probs="summed",
    uses_reference=True,
    sanity=sanity_plan(),
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
    names=("dpo", "direct preference optimi[sz]ation"),
    toy_step="toy_dpo_step",        # the DPO drill trains the toy with the learner's own step
    own_checks=("toy_dpo_step", "six sanity checks"),
)

IPO = Variant(
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
    sanity=sanity_plan(
        c1=(False, "replaced: with policy == reference the margin is 0 and the loss is the squared target, "
                   "(1/(2β))² — 25 at β = 0.1 — not log 2", "init_loss"),
        c4=(False, "replaced: the loss is smallest (0) at a margin of exactly 1/(2β) — 5 nats at β = 0.1; it falls "
                   "as the margin rises towards that target and rises again beyond it (DPO's 'a bigger margin always "
                   "lowers the loss' does not hold); swapping chosen and rejected raises it", "margin"),
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
    names=("ipo", "identity preference optimi[sz]ation"),
    best_margin=_ipo_best_margin,
)

CDPO = Variant(
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
    sanity=sanity_plan(
        c4=(True, "a bigger margin lowers the loss up to its minimum at β·m = log((1 − ε)/ε) — a margin of about "
                  "22 nats at β = 0.1, ε = 0.1 — and raises it beyond; swapping chosen and rejected raises it", "margin"),
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
    names=("cdpo", "conservative dpo", "c-dpo"),
    best_margin=_cdpo_best_margin,
)

