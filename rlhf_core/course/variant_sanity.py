"""The sanity checks of a drill variant: the six where they apply, what replaces the others.

The drill's six sanity checks (:mod:`rlhf_core.checks.sanity`) are written for DPO. Each
:class:`~rlhf_core.course.variants.Variant` says in its ``sanity`` plan which of them apply to its loss
and what replaces the others; :func:`run_variant_sanity` runs that plan on a learner's loss, in this
process, and returns one :class:`~rlhf_core.checks.SanityResult` per step (``applies=False`` for a step
that does not apply: SimPO and ORPO have no reference to freeze). It never raises.

=  ====================  ==========================================================================
#  where it applies      what runs
=  ====================  ==========================================================================
1  DPO, cDPO             the standard check (log 2 at policy == reference), through an adapter
   IPO, SimPO, ORPO      the loss at the variant's starting condition equals ``Variant.init_loss``
                         ((1/(2β))² for IPO, log(1 + e^γ) for SimPO, log 2 for ORPO's term)
2  reference-based       the standard check on the toy run trained with the learner's loss
   SimPO, ORPO           does not apply (no reference in the loss)
3  every variant         the standard check (a finite, non-zero gradient), through the adapter
4  every variant         on valid log-probs: the loss falls as the margin grows towards the loss's
                         own minimum (∞; 1/(2β) for IPO; log((1 − ε)/ε)/β for cDPO), rises again past a
                         finite one, and swapping chosen and rejected raises it
5  every variant         the standard check on the toy run trained with the learner's loss
6  DPO, IPO, cDPO        the standard check on ``implicit_reward``
   SimPO                 β multiplies the log-prob gap and γ stays outside it
   ORPO                  the log-odds stays finite and accurate as the average log-prob nears 0
=  ====================  ==========================================================================

The adapter is :func:`rlhf_core.course.variants.toy_loss_fn` with the learner's function: it gives any
variant's loss ``dpo_loss``'s signature, so the standard checks and the toy task run unchanged. Which of the
rows above a step runs is data: its :attr:`~rlhf_core.course.variant_types.SanityStep.probe`, never the paper's name.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ..checks import SANITY_CHECKS, CheckFailed, SanityResult, run_sanity_checks
from .variant_types import SanityStep
from .variants import Variant, get_variant, toy_loss_fn

__all__ = ["run_variant_sanity", "margin_minimum"]

_BASE = -12.0   # the log-probs the margin probes centre on: valid (negative) for every variant's inputs


def margin_minimum(variant: str | Variant) -> float:
    """The margin (log-ratio margin for a reference-based loss, log-prob gap for a reference-free one)
    at which the variant's loss is smallest, in the units its inputs are in: ∞ for DPO, SimPO and ORPO,
    1/(2β) for IPO, log((1 − ε)/ε)/β for cDPO (``Variant.best_margin`` at the drill's values)."""
    v = get_variant(variant)
    return v.best_margin(**v.params)


def _value(loss: Callable, pc: float, pr: float) -> float:
    """The adapted loss at a policy margin pc − pr (reference log-probs at the same base, so the log-ratio
    margin of a reference-based loss is the same number)."""
    t = lambda x: torch.tensor([x])
    out = loss(t(pc), t(pr), t(_BASE), t(_BASE))
    if not isinstance(out, torch.Tensor) or out.numel() != 1:
        raise CheckFailed(f"expected the loss as a 0-dim tensor, got {type(out).__name__}"
                          f"{'' if not isinstance(out, torch.Tensor) else ' of shape ' + str(tuple(out.shape))}. "
                          "The loss is the mean over pairs: reduce it with .mean().")
    value = float(out.detach())
    if not math.isfinite(value):
        raise CheckFailed(f"expected a finite loss at a margin of {pc - pr:g} (log-probs near {_BASE:g}), got {value}. "
                          "A log of a sigmoid or of 1 − e^a that underflows gives inf: use a stable form.")
    return value


def _at_margin(loss: Callable, margin: float) -> float:
    return _value(loss, _BASE + margin / 2, _BASE - margin / 2)


def _check_init(v: Variant, loss: Callable) -> str:
    expected = v.init_loss(**v.params)
    g = torch.Generator().manual_seed(3)
    a, b = -torch.rand(8, generator=g) * 20 - 1, -torch.rand(8, generator=g) * 20 - 1
    # policy == reference (a reference-based loss); a tie, equal log-probs (a reference-free one)
    pc, pr = (a, b) if v.uses_reference else (a, a.clone())
    got = loss(pc, pr, a.clone(), b.clone())
    got = float(got.detach()) if isinstance(got, torch.Tensor) and got.numel() == 1 else got
    if not isinstance(got, float) or not math.isclose(got, expected, rel_tol=1e-4, abs_tol=1e-5):
        hint = ""
        if isinstance(got, float) and abs(got - math.log(2)) < 1e-4 and abs(expected - math.log(2)) > 1e-3:
            hint = " That is log 2, DPO's value: the loss is not yet this variant's formula (see where its constants go)."
        elif isinstance(got, float) and not math.isclose(got, expected, rel_tol=1e-2):
            hint = " Work out the loss by hand at a zero margin and compare it line by line with your code."
        raise CheckFailed(f"at {v.init_condition}, expected the loss {expected:.4f}, got "
                          f"{got if not isinstance(got, float) else round(got, 4)}.{hint}")
    return f"✓ sanity check 1: the loss is {expected:.4f} at {v.init_condition}"


def _check_margin(v: Variant, loss: Callable) -> str:
    minimum = margin_minimum(v)
    top = min(8.0, 0.8 * minimum)
    margins = [0.0, top / 4, top / 2, top]
    values = [_at_margin(loss, m) for m in margins]
    if not all(later < earlier for earlier, later in zip(values, values[1:])):
        shown = ", ".join(f"{m:g} → {x:.4f}" for m, x in zip(margins, values))
        raise CheckFailed(f"expected the loss to fall as the margin grows from 0 to {top:g}"
                          f"{'' if math.isinf(minimum) else f' (its minimum is at {minimum:.3g})'}; got {shown}. "
                          "Check which response's log-prob comes first and the sign in front of the margin.")
    swap = top / 2
    given, swapped = _at_margin(loss, swap), _at_margin(loss, -swap)
    if not swapped > given:
        raise CheckFailed(f"expected swapping chosen and rejected (margin {swap:g} → {-swap:g}) to raise the loss; "
                          f"got {given:.4f} → {swapped:.4f}. Chosen and rejected may be swapped inside the loss.")
    beyond = ""
    if math.isfinite(minimum):
        at, past = _at_margin(loss, minimum), _at_margin(loss, 2 * minimum)
        if not past > at:
            raise CheckFailed(f"expected the loss to rise again past its minimum at a margin of {minimum:.3g}; "
                              f"got {at:.4f} there and {past:.4f} at {2 * minimum:.3g}. The loss may still be DPO's, "
                              "which only ever falls as the margin grows.")
        beyond = f", is smallest near {minimum:.3g} and rises past it"
    return f"✓ sanity check 4: the loss falls as the margin grows{beyond}; swapping chosen and rejected raises it"


def _check_simpo_beta(v: Variant, candidate: Callable) -> str:
    beta, gamma = v.params["beta"], v.params["gamma"]
    a, b = torch.tensor([-1.0, -2.5]), torch.tensor([-1.5, -2.0])
    doubled_beta = candidate(a, b, beta=2 * beta, gamma=gamma)
    doubled_gap = candidate(2 * a, 2 * b, beta=beta, gamma=gamma)
    values = [float(x.detach()) if isinstance(x, torch.Tensor) and x.numel() == 1 else math.nan
              for x in (doubled_beta, doubled_gap)]
    if not all(math.isfinite(x) for x in values) or not math.isclose(values[0], values[1], rel_tol=1e-5, abs_tol=1e-6):
        raise CheckFailed(f"expected doubling β and doubling the average log-probs to give the same loss (β multiplies "
                          f"the log-prob gap, γ stays outside it); got {values[0]:.5f} and {values[1]:.5f}. "
                          "Look at where β and γ enter your loss.")
    return "✓ sanity check 6: the reward β·(average log-prob) is linear in β, and γ stays outside it"


def _check_orpo_near_one(v: Variant, candidate: Callable) -> str:
    # the rejected response's P within 1e-6 of 1: 1 − exp(a) in float32 keeps about two digits there, which moves
    # the loss by about 1e-3 (relative); log(−expm1(a)) keeps all of them (1e-8), on every CPU
    chosen, rejected = -1.0, float(torch.tensor(-1e-6))
    out = candidate(torch.tensor([chosen]), torch.tensor([rejected]))
    got = float(out.detach()) if isinstance(out, torch.Tensor) and out.numel() == 1 else math.nan
    log_odds = lambda x: x - math.log(-math.expm1(x))
    expected = math.log1p(math.exp(log_odds(rejected) - log_odds(chosen)))
    if not math.isfinite(got) or not math.isclose(got, expected, rel_tol=1e-5):
        raise CheckFailed(f"at average log-probs of {chosen:g} (chosen) and {rejected:.3g} (rejected: P within 1e-6 of 1), "
                          f"expected the loss {expected:.6g}, got {got:.6g}. In float32, 1 − exp(a) loses its digits "
                          "as a nears 0: compute log(1 − e^a) in a form that keeps its digits.")
    return "✓ sanity check 6: the log-odds stays finite and accurate as the average log-prob nears 0"


def _result(number: int, name: str, run: Callable[[], str]) -> SanityResult:
    try:
        return SanityResult(number, name, True, run())
    except CheckFailed as exc:
        text = str(exc)
        return SanityResult(number, name, False, text if text.startswith("✗") else f"✗ sanity check {number} — {text}")
    except Exception as exc:  # the learner's code may raise anything (a stub, a shape error)
        return SanityResult(number, name, False, f"✗ sanity check {number} — could not run: {type(exc).__name__}: {exc}")


#: What each sanity probe of a plan needs, by the names :func:`run_variant_sanity` gives its inputs.
_NEEDS = {"init_loss": "adapted", "margin": "adapted", "reward_linear_in_beta": "loss", "log_odds_near_one": "loss"}
_STANDARD_NEEDS = {"dpo_loss": "adapted", "toy_result": "toy_result", "implicit_reward": "implicit_reward"}


def _step(v: Variant, step: SanityStep, given: dict, standard: dict[int, SanityResult]) -> SanityResult:
    """One step of the variant's plan (:attr:`SanityStep.probe` says how it runs)."""
    n = step.number
    if step.probe == "none":
        return SanityResult(n, step.name, True, f"— sanity check {n}: {step.check}", applies=False)
    needs = _NEEDS.get(step.probe) or _STANDARD_NEEDS[SANITY_CHECKS[n - 1][2]]
    if given[needs] is None:
        what = {"adapted": v.exercise, "loss": v.exercise}.get(needs, needs)
        return SanityResult(n, step.name, False, f"not run: no {what} given")
    if step.probe == "init_loss":
        return _result(n, f"loss at initialisation is {v.init_loss(**v.params):.4g}", lambda: _check_init(v, given[needs]))
    if step.probe == "margin":
        return _result(n, step.name, lambda: _check_margin(v, given[needs]))
    if step.probe == "reward_linear_in_beta":
        return _result(n, "reward linear in β, γ outside it", lambda: _check_simpo_beta(v, given[needs]))
    if step.probe == "log_odds_near_one":
        return _result(n, "log-odds finite as P nears 1", lambda: _check_orpo_near_one(v, given[needs]))
    return standard[n]


def run_variant_sanity(variant: str | Variant, loss: Callable | None, implicit_reward: Callable | None = None,
                       toy_result: dict | None = None, quiet: bool = False) -> list[SanityResult]:
    """The variant's sanity plan on a learner's ``loss`` (the variant's exercise, its own signature),
    ``implicit_reward`` (checks 6 of the reference-based variants) and ``toy_result`` (a toy run trained
    with that loss, for checks 2 and 5). Returns six results in order; prints each line unless ``quiet``.
    Never raises. A plan of the six as they are (DPO's) is :func:`rlhf_core.checks.run_sanity_checks` on the loss."""
    v = get_variant(variant)
    adapted = toy_loss_fn(v, loss) if loss is not None else None
    standard = {r.number: r for r in run_sanity_checks(adapted, implicit_reward, toy_result, quiet=True)}
    given = {"adapted": adapted, "loss": loss, "implicit_reward": implicit_reward, "toy_result": toy_result}
    results = [_step(v, step, given, standard) for step in v.sanity]
    if not quiet:
        for r in results:
            print(r.message)
    return results
