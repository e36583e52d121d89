"""The checks of the drill's interview variants (lesson 10): ``ipo_loss``, ``conservative_dpo_loss``,
``simpo_loss`` and ``orpo_odds_ratio_loss``.

Each exercise is checked against the library's own loss (:mod:`rlhf_core.losses`) on seeded cases,
and its common mistakes are named. The conventions each exercise's contract states (the reference's docstring
in :mod:`rlhf_core.losses`, which every stub of it carries):

* ``ipo_loss`` — four ``(B,)`` log-prob tensors as for ``dpo_loss``; the course feeds it length-averaged
  log-probs (TRL's convention), the paper summed ones: the formula is the same. β only sets the target.
* ``conservative_dpo_loss`` — DPO's inputs plus ``label_smoothing`` ε, the probability that a label is flipped.
* ``simpo_loss`` — two ``(B,)`` tensors of *length-averaged* log-probs, β scaling the reward and γ a
  target margin on the β-scaled reward difference (so γ is not multiplied by β again).
* ``orpo_odds_ratio_loss`` — ORPO's odds-ratio term only (the SFT term is added outside), from two ``(B,)``
  tensors of length-averaged log-probs; its reference is :func:`rlhf_core.losses.orpo_odds_ratio_loss`.

Whether a caller summed or averaged the log-probs happens before the loss (``get_logps(...,
average=...)``), so no check here can see it: the variants' debriefs and red flags ask about it instead.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import losses
from .cases import fn_case, reduction_hint, seq_logps
from .framework import Case, Exercise, Mistake, register

__all__ = ["avg_logps"]

FOUR = ("arg0", "arg1", "arg2", "arg3")


def avg_logps(g: torch.Generator, n: int, dtype=torch.float32, low: float = -4.0, high: float = -0.05) -> Tensor:
    """``n`` length-averaged (per-token) log-probs between ``low`` and ``high``."""
    return (low + (high - low) * torch.rand(n, generator=g, dtype=torch.float64)).to(dtype)


def _pair_margin(logp_pol_chosen, logp_pol_rejected, logp_ref_chosen, logp_ref_rejected):
    """The unscaled margin: the policy's log-ratio on y_w over π_ref, minus the same on y_l.

    Deliberately not lesson 02's own helper of that meaning (and not of its name): the grader withholds that
    module's helpers while lesson 02 is graded, and keeps any helper whose bare name appears anywhere else in
    the library (rule 3 of :mod:`rlhf_core.checks.framework`'s docstring)."""
    return (logp_pol_chosen - logp_ref_chosen) - (logp_pol_rejected - logp_ref_rejected)


# ---- IPO ---------------------------------------------------------------------------------------

def _ipo_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    random8 = tuple(avg_logps(g, 8) for _ in range(4))
    chosen, rejected = avg_logps(g, 6), avg_logps(g, 6)
    beta_half = tuple(avg_logps(g, 5) for _ in range(4))
    summed = tuple(seq_logps(g, 6) for _ in range(4))
    worked = (torch.tensor([-1.0, -2.5, -0.5]), torch.tensor([-1.5, -2.0, -3.0]),
              torch.tensor([-1.25, -2.25, -1.0]), torch.tensor([-1.0, -2.5, -2.0]))
    f64 = tuple(avg_logps(g, 7, torch.float64) for _ in range(4))
    return [
        fn_case("a random batch of 8 pairs (length-averaged log-probs), β = 0.1", random8, {"beta": 0.1}, grad=FOUR),
        fn_case("policy == reference: the loss at initialisation, 25 at β = 0.1",
                (chosen, rejected, chosen.clone(), rejected.clone()), {"beta": 0.1}),
        fn_case("β = 0.5", beta_half, {"beta": 0.5}),
        fn_case("summed log-probs (the paper's convention), β = 0.05", summed, {"beta": 0.05}),
        fn_case("the worked example, β = 0.25 (answer 3.125)", worked, {"beta": 0.25}),
        fn_case("float64 inputs, β = 0.2", f64, {"beta": 0.2}),
    ]


def _ipo_target_one_over_beta(*logps, beta=0.1):
    return ((_pair_margin(*logps) - 1.0 / beta) ** 2).mean()


def _ipo_margin_scaled_by_beta(*logps, beta=0.1):
    return ((beta * _pair_margin(*logps) - 1.0 / (2.0 * beta)) ** 2).mean()


def _ipo_everything_scaled_by_beta(*logps, beta=0.1):
    return ((beta * _pair_margin(*logps) - 0.5) ** 2).mean()


def _ipo_square_on_margin_only(*logps, beta=0.1):
    return (_pair_margin(*logps) ** 2 - 1.0 / (2.0 * beta)).mean()


def _ipo_not_squared(*logps, beta=0.1):
    return (_pair_margin(*logps) - 1.0 / (2.0 * beta)).mean()


def _ipo_swapped(*logps, beta=0.1):
    return ((-_pair_margin(*logps) - 1.0 / (2.0 * beta)) ** 2).mean()


def _ipo_no_ref(logp_pol_chosen, logp_pol_rejected, logp_ref_chosen, logp_ref_rejected, beta=0.1):
    return ((logp_pol_chosen - logp_pol_rejected - 1.0 / (2.0 * beta)) ** 2).mean()


def _ipo_sum(*logps, beta=0.1):
    return ((_pair_margin(*logps) - 1.0 / (2.0 * beta)) ** 2).sum()


def _ipo_mean_first(*logps, beta=0.1):
    return (_pair_margin(*logps).mean() - 1.0 / (2.0 * beta)) ** 2


def _ipo_dpo_loss(*logps, beta=0.1):
    return -F.logsigmoid(beta * _pair_margin(*logps)).mean()


def _ipo_target_fixed(*logps, beta=0.1):
    return ((_pair_margin(*logps) - 5.0) ** 2).mean()


register(Exercise(
    name="ipo_loss",
    same_answer={"rlhf_core.losses.ipo_losses": None},   # the loss before its .mean()
    lesson=10,
    points=6,
    hidden_seeds=(101,),
    cases=_ipo_cases,
    reference=losses.ipo_loss,
    mistakes=[
        Mistake("The target margin is twice what it should be: look again at the constant the paper regresses the "
                "margin onto — it has a factor ½ that is missing here.", _ipo_target_one_over_beta),
        Mistake("The margin is multiplied by β, as in DPO. In IPO β only sets the target; the log-ratio margin itself "
                "goes in unscaled.", _ipo_margin_scaled_by_beta),
        Mistake("Both the margin and the target are multiplied by β: the minimum is in the right place, but the loss is "
                "β² times too small (0.25 at initialisation instead of 25 at β = 0.1). The margin goes in unscaled.",
                _ipo_everything_scaled_by_beta),
        Mistake("The square is in the wrong place: it is applied to the margin alone, before the target comes in, so "
                "the loss can go negative. IPO squares how far the margin is from its target.", _ipo_square_on_margin_only),
        Mistake("The distance between the margin and its target is not squared: the loss is linear in the margin and "
                "can fall forever. IPO is a squared (regression) loss.", _ipo_not_squared),
        Mistake("The sign of the margin is flipped: chosen and rejected (or policy and reference) are swapped, so the "
                "loss pulls the rejected response up towards the target.", _ipo_swapped),
        Mistake("That is the loss without the reference term — did you drop log π_ref? IPO's margin compares the "
                "policy's log-ratio with the frozen reference's, like DPO's.", _ipo_no_ref),
        Mistake("You summed over the batch; the loss is the mean over pairs (.mean()).", _ipo_sum),
        Mistake("You averaged the margins before squaring; square each pair's distance to the target, then average.",
                _ipo_mean_first),
        Mistake("That is the DPO loss (a log-sigmoid of the β-scaled margin). IPO replaces it with a squared loss that "
                "pulls the margin to a finite target instead of pushing it to infinity.", _ipo_dpo_loss),
        Mistake("β has no effect: the target is hard-coded (right only at β = 0.1) instead of computed from the argument.",
                _ipo_target_fixed),
    ],
    summary="ipo_loss matches the reference: a squared loss on the unscaled margin with the right target, "
            "(1/(2β))² at initialisation",
    formula="mean(((logp_pol_chosen − logp_ref_chosen) − (logp_pol_rejected − logp_ref_rejected) − 1/(2β))²)",
    shape_hint=reduction_hint("the loss"),
))


# ---- conservative DPO (cDPO) ---------------------------------------------------------------------

def _cdpo_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    random8 = tuple(seq_logps(g, 8) for _ in range(4))
    chosen, rejected = seq_logps(g, 6), seq_logps(g, 6)
    quarter = tuple(seq_logps(g, 5) for _ in range(4))
    big = (torch.tensor([-1.0, -10001.0]), torch.tensor([-10001.0, -1.0]),
           torch.tensor([-5001.0, -5001.0]), torch.tensor([-5001.0, -5001.0]))  # unscaled margins +1e4, -1e4
    plain_dpo = tuple(seq_logps(g, 6) for _ in range(4))
    worked = (torch.tensor([-1.0, -2.5, -0.5]), torch.tensor([-1.5, -2.0, -3.0]),
              torch.tensor([-1.25, -2.25, -1.0]), torch.tensor([-1.0, -2.5, -2.0]))
    f64 = tuple(seq_logps(g, 7, torch.float64) for _ in range(4))
    return [
        fn_case("a random batch of 8 pairs, β = 0.1, ε = 0.1", random8, {"beta": 0.1, "label_smoothing": 0.1}, grad=FOUR),
        fn_case("policy == reference, so the loss must be log 2 ≈ 0.6931 whatever ε (ε = 0.2)",
                (chosen, rejected, chosen.clone(), rejected.clone()), {"beta": 0.1, "label_smoothing": 0.2}),
        fn_case("β = 0.5, ε = 0.25", quarter, {"beta": 0.5, "label_smoothing": 0.25}),
        fn_case("margins of ±1e4 (β = 0.1, ε = 0.1)", big, {"beta": 0.1, "label_smoothing": 0.1}),
        fn_case("ε = 0: plain DPO (β = 0.2)", plain_dpo, {"beta": 0.2, "label_smoothing": 0.0}),
        fn_case("the worked example, β = 1, ε = 0.2", worked, {"beta": 1.0, "label_smoothing": 0.2}),
        fn_case("float64 inputs, β = 0.2, ε = 0.05", f64, {"beta": 0.2, "label_smoothing": 0.05}),
    ]


def _h(logps, beta):
    return beta * _pair_margin(*logps)


def _cdpo_smoothing_ignored(*logps, beta=0.1, label_smoothing=0.1):
    return -F.logsigmoid(_h(logps, beta)).mean()


def _cdpo_smoothing_swapped(*logps, beta=0.1, label_smoothing=0.1):
    h, eps = _h(logps, beta), label_smoothing
    return (-eps * F.logsigmoid(h) - (1.0 - eps) * F.logsigmoid(-h)).mean()


def _cdpo_flipped_term_missing(*logps, beta=0.1, label_smoothing=0.1):
    return (-(1.0 - label_smoothing) * F.logsigmoid(_h(logps, beta))).mean()


def _cdpo_one_minus_eps_missing(*logps, beta=0.1, label_smoothing=0.1):
    h = _h(logps, beta)
    return (-F.logsigmoid(h) - label_smoothing * F.logsigmoid(-h)).mean()


def _cdpo_mixed_probabilities(*logps, beta=0.1, label_smoothing=0.1):
    h, eps = _h(logps, beta), label_smoothing
    return -torch.log((1.0 - eps) * torch.sigmoid(h) + eps * torch.sigmoid(-h)).mean()


def _cdpo_robust_dpo(*logps, beta=0.1, label_smoothing=0.1):
    h, eps = _h(logps, beta), label_smoothing
    return ((-(1.0 - eps) * F.logsigmoid(h) + eps * F.logsigmoid(-h)) / (1.0 - 2.0 * eps)).mean()


def _cdpo_log_sigmoid(*logps, beta=0.1, label_smoothing=0.1):
    h, eps = _h(logps, beta), label_smoothing
    return (-(1.0 - eps) * torch.log(torch.sigmoid(h)) - eps * torch.log(torch.sigmoid(-h))).mean()


def _cdpo_no_ref(logp_pol_chosen, logp_pol_rejected, logp_ref_chosen, logp_ref_rejected, beta=0.1, label_smoothing=0.1):
    h, eps = beta * (logp_pol_chosen - logp_pol_rejected), label_smoothing
    return (-(1.0 - eps) * F.logsigmoid(h) - eps * F.logsigmoid(-h)).mean()


def _cdpo_sum(*logps, beta=0.1, label_smoothing=0.1):
    h, eps = _h(logps, beta), label_smoothing
    return (-(1.0 - eps) * F.logsigmoid(h) - eps * F.logsigmoid(-h)).sum()


def _cdpo_smoothing_fixed(*logps, beta=0.1, label_smoothing=0.1):
    h = _h(logps, beta)
    return (-0.9 * F.logsigmoid(h) - 0.1 * F.logsigmoid(-h)).mean()


def _cdpo_beta_outside(*logps, beta=0.1, label_smoothing=0.1):
    m, eps = _pair_margin(*logps), label_smoothing
    return (beta * (-(1.0 - eps) * F.logsigmoid(m) - eps * F.logsigmoid(-m))).mean()


register(Exercise(
    name="conservative_dpo_loss",
    same_answer={"rlhf_core.losses.conservative_dpo_losses": None},   # the loss before its .mean()
    lesson=10,
    points=6,
    hidden_seeds=(101,),
    cases=_cdpo_cases,
    reference=losses.conservative_dpo_loss,
    mistakes=[
        Mistake("ε has no effect: that is plain DPO. cDPO assumes each label is wrong with probability ε, so the "
                "flipped preference must enter the loss with weight ε.", _cdpo_smoothing_ignored),
        Mistake("(1 − ε) and ε are swapped — or, the same thing, the margin's sign is flipped: the loss now trusts the "
                "flipped label more than the given one.", _cdpo_smoothing_swapped),
        Mistake("The flipped-label term is missing: you scaled the DPO loss by (1 − ε) but dropped the part that "
                "treats the label as wrong with probability ε.", _cdpo_flipped_term_missing),
        Mistake("ε is applied to one term only: the flipped-label term has its weight, but the original DPO term still "
                "has weight 1. The two weights must add up to 1 (a soft label).", _cdpo_one_minus_eps_missing),
        Mistake("You mixed the two probabilities inside the log. cDPO is a cross-entropy against a soft label: it mixes "
                "the two per-label losses, each with its own log-sigmoid.", _cdpo_mixed_probabilities),
        Mistake("That is robust DPO (Chowdhury et al. 2024), which subtracts the flipped term and rescales to debias "
                "the loss. Conservative DPO adds the flipped-label loss, with no rescaling.", _cdpo_robust_dpo),
        Mistake("Numerically unstable: -log(sigmoid(x)) gives inf once sigmoid(x) underflows to 0. Use -F.logsigmoid(x) "
                "for both terms.", _cdpo_log_sigmoid),
        Mistake("That is the loss without the reference term — did you drop log π_ref? The margin compares the "
                "policy's log-ratio with the frozen reference's, as in DPO.", _cdpo_no_ref),
        Mistake("You summed over the batch; the loss is the mean over pairs (.mean()).", _cdpo_sum),
        Mistake("ε has no effect beyond 0.1: is it hard-coded instead of taken from the label_smoothing argument?",
                _cdpo_smoothing_fixed),
        Mistake("β is outside the log-sigmoids: it multiplies the loss instead of the margin, so at policy == reference "
                "the loss would be β·log 2 instead of log 2.", _cdpo_beta_outside),
    ],
    summary="conservative_dpo_loss matches the reference: ε weights the flipped label, log 2 at the start, "
            "exact at margins of ±1e4, plain DPO at ε = 0",
    formula="mean(−(1 − ε)·logsigmoid(h) − ε·logsigmoid(−h)), h = β·((logp_pol_chosen − logp_ref_chosen) − "
            "(logp_pol_rejected − logp_ref_rejected))",
    shape_hint=reduction_hint("the loss"),
))


# ---- SimPO ---------------------------------------------------------------------------------------

def _simpo_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    random8 = (avg_logps(g, 8), avg_logps(g, 8))
    tie = avg_logps(g, 6)
    strong = (avg_logps(g, 5), avg_logps(g, 5))
    extreme = (torch.tensor([-12.0, -0.5]), torch.tensor([-0.5, -12.0]))  # β·gap = ∓115 at β = 10
    no_margin = (avg_logps(g, 6), avg_logps(g, 6))
    f64 = (avg_logps(g, 7, torch.float64), avg_logps(g, 7, torch.float64))
    return [
        fn_case("a random batch of 8 pairs, β = 2, γ = 0.5", random8, {"beta": 2.0, "gamma": 0.5}, grad=("arg0", "arg1")),
        fn_case("a tie (equal average log-probs), β = 2.5, γ = 1.4", (tie, tie.clone()), {"beta": 2.5, "gamma": 1.4}),
        fn_case("β = 10, γ = 3", strong, {"beta": 10.0, "gamma": 3.0}),
        fn_case("average log-prob gaps of ±11.5 at β = 10 (γ = 3)", extreme, {"beta": 10.0, "gamma": 3.0}),
        fn_case("γ = 0, β = 2.5", no_margin, {"beta": 2.5, "gamma": 0.0}),
        fn_case("float64 inputs, β = 2.5, γ = 1.375", f64, {"beta": 2.5, "gamma": 1.375}),
    ]


def _simpo_gamma_added(avg_logp_chosen, avg_logp_rejected, beta=2.0, gamma=0.5):
    return -F.logsigmoid(beta * (avg_logp_chosen - avg_logp_rejected) + gamma).mean()


def _simpo_gamma_times_beta(avg_logp_chosen, avg_logp_rejected, beta=2.0, gamma=0.5):
    return -F.logsigmoid(beta * (avg_logp_chosen - avg_logp_rejected - gamma)).mean()


def _simpo_gamma_over_beta(avg_logp_chosen, avg_logp_rejected, beta=2.0, gamma=0.5):
    return -F.logsigmoid(beta * (avg_logp_chosen - avg_logp_rejected) - gamma / beta).mean()


def _simpo_gamma_ignored(avg_logp_chosen, avg_logp_rejected, beta=2.0, gamma=0.5):
    return -F.logsigmoid(beta * (avg_logp_chosen - avg_logp_rejected)).mean()


def _simpo_beta_missing(avg_logp_chosen, avg_logp_rejected, beta=2.0, gamma=0.5):
    return -F.logsigmoid(avg_logp_chosen - avg_logp_rejected - gamma).mean()


def _simpo_beta_outside(avg_logp_chosen, avg_logp_rejected, beta=2.0, gamma=0.5):
    return -(beta * F.logsigmoid(avg_logp_chosen - avg_logp_rejected - gamma)).mean()


def _simpo_swapped(avg_logp_chosen, avg_logp_rejected, beta=2.0, gamma=0.5):
    return -F.logsigmoid(beta * (avg_logp_rejected - avg_logp_chosen) - gamma).mean()


def _simpo_log_sigmoid(avg_logp_chosen, avg_logp_rejected, beta=2.0, gamma=0.5):
    return -torch.log(torch.sigmoid(beta * (avg_logp_chosen - avg_logp_rejected) - gamma)).mean()


def _simpo_sum(avg_logp_chosen, avg_logp_rejected, beta=2.0, gamma=0.5):
    return -F.logsigmoid(beta * (avg_logp_chosen - avg_logp_rejected) - gamma).sum()


def _simpo_mean_first(avg_logp_chosen, avg_logp_rejected, beta=2.0, gamma=0.5):
    return -F.logsigmoid(beta * (avg_logp_chosen - avg_logp_rejected).mean() - gamma)


register(Exercise(
    name="simpo_loss",
    same_answer={"rlhf_core.losses.simpo_losses": None},   # the loss before its .mean()
    lesson=10,
    points=6,
    hidden_seeds=(101,),
    cases=_simpo_cases,
    reference=losses.simpo_loss,
    mistakes=[
        Mistake("γ has the wrong sign: it is a target margin the chosen reward must beat, so it makes the loss larger, "
                "not smaller, at a tie.", _simpo_gamma_added),
        Mistake("γ is multiplied by β. In this convention γ is the margin on the β-scaled reward difference, so it "
                "is not scaled again (if you subtract it inside the bracket, it must be divided by β first).",
                _simpo_gamma_times_beta),
        Mistake("γ is divided by β. In this convention γ is the margin on the β-scaled reward difference and is "
                "subtracted as it is.", _simpo_gamma_over_beta),
        Mistake("γ has no effect: the target margin is missing, so at a tie the loss is log 2 instead of more.",
                _simpo_gamma_ignored),
        Mistake("β is missing: SimPO's reward is the average log-prob scaled by β.", _simpo_beta_missing),
        Mistake("β is outside the log-sigmoid: it multiplies the loss instead of scaling the reward difference.",
                _simpo_beta_outside),
        Mistake("The sign of the reward difference is flipped: chosen and rejected are swapped.", _simpo_swapped),
        Mistake("Numerically unstable: -log(sigmoid(x)) gives inf once sigmoid(x) underflows to 0. Use -F.logsigmoid(x).",
                _simpo_log_sigmoid),
        Mistake("You summed over the batch; the loss is the mean over pairs (.mean()).", _simpo_sum),
        Mistake("You averaged the reward differences before the log-sigmoid; average the per-pair losses instead.",
                _simpo_mean_first),
    ],
    summary="simpo_loss matches the reference: β scales the average log-prob gap, γ is subtracted as a target "
            "margin, no reference, exact at large gaps",
    formula="mean(−logsigmoid(β·(avg_logp_chosen − avg_logp_rejected) − γ))",
    shape_hint=reduction_hint("the loss"),
))


# ---- ORPO's odds-ratio term -------------------------------------------------------------------------

def _orpo_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    random8 = (avg_logps(g, 8), avg_logps(g, 8))
    tie = avg_logps(g, 6)
    likely = (avg_logps(g, 6, low=-0.3, high=-0.01), avg_logps(g, 6, low=-0.3, high=-0.01))
    # p close to 1, where 1 − p must not be computed as 1 − exp(a): the rejected response's 1 − p is 17.5 float32
    # steps below 1 (2^-24 each), so a float32 exp(a), correctly rounded or 1 ulp off, leaves 1 − exp(a) at
    # least half a step (≥ 2.8%) off; the loss then moves by ≥ 0.6% (the tolerance is 0.01%)
    near_certain = (torch.tensor([-2e-5, -0.5]), torch.tensor([math.log1p(-17.5 * 2.0 ** -24), -1.0]))
    unlikely = (torch.tensor([-95.0, -0.001]), torch.tensor([-0.001, -95.0]))  # log-odds gaps of about ∓102
    f64 = (avg_logps(g, 7, torch.float64), avg_logps(g, 7, torch.float64))
    return [
        fn_case("a random batch of 8 pairs (length-averaged log-probs)", random8, grad=("arg0", "arg1")),
        fn_case("a tie (equal average log-probs), so the loss must be log 2 ≈ 0.6931", (tie, tie.clone())),
        fn_case("likely responses (average log-probs from −0.3 to −0.01)", likely),
        fn_case("a near-certain rejected response (average log-prob −1.04e-6)", near_certain),
        fn_case("a response the policy all but rules out (average log-prob −95)", unlikely),
        fn_case("float64 inputs", f64),
    ]


def _log_odds(a: Tensor) -> Tensor:
    return a - torch.log(-torch.expm1(a))


def _orpo_log_probs_not_odds(avg_logp_chosen, avg_logp_rejected):
    return -F.logsigmoid(avg_logp_chosen - avg_logp_rejected).mean()


def _orpo_unstable_log1p_exp(avg_logp_chosen, avg_logp_rejected):
    def log_odds(a):
        return a - torch.log1p(-torch.exp(a))

    return -F.logsigmoid(log_odds(avg_logp_chosen) - log_odds(avg_logp_rejected)).mean()


def _orpo_odds_not_log(avg_logp_chosen, avg_logp_rejected):
    return -F.logsigmoid(torch.exp(_log_odds(avg_logp_chosen)) / torch.exp(_log_odds(avg_logp_rejected))).mean()


def _orpo_swapped(avg_logp_chosen, avg_logp_rejected):
    return -F.logsigmoid(_log_odds(avg_logp_rejected) - _log_odds(avg_logp_chosen)).mean()


def _orpo_sum(avg_logp_chosen, avg_logp_rejected):
    return -F.logsigmoid(_log_odds(avg_logp_chosen) - _log_odds(avg_logp_rejected)).sum()


def _orpo_sft_added(avg_logp_chosen, avg_logp_rejected):
    return (-avg_logp_chosen - F.logsigmoid(_log_odds(avg_logp_chosen) - _log_odds(avg_logp_rejected))).mean()


def _orpo_log_sigmoid(avg_logp_chosen, avg_logp_rejected):
    return -torch.log(torch.sigmoid(_log_odds(avg_logp_chosen) - _log_odds(avg_logp_rejected))).mean()


def _orpo_log_prob_as_probability(avg_logp_chosen, avg_logp_rejected):
    def log_odds(a):
        return a - torch.log(1.0 - a)

    return -F.logsigmoid(log_odds(avg_logp_chosen) - log_odds(avg_logp_rejected)).mean()


def _orpo_no_minus(avg_logp_chosen, avg_logp_rejected):
    return F.logsigmoid(_log_odds(avg_logp_chosen) - _log_odds(avg_logp_rejected)).mean()


register(Exercise(
    name="orpo_odds_ratio_loss",
    same_answer={"rlhf_core.losses.orpo_odds_ratio_losses": None},   # the loss before its .mean()
    lesson=10,
    points=6,
    hidden_seeds=(101,),
    cases=_orpo_cases,
    reference=losses.orpo_odds_ratio_loss,
    mistakes=[
        Mistake("You compared the log-probabilities, not the log-odds: ORPO contrasts odds, p/(1 − p), so the "
                "log(1 − p) part of each response is missing.", _orpo_log_probs_not_odds),
        Mistake("Numerically unstable: 1 − p computed as 1 − exp(a) (log1p(−exp(a)) too) loses its digits when p is "
                "close to 1, and is exactly 0 once exp(a) rounds to 1. Compute log(1 − p) from a directly, with "
                "torch.expm1.", _orpo_unstable_log1p_exp),
        Mistake("The odds ratio itself went into the log-sigmoid; ORPO uses its logarithm (a difference of log-odds).",
                _orpo_odds_not_log),
        Mistake("The sign is flipped: chosen and rejected are swapped, so the loss favours the rejected response.",
                _orpo_swapped),
        Mistake("You summed over the batch; the loss is the mean over pairs (.mean()).", _orpo_sum),
        Mistake("You added the SFT (negative log-likelihood) term on the chosen response. This exercise is only the "
                "odds-ratio term; ORPO adds λ times it to the SFT loss outside this function.", _orpo_sft_added),
        Mistake("Numerically unstable: -log(sigmoid(x)) gives inf once sigmoid(x) underflows to 0. Use -F.logsigmoid(x).",
                _orpo_log_sigmoid),
        Mistake("The log-prob was used as if it were a probability in 1 − p: exponentiate it first (p = exp(a)).",
                _orpo_log_prob_as_probability),
        Mistake("The minus sign is missing: the loss is a negative log-sigmoid, positive (log 2 at a tie).", _orpo_no_minus),
    ],
    summary="orpo_odds_ratio_loss matches the reference: a log-sigmoid of the log-odds gap, log 2 at a tie, stable as p → 1",
    formula="mean(−logsigmoid(log_odds(avg_logp_chosen) − log_odds(avg_logp_rejected))), "
            "log_odds(a) = a − log(1 − exp(a)) computed as a − log(−expm1(a))",
    shape_hint=reduction_hint("the loss"),
))
