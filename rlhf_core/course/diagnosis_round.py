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

__all__ = ["Case", "CASES", "LETTERS", "DIAGNOSIS_RUNS_PATH", "STEPS", "make_run", "make_all_runs", "load_runs",
           "signature_problems", "pick_case", "options_text", "judge_answer", "Judgement"]

STEPS = 60          # steps per run: every signature shows by then
LOG2 = math.log(2.0)


@dataclass(frozen=True)
class Case:
    """One run of the diagnosis round: ``option`` (what the learner picks), ``changes`` (to the course default,
    :data:`rlhf_core.recipes.DEFAULT_DPO`), ``bug`` (an injected bug, or None), ``fix_rubric`` (the answer about
    the first change earns its point when it matches one of these regexes, case-insensitive), ``explanation``
    (the model answer, shown after the learner answers)."""

    key: str
    option: str
    changes: dict
    bug: str | None
    fix_rubric: tuple[str, ...]
    fix_words: str
    explanation: str


CASES: dict[str, Case] = {c.key: c for c in (
    Case("healthy", "nothing is wrong: a healthy run", {}, None,
         (r"\bnothing\b", r"\bkeep\b", r"\bno change\b", r"\btrain (it )?longer\b", r"\bmore steps\b", r"\bheld[- ]out\b",
          r"\bsamples?\b"),
         "nothing / keep it (look at held-out metrics and samples before trusting it)",
         "The loss falls smoothly from log 2, accuracy climbs, the unscaled margin (logratio/margin) grows to a few "
         "nats and levels off, and the chosen log-prob stays roughly where it was while the rejected one falls. "
         "Nothing to fix; check held-out margins and samples before calling it done."),
    Case("margin_explosion", "margin explosion: the loss saturates while the margin grows without bound",
         {"batch_size": 1, "lr": 1e-2, "beta": 0.1, "warmup_steps": 0}, None,
         (r"\bbatch\b", r"\blearning rate\b|\blr\b", r"\bbeta\b|β", r"\bipo\b", r"\bcap\b|\bclip\b|\bhinge\b"),
         "a bigger batch, a smaller learning rate, a larger β, or a bounded loss (IPO, a margin cap)",
         "Within a few dozen steps the loss is ~0 and accuracy 1, yet logratio/margin keeps climbing into the "
         "hundreds of nats: each single-pair update pushes the rejected response's log-prob down without limit, "
         "and the saturated loss no longer says so. First change: a bigger batch or a smaller step (lesson 09), "
         "or a loss with a finite target (IPO)."),
    Case("likelihood_displacement", "likelihood displacement: the margin grows while the chosen log-prob falls",
         {"lr": 3e-3, "beta": 0.1}, None,
         (r"\brpo\b", r"\bnll\b|\bsft (loss|term)\b|\bcross[- ]entropy\b", r"\blearning rate\b|\blr\b", r"\bbeta\b|β"),
         "add an NLL term on the chosen responses (RPO), or a smaller learning rate / larger β",
         "The margin grows and accuracy is high, but logps/chosen falls steadily: the policy separates the pair by "
         "pushing both responses down, the rejected one faster. Probability mass goes to responses that are in "
         "neither. First change: an NLL term on the chosen responses (RPO: the course's rpo_alpha; in TRL 1.16 "
         "loss_type=[\"sigmoid\", \"sft\"] with loss_weights), or a gentler step."),
    Case("beta_too_large", "β is too large: the policy barely moves from the reference", {"beta": 5.0}, None,
         (r"(lower|smaller|decrease|reduce|reducing|lowering)\w* (the )?(beta|β)", r"(beta|β) (is )?too (large|big|high)",
          r"(beta|β)\s*(=|to)\s*0?\.\d"),
         "a smaller β",
         "rewards/margins (β times the margin) rises, but the unscaled logratio/margin stays a fraction of a nat: "
         "with β = 5 the KL penalty dominates and the smallest move already satisfies the loss. First change: a "
         "smaller β (0.1–0.5 on this task)."),
    Case("prompt_in_mask", "a mask bug: the log-probs include the prompt tokens", {}, "prompt_in_mask",
         (r"\bmask\b", r"\bprompt\b", r"\bresponse[- ]only\b|\bresponse tokens\b"),
         "fix the mask so that only response tokens are scored",
         "The margins and accuracies look like a healthy run's — the prompt is the same in both responses, so its "
         "log-probs cancel in every difference — but logps/chosen and logps/rejected are far more negative than "
         "responses of this length can be: they sum over the prompt too. Anything that reads absolute log-probs "
         "(length normalisation, an NLL term, lesson 04's checks) is wrong. First change: score response tokens "
         "only (the response mask)."),
    Case("reference_is_policy", "a frozen-reference bug: the reference log-probs come from the policy itself", {},
         "reference_is_policy",
         (r"\breference\b.*\b(frozen|copy|once|separate|detach|fixed|precomput)", r"\b(frozen|copy|separate)\b.*\breference\b",
          r"\bpi_ref\b|π_ref|\bref(erence)? (model|log-?probs)\b"),
         "take the reference log-probs from a frozen copy of the starting model, computed once",
         "The loss is exactly log 2 at every step and every reward and margin is 0, yet logps/chosen rises and "
         "logps/rejected falls: the policy moves, but the loss compares it with itself. The 'reference' log-probs "
         "are recomputed from the current policy (under no_grad), so the log-ratios are always 0 and the KL anchor "
         "is gone. First change: a frozen copy of the starting model as the reference, its log-probs computed once."),
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
    lines.append(f"What the curves show: {case.explanation}")
    return Judgement(key, given, fix, label_ok, fix_ok, "\n".join(lines))


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Train the drill's diagnosis runs and write them to the assets.")
    parser.add_argument("--out", type=Path, default=DIAGNOSIS_RUNS_PATH)
    args = parser.parse_args()
    data = make_all_runs()
    runs = load_runs_from(data)
    for key, history in runs.items():
        problems = signature_problems(key, history, runs["healthy"])
        print(f"{key:<26} {'signature ok' if not problems else '; '.join(problems)}")
    args.out.write_text(json.dumps(data) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
