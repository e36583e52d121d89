"""The six sanity checks of the paper-to-code drill, by name.

=  =================================  ========================================================
#  function                           what must hold
=  =================================  ========================================================
1  ``sanity_loss_at_init``            policy == reference ⇒ the DPO loss is log 2
2  ``sanity_reference_frozen``        no reference parameter requires grad, and none moved
3  ``sanity_gradient_flows``          the loss sends a non-zero, finite gradient to the policy
4  ``sanity_margin_monotone``         a bigger margin lowers the loss; swapping raises it
5  ``sanity_ranking_recovered``       after training the implicit reward ranks as preferred,
                                      and the top response's probability went up
6  ``sanity_reward_scales_with_beta`` the implicit reward is linear in β
=  =================================  ========================================================

Each prints ``✓ …`` or raises :class:`~rlhf_core.checking.CheckFailed` with the likely mistake.
They are the drill's minimum, not a proof: a mask that is not shifted, or ``-log(sigmoid(x))``,
passes all six — the ``check_<exercise>`` functions of :mod:`rlhf_core.checks` catch those.
:func:`run_sanity_checks` runs all six and returns a scorecard instead of raising.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import Tensor

from .checking import CheckFailed

__all__ = [
    "SANITY_CHECKS",
    "SanityResult",
    "sanity_loss_at_init",
    "sanity_reference_frozen",
    "sanity_gradient_flows",
    "sanity_margin_monotone",
    "sanity_ranking_recovered",
    "sanity_reward_scales_with_beta",
    "run_sanity_checks",
    "check_toy_training",
]

LOG2 = math.log(2.0)


def _fail(number: int, text: str) -> None:
    raise CheckFailed(f"✗ sanity check {number} — {text}")


def _ok(number: int, text: str) -> str:
    return f"✓ sanity check {number}: {text}"


def _call(number: int, fn: Callable, *args, **kwargs) -> Any:
    """Call the learner's function; turn a crash into a one-line verdict."""
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        _fail(number, f"{getattr(fn, '__name__', 'the function')} is not implemented yet (it raises NotImplementedError).")
    except Exception as exc:  # anything the learner's code raises becomes a sentence
        _fail(number, f"{getattr(fn, '__name__', 'the function')} raised {type(exc).__name__}: {str(exc)[:200]}")


def _as_float(number: int, value: Any, what: str) -> float:
    if isinstance(value, Tensor):
        if value.numel() != 1:
            _fail(number, f"{what} should be a single number, got a tensor of shape {tuple(value.shape)} — did you forget .mean()?")
        value = value.item()
    if not isinstance(value, (int, float)):
        _fail(number, f"{what} should be a number or a 0-dim tensor, got {type(value).__name__}.")
    return float(value)


def _loss_at_init_hint(value: float, batch: int) -> str:
    known = [
        (-LOG2, "the minus sign is missing: the loss is -log σ(h)"),
        (0.5, "that is sigmoid(0): return -logsigmoid(h), not sigmoid(h)"),
        (0.1 * LOG2, "β multiplies the loss instead of the margin inside the log-sigmoid"),
        (batch * LOG2, "you summed over the batch instead of taking the mean"),
        (0.0, "a loss of 0 at initialisation: is the log-sigmoid's argument something other than the β-scaled margin?"),
    ]
    for target, hint in known:
        if abs(value - target) < 1e-4:
            return hint
    return "at policy == reference every log-ratio is 0, so the loss is -log σ(0) = log 2"


def _sanity_loss_at_init(dpo_loss: Callable) -> str:
    """Check 1: with policy == reference the loss is log 2 — on zeros, and on equal non-zero log-probs."""
    zeros = torch.zeros(8)
    value = _as_float(1, _call(1, dpo_loss, zeros, zeros, zeros, zeros, beta=0.1), "the loss")
    if abs(value - LOG2) > 1e-5:
        _fail(1, f"with all log-probs 0 the loss is {value:.6f}, expected log 2 ≈ {LOG2:.6f}: {_loss_at_init_hint(value, 8)}.")
    g = torch.Generator().manual_seed(1)
    chosen, rejected = -torch.rand(8, generator=g) * 30 - 1, -torch.rand(8, generator=g) * 30 - 1
    value = _as_float(1, _call(1, dpo_loss, chosen, rejected, chosen.clone(), rejected.clone(), beta=0.1), "the loss")
    if abs(value - LOG2) > 1e-5:
        _fail(1, f"with policy == reference on non-zero log-probs the loss is {value:.6f}, expected log 2 ≈ {LOG2:.6f}. "
                 "It was log 2 on zeros, so the reference term is probably missing or mis-signed: "
                 "the margin is (log π(y_w) − log π_ref(y_w)) − (log π(y_l) − log π_ref(y_l)).")
    return _ok(1, f"at initialisation (policy == reference) the loss is log 2 = {LOG2:.4f}")


def _sanity_reference_frozen(toy_result: dict) -> str:
    """Check 2: the reference has no parameter requiring grad, and its values equal the initial policy's.

    ``toy_result`` is what ``run_toy_task`` returns (``ref``, ``policy``; optionally ``ref_init``, a
    state dict of the reference before training — without it a ToyPolicy reference must be all
    zeros, the uniform start).
    """
    if not isinstance(toy_result, dict) or "ref" not in toy_result:
        _fail(2, "expected the dict that run_toy_task returns (with a 'ref' entry).")
    ref, policy = toy_result["ref"], toy_result.get("policy")
    if policy is not None and ref is policy:
        _fail(2, "the reference is the policy object itself: make a separate frozen copy (copy.deepcopy, then requires_grad_(False)).")
    trainable = [name for name, p in ref.named_parameters() if p.requires_grad]
    if trainable:
        _fail(2, f"reference parameters {trainable} still require grad: call p.requires_grad_(False) on each, "
                 "so the KL anchor cannot move.")
    initial = toy_result.get("ref_init")
    for name, p in ref.named_parameters():
        start = initial[name] if initial is not None else torch.zeros_like(p)
        if not torch.equal(p.detach(), start.to(p.device)):
            moved = (p.detach() - start.to(p.device)).abs().max().item()
            _fail(2, f"the reference's {name} changed during training (by up to {moved:.4g}): is the optimizer given "
                     "the reference's parameters, or does the reference share tensors with the policy?")
    return _ok(2, "the reference is frozen: no parameter requires grad and none moved during training")


def _sanity_gradient_flows(dpo_loss: Callable) -> str:
    """Check 3: a loss on a (slightly non-uniform) ToyPolicy gives its logits a non-zero, finite gradient."""
    from .toy import ToyPolicy

    policy = ToyPolicy(2, 6)
    with torch.no_grad():
        policy.logits[0, 0] += 0.3
    logp = policy.logprobs(torch.tensor([0]))  # (1, 6)
    logp_ref = torch.zeros(1, 6).log_softmax(-1)  # the uniform reference
    loss = _call(3, dpo_loss, logp[:, 0], logp[:, 1], logp_ref[:, 0], logp_ref[:, 1], beta=0.1)
    if not isinstance(loss, Tensor):
        _fail(3, f"the loss is a {type(loss).__name__}, not a tensor, so no gradient can flow: drop .item() / float().")
    if not loss.requires_grad:
        _fail(3, "the loss does not require grad: it was cut off from the policy (.detach(), torch.no_grad(), or a new tensor).")
    try:
        loss.backward()
    except RuntimeError as exc:
        _fail(3, f"loss.backward() failed: {str(exc)[:200]} — is the loss a 0-dim tensor (.mean())?")
    grad = policy.logits.grad
    if grad is None or grad.abs().sum().item() == 0.0:
        _fail(3, "the policy's logits got no gradient: the loss does not depend on the policy's log-probs.")
    if not torch.isfinite(grad).all():
        _fail(3, "the policy's gradient contains NaN or inf.")
    return _ok(3, f"gradient flows to the policy (|grad| = {grad.abs().sum().item():.4f})")


def _sanity_margin_monotone(dpo_loss: Callable) -> str:
    """Check 4: at β = 1, a margin of +6 gives a loss < 0.01 < log 2 < the loss of the swapped pair."""

    def loss_at(pc: float, pr: float) -> float:
        t = lambda v: torch.tensor([v])
        return _as_float(4, _call(4, dpo_loss, t(pc), t(pr), t(0.0), t(0.0), beta=1.0), "the loss")

    base, big, swapped = loss_at(0.0, 0.0), loss_at(3.0, -3.0), loss_at(-3.0, 3.0)
    numbers = f"base {base:.4f}, bigger margin {big:.4f}, swapped {swapped:.4f}"
    if big > base > swapped:
        _fail(4, f"{numbers}: the loss falls as the rejected response gains — chosen and rejected are swapped (sign flipped).")
    if not (big < base < swapped):
        _fail(4, f"{numbers}: expected bigger margin < base < swapped. Does the loss depend on the margin through -logsigmoid?")
    if big >= 0.01:
        _fail(4, f"{numbers}: at margin 6 (β = 1) the loss should be -log σ(6) ≈ 0.0025 < 0.01.")
    return _ok(4, f"a bigger margin lowers the loss and swapping raises it ({numbers})")


def _sanity_ranking_recovered(toy_result: dict) -> str:
    """Check 5: after training, sorting responses by implicit reward gives each prompt's ranking,
    and each prompt's best response gained probability."""
    try:
        rewards, rankings, before, after = (toy_result[k] for k in ("rewards", "rankings", "before", "after"))
    except (KeyError, TypeError):
        _fail(5, "expected the dict that run_toy_task returns (rewards, rankings, before, after).")
    for prompt, order in rankings.items():
        row = [float(v) for v in rewards[prompt]]
        ranked = sorted(range(len(row)), key=lambda y: row[y], reverse=True)
        strictly_ordered = all(row[a] > row[b] for a, b in zip(order, order[1:]))
        if not strictly_ordered:  # ties count as failures: a policy that never moved has all rewards 0
            if max(abs(v) for v in row) < 1e-6:
                hint = "every implicit reward is 0: the policy never moved away from the reference (no step? zero learning rate?)"
            elif all(row[a] < row[b] for a, b in zip(order, order[1:])):
                hint = "exactly reversed: chosen and rejected are swapped somewhere"
            else:
                hint = "train longer or check the pairs (ties count as wrong)"
            _fail(5, f"prompt {prompt}: ranking by implicit reward is {ranked}, expected {list(order)} with strictly "
                     f"decreasing rewards — {hint}.")
        top = order[0]
        if not float(after[prompt][top]) > float(before[prompt][top]):
            _fail(5, f"prompt {prompt}: the top response's probability went {float(before[prompt][top]):.3f} → "
                     f"{float(after[prompt][top]):.3f}; it should rise.")
    return _ok(5, "ranking by implicit reward reproduces every preference ranking, and the top response gained probability")


def _sanity_reward_scales_with_beta(implicit_reward: Callable) -> str:
    """Check 6: doubling β doubles the implicit reward (and the reward is not identically 0)."""
    lp, lr = torch.tensor([math.log(0.5), math.log(0.1)]), torch.tensor([math.log(0.25), math.log(0.3)])
    r1 = _call(6, implicit_reward, lp, lr, beta=0.1)
    r2 = _call(6, implicit_reward, lp, lr, beta=0.2)
    if not isinstance(r1, Tensor) or r1.shape != lp.shape:
        _fail(6, f"expected a tensor of shape {tuple(lp.shape)} (one reward per response), got "
                 f"{type(r1).__name__}{'' if not isinstance(r1, Tensor) else ' of shape ' + str(tuple(r1.shape))}.")
    if float(r1.abs().max()) == 0.0:
        _fail(6, "the implicit reward is 0 for responses whose policy and reference log-probs differ.")
    if not torch.allclose(r2.double(), 2 * r1.double(), atol=1e-6):
        _fail(6, f"β 0.1 → {r1.tolist()}, β 0.2 → {r2.tolist()}: doubling β should double the reward r = β·log(π/π_ref).")
    return _ok(6, f"the implicit reward is linear in β (β 0.1 → {r1[0].item():.4f}, β 0.2 → {r2[0].item():.4f})")


def sanity_loss_at_init(dpo_loss: Callable) -> None:
    """Check 1: with policy == reference the loss is log 2 (zeros, and equal non-zero log-probs)."""
    print(_sanity_loss_at_init(dpo_loss))


def sanity_reference_frozen(toy_result: dict) -> None:
    """Check 2: no reference parameter requires grad, and none moved (``toy_result`` from run_toy_task)."""
    print(_sanity_reference_frozen(toy_result))


def sanity_gradient_flows(dpo_loss: Callable) -> None:
    """Check 3: the loss sends a non-zero, finite gradient to a ToyPolicy's logits."""
    print(_sanity_gradient_flows(dpo_loss))


def sanity_margin_monotone(dpo_loss: Callable) -> None:
    """Check 4: a bigger margin lowers the loss; swapping chosen and rejected raises it."""
    print(_sanity_margin_monotone(dpo_loss))


def sanity_ranking_recovered(toy_result: dict) -> None:
    """Check 5: the implicit reward ranks every prompt's responses as preferred, strictly."""
    print(_sanity_ranking_recovered(toy_result))


def sanity_reward_scales_with_beta(implicit_reward: Callable) -> None:
    """Check 6: doubling β doubles the implicit reward."""
    print(_sanity_reward_scales_with_beta(implicit_reward))


def check_toy_training(step_fn: Callable, steps: int = 400, beta: float = 0.1) -> None:
    """Train the toy task with *your* ``toy_dpo_step`` and run checks 3, 2 and 5 on it.

    Check 3 in its step form: one step from the uniform start must give the policy's logits a
    non-zero, finite gradient and move them. Then ``steps`` steps of :func:`~rlhf_core.toy.run_toy_task`
    with your step, and checks 2 (reference frozen) and 5 (ranking recovered). Prints three ✓ lines.
    """
    from .toy import ToyPolicy, frozen_copy, make_toy_pairs, run_toy_task

    policy = ToyPolicy(2, 6)
    ref = frozen_copy(policy)
    optimizer = torch.optim.SGD(policy.parameters(), lr=0.5)
    _call(3, step_fn, policy, ref, make_toy_pairs(), optimizer, beta=beta)
    grad = policy.logits.grad
    if grad is None or float(grad.abs().sum()) == 0.0:
        _fail(3, "after one step of your toy_dpo_step the policy's logits have no gradient: is loss.backward() called "
                 "on a loss computed from policy.logprobs(...)?")
    if not torch.isfinite(grad).all():
        _fail(3, "the policy's gradient contains NaN or inf after one step.")
    if torch.equal(policy.logits.detach(), torch.zeros(2, 6)):
        _fail(3, "the gradient reached the policy but its logits did not move: is optimizer.step() called?")
    print(_ok(3, f"gradient flows to the policy through your step (|grad| = {float(grad.abs().sum()):.4f})"))
    result = _call(2, run_toy_task, steps=steps, beta=beta, step_fn=step_fn)
    print(_sanity_reference_frozen(result))
    print(_sanity_ranking_recovered(result))


SANITY_CHECKS: tuple[tuple[int, str, str], ...] = (
    (1, "loss at initialisation is log 2", "dpo_loss"),
    (2, "reference policy frozen", "toy_result"),
    (3, "gradient flows to the policy", "dpo_loss"),
    (4, "bigger margin lowers the loss, swapping raises it", "dpo_loss"),
    (5, "implicit reward recovers the ranking", "toy_result"),
    (6, "implicit reward linear in β", "implicit_reward"),
)

_FUNCTIONS = {
    1: _sanity_loss_at_init,
    2: _sanity_reference_frozen,
    3: _sanity_gradient_flows,
    4: _sanity_margin_monotone,
    5: _sanity_ranking_recovered,
    6: _sanity_reward_scales_with_beta,
}


@dataclass
class SanityResult:
    number: int
    name: str
    passed: bool
    message: str


def run_sanity_checks(dpo_loss: Callable | None = None, implicit_reward: Callable | None = None,
                      toy_result: dict | None = None, quiet: bool = False) -> list[SanityResult]:
    """Run the six checks on what is given; never raises. A missing input marks its checks as not run."""
    inputs = {"dpo_loss": dpo_loss, "implicit_reward": implicit_reward, "toy_result": toy_result}
    results = []
    for number, name, needs in SANITY_CHECKS:
        if inputs[needs] is None:
            results.append(SanityResult(number, name, False, f"not run: no {needs} given"))
            continue
        try:
            message = _FUNCTIONS[number](inputs[needs])
            if not quiet:
                print(message)
            results.append(SanityResult(number, name, True, message))
        except Exception as exc:  # a verdict (CheckFailed) or anything odd in what was passed in
            text = str(exc) if isinstance(exc, AssertionError) else f"✗ sanity check {number} — could not run: {type(exc).__name__}: {exc}"
            if not quiet:
                print(text)
            results.append(SanityResult(number, name, False, text))
    return results
