"""The 60-minute paper-to-code drill: a clock, checks that report the time, and a scorecard.

The drill has four blocks (read 15 min → explain 5 → implement 30 → sanity-check 10). Lesson 10
calls, in order::

    drill = start_drill()                  # the start cell: records the time, shows the budgets
    drill.begin("explain")                 # at the top of each block
    drill.check("dpo_loss", check_dpo_loss, dpo_loss)   # in a check cell: verdict + elapsed time
    drill.scorecard(RUBRIC, EXPLANATION, dpo_loss=..., implicit_reward=..., toy_step=...)

Re-running the start cell does not reset the clock (pass ``restart=True`` to start over).

Variants: ``start_drill(variant=…)`` runs the drill on one paper of
:data:`rlhf_core.course.variants.VARIANTS` — ``"dpo"``, ``"ipo"``, ``"cdpo"``, ``"simpo"``, ``"orpo"`` — or
on ``"random"``: a variant other than the previous attempt's (this kernel's, else the last one saved
in the history), drawn from a seed that the start cell prints and the scorecard records. Left at
``None`` the variant is ``$RLHF_DRILL_VARIANT`` if set (how the tests and the grader fix it), else DPO
on a first attempt and ``"random"`` once the history holds one. The drill then shows that paper's
Read block, asks its questions, grades its rubric, scans for its red flags, skips the check cells of
the other variants' exercises, trains the toy with the learner's loss and runs the variant's sanity
plan (:mod:`rlhf_core.course.variant_sanity`).

The scorecard never raises: it reports what the learner's code actually does — the six sanity checks,
the stronger checks with their hints, the time spent per block, the self-graded rubric — and the
red flags: a written explanation that describes a PPO loop, a trained reward model or online
sampling, and code that forgets the reference.

Progress over attempts: the scorecard is a :class:`Scorecard` (a dict, as before) whose
:meth:`~Scorecard.save` appends the attempt to a local history — one JSON line in
``history.jsonl`` and the rendered card as ``attempt-<time>.md`` — in :func:`history_dir`
(``~/.rlhf_course/drill`` unless ``RLHF_DRILL_HISTORY`` or a ``path`` says otherwise; nothing
leaves the machine). :func:`drill_history` reads it back: a table of attempts (minutes per block,
sanity checks and stronger checks green, red flags, variant) and, with ``plot=True``, a figure.
"""

from __future__ import annotations

import datetime
import json
import os
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..checks import CheckFailed
from .variants import VARIANTS, Variant, find_red_flags, get_variant, pick_variant

__all__ = ["BLOCKS", "OPTIONAL_BLOCKS", "DIAGNOSIS_CURVES", "RUBRIC_ITEMS", "RED_FLAG_PATTERNS", "Drill", "Scorecard", "start_drill", "red_flags_in",
           "format_minutes", "history_dir", "drill_history", "HISTORY_ENV", "VARIANT_ENV", "DPO_ONLY_CHECKS",
           "choose_variant"]

BLOCKS: tuple[tuple[str, int], ...] = (("read", 15), ("explain", 5), ("implement", 30), ("sanity-check", 10))
#: The optional fifth block: a run's curves, what went wrong and what to change first (:mod:`rlhf_core.course.diagnosis_round`).
OPTIONAL_BLOCKS: tuple[tuple[str, int], ...] = (("diagnose", 10),)
#: The curves the diagnosis round shows, under TRL's names (and the course's unscaled margin).
DIAGNOSIS_CURVES = ("loss", "rewards/accuracies", "rewards/margins", "logratio/margin", "logps/chosen", "logps/rejected")

#: The DPO drill's rubric (each variant has its own: ``Variant.rubric``).
RUBRIC_ITEMS: tuple[str, ...] = VARIANTS["dpo"].rubric

#: Check labels of :meth:`Drill.check` that belong to the DPO drill only: another variant trains the toy
#: with its own loss through the course's step, and runs its own sanity plan.
DPO_ONLY_CHECKS: frozenset[str] = frozenset({"toy_dpo_step", "six sanity checks"})

#: The environment variable that fixes the variant of ``start_drill(variant=None)`` (tests, the grader).
VARIANT_ENV = "RLHF_DRILL_VARIANT"

#: (pattern, what the red flag is, what to say instead); matched case-insensitively in the explanation.
RED_FLAG_PATTERNS: tuple[tuple[str, str, str], ...] = (
    (r"\bppo\b|\brollouts?\b|\bvalue (function|head|network)\b|\badvantages?\b|\bclipp(ed|ing) (ratio|objective)",
     "described a PPO / RL loop",
     "DPO has no RL loop: no rollouts, no value function, no advantages — one supervised loss on fixed pairs"),
    (r"\btrain(s|ed|ing)? (a |the )?(separate )?reward model\b|\breward model (is )?(trained|fitted|learned)\b|\bfit(s|ting)? a reward model\b",
     "described training a reward model",
     "no reward model is trained: the policy's log-ratio to the reference is the (implicit) reward"),
    (r"\bonline\b|\bsampl(e|es|ing) from the (current )?policy\b|\bon-policy\b",
     "claimed DPO needs online or on-policy sampling",
     "vanilla DPO is offline: it trains on a fixed dataset of (x, y_w, y_l) pairs"),
)


def _display_markdown(text: str) -> None:
    """Show Markdown in a notebook (IPython's display), or print it elsewhere."""
    try:
        from IPython import get_ipython
        from IPython.display import Markdown, display
    except ImportError:  # pragma: no cover - IPython ships with Jupyter
        print(text)
        return
    if get_ipython() is None:
        print(text)
    else:
        display(Markdown(text))


def format_minutes(seconds: float) -> str:
    """``754.2`` → ``'12:34'``."""
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60:d}:{seconds % 60:02d}"


def red_flags_in(explanation: str) -> list[tuple[str, str]]:
    """``[(red flag, what to say instead)]`` found in a written explanation.

    A flag is not raised where the sentence negates it ("no PPO", "without a reward model"), nor in a
    sentence about the RLHF baseline that does not mention DPO ("RLHF trains a reward model, then PPO").
    """
    found = []
    for sentence in re.split(r"(?<=[.!?;])\s+|\n+", explanation or ""):
        lowered = sentence.lower()
        for pattern, flag, instead in RED_FLAG_PATTERNS:
            match = re.search(pattern, lowered)
            if not match:
                continue
            before = lowered[max(0, match.start() - 40):match.start()]
            if re.search(r"\b(no|not|without|never|nor|instead of|rather than|removes?|skips?|replaces?|no need for|avoids?)\b", before):
                continue
            if re.search(r"\b(rlhf|unlike|whereas|standard|classic(al)?|traditional|instructgpt)\b", lowered) and "dpo" not in lowered.replace("rlhf", ""):
                continue  # a sentence about the RLHF baseline, not a claim about DPO
            if (flag, instead) not in found:
                found.append((flag, instead))
    return found


@dataclass
class CheckRecord:
    name: str
    passed: bool
    message: str
    at_seconds: float


@dataclass
class Drill:
    """The state of one drill: when it started, when each block began, what each check said."""

    started: float = field(default_factory=time.time)
    block_starts: dict[str, float] = field(default_factory=dict)
    checks: dict[str, CheckRecord] = field(default_factory=dict)
    clock: Callable[[], float] = field(default=time.time, repr=False)
    variant: Variant = field(default_factory=lambda: VARIANTS["dpo"])
    diagnosis: object | None = None    # the diagnosis round's Judgement, once judged
    seed: int | None = None            # the seed of a "random" draw, else None
    left_out: str | None = None        # the variant a "random" draw left out (the previous attempt's)

    @property
    def rubric_items(self) -> tuple[str, ...]:
        """The rubric of this drill's variant."""
        return self.variant.rubric

    def red_flags(self, explanation: str) -> list[tuple[str, str]]:
        """``[(red flag, what to say instead)]`` in a written explanation, for this drill's variant."""
        return red_flags_in(explanation) if self.variant.key == "dpo" else find_red_flags(self.variant, explanation)

    def applies(self, name: str) -> bool:
        """Whether the check labelled ``name`` is part of this drill: another variant's exercise is not, nor
        a DPO-only check (:data:`DPO_ONLY_CHECKS`) when the variant is not DPO."""
        exercises = {v.exercise for v in VARIANTS.values()}
        if name in exercises:
            return name == self.variant.exercise
        return not (name in DPO_ONLY_CHECKS and self.variant.key != "dpo")

    def show_read(self) -> None:
        """Display the variant's Read block (citation, problem, idea, evidence, limitations, conventions)."""
        v = self.variant
        text = (f"### {v.title}\n\n*{v.citation}*\n\n"
                f"**The problem.** {v.read.problem}\n\n**The idea.** {v.read.idea}\n\n"
                f"**The evidence.** {v.read.evidence}\n\n**Limitations.** {v.read.limitations}\n\n"
                f"**What you will implement:** `{v.exercise}`, on {v.log_probs} log-probs, "
                f"{'with' if v.uses_reference else 'without'} a frozen reference model"
                f" (drill values: {', '.join(f'{k} = {x:g}' for k, x in v.params.items()) or 'no hyper-parameter'})."
                + (f" {v.notes}" if v.notes else ""))
        _display_markdown(text)

    def show_debrief(self) -> None:
        """Display the variant's debrief questions, each with its model answer folded away."""
        parts = [f"### Debrief questions for {self.variant.title}"]
        for i, (question, answer) in enumerate(self.variant.debrief, 1):
            parts.append(f"**{i}. {question}**\n<details><summary>Model answer</summary>\n\n{answer}\n</details>")
        _display_markdown("\n\n".join(parts))

    def _toy_with(self, loss: Callable) -> dict:
        """The toy task trained with ``loss`` (this non-DPO variant's signature) through the course's step."""
        from ..toy import run_toy_task
        from .variants import TOY_READOUT_BETA, toy_loss_fn

        return run_toy_task(beta=self.variant.params.get("beta", TOY_READOUT_BETA), loss_fn=toy_loss_fn(self.variant, loss))

    def train_toy(self, loss: Callable | None, toy_step: Callable | None = None) -> dict:
        """Train the toy policy for this drill: DPO with your ``toy_dpo_step`` (the library's while yours does not
        pass its check); another variant with your loss (the library's while yours does not pass) through the
        course's step. Returns :func:`rlhf_core.toy.run_toy_task`'s dict."""
        from ..toy import run_toy_task
        from .notebook import yours_or_reference

        if self.variant.key == "dpo":
            return run_toy_task(step_fn=yours_or_reference("toy_dpo_step", toy_step))
        return self._toy_with(yours_or_reference(self.variant.exercise, loss))

    def sanity_checks(self, loss: Callable | None, implicit_reward: Callable | None = None,
                      toy_result: dict | None = None, quiet: bool = False) -> list:
        """The variant's sanity plan on your functions (:func:`rlhf_core.course.variant_sanity.run_variant_sanity`);
        never raises. For DPO the check cell of the six sanity checks does this with raising checks."""
        from .variant_sanity import run_variant_sanity

        toy_error = ""
        if toy_result is None and loss is not None and self.variant.key != "dpo":
            try:  # checks 2 and 5 read a toy run trained with *your* loss (no fallback)
                toy_result = self._toy_with(loss)
            except Exception as exc:  # a stub or a broken loss: 2 and 5 say so
                toy_error = f"{type(exc).__name__}: {str(exc)[:120]}"
        results = run_variant_sanity(self.variant, loss, implicit_reward, toy_result, quiet=True)
        if toy_error:
            _toy_failed(results, f"your {self.variant.exercise}", toy_error)
        if not quiet:
            for r in results:
                print(r.message)
        return results

    def elapsed(self) -> float:
        return self.clock() - self.started

    def current_block(self) -> tuple[str, int] | None:
        begun = [(t, name) for name, t in self.block_starts.items()]
        if not begun:
            return None
        name = max(begun)[1]
        return name, dict(BLOCKS + OPTIONAL_BLOCKS)[name]

    def status_line(self) -> str:
        line = f"⏱ {format_minutes(self.elapsed())} elapsed of 60:00"
        block = self.current_block()
        if block:
            name, budget = block
            spent = self.clock() - self.block_starts[name]
            over = " — over budget, move on" if spent > budget * 60 else ""
            line += f" · {name}: {format_minutes(spent)} of {budget}:00{over}"
        return line

    def begin(self, block: str) -> None:
        """Mark the start of a block (``read``, ``explain``, ``implement``, ``sanity-check``), print the clock and
        what the block asks of this variant: the questions (explain), the exercise (implement), the sanity
        plan (sanity-check)."""
        if block not in dict(BLOCKS + OPTIONAL_BLOCKS):
            raise ValueError(f"unknown block {block!r}; the blocks are {[b for b, _ in BLOCKS + OPTIONAL_BLOCKS]}")
        self.block_starts.setdefault(block, self.clock())
        print(self.status_line())
        v = self.variant
        if block == "explain":
            print(f"\nAnswer out loud, then in EXPLANATION ({v.title}):")
            for i, question in enumerate(v.explain_questions, 1):
                print(f"  {i}. {question}")
        elif block == "implement":
            if v.key == "dpo":
                print("\nYour exercises: dpo_loss, implicit_reward, toy_dpo_step (the other variants' cells skip).")
            else:
                print(f"\nYour exercises: {v.exercise} (Exercise 1, {v.title.split(' — ')[0]}) and implicit_reward; "
                      "the toy trains with your loss through the course's step, so toy_dpo_step and the other "
                      "variants' cells skip.")
        elif block == "sanity-check" and v.key != "dpo":
            print(f"\nThe sanity plan for {v.title.split(' — ')[0]} (✓ applies, ↻ replaced, – does not apply):")
            for step in v.sanity:
                mark = "✓" if step.applies else "–" if step.number == 2 else "↻"
                print(f"  {mark} {step.number}. {step.name}: {step.check}")

    def check(self, name: str, check_fn: Callable, *args, **kwargs) -> None:
        """Run one check, record its verdict, print the elapsed time; a failure is re-raised unchanged.

        A check that is not part of this drill's variant (:meth:`applies`) is skipped with a line saying so."""
        if not self.applies(name):
            print(f"— skipped: {name} is not part of this attempt ({self.variant.title.split(' — ')[0]}); "
                  f"your Exercise 1 is {self.variant.exercise}.")
            return
        try:
            check_fn(*args, **kwargs)
        except AssertionError as exc:
            self.checks[name] = CheckRecord(name, False, str(exc), self.elapsed())
            print(self.status_line())
            raise
        self.checks[name] = CheckRecord(name, True, "passed", self.elapsed())
        print(self.status_line())

    def block_times(self) -> list[tuple[str, int, float | None]]:
        """``(block, budget minutes, seconds spent or None)``; a block lasts until the next one begins."""
        starts = sorted((t, name) for name, t in self.block_starts.items())
        spent: dict[str, float] = {}
        for i, (t, name) in enumerate(starts):
            end = starts[i + 1][0] if i + 1 < len(starts) else self.clock()
            spent[name] = end - t
        return [(name, budget, spent.get(name)) for name, budget in BLOCKS] + [
            (name, budget, spent[name]) for name, budget in OPTIONAL_BLOCKS if name in spent]

    def diagnosis_case(self, seed: int | None = None, plot: bool = True) -> str:
        """The diagnosis round: draw one of the course's runs (:data:`rlhf_core.course.diagnosis_round.CASES`, from
        ``seed``, else this drill's seed, else a fresh one), plot its logged curves and print the options.
        Returns the case's key (what :meth:`judge_diagnosis` judges against)."""
        from . import diagnosis_round as dd

        if seed is None:
            seed = self.seed if self.seed is not None else random.SystemRandom().randrange(1_000_000)
        key = dd.pick_case(seed)
        self._diagnosis_case, self.diagnosis = key, None
        history = dd.load_runs()[key]
        if plot:
            from ..plots import plot_training_curves

            plot_training_curves(history, DIAGNOSIS_CURVES, title=f"A DPO run on the course's task (round seed {seed}): "
                                                                  "what went wrong?")
        print(f"Here are the logged curves of one run ({dd.STEPS} steps, TRL's metric names; logratio/margin is the "
              "unscaled margin). Which is it?")
        print(dd.options_text())
        print("Answer with DIAGNOSIS = a letter and FIRST_FIX = one sentence on the first thing you would change. "
              "One point for the right letter, one for a first change that names the lever the model answer names "
              "(judged by keywords). Then run the next cell.")
        return key

    def judge_diagnosis(self, answer: str | None, first_fix: str = "") -> object:
        """Judge the diagnosis round's answer (prints the verdict and the model answer); never raises. Before
        :meth:`diagnosis_case` it says so."""
        from .diagnosis_round import judge_answer

        key = getattr(self, "_diagnosis_case", None)
        if key is None:
            print("Run drill.diagnosis_case() first: it shows the run to diagnose.")
            return None
        judgement = judge_answer(key, answer, first_fix)
        self.diagnosis = judgement if judgement.answer is not None else None
        print(judgement.text)
        return judgement

    def scorecard(self, rubric: dict[str, bool | None] | None = None, explanation: str = "", *,
                  dpo_loss: Callable | None = None, implicit_reward: Callable | None = None,
                  toy_step: Callable | None = None, variant_loss: Callable | None = None,
                  print_it: bool = True) -> dict:
        """Run everything on the learner's functions and print the scorecard; never raises.

        ``variant_loss`` is the learner's loss of this drill's variant (for DPO, ``dpo_loss`` is it).
        Returns a :class:`Scorecard`: ``{"sanity": [...], "checks": {...}, "blocks": [...], "rubric": {...},
        "red_flags": [...]}``, which ``.save()`` adds to the local drill history.
        """
        from .. import checks as _checks
        from ..checks import run_sanity_checks
        from ..toy import run_toy_task

        v = self.variant
        dpo = v.key == "dpo"
        if dpo:
            toy_result, toy_error = None, ""
            try:
                toy_result = run_toy_task(step_fn=toy_step) if toy_step is not None else None
            except Exception as exc:  # the learner's step may be a stub or broken
                toy_error = f"{type(exc).__name__}: {str(exc)[:120]}"
            sanity = run_sanity_checks(dpo_loss, implicit_reward, toy_result, quiet=True)
            if toy_error:
                _toy_failed(sanity, "your toy_dpo_step", toy_error)
        else:
            sanity = self.sanity_checks(variant_loss, implicit_reward, quiet=True)
        stronger = {}
        named = ((("dpo_loss", dpo_loss), ("implicit_reward", implicit_reward), ("toy_dpo_step", toy_step)) if dpo
                 else ((v.exercise, variant_loss), ("implicit_reward", implicit_reward)))
        for name, fn in named:
            if fn is None:
                continue
            try:
                _checks.check(_checks.EXERCISES[name], fn, quiet=True)
                stronger[name] = (True, "passed")
            except CheckFailed as exc:
                stronger[name] = (False, str(exc))
        flags = self.red_flags(explanation)
        forgot_reference = v.uses_reference and (
            any("reference term" in r.message for r in sanity if not r.passed)
            or any("drop log π_ref" in msg or "reference term" in msg for ok, msg in stronger.values() if not ok))
        if forgot_reference:
            flags.append(("forgot the reference term in the loss",
                          "the loss compares log-ratios against the frozen reference: (log π − log π_ref) for each response"))
        rubric = dict(rubric or {})
        card = Scorecard(sanity=sanity, checks=stronger, blocks=self.block_times(), rubric=rubric, red_flags=flags,
                         diagnosis=self.diagnosis)
        card.variant, card.seed, card.left_out, card.rubric_items = v.key, self.seed, self.left_out, v.rubric
        card.total_seconds, card.text = self.elapsed(), self._render(card)
        if print_it:
            print(card.text)
        return card

    def _render(self, card: dict) -> str:
        lines = ["DRILL SCORECARD", "=" * 15, f"variant: {self.variant.title} ({self.variant.citation.year})"
                 + (f", drawn with seed {self.seed}" if self.seed is not None else ""),
                 f"total time {format_minutes(self.elapsed())} (budget 60:00)", ""]
        lines.append("Time per block")
        for name, budget, spent in card["blocks"]:
            if spent is None:
                lines.append(f"  {name:<13} not started")
            else:
                mark = "over budget" if spent > budget * 60 else "ok"
                lines.append(f"  {name:<13} {format_minutes(spent):>6} of {budget}:00  {mark}")
        applying = [r for r in card["sanity"] if r.applies]
        passed = sum(r.passed for r in applying)
        left = len(card["sanity"]) - len(applying)
        lines += ["", f"The six sanity checks: {passed}/6" if not left else
                  f"The sanity checks: {passed}/{len(applying)} ({left} of the six does not apply to this variant)"]
        for r in card["sanity"]:
            lines.append(f"  {'–' if not r.applies else '✓' if r.passed else '✗'} {r.number}. {r.name}")
            if r.applies and not r.passed:
                lines.append(f"       {r.message}")
        lines += ["", "Stronger checks (catch what the six miss)"]
        for name, (ok, message) in card["checks"].items():
            lines.append(f"  {'✓' if ok else '✗'} check_{name}")
            if not ok:
                lines.append(f"       {message}")
        lines += ["", "Rubric (self-graded: set each item to True or False in RUBRIC)"]
        for item in self.variant.rubric:
            value = card["rubric"].get(item)
            lines.append(f"  {'✓' if value is True else '✗' if value is False else '?'} {item}")
        judged = card.get("diagnosis")
        if judged is not None:
            lines += ["", f"Diagnosis round ({judged.case}): {judged.points}/2"]
            lines += [f"  {line}" for line in judged.text.splitlines()[:2]]
        lines += ["", "Red flags"]
        if not card["red_flags"]:
            lines.append("  none found")
        for flag, instead in card["red_flags"]:
            lines.append(f"  ⚠ {flag} — {instead}")
        return "\n".join(lines)


def _toy_failed(results: list, trained_with: str, error: str) -> None:
    """Say in checks 2 and 5 (those that apply) that the toy run they read could not be trained."""
    for r in results:
        if r.number in (2, 5) and r.applies:
            r.message = f"✗ sanity check {r.number} — not run: training the toy policy with {trained_with} failed ({error})"


_CURRENT: Drill | None = None


def _previous_variant(history: str | os.PathLike | None) -> str | None:
    """The variant of the last attempt: this kernel's drill, else the last one saved in the history."""
    if _CURRENT is not None:
        return _CURRENT.variant.key
    records, _ = _read_history(history_dir(history))
    return records[-1].get("variant", "dpo") if records else None


def choose_variant(variant: str | Variant | None = None, seed: int | None = None,
                   history: str | os.PathLike | None = None) -> tuple[Variant, int | None, str | None]:
    """``(variant, seed, left out)`` for :func:`start_drill`.

    ``None`` means ``$RLHF_DRILL_VARIANT`` when set, else ``"dpo"`` on a first attempt and ``"random"`` after.
    ``"random"`` draws, from ``seed`` (a fresh one when None), a variant other than the previous attempt's:
    two random attempts in a row never repeat a paper. The seed and the variant left out are returned so
    that the scorecard can record them (the same two give the same draw on every machine).
    """
    previous = _previous_variant(history)
    if variant is None:
        variant = os.environ.get(VARIANT_ENV) or ("random" if previous is not None else "dpo")
    if variant != "random":
        return get_variant(variant), None, None
    seed = random.SystemRandom().randrange(1_000_000) if seed is None else int(seed)
    return VARIANTS[pick_variant(seed, exclude=previous)], seed, previous


def start_drill(variant: str | Variant | None = None, seed: int | None = None, restart: bool = False,
                clock: Callable[[], float] = time.time, history: str | os.PathLike | None = None) -> Drill:
    """The drill of this kernel, started now if it has not been (``restart=True`` starts over).

    ``variant``: a key of :data:`rlhf_core.course.variants.VARIANTS`, ``"random"``, or None (see
    :func:`choose_variant`); ``seed`` fixes a random draw; ``history`` is where earlier attempts are read.
    """
    global _CURRENT
    if _CURRENT is None or restart:
        chosen, drawn_seed, left_out = choose_variant(variant, seed, history)
        _CURRENT = Drill(started=clock(), clock=clock, variant=chosen, seed=drawn_seed, left_out=left_out)
        print("Drill started. Budgets: " + " → ".join(f"{name} {minutes} min" for name, minutes in BLOCKS) + " (60 min)")
        how = ""
        if drawn_seed is not None:
            how = (f", drawn at random with seed {drawn_seed}"
                   + (f" (leaving out {left_out}, the previous attempt's)" if left_out else "")
                   + f"; start_drill(variant={chosen.key!r}, restart=True) repeats it")
        print(f"This attempt's paper: {chosen.title} — {chosen.citation.authors.split(',')[0]} et al. "
              f"{chosen.citation.year}{how}.")
    else:
        print(f"The drill is already running, on {_CURRENT.variant.title} (start_drill(restart=True) starts over).")
    _CURRENT.begin("read")
    return _CURRENT


# ------------------------------------------------------------------------------------------------
# progress over attempts

HISTORY_ENV = "RLHF_DRILL_HISTORY"
_HISTORY_FILE = "history.jsonl"


def history_dir(path: str | os.PathLike | None = None) -> Path:
    """Where the drill history lives: ``path`` if given, else ``$RLHF_DRILL_HISTORY``, else ``~/.rlhf_course/drill``."""
    return Path(path or os.environ.get(HISTORY_ENV) or Path.home() / ".rlhf_course" / "drill").expanduser()


class Scorecard(dict):
    """The drill's scorecard: the dict :meth:`Drill.scorecard` always returned, plus :meth:`save`."""

    total_seconds: float = 0.0
    text: str = ""
    variant: str = "dpo"
    seed: int | None = None
    left_out: str | None = None
    rubric_items: tuple[str, ...] = RUBRIC_ITEMS

    def record(self, saved_at: datetime.datetime | None = None) -> dict:
        """The attempt as one JSON-able dict (what :meth:`save` appends to ``history.jsonl``)."""
        saved_at = saved_at or datetime.datetime.now(datetime.timezone.utc)
        return {
            "version": 1,
            "saved_at": saved_at.isoformat(timespec="seconds"),
            "variant": self.variant,
            "seed": self.seed,
            "left_out": self.left_out,
            "total_seconds": round(float(self.total_seconds), 1),
            "blocks": {name: (None if spent is None else round(float(spent), 1)) for name, _, spent in self["blocks"]},
            "sanity": [{"number": r.number, "name": r.name, "passed": bool(r.passed), "applies": bool(r.applies)}
                       for r in self["sanity"]],
            "checks": {name: bool(ok) for name, (ok, _) in self["checks"].items()},
            "rubric": {item: value for item, value in self["rubric"].items()},
            "red_flags": [flag for flag, _ in self["red_flags"]],
            "diagnosis": (None if self.get("diagnosis") is None else
                          {"case": self["diagnosis"].case, "points": self["diagnosis"].points}),
        }

    def save(self, path: str | os.PathLike | None = None) -> Path | None:
        """Append this attempt to the drill history in :func:`history_dir` (``path`` overrides it): one JSON
        line in ``history.jsonl`` and the rendered card as ``attempt-<UTC time>.md``. Returns the directory,
        or ``None`` (with a one-line explanation) when it cannot be written."""
        where = history_dir(path)
        record = self.record()
        try:
            where.mkdir(parents=True, exist_ok=True)
            with open(where / _HISTORY_FILE, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        except OSError as exc:   # a read-only home (a sandbox, a locked-down lab machine): say so, lose nothing else
            print(f"Could not save this attempt to {where} ({type(exc).__name__}: {exc.strerror or exc}); "
                  f"pass card.save(path) with a folder you can write to, or set {HISTORY_ENV}.")
            return None
        stamp = record["saved_at"].replace(":", "").replace("-", "").replace("+0000", "Z")
        name, n = f"attempt-{stamp}.md", 1
        while (where / name).exists():   # two saves in one second
            n += 1
            name = f"attempt-{stamp}-{n}.md"
        (where / name).write_text(f"# Drill attempt, {record['saved_at']} (variant {record['variant']})\n\n"
                                  f"```\n{self.text}\n```\n", encoding="utf-8")
        print(f"Saved this attempt to {where / _HISTORY_FILE} (and {name}); drill_history() shows all of them.")
        return where


def _read_history(where: Path) -> tuple[list[dict], list[str]]:
    records, problems = [], []
    file = where / _HISTORY_FILE
    if not file.exists():
        return records, problems
    for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or "blocks" not in record or "sanity" not in record:
                raise ValueError("it is not a saved scorecard")
            records.append(record)
        except (ValueError, TypeError) as exc:
            problems.append(f"line {number} of {file} was skipped: it could not be read ({exc}).")
    return records, problems


def drill_history(path: str | os.PathLike | None = None, plot: bool = True, print_it: bool = True) -> list[dict]:
    """Every saved attempt, oldest first: prints a table (minutes per block, sanity checks and stronger
    checks green, red flags, variant) and, with ``plot=True`` and at least one attempt, draws
    :func:`rlhf_core.plots.plot_drill_history`. Lines of the history that cannot be read are skipped
    with a note. Returns the records."""
    where = history_dir(path)
    records, problems = _read_history(where)
    if print_it:
        for problem in problems:
            print(problem)
        if not records:
            print(f"No saved attempts in {where} yet: finish a drill and run card.save().")
        else:
            names = [name for name, _ in BLOCKS] + [name for name, _ in OPTIONAL_BLOCKS
                                                    if any(r["blocks"].get(name) is not None for r in records)]
            print(f"{'#':>2}  {'saved (UTC)':<20}{'variant':<9}{'total':>6}  " + "".join(f"{n:>13}" for n in names)
                  + f"{'sanity':>8}{'checks':>8}  red flags")
            for i, r in enumerate(records, 1):
                blocks = "".join(f"{'—' if r['blocks'].get(n) is None else format_minutes(r['blocks'][n]):>13}"
                                 for n in names)
                applying = [s for s in r["sanity"] if s.get("applies", True)]
                sanity = f"{sum(s['passed'] for s in applying)}/{len(applying)}"
                checks = f"{sum(r['checks'].values())}/{len(r['checks'])}" if r.get("checks") else "—"
                flags = "; ".join(r.get("red_flags") or []) or "none"
                print(f"{i:>2}  {r['saved_at'][:19].replace('T', ' '):<20}{r.get('variant', 'dpo'):<9}"
                      f"{format_minutes(r.get('total_seconds', 0)):>6}  {blocks}{sanity:>8}{checks:>8}  {flags}")
            done = sorted({r.get("variant", "dpo") for r in records})
            print(f"\nvariants done: {', '.join(done)}")
    if plot and records:
        from ..plots import plot_drill_history

        plot_drill_history(records, BLOCKS)
    return records
