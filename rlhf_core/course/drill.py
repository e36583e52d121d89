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
red flags: a sentence of the written explanation that asserts what the paper does not do (for DPO: a
PPO loop, a trained reward model, online sampling, a trained reference), quoted, and code that forgets
the reference.

Progress over attempts: the scorecard is a :class:`Scorecard` (a dict, as before) whose
:meth:`~Scorecard.save` appends the attempt to a local history — one JSON line in
``history.jsonl`` and the rendered card as ``attempt-<time>.md`` — in :func:`history_dir`
(``~/.rlhf_course/drill`` unless ``RLHF_DRILL_HISTORY`` or a ``path`` says otherwise; nothing
leaves the machine). :func:`drill_history` reads it back: a table of attempts (minutes per block,
sanity checks and stronger checks green, red flags, variant) and, with ``plot=True``, a figure.

No paper is a special case: everything in which one differs from another is a field of its
:class:`~rlhf_core.course.variants.Variant` record (its exercises, the function that trains the toy, its own check
cells, its sanity plan, its red flags). The parts live beside this module — the clock in
:mod:`~rlhf_core.course.drill_clock`, the scorecard in :mod:`~rlhf_core.course.scorecard`, the history in
:mod:`~rlhf_core.course.drill_history`, the red-flag scanner in :mod:`~rlhf_core.course.red_flags` — and every name
this module always had is still importable from it.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .drill_clock import BLOCKS, OPTIONAL_BLOCKS, DrillClock, format_minutes
from .drill_history import HISTORY_ENV, drill_history, history_dir, read_history
from .red_flags import RaisedFlag
from .scorecard import Scorecard, score_attempt, toy_failed
from .variant_types import SHARED_EXERCISE
from .variants import DEFAULT_VARIANT, VARIANTS, Variant, find_red_flags, get_variant, owner_of_check, pick_variant

__all__ = ["BLOCKS", "OPTIONAL_BLOCKS", "DIAGNOSIS_CURVES", "RUBRIC_ITEMS", "RED_FLAG_PATTERNS", "Drill", "Scorecard",
           "start_drill", "red_flags_in", "format_minutes", "history_dir", "drill_history", "HISTORY_ENV",
           "VARIANT_ENV", "choose_variant"]

#: The curves the diagnosis round shows, under TRL's names (and the course's unscaled margin).
DIAGNOSIS_CURVES = ("loss", "rewards/accuracies", "rewards/margins", "logratio/margin", "logps/chosen", "logps/rejected")

#: The rubric of the first attempt's variant, DPO (each variant has its own: ``Variant.rubric``).
RUBRIC_ITEMS: tuple[str, ...] = VARIANTS[DEFAULT_VARIANT].rubric


#: The environment variable that fixes the variant of ``start_drill(variant=None)`` (tests, the grader).
VARIANT_ENV = "RLHF_DRILL_VARIANT"

#: ``(pattern, what the red flag is, what to say instead)`` of the first attempt's variant (its ``red_flags``).
RED_FLAG_PATTERNS: tuple[tuple[str, str, str], ...] = tuple(
    (f.pattern, f.flag, f.why) for f in VARIANTS[DEFAULT_VARIANT].red_flags)


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


def red_flags_in(explanation: str) -> list[RaisedFlag]:
    """``[(red flag, what to say instead)]`` of the first attempt's variant (DPO) asserted in a written explanation,
    each quoting its sentence: :func:`rlhf_core.course.variants.find_red_flags`, the scanner every variant uses."""
    return find_red_flags(DEFAULT_VARIANT, explanation)


@dataclass
class CheckRecord:
    name: str
    passed: bool
    message: str
    at_seconds: float


def _error(exc: Exception) -> str:
    return f"{type(exc).__name__}: {str(exc)[:120]}"


@dataclass
class Drill(DrillClock):
    """The state of one drill: when it started, when each block began, what each check said."""

    checks: dict[str, CheckRecord] = field(default_factory=dict)
    variant: Variant = field(default_factory=get_variant)
    diagnosis: object | None = None    # the diagnosis round's Judgement, once judged
    seed: int | None = None            # the seed of a "random" draw, else None
    left_out: str | None = None        # the variant a "random" draw left out (the previous attempt's)

    @property
    def rubric_items(self) -> tuple[str, ...]:
        """The rubric of this drill's variant."""
        return self.variant.rubric

    def red_flags(self, explanation: str) -> list[RaisedFlag]:
        """``[(red flag, what to say instead)]`` in a written explanation, for this drill's variant; each quotes the
        sentence that raised it (``.sentence``)."""
        return find_red_flags(self.variant, explanation)

    def applies(self, name: str) -> bool:
        """Whether the check labelled ``name`` is part of this drill: one that belongs to another variant alone (its
        exercise, or one of its ``own_checks``) is not."""
        owner = owner_of_check(name)
        return owner is None or owner == self.variant.key

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
        """The toy task trained with ``loss`` (this variant's signature) through the course's step."""
        from ..toy import run_toy_task
        from .variants import TOY_READOUT_BETA, toy_loss_fn

        return run_toy_task(beta=self.variant.params.get("beta", TOY_READOUT_BETA), loss_fn=toy_loss_fn(self.variant, loss))

    def _toy_trainer(self, fn: Callable) -> dict:
        """The toy task trained by ``fn``: the variant's toy step if it has one (DPO's ``toy_dpo_step``), else its loss
        through the course's step."""
        from ..toy import run_toy_task
        from .variants import TOY_READOUT_BETA

        if self.variant.toy_step:
            return run_toy_task(beta=self.variant.params.get("beta", TOY_READOUT_BETA), step_fn=fn)
        return self._toy_with(fn)

    def learners_toy(self, yours: dict[str, Callable | None]) -> tuple[dict | None, str, str]:
        """``(toy run, what trained it, error)`` with the learner's own function of ``yours`` (by exercise name):
        ``(None, "", "")`` when it is not given, ``(None, "your …", "the error")`` when training raised."""
        trainer = self.variant.toy_step or self.variant.exercise
        if yours.get(trainer) is None:
            return None, "", ""
        try:
            return self._toy_trainer(yours[trainer]), f"your {trainer}", ""
        except Exception as exc:  # a stub or a broken function: checks 2 and 5 say so
            return None, f"your {trainer}", _error(exc)

    def train_toy(self, loss: Callable | None, toy_step: Callable | None = None) -> dict:
        """Train the toy policy for this drill: with your toy step where the variant has one (DPO's ``toy_dpo_step``),
        else with your loss through the course's step — the library's while yours does not pass its check. Returns
        :func:`rlhf_core.toy.run_toy_task`'s dict."""
        from .notebook import yours_or_reference

        trainer = self.variant.toy_step or self.variant.exercise
        return self._toy_trainer(yours_or_reference(trainer, toy_step if self.variant.toy_step else loss))

    def sanity_checks(self, loss: Callable | None, implicit_reward: Callable | None = None,
                      toy_result: dict | None = None, quiet: bool = False, toy_step: Callable | None = None) -> list:
        """The variant's sanity plan on your functions (:func:`rlhf_core.course.variant_sanity.run_variant_sanity`);
        never raises. Checks 2 and 5 read ``toy_result``, else a toy run trained by your own function (your toy step
        where the variant has one, else your loss). For DPO the lesson's check cell of the six sanity checks runs
        the same six with raising checks."""
        from .variant_sanity import run_variant_sanity

        v, trained_with, toy_error = self.variant, "", ""
        if toy_result is None:
            yours = {v.exercise: loss} | ({v.toy_step: toy_step} if v.toy_step else {})
            toy_result, trained_with, toy_error = self.learners_toy(yours)
        results = run_variant_sanity(v, loss, implicit_reward, toy_result, quiet=True)
        if toy_error:
            toy_failed(results, trained_with, toy_error)
        if not quiet:
            for r in results:
                print(r.message)
        return results

    def begin(self, block: str) -> None:
        """Mark the start of a block (``read``, ``explain``, ``implement``, ``sanity-check``), print the clock and
        what the block asks of this variant: the questions (explain), the exercises (implement), the sanity
        plan where it is not the six as they are (sanity-check)."""
        self.start_block(block)
        v = self.variant
        if block == "explain":
            print(f"\nAnswer out loud, then in EXPLANATION ({v.title}):")
            for i, question in enumerate(v.explain_questions, 1):
                print(f"  {i}. {question}")
        elif block == "implement" and v.toy_step:
            print(f"\nYour exercises: {', '.join(v.exercises)} (the other variants' cells skip).")
        elif block == "implement":
            steps = " and ".join(sorted({w.toy_step for w in VARIANTS.values() if w.toy_step}))
            print(f"\nYour exercises: {v.exercise} (Exercise 1, {v.short_title}) and {SHARED_EXERCISE}; "
                  f"the toy trains with your loss through the course's step, so {steps} and the other "
                  "variants' cells skip.")
        elif block == "sanity-check" and not v.standard_sanity:
            print(f"\nThe sanity plan for {v.short_title} (✓ applies, ↻ replaced, – does not apply):")
            for step in v.sanity:
                mark = "✓" if step.applies else "–" if step.probe == "none" else "↻"
                print(f"  {mark} {step.number}. {step.name}: {step.check}")

    def check(self, name: str, check_fn: Callable, *args, **kwargs) -> None:
        """Run one check, record its verdict, print the elapsed time; a failure is re-raised unchanged.

        A check that is not part of this drill's variant (:meth:`applies`) is skipped with a line saying so."""
        if not self.applies(name):
            print(f"— skipped: {name} is not part of this attempt ({self.variant.short_title}); "
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

            plot_training_curves(history, DIAGNOSIS_CURVES, smooth=dd.SMOOTH,
                                 title=f"A DPO run on the course's task (round seed {seed}): what went wrong?")
        print(f"Here are the logged curves of one run ({dd.STEPS} steps, TRL's metric names; logratio/margin is the "
              f"unscaled margin; faint: each step, bold: the mean of the last {dd.SMOOTH} steps). Which is it?")
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
                  print_it: bool = True) -> Scorecard:
        """Run everything on the learner's functions and print the scorecard; never raises.

        ``variant_loss`` is the learner's loss of this drill's variant (for DPO, ``dpo_loss`` is it); ``toy_step``
        the learner's toy step, for a variant that has one.
        Returns a :class:`Scorecard`: ``{"sanity": [...], "checks": {...}, "blocks": [...], "rubric": {...},
        "red_flags": [...]}``, which ``.save()`` adds to the local drill history.
        """
        yours: dict[str, Callable | None] = {"dpo_loss": dpo_loss, SHARED_EXERCISE: implicit_reward}
        if variant_loss is not None:
            yours[self.variant.exercise] = variant_loss
        if self.variant.toy_step:
            yours[self.variant.toy_step] = toy_step
        card = score_attempt(self, rubric, explanation, yours)
        if print_it:
            print(card.text)
        return card


_CURRENT: Drill | None = None


def _previous_variant(history: str | os.PathLike | None) -> str | None:
    """The variant of the last attempt: this kernel's drill, else the last one saved in the history."""
    if _CURRENT is not None:
        return _CURRENT.variant.key
    records, _ = read_history(history_dir(history))
    return records[-1]["variant"] if records else None


def choose_variant(variant: str | Variant | None = None, seed: int | None = None,
                   history: str | os.PathLike | None = None) -> tuple[Variant, int | None, str | None]:
    """``(variant, seed, left out)`` for :func:`start_drill`.

    ``None`` means ``$RLHF_DRILL_VARIANT`` when set, else :data:`~rlhf_core.course.variants.DEFAULT_VARIANT` (DPO)
    on a first attempt and ``"random"`` after.
    ``"random"`` draws, from ``seed`` (a fresh one when None), a variant other than the previous attempt's:
    two random attempts in a row never repeat a paper. The seed and the variant left out are returned so
    that the scorecard can record them (the same two give the same draw on every machine).
    """
    previous = _previous_variant(history)
    if variant is None:
        variant = os.environ.get(VARIANT_ENV) or ("random" if previous is not None else DEFAULT_VARIANT)
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
        lead = chosen.citation.authors.split(",")[0] + (" et al." if "," in chosen.citation.authors else "")
        print(f"This attempt's paper: {chosen.title} — {lead} {chosen.citation.year}{how}.")
    else:
        print(f"The drill is already running, on {_CURRENT.variant.title} (start_drill(restart=True) starts over).")
    _CURRENT.begin("read")
    return _CURRENT
