"""The drill's optional fifth block: here are my training curves — what went wrong?

A real interviewer ends with a run's logged curves and two questions: what is wrong, and what do you
change first. :data:`CASES` are six runs of the course's own DPO trainer (:func:`rlhf_core.train.train_dpo`
on the shipped SFT model and lesson 09's reward-ranked pairs), each with one thing done wrong or right,
logged under TRL's metric names (``loss``, ``rewards/chosen``, ``rewards/rejected``, ``rewards/margins``,
``rewards/accuracies``, ``logps/chosen``, ``logps/rejected``, plus the course's unscaled ``logratio/margin``):

=========================  =======================================================================
key                        what was done
=========================  =======================================================================
``healthy``                the course default: batch 32, lr 3e-4, β 0.3, warm-up 10
``margin_explosion``       batch 1, lr 1e-2, β 0.1, no warm-up (lesson 09's pathology)
``likelihood_displacement`` batch 32, lr 3e-3, β 0.1: the margin grows while the chosen log-prob falls
``beta_too_large``         the default at β 5: the policy barely leaves the reference
``prompt_in_mask``         a mask bug: the log-probs sum over prompt *and* response tokens
``reference_is_policy``    a frozen-reference bug: the "reference" log-probs are the policy's own,
                           recomputed each step under ``no_grad``
=========================  =======================================================================

The runs are shipped in ``rlhf_core/assets/diagnosis_runs.json`` (``python -m rlhf_core.course.diagnosis_round``
writes it, about a minute on 2 cores). The runs are chaotic at their large steps, so nothing checks their
numbers across machines: :func:`signature_problems` states what each must show (its *signature*), and a test
re-runs every case and checks it on the machine at hand. The learner's answer is a letter (the options are
:func:`options_text`) and one sentence on the first thing to change, judged by :func:`judge_answer` with the
keyword rubric each case states up front (:attr:`Case.fix_rubric`).

What a case's option and model answer say about its run is data beside the texts (:attr:`Case.claims`, each a
statistic of a logged curve compared with a bound), and the model answer's figures are filled from the run
(:func:`render_explanation`); :func:`claim_problems` and :func:`text_problems` hold the texts to the runs
(every claim true of the shipped run, every number filled or quoted from the library's advice, every word of
trend backed by a claim), and ``tests/test_drill_diagnosis.py`` runs them on the shipped runs. Regenerated runs
must pass them too, or the texts be rewritten.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..paths import DIAGNOSIS_RUNS_PATH

__all__ = ["Case", "Claim", "CASES", "LITERALS", "STATS", "TREND_WORDS", "stat_of", "claim_problems",
           "render_explanation", "text_problems", "LETTERS", "DIAGNOSIS_RUNS_PATH", "STEPS", "make_run", "make_all_runs", "load_runs",
           "SMOOTH", "signature_problems", "pick_case", "options_text", "judge_answer", "Judgement"]

STEPS = 60          # steps per run: every signature shows by then
SMOOTH = 10         # the round's plot draws each step faint and the running mean of this many steps over it
LOG2 = math.log(2.0)


@dataclass(frozen=True)
class Claim:
    """One quantitative statement a case's texts make about its shipped run, as data that a test evaluates.

    ``says`` is the words of the option or model answer that make the statement (they must occur there);
    the statement holds when ``stat`` of ``metric`` compares with ``value`` by ``op`` (``"<"`` or ``">"``).
    ``metric`` is a logged name, or ``"a − b"`` (the per-step difference of two names, or of a name and
    ``log 2``); ``stat`` is one of :data:`STATS`. With ``relative_to`` (another case's key) the statistic is
    this run's minus that run's."""

    says: str
    metric: str
    stat: str
    op: str
    value: float
    relative_to: str | None = None


@dataclass(frozen=True)
class Case:
    """One run of the diagnosis round: ``option`` (what the learner picks), ``changes`` (to the course default,
    :data:`rlhf_core.recipes.DEFAULT_DPO`), ``bug`` (an injected bug, or None), ``fix_rubric`` (the answer about
    the first change earns its point when it matches one of these regexes, case-insensitive), ``explanation``
    (the model answer, shown after the learner answers), ``claims`` (what the option and the model answer state
    about the shipped run, as data: :class:`Claim`).

    ``explanation`` is a template: ``{metric|stat}`` (optionally ``{metric|stat|format}`` or
    ``{case:metric|stat}`` for another case's run) is filled from the shipped run (:func:`stat_of`),
    ``{config.name}`` and ``{default.name}`` from the run's and the course default's
    :class:`~rlhf_core.train.DPOConfig`, and ``[[words]]`` are words quoted from the library's advice
    (:data:`rlhf_core.fixes.FIXES`), printed without the brackets. Every other number in it is one of
    :data:`LITERALS`: a test holds it to that (:func:`render_explanation`)."""

    key: str
    option: str
    changes: dict
    bug: str | None
    fix_rubric: tuple[str, ...]
    fix_words: str
    explanation: str
    claims: tuple[Claim, ...] = ()


#: The numbers a model answer may write by hand: none is a measurement of a shipped run.
LITERALS = ("log 2", "TRL 1.16", "lesson 04", "lesson 09", "Lesson 09")

#: The statistics a :class:`Claim` or a ``{metric|stat}`` placeholder can name.
STATS = {
    "early": "the mean of the first five steps",
    "late": "the mean of the last ten steps",
    "change": "late − early",
    "min": "the smallest value",
    "max": "the largest value",
    "maxabs": "the largest absolute value",
    "argmin": "the step of the smallest value",
    "argmax": "the step of the largest value",
}

#: A smaller learning rate (or step): the margin explosion's first change, as lesson 09's study and
#: ``FIXES["margin_explosion"]`` order them. A bigger batch, IPO, length normalisation, a larger β or a margin
#: cap earn nothing on their own: at the exploding learning rate the study found none of them stopped the drift.
_SMALLER_STEP = (
    r"\b(smaller|lower|lowering|reduc\w*|decreas\w*|cut\w*|shrink\w*)\s+(the\s+|its\s+|your\s+)?"
    r"(learning[- ]rate|lr|step[- ]size|steps?|updates?|update size)\b",
    r"\b(learning[- ]rate|lr|step[- ]size)\s+(\w+\s+){0,3}?(smaller|lower|down|reduc\w*|decreas\w*|too (large|big|high))\b",
    r"\b(learning[- ]rate|lr)\s*(=|to|of|:)\s*\d",
)

CASES: dict[str, Case] = {c.key: c for c in (
    Case("healthy", "nothing is wrong: a healthy run", {}, None,
         (r"\bnothing\b", r"\bkeep\b", r"\bno change\b", r"\btrain (it )?longer\b", r"\bmore steps\b", r"\bheld[- ]out\b",
          r"\bsamples?\b"),
         "nothing / keep it (look at held-out metrics and samples before trusting it)",
         "The loss falls from log 2 to {loss|late|.2f} (the mean of the last ten steps), accuracy rises from "
         "{rewards/accuracies|early|.2f} to {rewards/accuracies|late|.2f}, and the unscaled margin (logratio/margin) "
         "grows to {logratio/margin|late|.1f} nats, inside the shaded band. The raw log-probs wander with each batch "
         "(logps/chosen between {logps/chosen|min} and {logps/chosen|max}) and end within half a nat of where they "
         "started ({logps/chosen|early} → {logps/chosen|late}, rejected {logps/rejected|early} → "
         "{logps/rejected|late}): the margin is measured against the reference on the same pairs, the raw "
         "log-probs are not. Nothing to fix; check held-out margins and samples before calling it done.",
         (Claim("The loss falls from log 2", "loss", "change", "<", -0.1),
          Claim("accuracy rises", "rewards/accuracies", "change", ">", 0.2),
          Claim("grows to", "logratio/margin", "change", ">", 1.0),
          Claim("inside the shaded band", "logratio/margin", "late", ">", 1.0),
          Claim("inside the shaded band", "logratio/margin", "max", "<", 10.0),
          Claim("wander with each batch", "logps/chosen", "max", ">", -25.0),
          Claim("wander with each batch", "logps/chosen", "min", "<", -30.0),
          Claim("end within half a nat of where they started", "logps/chosen", "change", ">", -0.5),
          Claim("end within half a nat of where they started", "logps/chosen", "change", "<", 0.5),
          Claim("end within half a nat of where they started", "logps/rejected", "change", ">", -0.5),
          Claim("end within half a nat of where they started", "logps/rejected", "change", "<", 0.5))),
    Case("margin_explosion", "margin explosion: every update is far too large, and the margin swings by tens of nats",
         {"batch_size": 1, "lr": 1e-2, "beta": 0.1, "warmup_steps": 0}, None,
         _SMALLER_STEP,
         "a smaller learning rate (a smaller step)",
         "Every single-pair update at learning rate {config.lr} is far too large. The unscaled margin "
         "(logratio/margin) swings by tens of nats either way, from {logratio/margin|min} to "
         "{logratio/margin|max} (step {logratio/margin|argmax}, far past the explosion rule's threshold), and with "
         "it the loss swings between {loss|min|.2f} and {loss|max} and accuracy flips between "
         "{rewards/accuracies|min|.0f} and {rewards/accuracies|max|.0f}; the running means show no learning: the "
         "loss's last-ten-step mean is {loss|late|.2f}, above log 2, and the margin's {logratio/margin|late}. "
         "Meanwhile the log-probs of both responses collapse: logps/chosen falls as low as {logps/chosen|min} "
         "(step {logps/chosen|argmin}) and still averages {logps/chosen|late} over the last ten steps, against "
         "{healthy:logps/chosen|late} in the healthy run: this policy has drifted far from the reference. "
         "First change: a smaller learning rate. Lesson 09's study tried the other fixes at "
         "this learning rate: [[a batch of 32 alone did not help]], and IPO and length normalisation "
         "[[bound the margin, not the drift]] (their policies ended at [[a KL above 300 nats]]); only a smaller "
         "step stopped it. A bigger batch, warm-up and a larger β come after it, at the smaller step.",
         (Claim("swings by tens of nats", "logratio/margin", "min", "<", -10.0),
          Claim("swings by tens of nats", "logratio/margin", "max", ">", 10.0),
          Claim("far past the explosion rule's threshold", "logratio/margin", "max", ">", 50.0),
          Claim("the loss swings", "loss", "min", "<", 0.05),
          Claim("the loss swings", "loss", "max", ">", 3.0),
          Claim("accuracy flips", "rewards/accuracies", "min", "<", 0.01),
          Claim("accuracy flips", "rewards/accuracies", "max", ">", 0.99),
          Claim("above log 2", "loss − log 2", "late", ">", 0.0),
          Claim("the log-probs of both responses collapse", "logps/chosen", "late", "<", -20.0, "healthy"),
          Claim("the log-probs of both responses collapse", "logps/rejected", "late", "<", -20.0, "healthy"),
          Claim("logps/chosen falls as low as", "logps/chosen", "min", "<", -100.0),
          Claim("drifted far from the reference", "logps/chosen", "late", "<", -20.0, "healthy"))),
    Case("likelihood_displacement", "likelihood displacement: the margin grows while the chosen log-prob falls",
         {"lr": 3e-3, "beta": 0.1}, None,
         (r"\brpo\b", r"\bnll\b|\bsft (loss|term)\b|\bcross[- ]entropy\b", r"\blearning rate\b|\blr\b", r"\bbeta\b|β"),
         "add an NLL term on the chosen responses (RPO), or a smaller learning rate / larger β",
         "The margin grows ({logratio/margin|early} → {logratio/margin|late} nats) and accuracy is high "
         "({rewards/accuracies|late|.2f}), but logps/chosen falls ({logps/chosen|early} → {logps/chosen|late}): the "
         "policy separates the pair by pushing both responses down, the rejected one faster "
         "({logps/rejected|early} → {logps/rejected|late}). Probability mass goes to responses that are in "
         "neither. First change: an NLL term on the chosen responses (RPO: the course's rpo_alpha; in TRL 1.16 "
         "loss_type=[\"sigmoid\", \"sft\"] with loss_weights), or a gentler step.",
         (Claim("The margin grows", "logratio/margin", "change", ">", 2.0),
          Claim("accuracy is high", "rewards/accuracies", "late", ">", 0.8),
          Claim("logps/chosen falls", "logps/chosen", "change", "<", -2.0),
          Claim("pushing both responses down", "logps/rejected", "change", "<", -2.0),
          Claim("the rejected one faster", "logps/chosen − logps/rejected", "change", ">", 2.0),
          Claim("the margin grows while the chosen log-prob falls", "logps/chosen", "change", "<", -2.0))),
    Case("beta_too_large", "β is too large: the policy barely moves from the reference", {"beta": 5.0}, None,
         (r"(lower|smaller|decrease|reduce|reducing|lowering)\w* (the )?(beta|β)", r"(beta|β) (is )?too (large|big|high)",
          r"(beta|β)\s*(=|to)\s*0?\.\d"),
         "a smaller β",
         "rewards/margins (β times the margin) rises to {rewards/margins|late|.1f}, but the unscaled "
         "logratio/margin stays under a nat (at most {logratio/margin|maxabs|.2f}): with β = {config.beta} the "
         "KL penalty dominates and the smallest step away already satisfies the loss. First change: a smaller β (the "
         "course default is {default.beta}).",
         (Claim("rises to", "rewards/margins", "change", ">", 0.3),
          Claim("stays under a nat", "logratio/margin", "maxabs", "<", 1.0),
          Claim("the policy barely moves", "logratio/margin", "maxabs", "<", 1.0))),
    Case("prompt_in_mask", "a mask bug: the log-probs include the prompt tokens", {}, "prompt_in_mask",
         (r"\bmask\b", r"\bprompt\b", r"\bresponse[- ]only\b|\bresponse tokens\b"),
         "fix the mask so that only response tokens are scored",
         "The margins and accuracies are a healthy run's — the prompt is the same in both responses, so its "
         "log-probs cancel in every difference — but logps/chosen and logps/rejected are far more negative than "
         "responses of this length can be ({logps/chosen|early} against the healthy run's "
         "{healthy:logps/chosen|early} at the start): they sum over the prompt too. Anything that reads absolute "
         "log-probs (length normalisation, an NLL term, lesson 04's checks) is wrong. First change: score "
         "response tokens only (the response mask).",
         (Claim("The margins and accuracies are a healthy run's", "logratio/margin", "maxabs", "<", 0.01, "healthy"),
          Claim("The margins and accuracies are a healthy run's", "logratio/margin", "late", "<", 0.01, "healthy"),
          Claim("The margins and accuracies are a healthy run's", "logratio/margin", "late", ">", -0.01, "healthy"),
          Claim("The margins and accuracies are a healthy run's", "rewards/accuracies", "late", "<", 0.01, "healthy"),
          Claim("The margins and accuracies are a healthy run's", "rewards/accuracies", "late", ">", -0.01, "healthy"),
          Claim("far more negative", "logps/chosen", "early", "<", -10.0, "healthy"),
          Claim("far more negative", "logps/rejected", "early", "<", -10.0, "healthy"))),
    Case("reference_is_policy", "a frozen-reference bug: the reference log-probs come from the policy itself", {},
         "reference_is_policy",
         (r"\breference\b.*\b(frozen|copy|once|separate|detach|fixed|precomput)", r"\b(frozen|copy|separate)\b.*\breference\b",
          r"\bpi_ref\b|π_ref|\bref(erence)? (model|log-?probs)\b"),
         "take the reference log-probs from a frozen copy of the starting model, computed once",
         "The loss is exactly log 2 at every step and every reward and margin is zero, yet the policy moves: "
         "logps/chosen and logps/rejected both fall ({logps/chosen|early} → {logps/chosen|late} and "
         "{logps/rejected|early} → {logps/rejected|late}) while the gap between them grows "
         "({logps/chosen − logps/rejected|early} → {logps/chosen − logps/rejected|late} nats), and the loss "
         "compares the policy with itself. The 'reference' log-probs are recomputed from the current policy "
         "(under no_grad), so the log-ratios are always zero and the KL anchor is gone. First change: a frozen "
         "copy of the starting model as the reference, its log-probs computed once.",
         (Claim("The loss is exactly log 2 at every step", "loss − log 2", "maxabs", "<", 1e-4),
          Claim("every reward and margin is zero", "logratio/margin", "maxabs", "<", 1e-3),
          Claim("every reward and margin is zero", "rewards/margins", "maxabs", "<", 1e-3),
          Claim("every reward and margin is zero", "rewards/chosen", "maxabs", "<", 1e-3),
          Claim("every reward and margin is zero", "rewards/rejected", "maxabs", "<", 1e-3),
          Claim("yet the policy moves", "logps/chosen − logps/rejected", "change", ">", 0.25),
          Claim("both fall", "logps/chosen", "change", "<", 0.0),
          Claim("both fall", "logps/rejected", "change", "<", 0.0),
          Claim("the gap between them grows", "logps/chosen − logps/rejected", "change", ">", 0.25))),
)}

LETTERS = "ABCDEF"


def options_text() -> str:
    """The multiple-choice options, one per line (``A. …``), in the order of :data:`CASES`."""
    return "\n".join(f"  {letter}. {case.option}" for letter, case in zip(LETTERS, CASES.values()))


# ------------------------------------------------------------------------------------------------
# making the runs


@contextlib.contextmanager
def _injected(bug: str | None) -> Iterator[None]:
    """Inject a case's bug into :mod:`rlhf_core.train` for the length of one run."""
    from .. import train

    if bug is None:
        yield
        return
    if bug == "prompt_in_mask":
        original = train.collate_pairs

        def collate_with_prompt(rows, tokenizer, *args, **kwargs):
            batch = original(rows, tokenizer, *args, **kwargs)
            for side in ("chosen", "rejected"):
                batch[f"{side}_response_mask"] = batch[f"{side}_attention_mask"].clone()
            return batch

        train.collate_pairs = collate_with_prompt
        try:
            yield
        finally:
            train.collate_pairs = original
    elif bug == "reference_is_policy":
        import torch

        original = train.dpo_step

        def step_against_itself(policy, batch, logp_ref_chosen, logp_ref_rejected, *args, **kwargs):
            with torch.no_grad():
                own_chosen, own_rejected = train.concatenated_logps(policy, batch, kwargs.get("average_logps", False))
            return original(policy, batch, own_chosen, own_rejected, *args, **kwargs)

        train.dpo_step = step_against_itself
        try:
            yield
        finally:
            train.dpo_step = original
    else:
        raise ValueError(f"unknown bug {bug!r}")


def make_run(key: str, steps: int = STEPS, progress: bool = False, data: tuple | None = None):
    """Train case ``key`` from the shipped SFT model on lesson 09's pairs; returns its MetricsHistory
    (training metrics every step, held-out pair metrics at the start and the end; no sampling).
    ``data`` is :func:`rlhf_core.course.studies.study_data`'s tuple, built once for several runs (its policy is
    copied, never trained)."""
    import copy

    from ..recipes import DEFAULT_DPO
    from ..train import train_dpo
    from .studies import study_data

    case = CASES[key]
    config = dataclasses.replace(DEFAULT_DPO, steps=steps, eval_every=steps, **case.changes)
    policy, reference, tokenizer, train_pairs, eval_pairs = data or study_data()
    policy = copy.deepcopy(policy)
    with _injected(case.bug):
        return train_dpo(policy, reference, tokenizer, train_pairs, config, eval_pairs=eval_pairs,
                         eval_prompts=None, progress=progress)


def make_all_runs(progress: bool = True) -> dict:
    """Every case, trained; the JSON-able data of :data:`DIAGNOSIS_RUNS_PATH`."""
    from ..checkpoint import machine_fingerprint
    from .studies import study_data

    data, runs = study_data(), {}
    for key in CASES:
        history = make_run(key, progress=progress, data=data)
        runs[key] = {"changes": CASES[key].changes, "bug": CASES[key].bug, "history": history.to_dict()}
    return {"steps": STEPS, "machine": machine_fingerprint(), "runs": runs}


def load_runs(path: Path = DIAGNOSIS_RUNS_PATH) -> dict:
    """The shipped runs: ``{key: MetricsHistory}``."""
    return load_runs_from(json.loads(Path(path).read_text()))


def load_runs_from(data: dict) -> dict:
    """``{key: MetricsHistory}`` from the JSON-able data of :func:`make_all_runs`."""
    from ..metrics import MetricsHistory

    return {key: MetricsHistory.from_dict(entry["history"]) for key, entry in data["runs"].items()}


# ------------------------------------------------------------------------------------------------
# the texts, filled from and held to the shipped runs

#: Words that state how a curve moves or how large it is: in a case's option or model answer each must lie
#: inside the ``says`` of one of its :class:`Claim` (or in words quoted from the library's advice).
TREND_WORDS = re.compile(
    r"\b(ris(e|es|ing)|rose|fall(s|ing)?|fell|grow(s|ing)?|grew|climb\w*|drop\w*|stay(s|ed)?|swing(s|ing)?|"
    r"flip(s|ped)?|collaps\w*|wander\w*|level(s|led)? off|saturat\w*|spik\w*|explod\w*|steadily|smoothly|"
    r"without bound|hundreds|thousands|dozens|tens of|mov(e|es|ed|ing)|drift\w*|more negative|is high|is low)\b",
    re.IGNORECASE)
_PLACEHOLDER = re.compile(r"\{(?:(\w+):)?([^{}|:]+)\|(\w+)(?:\|([^{}]+))?\}")
_CONFIG = re.compile(r"\{(config|default)\.(\w+)\}")
_QUOTE = re.compile(r"\[\[(.+?)\]\]")


def _steps_values(history, metric: str) -> tuple[list, list[float]]:
    if " − " in metric:
        a, b = metric.split(" − ", 1)
        steps, xs = _steps_values(history, a)
        if b.strip() == "log 2":
            return steps, [x - LOG2 for x in xs]
        return steps, [x - y for x, y in zip(xs, _steps_values(history, b)[1])]
    steps, values = history.series(metric)
    return list(steps), [float(v) for v in values]


def stat_of(history, metric: str, stat: str) -> float:
    """Statistic ``stat`` (one of :data:`STATS`) of ``metric`` (a logged name or ``"a − b"``) in ``history``."""
    steps, xs = _steps_values(history, metric)
    if not xs:
        raise ValueError(f"the run has no {metric!r}")
    early, late = sum(xs[:5]) / len(xs[:5]), sum(xs[-10:]) / len(xs[-10:])
    if stat == "early":
        return early
    if stat == "late":
        return late
    if stat == "change":
        return late - early
    if stat in ("min", "max"):
        return (min if stat == "min" else max)(xs)
    if stat == "maxabs":
        return max(abs(x) for x in xs)
    if stat in ("argmin", "argmax"):
        return float(steps[xs.index((min if stat == "argmin" else max)(xs))])
    raise ValueError(f"unknown statistic {stat!r}; one of {', '.join(STATS)}")


def claim_value(claim: Claim, runs: dict, key: str) -> float:
    """The value a claim of case ``key`` compares: its statistic on ``runs[key]`` (minus ``runs[relative_to]``'s)."""
    value = stat_of(runs[key], claim.metric, claim.stat)
    if claim.relative_to is not None:
        value -= stat_of(runs[claim.relative_to], claim.metric, claim.stat)
    return value


def claim_problems(key: str, runs: dict | None = None) -> list[str]:
    """The claims of case ``key`` that its run in ``runs`` (default: the shipped runs) does not bear out."""
    runs = runs if runs is not None else _shipped_runs()
    problems = []
    for claim in CASES[key].claims:
        value = claim_value(claim, runs, key)
        if not (value < claim.value if claim.op == "<" else value > claim.value):
            against = f" relative to the {claim.relative_to} run" if claim.relative_to else ""
            problems.append(f"{key}: {claim.says!r}: expected {claim.stat} of {claim.metric}{against} "
                            f"{claim.op} {claim.value:g}, the run has {value:.4g}")
    return problems


def _number(value: float, fmt: str | None, stat: str) -> str:
    text = f"{value:.0f}" if stat in ("argmin", "argmax") and not fmt else format(value, fmt or ".1f")
    return text.replace("-", "−")


def render_explanation(key: str, runs: dict | None = None, template: str | None = None) -> str:
    """Case ``key``'s model answer with its figures filled from ``runs`` (default: the shipped runs)."""
    from ..recipes import DEFAULT_DPO

    case = CASES[key]
    runs = runs if runs is not None else _shipped_runs()
    config = dataclasses.replace(DEFAULT_DPO, **case.changes)

    def figure(match: re.Match) -> str:
        other, metric, stat, fmt = match.groups()
        return _number(stat_of(runs[other or key], metric.strip(), stat), fmt, stat)

    text = _PLACEHOLDER.sub(figure, case.explanation if template is None else template)
    text = _CONFIG.sub(lambda m: format(getattr(config if m[1] == "config" else DEFAULT_DPO, m[2]), "g"), text)
    return _QUOTE.sub(lambda m: m[1], text)


def text_problems(key: str, runs: dict | None = None, template: str | None = None) -> list[str]:
    """What case ``key``'s option and model answer state that its claims do not hold them to (empty: every
    statement is backed). ``template`` replaces the case's model answer (to check another text).

    Every number in the model answer must be filled from the run or the configs, be quoted from
    ``FIXES[key]`` or be one of :data:`LITERALS`; every word of :data:`TREND_WORDS` in the option or the model
    answer must lie inside a claim's ``says``; every claim's ``says`` must occur in them; every quoted phrase
    must occur in the library's advice for the case (:data:`rlhf_core.fixes.FIXES`)."""
    from ..fixes import FIXES

    case = CASES[key]
    template = case.explanation if template is None else template
    problems = []
    bare = _QUOTE.sub(" ", _CONFIG.sub(" ", _PLACEHOLDER.sub(" ", template)))
    for literal in LITERALS:
        bare = bare.replace(literal, " ")
    for match in re.finditer(r"[^.;:]*\d[^.;:]*", bare):
        problems.append(f"{key}: a number written by hand, not filled from the run: {match[0].strip()!r}")
    for quoted in _QUOTE.findall(template):
        if quoted not in FIXES.get(key, ""):
            problems.append(f"{key}: {quoted!r} is quoted from FIXES[{key!r}] but is not in it")
    for text in (case.option, render_explanation(key, runs, template)):
        covered = [(m.start(), m.end()) for c in case.claims for m in re.finditer(re.escape(c.says), text)]
        covered += [(m.start(), m.end()) for m in re.finditer(r"|".join(map(re.escape, _QUOTE.findall(template)))
                                                                 or r"(?!)", text)]
        for match in TREND_WORDS.finditer(text):
            if not any(a <= match.start() and match.end() <= b for a, b in covered):
                start = text.rfind(" ", 0, max(0, match.start() - 30)) + 1
                problems.append(f"{key}: {text[start:match.end() + 20]!r}: {match[0]!r} is stated but no claim "
                                "holds it to the run")
    texts = case.option + "\n" + render_explanation(key, runs, template)
    for says in dict.fromkeys(claim.says for claim in case.claims):
        if says not in texts:
            problems.append(f"{key}: the claim {says!r} is not in the option or the model answer")
    return problems


_RUNS_CACHE: dict = {}


def _shipped_runs() -> dict:
    if "runs" not in _RUNS_CACHE:
        _RUNS_CACHE["runs"] = load_runs()
    return _RUNS_CACHE["runs"]


# ------------------------------------------------------------------------------------------------
# what each run must show, on any machine


def _series(history, name: str) -> list[float]:
    return list(history.values(name))


def signature_problems(key: str, history, healthy=None) -> list[str]:
    """What run ``key`` fails to show of its signature (empty: it shows all of it). ``healthy`` (the healthy
    run's history, from the same machine) is needed for ``prompt_in_mask``, whose signature is relative."""
    from ..diagnostics import diagnose, first_explosion_step

    problems: list[str] = []
    loss, margin = _series(history, "loss"), _series(history, "logratio/margin")
    chosen, rejected = _series(history, "logps/chosen"), _series(history, "logps/rejected")
    accuracy = _series(history, "rewards/accuracies")
    if not loss or len(loss) != len(margin) or not chosen:
        return ["the history has no training metrics"]
    late = lambda xs: sum(xs[-10:]) / len(xs[-10:])       # noqa: E731 - the last ten steps' mean
    early = lambda xs: sum(xs[:5]) / len(xs[:5])          # noqa: E731 - the first five steps' mean
    label = diagnose(history).label
    if key == "healthy":
        if label != "healthy":
            problems.append(f"diagnose() says {label!r}, expected 'healthy'")
        if not (late(loss) < LOG2 - 0.05 and late(accuracy) > 0.6 and 1.0 <= max(margin) < 50):
            problems.append(f"expected the loss below log 2 − 0.05 ({late(loss):.3f}), accuracy above 0.6 "
                            f"({late(accuracy):.2f}) and the margin between 1 and 50 nats ({max(margin):.2f})")
    elif key == "margin_explosion":
        if first_explosion_step(history, by_step=30) is None:
            problems.append(f"expected the unscaled margin past 50 nats by step 30; its largest was {max(margin[:30]):.1f}")
    elif key == "likelihood_displacement":
        if not (late(margin) - early(margin) > 2 and early(chosen) - late(chosen) > 2):
            problems.append(f"expected the margin to grow by more than 2 nats ({late(margin) - early(margin):.2f}) while the "
                            f"chosen log-prob falls by more than 2 ({early(chosen) - late(chosen):.2f})")
        if max(margin) >= 50:
            problems.append(f"the margin passed 50 nats ({max(margin):.1f}): that is an explosion, not displacement")
    elif key == "beta_too_large":
        if not (max(abs(m) for m in margin) < 1.0 and late(_series(history, "rewards/margins")) > 0.3):
            problems.append(f"expected the unscaled margin to stay under 1 nat ({max(abs(m) for m in margin):.2f}) while "
                            f"β times it rises above 0.3 ({late(_series(history, 'rewards/margins')):.2f})")
    elif key == "prompt_in_mask":
        if healthy is None:
            problems.append("the healthy run is needed to compare the log-probs with")
        else:
            gap = early(_series(healthy, "logps/chosen")) - early(chosen)
            if not gap > 5:
                problems.append(f"expected logps/chosen more than 5 nats below the healthy run's at the start; the gap is {gap:.2f}")
            if label == "margin_explosion":
                problems.append("the margin exploded: the masked run should train like the healthy one")
    elif key == "reference_is_policy":
        if max(abs(x - LOG2) for x in loss) > 1e-4 or max(abs(m) for m in margin) > 1e-3:
            problems.append(f"expected the loss at log 2 and the margin at 0 at every step (loss off by up to "
                            f"{max(abs(x - LOG2) for x in loss):.2g}, margin up to {max(abs(m) for m in margin):.2g})")
        moved = (late(chosen) - late(rejected)) - (early(chosen) - early(rejected))
        if not moved > 0.25:
            problems.append(f"expected the policy to move (chosen − rejected log-prob up by more than 0.25 nat; it moved {moved:.2f})")
    else:
        raise ValueError(f"unknown case {key!r}")
    return problems


# ------------------------------------------------------------------------------------------------
# the round


def pick_case(seed: int) -> str:
    """The case a round on ``seed`` shows (the same on every machine)."""
    keys = list(CASES)
    return keys[random.Random(int(seed) + 7919).randrange(len(keys))]


@dataclass
class Judgement:
    """The verdict on one answer: ``label_ok`` (the right letter), ``fix_ok`` (the first change matches the
    case's rubric), ``text`` (what to print)."""

    case: str
    answer: str | None
    fix: str
    label_ok: bool
    fix_ok: bool
    text: str

    @property
    def points(self) -> int:
        return int(self.label_ok) + int(self.fix_ok)


def judge_answer(key: str, answer: str | None, fix: str = "") -> Judgement:
    """Judge a letter (or a case key) and the sentence on the first change, against case ``key``."""
    case = CASES[key]
    right = LETTERS[list(CASES).index(key)]
    given = (answer or "").strip()
    if not given:
        text = "No diagnosis given yet: set DIAGNOSIS to a letter A–F and FIRST_FIX to a sentence, then run the cell again."
        return Judgement(key, None, fix, False, False, text)
    letter = given[:1].upper() if len(given) <= 2 else next((LETTERS[i] for i, k in enumerate(CASES) if k == given), "?")
    label_ok = letter == right
    fix_ok = any(re.search(pattern, fix or "", re.IGNORECASE) for pattern in case.fix_rubric)
    lines = [f"{'✓' if label_ok else '✗'} diagnosis: you said {given!r}; "
             + ("right." if label_ok else f"expected {right} ({case.option}).")]
    lines.append(f"{'✓' if fix_ok else '✗'} first change: "
                 + ("it names what the rubric asks for." if fix_ok else
                    f"the rubric asks for {case.fix_words}; your sentence was {fix!r}." if fix else
                    f"none given; the rubric asks for {case.fix_words}."))
    lines.append(f"What the curves show: {render_explanation(key)}")
    return Judgement(key, given, fix, label_ok, fix_ok, "\n".join(lines))


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Train the drill's diagnosis runs and write them to the assets.")
    parser.add_argument("--out", type=Path, default=DIAGNOSIS_RUNS_PATH)
    args = parser.parse_args()
    data = make_all_runs()
    runs = load_runs_from(data)
    for key, history in runs.items():
        problems = signature_problems(key, history, runs["healthy"]) + claim_problems(key, runs)
        print(f"{key:<26} {'signature ok' if not problems else '; '.join(problems)}")
    args.out.write_text(json.dumps(data) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
