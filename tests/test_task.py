"""Tests of the toy review task: grammar, recognizer, corpus and ground-truth reward."""

from __future__ import annotations

import math
import random
import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlhf_core import task
from rlhf_core.task import (
    HELDOUT_PROMPTS,
    NEGATIVE,
    NEUTRAL,
    POSITIVE,
    PROMPTS,
    TRAIN_PROMPTS,
    VOCAB,
    corpus_reward_stats,
    is_grammatical,
    make_corpus,
    reward,
    reward_breakdown,
    sample_review,
)

SENTIMENTS = ("positive", "negative", "mixed")
PROMPT = "the film was"


@pytest.fixture(scope="module")
def corpus():
    return make_corpus(3000, seed=0)


# ------------------------------------------------------------------------------------- tables


def test_prompt_sets():
    assert 100 <= len(PROMPTS) <= 250
    assert len(set(PROMPTS)) == len(PROMPTS)
    assert set(TRAIN_PROMPTS) | set(HELDOUT_PROMPTS) == set(PROMPTS)
    assert not set(TRAIN_PROMPTS) & set(HELDOUT_PROMPTS)
    assert abs(len(TRAIN_PROMPTS) / len(PROMPTS) - 0.8) < 0.02
    assert "the film was" in PROMPTS and "i thought the ending was" in PROMPTS
    # every prompt is a prompt of the grammar, and held-out prompts use only words seen in training
    assert all(task.is_prompt(p) for p in PROMPTS)
    train_words = {w for p in TRAIN_PROMPTS for w in p.split()}
    assert {w for p in HELDOUT_PROMPTS for w in p.split()} <= train_words


def test_vocab():
    assert list(VOCAB) == sorted(set(VOCAB))
    assert 80 <= len(VOCAB) <= 140
    assert {",", ".", "not", "and", "but", "very"} <= set(VOCAB)
    assert all(w == w.lower() and " " not in w for w in VOCAB)
    assert set(POSITIVE) | set(NEGATIVE) | set(NEUTRAL) <= set(VOCAB)


def test_adjective_tables():
    assert not (set(POSITIVE) & set(NEGATIVE) or set(POSITIVE) & set(NEUTRAL) or set(NEGATIVE) & set(NEUTRAL))
    assert all(s > 0 for s in POSITIVE.values()) and set(POSITIVE.values()) == {1.0, 2.0}
    assert all(s < 0 for s in NEGATIVE.values()) and set(NEGATIVE.values()) == {-1.0, -2.0}
    assert set(NEUTRAL.values()) == {0.0}


# ------------------------------------------------------------------------------------ generator


@pytest.mark.parametrize("sentiment", [*SENTIMENTS, None])
def test_generated_reviews_are_grammatical(sentiment):
    rng = random.Random(123)
    for _ in range(1500):
        prompt, response = sample_review(rng, sentiment)
        words = response.split(" ")
        assert prompt in TRAIN_PROMPTS
        assert 8 <= len(words) <= 24
        assert response == response.lower() and words[-1] == "."
        assert set(words) <= set(VOCAB)
        assert is_grammatical(prompt, response), (prompt, response)


def test_sample_review_uses_given_prompt_and_rejects_bad_args():
    rng = random.Random(0)
    for p in HELDOUT_PROMPTS[:5]:
        assert sample_review(rng, "mixed", p)[0] == p
    with pytest.raises(ValueError):
        sample_review(rng, "ecstatic")
    with pytest.raises(ValueError):
        sample_review(rng, None, "the film is")


def test_generator_reaches_every_word_and_construct(corpus):
    text = " ".join(r["prompt"] + " " + r["response"] for r in corpus)
    assert set(text.split()) == set(VOCAB)
    for construct in (" not very ", " but ", " and ", "i found it", "overall it was", " . it was "):
        assert construct in " " + text + " ", construct


def test_make_corpus_reproducible_and_seeded(corpus):
    assert make_corpus(3000, seed=0) == corpus
    other = make_corpus(3000, seed=1)
    assert other != corpus
    assert sum(a["response"] != b["response"] for a, b in zip(corpus, other)) > 2500
    assert {r["sentiment"] for r in corpus} == set(SENTIMENTS)
    assert {r["prompt"] for r in corpus} <= set(TRAIN_PROMPTS)
    assert {r["prompt"] for r in make_corpus(200, prompts=HELDOUT_PROMPTS)} <= set(HELDOUT_PROMPTS)
    assert set(corpus[0]) == {"prompt", "response", "sentiment"}
    # responses are diverse, not a handful of templates
    assert len({r["response"] for r in corpus}) > 0.95 * len(corpus)


# ----------------------------------------------------------------------------------- recognizer


def test_recognizer_accepts_handwritten_examples():
    assert is_grammatical("the film was", "very good and clever . i found it not boring .")
    assert is_grammatical(
        "honestly , the acting seemed",
        "dull but not terrible . the soundtrack seemed quite beautiful . overall it was slow .",
    )
    # sentiment-incoherent but grammatical: the grammar ignores sentiment
    assert is_grammatical("i thought the ending was", "awful and great . it was long and short .")


def test_recognizer_rejects_shuffled_responses(corpus):
    rng = random.Random(7)
    tried = rejected = 0
    for row in corpus[:1000]:
        words = row["response"].split()
        shuffled = words[:]
        rng.shuffle(shuffled)
        if shuffled == words:
            continue
        tried += 1
        rejected += not is_grammatical(row["prompt"], " ".join(shuffled))
    assert rejected / tried > 0.98


def test_recognizer_rejects_truncation(corpus):
    for row in corpus[:300]:
        words = row["response"].split()
        assert not is_grammatical(row["prompt"], " ".join(words[:-1]))  # no final "."
    assert not is_grammatical(PROMPT, "good . the plot was slow . i found it")
    # a sentence-final "." missing in the middle
    assert is_grammatical(PROMPT, "very good . the plot was slow .")
    assert not is_grammatical(PROMPT, "very good the plot was slow .")
    assert not is_grammatical(PROMPT, "very good . the plot was slow it was fun .")


def test_recognizer_rejects_bad_words_and_constructs():
    ok = "good and clever . i found it not boring ."
    assert is_grammatical(PROMPT, ok)
    assert not is_grammatical(PROMPT, ok.replace("clever", "marvellous"))  # unknown word
    assert not is_grammatical(PROMPT, ok.replace("not", "not not"))  # doubled negation
    assert not is_grammatical(PROMPT, ok.replace("not", "very not"))  # wrong order
    assert not is_grammatical(PROMPT, ok.replace("good and", "good and and"))
    assert not is_grammatical(PROMPT, ok.replace(" .", " . ."))
    assert not is_grammatical(PROMPT, "and " + ok)
    assert not is_grammatical(PROMPT, ok.replace("i found it", "the film"))  # frame without copula
    assert not is_grammatical(PROMPT, ok.upper())
    assert not is_grammatical(PROMPT, ok.replace(" ", "  ", 1))  # not single-spaced
    assert not is_grammatical(PROMPT, ok + " ")
    assert not is_grammatical(PROMPT, "")
    # four phrases in one list, three follow-up sentences: beyond the grammar
    assert not is_grammatical(PROMPT, "good and nice and fun and smart . it was long .")
    assert not is_grammatical(PROMPT, "good . it was fun . it was nice . it was smart .")
    # the prompt is checked too
    assert not is_grammatical("the film", ok)
    assert not is_grammatical("the film was good", ok)
    assert not is_grammatical("", ok)


def test_recognizer_enforces_length_bounds():
    seven = "good . the plot was slow ."
    assert len(seven.split()) == 7 and not is_grammatical(PROMPT, seven)
    assert is_grammatical(PROMPT, "very good . the plot was slow .")  # 8 words
    long24 = "very good and very nice but very slow . the plot was really dull and very slow ."
    long24 += " it was fun and clever ."
    assert len(long24.split()) == 24 and is_grammatical(PROMPT, long24)
    long25 = long24.replace("it was fun", "it was not fun")
    assert len(long25.split()) == 25 and not is_grammatical(PROMPT, long25)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(VOCAB), min_size=0, max_size=26))
def test_recognizer_implies_generator_shape(words):
    """Anything the recognizer accepts has the grammar's surface properties (random word soup)."""
    response = " ".join(words)
    if is_grammatical(PROMPT, response):
        assert 8 <= len(words) <= 24 and words[-1] == "."
        assert words[0] not in ("and", "but", ".", "the")
        assert "not not" not in response


# --------------------------------------------------------------------------------------- reward


def test_reward_docstring_examples():
    r = "very good but not great . the pacing felt slow ."
    assert reward_breakdown(r) == [("very good", 1.5), ("not great", -1.0), ("slow", -1.0)]
    assert reward(r) == pytest.approx(-0.5 / 9)
    assert reward("great . i found it not bad .") == pytest.approx((2 + 0.5) / 2 / 3)


def test_reward_is_mean_of_breakdown(corpus):
    for row in corpus[:500]:
        scores = [s for _, s in reward_breakdown(row["response"])]
        assert scores, row
        assert reward(row["response"]) == pytest.approx(statistics.fmean(scores) / 3)
        assert -1.0 <= reward(row["response"]) <= 1.0


def test_negation_flips_and_damps():
    for adj, score in {**POSITIVE, **NEGATIVE}.items():
        plain = reward(f"{adj} .")
        negated = reward(f"not {adj} .")
        assert plain == pytest.approx(score / 3)
        assert negated == pytest.approx(-0.5 * plain)
        assert math.copysign(1, negated) == -math.copysign(1, plain)
    assert reward("not bad .") > 0 > reward("not great .")
    assert reward("not bad .") < reward("good .")  # "not bad" is only mildly positive
    assert reward("not very good .") == pytest.approx(-0.75 / 3)


def test_intensifier_scales():
    for intensifier in task.INTENSIFIERS:
        assert reward(f"{intensifier} good .") == pytest.approx(1.5 * reward("good ."))
        assert reward(f"{intensifier} awful .") == pytest.approx(1.5 * reward("awful ."))
        assert reward(f"{intensifier} long .") == 0.0
    assert reward("really great .") == 1.0 and reward("very terrible .") == -1.0


def test_neutral_words_count_as_phrases():
    assert reward("long .") == 0.0
    assert reward("great and long .") == pytest.approx(reward("great .") / 2)


def test_length_is_not_a_lever(corpus):
    """Repeating a response (or a sentence of it) leaves the reward unchanged: mean, not sum."""
    for row in corpus[:300]:
        r = row["response"]
        assert reward(r + " " + r) == pytest.approx(reward(r))
        assert reward(" ".join([r] * 3)) == pytest.approx(reward(r))
    # and adding a mildly positive sentence to a strongly positive review *lowers* its reward
    assert reward("great . it was good .") < reward("great . it was great .")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(VOCAB), min_size=0, max_size=30), st.integers(2, 4))
def test_repetition_invariance_on_word_soup(words, k):
    soup = " ".join(words)
    # join repetitions with "." so no phrase straddles the seam
    assert reward(" . ".join([soup] * k)) == pytest.approx(reward(soup))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(VOCAB), st.text(min_size=1, max_size=8)), max_size=40))
def test_reward_defined_on_anything(words):
    text = " ".join(words)
    r = reward(text)
    assert math.isfinite(r) and -1.0 <= r <= 1.0
    assert all(math.isfinite(s) for _, s in reward_breakdown(text))


def test_reward_edge_cases():
    assert reward("") == 0.0 and reward_breakdown("") == []
    assert reward("the film was .") == 0.0
    assert reward("xyzzy plugh") == 0.0
    assert reward("not xyzzy good") == reward("good")  # unknown words separate, score nothing
    assert reward("  very   good  ") == reward("very good")  # whitespace-insensitive
    assert reward("not not good .") == reward("not good .")  # only the word right before counts


def test_sentiment_classes_order_the_reward(corpus):
    by = {s: [reward(r["response"]) for r in corpus if r["sentiment"] == s] for s in SENTIMENTS}
    means = {s: statistics.fmean(v) for s, v in by.items()}
    assert means["positive"] > means["mixed"] + 0.3 > means["negative"] + 0.6
    assert abs(means["mixed"]) < 0.1
    # the latent class mostly decides the sign
    assert statistics.fmean(r > 0 for r in by["positive"]) > 0.95
    assert statistics.fmean(r < 0 for r in by["negative"]) > 0.95


def test_corpus_reward_stats():
    stats = corpus_reward_stats()
    assert set(stats) == {"mean", "std"}
    assert abs(stats["mean"]) < 0.1
    assert 0.4 <= stats["std"] <= 0.6
    rs = [reward(r["response"]) for r in make_corpus(500, seed=3)]
    small = corpus_reward_stats(500, seed=3)
    assert small["mean"] == pytest.approx(statistics.fmean(rs))
    assert small["std"] == pytest.approx(statistics.pstdev(rs))
    # high reward is reachable: the positive class sits about one corpus std above the mean
    pos = [reward(r["response"]) for r in make_corpus(2000, seed=5) if r["sentiment"] == "positive"]
    assert statistics.fmean(pos) - stats["mean"] > 1.0 * stats["std"]


def test_reward_ignores_length_across_corpus(corpus):
    """Within a sentiment class, reward is (nearly) uncorrelated with response length."""
    for s in SENTIMENTS:
        rows = [r for r in corpus if r["sentiment"] == s]
        lengths = [len(r["response"].split()) for r in rows]
        rewards = [reward(r["response"]) for r in rows]
        assert abs(statistics.correlation(lengths, rewards)) < 0.15
