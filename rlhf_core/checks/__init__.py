"""``check_<exercise>(candidate)``: one check per exercise, read from its record; and the drill's six sanity checks.

Every exercise is one record (:class:`~rlhf_core.checks.framework.Exercise`, registered in
:data:`EXERCISES`); this package's ``check_<name>`` functions and ``__all__`` are made from the registry
(:func:`~rlhf_core.checks.derived.make_check`), never listed by hand. Every ``check_<name>(candidate,
seed=0, quiet=False)``

* prints one ``✓ <what held>`` line when the candidate agrees with the reference on every case
  (``quiet=True``: prints nothing — for hidden tests) and **returns None**, either way, so that a
  notebook shows the line once and a hidden test as a cell's last line shows nothing;
* otherwise raises :class:`CheckFailed` (an ``AssertionError``) saying what was expected, what came
  back, and — when the candidate's output equals that of a known mistake — which mistake;
* turns wrong shapes, ``NotImplementedError``, NaNs and wrong types into that same kind of message.

(The framework's ``check(exercise, candidate, quiet=True)`` returns the ``✓`` text instead, for code
that shows it elsewhere.) The sanity checks (``sanity_*``, ``check_toy_training``) return None too.

A verdict is one plain line (``str(exc)``: what the grader records), with plain numbers (``1.5506``,
never ``tensor(1.5506)``: :func:`~rlhf_core.checks.verdicts.plain`), and the same verdict in parts
(``expected``, ``got``, ``advice``…). In a notebook a failing check shows those parts as a short HTML
block and leaves one short red error line (``CheckFailed._render_traceback_``, IPython's hook for
it); in a terminal, wrapped plain text (:mod:`~rlhf_core.checks.render`). A stub's verdict says what
to do, never the formula.

The cases mix random inputs (seeded: ``check_dpo_loss(f, seed=1)`` draws other ones) with
adversarial ones (margins of ±1e4, logits ×100, fully masked rows).

Layout: :mod:`~rlhf_core.checks.framework` (the record, the registry, probe, judge and check, and the
rules the grader sets for this package), built on :mod:`~rlhf_core.checks.records` (values and
exceptions as data), :mod:`~rlhf_core.checks.compare` and :mod:`~rlhf_core.checks.verdicts`;
:mod:`~rlhf_core.checks.derived` (what is read from a record: check functions, stubs, check cells);
:mod:`~rlhf_core.checks.cases` (inputs the lessons share); one module per lesson with its records —
cases, known mistakes — (``objective`` 01, ``dpo_loss`` 02, ``toy_step`` 03, ``logps`` 04,
``model_parts`` 05, ``sft_step`` 06, ``pairs`` and ``plackett_luce`` 07, ``dpo_step`` 08, ``diagnosis``
09, ``variant_losses`` 10 (the drill's interview variants), ``hf_export`` 11); and the six sanity checks
of the drill (:mod:`~rlhf_core.checks.sanity`, built on :mod:`~rlhf_core.checks.sanity_probe` and
:mod:`~rlhf_core.checks.sanity_judge`).
"""

import importlib
import pkgutil

from .derived import make_check
from .framework import EXERCISES, CheckFailed, check, judge, probe
from .sanity import (
    SANITY_CHECKS,
    SANITY_PROBES,
    SanityResult,
    check_toy_training,
    judge_sanity,
    probe_sanity,
    run_sanity_checks,
    sanity_gradient_flows,
    sanity_loss_at_init,
    sanity_margin_monotone,
    sanity_ranking_recovered,
    sanity_reference_frozen,
    sanity_reward_scales_with_beta,
)

# Import every module of this package, so that each lesson's module registers its records: a new exercise's
# module is found without being listed here (adding an exercise touches its reference, its record and its lesson).
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

#: ``check_<name>`` for every registered exercise, in lesson order.
CHECKS = {f"check_{name}": make_check(name) for name in EXERCISES}
globals().update(CHECKS)

__all__ = [
    "CheckFailed",
    "EXERCISES",
    "CHECKS",
    "check",
    "probe",
    "judge",
    *CHECKS,
    "SANITY_CHECKS",
    "SANITY_PROBES",
    "SanityResult",
    "probe_sanity",
    "judge_sanity",
    "sanity_loss_at_init",
    "sanity_reference_frozen",
    "sanity_gradient_flows",
    "sanity_margin_monotone",
    "sanity_ranking_recovered",
    "sanity_reward_scales_with_beta",
    "run_sanity_checks",
    "check_toy_training",
]
