"""A run's diagnosis as a learner reads it, and what to do about each label: the one source of advice.

:func:`rlhf_core.diagnostics.diagnose` returns a :class:`Diagnosis` — the label, the numbers behind it,
the step where it was first seen — which prints as a headline, the evidence as bullets and what to do
(``print(d)``), or as a short HTML block in a notebook.

``FIXES`` maps each label of :data:`rlhf_core.diagnostics.DIAGNOSIS_LABELS` to a paragraph a learner can
act on. Where the course measured the fixes — the margin explosion, in lesson 09's shipped study
(``rlhf_core/assets/margin_study.json``) — they come in the order the study supports, each with what it
showed; ``tests/test_diagnostics.py`` reads the study and holds every figure quoted here to it.
"""

from __future__ import annotations

import html
import re
import textwrap
from dataclasses import dataclass, field

__all__ = ["FIXES", "Diagnosis", "WIDTH"]

WIDTH = 100  # columns of the printed diagnosis

FIXES: dict[str, str] = {
    "healthy": (
        "Nothing to fix. Keep an eye on the held-out margin and the KL to the reference: keep the "
        "checkpoint from around where the held-out margin stops rising, and compare this run's "
        "(KL, reward) point with runs at other values of β before calling it the best one."
    ),
    "margin_explosion": (
        "The margin has run past anything the preferences ask for: the loss is saturated, and the margin "
        "grows by pushing log-probabilities down rather than by learning the preference (the margin alone does "
        "not say how far the policy drifted: the KL to the reference does, where it was measured). The fixes, in the order "
        "lesson 09's shipped study (rlhf_core/assets/margin_study.json) supports them: "
        "(1) Lower the learning rate first. Adam's step is η·m̂/(√v̂+ε): a constant rescaling of the gradient "
        "leaves it unchanged, so the learning rate, not the loss's scale, bounds each step: in the "
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


@dataclass
class Diagnosis:
    """What :func:`~rlhf_core.diagnostics.diagnose` concluded about a run.

    ``label`` is one of :data:`~rlhf_core.diagnostics.DIAGNOSIS_LABELS`; ``evidence`` holds one line per
    number that led to it; ``step`` is the first step where the problem was seen (``None`` when there is
    none, as for ``healthy``); ``also`` lists the other labels that applied but lost on precedence;
    ``advice``, when set, replaces the label's paragraph of :data:`FIXES` (used for histories too
    short to judge). ``drift_step`` is the first evaluation step whose held-out sampled KL passed
    :data:`~rlhf_core.diagnostics.DRIFT_KL_THRESHOLD` (:func:`~rlhf_core.diagnostics.first_drift_step`;
    ``None`` when it never did or was not logged).
    """

    label: str
    evidence: list[str] = field(default_factory=list)
    step: int | None = None
    also: list[str] = field(default_factory=list)
    advice: str | None = None
    drift_step: int | None = None

    @property
    def fix(self) -> str:
        """What to do: ``advice`` if set, else the paragraph of :data:`FIXES` for this label."""
        return self.advice if self.advice is not None else FIXES.get(self.label, "")

    @property
    def ok(self) -> bool:
        """True when the run is healthy by its training metrics *and* its held-out KL did not drift."""
        return self.label == "healthy" and self.drift_step is None

    def headline(self) -> str:
        """One line: the label, the step where it was first seen, the drift, and ok / not ok."""
        parts = [self.label + (f" from step {self.step}" if self.step is not None else "")]
        if self.drift_step is not None:
            parts.append(f"drifted at step {self.drift_step}")
        if self.also:
            parts.append("also " + ", ".join(self.also))
        parts.append("ok" if self.ok else "not ok")
        return "Diagnosis: " + " · ".join(parts)

    def advice_paragraphs(self) -> list[str]:
        """:attr:`fix` split before each numbered step ("(1) …", "(2) …"), one paragraph each."""
        return [p.strip() for p in re.split(r" (?=\(\d+\) )", self.fix) if p.strip()]

    def __str__(self) -> str:
        """The headline, the evidence as bullets, then what to do, wrapped to :data:`WIDTH` columns."""
        wrap = lambda text, first, rest: textwrap.wrap(text, WIDTH, initial_indent=first, subsequent_indent=rest,  # noqa: E731
                                                       break_long_words=False, break_on_hyphens=False)
        lines = [self.headline()]
        if self.evidence:
            lines.append("Evidence:")
            for item in self.evidence:
                lines += wrap(item, "  • ", "    ")
        if self.fix:
            lines.append("What to do:")
            for paragraph in self.advice_paragraphs():
                lines += wrap(paragraph, "  ", "      " if re.match(r"\(\d+\) ", paragraph) else "  ")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """The same in a notebook: the headline in bold, the evidence as a list, the advice as paragraphs."""
        esc = html.escape
        color = "#2e7d32" if self.ok else "#d32f2f"
        rows = [f'<div style="font-weight:600">{esc(self.headline())}</div>']
        if self.evidence:
            rows.append('<div style="margin-top:.3em">Evidence:</div><ul style="margin:.1em 0 .3em 1.2em;padding:0">'
                        + "".join(f"<li>{esc(item)}</li>" for item in self.evidence) + "</ul>")
        if self.fix:
            rows.append("<div>What to do:</div>"
                        + "".join(f'<p style="margin:.2em 0 .2em 1em">{esc(p)}</p>' for p in self.advice_paragraphs()))
        return (f'<div class="rlhf-diagnosis" style="border-left:4px solid {color};padding:.35em .8em;'
                f'line-height:1.5;max-width:60em">' + "".join(rows) + "</div>")
