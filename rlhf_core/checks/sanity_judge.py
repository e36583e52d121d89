"""The judge half of the drill's six sanity checks: a verdict on a record, never the learner's code.

Each ``judge_<check>`` reads a record that :mod:`rlhf_core.checks.sanity_probe` made (values and
exceptions as :func:`~rlhf_core.checks.records.serialise` and
:func:`~rlhf_core.checks.records.error_record` write them) and returns its ``✓`` line or raises
:class:`~rlhf_core.checks.verdicts.CheckFailed`. :data:`JUDGES` lists them per probe name.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, NoReturn

import torch
from torch import Tensor

from .verdicts import CheckFailed, plain, shorten

LOG2 = math.log(2.0)


def failure(number: int, text: str, *, kind: str = "mistake", **parts: str | None) -> CheckFailed:
    """Check ``number``'s ✗ verdict: ``text`` is its one line; ``parts`` (``problem``, ``expected``,
    ``got``, ``advice``) shape how a notebook shows it, by default the whole text as the problem.
    Results count it as the mistake ``sanity-<number>`` (the property that check tests does not hold),
    or, with another ``kind``, as a stub, an exception or an unreadable record."""
    title = f"✗ sanity check {number}"
    return CheckFailed(f"{title} — {text}", title=title, kind=kind,
                       mistake=f"sanity-{number}" if kind == "mistake" else None, **({"problem": text} | parts))


def _fail(number: int, text: str, **parts: str | None) -> NoReturn:
    raise failure(number, text, **parts)


def _ok(number: int, text: str) -> str:
    return f"✓ sanity check {number}: {text}"


class Incomplete(Exception):
    """The verdict needs a key the (partial) record does not have yet."""

    def __init__(self, number: int, key: str):
        super().__init__(number, key)
        self.number, self.key = number, key


def _need(record: dict, key: str, number: int) -> Any:
    """``record[key]``; if it is absent, the recorded failure ("could not run") or :class:`Incomplete`."""
    if key in record:
        return record[key]
    failed = record.get("failed")
    if failed:
        _fail(number, f"could not run: {failed['type']}: {shorten(failed['message'])}", kind="raised")
    raise Incomplete(number, key)


def _need_gradient(record: dict, number: int, none_message: str, nonfinite_message: str,
                   zero_message: str | None = None) -> dict:
    """The record's ``grad`` entry; check ``number`` fails when the gradient is missing, all zero or not finite
    (``zero_message``, when given, for a gradient that is there but exactly 0 everywhere)."""
    grad = _need(record, "grad", number)
    _need(grad, "present", number)
    if grad["present"] and grad["abs_sum"] == 0.0 and zero_message is not None:
        _fail(number, zero_message)
    if not grad["present"] or grad["abs_sum"] == 0.0:
        _fail(number, none_message)
    if not grad["finite"]:
        _fail(number, nonfinite_message)
    return grad


def _judged(number: int) -> Callable:
    """Decorator: an unexpected error while judging odd data becomes check ``number``'s ✗ line."""

    def wrap(judge: Callable[[dict], str]) -> Callable[[dict], str]:
        @functools.wraps(judge)
        def run(record: dict) -> str:
            try:
                return judge(record)
            except (CheckFailed, Incomplete):
                raise
            except Exception as exc:
                raise failure(number, f"could not run: {type(exc).__name__}: {shorten(str(exc))}", kind="malformed") from None

        return run

    return wrap


def _called(number: int, call: dict) -> dict:
    """The value record of a call record (``{"fn", "error", "value"}``); a recorded exception fails as a sentence."""
    error = call["error"]
    if error is not None:
        if error["not_implemented"]:
            todo = (f"Replace the `raise NotImplementedError` in `{call['fn']}` with your code, run that cell, "
                    "then this one.")
            _fail(number, f"{call['fn']} is not implemented yet (it raises NotImplementedError). {todo}",
                  problem=f"{call['fn']} is not implemented yet (it raises NotImplementedError).", advice=todo,
                  kind="not implemented")
        message = shorten(error["message"])
        _fail(number, f"{call['fn']} raised {error['type']}: {message}",
              problem=f"{call['fn']} raised an exception.", got=f"{error['type']}: {message}", kind="raised")
    return call["value"]


def _is_number(value: dict) -> bool:
    return value["kind"] in ("number", "bool")


def _as_float(number: int, value: dict, what: str) -> float:
    """A recorded value that must be a single number (a plain number or a 1-element tensor)."""
    if value["kind"] == "tensor":
        if math.prod(value["shape"]) != 1:
            _fail(number, f"{what} should be a single number, got a tensor of shape {tuple(value['shape'])} — did you forget .mean()?")
        if value["dtype"].startswith("complex"):
            _fail(number, f"{what} should be a number or a 0-dim tensor, got complex.")
        if value["data"] is None:
            _fail(number, f"{what} should be a number or a 0-dim tensor, got {value['type']}.")
        return float(value["data"][0])
    if not _is_number(value):
        _fail(number, f"{what} should be a number or a 0-dim tensor, got {value['type']}.")
    return float(value["data"][0])


def _nested(value: dict) -> str:
    """A recorded value as a learner reads it: ``.tolist()``'s nesting (ints for integer dtypes, bools
    for bool) with plain numbers (:func:`~rlhf_core.checks.verdicts.plain`)."""
    if value["kind"] != "tensor":
        return plain(value["data"][0]) if _is_number(value) else value["type"]
    if value["data"] is None:
        return f"a tensor of shape {tuple(value['shape'])}"
    cast = bool if value["dtype"] == "bool" else int if "int" in value["dtype"] else float

    def convert(x: Any) -> Any:
        return [convert(y) for y in x] if isinstance(x, list) else cast(x)

    return plain(convert(_as_tensor(value).tolist()))


def _as_tensor(value: dict) -> Tensor | None:
    """A recorded tensor rebuilt as float64 (None if it was not a tensor or has no numbers)."""
    if value["kind"] != "tensor" or value["data"] is None:
        return None
    return torch.tensor(value["data"], dtype=torch.float64).reshape(value["shape"])


def _loss_at_init_hint(value: float, batch: int) -> str:
    known = [
        (-LOG2, "the minus sign is missing: the loss is -log σ(h)"),
        (0.5, "that is sigmoid(0): return -logsigmoid(h), not sigmoid(h)"),
        (0.1 * LOG2, "β multiplies the loss instead of the margin inside the log-sigmoid"),
        (batch * LOG2, "you summed over the batch instead of taking the mean"),
        (0.0, "a loss of 0 at initialisation: is the log-sigmoid's argument something other than the β-scaled margin?"),
    ]
    if not math.isfinite(value):
        return "the loss is not a finite number: look for a log of 0, a division by zero or an overflow"
    for target, hint in known:
        if abs(value - target) < 1e-4:
            return hint
    return "at policy == reference every log-ratio is 0, so the loss is -log σ(0) = log 2"


@_judged(1)
def judge_loss_at_init(record: dict) -> str:
    """Check 1: with policy == reference the loss is log 2 — on zeros, and on equal non-zero log-probs."""
    value = _as_float(1, _called(1, _need(record, "zeros", 1)), "the loss")
    if not abs(value - LOG2) <= 1e-5:  # written so that NaN fails too
        hint = _loss_at_init_hint(value, 8)
        _fail(1, f"with all log-probs 0 the loss is {value:.6f}, expected log 2 ≈ {LOG2:.6f}: {hint}.",
              problem="With all log-probs 0 (policy == reference) the loss must be log 2.",
              expected=f"log 2 ≈ {LOG2:.6f}", got=f"{value:.6f}", advice=f"{hint[0].upper()}{hint[1:]}.")
    value = _as_float(1, _called(1, _need(record, "equal", 1)), "the loss")
    if not abs(value - LOG2) <= 1e-5:
        advice = ("It was log 2 on zeros, so the reference term is probably missing or mis-signed: "
                  "the margin is (log π(y_w) − log π_ref(y_w)) − (log π(y_l) − log π_ref(y_l)).")
        _fail(1, f"with policy == reference on non-zero log-probs the loss is {value:.6f}, expected log 2 ≈ {LOG2:.6f}. {advice}",
              problem="With policy == reference on non-zero log-probs the loss must be log 2.",
              expected=f"log 2 ≈ {LOG2:.6f}", got=f"{value:.6f}", advice=advice)
    return _ok(1, f"at initialisation (policy == reference) the loss is log 2 = {LOG2:.4f}")


@_judged(2)
def judge_reference_frozen(record: dict) -> str:
    """Check 2: the reference has no parameter requiring grad, and its values equal the initial policy's.

    The record comes from a ``run_toy_task`` result (``ref``, ``policy``; optionally ``ref_init``, a
    state dict of the reference before training — without it a ToyPolicy reference must be all
    zeros, the uniform start).
    """
    if not _need(record, "is_toy_result", 2):
        _fail(2, "expected the dict that run_toy_task returns (with a 'ref' entry).")
    if _need(record, "same_object", 2):
        _fail(2, "the reference is the policy object itself: make a separate frozen copy (copy.deepcopy, then requires_grad_(False)).")
    trainable = _need(record, "trainable", 2)
    if trainable:
        _fail(2, f"reference parameters {trainable} still require grad: call p.requires_grad_(False) on each, "
                 "so the KL anchor cannot move.")
    for entry in _need(record, "params", 2):
        if not entry["equal"]:
            _fail(2, f"the reference's {entry['name']} changed during training (by up to {entry['moved']:.4g}): is the optimizer given "
                     "the reference's parameters, or does the reference share tensors with the policy?")
    _need(record, "complete", 2)
    return _ok(2, "the reference is frozen: no parameter requires grad and none moved during training")


@_judged(3)
def judge_gradient_flows(record: dict) -> str:
    """Check 3: a loss on a (slightly non-uniform) ToyPolicy gives its logits a non-zero, finite gradient."""
    loss = _called(3, _need(record, "loss", 3))
    if loss["kind"] != "tensor":
        _fail(3, f"the loss is a {loss['type']}, not a tensor, so no gradient can flow: drop .item() / float().")
    if not loss["requires_grad"]:
        _fail(3, "the loss does not require grad: it was cut off from the policy (.detach(), torch.no_grad(), or a new tensor).")
    error = _need(record, "backward_error", 3)
    if error is not None:
        _fail(3, f"loss.backward() failed: {error['message']} — is the loss a 0-dim tensor (.mean())?")
    grad = _need_gradient(record, 3, "the policy's logits got no gradient: the loss does not depend on the policy's log-probs.",
                          "the policy's gradient contains NaN or inf.")
    return _ok(3, f"gradient flows to the policy (|grad| = {grad['abs_sum']:.4f})")


@_judged(4)
def judge_margin_monotone(record: dict) -> str:
    """Check 4: at β = 1, a margin of +6 gives a loss < 0.01 < log 2 < the loss of the swapped pair."""
    base, big, swapped = (_as_float(4, _called(4, _need(record, key, 4)), "the loss") for key in ("base", "bigger", "swapped"))
    numbers = f"base {base:.4f}, bigger margin {big:.4f}, swapped {swapped:.4f}"
    order = "bigger margin < base < swapped"
    if big > base > swapped:
        _fail(4, f"{numbers}: the loss falls as the rejected response gains — chosen and rejected are swapped (sign flipped).",
              problem="The loss falls as the rejected response gains.", expected=order, got=numbers,
              advice="Chosen and rejected are swapped (sign flipped).")
    if not (big < base < swapped):
        _fail(4, f"{numbers}: expected {order}. Does the loss depend on the margin through -logsigmoid?",
              problem="The loss does not fall as the margin grows.", expected=order, got=numbers,
              advice="Does the loss depend on the margin through -logsigmoid?")
    if big >= 0.01:
        _fail(4, f"{numbers}: at margin 6 (β = 1) the loss should be -log σ(6) ≈ 0.0025 < 0.01.",
              problem="At margin 6 (β = 1) the loss is too large.", expected="-log σ(6) ≈ 0.0025 < 0.01",
              got=f"{big:.4f}")
    return _ok(4, f"a bigger margin lowers the loss and swapping raises it ({numbers})")


def _loss_stuck_at_log2(record: dict) -> int | None:
    """The number of training steps, when every step of the run returned exactly log 2 (the loss of
    policy == reference) — at least two steps, all of them numbers; else None."""
    losses = record.get("losses")
    if not isinstance(losses, list) or len(losses) < 2:
        return None
    if all(isinstance(v, float) and abs(v - LOG2) <= 1e-6 for v in losses):
        return len(losses)
    return None


@_judged(5)
def judge_ranking_recovered(record: dict) -> str:
    """Check 5: after training, sorting responses by implicit reward gives each prompt's ranking,
    and each prompt's best response gained probability.

    One pattern fails first, whatever the ranking: every training step returned exactly log 2 while
    the policy moved away from the reference. The loss then never saw a log-ratio other than 0 — the
    signature of "reference" log-probs taken from the policy itself — and any ranking the run reached
    came from something other than DPO (with Adam it can even come out right, by a hair). When the
    ranking fails, the verdict names the cause it can read: rewards all 0 (the policy never moved),
    the exact reverse (chosen and rejected swapped), or else "train longer or check the pairs".
    """
    if not _need(record, "is_toy_result", 5):
        _fail(5, "expected the dict that run_toy_task returns (rewards, rankings, before, after).")
    prompts = _need(record, "prompts", 5)
    stuck_steps = _loss_stuck_at_log2(record)
    rewards = [v for entry in prompts for v in entry["row"]]
    if stuck_steps is not None and rewards and max(abs(v) for v in rewards) >= 1e-6:
        _fail(5, f"the loss stayed at exactly log 2 = {LOG2:.4f} on all {stuck_steps} training steps, yet the policy moved "
                 f"away from the frozen reference (its implicit rewards run from {min(rewards):.3f} to {max(rewards):.3f}). "
                 "Inside the loss every log-ratio was 0, as if policy == reference at every step: the signature of "
                 "'reference' log-probs computed from the policy itself rather than from the frozen reference model. "
                 "Whatever ranking such a run reaches, the DPO loss did not produce it.")
    for entry in prompts:
        prompt, order, row = entry["prompt"], entry["order"], entry["row"]
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
                     f"decreasing rewards — {hint}.",
                  problem=f"Prompt {prompt}: the implicit reward does not rank the responses as preferred.",
                  expected=f"{list(order)}, with strictly decreasing rewards", got=f"{ranked}, rewards {plain(row)}",
                  advice=f"{hint[0].upper()}{hint[1:]}.")
        if "after_top" not in entry:
            _need(record, "complete", 5)
        before, after = entry["before_top"], entry["after_top"]
        if not after > before:
            _fail(5, f"prompt {prompt}: the top response's probability went {before:.3f} → {after:.3f}; it should rise.",
                  problem=f"Prompt {prompt}: the top response's probability did not rise.",
                  expected=f"more than {before:.3f}", got=f"{before:.3f} → {after:.3f}")
    _need(record, "complete", 5)
    return _ok(5, "ranking by implicit reward reproduces every preference ranking, and the top response gained probability")


def _max_abs(values: list[float]) -> float:
    """``float(t.abs().max())`` for a tensor of ``values``: NaN if any is NaN."""
    return math.nan if any(math.isnan(v) for v in values) else max(abs(v) for v in values)


@_judged(6)
def judge_reward_scales_with_beta(record: dict) -> str:
    """Check 6: doubling β doubles the implicit reward (and the reward is not identically 0)."""
    r1 = _called(6, _need(record, "beta_1", 6))
    r2 = _called(6, _need(record, "beta_2", 6))
    if r1["kind"] != "tensor" or tuple(r1["shape"]) != (2,):
        _fail(6, f"expected a tensor of shape (2,) (one reward per response), got "
                 f"{r1['type']}{'' if r1['kind'] != 'tensor' else ' of shape ' + str(tuple(r1['shape']))}.")
    if r1["data"] is None:
        _fail(6, f"the reward's numbers could not be read from a {r1['type']} of dtype torch.{r1['dtype']}.")
    if not all(math.isfinite(v) for r in (r1, r2) if r.get("data") for v in r["data"]):
        _fail(6, f"β 0.1 → {_nested(r1)}, β 0.2 → {_nested(r2)}: expected finite rewards β·(log π − log π_ref); "
                 "an inf or NaN comes from exponentiating or dividing the log-probs instead of subtracting them.",
              problem="The implicit reward is not finite.", expected="finite rewards",
              got=f"β 0.1 → {_nested(r1)}, β 0.2 → {_nested(r2)}",
              advice="An inf or NaN comes from exponentiating or dividing the log-probs instead of subtracting them.")
    if _max_abs(r1["data"]) == 0.0:
        _fail(6, "the implicit reward is 0 for responses whose policy and reference log-probs differ.")
    t1, t2 = _as_tensor(r1), _as_tensor(r2)
    try:
        close = t2 is not None and torch.allclose(t2, 2 * t1, atol=1e-6)
    except RuntimeError:  # shapes that do not broadcast
        close = False
    if not close:
        _fail(6, f"β 0.1 → {_nested(r1)}, β 0.2 → {_nested(r2)}: doubling β should double the reward r = β·log(π/π_ref).",
              problem="Doubling β did not double the implicit reward.", expected="the reward at β 0.2 is twice the one at β 0.1",
              got=f"β 0.1 → {_nested(r1)}, β 0.2 → {_nested(r2)}")
    return _ok(6, f"the implicit reward is linear in β (β 0.1 → {r1['data'][0]:.4f}, β 0.2 → {r2['data'][0]:.4f})")


@_judged(3)
def judge_toy_step(record: dict) -> str:
    """Check 3 in its step form: one step from the uniform start gives the logits a non-zero,
    finite gradient and moves them."""
    _called(3, _need(record, "step", 3))
    grad = _need_gradient(record, 3, "after one step of your toy_dpo_step the policy's logits have no gradient: is "
                                     "loss.backward() called on a loss computed from policy.logprobs(...)?",
                          "the policy's gradient contains NaN or inf after one step.",
                          "after one step of your toy_dpo_step the policy's logits got a gradient of exactly 0: "
                          "backward() ran, but the loss does not change when the policy does. That happens when the "
                          "policy's log-probs cancel inside the margin — are the 'reference' log-probs the policy's own "
                          "(so every log-ratio is 0), or are chosen and rejected the same responses?")
    if not grad["moved"]:
        _fail(3, "the gradient reached the policy but its logits did not move: is optimizer.step() called?")
    return _ok(3, f"gradient flows to the policy through your step (|grad| = {grad['abs_sum']:.4f})")


@_judged(2)
def judge_toy_reference(record: dict) -> str:
    """Check 2 on the toy run trained with the learner's step (which must not have crashed)."""
    _called(2, _need(record, "run", 2))
    return judge_reference_frozen(_need(record, "reference", 2))


@_judged(5)
def judge_toy_ranking(record: dict) -> str:
    """Check 5 on the toy run trained with the learner's step."""
    return judge_ranking_recovered(_need(record, "ranking", 5))


#: The judges of each probe, in order: the ✓ lines of a record are theirs.
JUDGES: dict[str, tuple[Callable[[dict], str], ...]] = {
    "loss_at_init": (judge_loss_at_init,),
    "gradient_flows": (judge_gradient_flows,),
    "margin_monotone": (judge_margin_monotone,),
    "reward_scales_with_beta": (judge_reward_scales_with_beta,),
    "toy_training": (judge_toy_step, judge_toy_reference, judge_toy_ranking),
}


def run_judges(name: str, record: dict, lines: list[str]) -> list[str]:
    """Append each judge's ✓ line of probe ``name`` to ``lines``; the first failure raises."""
    for judge in JUDGES[name]:
        lines.append(judge(record))
    return lines
