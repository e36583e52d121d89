"""The checks of lesson 09 — diagnosing a run from its metrics: ``diagnose_run``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ..diagnostics import diagnose_run
from .framework import Case, Exercise, Mistake, register


def _history(steps, **series) -> list[dict]:
    rows = []
    for i, step in enumerate(steps):
        row = {"step": step}
        for name, values in series.items():
            row[name] = float(values[i])
        rows.append(row)
    return rows


def diagnosis_histories(seed: int) -> list[tuple[str, list[dict]]]:
    g = torch.Generator().manual_seed(seed)
    noise = lambda n, s: (torch.randn(n, generator=g) * s).tolist()
    steps = list(range(0, 200, 10))
    n = len(steps)
    ramp = [i / (n - 1) for i in range(n)]

    def run(beta, margins, accuracies, losses_, chosen_rewards=None):
        chosen_rewards = chosen_rewards or [0.5 * beta * m for m in margins]
        return _history(steps, **{
            "loss": losses_, "rewards/accuracies": accuracies,
            "rewards/margins": [beta * m for m in margins], "logratio/margin": margins,
            "rewards/chosen": chosen_rewards, "rewards/rejected": [c - beta * m for c, m in zip(chosen_rewards, margins)],
        })

    healthy_m = [4.0 * r + e for r, e in zip(ramp, noise(n, 0.2))]
    healthy = run(0.1, healthy_m, [0.5 + 0.3 * r for r in ramp], [0.693 - 0.25 * r for r in ramp],
                  chosen_rewards=[0.05 * m for m in healthy_m])
    explosion_m = [min(600.0, 3.0 * (1.25 ** i)) for i in range(n)]
    explosion = run(0.1, explosion_m, [min(1.0, 0.6 + 0.1 * i) for i in range(n)],
                    [max(0.0, 0.693 - 0.1 * i) for i in range(n)], chosen_rewards=[0.05 * m for m in explosion_m])
    flat = run(0.1, [0.0] * n, [0.0] * n, [0.6931] * n)
    nan_losses = [0.69 - 0.01 * i if i < 7 else float("nan") for i in range(n)]
    diverged = run(0.1, [0.5 * i if i < 7 else float("nan") for i in range(n)], [0.6] * n, nan_losses)
    reversed_m = [-5.0 * r for r in ramp]
    reversed_ = run(0.1, reversed_m, [0.5 - 0.45 * r for r in ramp], [0.693 + 0.5 * r for r in ramp],
                    chosen_rewards=[0.05 * m for m in reversed_m])
    big_beta_m = [min(120.0, 2.0 * (1.3 ** i)) for i in range(n)]
    big_beta = run(0.5, big_beta_m, [1.0] * n, [0.0005] * n, chosen_rewards=[0.25 * m for m in big_beta_m])
    slow_m = [1.5 * r for r in ramp]
    slow = run(0.2, slow_m, [0.5 + 0.15 * r for r in ramp], [0.693 - 0.1 * r for r in ramp],
               chosen_rewards=[0.1 * m for m in slow_m])
    return [
        ("a run whose loss falls from log 2 and whose margin settles near 4", healthy),
        ("a run at β = 0.1 whose margin climbs into the hundreds", explosion),
        ("a run stuck at loss log 2 with zero margin", flat),
        ("a run whose loss turns NaN at step 70", diverged),
        ("a run whose accuracy falls to 0.05 while the loss rises", reversed_),
        ("a run at β = 0.5, loss ≈ 0, unscaled margin 120", big_beta),
        ("a slow but steady run at β = 0.2", slow),
    ]


def _diagnosis_cases(seed: int) -> list[Case]:
    def make(name: str, rows: list[dict]) -> Case:
        def run(fn: Callable) -> dict[str, Any]:
            label = fn([dict(r) for r in rows])
            label = getattr(label, "label", label)  # a Diagnosis object is fine too
            return {"the diagnosis": label}

        return Case(name, run)

    return [make(name, rows) for name, rows in diagnosis_histories(seed)]


def _dg_always_healthy(history):
    return "healthy"


def _dg_loss_only(history):
    last = history[-1]["loss"]
    if last != last:
        return "diverged"
    if abs(last - 0.6931) < 0.01:
        return "no_learning"
    return "margin_explosion" if last < 0.05 else "healthy"


def _dg_ignores_nan(history):
    margins = [r["logratio/margin"] for r in history]
    accuracy = history[-1]["rewards/accuracies"]
    if max(m for m in margins if m == m) > 50:
        return "margin_explosion"
    if accuracy < 0.3:
        return "reversed_preferences"
    if all(abs(r["loss"] - 0.6931) < 0.01 for r in history):
        return "no_learning"
    return "healthy"


def _dg_scaled_margin(history):
    if any(r["loss"] != r["loss"] for r in history):
        return "diverged"
    if history[-1]["rewards/accuracies"] < 0.3:
        return "reversed_preferences"
    if all(abs(r["loss"] - 0.6931) < 0.01 for r in history):
        return "no_learning"
    return "margin_explosion" if max(r["rewards/margins"] for r in history) > 50 else "healthy"


def _dg_accuracy_is_explosion(history):
    if any(r["loss"] != r["loss"] for r in history):
        return "diverged"
    if all(abs(r["loss"] - 0.6931) < 0.01 for r in history):
        return "no_learning"
    accuracy = history[-1]["rewards/accuracies"]
    if accuracy < 0.3:
        return "reversed_preferences"
    return "margin_explosion" if accuracy > 0.75 else "healthy"


register(Exercise(
    name="diagnose_run",
    # the library's full diagnosis gives this exercise's labels on its cases (a Diagnosis is accepted): while
    # lesson 09 is graded it is a Diagnosis around the learner's own label, so the lesson's cells still run on it
    same_answer={"rlhf_core.diagnostics.diagnose": "Diagnosis(diagnose_run(history), ['the label of your own "
                                                   "diagnose_run: diagnose is withheld while lesson 09 is graded'])"},
    lesson=9,
    points=2,
    cases=_diagnosis_cases,
    reference=diagnose_run,
    mistakes=[
        Mistake("Every run is called healthy: look at the margin, the loss and NaNs.", _dg_always_healthy),
        Mistake("The loss alone cannot tell a healthy run from an explosion: a loss near 0 is also what a large β "
                "gives at a moderate margin. Look at the unscaled margin (logratio/margin).", _dg_loss_only),
        Mistake("NaN slips through: comparisons with NaN are always False, so test math.isnan first.", _dg_ignores_nan),
        Mistake("You thresholded the β-scaled rewards/margins; the explosion rule reads the unscaled logratio/margin "
                "(above 50 nats), the log-ratio margin before it is multiplied by β.", _dg_scaled_margin),
        Mistake("High accuracy alone is not an explosion: a healthy run also reaches accuracy near 1. Look at the "
                "unscaled margin.", _dg_accuracy_is_explosion),
    ],
    summary="diagnose_run names healthy runs, margin explosions, stalled, diverged and reversed runs like the reference",
    formula="diverged if any NaN/inf; reversed_preferences if accuracy ends well below 0.5 with a negative margin; "
            "no_learning if the loss stays at log 2 with margin ≈ 0; margin_explosion if the unscaled margin "
            "(logratio/margin) exceeds 50 nats (the course's rule, calibrated for β = 0.1 and short responses); "
            "otherwise healthy",
))
