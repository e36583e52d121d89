"""What a drill variant is made of: the records :mod:`rlhf_core.course.variants` fills in, one per paper.

Everything in which one paper's drill differs from another's is a field here, so that the drill, its scorecard,
its red-flag scanner and its sanity plan read the record and never ask which paper it is.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..checks import EXERCISES, SANITY_CHECKS, check
from .red_flags import RedFlag

__all__ = ["Citation", "ReadBlock", "RedFlag", "SanityStep", "Variant", "sanity_plan", "SANITY_PROBES",
           "SHARED_EXERCISE"]

#: The exercise every variant's drill has besides its loss.
SHARED_EXERCISE = "implicit_reward"

#: How a sanity step is run (:mod:`rlhf_core.course.variant_sanity`): "standard" — the six's own check, through the
#: adapter; "init_loss" — the loss at the variant's starting condition equals ``Variant.init_loss``; "margin" — the
#: loss falls towards ``Variant.best_margin`` and rises past a finite one; "reward_linear_in_beta" — β multiplies the
#: log-prob gap and γ stays outside it; "log_odds_near_one" — the log-odds stays finite as P nears 1; "none" — the
#: step does not apply and nothing runs.
SANITY_PROBES = ("standard", "init_loss", "margin", "reward_linear_in_beta", "log_odds_near_one", "none")


@dataclass(frozen=True)
class Citation:
    """Where a variant comes from. ``arxiv`` is the arXiv id, or None where the work has none (``note`` says so)."""

    authors: str
    title: str
    venue: str
    year: int
    arxiv: str | None
    note: str = ""

    def __str__(self) -> str:
        where = f"arXiv:{self.arxiv}" if self.arxiv else (self.note or "no arXiv id")
        return f"{self.authors} ({self.year}). {self.title}. {self.venue}. {where}."


@dataclass(frozen=True)
class ReadBlock:
    """The 15-minute read, condensed: what problem, what idea, what evidence, what limitations."""

    problem: str
    idea: str
    evidence: str
    limitations: str


@dataclass(frozen=True)
class SanityStep:
    """One of the six sanity checks for a variant: ``applies`` as in :data:`rlhf_core.checks.SANITY_CHECKS`,
    or not; ``check`` — what to verify for this variant (the replacement where it does not apply); ``probe`` —
    how it runs (one of :data:`SANITY_PROBES`)."""

    number: int
    name: str
    applies: bool
    check: str
    probe: str = "standard"

    def __post_init__(self) -> None:
        if self.probe not in SANITY_PROBES:
            raise ValueError(f"unknown sanity probe {self.probe!r}; expected one of {SANITY_PROBES}")


_STANDARD = {
    1: "with policy == reference the loss is log 2, whatever β",
    2: "no reference parameter requires grad, and none moved during training",
    3: "the loss sends a non-zero, finite gradient to the policy's parameters",
    4: "a bigger margin lowers the loss, and swapping chosen and rejected raises it",
    5: "after training, the implicit reward β·log(π/π_ref) ranks every prompt's responses as preferred, "
       "and the top response gained probability",
    6: "the implicit reward β·log(π/π_ref) is linear in β",
}


def sanity_plan(**changes: tuple) -> tuple[SanityStep, ...]:
    """The six steps, standard unless ``changes`` (``c1=(applies, what[, probe])``…) says otherwise."""
    steps = []
    for number, name, _ in SANITY_CHECKS:
        applies, what, *probe = changes.get(f"c{number}", (True, _STANDARD[number]))
        steps.append(SanityStep(number, name, applies, what, *probe))
    return tuple(steps)


def no_finite_minimum(**_: float) -> float:
    """The margin where a loss that only ever falls as the margin grows is smallest: ∞."""
    return math.inf


@dataclass(frozen=True)
class Variant:
    """One paper the drill can run on (see :mod:`rlhf_core.course.variants`).

    ``stub`` is the exercise's source (signature, a docstring stating its conventions, ``raise
    NotImplementedError``); ``exercise`` the name of its check in :data:`rlhf_core.checks.EXERCISES`;
    ``reference`` the library's loss; ``params`` the hyper-parameters the drill uses (keyword arguments
    of ``reference``); ``init_loss(**params)`` the loss at ``init_condition`` (policy == reference, or a
    tie for the reference-free losses); ``debrief`` ``(question, model answer)`` pairs.

    What else differs between papers: ``names`` (how an explanation names the method, regexes in lower case: the
    red-flag scanner tells a sentence about it from one about another method); ``toy_step`` (the exercise whose
    learner's function trains the toy — DPO's ``toy_dpo_step`` — or None: the course's step with the learner's
    loss); ``own_checks`` (labels of the lesson's check cells that belong to this variant alone besides its
    exercise); ``best_margin(**params)`` (the margin where the loss is smallest).
    """

    key: str
    title: str
    citation: Citation
    read: ReadBlock
    explain_questions: tuple[str, ...]
    rubric: tuple[str, ...]
    red_flags: tuple[RedFlag, ...]
    stub: str
    exercise: str
    reference: Callable[..., Tensor]
    params: dict[str, float]
    log_probs: str               # "summed" or "length-averaged": what the loss is fed in the course
    uses_reference: bool         # whether the loss takes the reference model's log-probs
    sanity: tuple[SanityStep, ...]
    init_loss: Callable[..., float]
    init_condition: str
    debrief: tuple[tuple[str, str], ...]
    notes: str = ""              # the conventions chosen, and why
    names: tuple[str, ...] = ()
    toy_step: str | None = None
    own_checks: tuple[str, ...] = ()
    best_margin: Callable[..., float] = no_finite_minimum

    @property
    def short_title(self) -> str:
        """The title up to its dash: "DPO", "IPO", …"""
        return self.title.split(" — ")[0]

    @property
    def exercises(self) -> tuple[str, ...]:
        """The exercises of this variant's drill, in the lesson's order: its loss, the implicit reward, its toy step."""
        return (self.exercise, SHARED_EXERCISE) + ((self.toy_step,) if self.toy_step else ())

    @property
    def standard_sanity(self) -> bool:
        """Whether the sanity plan is the six checks as they are (then the lesson's own check cell runs them)."""
        return all(step.applies and step.probe == "standard" for step in self.sanity)

    def stub_function(self) -> Callable:
        """The stub, defined in a fresh namespace (``torch``, ``F`` and ``Tensor`` imported)."""
        namespace: dict[str, Any] = {"torch": torch, "F": F, "Tensor": Tensor}
        exec(compile(self.stub, f"<stub of {self.exercise}>", "exec"), namespace)
        return namespace[self.exercise]

    def check(self, candidate: Callable, seed: int = 0, quiet: bool = False) -> str | None:
        """Run the exercise's check on ``candidate`` (prints ``✓ …`` or raises ``CheckFailed``)."""
        return check(EXERCISES[self.exercise], candidate, seed, quiet)
