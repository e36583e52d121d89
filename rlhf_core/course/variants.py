"""The drill's interview variants: the same 60 minutes on DPO or on one of its successors.

An interviewer rarely hands over the paper you rehearsed. Each :class:`Variant` is everything the
drill needs to run on one paper: its citation, a Read block (problem, idea, evidence, limitations —
the paper's facts in the course's words), the questions of the explain block with a rubric, the
phrases that signal a misunderstanding, the exercise stub and its check, which of the six sanity
checks apply and what replaces the others, the loss at initialisation, and a debrief with model
answers. :data:`VARIANTS` holds five::

    key     paper                                   exercise (check)           log-probs          reference model
    dpo     Rafailov et al. 2023                    dpo_loss                   summed             yes
    ipo     Azar et al. 2023 (AISTATS 2024)         ipo_loss                   length-averaged*   yes
    cdpo    Mitchell 2023 (a note)                  conservative_dpo_loss      summed             yes
    simpo   Meng, Xia, Chen 2024                    simpo_loss                 length-averaged    no
    orpo    Hong, Lee, Thorne 2024                  orpo_odds_ratio_loss (odds-ratio term) length-averaged   no

(* IPO: the paper's log-ratios are of whole sequences; the course, like TRL, averages per token
first. The formula is the same; the target 1/(2β) is then in nats per token.)

``variant="random"`` draws one with :func:`pick_variant` (deterministic in the seed);
:func:`get_variant` resolves a key, ``"random"`` or a :class:`Variant`. :func:`train_toy_with`
trains the course's toy categorical policy with a variant's reference loss and returns what
sanity check 5 reads; :func:`find_red_flags` scans a written explanation for a variant's red flags
(the one scanner of :mod:`rlhf_core.course.red_flags`, the same for every variant).

The records live beside this module — what a variant is made of in :mod:`~rlhf_core.course.variant_types`, the
papers in :mod:`~rlhf_core.course.variants_with_reference` (DPO, IPO, cDPO) and
:mod:`~rlhf_core.course.variants_reference_free` (SimPO, ORPO) — and every name is importable from here.

The toy's responses are single tokens, so a response's summed and length-averaged log-probs are the
same number there: every variant trains on :func:`rlhf_core.toy.run_toy_task` unchanged, through
:func:`toy_loss_fn`, an adapter with ``dpo_loss``'s signature.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from torch import Tensor

from ..toy import run_toy_task
from .red_flags import RaisedFlag, RedFlag, scan_explanation
from .variant_types import SHARED_EXERCISE, Citation, ReadBlock, SanityStep, Variant
from .variants_reference_free import ORPO, SIMPO
from .variants_with_reference import CDPO, DPO, IPO

__all__ = ["Citation", "ReadBlock", "RedFlag", "RaisedFlag", "SanityStep", "Variant", "VARIANTS", "DEFAULT_VARIANT",
           "pick_variant", "get_variant", "owner_of_check", "toy_loss_fn", "train_toy_with", "find_red_flags",
           "TOY_READOUT_BETA", "SHARED_EXERCISE"]

#: The β of the implicit-reward readout for a variant that has no β of its own (ORPO): it scales the
#: toy's rewards, never their order.
TOY_READOUT_BETA = 0.1

#: The drill's variants, by key: "dpo" first (the default), then in the order of the module's table.
VARIANTS: dict[str, Variant] = {v.key: v for v in (DPO, IPO, CDPO, SIMPO, ORPO)}

#: The variant of a first attempt, and of a saved attempt that names none (saved before there were variants).
DEFAULT_VARIANT: str = next(iter(VARIANTS))


def pick_variant(seed: int, exclude: str | None = None) -> str:
    """The variant ``variant="random"`` stands for: a key of :data:`VARIANTS` other than ``exclude`` (the previous
    attempt's), drawn deterministically from ``seed`` (the same seed and ``exclude`` give the same variant on every
    machine and Python version)."""
    keys = [key for key in VARIANTS if key != exclude]
    return keys[random.Random(int(seed)).randrange(len(keys))]


def get_variant(variant: str | Variant | None = None, seed: int = 0) -> Variant:
    """A :class:`Variant` from its key, from ``"random"`` (:func:`pick_variant` of ``seed``), or itself; None is
    :data:`DEFAULT_VARIANT`."""
    if isinstance(variant, Variant):
        return variant
    variant = DEFAULT_VARIANT if variant is None else variant
    key = pick_variant(seed) if variant == "random" else variant
    if key not in VARIANTS:
        raise ValueError(f"unknown drill variant {variant!r}; expected one of {sorted(VARIANTS)} or 'random'")
    return VARIANTS[key]


def owner_of_check(label: str) -> str | None:
    """The variant a check cell labelled ``label`` belongs to alone — the one whose exercise or own check
    (:attr:`Variant.own_checks`) it is — or None for a check every variant's drill has."""
    return next((v.key for v in VARIANTS.values() if label == v.exercise or label in v.own_checks), None)


def find_red_flags(variant: str | Variant, explanation: str) -> list[RaisedFlag]:
    """``[(red flag, what is true instead)]`` of the variant asserted in a written explanation, in the variant's
    order, each once; each is a :class:`~rlhf_core.course.red_flags.RaisedFlag` whose ``sentence`` quotes the
    sentence that raised it. One scanner for every variant (:func:`rlhf_core.course.red_flags.scan_explanation`):
    a phrase under a negation or a contrast ("no", "without", "unlike", "instead of", "rather than", …) or in a
    sentence about another method ("RLHF trains a reward model, then runs PPO") is not a flag."""
    v = get_variant(variant)
    others = [name for w in VARIANTS.values() if w.key != v.key for name in (w.names or (w.key,))]
    return scan_explanation(v.red_flags, v.names or (v.key,), explanation, others)


# ------------------------------------------------------------------------------------------------
# the toy task with a variant's loss


def toy_loss_fn(variant: str | Variant, fn: Callable[..., Tensor] | None = None) -> Callable[..., Tensor]:
    """The variant's loss — its reference, or ``fn`` (a learner's function with the exercise's signature) —
    behind ``dpo_loss``'s signature ``(pc, pr, rc, rr, beta=…)``, with its :attr:`Variant.params`: what
    :func:`rlhf_core.toy.run_toy_task` takes as ``loss_fn``, and what the standard sanity checks can call.

    A reference-free loss ignores the reference log-probs; ORPO, which has no β, ignores ``beta`` too.
    The toy's responses are single tokens, so the summed log-prob it passes is also the average one.
    """
    v = get_variant(variant)
    params = dict(v.params)
    beta0 = params.pop("beta", TOY_READOUT_BETA)
    reference = v.reference if fn is None else fn
    if v.uses_reference:
        def loss(pc: Tensor, pr: Tensor, rc: Tensor, rr: Tensor, beta: float = beta0) -> Tensor:
            return reference(pc, pr, rc, rr, beta=beta, **params)
    elif "beta" in v.params:
        def loss(pc: Tensor, pr: Tensor, rc: Tensor, rr: Tensor, beta: float = beta0) -> Tensor:
            return reference(pc, pr, beta=beta, **params)
    else:
        def loss(pc: Tensor, pr: Tensor, rc: Tensor, rr: Tensor, beta: float = beta0) -> Tensor:
            return reference(pc, pr, **params)
    loss.__name__ = getattr(fn, "__name__", v.exercise) if fn is not None else f"{v.exercise}_on_the_toy"
    return loss


def train_toy_with(variant: str | Variant, seed: int = 0, steps: int = 400) -> dict:
    """Train the toy categorical policy (:func:`rlhf_core.toy.run_toy_task`: 2 prompts × 6 responses, all
    pairs of two known rankings, Adam, a frozen uniform reference) with the variant's reference loss.

    Returns ``run_toy_task``'s dict — ``before``, ``after``, ``rewards`` (the implicit reward
    β·log(π/π_ref), with the variant's β, or :data:`TOY_READOUT_BETA` for ORPO), ``rankings``, ``ref``,
    ``policy``, ``losses`` — which sanity checks 2 and 5 read as they are, plus ``variant`` (the key) and
    ``loss_params``. For a reference-free variant the frozen uniform reference only serves that readout:
    against a uniform reference, β·log(π/π_ref) has the order of SimPO's reward and of ORPO's log-odds.
    """
    v = get_variant(variant)
    beta = v.params.get("beta", TOY_READOUT_BETA)
    result = run_toy_task(seed=seed, beta=beta, steps=steps, loss_fn=toy_loss_fn(v))
    result["variant"] = v.key
    result["loss_params"] = dict(v.params)
    return result


