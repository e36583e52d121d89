"""Preference losses: sigmoid DPO and its successors.

Every loss takes per-sequence log-probabilities of shape ``(B,)`` (one number per response) and
returns a 0-dim tensor, the mean over the batch; the ``*_losses`` variants return the ``(B,)``
per-example losses. Whether a loss expects *summed* or *length-averaged* log-probs matters and is
stated in each docstring: ``get_logps(..., average=False)`` gives the sums DPO is defined on,
``average=True`` the per-token means SimPO and ORPO use.

Naming follows the paper: ``y_w`` (chosen, preferred), ``y_l`` (rejected), ``π`` the policy being
trained, ``π_ref`` the frozen reference, ``β`` the strength of the KL anchor.

Numerical stability: every ``-log σ(h)`` is computed as ``-F.logsigmoid(h)``, which is exact for
any finite ``h``. ``-torch.log(torch.sigmoid(h))`` looks the same but returns ``inf`` once ``σ(h)``
comes out as 0. In float32 on a CPU, torch's ``sigmoid`` gives exactly 0 from about ``h = -88.7`` on
(already at ``h = -89``), where ``e^{-h}`` passes the largest float32, about ``e^{88.72}``: well before
``h ≈ -104``, where the true ``σ(h)`` itself would round to 0 in float32 (``tests/test_losses.py``
measures it; lesson 02 prints it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "dpo_logits",
    "dpo_losses",
    "dpo_loss",
    "implicit_reward",
    "dpo_gradient_weight",
    "ipo_losses",
    "ipo_loss",
    "hinge_losses",
    "hinge_loss",
    "conservative_dpo_losses",
    "conservative_dpo_loss",
    "simpo_losses",
    "simpo_loss",
    "orpo_log_odds",
    "orpo_odds_ratio_losses",
    "orpo_odds_ratio_loss",
    "plackett_luce_loss",
]


def _check_same_shape(**tensors: Tensor) -> None:
    shapes = {name: tuple(t.shape) for name, t in tensors.items()}
    if len(set(shapes.values())) > 1:
        listed = ", ".join(f"{n}{list(s)}" for n, s in shapes.items())
        raise ValueError(
            f"the log-prob tensors must all have the same shape (B,), got {listed}; "
            "broadcasting them would silently pair the wrong responses"
        )


def dpo_logits(
    logp_pol_chosen: Tensor,
    logp_pol_rejected: Tensor,
    logp_ref_chosen: Tensor,
    logp_ref_rejected: Tensor,
    beta: float = 0.1,
) -> Tensor:
    """The argument of the DPO log-sigmoid, ``h = β·[(log π(y_w) − log π_ref(y_w)) − (log π(y_l) − log π_ref(y_l))]``.

    Equal to ``implicit_reward(chosen) − implicit_reward(rejected)``: the β-scaled reward margin.
    Shapes: four ``(B,)`` tensors of summed log-probs in, ``(B,)`` out.
    """
    _check_same_shape(
        logp_pol_chosen=logp_pol_chosen,
        logp_pol_rejected=logp_pol_rejected,
        logp_ref_chosen=logp_ref_chosen,
        logp_ref_rejected=logp_ref_rejected,
    )
    chosen_logratio = logp_pol_chosen - logp_ref_chosen  # (B,) log π/π_ref on y_w
    rejected_logratio = logp_pol_rejected - logp_ref_rejected  # (B,) log π/π_ref on y_l
    return beta * (chosen_logratio - rejected_logratio)  # (B,)


def dpo_losses(
    logp_pol_chosen: Tensor,
    logp_pol_rejected: Tensor,
    logp_ref_chosen: Tensor,
    logp_ref_rejected: Tensor,
    beta: float = 0.1,
) -> Tensor:
    """Per-example sigmoid DPO loss ``-log σ(h)`` (see :func:`dpo_logits`), shape ``(B,)``.

    Takes *summed* log-probs over response tokens (``get_logps(..., average=False)``): the paper's
    π(y|x) is the probability of the whole response.
    """
    h = dpo_logits(logp_pol_chosen, logp_pol_rejected, logp_ref_chosen, logp_ref_rejected, beta)
    return -F.logsigmoid(h)  # (B,)


def dpo_loss(
    logp_pol_chosen: Tensor,
    logp_pol_rejected: Tensor,
    logp_ref_chosen: Tensor,
    logp_ref_rejected: Tensor,
    beta: float = 0.1,
) -> Tensor:
    """Mean sigmoid DPO loss (Rafailov et al. 2023, eq. 7), a 0-dim tensor.

    ``L = -mean log σ(β·[(log π(y_w) − log π_ref(y_w)) − (log π(y_l) − log π_ref(y_l))])``

    Args: four ``(B,)`` tensors of *summed* per-sequence log-probs (policy chosen, policy rejected,
    reference chosen, reference rejected) and ``β``. When the policy equals the reference the loss
    is exactly ``log 2``; it is finite and exact for margins of ±1e4.
    """
    return dpo_losses(logp_pol_chosen, logp_pol_rejected, logp_ref_chosen, logp_ref_rejected, beta).mean()


def implicit_reward(logp_pol: Tensor, logp_ref: Tensor, beta: float = 0.1) -> Tensor:
    """DPO's implicit reward ``r̂(x, y) = β·(log π(y|x) − log π_ref(y|x))``, elementwise.

    It equals the true reward of the KL-regularised optimum up to the per-prompt constant
    ``β·log Z(x)``, which cancels in every comparison of two responses to the same prompt.
    """
    return beta * (logp_pol - logp_ref)


def dpo_gradient_weight(
    logp_pol_chosen: Tensor,
    logp_pol_rejected: Tensor,
    logp_ref_chosen: Tensor,
    logp_ref_rejected: Tensor,
    beta: float = 0.1,
) -> Tensor:
    """The per-example weight of the DPO gradient, ``σ(r̂(y_l) − r̂(y_w)) = σ(−h)``, shape ``(B,)``.

    ``∇L = −β·σ(−h)·[∇log π(y_w) − ∇log π(y_l)]``: the weight is ½ at a tie (``h = 0``, every pair at
    the start, when policy == reference); it falls towards 0 as a pair is ranked correctly by a wider
    margin, and rises towards 1 only as the mis-ranking grows. Only the *difference* of the two
    log-probs is pushed the right way; each on its own may fall (likelihood displacement, lesson 08).
    """
    h = dpo_logits(logp_pol_chosen, logp_pol_rejected, logp_ref_chosen, logp_ref_rejected, beta)
    return torch.sigmoid(-h)


def ipo_losses(
    logp_pol_chosen: Tensor,
    logp_pol_rejected: Tensor,
    logp_ref_chosen: Tensor,
    logp_ref_rejected: Tensor,
    beta: float = 0.1,
) -> Tensor:
    """Per-example IPO loss (Azar et al. 2023, arXiv:2310.12036): ``(Δ − 1/(2β))²`` with the
    *unscaled* margin ``Δ = (log π(y_w) − log π_ref(y_w)) − (log π(y_l) − log π_ref(y_l))``.

    A squared loss regresses the margin onto the target ``1/(2β)`` instead of pushing it to
    infinity, which is what makes IPO robust to the margin explosion of sigmoid DPO on
    near-deterministic preferences (the paper's τ is this β).

    Two conventions, and the course follows the second. The paper defines IPO on log-ratios of
    *whole sequences* (summed log-probs, ``get_logps(..., average=False)``). TRL's ``DPOTrainer``
    with ``loss_type="ipo"`` averages the log-probs per token first, and the course's IPO runs do
    the same (``average_logps=True`` in lesson 09's study, ``get_logps(..., average=True)``): then
    β = 0.1 sets a target gap of 1/(2β) = 5 nats *per token*. Fed summed log-probs, the same formula
    is the paper's, with a target of 5 nats for the whole response.

    At policy == reference (``Δ = 0``) the loss is the squared target ``(1/(2β))²``, 25 at β = 0.1,
    not DPO's log 2; and past the target a bigger margin *raises* the loss.
    """
    h = dpo_logits(logp_pol_chosen, logp_pol_rejected, logp_ref_chosen, logp_ref_rejected, 1.0)
    return (h - 1.0 / (2.0 * beta)) ** 2  # (B,)


def ipo_loss(logp_pol_chosen, logp_pol_rejected, logp_ref_chosen, logp_ref_rejected, beta=0.1) -> Tensor:
    """Mean IPO loss (0-dim); see :func:`ipo_losses`. The course feeds it length-averaged log-probs
    (TRL's convention); the paper's are summed."""
    return ipo_losses(logp_pol_chosen, logp_pol_rejected, logp_ref_chosen, logp_ref_rejected, beta).mean()


def hinge_losses(
    logp_pol_chosen: Tensor,
    logp_pol_rejected: Tensor,
    logp_ref_chosen: Tensor,
    logp_ref_rejected: Tensor,
    beta: float = 0.1,
) -> Tensor:
    """Per-example hinge loss on the DPO logit, ``max(0, 1 − h)`` (see :func:`dpo_logits`), shape ``(B,)``.

    The reference-normalised hinge of RSO (Liu et al. 2023, arXiv:2309.06657), which TRL's
    ``loss_type="hinge"`` computes; SLiC-HF's calibration loss (Zhao et al. 2023, arXiv:2305.10425) is a
    hinge on the policy's raw log-likelihoods, with no reference. A pair stops contributing once
    ``h ≥ 1``, i.e. once the unscaled margin reaches ``1/β``. Summed log-probs.
    """
    h = dpo_logits(logp_pol_chosen, logp_pol_rejected, logp_ref_chosen, logp_ref_rejected, beta)
    return torch.relu(1.0 - h)


def hinge_loss(logp_pol_chosen, logp_pol_rejected, logp_ref_chosen, logp_ref_rejected, beta=0.1) -> Tensor:
    """Mean hinge loss (0-dim); see :func:`hinge_losses`. Summed log-probs."""
    return hinge_losses(logp_pol_chosen, logp_pol_rejected, logp_ref_chosen, logp_ref_rejected, beta).mean()


def conservative_dpo_losses(
    logp_pol_chosen: Tensor,
    logp_pol_rejected: Tensor,
    logp_ref_chosen: Tensor,
    logp_ref_rejected: Tensor,
    beta: float = 0.1,
    label_smoothing: float = 0.1,
) -> Tensor:
    """Per-example conservative DPO (cDPO): DPO with preference labels flipped with probability ε.

    ``-(1 − ε)·log σ(h) − ε·log σ(−h)``. With ε > 0 the loss has a finite minimum at
    ``h = log((1 − ε)/ε)``, so margins stop growing there. ε = 0 is plain DPO. Summed log-probs.
    Mitchell's note (2023). TRL 1.16 has no such loss: its ``"sigmoid"`` ignores ``label_smoothing`` (older
    TRL versions computed cDPO there), and its ``"robust"`` is robust DPO, another loss.
    """
    if not 0.0 <= label_smoothing < 0.5:
        raise ValueError(f"label_smoothing must be in [0, 0.5), got {label_smoothing}")
    h = dpo_logits(logp_pol_chosen, logp_pol_rejected, logp_ref_chosen, logp_ref_rejected, beta)
    return -(1.0 - label_smoothing) * F.logsigmoid(h) - label_smoothing * F.logsigmoid(-h)


def conservative_dpo_loss(
    logp_pol_chosen, logp_pol_rejected, logp_ref_chosen, logp_ref_rejected, beta=0.1, label_smoothing=0.1
) -> Tensor:
    """Mean conservative DPO loss (0-dim); see :func:`conservative_dpo_losses`. Summed log-probs."""
    return conservative_dpo_losses(
        logp_pol_chosen, logp_pol_rejected, logp_ref_chosen, logp_ref_rejected, beta, label_smoothing
    ).mean()


def simpo_losses(avg_logp_chosen: Tensor, avg_logp_rejected: Tensor, beta: float = 2.0, gamma: float = 0.5) -> Tensor:
    """Per-example SimPO loss (Meng et al. 2024): ``-log σ(β·(ā_w − ā_l) − γ)``, no reference model.

    ``ā`` are *length-averaged* log-probs (``get_logps(..., average=True)``): SimPO's reward is the
    average log-likelihood, so a longer response is not favoured for having more tokens. ``γ`` is a
    target margin, in the units of the β-scaled rewards (it is not multiplied by β). At a tie
    (``ā_w = ā_l``) the loss is ``−log σ(−γ) = log(1 + e^γ)``, about 0.974 at γ = 0.5.
    """
    _check_same_shape(avg_logp_chosen=avg_logp_chosen, avg_logp_rejected=avg_logp_rejected)
    return -F.logsigmoid(beta * (avg_logp_chosen - avg_logp_rejected) - gamma)


def simpo_loss(avg_logp_chosen: Tensor, avg_logp_rejected: Tensor, beta: float = 2.0, gamma: float = 0.5) -> Tensor:
    """Mean SimPO loss (0-dim); see :func:`simpo_losses`. Length-averaged log-probs."""
    return simpo_losses(avg_logp_chosen, avg_logp_rejected, beta, gamma).mean()


def orpo_log_odds(avg_logp: Tensor) -> Tensor:
    """``log odds(y) = log p − log(1 − p)`` for ``p = exp(avg_logp)``, computed stably.

    ``avg_logp`` must be ≤ 0 (a length-averaged log-prob); ``log(1 − e^a)`` is ``log(−expm1(a))``.
    """
    avg_logp = avg_logp.clamp(max=-1e-6)  # p = 1 exactly would make the odds infinite
    return avg_logp - torch.log(-torch.expm1(avg_logp))


def orpo_odds_ratio_losses(avg_logp_chosen: Tensor, avg_logp_rejected: Tensor) -> Tensor:
    """Per-example odds-ratio term of ORPO (Hong et al. 2024): ``-log σ(log odds(y_w) − log odds(y_l))``.

    ORPO adds ``λ`` times this term to the SFT loss on the chosen response, with no reference model.
    Takes *length-averaged* log-probs (the odds are of the per-token average probability). At a tie
    (equal odds) the term is log 2.
    """
    _check_same_shape(avg_logp_chosen=avg_logp_chosen, avg_logp_rejected=avg_logp_rejected)
    return -F.logsigmoid(orpo_log_odds(avg_logp_chosen) - orpo_log_odds(avg_logp_rejected))


def orpo_odds_ratio_loss(avg_logp_chosen: Tensor, avg_logp_rejected: Tensor) -> Tensor:
    """Mean ORPO odds-ratio term (0-dim); see :func:`orpo_odds_ratio_losses`. Length-averaged log-probs."""
    return orpo_odds_ratio_losses(avg_logp_chosen, avg_logp_rejected).mean()


def plackett_luce_loss(logp_pol: Tensor, logp_ref: Tensor, beta: float = 0.1) -> Tensor:
    """Mean Plackett–Luce (K-wise) DPO loss (Rafailov et al. 2023, Appendix A.3), a 0-dim tensor.

    ``L = -mean over prompts of Σ_k log[exp(h_k) / Σ_{j ≥ k} exp(h_j)]``, ``h_k = β·(log π(y_k) − log π_ref(y_k))``:
    the log-likelihood of the whole ranking read as K successive choices, each one of the best response
    among those not yet placed (position k's denominator runs over positions k, k+1, …, K only).

    Args: ``logp_pol``, ``logp_ref``: ``(B, K)`` tensors of *summed* per-sequence log-probs of K responses to
    each of B prompts, every row already ranked **best → worst** (column 0 the most preferred; the order of
    the columns is the data), and ``β``. For K = 2 this is exactly ``dpo_loss`` on columns 0 and 1; when the
    policy equals the reference it is ``log K!``. Finite for margins of ±1e4: each denominator is a
    log-sum-exp over a suffix, never ``exp`` then ``log``.
    """
    if logp_pol.shape != logp_ref.shape or logp_pol.dim() != 2:
        raise ValueError(f"expected two (B, K) tensors of the same shape, got {list(logp_pol.shape)} and "
                         f"{list(logp_ref.shape)}")
    h = beta * (logp_pol - logp_ref)  # (B, K) implicit rewards, best first
    remaining = torch.logcumsumexp(h.flip(-1), dim=-1).flip(-1)  # (B, K) log Σ_{j ≥ k} exp(h_j)
    return -(h - remaining).sum(-1).mean()  # the last position's term is 0: a choice among one
