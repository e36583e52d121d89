"""The drill's reference-free papers: SimPO and ORPO, whose losses read the policy's own log-probs only.

Each is a :class:`~rlhf_core.course.variant_types.Variant` record: its Read block, questions, rubric, red flags,
stub, sanity plan, loss at initialisation and debrief. :mod:`rlhf_core.course.variants` collects them.
"""

from __future__ import annotations

import math

from .. import losses
from .red_flags import RedFlag
from .variant_types import Citation, ReadBlock, Variant, sanity_plan

__all__ = ["SIMPO", "ORPO"]


# the losses at initialisation


def _simpo_init(beta: float = 2.0, gamma: float = 0.5, **_: float) -> float:
    return math.log1p(math.exp(gamma))   # −log σ(−γ) at a tie; log 2 only when γ = 0


def _orpo_init(**_: float) -> float:
    return math.log(2.0)   # equal odds: the log-odds gap is 0



# the stubs (what the learner fills in)

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



SIMPO = Variant(
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
    sanity=sanity_plan(
        c1=(False, "replaced: there is no reference, so no 'policy == reference'; at a tie (equal average "
                   "log-probs, as at the toy's uniform start) the loss is −log σ(−γ) = log(1 + e^γ), about 0.974 "
                   "at γ = 0.5, and log 2 only when γ = 0", "init_loss"),
        c2=(False, "does not apply: the loss takes no reference log-probs, so there is nothing to freeze; watch "
                   "the policy's drift from its starting (SFT) model instead, since nothing in the loss bounds it", "none"),
        c4=(True, "with the loss's own inputs: a bigger gap between the average log-probs lowers the loss, and "
                  "swapping chosen and rejected raises it", "margin"),
        c5=(True, "after training, SimPO's reward β·(average log-prob) ranks every prompt's responses as preferred "
                  "and the top response gained probability (the toy keeps a uniform reference, so its implicit "
                  "reward has the same order)"),
        c6=(False, "replaced: SimPO has no implicit reward against a reference; its reward β·(average log-prob) is "
                   "linear in β, and γ shifts the margin without changing the reward",
            "reward_linear_in_beta"),
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
    names=("simpo", "simple preference optimi[sz]ation"),
)

ORPO = Variant(
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
    sanity=sanity_plan(
        c1=(False, "replaced: there is no reference, so no 'policy == reference'; at a tie (equal average "
                   "log-probs, equal odds) the odds-ratio term is log 2; ORPO's full loss adds the SFT loss on y_w",
            "init_loss"),
        c2=(False, "does not apply: the loss takes no reference log-probs, so there is nothing to freeze; the NLL "
                   "term on y_w is ORPO's only anchor", "none"),
        c4=(True, "with the loss's own inputs: a bigger log-odds gap lowers the loss, and swapping chosen and "
                  "rejected raises it", "margin"),
        c5=(True, "after training, the log-odds (increasing in the probability, so the same order) ranks every "
                  "prompt's responses as preferred and the top response gained probability (the toy keeps a "
                  "uniform reference, so its implicit reward has the same order)"),
        c6=(False, "replaced: ORPO has no β; check instead that the log-odds stays finite and accurate as the "
                   "average log-prob approaches 0 (P → 1), where 1 − exp(a) loses every digit",
            "log_odds_near_one"),
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
    names=("orpo", "odds ratio preference optimi[sz]ation"),
)
