"""What to do about each diagnosis: the one source of advice that :func:`rlhf_core.diagnostics.diagnose` prints.

``FIXES`` maps each label of :data:`rlhf_core.diagnostics.DIAGNOSIS_LABELS` to a paragraph a learner can act on.
Where the course measured the fixes — the margin explosion, in lesson 09's shipped study
(``rlhf_core/assets/margin_study.json``) — they come in the order the study supports, each with what it
showed; ``tests/test_diagnostics.py`` reads the study and holds every figure quoted here to it.
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
        "The policy has left the reference: the loss is saturated, and the margin keeps growing by "
        "pushing log-probabilities down rather than by learning the preference. The fixes, in the order "
        "lesson 09's shipped study (rlhf_core/assets/margin_study.json) supports them: "
        "(1) Lower the learning rate first. Adam's step is η·m̂/(√v̂+ε): its size is set by the learning "
        "rate far more than by the size of the gradient, so the learning rate sets the drift: in the "
        "study every other fix tried at "
        "the learning rate that caused the explosion (10⁻²) left no sample grammatical and a KL to the "
        "reference of 90 nats or more, while a 33× smaller learning rate alone kept 85 % of the samples "
        "grammatical at a KL of about 2 nats (though it learned little: reward 0.09). "
        "(2) Then average each update over more pairs (a bigger batch, or gradient accumulation), raise β "
        "a little and warm up: at the smaller learning rate, batch 32 with β 0.3 and 10 warm-up steps reached "
        "a held-out accuracy of 0.92 and a reward of 0.50 at a KL of 3 nats, against 0.60 and 0.09 for the "
        "smaller learning rate alone (the study changed these three together, so it does not say which "
        "helped most). At the exploding learning rate a batch of 32 alone did not help: the explosion "
        "generalised (a held-out margin of 53 nats). "
        "(3) Stop early on the held-out margin or accuracy, not on the training loss; this guards a run "
        "whose step size is already sane — at the exploding learning rate the damage was done before the "
        "first evaluation, at step 10. "
        "(4) Length-normalised log-probs and IPO bound the margin, not the drift: at the exploding "
        "learning rate they kept the margin under the explosion rule's 50 nats, yet their policies were "
        "as broken (a KL above 300 nats, no grammatical sample); the study did not try them at a smaller "
        "learning rate. A larger β alone (1.0) or conservative DPO did not even stop the margin passing "
        "50 nats, at step 17 like the pathology."
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
