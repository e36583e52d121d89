"""What to do about each diagnosis: the one source of advice that :func:`rlhf_core.diagnostics.diagnose` prints.

``FIXES`` maps each label of :data:`rlhf_core.diagnostics.DIAGNOSIS_LABELS` to a paragraph a learner can act on.
"""

from __future__ import annotations

__all__ = ["FIXES"]

FIXES: dict[str, str] = {
    "healthy": (
        "Nothing to fix. Keep an eye on the held-out margin and the KL to the reference: keep the "
        "checkpoint from around where the held-out margin stops rising, and compare this run's "
        "(KL, reward) point with runs at other values of β before calling it the best one."
    ),
    "margin_explosion": (
        "The policy has memorised its training pairs: the loss is saturated, so its gradient no "
        "longer teaches anything general, and the margin keeps growing by pushing log-probabilities "
        "down rather than by learning the preference. Average each update over more pairs (a bigger "
        "batch, or gradient accumulation) so that no single pair dominates a step; raise β (for "
        "example from 0.1 to 0.3–0.5) so that the loss saturates at a smaller log-ratio; use "
        "length-normalised log-probs (divide each summed log-prob by the response length) so long "
        "responses cannot run up huge margins; consider IPO, whose squared loss aims at a finite "
        "margin instead of pushing it to infinity; lower the learning rate; and stop early on the "
        "held-out margin or accuracy, not on the training loss."
    ),
    "no_learning": (
        "The policy is not moving away from the reference. Check that the reference is a separate, "
        "frozen copy of the starting model (copy.deepcopy(policy), then requires_grad_(False) and "
        "eval()), not the same object: if policy and reference are one module every log-ratio is "
        "exactly 0 and the loss is exactly log 2. Check that the learning rate is not 0 (and that a "
        "warm-up schedule does not start and stay at 0); that the loss is not detached (no .item(), "
        ".detach() or torch.no_grad() around the policy's forward pass, and loss.requires_grad is "
        "True); that the optimizer was built over the policy's parameters and optimizer.step() is "
        "called after backward(); and that the response mask is not empty, since summing log-probs "
        "over zero tokens gives 0."
    ),
    "diverged": (
        "A NaN or inf appeared. Lower the learning rate and clip the gradient norm "
        "(torch.nn.utils.clip_grad_norm_ with max_norm=1.0); compute log-probs with log_softmax and "
        "gather, never log(softmax(...)); write the loss with F.logsigmoid, never log(sigmoid(...)); "
        "look for masks that sum to zero when length-normalising (0/0) and for fully masked rows "
        "(logits of -inf); then restart from the last checkpoint whose metrics were finite."
    ),
    "reversed_preferences": (
        "The model is learning the opposite of the preference. Look for a swap of chosen and "
        "rejected: in the data loader or the collate function, in the order of a concatenated "
        "batch (chosen first, rejected second) and where it is split back, and in the sign of the "
        "loss, which is −log σ(β·(chosen log-ratio − rejected log-ratio)) with the minus sign "
        "outside. A quick check: one gradient step on a single pair, starting from "
        "policy == reference, must make that pair's margin positive."
    ),
    "likelihood_displacement": (
        "A warning rather than a failure: the margin grows mostly because the rejected responses "
        "lose probability, but the chosen responses lose probability too, so mass is moving to "
        "responses that are neither. Check the ground-truth reward and read some samples; if they "
        "get worse, add a small supervised (negative log-likelihood) term on the chosen responses "
        "to the DPO loss, raise β, lower the learning rate or stop earlier, and look for pairs "
        "whose chosen and rejected responses share most of their tokens (pushing one down then "
        "pushes the other down with it)."
    ),
}
