"""``check_<exercise>(candidate)``: one check per exercise, and the drill's six sanity checks.

Every check

* prints one ``✓ <what held>`` line when the candidate agrees with the reference on every case
  (``quiet=True``: prints nothing — for hidden tests) and returns None, so a notebook shows it once;
* otherwise raises :class:`CheckFailed` (an ``AssertionError``) saying what was expected, what came
  back, and — when the candidate's output equals that of a known mistake — which mistake;
* turns wrong shapes, ``NotImplementedError``, NaNs and wrong types into that same kind of message.

A verdict is one plain line (``str(exc)``: what the grader records), with plain numbers (``1.5506``,
never ``tensor(1.5506)``: :func:`~rlhf_core.checks.framework.plain`), and the same verdict in parts
(``expected``, ``got``, ``advice``…). In a notebook a failing check shows those parts as a short HTML
block and leaves one short red error line (``CheckFailed._render_traceback_``, IPython's hook for
it); in a terminal, wrapped plain text (:mod:`~rlhf_core.checks.render`). A stub's verdict says what
to do, never the formula.

The cases mix random inputs (seeded: ``check_dpo_loss(f, seed=1)`` draws other ones) with
adversarial ones (margins of ±1e4, logits ×100, fully masked rows).

Layout: :mod:`~rlhf_core.checks.framework` (cases, mistakes, the registry :data:`EXERCISES` — each
exercise's reference is the library's own function — serialisation, probe and judge);
:mod:`~rlhf_core.checks.cases` (inputs the lessons share); one module per lesson with its cases,
known mistakes and ``check_<exercise>`` functions (``objective`` 01, ``dpo_loss`` 02, ``toy_step``
03, ``logps`` 04, ``model_parts`` 05, ``sft_step`` 06, ``pairs`` 07, ``dpo_step`` 08,
``diagnosis`` 09, ``variant_losses`` 10 (the drill's
interview variants), ``hf_export`` 11); and the six sanity checks of the drill (:mod:`~rlhf_core.checks.sanity`, built
on :mod:`~rlhf_core.checks.sanity_probe` and :mod:`~rlhf_core.checks.sanity_judge`).
"""

from .diagnosis import check_diagnose_run
from .dpo_loss import check_dpo_loss, check_implicit_reward
from .dpo_step import check_dpo_step
from .framework import EXERCISES, CheckFailed, check, judge, probe
from .hf_export import check_export_model
from .logps import check_get_logps
from .model_parts import check_apply_rope, check_rms_norm, check_swiglu
from .objective import check_optimal_policy, check_rlhf_objective
from .pairs import check_collate_pairs
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
from .sft_step import check_sft_step
from .toy_step import check_toy_dpo_step
from .variant_losses import check_conservative_dpo_loss, check_ipo_loss, check_orpo_odds_ratio_loss, check_simpo_loss

__all__ = [
    "CheckFailed",
    "EXERCISES",
    "check",
    "probe",
    "judge",
    "check_optimal_policy",
    "check_rlhf_objective",
    "check_dpo_loss",
    "check_implicit_reward",
    "check_toy_dpo_step",
    "check_get_logps",
    "check_rms_norm",
    "check_swiglu",
    "check_apply_rope",
    "check_sft_step",
    "check_collate_pairs",
    "check_dpo_step",
    "check_diagnose_run",
    "check_export_model",
    "check_ipo_loss",
    "check_conservative_dpo_loss",
    "check_simpo_loss",
    "check_orpo_odds_ratio_loss",
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
