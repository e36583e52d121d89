"""The exercises as stubs, for working outside the notebooks (the "module mode" of the drill).

Every function has the signature and the contract of its reference in the library and raises
``NotImplementedError``. Fill one in, then run its check::

    from rlhf_core.course import exercises
    from rlhf_core.checks import check_dpo_loss
    check_dpo_loss(exercises.dpo_loss)

or all of them at once: ``python -m rlhf_core.course.exercises``. The notebooks hold the same stubs in
their exercise cells.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..checks import EXERCISES

# ---- 01 the RLHF objective ------------------------------------------------------------------


def optimal_policy(ref_logprobs: Tensor, rewards: Tensor, beta: float) -> Tensor:
    """Closed-form maximiser of E_π[r] − β·KL(π ‖ π_ref), as log-probs over the last axis.

    ``ref_logprobs``, ``rewards``: ``(..., N)``. Returns ``(..., N)`` log-probs
    ``log π*(y) = log π_ref(y) + r(y)/β − log Z`` with ``log Z = logsumexp(log π_ref + r/β)``.
    """
    raise NotImplementedError


def rlhf_objective(policy_logprobs: Tensor, ref_logprobs: Tensor, rewards: Tensor, beta: float) -> Tensor:
    """``J(π) = Σ_y π(y)·r(y) − β·Σ_y π(y)·(log π(y) − log π_ref(y))`` per prompt: ``(..., N)`` → ``(...)``.

    A response with π(y) = 0 contributes 0 to the KL (0·log 0 = 0).
    """
    raise NotImplementedError


# ---- 02 the DPO loss -------------------------------------------------------------------------


def dpo_loss(logp_pol_chosen: Tensor, logp_pol_rejected: Tensor, logp_ref_chosen: Tensor,
             logp_ref_rejected: Tensor, beta: float = 0.1) -> Tensor:
    """Mean sigmoid DPO loss (0-dim) from four ``(B,)`` tensors of summed log-probs.

    ``-mean log σ(β·[(log π(y_w) − log π_ref(y_w)) − (log π(y_l) − log π_ref(y_l))])``; log 2 when
    policy == reference; finite for margins of ±1e4.
    """
    raise NotImplementedError


def implicit_reward(logp_pol: Tensor, logp_ref: Tensor, beta: float = 0.1) -> Tensor:
    """``β·(log π(y|x) − log π_ref(y|x))``, elementwise."""
    raise NotImplementedError


# ---- 03 the toy policy -------------------------------------------------------------------------


def toy_dpo_step(policy, ref, batch: tuple[Tensor, Tensor, Tensor], optimizer: torch.optim.Optimizer,
                 beta: float = 0.1) -> float:
    """One DPO update of a ToyPolicy; returns the loss as a float.

    ``batch = (prompt_idx, chosen_idx, rejected_idx)``, each ``(K,)`` long. The reference's
    log-probs carry no gradient; zero the gradients, backward, step.
    """
    raise NotImplementedError


# ---- 04 sequence log-probs ----------------------------------------------------------------------


def get_logps(logits: Tensor, input_ids: Tensor, response_mask: Tensor, average: bool = False) -> Tensor:
    """Per-sequence log-prob of the response tokens: ``(B, T, V)``, ``(B, T)``, ``(B, T)`` → ``(B,)``.

    ``logits[:, t]`` predicts token ``t + 1``; ``response_mask`` is aligned with ``input_ids``.
    Sum (or, with ``average=True``, mean) over response tokens; a row without any gives 0.
    """
    raise NotImplementedError


# ---- 05 the transformer's parts -------------------------------------------------------------------


def rms_norm(x: Tensor, weight: Tensor, eps: float = 1e-6) -> Tensor:
    """``x / sqrt(mean(x², last axis) + eps) · weight``; ``x (..., D)``, ``weight (D,)``."""
    raise NotImplementedError


def swiglu(x: Tensor, w_gate: Tensor, w_up: Tensor, w_down: Tensor) -> Tensor:
    """``(silu(x W_gateᵀ) ⊙ (x W_upᵀ)) W_downᵀ``; weights in ``nn.Linear`` layout ``(out, in)``."""
    raise NotImplementedError


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate-half RoPE: ``x (B, H, T, Dh)``; ``cos``/``sin`` ``(T, Dh/2)`` or ``(B, T, Dh/2)``.

    ``x1, x2 = x[..., :Dh/2], x[..., Dh/2:]``; returns ``cat([x1·cos − x2·sin, x1·sin + x2·cos], -1)``.
    """
    raise NotImplementedError


# ---- 06 SFT -----------------------------------------------------------------------------------------


def sft_step(model, batch: dict[str, Tensor], optimizer: torch.optim.Optimizer) -> float:
    """One SFT update on a ``collate_sft`` batch (``input_ids``, ``attention_mask``, ``response_mask``).

    Loss: mean negative log-prob per response token (shifted like ``get_logps``). Zero the
    gradients, backward, step; return the loss as a float.
    """
    raise NotImplementedError


# ---- 07 preference pairs -------------------------------------------------------------------------


def collate_pairs(examples: list[dict], tokenizer, max_length: int | None = None) -> dict[str, Tensor]:
    """Rows ``{prompt, chosen, rejected}`` → six ``(B, T)`` long tensors, right-padded to one common T.

    Each sequence is ``[BOS] prompt response [EOS]``. Keys ``chosen_input_ids``,
    ``chosen_attention_mask`` (1 on real tokens), ``chosen_response_mask`` (1 on response tokens
    and EOS), and the same for ``rejected_``.
    """
    raise NotImplementedError


# ---- 08 the DPO step ------------------------------------------------------------------------------


def dpo_step(policy, batch: dict[str, Tensor], logp_ref_chosen: Tensor, logp_ref_rejected: Tensor,
             optimizer: torch.optim.Optimizer, beta: float = 0.1) -> dict[str, float]:
    """One DPO update on a ``collate_pairs`` batch with cached reference log-probs ``(B,)``.

    Returns ``{"loss", "rewards/chosen", "rewards/rejected", "rewards/accuracies",
    "rewards/margins", "logps/chosen", "logps/rejected", "logratio/margin"}`` as floats.
    """
    raise NotImplementedError


# ---- 09 diagnosis ---------------------------------------------------------------------------------


def diagnose_run(history) -> str:
    """Name what went wrong in a DPO run from its metrics history (a MetricsHistory or a list of rows).

    One of ``"healthy"``, ``"margin_explosion"``, ``"no_learning"``, ``"diverged"``,
    ``"reversed_preferences"``.
    """
    raise NotImplementedError


# ---- 10 the drill's interview variants -----------------------------------------------------------
# Their stubs are kept once, with each variant (rlhf_core.course.variants: VARIANTS[key].stub); here they are
# defined from there, so that this module has every exercise of the registry.


def _variant_stubs() -> dict:
    from .variants import VARIANTS

    return {v.exercise: v.stub_function() for v in VARIANTS.values() if v.exercise not in globals()}


globals().update(_variant_stubs())


# ---- 11 from scratch to transformers --------------------------------------------------------------


def export_model(model, tokenizer):
    """The TinyLM ``model`` as a ``transformers.LlamaForCausalLM`` (float32, eval mode) with the same logits.

    Build a ``LlamaConfig`` whose fields carry TinyLM's conventions (``rms_norm_eps``, the RoPE base,
    ``tie_word_embeddings``, no biases, as many key/value heads as heads) and load every weight under
    its Llama name. ``tokenizer`` gives the special-token ids (``pad_id``, ``bos_id``, ``eos_id``).
    """
    raise NotImplementedError


#: The exercises, in lesson order: the names of the checks' registry (one list, kept there).
EXERCISE_NAMES = tuple(EXERCISES)


def main() -> int:
    """Run every check on this module's functions and print one line each."""
    from .. import checks

    failures = 0
    for name in EXERCISE_NAMES:
        try:
            getattr(checks, f"check_{name}")(globals()[name])
        except AssertionError as exc:
            failures += 1
            print(str(exc))
    print(f"{len(EXERCISE_NAMES) - failures}/{len(EXERCISE_NAMES)} exercises pass")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
