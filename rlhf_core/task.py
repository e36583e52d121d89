"""The toy task: short movie reviews from a small grammar, with a transparent sentiment reward.

This is an offline stand-in for the *controlled sentiment generation* experiment of the DPO paper
(Rafailov et al., 2023, §6.1): there, GPT-2 continues IMDb review prefixes and a sentiment
classifier plays the ground-truth reward. Here the reviews come from a small regular grammar, the
"classifier" is a rule you can check by hand, and a tiny transformer can learn the whole language
on a CPU in minutes.

Prompts
-------
A prompt is ``[OPENER] the NOUN COPULA``::

    the film was
    honestly , the acting seemed
    i thought the ending was
    to be honest , the plot felt

(6 openers, one of them empty, x 12 nouns x 3 copulas = 216 prompts.) Every prompt ends with a
copula, so the response starts with an adjective phrase. ``TRAIN_PROMPTS`` is a fixed,
seed-independent 80 % of them and ``HELDOUT_PROMPTS`` the rest, for evaluating on prompts never
trained on.

Responses
---------
Words are lowercase and separated by single spaces; "," and "." are words too::

    AP        := [ "not" ] [ INTENSIFIER ] ADJECTIVE          "good", "very good", "not very good"
    AP_LIST   := AP ( ("and" | "but") AP ){0,2}              "good but slow"
    FRAME     := "the" NOUN COPULA | "i found it" | "overall it was" | "it was"
    SENTENCE  := FRAME AP_LIST "."                            "the pacing felt slow ."
    RESPONSE  := AP_LIST "." SENTENCE{0,2}                    and 8 <= number of words <= 24

ADJECTIVE is any word of ``POSITIVE``, ``NEGATIVE`` or ``NEUTRAL``; INTENSIFIER any word of
``INTENSIFIERS``. For example, after the prompt ``"the film was"``::

    very good and clever . i found it not boring .
    dull but not terrible . the soundtrack seemed quite beautiful . overall it was slow .

:func:`is_grammatical` is a real recognizer of this language: a regular expression over words,
built from the same tables as the generator, plus the 8-24 word-count bound. It accepts strings
the generator might never draw (e.g. "awful and great . it was long ."): the grammar ignores
sentiment, and sentiment only shapes *probabilities*.

Latent sentiment
----------------
:func:`sample_review` first picks an overall sentiment -- ``"positive"`` (probability 0.3),
``"negative"`` (0.3) or ``"mixed"`` (0.4), see ``SENTIMENT_WEIGHTS`` -- which colours every
adjective phrase of the review: a positive review draws mostly positive phrases ("great",
"very nice", "not bad"), a negative one mostly negative phrases ("dull", "not very good"), and a
mixed one alternates, usually joined by "but". The sentence structure (number of sentences and
phrases) does *not* depend on the sentiment. A language model trained on the corpus therefore
learns roughly "choose a sentiment, then write in it", and moving all of its probability to the
positive class costs about ``log(1 / 0.3) ~ 1.2`` nats of KL, for a gain of about 1.2 standard
deviations of the corpus reward: high reward is reachable by a modest shift of the distribution,
as in the paper's IMDb experiment.

Corpus statistics (``corpus_reward_stats()``, 4000 reviews): mean ~ 0.00, std ~ 0.45; positive
reviews average ~ +0.53, negative ones ~ -0.53, mixed ones ~ -0.01.

Reward
------
The ground-truth reward is the *mean* sentiment of the adjective phrases in the response:

1. An adjective scores ``+2`` (strong positive, e.g. "great"), ``+1`` (mild positive, "good"),
   ``0`` (neutral, "long"), ``-1`` (mild negative, "dull") or ``-2`` (strong negative, "awful").
2. An intensifier directly before the adjective multiplies the score by
   ``INTENSIFIER_SCALE = 1.5`` ("very good" = +1.5, "really awful" = -3).
3. "not" directly before the (intensified) adjective multiplies by ``NEGATION_SCALE = -0.5``:
   negation flips *and damps* ("not bad" = +0.5 is only mildly positive, "not great" = -1,
   "not very good" = -0.75).
4. ``reward = mean(phrase scores) / 3``, which lies in ``[-1, 1]`` (3 = the largest possible
   phrase score). A response with no adjective phrase gets ``0``.

Worked example: ``"very good but not great . the pacing felt slow ."`` has the phrases
"very good" (+1 x 1.5 = +1.5), "not great" (+2 x -0.5 = -1.0) and "slow" (-1), so
``reward = (1.5 - 1.0 - 1.0) / 3 / 3 = -0.5 / 9 = -0.0556``. And ``"great . i found it not bad ."``
has "great" (+2) and "not bad" (+0.5): ``reward = (2 + 0.5) / 2 / 3 = 0.4167``.

Why the mean and not the sum: a sum (or a count of positive words) grows with every extra
positive phrase, so a policy could raise its reward simply by writing *longer* reviews -- the
length exploitation known from real RLHF. With the mean, saying the same thing twice changes
nothing (``reward(r + " " + r) == reward(r)`` for any ``r`` ending in "."), padding a review with
lukewarm sentences *lowers* its reward, and the only way up is to say *more positive* things,
which is the behaviour we want DPO to find. (Within each sentiment class the corpus reward is
essentially uncorrelated with length.)

The reward is defined on *any* word sequence, since model samples may be ungrammatical: every
adjective is scored, looking only at the word(s) right before it for an intensifier and then a
"not"; all other words, unknown ones included, score nothing (they still separate words, so
"not xyz good" counts as plain "good"). The prompt never enters the reward.
"""

from __future__ import annotations

import functools
import math
import random
import re
import statistics

__all__ = [
    "PROMPTS",
    "TRAIN_PROMPTS",
    "HELDOUT_PROMPTS",
    "VOCAB",
    "POSITIVE",
    "NEGATIVE",
    "NEUTRAL",
    "ADJECTIVES",
    "INTENSIFIERS",
    "INTENSIFIER_SCALE",
    "NEGATION_SCALE",
    "REWARD_SCALE",
    "SENTIMENTS",
    "SENTIMENT_WEIGHTS",
    "MIN_RESPONSE_WORDS",
    "MAX_RESPONSE_WORDS",
    "sample_review",
    "make_corpus",
    "reward",
    "reward_breakdown",
    "is_grammatical",
    "is_prompt",
    "corpus_reward_stats",
]

# --------------------------------------------------------------------------------------------
# Word tables (the generator, the recognizer and the reward are all built from these)
# --------------------------------------------------------------------------------------------

_STRONG_POSITIVE = (
    "great", "excellent", "brilliant", "wonderful", "superb",
    "fantastic", "outstanding", "amazing", "beautiful",
)
_MILD_POSITIVE = (
    "good", "fun", "nice", "enjoyable", "charming", "solid",
    "clever", "pleasant", "decent", "engaging", "funny", "smart",
)
_STRONG_NEGATIVE = (
    "terrible", "awful", "dreadful", "horrible", "unbearable",
    "painful", "abysmal", "pathetic", "atrocious",
)
_MILD_NEGATIVE = (
    "bad", "boring", "dull", "slow", "weak", "messy",
    "bland", "clumsy", "flat", "tedious", "silly", "lazy",
)
_NEUTRAL = ("long", "short", "simple", "familiar", "unusual", "quiet", "ordinary", "different")

#: adjective -> score, the reward's lexicon.
POSITIVE: dict[str, float] = {**{w: 2.0 for w in _STRONG_POSITIVE}, **{w: 1.0 for w in _MILD_POSITIVE}}
NEGATIVE: dict[str, float] = {**{w: -2.0 for w in _STRONG_NEGATIVE}, **{w: -1.0 for w in _MILD_NEGATIVE}}
NEUTRAL: dict[str, float] = {w: 0.0 for w in _NEUTRAL}
ADJECTIVES: dict[str, float] = {**POSITIVE, **NEGATIVE, **NEUTRAL}

INTENSIFIERS: tuple[str, ...] = ("very", "really", "quite", "so", "truly")
INTENSIFIER_SCALE = 1.5
NEGATION_SCALE = -0.5
NEGATION = "not"
CONJUNCTIONS: tuple[str, ...] = ("and", "but")
#: the largest possible |phrase score| (an intensified strong adjective); reward = mean / this.
REWARD_SCALE = 2.0 * INTENSIFIER_SCALE

_OPENERS = ("", "honestly ,", "overall ,", "frankly ,", "i thought", "to be honest ,")
_NOUNS = (
    "film", "movie", "acting", "plot", "ending", "script",
    "story", "soundtrack", "dialogue", "pacing", "direction", "cast",
)
_COPULAS = ("was", "felt", "seemed")
#: sentence frames of follow-up sentences that do not name a noun ("the NOUN COPULA" is the other).
_FIXED_FRAMES = ("i found it", "overall it was", "it was")

SENTIMENTS: tuple[str, ...] = ("positive", "negative", "mixed")
#: how often each sentiment is drawn when none is given (mixed reviews are the most common).
SENTIMENT_WEIGHTS: tuple[float, ...] = (0.3, 0.3, 0.4)
MIN_RESPONSE_WORDS = 8
MAX_RESPONSE_WORDS = 24

# --------------------------------------------------------------------------------------------
# Prompts
# --------------------------------------------------------------------------------------------

PROMPTS: tuple[str, ...] = tuple(
    f"{opener} the {noun} {cop}".strip()
    for opener in _OPENERS
    for noun in _NOUNS
    for cop in _COPULAS
)


def _split_prompts(prompts: tuple[str, ...], frac: float = 0.8, seed: int = 1234):
    order = sorted(prompts)
    random.Random(seed).shuffle(order)
    k = round(frac * len(order))
    train = set(order[:k])
    # keep the canonical (generation) order inside each split
    return (
        tuple(p for p in prompts if p in train),
        tuple(p for p in prompts if p not in train),
    )


TRAIN_PROMPTS, HELDOUT_PROMPTS = _split_prompts(PROMPTS)

VOCAB: tuple[str, ...] = tuple(
    sorted(
        {w for p in PROMPTS for w in p.split()}
        | set(ADJECTIVES)
        | set(INTENSIFIERS)
        | {NEGATION, ".", *CONJUNCTIONS}
        | {w for f in _FIXED_FRAMES for w in f.split()}
        | {"the", *_NOUNS, *_COPULAS}
    )
)

# --------------------------------------------------------------------------------------------
# Recognizer: a regular expression over space-separated words
# --------------------------------------------------------------------------------------------


def _alt(words) -> str:
    # longest first, so the alternation never prefers a prefix (the fullmatch would backtrack
    # anyway; this only keeps it quick)
    return "(?:" + "|".join(re.escape(w) for w in sorted(words, key=lambda w: (-len(w), w))) + ")"


_ADJ = _alt(ADJECTIVES)
_INT = _alt(INTENSIFIERS)
_CONJ = _alt(CONJUNCTIONS)
_AP = rf"(?:{NEGATION} )?(?:{_INT} )?{_ADJ}"
_AP_LIST = rf"{_AP}(?: {_CONJ} {_AP}){{0,2}}"
_FRAME = rf"(?:the {_alt(_NOUNS)} {_alt(_COPULAS)}|{_alt(_FIXED_FRAMES)})"
_SENTENCE = rf"{_FRAME} {_AP_LIST} \."
_RESPONSE_RE = re.compile(rf"{_AP_LIST} \.(?: {_SENTENCE}){{0,2}}")
_OPENER_ALT = _alt(o for o in _OPENERS if o)
_PROMPT_RE = re.compile(rf"(?:{_OPENER_ALT} )?the {_alt(_NOUNS)} {_alt(_COPULAS)}")


def _well_formed(text: str) -> bool:
    """Non-empty, single spaces between words, no leading/trailing whitespace."""
    return isinstance(text, str) and text != "" and text == " ".join(text.split())


def is_prompt(prompt: str) -> bool:
    """Whether ``prompt`` is a prompt of the grammar (``[OPENER] the NOUN COPULA``)."""
    return _well_formed(prompt) and _PROMPT_RE.fullmatch(prompt) is not None


def is_grammatical(prompt: str, response: str) -> bool:
    """Whether ``prompt`` followed by ``response`` is in the grammar's language.

    Both must be exactly formatted (lowercase words from the grammar, single spaces), the prompt
    must parse as ``[OPENER] the NOUN COPULA`` and the response as ``RESPONSE`` (see the module
    docstring), with 8 to 24 words, punctuation included.
    """
    if not (is_prompt(prompt) and _well_formed(response)):
        return False
    n = len(response.split(" "))
    if not MIN_RESPONSE_WORDS <= n <= MAX_RESPONSE_WORDS:
        return False
    return _RESPONSE_RE.fullmatch(response) is not None


# --------------------------------------------------------------------------------------------
# Reward
# --------------------------------------------------------------------------------------------


def reward_breakdown(response: str) -> list[tuple[str, float]]:
    """The scored phrases of ``response`` in order, as ``(phrase, score)`` on the raw scale.

    Works on any string: each adjective is a phrase, extended to the left by one intensifier
    and then one "not" if they stand directly before it. ``reward`` is the mean of these scores
    divided by ``REWARD_SCALE`` (3).

    >>> reward_breakdown("very good but not great . the pacing felt slow .")
    [('very good', 1.5), ('not great', -1.0), ('slow', -1.0)]
    """
    words = response.split()
    out: list[tuple[str, float]] = []
    for i, w in enumerate(words):
        if w not in ADJECTIVES:
            continue
        score = ADJECTIVES[w]
        start = i
        if start > 0 and words[start - 1] in INTENSIFIERS:
            start -= 1
            score *= INTENSIFIER_SCALE
        if start > 0 and words[start - 1] == NEGATION:
            start -= 1
            score *= NEGATION_SCALE
        out.append((" ".join(words[start : i + 1]), score + 0.0))  # + 0.0 turns -0.0 into 0.0
    return out


def reward(response: str) -> float:
    """Ground-truth sentiment reward in ``[-1, 1]``: mean phrase score / 3 (0 with no phrase).

    >>> round(reward("very good but not great . the pacing felt slow ."), 4)
    -0.0556
    >>> round(reward("great . i found it not bad ."), 4)
    0.4167
    """
    scores = [s for _, s in reward_breakdown(response)]
    if not scores:
        return 0.0
    return math.fsum(scores) / len(scores) / REWARD_SCALE


# --------------------------------------------------------------------------------------------
# Generator
# --------------------------------------------------------------------------------------------

# How a review's overall sentiment colours each adjective phrase. A phrase has an *effective*
# polarity ("pos", "neg" or "neu", after negation). Positive and negative reviews draw it
# independently per phrase; a mixed review mostly alternates it, phrase after phrase, so that its
# praise and criticism roughly balance.
_POLARITY_MIX = {
    "positive": (("pos", 0.94), ("neu", 0.04), ("neg", 0.02)),
    "negative": (("neg", 0.94), ("neu", 0.04), ("pos", 0.02)),
}
_MIXED_FLIP = (("flip", 0.75), ("same", 0.15), ("neu", 0.10))
_P_INTENSIFY = 0.4       # an intensifier on a plain adjective
_P_NEGATED = 0.15        # a positive-effect phrase written as "not NEGATIVE" (and vice versa)
_P_STRONG = 0.55         # a strong rather than a mild adjective
_P_NEUTRAL_NOT = 0.1     # "not long"
_P_SAME_CONJ = 0.85      # "and" between phrases of equal polarity, "but" between opposite ones
_N_PHRASES = ((1, 0.5), (2, 0.35), (3, 0.15))      # phrases per AP_LIST
_N_SENTENCES = ((0, 0.1), (1, 0.6), (2, 0.3))      # follow-up sentences


def _weighted(rng: random.Random, pairs):
    x = rng.random()
    acc = 0.0
    for value, p in pairs:
        acc += p
        if x < acc:
            return value
    return pairs[-1][0]


def _adjective(rng: random.Random, polarity: str) -> str:
    if polarity == "pos":
        return rng.choice(_STRONG_POSITIVE if rng.random() < _P_STRONG else _MILD_POSITIVE)
    if polarity == "neg":
        return rng.choice(_STRONG_NEGATIVE if rng.random() < _P_STRONG else _MILD_NEGATIVE)
    return rng.choice(_NEUTRAL)


def _phrase(rng: random.Random, polarity: str) -> list[str]:
    """One adjective phrase whose effective polarity is ``polarity`` ("pos", "neg" or "neu")."""
    if polarity == "neu":
        words = [_adjective(rng, "neu")]
        if rng.random() < _P_INTENSIFY / 2:
            words.insert(0, rng.choice(INTENSIFIERS))
        if rng.random() < _P_NEUTRAL_NOT:
            words.insert(0, NEGATION)
        return words
    if rng.random() < _P_NEGATED:  # "not bad" is positive, "not very good" negative
        words = [_adjective(rng, "neg" if polarity == "pos" else "pos")]
        if rng.random() < _P_INTENSIFY:
            words.insert(0, rng.choice(INTENSIFIERS))
        return [NEGATION, *words]
    words = [_adjective(rng, polarity)]
    if rng.random() < _P_INTENSIFY:
        words.insert(0, rng.choice(INTENSIFIERS))
    return words


class _Polarity:
    """Draws the effective polarity of successive phrases of one review."""

    def __init__(self, rng: random.Random, sentiment: str):
        self.rng, self.sentiment = rng, sentiment
        self.last_signed = rng.choice(("pos", "neg"))  # for mixed reviews: where to start
        self.first = True

    def next(self) -> str:
        if self.sentiment != "mixed":
            return _weighted(self.rng, _POLARITY_MIX[self.sentiment])
        if self.first:
            self.first = False
            return self.last_signed
        move = _weighted(self.rng, _MIXED_FLIP)
        if move == "neu":
            return "neu"
        if move == "flip":
            self.last_signed = "neg" if self.last_signed == "pos" else "pos"
        return self.last_signed


def _phrase_list(rng: random.Random, polarity: _Polarity) -> list[str]:
    words: list[str] = []
    prev = None
    for _ in range(_weighted(rng, _N_PHRASES)):
        pol = polarity.next()
        if prev is not None:
            if "neu" in (prev, pol):
                conj = rng.choice(CONJUNCTIONS)
            elif prev == pol:
                conj = "and" if rng.random() < _P_SAME_CONJ else "but"
            else:
                conj = "but" if rng.random() < _P_SAME_CONJ else "and"
            words.append(conj)
        words.extend(_phrase(rng, pol))
        prev = pol
    return words


def _frame(rng: random.Random) -> list[str]:
    if rng.random() < 0.5:
        return ["the", rng.choice(_NOUNS), rng.choice(_COPULAS)]
    return rng.choice(_FIXED_FRAMES).split()


def _draw_sentiment(rng: random.Random) -> str:
    return _weighted(rng, tuple(zip(SENTIMENTS, SENTIMENT_WEIGHTS)))


def sample_review(
    rng: random.Random, sentiment: str | None = None, prompt: str | None = None
) -> tuple[str, str]:
    """Draw one ``(prompt, response)`` from the grammar.

    ``sentiment`` is ``"positive"``, ``"negative"``, ``"mixed"`` or ``None`` (drawn with
    probabilities ``SENTIMENT_WEIGHTS``, 0.3 / 0.3 / 0.4);
    ``prompt`` defaults to a random one of ``TRAIN_PROMPTS``. The response does not depend on the
    prompt. It has 8-24 words and always satisfies :func:`is_grammatical` (drafts outside the
    length bounds are redrawn).
    """
    if sentiment is None:
        sentiment = _draw_sentiment(rng)
    if sentiment not in SENTIMENTS:
        raise ValueError(f"sentiment must be one of {SENTIMENTS} or None, got {sentiment!r}")
    if prompt is None:
        prompt = rng.choice(TRAIN_PROMPTS)
    elif not is_prompt(prompt):
        raise ValueError(f"not a prompt of the grammar: {prompt!r}")
    while True:
        polarity = _Polarity(rng, sentiment)
        words = _phrase_list(rng, polarity) + ["."]
        for _ in range(_weighted(rng, _N_SENTENCES)):
            words += _frame(rng) + _phrase_list(rng, polarity) + ["."]
        if MIN_RESPONSE_WORDS <= len(words) <= MAX_RESPONSE_WORDS:
            return prompt, " ".join(words)


def make_corpus(n: int, seed: int = 0, prompts=TRAIN_PROMPTS) -> list[dict]:
    """``n`` reviews ``{"prompt", "response", "sentiment"}``, reproducible from ``seed``.

    Sentiments are drawn with probabilities ``SENTIMENT_WEIGHTS`` (0.3 positive, 0.3 negative,
    0.4 mixed) and prompts uniformly from ``prompts``.
    """
    prompts = tuple(prompts)
    if not prompts:
        raise ValueError("prompts must not be empty")
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        sentiment = _draw_sentiment(rng)
        prompt, response = sample_review(rng, sentiment, rng.choice(prompts))
        rows.append({"prompt": prompt, "response": response, "sentiment": sentiment})
    return rows


@functools.lru_cache(maxsize=16)
def _stats(n: int, seed: int) -> tuple[float, float]:
    rs = [reward(row["response"]) for row in make_corpus(n, seed)]
    return statistics.fmean(rs), statistics.pstdev(rs)


def corpus_reward_stats(n: int = 4000, seed: int = 0) -> dict:
    """``{"mean", "std"}`` (population std) of the reward over ``make_corpus(n, seed)``."""
    mean, std = _stats(int(n), int(seed))
    return {"mean": mean, "std": std}
