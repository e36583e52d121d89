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
on a first attempt and ``"random"`` once the history holds a real one (something written: a Run All of the
untouched lesson is not an attempt and is not saved). The drill then shows that paper's
Read block, asks its questions, grades its rubric, scans for its red flags, skips the check cells of
the other variants' exercises, trains the toy with the learner's loss and runs the variant's sanity
plan (:mod:`rlhf_core.course.variant_sanity`).

The scorecard never raises: it reports what the learner's code actually does — the six sanity checks,
the stronger checks with their hints, the time spent per block, the self-graded rubric — and the
red flags: a sentence of the written explanation that asserts what the paper does not do (for DPO: a
PPO loop, a trained reward model, online sampling, a trained reference), quoted, and code that forgets
the reference.

Every path through the lesson works: Run All, only your own paper's cells, or a kernel restarted halfway and
continued from your own cell. The drill's state is kept beside the history, so :func:`resume_drill` — called by
the check cells — picks the same paper and clock back up after a restart, and gives every name a later cell reads
that has not been defined a stand-in (another paper's exercise, a stub; ``EXPLANATION``, empty).

Progress over attempts: the scorecard is a :class:`Scorecard` (a dict, as before; HTML tables in a notebook) whose
:meth:`~Scorecard.save` appends the attempt — if it is one — to a local history — one JSON line in
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

import json
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .drill_clock import BLOCKS, OPTIONAL_BLOCKS, DrillClock, format_minutes
from .drill_history import HISTORY_ENV, drill_history, drop_attempt, history_dir, is_real_attempt, read_history, show
from .red_flags import RaisedFlag
from .scorecard import Scorecard, score_attempt, toy_failed
from .variant_types import SHARED_EXERCISE
from .variants import DEFAULT_VARIANT, VARIANTS, Variant, find_red_flags, get_variant, owner_of_check, pick_variant

__all__ = ["BLOCKS", "OPTIONAL_BLOCKS", "DIAGNOSIS_CURVES", "RUBRIC_ITEMS", "RED_FLAG_PATTERNS", "Drill", "Scorecard",
           "start_drill", "red_flags_in", "format_minutes", "history_dir", "drill_history", "HISTORY_ENV",
           "VARIANT_ENV", "choose_variant", "resume_drill", "drop_attempt", "RESUME_SECONDS"]

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
    history: str | os.PathLike | None = None   # where the history (and this drill's state, for a restart) is kept
    attempted: bool = False            # a scorecard of this drill was an attempt (something written)
    scored_empty: bool = False         # the last scorecard had nothing written (a Run All of the untouched lesson)
    saved: bool = False                # an attempt of this drill went into the history

    def persist(self) -> None:
        """Write this drill's state (paper, seed, clock, blocks) beside the history, so that a kernel restarted
        halfway resumes it (:func:`resume_drill`). Only for a drill on the wall clock; a folder that cannot be
        written loses nothing but that."""
        if self.clock is not time.time:
            return
        state = {"variant": self.variant.key, "seed": self.seed, "left_out": self.left_out, "started": self.started,
                 "block_starts": self.block_starts, "attempted": self.attempted, "scored_empty": self.scored_empty,
                 "saved": self.saved}
        try:
            where = history_dir(self.history)
            where.mkdir(parents=True, exist_ok=True)
            partial = where / f".{_STATE_FILE}.partial"
            partial.write_text(json.dumps(state), encoding="utf-8")
            partial.replace(where / _STATE_FILE)
        except OSError:
            pass

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
        self.persist()
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
            owner = VARIANTS[owner_of_check(name)]
            print(f"— skipped: not your paper. {name} belongs to the {owner.short_title} drill; this attempt is on "
                  f"{self.variant.short_title}, whose Exercise 1 is {self.variant.exercise}. Nothing to write here.")
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
        """Run everything on the learner's functions and show the scorecard (HTML tables in a notebook, text
        elsewhere); never raises.

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
        self.attempted = self.attempted or card.is_attempt
        self.scored_empty = not card.is_attempt
        card.on_save = self._saved
        self.persist()
        if print_it:
            show(card)
        return card

    def _saved(self) -> None:
        self.saved = True
        self.persist()


_CURRENT: Drill | None = None
_STATE_FILE = "current-drill.json"
#: A drill whose state on disk started longer ago than this is not resumed after a restart: a new attempt starts.
RESUME_SECONDS = 3 * 3600


def _previous_variant(history: str | os.PathLike | None) -> str | None:
    """The variant of the last real attempt: this kernel's drill if its scorecard was one, else the last real
    attempt saved in the history (:func:`~rlhf_core.course.drill_history.is_real_attempt`: an untouched Run All,
    saved before attempts were told apart, does not count)."""
    if _CURRENT is not None and _CURRENT.attempted:
        return _CURRENT.variant.key
    records = [r for r in read_history(history_dir(history))[0] if is_real_attempt(r)]
    return records[-1]["variant"] if records else None


def choose_variant(variant: str | Variant | None = None, seed: int | None = None,
                   history: str | os.PathLike | None = None) -> tuple[Variant, int | None, str | None]:
    """``(variant, seed, left out)`` for :func:`start_drill`.

    ``None`` means ``$RLHF_DRILL_VARIANT`` when set, else :data:`~rlhf_core.course.variants.DEFAULT_VARIANT` (DPO)
    until a real attempt exists (one with something written; see :func:`_previous_variant`) and ``"random"`` after.
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


def _saved_state(history: str | os.PathLike | None, wanted: str | Variant | None) -> dict | None:
    """The state of the drill a restarted kernel was running (:meth:`Drill.persist`), if it can be resumed: not
    saved to the history yet, started within :data:`RESUME_SECONDS`, on the variant ``wanted`` (None or
    ``"random"``: any)."""
    try:
        state = json.loads((history_dir(history) / _STATE_FILE).read_text(encoding="utf-8"))
        key = get_variant(state["variant"]).key
        started = float(state["started"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if state.get("saved") or not 0 <= time.time() - started <= RESUME_SECONDS:
        return None
    if wanted not in (None, "random") and get_variant(wanted).key != key:
        return None
    return state


def _from_state(state: dict, history: str | os.PathLike | None, keep_clock: bool = True) -> Drill:
    now = time.time()
    drill = Drill(started=float(state["started"]) if keep_clock else now, variant=get_variant(state["variant"]),
                  seed=state.get("seed"), left_out=state.get("left_out"), history=history,
                  attempted=bool(state.get("attempted")))
    if keep_clock:
        drill.block_starts = {str(k): float(t) for k, t in (state.get("block_starts") or {}).items()}
    return drill


def _announce(drill: Drill, how: str = "") -> None:
    lead = drill.variant.citation.authors.split(",")[0] + (" et al." if "," in drill.variant.citation.authors else "")
    print(f"This attempt's paper: {drill.variant.title} — {lead} {drill.variant.citation.year}{how}.")


def start_drill(variant: str | Variant | None = None, seed: int | None = None, restart: bool = False,
                clock: Callable[[], float] = time.time, history: str | os.PathLike | None = None) -> Drill:
    """The drill of this kernel, started now if it has not been (``restart=True`` starts over).

    ``variant``: a key of :data:`rlhf_core.course.variants.VARIANTS`, ``"random"``, or None (see
    :func:`choose_variant`); ``seed`` fixes a random draw; ``history`` is where earlier attempts are read.
    In a kernel restarted halfway through an attempt, the drill it was running is resumed (same paper, same
    clock; see :func:`resume_drill`). A drill whose last scorecard had nothing written (a Run All of the untouched
    lesson) is not an attempt: the start cell then starts the clock again.
    """
    global _CURRENT
    wanted = variant if variant is not None else os.environ.get(VARIANT_ENV) or None
    if _CURRENT is not None and not restart and _CURRENT.scored_empty:
        print("The last run reached the scorecard with nothing written: it was not an attempt, so the clock starts "
              "again now.")
        restart = True
    state = None if (restart or _CURRENT is not None or clock is not time.time) else _saved_state(history, wanted)
    if state is not None and not state.get("scored_empty"):
        _CURRENT = _from_state(state, history)
        print(f"Resumed the drill this kernel was running before it restarted: {format_minutes(_CURRENT.elapsed())} "
              "elapsed (start_drill(restart=True) starts a new attempt).")
        _announce(_CURRENT)
    elif _CURRENT is None or restart:
        chosen, drawn_seed, left_out = choose_variant(variant, seed, history)
        _CURRENT = Drill(started=clock(), clock=clock, variant=chosen, seed=drawn_seed, left_out=left_out,
                         history=history)
        print("Drill started. Budgets: " + " → ".join(f"{name} {minutes} min" for name, minutes in BLOCKS) + " (60 min)")
        how = ""
        if drawn_seed is not None:
            how = (f", drawn at random with seed {drawn_seed}"
                   + (f" (leaving out {left_out}, the previous attempt's)" if left_out else "")
                   + f"; start_drill(variant={chosen.key!r}, restart=True) repeats it")
        _announce(_CURRENT, how)
    else:
        print(f"The drill is already running, on {_CURRENT.variant.title} (start_drill(restart=True) starts over).")
    _CURRENT.begin("read")
    return _CURRENT


def _not_run(name: str) -> Callable:
    """A stand-in for an exercise whose cell has not run in this kernel: calling it raises NotImplementedError, so a
    check says "not implemented yet" and the scorecard counts it as not written."""
    def not_run(*args, **kwargs):
        raise NotImplementedError(f"{name} is not defined in this kernel yet: run the cell that defines it")

    not_run.__name__ = not_run.__qualname__ = name
    not_run.__doc__ = f"Stand-in for {name}: its cell has not been run in this kernel."
    return not_run


def resume_drill(namespace: dict | None = None) -> Drill:
    """This kernel's drill, for a lesson cell that may be the first to run after a kernel restart.

    When the kernel has none (it restarted and the start cell was not run again), the drill it was running is read
    back from beside the history (:meth:`Drill.persist`: same paper, same clock); when there is none to resume, one
    is started as :func:`start_drill` would. With ``namespace`` (a cell passes ``globals()``), every name a later
    cell of lesson 10 reads and no cell has defined yet gets a stand-in: each variant's exercises (calling one raises
    NotImplementedError, as a stub does), ``EXPLANATION`` (empty) and ``RUBRIC`` (nothing graded). A name the
    learner defined is never touched.
    """
    global _CURRENT
    restarted = _CURRENT is None
    if restarted:
        wanted = os.environ.get(VARIANT_ENV) or None
        state = _saved_state(None, wanted)
        if state is not None:
            # a drill whose last scorecard had nothing written keeps its paper, with a new clock
            _CURRENT = _from_state(state, None, keep_clock=not state.get("scored_empty"))
            print(f"The kernel restarted: resumed the drill on {_CURRENT.variant.short_title} "
                  f"({format_minutes(_CURRENT.elapsed())} elapsed).")
        else:
            chosen, drawn_seed, left_out = choose_variant(wanted)
            _CURRENT = Drill(variant=chosen, seed=drawn_seed, left_out=left_out)
            print(f"No drill was running in this kernel: started one on {_CURRENT.variant.short_title} "
                  "(the start cell, start_drill(), chooses the paper).")
        _CURRENT.persist()
    if namespace is not None:
        own = set(_CURRENT.variant.exercises)
        missing = []
        for name in dict.fromkeys(n for v in VARIANTS.values() for n in v.exercises):
            if name not in namespace:
                namespace[name] = _not_run(name)
                missing += [name] if name in own else []
        if "EXPLANATION" not in namespace:
            namespace["EXPLANATION"], missing = "", missing + ["EXPLANATION"]
        if "RUBRIC" not in namespace:
            namespace["RUBRIC"], missing = {item: None for item in _CURRENT.rubric_items}, missing + ["RUBRIC"]
        if restarted and missing:
            print(f"Not defined in this kernel yet: {', '.join(missing)}. Run their cells (they are above) before "
                  "the scorecard; until then they count as not written.")
    return _CURRENT
