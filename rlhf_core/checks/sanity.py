"""The six sanity checks of the paper-to-code drill, by name.

=  =================================  ========================================================
#  function                           what must hold
=  =================================  ========================================================
1  ``sanity_loss_at_init``            policy == reference ⇒ the DPO loss is log 2
2  ``sanity_reference_frozen``        no reference parameter requires grad, and none moved
3  ``sanity_gradient_flows``          the loss sends a non-zero, finite gradient to the policy
4  ``sanity_margin_monotone``         a bigger margin lowers the loss; swapping raises it
5  ``sanity_ranking_recovered``       after training the implicit reward ranks as preferred,
                                      and the top response's probability went up; a run
                                      whose loss stayed at exactly log 2 while the policy
                                      moved fails whatever its ranking
6  ``sanity_reward_scales_with_beta`` the implicit reward is linear in β
=  =================================  ========================================================

Each prints ``✓ …`` or raises :class:`~rlhf_core.checks.CheckFailed` with the likely mistake.
They are the drill's minimum, not a proof: a mask that is not shifted, or ``-log(sigmoid(x))``,
passes all six — the ``check_<exercise>`` functions of :mod:`rlhf_core.checks` catch those.
:func:`run_sanity_checks` runs all six and returns a scorecard instead of raising.

Every check runs in the same two halves as the exercise checks, so that a grader can keep them apart:

1. **probe** — :func:`probe_sanity` calls the learner's function on fixed inputs and records what
   happened as plain JSON-able data (exceptions, odd types and NaNs included), with the same
   serialiser and error record as every check (:mod:`rlhf_core.checks.records`). It stops
   calling the learner's code as soon as the verdict is settled, so a failing check makes the
   same calls it always made (:mod:`rlhf_core.checks.sanity_probe`).
2. **judge** — :func:`judge_sanity` reads that record and returns the ``✓`` lines or raises
   ``CheckFailed``. It never runs the learner's code, so a process that never saw it can do it
   (:mod:`rlhf_core.checks.sanity_judge`).

:data:`SANITY_PROBES` maps each public function of a notebook to its probe name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .sanity_judge import JUDGES, Incomplete, failure, judge_ranking_recovered, judge_reference_frozen, run_judges
from .sanity_probe import PROBES, probe_ranking, probe_reference
from .verdicts import CheckFailed

__all__ = [
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

SANITY_PROBES: dict[str, str] = {
    "sanity_loss_at_init": "loss_at_init",
    "sanity_gradient_flows": "gradient_flows",
    "sanity_margin_monotone": "margin_monotone",
    "sanity_reward_scales_with_beta": "reward_scales_with_beta",
    "check_toy_training": "toy_training",
}


def probe_sanity(name: str, *candidates: Callable, **options: Any) -> dict:
    """The probe half of sanity check ``name`` (a value of :data:`SANITY_PROBES`): call the
    learner's function and return plain JSON-able data, ``{"sanity": name, …}``.

    Each name takes one candidate: ``dpo_loss`` ("loss_at_init", "gradient_flows",
    "margin_monotone"), ``implicit_reward`` ("reward_scales_with_beta") or a ``toy_dpo_step``
    ("toy_training", which also takes ``steps=400`` and ``beta=0.1``). The other keys are listed
    in the docstring of each ``probe_<name>`` of :mod:`rlhf_core.checks.sanity_probe`.
    """
    if name not in PROBES:
        raise ValueError(f"unknown sanity check {name!r}; expected one of {sorted(PROBES)}")
    if len(candidates) != 1:
        raise TypeError(f"sanity check {name!r} takes one function, got {len(candidates)}")
    return PROBES[name](candidates[0], **options)


def judge_sanity(name: str, record: dict) -> list[str]:
    """The judge half of sanity check ``name``: the ``✓`` lines for a record from
    :func:`probe_sanity`, or :class:`CheckFailed` at the first failure (its ``passed``
    attribute lists the lines that passed before it). Never calls the learner's code."""
    if name not in JUDGES:
        raise ValueError(f"unknown sanity check {name!r}; expected one of {sorted(JUDGES)}")
    if not isinstance(record, dict) or record.get("sanity") != name:
        got = record.get("sanity") if isinstance(record, dict) else type(record).__name__
        raise CheckFailed(f"✗ sanity check — expected the record of {name!r}, got {got!r}.", kind="malformed")
    lines: list[str] = []
    try:
        return run_judges(name, record, lines)
    except Incomplete as exc:
        incomplete = failure(exc.number, f"the record is incomplete: it has no {exc.key!r}.", kind="malformed")
        incomplete.passed = lines
        raise incomplete from None
    except CheckFailed as exc:
        exc.passed = lines
        raise


def _print_sanity(name: str, candidate: Callable, **options: Any) -> None:
    """Probe and judge in this process; print the ✓ lines (on a failure, those before it)."""
    record = probe_sanity(name, candidate, **options)
    try:
        lines = judge_sanity(name, record)
    except CheckFailed as exc:
        for line in getattr(exc, "passed", []):
            print(line)
        raise
    for line in lines:
        print(line)


def sanity_loss_at_init(dpo_loss: Callable) -> None:
    """Check 1: with policy == reference the loss is log 2 (zeros, and equal non-zero log-probs)."""
    _print_sanity("loss_at_init", dpo_loss)


def sanity_reference_frozen(toy_result: dict) -> None:
    """Check 2: no reference parameter requires grad, and none moved (``toy_result`` from run_toy_task)."""
    print(judge_reference_frozen(probe_reference(toy_result)))


def sanity_gradient_flows(dpo_loss: Callable) -> None:
    """Check 3: the loss sends a non-zero, finite gradient to a ToyPolicy's logits."""
    _print_sanity("gradient_flows", dpo_loss)


def sanity_margin_monotone(dpo_loss: Callable) -> None:
    """Check 4: a bigger margin lowers the loss; swapping chosen and rejected raises it."""
    _print_sanity("margin_monotone", dpo_loss)


def sanity_ranking_recovered(toy_result: dict) -> None:
    """Check 5: the implicit reward ranks every prompt's responses as preferred, strictly, and the
    top response gained probability. The steps' losses (``toy_result["losses"]``) must not all be
    exactly log 2 while the policy moved: that is a "reference" taken from the policy itself."""
    print(judge_ranking_recovered(probe_ranking(toy_result)))


def sanity_reward_scales_with_beta(implicit_reward: Callable) -> None:
    """Check 6: doubling β doubles the implicit reward."""
    _print_sanity("reward_scales_with_beta", implicit_reward)


def check_toy_training(step_fn: Callable, steps: int = 400, beta: float = 0.1) -> None:
    """Train the toy task with *your* ``toy_dpo_step`` and run checks 3, 2 and 5 on it.

    Check 3 in its step form: one step from the uniform start must give the policy's logits a
    non-zero, finite gradient and move them. Then ``steps`` steps of :func:`~rlhf_core.toy.run_toy_task`
    with your step, and checks 2 (reference frozen) and 5 (ranking recovered). Prints three ✓ lines.
    """
    _print_sanity("toy_training", step_fn, steps=steps, beta=beta)


SANITY_CHECKS: tuple[tuple[int, str, str], ...] = (
    (1, "loss at initialisation is log 2", "dpo_loss"),
    (2, "reference policy frozen", "toy_result"),
    (3, "gradient flows to the policy", "dpo_loss"),
    (4, "bigger margin lowers the loss, swapping raises it", "dpo_loss"),
    (5, "implicit reward recovers the ranking", "toy_result"),
    (6, "implicit reward linear in β", "implicit_reward"),
)

def _first_line(name: str, candidate: Callable) -> str:
    return judge_sanity(name, probe_sanity(name, candidate))[0]


_FUNCTIONS: dict[int, Callable[[Any], str]] = {
    1: lambda f: _first_line("loss_at_init", f),
    2: lambda toy_result: judge_reference_frozen(probe_reference(toy_result)),
    3: lambda f: _first_line("gradient_flows", f),
    4: lambda f: _first_line("margin_monotone", f),
    5: lambda toy_result: judge_ranking_recovered(probe_ranking(toy_result)),
    6: lambda f: _first_line("reward_scales_with_beta", f),
}


@dataclass
class SanityResult:
    """One sanity check's outcome; ``applies`` is False for a step a drill variant does not have (counted
    neither as passed nor as failed)."""

    number: int
    name: str
    passed: bool
    message: str
    applies: bool = True


def run_sanity_checks(dpo_loss: Callable | None = None, implicit_reward: Callable | None = None,
                      toy_result: dict | None = None, quiet: bool = False) -> list[SanityResult]:
    """Run the six checks on what is given; never raises. A missing input marks its checks as not run."""
    inputs = {"dpo_loss": dpo_loss, "implicit_reward": implicit_reward, "toy_result": toy_result}
    results = []
    for number, name, needs in SANITY_CHECKS:
        if inputs[needs] is None:
            results.append(SanityResult(number, name, False, f"not run: no {needs} given"))
            continue
        try:
            message = _FUNCTIONS[number](inputs[needs])
            if not quiet:
                print(message)
            results.append(SanityResult(number, name, True, message))
        except Exception as exc:  # a verdict (CheckFailed) or anything odd in what was passed in
            text = str(exc) if isinstance(exc, AssertionError) else f"✗ sanity check {number} — could not run: {type(exc).__name__}: {exc}"
            if not quiet:
                print(text)
            results.append(SanityResult(number, name, False, text))
    return results
