"""The drill's one red-flag scanner (rlhf_core.course.red_flags), judged on a corpus of explanations.

The corpus below holds 125 explanations across the five variants: 83 that a strong candidate could give (correct,
and most of them naming PPO, RL, a reward model, online sampling or a reference model by contrast: "Unlike RLHF with
PPO, DPO needs no reward model") and 42 with real red flags (46 flags in all). A flag counts per (explanation, flag):
a true positive is an expected flag raised, a false positive a flag raised that the explanation does not deserve, a
false negative an expected flag missed.

Measured on this corpus: precision 1.00 (46 of 46 flags raised are real) and recall 1.00 (46 of 46 real flags
raised); no correct explanation is flagged. ``test_the_corpus_is_judged_as_labelled`` prints both figures and fails
as soon as either drops below 1.0 — a false red flag is worse than a missed one, so precision is held first.

The scanner was written against the first 64 explanations. The next two batches were written afterwards and run
before the scanner was changed for them, which is the fairer figure for sentences it has not seen (counted per
explanation): of 39 (29 correct, 10 wrong), 5 correct ones were flagged (7 false flags) and 9 of the 10 wrong ones
were; after the fixes, of 22 more (14 correct, 8 wrong), 1 correct one was flagged and 7 of the 8 wrong ones were.
Every miss and false flag was then fixed and the sentences joined the corpus.
"""

from __future__ import annotations

import copy
import pickle

import pytest

from rlhf_core.course.drill import Drill, red_flags_in
from rlhf_core.course.red_flags import RaisedFlag, split_sentences
from rlhf_core.course.variants import VARIANTS, find_red_flags, get_variant

PPO = "described a PPO / RL loop"
RM = "described training a reward model"
ONLINE = "claimed DPO needs online or on-policy sampling"
REF = "thought the reference is trained"

# (variant, explanation) of a strong candidate: no flag may be raised
CORRECT: list[tuple[str, str]] = [
    ("dpo", "DPO optimises the same objective as RLHF with PPO, but without training a separate reward model and "
            "without an RL loop."),
    ("dpo", "Unlike RLHF with PPO, DPO needs no reward model."),
    ("dpo", "DPO does not need PPO."),
    ("dpo", "Standard RLHF trains a reward model, then runs PPO against it. DPO skips both stages."),
    ("dpo", "Instead of fitting a reward model and running PPO, DPO fits the policy directly to the preference pairs."),
    ("dpo", "DPO replaces the reward model and the PPO loop with a single classification loss on the pairs."),
    ("dpo", "Where RLHF would sample rollouts from the policy and estimate advantages with a value function, DPO "
            "trains on a fixed offline dataset."),
    ("dpo", "PPO needs a value head and rollouts; DPO needs neither."),
    ("dpo", "In RLHF, a reward model is trained first and the policy is then optimised with PPO; DPO collapses these "
            "two stages into one loss."),
    ("dpo", "Compared with PPO, DPO is simpler: no rollouts, no value network, no advantage estimates."),
    ("dpo", "DPO is offline: it never samples from the policy during training."),
    ("dpo", "DPO does not need on-policy samples or a value function."),
    ("dpo", "The policy is trained directly on preference pairs rather than against a learned reward model with PPO."),
    ("dpo", "DPO is RLHF without the RL: the KL-constrained objective is the same, the PPO stage is gone."),
    ("dpo", "The PPO step of RLHF is replaced by a closed-form reparameterisation of the reward."),
    ("dpo", "Whereas PPO must sample from the current policy, DPO only needs a fixed set of pairs."),
    ("dpo", "DPO avoids the instability of PPO and the cost of sampling from the policy during training."),
    ("dpo", "Classic RLHF (InstructGPT) trains a reward model and then runs PPO against it. DPO keeps the objective "
            "and drops both the reward model and the RL stage."),
    ("dpo", "RLHF first trains a reward model on the comparisons. It then runs PPO against that model, with a KL "
            "penalty. DPO gets the same optimum with one supervised loss."),
    ("dpo", "DPO is cheaper than training a reward model and running PPO, because the policy is its own reward model."),
    ("dpo", "The reference model is frozen: if we updated the reference along with the policy, every log-ratio "
            "difference would be zero."),
    ("dpo", "DPO does not need PPO, rollouts, or a value function; it is a supervised loss on fixed pairs."),
    ("dpo", "No reward model is trained, no PPO loop is run, and nothing is sampled from the policy while training."),
    ("dpo", "DPO is PPO-free and RL-free: the language model is secretly a reward model."),
    ("dpo", "Unlike PPO, which samples rollouts and needs a value network, DPO learns from a static dataset."),
    ("dpo", "DPO is offline rather than online: the pairs are collected once, before training."),
    ("dpo", "RLHF fits a separate reward model to human preferences and then optimises the policy with reinforcement "
            "learning under a KL penalty. DPO solves the same problem in closed form."),
    ("dpo", "Where standard RLHF uses an RL algorithm (PPO) with on-policy sampling, DPO minimises a logistic loss "
            "on log-ratios to a frozen reference."),
    ("dpo", "DPO keeps the reference frozen and never trains the reference; only the policy moves."),
    # the lesson's model answer, as the notebook wraps it
    ("dpo", "DPO gets what RLHF is after with one supervised loss. RLHF first fine-tunes a model (SFT), then fits\n"
            "a separate reward model to human preference pairs, then optimises the policy against that reward with\n"
            "reinforcement learning and a KL penalty to the SFT model.\n\n"
            "What DPO buys: no reward model to train, no RL loop and no value function, no sampling from the\n"
            "policy while training. It trains offline on a fixed data set of (prompt, chosen, rejected) triples,\n"
            "with one model being trained and one frozen."),
    ("ipo", "Unlike DPO, which uses a log-sigmoid of the margin, IPO regresses the unscaled margin onto 1/(2β)."),
    ("ipo", "IPO does not maximise the margin: it pulls it to a finite target of 1/(2β), 5 nats at β = 0.1."),
    ("ipo", "The target is not 1/β but 1/(2β), the paper's 1/(2τ)."),
    ("cdpo", "cDPO keeps every pair instead of discarding the noisy pairs; each is trained towards a soft label."),
    ("cdpo", "Unlike robust DPO, cDPO does not rescale by 1/(1 − 2ε); it is the soft-label cross-entropy."),
    ("cdpo", "DPO pushes the margin to infinity on any pair it can separate; cDPO stops at β·m = log((1 − ε)/ε)."),
    ("simpo", "SimPO needs no reference model: the reward is the policy's own length-averaged log-prob."),
    ("simpo", "SimPO, unlike DPO with its reference model, scores a response by its average log-prob, not the summed "
              "log-probs."),
    ("simpo", "Gamma is not a KL weight: SimPO has no KL term, and γ is a target margin."),
    ("orpo", "ORPO drops the reference model and the separate SFT stage: the NLL term on y_w is the SFT, in one loss."),
    ("dpo", "DPO removes the need for a reward model and for PPO."),
    ("dpo", "There is no reinforcement learning in DPO: the loss is a binary cross-entropy on pairs."),
    ("dpo", "The key insight is that we do not need to train a reward model at all."),
    ("dpo", "Rather than sampling from the policy, DPO uses a fixed dataset of preferences."),
    ("dpo", "DPO sidesteps the RL step entirely."),
    ("dpo", "RLHF is expensive because PPO needs four models in memory: policy, reference, reward model and value "
            "model."),
    ("dpo", "In PPO-based RLHF the policy generates rollouts that the reward model scores."),
    ("dpo", "With DPO there is no need to sample from the policy during training."),
    ("dpo", "DPO never trains a reward model; the reward is implicit in the policy."),
    ("dpo", "DPO is an offline algorithm, so unlike PPO it does not explore."),
    ("dpo", "The reward model of RLHF becomes the policy's log-ratio in DPO."),
    ("dpo", "DPO doesn't use rollouts or a critic."),
    ("dpo", "Compared to RLHF, which fits a reward model and then runs PPO, DPO is one stage."),
    ("dpo", "The reference model stays frozen; only the policy is updated."),
    ("dpo", "Normally you would train a reward model and then run PPO; DPO skips that."),
    ("dpo", "Because the partition function cancels, there is no need to fit a reward model."),
    ("dpo", "PPO is replaced by a simple classification loss."),
    ("dpo", "DPO achieves what RLHF does with PPO, but in one supervised step."),
    ("dpo", "It is equivalent to RLHF with a KL penalty, just without PPO."),
    ("dpo", "DPO is not an RL method: no rollouts, no value function, no advantages."),
    ("dpo", "The policy is never sampled from during DPO training; all pairs are collected beforehand."),
    ("dpo", "The two-stage RLHF pipeline trains a reward model and runs PPO; DPO merges them."),
    ("dpo", "Online methods like PPO sample from the current policy, while DPO works offline."),
    ("dpo", "DPO trains on offline preference data without any reward model or RL."),
    ("dpo", "The SFT model serves as the reference and is kept frozen throughout."),
    ("dpo", "A reward model is not needed: the policy itself defines the reward."),
    ("dpo", "Training a reward model is unnecessary in DPO."),
    ("dpo", "DPO is simpler and more stable than PPO, and it needs no reward model."),
    ("dpo", "The RL step in RLHF, usually PPO, is where most of the instability comes from; DPO removes "
            "it."),
    ("dpo", "Instead of learning a reward function and then doing RL, DPO directly optimises the policy."),
    ("dpo", "DPO shows that the RLHF objective can be optimised exactly without reinforcement learning."),
    ("dpo", "No separate reward model, no sampling during training, no PPO hyper-parameters to tune."),
    ("dpo", "PPO requires generating completions from the policy, which is slow; DPO does not."),
    ("dpo", "The original RLHF recipe, from InstructGPT, fits a reward model with a Bradley-Terry loss and then "
            "uses PPO."),
    ("dpo", "DPO does away with the reward model by expressing the reward through the policy."),
    ("dpo", "In DPO the reference model is frozen and is never trained."),
    ("dpo", "The main difference from RLHF is that DPO does not need a value network or rollouts."),
    ("dpo", "Both RLHF and DPO optimise the same KL-regularised objective, but only RLHF trains an explicit reward "
            "model."),
    ("dpo", "DPO learns from a static dataset; it does not need on-policy data."),
    ("simpo", "Unlike DPO, SimPO has no reference model and needs less memory."),
    ("ipo", "DPO's logistic loss lets the margin grow without bound; IPO's squared loss does not."),
    ("orpo", "ORPO needs no reference model and no separate SFT stage."),
    ("cdpo", "cDPO does not discard the noisy pairs; it down-weights their certainty."),
]

# (variant, explanation, the flags it must raise)
WRONG: list[tuple[str, str, set[str]]] = [
    ("dpo", "DPO runs PPO on the policy with a KL penalty.", {PPO}),
    ("dpo", "DPO first trains a reward model on the pairs.", {RM}),
    ("dpo", "DPO needs on-policy samples from the current policy.", {ONLINE}),
    ("dpo", "The reference model is updated along with the policy.", {REF}),
    ("dpo", "We run PPO with rollouts and a value head.", {PPO}),
    ("dpo", "First we train a reward model on the pairs, then optimise.", {RM}),
    ("dpo", "DPO samples from the policy during training.", {ONLINE}),
    ("dpo", "DPO, like RLHF, trains a reward model first.", {RM}),
    ("dpo", "Like RLHF, DPO trains a reward model and then fine-tunes the policy with PPO.", {RM, PPO}),
    ("dpo", "Unlike SFT, DPO uses PPO to optimise the policy.", {PPO}),
    ("dpo", "Without any reward model, DPO still needs rollouts from the current policy.", {PPO}),
    ("dpo", "DPO needs no value function but it still runs PPO updates.", {PPO}),
    ("dpo", "DPO has no separate critic and runs PPO on the pairs.", {PPO}),
    ("dpo", "DPO is trained online, sampling new responses from the policy at every step.", {ONLINE}),
    ("dpo", "The reward model is trained first, then DPO optimises the policy against it.", {RM}),
    ("dpo", "RLHF is hard to tune. DPO fits a reward model to the pairs and then runs PPO with it.", {RM, PPO}),
    ("dpo", "The reference model is fine-tuned together with the policy so that the KL stays small.", {REF}),
    ("ipo", "IPO uses a log-sigmoid of the margin, like DPO.", {"described IPO's loss as a logistic loss"}),
    ("ipo", "Unlike DPO, IPO maximises the margin between chosen and rejected.", {"said IPO maximises the margin"}),
    ("cdpo", "cDPO discards the noisy pairs before training.", {"said cDPO finds or removes the noisy pairs"}),
    ("cdpo", "ε controls the strength of the KL penalty in cDPO.", {"confused ε with β or a learning rate"}),
    ("simpo", "Like DPO, SimPO computes the log-ratio to the reference model.", {"gave SimPO a reference model"}),
    ("simpo", "Gamma is the KL coefficient of SimPO.", {"took γ for a KL weight or a temperature"}),
    ("orpo", "Unlike SimPO, ORPO divides the policy's odds by the reference model's odds.",
     {"gave ORPO a reference model"}),
    ("dpo", "DPO uses reinforcement learning to optimise the policy.", {PPO}),
    ("dpo", "DPO trains a reward model and uses it to score the pairs.", {RM}),
    ("dpo", "After the SFT stage, DPO fits a reward model on the preference data.", {RM}),
    ("dpo", "DPO generates rollouts from the current policy and scores them.", {PPO, ONLINE}),
    ("dpo", "It uses PPO but without the KL penalty.", {PPO}),
    ("dpo", "DPO optimises the policy with PPO against an implicit reward.", {PPO}),
    ("dpo", "The reference model is trained jointly with the policy.", {REF}),
    ("dpo", "Both the policy and the reference are updated during training.", {REF}),
    ("dpo", "DPO is an online algorithm.", {ONLINE}),
    ("dpo", "The model samples from the policy to build new pairs at each step.", {ONLINE}),
    ("dpo", "DPO replaces the SFT stage with PPO on preference pairs.", {PPO}),
    ("dpo", "DPO trains a separate reward model, but a smaller one.", {RM}),
    ("dpo", "In DPO, rollouts are sampled from the current policy at each step.", {PPO, ONLINE}),
    ("dpo", "DPO keeps the reference model trainable so it can follow the policy, and updates the reference each "
            "epoch.", {REF}),
    ("dpo", "Then DPO runs PPO with the implicit reward.", {PPO}),
    ("simpo", "SimPO keeps a frozen reference model to compute the log-ratio.", {"gave SimPO a reference model"}),
    ("orpo", "ORPO needs a reference model to compute the odds.", {"gave ORPO a reference model"}),
    ("ipo", "IPO is just DPO with a squared loss, and its target margin is 1/β.", {"put the target margin at 1/β"}),
]


def _measure() -> tuple[int, int, int, list[str]]:
    tp = fp = fn = 0
    wrong_calls: list[str] = []
    for key, text in CORRECT:
        raised = {f for f, _ in find_red_flags(key, text)}
        fp += len(raised)
        wrong_calls += [f"false flag {f!r} ({key}): {text}" for f in raised]
    for key, text, expected in WRONG:
        raised = {f for f, _ in find_red_flags(key, text)}
        tp, fp, fn = tp + len(raised & expected), fp + len(raised - expected), fn + len(expected - raised)
        wrong_calls += [f"false flag {f!r} ({key}): {text}" for f in raised - expected]
        wrong_calls += [f"missed {f!r} ({key}): {text}" for f in expected - raised]
    return tp, fp, fn, wrong_calls


def test_the_corpus_is_large_enough_and_covers_every_variant():
    assert len(CORRECT) + len(WRONG) >= 40 and len(CORRECT) >= 30 and len(WRONG) >= 20
    assert {key for key, _ in CORRECT} == set(VARIANTS) == {key for key, _, _ in WRONG}
    named = [text for key, text in CORRECT if key == "dpo"]
    assert sum(any(w in t.lower() for w in ("ppo", "reward model", " rl", "rollout")) for t in named) >= 20
    for key, _, expected in WRONG:
        assert expected <= {f.flag for f in VARIANTS[key].red_flags}, expected


def test_the_corpus_is_judged_as_labelled(capsys):
    tp, fp, fn, wrong_calls = _measure()
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    with capsys.disabled():
        print(f"\nred-flag scanner on {len(CORRECT) + len(WRONG)} explanations: precision {precision:.2f} "
              f"({tp}/{tp + fp}), recall {recall:.2f} ({tp}/{tp + fn})")
    assert not wrong_calls, "\n".join(wrong_calls)
    assert precision == 1.0 and recall == 1.0


@pytest.mark.parametrize("key, text", CORRECT)
def test_no_correct_explanation_is_flagged(key, text):
    assert find_red_flags(key, text) == []


@pytest.mark.parametrize("key, text, expected", WRONG)
def test_every_real_red_flag_is_raised_and_quotes_its_sentence(key, text, expected):
    raised = find_red_flags(key, text)
    assert {f for f, _ in raised} == expected
    for found in raised:
        assert isinstance(found, RaisedFlag) and found.sentence in split_sentences(text) and found.sentence


def test_one_scanner_judges_the_same_sentence_alike_in_every_variant():
    """The sentence of issue 27 is clean in the DPO drill and in every other, and a sentence with a real flag of
    the DPO drill is judged by the same rules elsewhere (another variant has no PPO flag, so nothing there)."""
    sentence = ("DPO optimises the same objective as RLHF with PPO, but without training a separate reward model and "
                "without an RL loop.")
    for key in VARIANTS:
        assert find_red_flags(key, sentence) == [], key
    assert red_flags_in(sentence) == [] and Drill().red_flags(sentence) == []
    ipo = Drill(variant=get_variant("ipo"))
    assert ipo.red_flags("IPO uses a log-sigmoid of the margin.") == find_red_flags("ipo", "IPO uses a log-sigmoid of the margin.")


def test_the_flag_quotes_the_sentence_that_raised_it_not_its_neighbours():
    text = ("Unlike RLHF with PPO, DPO needs no reward model. It is a supervised loss.\n"
            "In my implementation we run PPO with rollouts for the policy update.")
    (found,) = red_flags_in(text)
    assert found == (PPO, VARIANTS["dpo"].red_flags[0].why)
    assert found.sentence == "In my implementation we run PPO with rollouts for the policy update."
    flag, instead = found                                   # still the (flag, instead) pair the lesson unpacks
    assert (flag, instead) == (found.flag, found.instead)
    for clone in (copy.deepcopy(found), pickle.loads(pickle.dumps(found))):
        assert clone == found and clone.sentence == found.sentence


def test_sentences_are_split_across_wrapped_lines_and_bullets_but_not_after_abbreviations():
    text = "RLHF first fits a reward model,\nthen runs PPO (e.g. InstructGPT).\n\n- no PPO\n- no rollouts"
    assert split_sentences(text) == ["RLHF first fits a reward model, then runs PPO (e.g. InstructGPT).",
                                     "no PPO", "no rollouts"]


def test_the_scorecard_shows_the_quoted_sentence(capsys):
    card = Drill().scorecard({}, "It is simple. DPO runs PPO on the policy.", print_it=True)
    out = capsys.readouterr().out
    assert "⚠ described a PPO / RL loop" in out and "“DPO runs PPO on the policy.”" in out
    assert card["red_flags"][0].sentence == "DPO runs PPO on the policy."
    assert card.record()["red_flag_sentences"] == ["DPO runs PPO on the policy."]
