"""``check_<exercise>(candidate)``: one check per exercise, and the drill's six sanity checks.

Every check

* prints one ``✓ <what held>`` line when the candidate agrees with the reference on every case
  (``quiet=True``: prints nothing — for hidden tests) and returns None, so a notebook shows it once;
* otherwise raises :class:`CheckFailed` (an ``AssertionError``) saying what was expected, what came
  back, and — when the candidate's output equals that of a known mistake — which mistake;
* turns wrong shapes, ``NotImplementedError``, NaNs and wrong types into that same kind of message.

The cases mix random inputs (seeded: ``check_dpo_loss(f, seed=1)`` draws other ones) with
adversarial ones (margins of ±1e4, logits ×100, fully masked rows). How a check works is in
:mod:`rlhf_core.checking`; the six sanity checks of the drill are at the end of this module.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from . import losses, logps, objective
from .checking import Case, CheckFailed, Exercise, Mistake, check

__all__ = [
    "CheckFailed",
    "EXERCISES",
    "check_optimal_policy",
    "check_rlhf_objective",
    "check_dpo_loss",
    "check_implicit_reward",
    "check_toy_dpo_step",
    "check_get_logps",
    "check_rms_norm",
    "check_swiglu",
    "check_apply_rope",
    "check_sft_step",
    "check_collate_pairs",
    "check_dpo_step",
    "check_diagnose_run",
]

EXERCISES: dict[str, Exercise] = {}


def _register(exercise: Exercise) -> Exercise:
    EXERCISES[exercise.name] = exercise
    return exercise


def _fn_case(name: str, args: tuple, kwargs: dict | None = None, grad: tuple[str, ...] = ()) -> Case:
    """A case that calls ``fn(*args, **kwargs)`` on fresh copies of the inputs.

    ``grad`` names positional arguments (``"arg0"``…) whose gradient of ``out.sum()`` is recorded
    too, so a result that is cut off from autograd is caught.
    """
    kwargs = kwargs or {}

    def run(fn: Callable) -> dict[str, Any]:
        fresh = [a.detach().clone() if isinstance(a, Tensor) else a for a in args]
        for i, a in enumerate(fresh):
            if f"arg{i}" in grad:
                a.requires_grad_(True)
        out = fn(*fresh, **kwargs)
        values: dict[str, Any] = {"out": out}
        if grad:
            if isinstance(out, Tensor) and out.requires_grad:
                out.sum().backward()
            for i, a in enumerate(fresh):
                if f"arg{i}" in grad:
                    values[f"gradient wrt argument {i + 1}"] = a.grad
        return values

    return Case(name, run)


def _reduction_hint(what: str) -> Callable[[tuple, tuple], str | None]:
    def hint(expected: tuple, got: tuple) -> str | None:
        if expected == () and len(got) == 1:
            return f"{what[0].upper() + what[1:]} must be one number for the whole batch: did you forget .mean()?"
        if expected == () and len(got) == 2:
            return "A (B, B) result means a (B,) tensor was broadcast against a (B, 1) one: keep every input (B,)."
        if len(got) == len(expected) + 1:
            return "There is an extra axis: a reduction (.sum(-1) / .mean(-1)) is missing."
        if len(got) + 1 == len(expected) or got == ():
            return "An axis is missing: you reduced over one axis too many (keep one value per row)."
        return None

    return hint


# ============================================================================================
# 01 — the RLHF objective and its optimum


def _policy_logprobs(g: torch.Generator, *shape: int, temperature: float = 1.0) -> Tensor:
    return torch.log_softmax(torch.randn(*shape, generator=g) * temperature, dim=-1)


def _optimal_policy_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    ref1, r1 = _policy_logprobs(g, 6), torch.randn(6, generator=g)
    ref2, r2 = _policy_logprobs(g, 3, 5), torch.randn(3, 5, generator=g)
    ref3, r3 = _policy_logprobs(g, 4), torch.tensor([2.0, -1.0, 1.5, 0.0])
    uniform = torch.full((5,), -math.log(5.0))
    r4 = torch.randn(5, generator=g)
    return [
        _fn_case("one prompt, 6 responses, β = 0.5", (ref1, r1, 0.5)),
        _fn_case("3 prompts × 5 responses, β = 1", (ref2, r2, 1.0)),
        _fn_case("β = 0.01, so r/β reaches 200 (overflows exp)", (ref3, r3, 0.01)),
        _fn_case("uniform reference, β = 0.25", (uniform, r4, 0.25)),
    ]


def _op_probs(ref, r, beta):
    return torch.softmax(ref + r / beta, -1)


def _op_unnormalised(ref, r, beta):
    return ref + r / beta


def _op_times_beta(ref, r, beta):
    return torch.log_softmax(ref + r * beta, -1)


def _op_no_ref(ref, r, beta):
    return torch.log_softmax(r / beta, -1)


def _op_wrong_axis(ref, r, beta):
    return torch.log_softmax(ref + r / beta, 0)


def _op_naive_exp(ref, r, beta):
    unnorm = ref.exp() * torch.exp(r / beta)
    return torch.log(unnorm / unnorm.sum(-1, keepdim=True))


def _op_sign(ref, r, beta):
    return torch.log_softmax(ref - r / beta, -1)


check_optimal_policy_exercise = _register(Exercise(
    name="optimal_policy",
    cases=_optimal_policy_cases,
    reference=objective.optimal_policy,
    mistakes=[
        Mistake("That matches the naive form π_ref·exp(r/β)/Σ(...): exp overflows for small β. "
                "Work in log space: log_softmax(log π_ref + r/β).", _op_naive_exp),
        Mistake("Those are probabilities; the function returns log-probs (take the log, or use log_softmax).", _op_probs),
        Mistake("Not normalised: subtract log Z(x) = logsumexp(log π_ref + r/β) (log_softmax does it).", _op_unnormalised),
        Mistake("The reward is multiplied by β; the exponent is r/β.", _op_times_beta),
        Mistake("π_ref is missing: π* ∝ π_ref·exp(r/β), so add log π_ref before normalising.", _op_no_ref),
        Mistake("Normalised over the wrong axis: normalise over responses (the last axis, dim=-1).", _op_wrong_axis),
        Mistake("The sign of the exponent is flipped: higher reward must get more mass, exp(+r/β).", _op_sign),
    ],
    summary="optimal_policy is the closed form log π* = log π_ref + r/β − log Z, stable for small β",
    formula="log π*(y) = log π_ref(y) + r(y)/β − logsumexp(log π_ref + r/β) over the last axis",
    shape_hint=_reduction_hint("optimal_policy"),
))


def _objective_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    pol1, ref1, r1 = _policy_logprobs(g, 6), _policy_logprobs(g, 6), torch.randn(6, generator=g)
    pol2, ref2, r2 = _policy_logprobs(g, 3, 5), _policy_logprobs(g, 3, 5), torch.randn(3, 5, generator=g)
    ref3, r3 = _policy_logprobs(g, 4), torch.randn(4, generator=g)
    greedy = torch.tensor([0.0, -math.inf, -math.inf, -math.inf])  # all mass on response 0
    return [
        _fn_case("one prompt, 6 responses, β = 0.5", (pol1, ref1, r1, 0.5)),
        _fn_case("3 prompts × 5 responses, β = 0.1", (pol2, ref2, r2, 0.1)),
        _fn_case("policy == reference (no KL cost)", (ref3, ref3.clone(), r3, 2.0)),
        _fn_case("a deterministic policy (log π = -inf on 3 responses)", (greedy, ref3, r3, 0.5)),
    ]


def _kl_naive(p, q):
    return (p.exp() * (p - q)).sum(-1)


def _obj_reverse_kl(pol, ref, r, beta):
    return (pol.exp() * r).sum(-1) - beta * objective.kl_divergence(ref, pol)


def _obj_plus_kl(pol, ref, r, beta):
    return (pol.exp() * r).sum(-1) + beta * objective.kl_divergence(pol, ref)


def _obj_ref_expectation(pol, ref, r, beta):
    return (ref.exp() * r).sum(-1) - beta * objective.kl_divergence(pol, ref)


def _obj_plain_mean(pol, ref, r, beta):
    return r.mean(-1) - beta * objective.kl_divergence(pol, ref)


def _obj_no_beta(pol, ref, r, beta):
    return (pol.exp() * r).sum(-1) - objective.kl_divergence(pol, ref)


def _obj_naive_kl(pol, ref, r, beta):
    return (pol.exp() * r).sum(-1) - beta * _kl_naive(pol, ref)


def _obj_logratio_mean(pol, ref, r, beta):
    return (pol.exp() * r).sum(-1) - beta * (pol - ref).mean(-1)


check_rlhf_objective_exercise = _register(Exercise(
    name="rlhf_objective",
    cases=_objective_cases,
    reference=objective.rlhf_objective,
    mistakes=[
        Mistake("A response with π(y) = 0 contributes 0·log 0 = 0 to the KL, but 0·(-inf) is NaN in floating point: "
                "guard those terms (torch.where(p > 0, …, 0)).", _obj_naive_kl),
        Mistake("The KL is reversed: the objective uses KL(π ‖ π_ref) = Σ π·(log π − log π_ref), policy first.", _obj_reverse_kl),
        Mistake("The KL penalty is added; the objective subtracts it: E_π[r] − β·KL.", _obj_plus_kl),
        Mistake("The expected reward is taken under π_ref; it must be under the policy π: Σ π(y)·r(y).", _obj_ref_expectation),
        Mistake("The expected reward is Σ π(y)·r(y), weighted by the policy, not the plain mean of r.", _obj_plain_mean),
        Mistake("β is missing on the KL term.", _obj_no_beta),
        Mistake("The KL is Σ π(y)·(log π − log π_ref), weighted by π, not the plain mean of the log-ratio.", _obj_logratio_mean),
    ],
    summary="rlhf_objective computes E_π[r] − β·KL(π ‖ π_ref) per prompt, 0·log 0 included",
    formula="J = Σ_y π(y)·r(y) − β·Σ_y π(y)·(log π(y) − log π_ref(y)), per prompt (last axis reduced)",
    shape_hint=_reduction_hint("rlhf_objective"),
))


# ============================================================================================
# 02 — Bradley–Terry and the DPO loss


def _seq_logps(g: torch.Generator, n: int, dtype=torch.float32) -> Tensor:
    return -(torch.rand(n, generator=g, dtype=torch.float64) * 35 + 5).to(dtype)


def _dpo_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    random8 = tuple(_seq_logps(g, 8) for _ in range(4))
    chosen, rejected = _seq_logps(g, 6), _seq_logps(g, 6)
    beta_half = tuple(_seq_logps(g, 5) for _ in range(4))
    big = (torch.tensor([-1.0, -10001.0]), torch.tensor([-10001.0, -1.0]),
           torch.tensor([-5001.0, -5001.0]), torch.tensor([-5001.0, -5001.0]))  # unscaled margins +1e4, -1e4
    worked = (torch.tensor([-12.0, -30.5, -7.25, -20.0]), torch.tensor([-14.0, -29.0, -9.5, -20.0]),
              torch.tensor([-13.0, -31.0, -7.0, -20.0]), torch.tensor([-13.5, -28.0, -8.0, -20.0]))
    f64 = tuple(_seq_logps(g, 7, torch.float64) for _ in range(4))
    return [
        _fn_case("a random batch of 8 pairs, β = 0.1", random8, {"beta": 0.1}, grad=("arg0", "arg1", "arg2", "arg3")),
        _fn_case("policy == reference, so the loss must be log 2 ≈ 0.6931", (chosen, rejected, chosen.clone(), rejected.clone()), {"beta": 0.1}),
        _fn_case("β = 0.5", beta_half, {"beta": 0.5}),
        _fn_case("margins of ±1e4 (β = 0.1)", big, {"beta": 0.1}),
        _fn_case("the worked example (answer 0.641915)", worked, {"beta": 0.1}),
        _fn_case("float64 inputs, β = 0.2", f64, {"beta": 0.2}),
    ]


def _margin(pc, pr, rc, rr):
    return (pc - rc) - (pr - rr)


def _dpo_no_ref(pc, pr, rc, rr, beta=0.1):
    return -F.logsigmoid(beta * (pc - pr)).mean()


def _dpo_log_sigmoid(pc, pr, rc, rr, beta=0.1):
    return -torch.log(torch.sigmoid(beta * _margin(pc, pr, rc, rr))).mean()


def _dpo_beta_outside(pc, pr, rc, rr, beta=0.1):
    return -(beta * F.logsigmoid(_margin(pc, pr, rc, rr))).mean()


def _dpo_swapped(pc, pr, rc, rr, beta=0.1):
    return -F.logsigmoid(-beta * _margin(pc, pr, rc, rr)).mean()


def _dpo_sum(pc, pr, rc, rr, beta=0.1):
    return -F.logsigmoid(beta * _margin(pc, pr, rc, rr)).sum()


def _dpo_no_minus(pc, pr, rc, rr, beta=0.1):
    return F.logsigmoid(beta * _margin(pc, pr, rc, rr)).mean()


def _dpo_sigmoid(pc, pr, rc, rr, beta=0.1):
    return torch.sigmoid(beta * _margin(pc, pr, rc, rr)).mean()


def _dpo_ref_added(pc, pr, rc, rr, beta=0.1):
    return -F.logsigmoid(beta * ((pc - pr) + (rc - rr))).mean()


def _dpo_beta_fixed(pc, pr, rc, rr, beta=0.1):
    return -F.logsigmoid(0.1 * _margin(pc, pr, rc, rr)).mean()


def _dpo_beta_divides(pc, pr, rc, rr, beta=0.1):
    return -F.logsigmoid(_margin(pc, pr, rc, rr) / beta).mean()


def _dpo_mean_first(pc, pr, rc, rr, beta=0.1):
    return -F.logsigmoid(beta * _margin(pc, pr, rc, rr).mean())


check_dpo_loss_exercise = _register(Exercise(
    name="dpo_loss",
    cases=_dpo_cases,
    reference=losses.dpo_loss,
    mistakes=[
        Mistake("Numerically unstable: -log(sigmoid(x)) gives inf once sigmoid(x) underflows to 0. Use -F.logsigmoid(x).", _dpo_log_sigmoid),
        Mistake("That is the loss without the reference term — did you drop log π_ref? DPO compares the policy's "
                "log-ratio with the frozen reference's.", _dpo_no_ref),
        Mistake("β is outside the log-sigmoid: it scales the margin inside, -logsigmoid(β·Δ), not the loss.", _dpo_beta_outside),
        Mistake("The sign of the margin is flipped: chosen and rejected (or policy and reference) are swapped.", _dpo_swapped),
        Mistake("You summed over the batch; the loss is the mean over pairs (.mean()).", _dpo_sum),
        Mistake("The minus sign is missing: the loss is -log σ(h), which is positive (log 2 at the start).", _dpo_no_minus),
        Mistake("That is sigmoid(h); the loss is -logsigmoid(h).", _dpo_sigmoid),
        Mistake("The reference log-ratio is added; it must be subtracted: (log π(y_w) − log π_ref(y_w)) − (log π(y_l) − log π_ref(y_l)).", _dpo_ref_added),
        Mistake("β has no effect: is it hard-coded instead of taken from the argument?", _dpo_beta_fixed),
        Mistake("The margin is divided by β; it is multiplied by β.", _dpo_beta_divides),
        Mistake("You averaged the margins before the log-sigmoid; average the per-pair losses instead.", _dpo_mean_first),
    ],
    summary="dpo_loss matches the reference: log 2 at the start, β inside, reference term present, exact at margins of ±1e4",
    formula="-mean(logsigmoid(β·((logp_pol_chosen − logp_ref_chosen) − (logp_pol_rejected − logp_ref_rejected))))",
    shape_hint=_reduction_hint("the loss"),
))


def _reward_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    return [
        _fn_case("a batch of 8, β = 0.1", (_seq_logps(g, 8), _seq_logps(g, 8)), {"beta": 0.1}, grad=("arg0",)),
        _fn_case("a (2, 6) table of responses, β = 0.5", (_policy_logprobs(g, 2, 6), _policy_logprobs(g, 2, 6)), {"beta": 0.5}),
        _fn_case("float64, β = 2", (_seq_logps(g, 5, torch.float64), _seq_logps(g, 5, torch.float64)), {"beta": 2.0}),
    ]


def _reward_no_beta(lp, lr, beta=0.1):
    return lp - lr


def _reward_divides(lp, lr, beta=0.1):
    return (lp - lr) / beta


def _reward_reversed(lp, lr, beta=0.1):
    return beta * (lr - lp)


def _reward_no_ref(lp, lr, beta=0.1):
    return beta * lp


def _reward_ratio(lp, lr, beta=0.1):
    return beta * torch.exp(lp - lr)


def _reward_mean(lp, lr, beta=0.1):
    return (beta * (lp - lr)).mean()


def _reward_beta_fixed(lp, lr, beta=0.1):
    return 0.1 * (lp - lr)


check_implicit_reward_exercise = _register(Exercise(
    name="implicit_reward",
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
    ],
    summary="implicit_reward is β·(log π − log π_ref), elementwise, linear in β",
    formula="beta * (logp_pol - logp_ref), same shape as the inputs",
    shape_hint=lambda expected, got: "the reward is elementwise: return the same shape as the inputs." if expected != got else None,
))


# ============================================================================================
# 03 — the toy categorical policy: one training step


REF_LOGITS = "the reference's logits (must not move)"
REF_TRAINABLE = "reference parameters requiring grad (must be 0)"


def _toy_step_case(name: str, seed: int, beta: float, steps: int, n_pairs: int) -> Case:
    from .toy import ToyPolicy, frozen_copy, make_toy_pairs

    def run(fn: Callable) -> dict[str, Any]:
        g = torch.Generator().manual_seed(seed)
        ref = ToyPolicy(2, 6)
        with torch.no_grad():
            ref.logits.copy_(torch.randn(2, 6, generator=g) * 0.5)
        ref = frozen_copy(ref)
        policy = ToyPolicy(2, 6)
        with torch.no_grad():
            policy.logits.copy_(ref.logits + torch.randn(2, 6, generator=g) * 0.3)  # the policy has moved away already
        prompts, chosen, rejected = make_toy_pairs()
        pick = torch.randperm(len(prompts), generator=g)[:n_pairs]
        batch = (prompts[pick], chosen[pick], rejected[pick])
        optimizer = torch.optim.SGD(policy.parameters(), lr=1.0)
        per_step: dict[str, Any] = {}
        for step in range(1, steps + 1):
            loss = fn(policy, ref, batch, optimizer, beta=beta)
            if isinstance(loss, Tensor) and loss.numel() == 1:
                loss = loss.item()
            per_step[f"the returned loss at step {step}"] = loss
            per_step[f"the policy's logits after step {step}"] = policy.logits.detach().clone()
        return {  # the reference first: a moved reference is the first thing to report
            REF_LOGITS: ref.logits.detach().clone(),
            REF_TRAINABLE: sum(p.requires_grad for p in ref.parameters()),
            **per_step,
        }

    return Case(name, run)


def _toy_cases(seed: int) -> list[Case]:
    return [
        _toy_step_case("two steps on 12 pairs, β = 0.1 (SGD, lr 1)", seed, 0.1, 2, 12),
        _toy_step_case("one step on all 30 pairs, β = 0.5", seed + 1, 0.5, 1, 30),
    ]


def _toy_pieces(policy, ref, batch, detach_ref=True, ref_from_policy=False):
    prompts, chosen, rejected = batch
    lp = policy.logprobs(prompts)
    if ref_from_policy:
        lr = lp.detach()
    else:
        lr = ref.logprobs(prompts)
    pick = lambda t, i: t.gather(1, i[:, None]).squeeze(1)
    return pick(lp, chosen), pick(lp, rejected), pick(lr, chosen), pick(lr, rejected)


def _toy_reference(policy, ref, batch, optimizer, beta=0.1):
    from .toy import toy_dpo_step

    return toy_dpo_step(policy, ref, batch, optimizer, beta)


def _toy_no_zero_grad(policy, ref, batch, optimizer, beta=0.1):
    loss = losses.dpo_loss(*_toy_pieces(policy, ref, batch), beta=beta)
    loss.backward()
    optimizer.step()
    return loss.item()


def _toy_no_step(policy, ref, batch, optimizer, beta=0.1):
    loss = losses.dpo_loss(*_toy_pieces(policy, ref, batch), beta=beta)
    optimizer.zero_grad()
    loss.backward()
    return loss.item()


def _toy_swapped(policy, ref, batch, optimizer, beta=0.1):
    pc, pr, rc, rr = _toy_pieces(policy, ref, batch)
    loss = losses.dpo_loss(pr, pc, rr, rc, beta=beta)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def _toy_policy_as_ref(policy, ref, batch, optimizer, beta=0.1):
    loss = losses.dpo_loss(*_toy_pieces(policy, ref, batch, ref_from_policy=True), beta=beta)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def _toy_default_beta(policy, ref, batch, optimizer, beta=0.1):
    loss = losses.dpo_loss(*_toy_pieces(policy, ref, batch))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def _toy_loss_after_step(policy, ref, batch, optimizer, beta=0.1):
    loss = losses.dpo_loss(*_toy_pieces(policy, ref, batch), beta=beta)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        return losses.dpo_loss(*_toy_pieces(policy, ref, batch), beta=beta).item()


check_toy_dpo_step_exercise = _register(Exercise(
    name="toy_dpo_step",
    cases=_toy_cases,
    reference=_toy_reference,
    mistakes=[
        Mistake("The gradients accumulate across steps: call optimizer.zero_grad() before loss.backward().", _toy_no_zero_grad),
        Mistake("The policy never moves: call optimizer.step() after loss.backward() — after, not before, since "
                "zero_grad() clears the gradients step() would use.", _toy_no_step),
        Mistake("The policy moves the wrong way: chosen and rejected are swapped.", _toy_swapped),
        Mistake("The reference log-probs come from the policy itself, so every log-ratio difference is 0 and the loss "
                "is stuck at log 2: use ref.logprobs(...) for the reference terms.", _toy_policy_as_ref),
        Mistake("β is not passed on to the loss (it runs with its default 0.1).", _toy_default_beta),
        Mistake("The returned loss is computed after the update; return the loss the gradient came from.", _toy_loss_after_step),
    ],
    summary="toy_dpo_step updates the policy exactly like the reference step, returns the loss, and leaves the reference frozen",
    key_hints={
        REF_LOGITS: "The reference moved: it is the KL anchor and must stay frozen — never give its parameters to an optimizer.",
        REF_TRAINABLE: "The reference's parameters were switched back to requires_grad=True: leave them frozen.",
    },
    formula="loss = dpo_loss(policy chosen/rejected log-probs, reference chosen/rejected log-probs (no grad), beta); "
            "optimizer.zero_grad(); loss.backward(); optimizer.step(); return loss.item(). (This check compares with the "
            "library's dpo_loss: if your step calls your own dpo_loss, make sure check_dpo_loss passes first.)",
))


# ============================================================================================
# 04 — sequence log-probs: the shift and the mask


def _logps_batch(g: torch.Generator, batch=4, length=10, vocab=7, left_pad=False, empty_row=None, scale=1.0):
    """Ragged prompts and responses, padded on one side; ``response_mask`` aligned with ``input_ids``."""
    input_ids = torch.zeros(batch, length, dtype=torch.long)
    response_mask = torch.zeros(batch, length, dtype=torch.long)
    for b in range(batch):
        prompt_len = int(torch.randint(2, 5, (1,), generator=g))
        resp_len = int(torch.randint(2, length - prompt_len + 1, (1,), generator=g))
        row = torch.randint(1, vocab, (prompt_len + resp_len,), generator=g)
        start = length - len(row) if left_pad else 0
        input_ids[b, start:start + len(row)] = row
        if b != empty_row:
            response_mask[b, start + prompt_len:start + len(row)] = 1
    logits = torch.randn(batch, length, vocab, generator=g) * scale
    return logits, input_ids, response_mask


def _logps_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    right = _logps_batch(g)
    left = _logps_batch(g, left_pad=True)
    empty = _logps_batch(g, empty_row=1)
    extreme = _logps_batch(g, scale=100.0)
    return [
        _fn_case("ragged prompts, right padding, sum", right, {"average": False}, grad=("arg0",)),
        _fn_case("the same batch, average=True", right, {"average": True}),
        _fn_case("left padding, sum", left, {"average": False}),
        _fn_case("a fully masked row (must give 0), sum", empty, {"average": False}),
        _fn_case("a fully masked row (must give 0, not NaN), average=True", empty, {"average": True}),
        _fn_case("logits ×100, sum", extreme, {"average": False}),
    ]


def _lp_generic(logits, input_ids, mask, average, *, shift_logits=True, shift_mask=True, log=True, use_mask=True,
                clamp=True, denominator=None, reduce_batch=False):
    if shift_logits:
        lg, labels = logits[:, :-1], input_ids[:, 1:]
    else:
        lg, labels = logits, input_ids
    if log:
        tok = torch.log_softmax(lg, -1).gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    else:
        tok = torch.softmax(lg, -1).gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    if not shift_logits:
        m = mask
    elif shift_mask == "wrong":
        m = mask[:, :-1]
    else:
        m = mask[:, 1:]
    m = m.to(tok.dtype) if use_mask else torch.ones_like(tok)
    total = (tok * m).sum(-1)
    if average:
        count = m.sum(-1) if denominator is None else torch.full_like(total, float(tok.shape[-1]))
        total = total / (count.clamp(min=1) if clamp else count)
    return total.mean() if reduce_batch else total


def _lp_unshifted_mask(logits, input_ids, mask, average=False):
    return _lp_generic(logits, input_ids, mask, average, shift_mask="wrong")


def _lp_no_shift(logits, input_ids, mask, average=False):
    return _lp_generic(logits, input_ids, mask, average, shift_logits=False)


def _lp_wrong_direction(logits, input_ids, mask, average=False):
    tok = torch.log_softmax(logits[:, 1:], -1).gather(-1, input_ids[:, :-1].unsqueeze(-1)).squeeze(-1)
    m = mask[:, :-1].to(tok.dtype)
    total = (tok * m).sum(-1)
    return total / m.sum(-1).clamp(min=1) if average else total


def _lp_no_mask(logits, input_ids, mask, average=False):
    return _lp_generic(logits, input_ids, mask, average, use_mask=False)


def _lp_naive_log_softmax(logits, input_ids, mask, average=False):
    tok = torch.log(torch.softmax(logits[:, :-1], -1)).gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    m = mask[:, 1:].bool()
    total = torch.where(m, tok, torch.zeros_like(tok)).sum(-1)
    return total / m.sum(-1).clamp(min=1) if average else total


def _lp_nan_empty(logits, input_ids, mask, average=False):
    return _lp_generic(logits, input_ids, mask, average, clamp=False)


def _lp_wrong_denominator(logits, input_ids, mask, average=False):
    return _lp_generic(logits, input_ids, mask, average, denominator="all")


def _lp_ignores_average(logits, input_ids, mask, average=False):
    return _lp_generic(logits, input_ids, mask, False)


def _lp_probabilities(logits, input_ids, mask, average=False):
    return _lp_generic(logits, input_ids, mask, average, log=False)


def _lp_batch_mean(logits, input_ids, mask, average=False):
    return _lp_generic(logits, input_ids, mask, average, reduce_batch=True)


def _logps_shape_hint(expected: tuple, got: tuple) -> str | None:
    if len(got) == 2:
        return "That is one value per token: sum (or average) over the response tokens to get one per sequence."
    if got == ():
        return "You reduced over the batch too: return one value per sequence, shape (B,)."
    return None


check_get_logps_exercise = _register(Exercise(
    name="get_logps",
    cases=_logps_cases,
    reference=logps.get_logps,
    mistakes=[
        Mistake("The mask is not shifted with the labels: after logits[:, :-1] / input_ids[:, 1:] use response_mask[:, 1:]. "
                "As written you drop the first response token and score the token after EOS (padding, predicted from "
                "the EOS position) — the loss looks normal, which is why this bug is silent.", _lp_unshifted_mask),
        Mistake("There is no shift: logits[:, t] predict token t+1, so compare logits[:, :-1] with input_ids[:, 1:].", _lp_no_shift),
        Mistake("The shift goes the wrong way: it is logits[:, :-1] against input_ids[:, 1:], not logits[:, 1:] against input_ids[:, :-1].", _lp_wrong_direction),
        Mistake("response_mask is ignored: prompt and padding tokens are being scored.", _lp_no_mask),
        Mistake("log(softmax(x)) underflows to -inf for large logits: use torch.log_softmax.", _lp_naive_log_softmax),
        Mistake("A fully masked row divides 0 by 0: clamp the token count to at least 1 (.clamp(min=1)).", _lp_nan_empty),
        Mistake("average=True divides by the sequence length; divide by the number of response tokens of each row.", _lp_wrong_denominator),
        Mistake("average=True is ignored: with it, divide each row's sum by its number of response tokens.", _lp_ignores_average),
        Mistake("You summed probabilities; sum log-probabilities (log_softmax, then gather).", _lp_probabilities),
        Mistake("You reduced over the batch: return one value per sequence, shape (B,).", _lp_batch_mean),
    ],
    summary="get_logps shifts logits and mask together, sums (or averages) response tokens only, 0 for empty rows, stable at logits ×100",
    formula="token t is scored by log_softmax(logits[:, t-1])[input_ids[:, t]]; sum over t where response_mask[:, t] == 1 "
            "(divide by that count, at least 1, when average=True)",
    shape_hint=_logps_shape_hint,
))


# ============================================================================================
# 05 — the tiny transformer's parts


def _model_fn(name: str) -> Callable:
    """The library's own ``name`` from ``rlhf_core.model``, bound at import (immune to ``using_parts``)."""
    def call(*args, **kwargs):
        from .model import LIBRARY_PARTS

        return LIBRARY_PARTS[name](*args, **kwargs)

    call.__name__ = name
    return call


def _norm_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    x, w = torch.randn(2, 5, 16, generator=g) * 3 + 1, torch.rand(16, generator=g) + 0.5
    tiny = torch.randn(3, 8, generator=g) * 1e-4
    return [
        _fn_case("x of shape (2, 5, 16) with a learned weight", (x, w), {"eps": 1e-6}, grad=("arg0",)),
        _fn_case("a tiny x (~1e-4), where eps matters, eps = 1e-6", (tiny, torch.ones(8)), {"eps": 1e-6}),
        _fn_case("eps = 0.1", (x[0], w), {"eps": 0.1}),
    ]


def _rms_layernorm(x, weight, eps=1e-6):
    xc = x - x.mean(-1, keepdim=True)
    return xc / torch.sqrt(xc.pow(2).mean(-1, keepdim=True) + eps) * weight


def _rms_eps_outside(x, weight, eps=1e-6):
    return x / (x.pow(2).mean(-1, keepdim=True).sqrt() + eps) * weight


def _rms_no_weight(x, weight, eps=1e-6):
    return x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + eps)


def _rms_no_sqrt(x, weight, eps=1e-6):
    return x / (x.pow(2).mean(-1, keepdim=True) + eps) * weight


def _rms_l2(x, weight, eps=1e-6):
    return x / torch.sqrt(x.pow(2).sum(-1, keepdim=True) + eps) * weight


def _rms_wrong_axis(x, weight, eps=1e-6):
    return x / torch.sqrt(x.pow(2).mean(0, keepdim=True) + eps) * weight


check_rms_norm_exercise = _register(Exercise(
    name="rms_norm",
    cases=_norm_cases,
    reference=_model_fn("rms_norm"),
    mistakes=[
        Mistake("You subtracted the mean: that is LayerNorm. RMSNorm only rescales by the root mean square.", _rms_layernorm),
        Mistake("eps is added after the square root; it goes inside: sqrt(mean(x²) + eps).", _rms_eps_outside),
        Mistake("The learned weight is not applied: multiply by weight at the end.", _rms_no_weight),
        Mistake("The square root is missing: divide by sqrt(mean(x²) + eps).", _rms_no_sqrt),
        Mistake("You divided by the L2 norm (a sum); RMS uses the mean of x² over the last axis.", _rms_l2),
        Mistake("Normalised over the wrong axis: the mean of x² is over the last (feature) axis.", _rms_wrong_axis),
    ],
    summary="rms_norm is x / sqrt(mean(x², -1) + eps) · weight, eps inside the root",
    formula="x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight",
    shape_hint=lambda e, g: "RMSNorm keeps the input's shape." if e != g else None,
))


def _swiglu_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    d, f = 8, 12
    weights = (torch.randn(f, d, generator=g) / 3, torch.randn(f, d, generator=g) / 3, torch.randn(d, f, generator=g) / 3)
    return [
        _fn_case("x (2, 5, 8), hidden width 12", (torch.randn(2, 5, d, generator=g),) + weights, grad=("arg0",)),
        _fn_case("x (3, 8) with large values", (torch.randn(3, d, generator=g) * 4,) + weights),
    ]


def _sw_silu_on_up(x, wg, wu, wd):
    return ((x @ wg.T) * F.silu(x @ wu.T)) @ wd.T


def _sw_gelu(x, wg, wu, wd):
    return (F.gelu(x @ wg.T) * (x @ wu.T)) @ wd.T


def _sw_relu(x, wg, wu, wd):
    return (F.relu(x @ wg.T) * (x @ wu.T)) @ wd.T


def _sw_sigmoid(x, wg, wu, wd):
    return (torch.sigmoid(x @ wg.T) * (x @ wu.T)) @ wd.T


def _sw_no_gate(x, wg, wu, wd):
    return F.silu(x @ wu.T) @ wd.T


def _sw_sum(x, wg, wu, wd):
    return (F.silu(x @ wg.T) + (x @ wu.T)) @ wd.T


check_swiglu_exercise = _register(Exercise(
    name="swiglu",
    cases=_swiglu_cases,
    reference=_model_fn("swiglu"),
    mistakes=[
        Mistake("SiLU is applied to the up branch; it goes on the gate: silu(x W_gateᵀ) ⊙ (x W_upᵀ).", _sw_silu_on_up),
        Mistake("That is GEGLU (gelu); SwiGLU uses SiLU (x·sigmoid(x)) on the gate.", _sw_gelu),
        Mistake("That is ReGLU (relu); SwiGLU uses SiLU (x·sigmoid(x)) on the gate.", _sw_relu),
        Mistake("That is GLU (sigmoid gate); SwiGLU uses SiLU, x·sigmoid(x), on the gate.", _sw_sigmoid),
        Mistake("The gate branch is missing: multiply silu(x W_gateᵀ) by the up projection x W_upᵀ.", _sw_no_gate),
        Mistake("The two branches are added; SwiGLU multiplies them elementwise.", _sw_sum),
    ],
    summary="swiglu is (silu(x W_gateᵀ) ⊙ x W_upᵀ) W_downᵀ",
    formula="(F.silu(x @ w_gate.T) * (x @ w_up.T)) @ w_down.T   (weights in nn.Linear layout: (out, in))",
    shape_hint=lambda e, g: "the output has the input's shape (..., D): check the transposes (weights are (out, in))." if e != g else None,
))


def _rope_cases(seed: int) -> list[Case]:
    from .model import rope_angles

    g = torch.Generator().manual_seed(seed)
    head_dim = 8
    cos, sin = rope_angles(torch.arange(5), head_dim)  # (5, 4)
    positions = torch.stack([torch.arange(5), torch.clamp(torch.arange(5) - 2, min=0)])  # a left-padded row
    bcos, bsin = rope_angles(positions, head_dim)  # (2, 5, 4)
    return [
        _fn_case("q of shape (1, 2, 5, 8), positions 0…4", (torch.randn(1, 2, 5, head_dim, generator=g), cos, sin), grad=("arg0",)),
        _fn_case("a batch of 2 with per-row positions, cos/sin (B, T, Dh/2)", (torch.randn(2, 3, 5, head_dim, generator=g), bcos, bsin)),
    ]


def _rope_broadcast(cos, sin, x):
    if cos.dim() == 3:  # (B, T, Dh/2) -> (B, 1, T, Dh/2)
        return cos[:, None], sin[:, None]
    return cos, sin


def _rope_interleaved(x, cos, sin):
    cos, sin = _rope_broadcast(cos, sin, x)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    out = torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], -1)
    return out.flatten(-2)


def _rope_wrong_way(x, cos, sin):
    cos, sin = _rope_broadcast(cos, sin, x)
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos + x2 * sin, -x1 * sin + x2 * cos], -1)


def _rope_swapped_trig(x, cos, sin):
    cos, sin = _rope_broadcast(cos, sin, x)
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * sin - x2 * cos, x1 * cos + x2 * sin], -1)


def _rope_identity(x, cos, sin):
    return x


def _rope_first_half_only(x, cos, sin):
    cos, sin = _rope_broadcast(cos, sin, x)
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x2], -1)


def _rope_halves_swapped(x, cos, sin):
    cos, sin = _rope_broadcast(cos, sin, x)
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * sin + x2 * cos, x1 * cos - x2 * sin], -1)


check_apply_rope_exercise = _register(Exercise(
    name="apply_rope",
    cases=_rope_cases,
    reference=_model_fn("apply_rope"),
    mistakes=[
        Mistake("You paired adjacent dimensions (x[..., 0::2], x[..., 1::2]); this course uses the rotate-half convention: "
                "dimension i pairs with i + Dh/2.", _rope_interleaved),
        Mistake("The rotation goes the wrong way: first half x1·cos − x2·sin, second half x1·sin + x2·cos.", _rope_wrong_way),
        Mistake("cos and sin are swapped.", _rope_swapped_trig),
        Mistake("x comes back unchanged: the rotation is not applied.", _rope_identity),
        Mistake("Only the first half is rotated; the second half becomes x1·sin + x2·cos.", _rope_first_half_only),
        Mistake("The two halves are in the wrong order: cat([x1·cos − x2·sin, x1·sin + x2·cos], -1).", _rope_halves_swapped),
    ],
    summary="apply_rope rotates (x_i, x_{i+Dh/2}) by position·θ_i, per row positions included",
    formula="x1, x2 = x[..., :Dh/2], x[..., Dh/2:]; cat([x1·cos − x2·sin, x1·sin + x2·cos], -1) "
            "(cos/sin (T, Dh/2) broadcast over batch and heads; (B, T, Dh/2) needs a head axis: cos[:, None])",
    shape_hint=lambda e, g: "RoPE keeps the shape of x; insert the head axis into a (B, T, Dh/2) cos/sin (cos[:, None])." if e != g else None,
))


# ============================================================================================
# 06 — one SFT step on a tiny model


def _tiny_model(seed: int):
    from .model import ModelConfig, TinyLM

    torch.manual_seed(seed)
    return TinyLM(ModelConfig(vocab_size=12, d_model=16, n_layers=1, n_heads=2, d_ff=32, max_seq_len=24))


def _tiny_rows(g: torch.Generator, batch: int, length: int, vocab: int = 12) -> tuple[Tensor, Tensor, Tensor]:
    """Right-padded ``[BOS] prompt response EOS`` rows with ragged lengths: ids, attention and response masks."""
    ids = torch.zeros(batch, length, dtype=torch.long)
    attention = torch.zeros(batch, length, dtype=torch.long)
    response = torch.zeros(batch, length, dtype=torch.long)
    for b in range(batch):
        prompt_len = int(torch.randint(2, 5, (1,), generator=g))
        resp_len = int(torch.randint(2, length - prompt_len + 1, (1,), generator=g))
        ids[b, : prompt_len + resp_len] = torch.randint(3, vocab, (prompt_len + resp_len,), generator=g)
        ids[b, 0], ids[b, prompt_len + resp_len - 1] = 1, 2  # BOS, EOS
        attention[b, : prompt_len + resp_len] = 1
        response[b, prompt_len: prompt_len + resp_len] = 1
    return ids, attention, response


def _flat_params(model) -> Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()]).clone()


def _sft_case(name: str, seed: int, steps: int) -> Case:
    def run(fn: Callable) -> dict[str, Any]:
        g = torch.Generator().manual_seed(seed)
        model = _tiny_model(seed)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
        values: dict[str, Any] = {}
        for step in range(1, steps + 1):
            ids, attention, response = _tiny_rows(g, batch=4, length=12)
            loss = fn(model, {"input_ids": ids, "attention_mask": attention, "response_mask": response}, optimizer)
            values[f"the returned loss at step {step}"] = loss.item() if isinstance(loss, Tensor) and loss.numel() == 1 else loss
            values[f"the model's parameters after step {step}"] = _flat_params(model)
        return values

    return Case(name, run)


def _sft_cases(seed: int) -> list[Case]:
    return [_sft_case("two SFT steps on a tiny model (SGD, lr 0.5)", seed, 2)]


def _sft_generic(model, batch, optimizer, *, shift=True, mask_shift=True, mask="response", reduce="tokens",
                 zero_grad=True, step=True):
    ids = batch["input_ids"]
    logits = model(ids, batch["attention_mask"])
    if shift:
        logp = torch.log_softmax(logits[:, :-1], -1).gather(-1, ids[:, 1:, None]).squeeze(-1)
    else:
        logp = torch.log_softmax(logits, -1).gather(-1, ids[..., None]).squeeze(-1)
    chosen_mask = batch["response_mask"] if mask == "response" else batch["attention_mask"]
    if shift:
        m = chosen_mask[:, 1:] if mask_shift else chosen_mask[:, :-1]
    else:
        m = chosen_mask
    m = m.float()
    if reduce == "tokens":
        loss = -(logp * m).sum() / m.sum()
    elif reduce == "sum":
        loss = -(logp * m).sum()
    else:  # per-sequence means, then the batch mean
        loss = (-(logp * m).sum(-1) / m.sum(-1)).mean()
    if zero_grad:
        optimizer.zero_grad()
    loss.backward()
    if step:
        optimizer.step()
    return loss.item()


def _sft_reference(model, batch, optimizer):
    from .train import sft_step

    return sft_step(model, batch, optimizer)


check_sft_step_exercise = _register(Exercise(
    name="sft_step",
    cases=_sft_cases,
    reference=_sft_reference,
    mistakes=[
        Mistake("The mask is not shifted with the labels: use response_mask[:, 1:] next to input_ids[:, 1:].",
                lambda m, b, o: _sft_generic(m, b, o, mask_shift=False)),
        Mistake("There is no shift: logits[:, t] predict token t+1, so compare logits[:, :-1] with input_ids[:, 1:].",
                lambda m, b, o: _sft_generic(m, b, o, shift=False)),
        Mistake("The loss counts prompt tokens: SFT learns the response, so mask with response_mask, not attention_mask.",
                lambda m, b, o: _sft_generic(m, b, o, mask="attention")),
        Mistake("You summed the token losses; average them over the response tokens of the batch.",
                lambda m, b, o: _sft_generic(m, b, o, reduce="sum")),
        Mistake("You averaged per sequence, then over the batch; this course's SFT loss averages over all response "
                "tokens of the batch at once: -(logp·mask).sum() / mask.sum().",
                lambda m, b, o: _sft_generic(m, b, o, reduce="sequences")),
        Mistake("The gradients accumulate across steps: call optimizer.zero_grad() before loss.backward().",
                lambda m, b, o: _sft_generic(m, b, o, zero_grad=False)),
        Mistake("The model never moves: call optimizer.step() after loss.backward().",
                lambda m, b, o: _sft_generic(m, b, o, step=False)),
    ],
    summary="sft_step averages the negative log-prob over response tokens (shifted), and updates the model like the reference",
    formula="logits = model(input_ids, attention_mask); token log-probs of input_ids[:, 1:] under logits[:, :-1]; "
            "loss = -(logp · response_mask[:, 1:]).sum() / response_mask[:, 1:].sum(); zero_grad, backward, step; return loss.item()",
))


# ============================================================================================
# 07 — collating preference pairs

PAIR_KEYS = tuple(f"{side}_{part}" for side in ("chosen", "rejected") for part in ("input_ids", "attention_mask", "response_mask"))


def _pair_examples(seed: int, n: int) -> list[dict]:
    import random as _random

    from . import task

    rng = _random.Random(seed)
    rows = []
    for _ in range(n):
        prompt, chosen = task.sample_review(rng, "positive")
        _, rejected = task.sample_review(rng, "negative", prompt=prompt)
        rows.append({"prompt": prompt, "chosen": chosen, "rejected": rejected})
    return rows


def _collate_case(name: str, examples: list[dict]) -> Case:
    def run(fn: Callable) -> dict[str, Any]:
        from .checking import Missing
        from .tokenizer import WordTokenizer

        out = fn([dict(e) for e in examples], WordTokenizer.for_task())
        if not isinstance(out, dict):  # every key then reports what came back instead of a dict
            return {key: out for key in PAIR_KEYS}
        return {key: out.get(key, Missing(key)) for key in PAIR_KEYS}

    return Case(name, run)


def _collate_cases(seed: int) -> list[Case]:
    short = {"prompt": "the film was", "chosen": "great .", "rejected": "very dull and slow . it was bad ."}
    return [
        _collate_case("a batch of 5 pairs of different lengths", _pair_examples(seed, 5)),
        _collate_case("a short chosen and a longer rejected response", [short]),
    ]


def _collate_generic(examples, tokenizer, max_length=None, *, bos=True, eos=True, prompt_in_mask=False,
                     eos_in_mask=True, left=False, separate_lengths=False, pad_id=None, attention_on_eos=True):
    pad = tokenizer.pad_id if pad_id is None else pad_id
    encoded = {}
    for side in ("chosen", "rejected"):
        rows = []
        for ex in examples:
            p = ([tokenizer.bos_id] if bos else []) + tokenizer.encode(ex["prompt"])
            r = tokenizer.encode(ex[side]) + ([tokenizer.eos_id] if eos else [])
            mask = [1 if prompt_in_mask else 0] * len(p) + [1] * len(r)
            if eos and not eos_in_mask:
                mask[-1] = 0
            attn = [1] * (len(p) + len(r))
            if eos and not attention_on_eos:
                attn[-1] = 0
            rows.append((p + r, attn, mask))
        encoded[side] = rows
    common = max(len(r[0]) for side in encoded.values() for r in side)
    out = {}
    for side, rows in encoded.items():
        length = max(len(r[0]) for r in rows) if separate_lengths else common
        for part, index, fill in (("input_ids", 0, pad), ("attention_mask", 1, 0), ("response_mask", 2, 0)):
            t = torch.full((len(rows), length), fill, dtype=torch.long)
            for i, row in enumerate(rows):
                values = torch.tensor(row[index], dtype=torch.long)
                if left:
                    t[i, length - len(values):] = values
                else:
                    t[i, : len(values)] = values
            out[f"{side}_{part}"] = t
    return out


def _collate_reference(examples, tokenizer, max_length=None):
    from .data import collate_pairs

    return collate_pairs(examples, tokenizer, max_length)


check_collate_pairs_exercise = _register(Exercise(
    name="collate_pairs",
    cases=_collate_cases,
    reference=_collate_reference,
    mistakes=[
        Mistake("EOS is missing: append tokenizer.eos_id to every response (the model must learn to stop).",
                lambda e, t, m=None: _collate_generic(e, t, eos=False)),
        Mistake("BOS is missing: every sequence starts with tokenizer.bos_id.", lambda e, t, m=None: _collate_generic(e, t, bos=False)),
        Mistake("The response mask covers the prompt too: it must be 0 on BOS and the prompt, 1 on the response and EOS.",
                lambda e, t, m=None: _collate_generic(e, t, prompt_in_mask=True)),
        Mistake("The response mask leaves out EOS; EOS is part of the response (its probability is learned too).",
                lambda e, t, m=None: _collate_generic(e, t, eos_in_mask=False)),
        Mistake("Padded on the left; training batches are padded on the right (pad after EOS).",
                lambda e, t, m=None: _collate_generic(e, t, left=True)),
        Mistake("Chosen and rejected are padded to different lengths; pad both to one common T so they can be stacked into one (2B, T) batch.",
                lambda e, t, m=None: _collate_generic(e, t, separate_lengths=True)),
        Mistake("Padding uses the wrong id: pad with tokenizer.pad_id (0).", lambda e, t, m=None: _collate_generic(e, t, pad_id=t.eos_id)),
        Mistake("The attention mask is 0 on EOS; it is 1 on every real token, EOS included.",
                lambda e, t, m=None: _collate_generic(e, t, attention_on_eos=False)),
    ],
    summary="collate_pairs builds [BOS] prompt response [EOS], right-padded to one length, with masks on real and response tokens",
    formula="ids = [bos] + encode(prompt) + encode(response) + [eos]; response_mask 1 on response+EOS; attention_mask 1 on real "
            "tokens; right-pad chosen and rejected to the longest of both with pad_id",
    shape_hint=lambda e, g: "Chosen and rejected must share one padded length T (the longest of both)." if e[:1] == g[:1] else None,
    rtol=0.0,
    atol=0.0,
))


# ============================================================================================
# 08 — one DPO step on a tiny model

DPO_METRIC_KEYS = ("loss", "rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins",
                   "logps/chosen", "logps/rejected", "logratio/margin")


def _dpo_step_case(name: str, seed: int, beta: float, steps: int) -> Case:
    def run(fn: Callable) -> dict[str, Any]:
        from .checking import Missing

        g = torch.Generator().manual_seed(seed)
        policy = _tiny_model(seed)
        optimizer = torch.optim.SGD(policy.parameters(), lr=0.5)
        values: dict[str, Any] = {}
        for step in range(1, steps + 1):
            ids_c, att_c, resp_c = _tiny_rows(g, batch=4, length=12)
            ids_r, att_r, resp_r = _tiny_rows(g, batch=4, length=12)
            batch = {"chosen_input_ids": ids_c, "chosen_attention_mask": att_c, "chosen_response_mask": resp_c,
                     "rejected_input_ids": ids_r, "rejected_attention_mask": att_r, "rejected_response_mask": resp_r}
            ref_c = -(torch.rand(4, generator=g) * 10 + 15)
            ref_r = -(torch.rand(4, generator=g) * 10 + 15)
            # pair 0 is a tie (the same response twice): it must not count as correct
            ids_r[0], att_r[0], resp_r[0], ref_r[0] = ids_c[0], att_c[0], resp_c[0], ref_c[0]
            out = fn(policy, batch, ref_c, ref_r, optimizer, beta=beta)
            for key in DPO_METRIC_KEYS:
                if not isinstance(out, dict):  # each metric then reports what came back instead of a dict
                    values[f"{key!r} at step {step}"] = out
                else:
                    value = out.get(key, Missing(key))
                    if isinstance(value, Tensor) and value.numel() == 1:
                        value = value.item()
                    values[f"{key!r} at step {step}"] = value
            values[f"the policy's parameters after step {step}"] = _flat_params(policy)
        return values

    return Case(name, run)


def _dpo_step_cases(seed: int) -> list[Case]:
    return [
        _dpo_step_case("two DPO steps on a tiny model, β = 0.1 (SGD, lr 0.5)", seed, 0.1, 2),
        _dpo_step_case("one DPO step, β = 0.5", seed + 1, 0.5, 1),
    ]


def _dpo_step_generic(policy, batch, rc, rr, optimizer, beta=0.1, *, swap=False, reward_beta=True, ge=False,
                      average=False, zero_grad=True, metrics_after=False, unscaled_rewards_margin=False, use_beta=True):
    from .train import concatenated_logps

    pc, pr = concatenated_logps(policy, batch, average=average)
    if swap:
        pc, pr = pr, pc
    loss = losses.dpo_loss(pc, pr, rc, rr, beta if use_beta else 0.1)
    if zero_grad:
        optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if metrics_after:
        with torch.no_grad():
            pc, pr = concatenated_logps(policy, batch, average=average)
    pc, pr = pc.detach(), pr.detach()
    scale = beta if reward_beta else 1.0
    chosen, rejected = scale * (pc - rc), scale * (pr - rr)
    margins = chosen - rejected
    return {
        "loss": loss.item(),
        "rewards/chosen": chosen.mean().item(),
        "rewards/rejected": rejected.mean().item(),
        "rewards/accuracies": ((chosen >= rejected) if ge else (chosen > rejected)).float().mean().item(),
        "rewards/margins": (margins / scale if unscaled_rewards_margin else margins).mean().item(),
        "logps/chosen": pc.mean().item(),
        "logps/rejected": pr.mean().item(),
        "logratio/margin": (margins / scale).mean().item(),
    }


def _dpo_step_reference(policy, batch, rc, rr, optimizer, beta=0.1):
    from .train import dpo_step

    return dpo_step(policy, batch, rc, rr, optimizer, beta)


check_dpo_step_exercise = _register(Exercise(
    name="dpo_step",
    cases=_dpo_step_cases,
    reference=_dpo_step_reference,
    mistakes=[
        Mistake("Chosen and rejected are swapped.", lambda *a, beta=0.1: _dpo_step_generic(*a, beta=beta, swap=True)),
        Mistake("The log-probs are averaged per token; DPO sums them (get_logps(..., average=False)).",
                lambda *a, beta=0.1: _dpo_step_generic(*a, beta=beta, average=True)),
        Mistake("The gradients accumulate across steps: call optimizer.zero_grad() before loss.backward().",
                lambda *a, beta=0.1: _dpo_step_generic(*a, beta=beta, zero_grad=False)),
        Mistake("β is not passed on to dpo_loss (it runs with its default 0.1).",
                lambda *a, beta=0.1: _dpo_step_generic(*a, beta=beta, use_beta=False)),
        Mistake("The rewards miss β: rewards/chosen is β·(log π − log π_ref).",
                lambda *a, beta=0.1: _dpo_step_generic(*a, beta=beta, reward_beta=False)),
        Mistake("rewards/margins is the β-scaled margin; the unscaled one goes in logratio/margin.",
                lambda *a, beta=0.1: _dpo_step_generic(*a, beta=beta, unscaled_rewards_margin=True)),
        Mistake("Accuracy counts ties as correct; a pair is correct only when the chosen reward is strictly higher.",
                lambda *a, beta=0.1: _dpo_step_generic(*a, beta=beta, ge=True)),
        Mistake("The metrics are measured after the update; report those of the batch the gradient came from.",
                lambda *a, beta=0.1: _dpo_step_generic(*a, beta=beta, metrics_after=True)),
    ],
    summary="dpo_step computes policy log-probs in one pass, the loss against the cached reference, one update, and the conventional metrics",
    formula="pc, pr = summed log-probs of chosen/rejected under the policy; loss = dpo_loss(pc, pr, ref_c, ref_r, beta); "
            "zero_grad, backward, step; rewards = β·(logp − ref); accuracy = mean(chosen reward > rejected reward)",
))


# ============================================================================================
# 09 — diagnosing a run from its metrics

DIAGNOSIS_EXERCISE_LABELS = ("healthy", "margin_explosion", "no_learning", "diverged", "reversed_preferences")


def _history(steps, **series) -> list[dict]:
    rows = []
    for i, step in enumerate(steps):
        row = {"step": step}
        for name, values in series.items():
            row[name] = float(values[i])
        rows.append(row)
    return rows


def _diagnosis_histories(seed: int) -> list[tuple[str, list[dict]]]:
    g = torch.Generator().manual_seed(seed)
    noise = lambda n, s: (torch.randn(n, generator=g) * s).tolist()
    steps = list(range(0, 200, 10))
    n = len(steps)
    ramp = [i / (n - 1) for i in range(n)]

    def run(beta, margins, accuracies, losses_, chosen_rewards=None):
        chosen_rewards = chosen_rewards or [0.5 * beta * m for m in margins]
        return _history(steps, **{
            "loss": losses_, "rewards/accuracies": accuracies,
            "rewards/margins": [beta * m for m in margins], "logratio/margin": margins,
            "rewards/chosen": chosen_rewards, "rewards/rejected": [c - beta * m for c, m in zip(chosen_rewards, margins)],
        })

    healthy_m = [4.0 * r + e for r, e in zip(ramp, noise(n, 0.2))]
    healthy = run(0.1, healthy_m, [0.5 + 0.3 * r for r in ramp], [0.693 - 0.25 * r for r in ramp],
                  chosen_rewards=[0.05 * m for m in healthy_m])
    explosion_m = [min(600.0, 3.0 * (1.25 ** i)) for i in range(n)]
    explosion = run(0.1, explosion_m, [min(1.0, 0.6 + 0.1 * i) for i in range(n)],
                    [max(0.0, 0.693 - 0.1 * i) for i in range(n)], chosen_rewards=[0.05 * m for m in explosion_m])
    flat = run(0.1, [0.0] * n, [0.0] * n, [0.6931] * n)
    nan_losses = [0.69 - 0.01 * i if i < 7 else float("nan") for i in range(n)]
    diverged = run(0.1, [0.5 * i if i < 7 else float("nan") for i in range(n)], [0.6] * n, nan_losses)
    reversed_m = [-5.0 * r for r in ramp]
    reversed_ = run(0.1, reversed_m, [0.5 - 0.45 * r for r in ramp], [0.693 + 0.5 * r for r in ramp],
                    chosen_rewards=[0.05 * m for m in reversed_m])
    big_beta_m = [min(120.0, 2.0 * (1.3 ** i)) for i in range(n)]
    big_beta = run(0.5, big_beta_m, [1.0] * n, [0.0005] * n, chosen_rewards=[0.25 * m for m in big_beta_m])
    slow_m = [1.5 * r for r in ramp]
    slow = run(0.2, slow_m, [0.5 + 0.15 * r for r in ramp], [0.693 - 0.1 * r for r in ramp],
               chosen_rewards=[0.1 * m for m in slow_m])
    return [
        ("a run whose loss falls from log 2 and whose margin settles near 4", healthy),
        ("a run at β = 0.1 whose margin climbs into the hundreds", explosion),
        ("a run stuck at loss log 2 with zero margin", flat),
        ("a run whose loss turns NaN at step 70", diverged),
        ("a run whose accuracy falls to 0.05 while the loss rises", reversed_),
        ("a run at β = 0.5, loss ≈ 0, unscaled margin 120", big_beta),
        ("a slow but steady run at β = 0.2", slow),
    ]


def _diagnosis_cases(seed: int) -> list[Case]:
    def make(name: str, rows: list[dict]) -> Case:
        def run(fn: Callable) -> dict[str, Any]:
            label = fn([dict(r) for r in rows])
            label = getattr(label, "label", label)  # a Diagnosis object is fine too
            return {"the diagnosis": label}

        return Case(name, run)

    return [make(name, rows) for name, rows in _diagnosis_histories(seed)]


def _diagnose_reference(history) -> str:
    from .diagnostics import diagnose_run

    return diagnose_run(history)


def _dg_always_healthy(history):
    return "healthy"


def _dg_loss_only(history):
    last = history[-1]["loss"]
    if last != last:
        return "diverged"
    if abs(last - 0.6931) < 0.01:
        return "no_learning"
    return "margin_explosion" if last < 0.05 else "healthy"


def _dg_ignores_nan(history):
    margins = [r["logratio/margin"] for r in history]
    accuracy = history[-1]["rewards/accuracies"]
    if max(m for m in margins if m == m) > 50:
        return "margin_explosion"
    if accuracy < 0.3:
        return "reversed_preferences"
    if all(abs(r["loss"] - 0.6931) < 0.01 for r in history):
        return "no_learning"
    return "healthy"


def _dg_scaled_margin(history):
    if any(r["loss"] != r["loss"] for r in history):
        return "diverged"
    if history[-1]["rewards/accuracies"] < 0.3:
        return "reversed_preferences"
    if all(abs(r["loss"] - 0.6931) < 0.01 for r in history):
        return "no_learning"
    return "margin_explosion" if max(r["rewards/margins"] for r in history) > 50 else "healthy"


def _dg_accuracy_is_explosion(history):
    if any(r["loss"] != r["loss"] for r in history):
        return "diverged"
    if all(abs(r["loss"] - 0.6931) < 0.01 for r in history):
        return "no_learning"
    accuracy = history[-1]["rewards/accuracies"]
    if accuracy < 0.3:
        return "reversed_preferences"
    return "margin_explosion" if accuracy > 0.75 else "healthy"


check_diagnose_run_exercise = _register(Exercise(
    name="diagnose_run",
    cases=_diagnosis_cases,
    reference=_diagnose_reference,
    mistakes=[
        Mistake("Every run is called healthy: look at the margin, the loss and NaNs.", _dg_always_healthy),
        Mistake("The loss alone cannot tell a healthy run from an explosion: a loss near 0 is also what a large β "
                "gives at a moderate margin. Look at the unscaled margin (logratio/margin).", _dg_loss_only),
        Mistake("NaN slips through: comparisons with NaN are always False, so test math.isnan first.", _dg_ignores_nan),
        Mistake("You thresholded the β-scaled rewards/margins; the explosion shows in the unscaled logratio/margin "
                "(above ~50), which does not depend on β.", _dg_scaled_margin),
        Mistake("High accuracy alone is not an explosion: a healthy run also reaches accuracy near 1. Look at the "
                "unscaled margin.", _dg_accuracy_is_explosion),
    ],
    summary="diagnose_run names healthy runs, margin explosions, stalled, diverged and reversed runs like the reference",
    formula="diverged if any NaN/inf; reversed_preferences if accuracy ends well below 0.5 with a negative margin; "
            "no_learning if the loss stays at log 2 with margin ≈ 0; margin_explosion if the unscaled margin "
            "(logratio/margin) exceeds ~50; otherwise healthy",
))


# ============================================================================================
# the check functions a learner calls


def check_optimal_policy(candidate: Callable, seed: int = 0, quiet: bool = False) -> None:
    """Check ``optimal_policy(ref_logprobs, rewards, beta) -> log-probs`` against the closed form."""
    check(EXERCISES["optimal_policy"], candidate, seed, quiet)


def check_rlhf_objective(candidate: Callable, seed: int = 0, quiet: bool = False) -> None:
    """Check ``rlhf_objective(policy_logprobs, ref_logprobs, rewards, beta) -> (...)`` (E_π[r] − β·KL)."""
    check(EXERCISES["rlhf_objective"], candidate, seed, quiet)


def check_dpo_loss(candidate: Callable, seed: int = 0, quiet: bool = False) -> None:
    """Check ``dpo_loss(logp_pol_chosen, logp_pol_rejected, logp_ref_chosen, logp_ref_rejected, beta)``."""
    check(EXERCISES["dpo_loss"], candidate, seed, quiet)


def check_implicit_reward(candidate: Callable, seed: int = 0, quiet: bool = False) -> None:
    """Check ``implicit_reward(logp_pol, logp_ref, beta)``."""
    check(EXERCISES["implicit_reward"], candidate, seed, quiet)


def check_toy_dpo_step(candidate: Callable, seed: int = 0, quiet: bool = False) -> None:
    """Check ``toy_dpo_step(policy, ref, batch, optimizer, beta) -> float`` (one DPO update of the toy policy)."""
    check(EXERCISES["toy_dpo_step"], candidate, seed, quiet)


def check_get_logps(candidate: Callable, seed: int = 0, quiet: bool = False) -> None:
    """Check ``get_logps(logits, input_ids, response_mask, average=False) -> (B,)``."""
    check(EXERCISES["get_logps"], candidate, seed, quiet)


def check_rms_norm(candidate: Callable, seed: int = 0, quiet: bool = False) -> None:
    """Check ``rms_norm(x, weight, eps=1e-6)``."""
    check(EXERCISES["rms_norm"], candidate, seed, quiet)


def check_swiglu(candidate: Callable, seed: int = 0, quiet: bool = False) -> None:
    """Check ``swiglu(x, w_gate, w_up, w_down)``."""
    check(EXERCISES["swiglu"], candidate, seed, quiet)


def check_apply_rope(candidate: Callable, seed: int = 0, quiet: bool = False) -> None:
    """Check ``apply_rope(x, cos, sin)`` (rotate-half convention)."""
    check(EXERCISES["apply_rope"], candidate, seed, quiet)


def check_sft_step(candidate: Callable, seed: int = 0, quiet: bool = False) -> None:
    """Check ``sft_step(model, batch, optimizer) -> float`` on a tiny model."""
    check(EXERCISES["sft_step"], candidate, seed, quiet)


def check_collate_pairs(candidate: Callable, seed: int = 0, quiet: bool = False) -> None:
    """Check ``collate_pairs(examples, tokenizer, max_length=None) -> dict`` against the library's collation."""
    check(EXERCISES["collate_pairs"], candidate, seed, quiet)


def check_dpo_step(candidate: Callable, seed: int = 0, quiet: bool = False) -> None:
    """Check ``dpo_step(policy, batch, ref_chosen_logps, ref_rejected_logps, optimizer, beta) -> metrics``."""
    check(EXERCISES["dpo_step"], candidate, seed, quiet)


def check_diagnose_run(candidate: Callable, seed: int = 0, quiet: bool = False) -> None:
    """Check ``diagnose_run(history) -> label`` on seven textbook runs."""
    check(EXERCISES["diagnose_run"], candidate, seed, quiet)
