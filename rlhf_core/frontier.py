"""The reward-vs-KL frontier: the course's one way to compare methods (the paper's controlled-sentiment figure).

A run is a :class:`FrontierPoint` (its sequence KL to the reference and its mean ground-truth reward);
:func:`pareto_frontier` keeps the points no other beats on both; :func:`baseline_reward_at` reads the
best reward a baseline reaches within a KL budget off its frontier (a staircase, no interpolation);
:func:`frontier_gap` says how far each point sits above that, and :func:`betas_above_baseline` gives
the per-β verdict lesson 09 prints.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["FrontierPoint", "pareto_frontier", "baseline_reward_at", "frontier_gap", "betas_above_baseline"]


@dataclass
class FrontierPoint:
    """One run's place on the reward-vs-KL plane.

    ``label`` names the method ("DPO", "preferred-FT", "PPO", ...); ``param`` is what was varied to
    get the point (β for DPO, the number of steps or the learning rate for preferred-FT); ``kl`` is
    the sequence-level KL(π‖π_ref) in nats on samples; ``reward`` the mean ground-truth reward of
    those samples.
    """

    label: str
    param: float
    kl: float
    reward: float



def pareto_frontier(points: Sequence[FrontierPoint]) -> list[FrontierPoint]:
    """The upper-left envelope: the points no other point beats on both KL (lower) and reward.

    Sorted by KL; each kept point has a reward strictly above every point with lower KL (of equal
    KLs, only the highest reward survives). Points with a non-finite KL or reward are dropped.
    Labels are ignored: pass one method's points to get that method's frontier.
    """
    finite = [p for p in points if math.isfinite(p.kl) and math.isfinite(p.reward)]
    ordered = sorted(finite, key=lambda p: (p.kl, -p.reward))
    frontier: list[FrontierPoint] = []
    best = -math.inf
    for p in ordered:
        if p.reward > best:
            frontier.append(p)
            best = p.reward
    return frontier


def baseline_reward_at(baseline: Sequence[FrontierPoint], kl: float) -> float:
    """The best reward ``baseline`` reaches at a KL of at most ``kl``: its frontier read as a staircase
    (the last :func:`pareto_frontier` point with KL ≤ ``kl``). ``-inf`` when it has no point that close.

    A staircase, not a line through the frontier's points: a method cannot be credited with a reward it
    never reached at that KL, and past its last point it stays at its best (a plateau stays a plateau).
    """
    best = -math.inf
    for p in pareto_frontier(baseline):
        if p.kl > kl:
            break
        best = p.reward
    return best


def frontier_gap(points: Sequence[FrontierPoint], baseline: Sequence[FrontierPoint],
                 kl_min: float = 0.5) -> list[tuple[FrontierPoint, float]]:
    """How far each of ``points`` with KL > ``kl_min`` sits above ``baseline``'s frontier at its KL:
    ``(point, point.reward − baseline_reward_at(baseline, point.kl))``, in the order given.

    Positive: more reward than the baseline ever got for that much KL or less. ``-inf`` reached by the
    baseline means the gap is ``+inf`` (it never got that close to the reference). Non-finite points
    are left out. The course's one frontier comparison: lesson 09 and the tests use it through
    :func:`betas_above_baseline`.
    """
    gaps = []
    for p in points:
        if math.isfinite(p.kl) and math.isfinite(p.reward) and p.kl > kl_min:
            gaps.append((p, float(p.reward - baseline_reward_at(baseline, p.kl))))
    return gaps


def betas_above_baseline(points: Sequence[FrontierPoint], kl_min: float = 0.5, method: str = "DPO",
                         baseline: str = "Preferred-FT") -> dict[float, bool]:
    """For each ``param`` (β) of ``method``'s points: is every one of its points with KL > ``kl_min``
    strictly above ``baseline``'s frontier (:func:`frontier_gap` > 0)? A ``param`` with no point past
    ``kl_min`` gets no verdict.

    >>> betas_above_baseline(load_frontier())   # lesson 09: {0.1: True, 0.3: True, 1.0: True, 2.0: False}
    """
    base = [p for p in points if p.label == baseline]
    verdict: dict[float, bool] = {}
    for p, gap in frontier_gap([p for p in points if p.label == method], base, kl_min):
        verdict[p.param] = verdict.get(p.param, True) and gap > 0
    return verdict
