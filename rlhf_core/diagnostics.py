"""Read a DPO metrics history and say what went wrong (or that nothing did).

A DPO run can look perfect by its training loss and still be broken. The classic case: with one
pair per update and β = 0.1, a small model drives the loss to 0.0 and the training accuracy to 1.0
within ~30 steps, while the *unscaled* reward margin (the log-ratio margin, ``logratio/margin``)
keeps growing into the hundreds of nats. On this course's task (β 0.1–0.3, responses of ~15 tokens)
a run that learns sanely keeps it at about 1–10; that band is this task's, since the margin a loss
saturates at scales with 1/β and a summed log-ratio grows with the response's length. This module turns those rules of thumb into code
that a learner can run on their own history:

>>> d = diagnose(history)          # history: MetricsHistory, list of row dicts, or {"rows": [...]}
>>> print(d)                       # a headline, the numbers behind it as bullets, what to do
>>> d                              # in a notebook: the same as a short HTML block
>>> d.label                        # one of DIAGNOSIS_LABELS

Labels, in order of precedence (the first that applies wins; the others that also apply are listed
in ``Diagnosis.also``):

``diverged``                 a NaN or inf in the loss, the rewards, the log-probs or the margins
``reversed_preferences``     accuracy well below 0.5 and the margin negative (chosen/rejected swapped)
``no_learning``              the loss stays at log 2 and the margin at 0 (the policy never moves)
``margin_explosion``         the unscaled margin passes a threshold (50 nats by default): THE explosion
                             rule of the course (:func:`first_explosion_step`), used by lesson 09's
                             study (``rlhf_core.course.studies``) and by the lesson itself
``likelihood_displacement``  the margin grows while the chosen responses' log-ratio falls (a warning)
``healthy``                  none of the above

The margin is a symptom, not a measure of drift. It is a difference of log-ratios on two *fixed*
training responses that the policy did not sample: pushing down a rejected response that the
reference already gives little mass raises it by hundreds of nats at almost no cost in KL, and a
policy can drift far while the margin stays small (per-token margins, IPO). What shows drift is the
held-out **sampled** KL to the reference (``eval/kl``), the samples themselves, and both log-probs
falling. So :func:`diagnose` reads ``eval/kl`` when the history has it, through the companion signal
:func:`first_drift_step` (held-out KL above :data:`DRIFT_KL_THRESHOLD`, 10 nats): the evidence of
every label says whether the policy drifted, ``Diagnosis.drift_step`` says where, and a run that
drifted is never ``ok``, whatever its label.

The :class:`~rlhf_core.fixes.Diagnosis` it returns, how it prints, and what to do about each label
(:data:`~rlhf_core.fixes.FIXES`) are :mod:`rlhf_core.fixes`; reading a history in any form, and the
margin series the rules read, are :mod:`rlhf_core.metrics`; comparing runs on the reward-vs-KL
frontier is :mod:`rlhf_core.evaluation`.
"""

from __future__ import annotations

import math

import numpy as np

from .fixes import FIXES, Diagnosis
from .metrics import TRAIN_METRICS, MetricsHistory, as_history, finite_series, infer_beta, quarter_means, unscaled_margin

__all__ = [
    "DIAGNOSIS_LABELS",
    "EXPLOSION_THRESHOLD",
    "HEALTHY_MARGIN_BAND",
    "LOG2",
    "Diagnosis",
    "detect_margin_explosion",
    "diagnose",
    "diagnose_run",
    "first_drift_step",
    "first_explosion_step",
    "DRIFT_KL_THRESHOLD",
]

LOG2 = math.log(2.0)
"""The DPO loss when the policy equals the reference: −log σ(0) = log 2 ≈ 0.693."""

DIAGNOSIS_LABELS = (
    "healthy",
    "margin_explosion",
    "no_learning",
    "diverged",
    "reversed_preferences",
    "likelihood_displacement",
)

# Order in which labels win when several apply.
_PRECEDENCE = (
    "diverged",
    "reversed_preferences",
    "no_learning",
    "margin_explosion",
    "likelihood_displacement",
)

# ---- thresholds (all margins and log-ratios in nats, *unscaled*, i.e. not multiplied by β) -----
EXPLOSION_THRESHOLD = 50.0     # THE explosion rule: a logged unscaled training margin above this (nats);
                               # calibrated for β = 0.1 and ~15-token responses (see first_explosion_step)
HEALTHY_MARGIN_BAND = (1.0, 10.0)  # a rule of thumb for the same setting, not a KL
DRIFT_KL_THRESHOLD = 10.0      # the companion drift signal: held-out sampled sequence KL (eval/kl) above this (nats)
NO_LEARNING_LOSS_TOL = 0.02    # |loss − log 2| at most this at every logged step ...
NO_LEARNING_MARGIN_TOL = 0.5   # ... and |unscaled margin| at most this at every logged step
REVERSED_ACCURACY = 0.3        # late-window mean accuracy below this ...
REVERSED_MARGIN = 0.5          # ... and late-window mean unscaled margin below −this
DISPLACEMENT_MIN_MARGIN_GROWTH = 1.0  # the margin must grow by at least this (early → late window)
DISPLACEMENT_MIN_DROP = 1.0           # the chosen log-ratio must fall by at least this ...
DISPLACEMENT_DROP_FRACTION = 0.5      # ... and by at least this fraction of the margin's growth
SATURATED_LOSS = 0.05          # "loss ~ 0" in the evidence of an explosion
SATURATED_ACCURACY = 0.95      # "accuracy ~ 1" in the evidence of an explosion

# Metrics checked for NaN/inf: every training metric, and the held-out margin.
_FINITE_CHECKED = TRAIN_METRICS + ("eval/margin",)

_TOO_SHORT = (
    "Log at least two steps (the first, where the loss should be log 2 ≈ 0.693, and later ones) "
    "and diagnose again. If the loss then stays at log 2: " + FIXES["no_learning"]
)


def _distinct_steps(h: MetricsHistory) -> list[int]:
    return sorted({int(r["step"]) for r in h.rows})


def _value_at_or_before(h: MetricsHistory, name: str, step: int) -> tuple[int, float] | None:
    best = None
    for s, v in zip(*finite_series(h, name)):
        if s <= step:
            best = (s, v)
    return best


# ------------------------------------------------------------------------------------------------
# the detectors: each returns a Diagnosis when its pattern is present, else None
# ------------------------------------------------------------------------------------------------


def _detect_diverged(h: MetricsHistory) -> Diagnosis | None:
    evidence, first = [], None
    for name in _FINITE_CHECKED:
        for step, value in zip(*h.series(name)):
            if not math.isfinite(value):
                evidence.append(f"{name} = {value} at step {step}")
                first = step if first is None else min(first, step)
                break
    if first is None:
        return None
    last_ok = [(s, v) for s, v in zip(*finite_series(h, "loss")) if s < first]
    if last_ok:
        evidence.append(f"last finite loss {last_ok[-1][1]:.4g} at step {last_ok[-1][0]}")
    return Diagnosis("diverged", evidence, int(first))


def _detect_reversed(h: MetricsHistory, beta: float | None) -> Diagnosis | None:
    candidates = []
    m_steps, m_vals, source = unscaled_margin(h, beta)
    a_steps, a_vals = finite_series(h, "rewards/accuracies")
    candidates.append(("train", a_steps, a_vals, m_steps, m_vals, source))
    e_m_steps, e_m_vals = finite_series(h, "eval/margin")
    e_a_steps, e_a_vals = finite_series(h, "eval/accuracy")
    candidates.append(("held-out", e_a_steps, e_a_vals, e_m_steps, e_m_vals, "eval/margin"))
    for which, _a_steps, a_v, m_s, m_v, src in candidates:
        if not a_v or not m_v or len(set(m_s)) < 2:
            continue
        late_acc = quarter_means(a_v)[1]
        early_m, late_m = quarter_means(m_v)
        if late_acc < REVERSED_ACCURACY and late_m < -REVERSED_MARGIN:
            step = next(s for s, v in zip(m_s, m_v) if v < -REVERSED_MARGIN)
            evidence = [
                f"{which} accuracy {late_acc:.2f} over the last quarter of the run < {REVERSED_ACCURACY:g} (chance is 0.5)",
                f"{which} unscaled margin ({src}) went from {early_m:.2f} to {late_m:.2f} (negative: rejected preferred)",
                f"margin first below −{REVERSED_MARGIN:g} at step {step}",
            ]
            return Diagnosis("reversed_preferences", evidence, int(step))
    return None


def _detect_no_learning(h: MetricsHistory, beta: float | None) -> Diagnosis | None:
    l_steps, l_vals = finite_series(h, "loss")
    m_steps, m_vals, source = unscaled_margin(h, beta)
    if not m_vals:  # a run that only logs held-out metrics
        m_steps, m_vals = finite_series(h, "eval/margin")
        source = "eval/margin"
    if not l_vals and not m_vals:
        return None
    evidence = []
    if l_vals:
        worst = max(abs(v - LOG2) for v in l_vals)
        if worst > NO_LEARNING_LOSS_TOL:
            return None
        evidence.append(
            f"loss stayed within {worst:.3f} of log 2 = {LOG2:.3f} over {len(l_vals)} logged steps "
            f"({l_steps[0]}–{l_steps[-1]}; tolerance {NO_LEARNING_LOSS_TOL:g})"
        )
    if m_vals:
        worst = max(abs(v) for v in m_vals)
        if worst > NO_LEARNING_MARGIN_TOL:
            return None
        evidence.append(
            f"unscaled margin ({source}) never left ±{worst:.3f} (tolerance {NO_LEARNING_MARGIN_TOL:g}; "
            f"a learning run on this task reaches 1–10; the band scales with 1/β and response length)"
        )
    a_vals = finite_series(h, "rewards/accuracies")[1]
    if a_vals:
        evidence.append(f"train accuracy averaged {np.mean(a_vals):.2f}")
    first = (l_steps or m_steps)[0]
    return Diagnosis("no_learning", evidence, int(first))


def _explosion_series(h: MetricsHistory, beta: float | None) -> tuple[list[int], list[float], str]:
    steps, values, source = unscaled_margin(h, beta)
    if not values:  # a run that only logs held-out metrics
        steps, values = finite_series(h, "eval/margin")
        source = "eval/margin"
    return steps, values, source


def first_explosion_step(history, by_step: int | None = None, threshold: float = EXPLOSION_THRESHOLD, *,
                         beta: float | None = None) -> int | None:
    """The course's explosion rule: the first logged step whose unscaled training margin exceeds
    ``threshold`` (:data:`EXPLOSION_THRESHOLD`, 50 nats), at or before ``by_step`` when given; ``None``
    if there is none.

    The unscaled margin is ``logratio/margin`` (else ``rewards/margins`` ÷ β; a run that logs only
    held-out metrics is read on ``eval/margin``). Loss and accuracy are not part of the rule: a healthy
    run at a large β also has loss ~0 and accuracy 1. (For sigmoid DPO at β = 0.1 and batch 1 a margin
    above 50 *implies* them: loss < −log σ(5) ≈ 0.0067 and accuracy 1.) :func:`diagnose` labels a run
    ``margin_explosion`` exactly when this returns a step.

    What the rule says, and what it does not. The margin is a log-ratio difference on two fixed
    training responses, not a KL, so passing 50 nats is a symptom of overfitting the pairs, not a
    measure of drift (that is :func:`first_drift_step`). And 50 nats is calibrated for the course's
    setting: β = 0.1, where the sigmoid loss saturates at β·m ≈ 5, i.e. m ≈ 5/β = 50 nats; and
    responses of ~15 tokens, where 50 nats is ~3 nats per token. At another β the saturation point
    moves to ~5/β (10 nats at β = 0.5, 500 at β = 0.01); and since the margin is a sum over tokens, the
    same per-token change on responses ten times longer gives a margin ten times larger. Pass another
    ``threshold`` for another setting; the course keeps this one rule at 50.
    """
    steps, values, _ = _explosion_series(as_history(history), beta)
    for step, value in zip(steps, values):
        if by_step is not None and step > by_step:
            break
        if value > threshold:
            return int(step)
    return None


def first_drift_step(history, threshold: float = DRIFT_KL_THRESHOLD, by_step: int | None = None) -> int | None:
    """The companion drift signal: the first evaluation step whose held-out sampled sequence KL to the
    reference (``eval/kl``, :func:`rlhf_core.evaluation.evaluate_policy`) exceeds ``threshold``
    (:data:`DRIFT_KL_THRESHOLD`, 10 nats), at or before ``by_step`` when given; ``None`` if there is none
    or ``eval/kl`` was not logged.

    Unlike the margin, the KL is measured on what the policy *samples*, so it is what shows that the
    policy left the reference. 10 nats is lesson 08's bar; on this task the grammatical policies of the
    shipped studies sit below 7 nats and the degenerate ones above 90. It is an estimate from a few
    hundred samples (its standard error is printed in lesson 09), so a value near the threshold is a
    tie, not a verdict.
    """
    for step, value in zip(*finite_series(as_history(history), "eval/kl")):
        if by_step is not None and step > by_step:
            break
        if value > threshold:
            return int(step)
    return None


def _drift_evidence(h: MetricsHistory, threshold: float = DRIFT_KL_THRESHOLD) -> tuple[list[str], int | None]:
    """The held-out KL (and grammar, when logged) in words, and :func:`first_drift_step`."""
    k_steps, k_vals = finite_series(h, "eval/kl")
    if not k_vals:
        return [], None
    step = first_drift_step(h, threshold)
    grammar = ""
    g_steps, g_vals = finite_series(h, "eval/grammatical")
    if g_vals:
        grammar = f"; grammatical samples {g_vals[0]:.0%} → {g_vals[-1]:.0%}"
    if step is not None:
        line = (f"held-out sampled KL to the reference (eval/kl) {h.at('eval/kl', step):.1f} nats at step {step}, "
                f"above the drift threshold {threshold:g}, and {k_vals[-1]:.1f} at step {k_steps[-1]}: "
                f"the policy has drifted{grammar}")
    else:
        peak = int(np.argmax(k_vals))
        line = (f"held-out sampled KL to the reference (eval/kl) at most {k_vals[peak]:.1f} nats "
                f"(step {k_steps[peak]}), below the drift threshold {threshold:g}: no measured drift{grammar}")
    return [line], step


def detect_margin_explosion(history, threshold: float = EXPLOSION_THRESHOLD, *, beta: float | None = None) -> Diagnosis | None:
    """A ``margin_explosion`` Diagnosis if the unscaled training margin ever exceeds ``threshold``
    (:func:`first_explosion_step`, the course's one explosion rule).

    The unscaled margin is ``logratio/margin`` (or ``rewards/margins`` ÷ β when only that was
    logged; β is read off the history when it can be, else ``beta``, else 0.1). Runs that log only
    held-out metrics are checked on ``eval/margin``. ``step`` is the first step above the
    threshold. The evidence adds the peak, the loss and accuracy at that step (an exploded run
    has loss ~ 0 and accuracy ~ 1) and, when held-out margins were logged, how little they moved.
    Returns ``None`` when the margin never passes the threshold.
    """
    h = as_history(history)
    step = first_explosion_step(h, threshold=threshold, beta=beta)
    if step is None:
        return None
    steps, values, source = _explosion_series(h, beta)
    above = [(s, v) for s, v in zip(steps, values) if v > threshold]
    value = above[0][1]
    peak_i = int(np.argmax(values))
    evidence = [
        f"unscaled margin {value:.1f} at step {step} > {threshold:g}",
        f"peak unscaled margin {values[peak_i]:.1f} at step {steps[peak_i]}; "
        f"{len(above)} of {len(values)} logged values above {threshold:g} "
        f"(a healthy unscaled margin is about {HEALTHY_MARGIN_BAND[0]:g}–{HEALTHY_MARGIN_BAND[1]:g})",
    ]
    if source != "logratio/margin":
        evidence.append(f"margin taken from {source}")
    loss = _value_at_or_before(h, "loss", step)
    acc = _value_at_or_before(h, "rewards/accuracies", step)
    if loss is not None or acc is not None:
        parts = []
        if loss is not None:
            tag = " (saturated)" if loss[1] < SATURATED_LOSS else ""
            parts.append(f"train loss {loss[1]:.3f}{tag}")
        if acc is not None:
            tag = " (saturated)" if acc[1] >= SATURATED_ACCURACY else ""
            parts.append(f"train accuracy {acc[1]:.2f}{tag}")
        evidence.append(" and ".join(parts) + f" at step {step}")
    if source != "eval/margin":
        e_steps, e_vals = finite_series(h, "eval/margin")
        if e_vals:
            early, late = quarter_means(e_vals)
            flat = " — the held-out margin stays flat: the gain does not generalise" if late < threshold / 5 else ""
            evidence.append(f"held-out margin went from {early:.1f} to {late:.1f} (eval/margin){flat}")
    if first_drift_step(h) is None:
        evidence.append("the margin is a log-ratio on fixed training responses, not a KL: without a held-out "
                        "KL above the drift threshold this is overfitting of the pairs, not measured drift")
    return Diagnosis("margin_explosion", evidence, int(step))


def _detect_displacement(h: MetricsHistory, beta: float | None) -> Diagnosis | None:
    m_steps, m_vals, m_source = unscaled_margin(h, beta)
    if len(set(m_steps)) < 2:
        return None
    b, how = infer_beta(h, beta)
    c_steps, c_vals = finite_series(h, "rewards/chosen")
    if len(set(c_steps)) >= 2:
        c_vals = [v / b for v in c_vals]
        c_name = f"chosen log-ratio (rewards/chosen ÷ {how})"
    else:
        c_steps, c_vals = finite_series(h, "logps/chosen")
        c_name = "logps/chosen"
        if len(set(c_steps)) < 2:
            return None
    m_early, m_late = quarter_means(m_vals)
    c_early, c_late = quarter_means(c_vals)
    growth, drop = m_late - m_early, c_early - c_late
    needed = max(DISPLACEMENT_MIN_DROP, DISPLACEMENT_DROP_FRACTION * growth)
    if growth < DISPLACEMENT_MIN_MARGIN_GROWTH or drop < needed:
        return None
    step = next((s for s, v in zip(c_steps, c_vals) if c_early - v >= needed), c_steps[-1])
    evidence = [
        f"unscaled margin ({m_source}) grew by {growth:.1f} nats ({m_early:.1f} → {m_late:.1f}, first vs last quarter)",
        f"{c_name} fell by {drop:.1f} nats ({c_early:.1f} → {c_late:.1f}), "
        f"more than {DISPLACEMENT_DROP_FRACTION:g} × the margin's growth",
    ]
    r_steps, r_vals = finite_series(h, "rewards/rejected")
    if len(r_vals) >= 2 and c_name.startswith("chosen log-ratio"):
        r_early, r_late = quarter_means([v / b for v in r_vals])
        evidence.append(f"rejected log-ratio fell faster: {r_early:.1f} → {r_late:.1f}")
    return Diagnosis("likelihood_displacement", evidence, int(step))


def _healthy(h: MetricsHistory, beta: float | None, threshold: float) -> Diagnosis:
    evidence = []
    l_vals = finite_series(h, "loss")[1]
    if l_vals:
        early, late = quarter_means(l_vals)
        evidence.append(
            f"loss went from {early:.3f} to {late:.3f} (first vs last quarter; "
            f"it is log 2 = {LOG2:.3f} where policy = reference)"
        )
    a_vals = finite_series(h, "rewards/accuracies")[1]
    if a_vals:
        evidence.append(f"train accuracy {quarter_means(a_vals)[1]:.2f} over the last quarter")
    m_steps, m_vals, source = unscaled_margin(h, beta)
    if m_vals:
        late = quarter_means(m_vals)[1]
        lo, hi = HEALTHY_MARGIN_BAND
        if late > hi:
            note = f"above the usual {lo:g}–{hi:g} band but below the explosion threshold {threshold:g}: watch it"
        elif late < lo:
            note = f"below the usual {lo:g}–{hi:g} band: learning slowly"
        else:
            note = f"inside the healthy {lo:g}–{hi:g} band"
        evidence.append(f"unscaled margin ({source}) {late:.2f} over the last quarter, {note}")
    e_vals = finite_series(h, "eval/margin")[1]
    if e_vals and m_vals:
        e_late, m_late = quarter_means(e_vals)[1], quarter_means(m_vals)[1]
        tracks = "tracks it" if e_late >= 0.25 * m_late else "lags it: some of the gain does not generalise"
        evidence.append(f"held-out margin {e_late:.2f} vs train {m_late:.2f}: {tracks}")
    if not evidence:
        evidence.append("no loss or margin logged; nothing looked wrong")
    return Diagnosis("healthy", evidence, None)


def diagnose(history, *, explosion_threshold: float = EXPLOSION_THRESHOLD, beta: float | None = None) -> Diagnosis:
    """Label a DPO run from its metrics history (see the module docstring for the labels).

    Rules (margins unscaled, in nats; "quarter" = mean over the first or last quarter of the
    logged values, at least one value):

    * ``diverged``: any NaN/inf in the loss, rewards, log-probs, accuracies or margins.
    * fewer than 2 distinct steps logged: ``no_learning``, with evidence saying so.
    * ``reversed_preferences``: last-quarter accuracy < 0.3 and last-quarter margin < −0.5, on the
      training metrics or on the held-out ones (``eval/accuracy`` and ``eval/margin``).
    * ``no_learning``: every logged loss within 0.02 of log 2 and every margin within ±0.5.
    * ``margin_explosion``: the margin exceeds ``explosion_threshold`` (50) at some step.
    * ``likelihood_displacement``: the margin grows by ≥ 1 nat while the chosen log-ratio (from
      ``rewards/chosen`` ÷ β, else ``logps/chosen``) falls by ≥ max(1, 0.5 × that growth).
    * otherwise ``healthy``.

    The first label in that order wins; the others that apply are listed in ``Diagnosis.also``.
    Then the drift signal: when ``eval/kl`` was logged, the evidence ends with the held-out KL (and
    grammar), ``drift_step`` is :func:`first_drift_step`, and ``ok`` is False for a run that drifted.
    ``beta`` is only needed to unscale ``rewards/*`` when ``logratio/margin`` was not logged and
    β cannot be read off the history (then 0.1 is assumed).
    """
    h = as_history(history)
    if not h.rows:
        return Diagnosis("no_learning", ["no rows logged: nothing to diagnose"], None, advice=_TOO_SHORT)
    result = _diagnose_training_metrics(h, explosion_threshold, beta)
    drift, result.drift_step = _drift_evidence(h)
    result.evidence += drift
    return result


def _diagnose_training_metrics(h: MetricsHistory, explosion_threshold: float, beta: float | None) -> Diagnosis:
    found: dict[str, Diagnosis] = {}
    diverged = _detect_diverged(h)
    if diverged is not None:
        found["diverged"] = diverged
    steps = _distinct_steps(h)
    if len(steps) < 2:
        if diverged is not None:
            return diverged
        return Diagnosis(
            "no_learning",
            [f"only 1 step logged (step {steps[0]}): too few to tell whether the policy is learning"],
            None,
            advice=_TOO_SHORT,
        )
    for label, detect in (
        ("reversed_preferences", lambda: _detect_reversed(h, beta)),
        ("no_learning", lambda: _detect_no_learning(h, beta)),
        ("margin_explosion", lambda: detect_margin_explosion(h, explosion_threshold, beta=beta)),
        ("likelihood_displacement", lambda: _detect_displacement(h, beta)),
    ):
        result = detect()
        if result is not None:
            found[label] = result
    if not found:
        return _healthy(h, beta, explosion_threshold)
    winner = next(found[label] for label in _PRECEDENCE if label in found)
    winner.also = [label for label in _PRECEDENCE if label in found and label != winner.label]
    return winner


def diagnose_run(history) -> str:
    """The exercise's five-label answer (notebook 09): :func:`diagnose`'s label, with
    ``likelihood_displacement`` counted as ``healthy`` (the exercise does not ask for it)."""
    label = diagnose(history).label
    return "healthy" if label == "likelihood_displacement" else label
