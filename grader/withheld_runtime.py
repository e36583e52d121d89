"""What stands in for a withheld reference while a lesson is graded: dispatch to the learner's own function.

This module runs where the references are withheld — copied into the grading kernel's library as
``rlhf_core/_withheld.py`` (:mod:`grader.withheld` writes it there with the lesson's table), and
in the grader's own process for :func:`grader.selfcheck.verdict_table`. It imports nothing from the
course, so that it can stand alone in either place.

A withheld function's body is replaced by ``return _rlhf_withheld.call(qualname, args, kwargs)``.
:meth:`Withholding.call` looks the learner's function of the exercise's name up in the notebook's
namespace and calls it; library code that needs the function (``train_dpo`` calling
``train.dpo_step``, the model calling ``model.rms_norm``) thereby runs on the learner's version. It
raises :class:`WithheldReference` instead when there is nothing of the learner's to call: a
function with no learner's counterpart (``losses.dpo_losses``), a learner's function not defined yet,
or a call that comes back to itself (the learner's function calling the "reference", which
dispatches back to the learner's function). The grader turns that error, wherever a probe records
it, into the verdict "reached for the withheld reference".

Library code may pass options the exercise's signature lacks (``train_dpo`` gives ``dpo_step``
``max_grad_norm=…``, ``run_toy_task`` gives ``toy_dpo_step`` its ``loss_fn``): what the learner's
function does not take is left out of the call, so that lesson cells keep running on it.
"""

from __future__ import annotations

import inspect
import sys
import threading

__all__ = ["WithheldReference", "Withholding", "ERROR_NAME", "JUDGING"]

ERROR_NAME = "WithheldReference"
#: The third item of an entry that is part of the grader's judging (a known mistake or its helper), not an answer.
JUDGING = "judging"


class WithheldReference(Exception):
    """A withheld reference was called while its lesson is graded, with no learner's function to stand in."""

    def _render_traceback_(self) -> list[str]:   # in Jupyter: the sentence, not a traceback through the stub
        return [f"\x1b[31m{ERROR_NAME}: {self}\x1b[0m"]


class Withholding:
    """The withheld functions of one lesson.

    ``exercises`` are the names of the lesson's withheld exercises; ``entries`` maps a qualified name (``"rlhf_core.losses.dpo_loss"``) to ``(exercise, candidate)``:
    the exercise it belongs to and the learner's global name that stands in for it, or ``None`` when
    nothing of the learner's can (it always raises); ``(exercises, None, JUDGING)`` marks a function of the
    grader's judging (a known mistake of any lesson's exercise, or its helper), which always raises.
    ``namespace`` is the learner's namespace (by default the notebook's ``__main__``).
    """

    def __init__(self, lesson: str, exercises, entries: dict[str, tuple], namespace: dict | None = None):
        self.lesson = lesson
        self.exercises = frozenset(exercises)
        self.entries = dict(entries)
        self.namespace = namespace
        self._local = threading.local()
        self._signatures: dict[int, tuple[object, inspect.Signature | None]] = {}

    def is_withheld(self, exercise: str) -> bool:
        return exercise in self.exercises

    def _learners(self) -> dict:
        if self.namespace is not None:
            return self.namespace
        main = sys.modules.get("__main__")
        return vars(main) if main is not None else {}

    def refuse(self, qualname: str, why: str) -> WithheldReference:
        return WithheldReference(f"{qualname} is withheld while lesson {self.lesson} is graded: {why}.")

    def call(self, qualname: str, args: tuple, kwargs: dict):
        """Run the learner's function in place of ``qualname``, or raise :class:`WithheldReference`."""
        exercise, candidate, *role = self.entries.get(qualname, ("?", None))
        if role == [JUDGING]:
            raise self.refuse(qualname, f"it is part of the grader's checks of {exercise} (a known mistake or its "
                                        "helper), which judge outside the grading kernel")
        if candidate is None:
            raise self.refuse(qualname, f"it gives away the answer of {exercise}, an exercise of this lesson")
        own = self._learners().get(candidate)
        if own is None:
            raise self.refuse(qualname, f"it stands in for your own {candidate}, which is not defined yet")
        active = self._local.__dict__.setdefault("active", set())
        if qualname in active:
            raise self.refuse(qualname, f"it stands in for your own {candidate}, which called it back, so there is "
                                        "no reference to fall back on")
        active.add(qualname)
        try:
            args, kwargs = self._fit(own, args, kwargs)
            return own(*args, **kwargs)
        finally:
            active.discard(qualname)

    def _fit(self, own, args: tuple, kwargs: dict) -> tuple:
        """``(args, kwargs)`` without what ``own`` does not take (unchanged when it takes them all)."""
        kept = self._signatures.get(id(own))
        if kept is None or kept[0] is not own:
            try:
                signature = inspect.signature(own)
            except (TypeError, ValueError):   # a builtin or an odd callable: call it as it is
                signature = None
            kept = self._signatures[id(own)] = (own, signature)
        signature = kept[1]
        if signature is None:
            return args, kwargs
        try:
            signature.bind(*args, **kwargs)
            return args, kwargs
        except TypeError:
            pass
        params = list(signature.parameters.values())
        if not any(p.kind is p.VAR_POSITIONAL for p in params):
            args = args[:sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)]
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            names = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
            kwargs = {k: v for k, v in kwargs.items() if k in names}
        return args, kwargs

    def not_judged_here(self, exercise: str) -> str:
        """What an in-kernel check of a withheld exercise says instead of a verdict."""
        return (f"✗ {exercise}: not checked here — rlhf_core's reference is withheld while lesson {self.lesson} is "
                "graded, and the grader judges your function outside this notebook.")

    def use_yours(self, name: str, candidate):
        """``yours_or_reference`` for a withheld exercise: the learner's function, said so."""
        print(f"→ the cells below use your {name} (rlhf_core's is withheld while this lesson is graded).")
        return candidate
