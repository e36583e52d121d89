"""The checks of lesson 02 — Bradley–Terry and the DPO loss: ``dpo_loss`` and ``implicit_reward``."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import losses
from .cases import fn_case, policy_logprobs, reduction_hint, seq_logps
from .framework import Case, Exercise, Mistake, register


def _dpo_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    random8 = tuple(seq_logps(g, 8) for _ in range(4))
    chosen, rejected = seq_logps(g, 6), seq_logps(g, 6)
    beta_half = tuple(seq_logps(g, 5) for _ in range(4))
    big = (torch.tensor([-1.0, -10001.0]), torch.tensor([-10001.0, -1.0]),
           torch.tensor([-5001.0, -5001.0]), torch.tensor([-5001.0, -5001.0]))  # unscaled margins +1e4, -1e4
    worked = (torch.tensor([-12.0, -30.5, -7.25, -20.0]), torch.tensor([-14.0, -29.0, -9.5, -20.0]),
              torch.tensor([-13.0, -31.0, -7.0, -20.0]), torch.tensor([-13.5, -28.0, -8.0, -20.0]))
    f64 = tuple(seq_logps(g, 7, torch.float64) for _ in range(4))
    return [
        fn_case("a random batch of 8 pairs, β = 0.1", random8, {"beta": 0.1}, grad=("arg0", "arg1", "arg2", "arg3")),
        fn_case("policy == reference, so the loss must be log 2 ≈ 0.6931", (chosen, rejected, chosen.clone(), rejected.clone()), {"beta": 0.1}),
        fn_case("β = 0.5", beta_half, {"beta": 0.5}),
        fn_case("margins of ±1e4 (β = 0.1)", big, {"beta": 0.1}),
        fn_case("the worked example (answer 0.641915)", worked, {"beta": 0.1}),
        fn_case("float64 inputs, β = 0.2", f64, {"beta": 0.2}),
    ]


def _margin(logp_pol_chosen, logp_pol_rejected, logp_ref_chosen, logp_ref_rejected):
    """The unscaled DPO margin: the policy's log-ratio of chosen over rejected minus the reference's."""
    return (logp_pol_chosen - logp_ref_chosen) - (logp_pol_rejected - logp_ref_rejected)


def _dpo_no_ref(logp_pol_chosen, logp_pol_rejected, logp_ref_chosen, logp_ref_rejected, beta=0.1):
    return -F.logsigmoid(beta * (logp_pol_chosen - logp_pol_rejected)).mean()


def _dpo_log_sigmoid(*logps, beta=0.1):
    return -torch.log(torch.sigmoid(beta * _margin(*logps))).mean()


def _dpo_beta_outside(*logps, beta=0.1):
    return -(beta * F.logsigmoid(_margin(*logps))).mean()


def _dpo_beta_ignored(*logps, beta=0.1):
    return -F.logsigmoid(_margin(*logps)).mean()


def _dpo_beta_squared(*logps, beta=0.1):
    return -F.logsigmoid(beta * beta * _margin(*logps)).mean()


def _dpo_beta_inside_and_outside(*logps, beta=0.1):
    return -(beta * F.logsigmoid(beta * _margin(*logps))).mean()


def _dpo_swapped(*logps, beta=0.1):
    return -F.logsigmoid(-beta * _margin(*logps)).mean()


def _dpo_sum(*logps, beta=0.1):
    return -F.logsigmoid(beta * _margin(*logps)).sum()


def _dpo_no_minus(*logps, beta=0.1):
    return F.logsigmoid(beta * _margin(*logps)).mean()


def _dpo_sigmoid(*logps, beta=0.1):
    return torch.sigmoid(beta * _margin(*logps)).mean()


def _dpo_ref_added(logp_pol_chosen, logp_pol_rejected, logp_ref_chosen, logp_ref_rejected, beta=0.1):
    return -F.logsigmoid(beta * ((logp_pol_chosen - logp_pol_rejected) + (logp_ref_chosen - logp_ref_rejected))).mean()


def _dpo_beta_fixed(*logps, beta=0.1):
    return -F.logsigmoid(0.1 * _margin(*logps)).mean()


def _dpo_beta_divides(*logps, beta=0.1):
    return -F.logsigmoid(_margin(*logps) / beta).mean()


def _dpo_mean_first(*logps, beta=0.1):
    return -F.logsigmoid(beta * _margin(*logps).mean())


def _dpo_sigmoid_negated(*logps, beta=0.1):
    return -torch.sigmoid(beta * _margin(*logps)).mean()


def _dpo_one_minus_sigmoid(*logps, beta=0.1):
    return (1 - torch.sigmoid(beta * _margin(*logps))).mean()


def _dpo_chosen_twice(logp_pol_chosen, logp_pol_rejected, logp_ref_chosen, logp_ref_rejected, beta=0.1):
    return -F.logsigmoid(beta * ((logp_pol_chosen - logp_ref_chosen) - (logp_pol_chosen - logp_ref_chosen))).mean()


def _dpo_rejected_twice(logp_pol_chosen, logp_pol_rejected, logp_ref_chosen, logp_ref_rejected, beta=0.1):
    return -F.logsigmoid(beta * ((logp_pol_rejected - logp_ref_rejected) - (logp_pol_rejected - logp_ref_rejected))).mean()


register(Exercise(
    name="dpo_loss",
    same_answer={
        "rlhf_core.losses.dpo_losses": None,                 # the loss before its .mean()
        "rlhf_core.losses.conservative_dpo_losses": None,    # label_smoothing=0 is DPO
        "rlhf_core.losses.conservative_dpo_loss": None,
        # the margin h: lesson 02's gradient-weight cell needs it; through the learner's implicit_reward
        "rlhf_core.losses.dpo_logits": "implicit_reward(logp_pol_chosen, logp_ref_chosen, beta)"
                                       " - implicit_reward(logp_pol_rejected, logp_ref_rejected, beta)",
    },
    lesson=2,
    points=3,
    cases=_dpo_cases,
    reference=losses.dpo_loss,
    mistakes=[
        Mistake("Numerically unstable: -log(sigmoid(x)) gives inf once sigmoid(x) underflows to 0. Use -F.logsigmoid(x).", _dpo_log_sigmoid),
        Mistake("That is the loss without the reference term — did you drop log π_ref? DPO compares the policy's "
                "log-ratio with the frozen reference's.", _dpo_no_ref),
        Mistake("β is outside the log-sigmoid: it multiplies the loss instead of the margin, so at policy == reference "
                "the loss would be β·log 2 instead of log 2, and β no longer sets how large a margin saturates the loss.",
                _dpo_beta_outside),
        # β mistakes that the drill's sanity checks cannot see (check 4 runs at β = 1); every case here has β ≠ 1
        Mistake("β is ignored: the loss is the one β = 1 would give, whatever β is passed. β belongs in the loss — "
                "look at where the paper's equation puts it.", _dpo_beta_ignored),
        Mistake("β is applied twice: the loss is the one β² would give. The margin is scaled by β once.", _dpo_beta_squared),
        Mistake("β is applied twice, inside the log-sigmoid and again on the loss outside it: the loss would be β·log 2 "
                "at policy == reference, where it must be log 2 whatever β is.", _dpo_beta_inside_and_outside),
        Mistake("The sign of the margin is flipped: chosen and rejected (or policy and reference) are swapped.", _dpo_swapped),
        Mistake("You summed over the batch; the loss is the mean over pairs (.mean()).", _dpo_sum),
        Mistake("The minus sign is missing: the loss is -log σ(h), which is positive (log 2 at the start).", _dpo_no_minus),
        Mistake("That is sigmoid(h); the loss is -logsigmoid(h).", _dpo_sigmoid),
        Mistake("The reference log-ratio is added; it must be subtracted: (log π(y_w) − log π_ref(y_w)) − (log π(y_l) − log π_ref(y_l)).", _dpo_ref_added),
        Mistake("β has no effect: is it hard-coded instead of taken from the argument?", _dpo_beta_fixed),
        Mistake("The margin is divided by β; it is multiplied by β.", _dpo_beta_divides),
        Mistake("You averaged the margins before the log-sigmoid; average the per-pair losses instead.", _dpo_mean_first),
        Mistake("That is minus the sigmoid of the margin, a probability with its sign flipped: the loss comes out negative "
                "(−0.5 at policy == reference, where it must be log 2). The loss is a negative log-likelihood: take the "
                "log of that probability, in a form that stays finite for huge margins.", _dpo_sigmoid_negated),
        Mistake("That is 1 − sigmoid of the margin: the probability that the rejected response wins, not a log-likelihood "
                "(0.5 at policy == reference, where it must be log 2). The loss is minus the *log* of the probability "
                "that the chosen response wins.", _dpo_one_minus_sigmoid),
        Mistake("The margin is 0 whatever the inputs: the chosen response's log-ratio sits on both sides of the "
                "subtraction, so the loss is log 2 everywhere and its gradient is 0. The second log-ratio is the "
                "rejected response's.", _dpo_chosen_twice),
        Mistake("The margin is 0 whatever the inputs: the rejected response's log-ratio sits on both sides of the "
                "subtraction, so the loss is log 2 everywhere and its gradient is 0. The first log-ratio is the "
                "chosen response's.", _dpo_rejected_twice),
    ],
    summary="dpo_loss matches the reference: log 2 at the start, β inside, reference term present, exact at margins of ±1e4",
    formula="-mean(logsigmoid(β·((logp_pol_chosen − logp_ref_chosen) − (logp_pol_rejected − logp_ref_rejected))))",
    shape_hint=reduction_hint("the loss"),
))


def _reward_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    return [
        fn_case("a batch of 8, β = 0.1", (seq_logps(g, 8), seq_logps(g, 8)), {"beta": 0.1}, grad=("arg0",)),
        fn_case("a (2, 6) table of responses, β = 0.5", (policy_logprobs(g, 2, 6), policy_logprobs(g, 2, 6)), {"beta": 0.5}),
        fn_case("float64, β = 2", (seq_logps(g, 5, torch.float64), seq_logps(g, 5, torch.float64)), {"beta": 2.0}),
    ]


def _reward_no_beta(logp_pol, logp_ref, beta=0.1):
    return logp_pol - logp_ref


def _reward_divides(logp_pol, logp_ref, beta=0.1):
    return (logp_pol - logp_ref) / beta


def _reward_reversed(logp_pol, logp_ref, beta=0.1):
    return beta * (logp_ref - logp_pol)


def _reward_no_ref(logp_pol, logp_ref, beta=0.1):
    return beta * logp_pol


def _reward_ratio(logp_pol, logp_ref, beta=0.1):
    return beta * torch.exp(logp_pol - logp_ref)


def _reward_mean(logp_pol, logp_ref, beta=0.1):
    return (beta * (logp_pol - logp_ref)).mean()


def _reward_beta_fixed(logp_pol, logp_ref, beta=0.1):
    return 0.1 * (logp_pol - logp_ref)


def _reward_beta_squared(logp_pol, logp_ref, beta=0.1):
    return beta * beta * (logp_pol - logp_ref)


register(Exercise(
    name="implicit_reward",
    same_answer={"rlhf_core.objective.reward_from_policy": None},   # implicit_reward with log_z = 0
    lesson=2,
    points=1,
    hidden_seeds=(303,),
    cases=_reward_cases,
    reference=losses.implicit_reward,
    mistakes=[
        Mistake("β is missing: the implicit reward is β·(log π − log π_ref).", _reward_no_beta),
        Mistake("The log-ratio is divided by β; it is multiplied by β.", _reward_divides),
        Mistake("The sign is flipped: the reward is log π − log π_ref (policy minus reference).", _reward_reversed),
        Mistake("The reference is missing: the reward is the log-*ratio* β·(log π − log π_ref).", _reward_no_ref),
        Mistake("You exponentiated: the reward is β times the log-ratio, not the probability ratio.", _reward_ratio),
        Mistake("The reward is elementwise, one per response: do not average.", _reward_mean),
        Mistake("β has no effect: is it hard-coded instead of taken from the argument?", _reward_beta_fixed),
        Mistake("β is applied twice: this is the reward β² would give (ten times too small at β = 0.1, twice too large "
                "at β = 2). The log-ratio is scaled by β once.", _reward_beta_squared),
    ],
    summary="implicit_reward is β·(log π − log π_ref), elementwise, linear in β",
    formula="beta * (logp_pol - logp_ref), same shape as the inputs",
    shape_hint=lambda expected, got: "the reward is elementwise: return the same shape as the inputs." if expected != got else None,
))
