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

Every check runs in two halves, so that a grader can keep them apart:

1. **measure** — :func:`measure_sanity` calls the learner's function on fixed inputs and records
   what happened as plain JSON-able data (exceptions, odd types and NaNs included). It stops
   calling the learner's code as soon as the verdict is settled, so a failing check makes the
   same calls it always made.
2. **verdict** — :func:`verdict_sanity` reads that record and returns the ``✓`` lines or raises
   ``CheckFailed``. It never runs the learner's code, so a process that never saw it can do it.

:data:`SANITY_PROBES` maps each public function of a notebook to its measure name.
"""

from __future__ import annotations

import functools
import math
import operator
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import Tensor

from .checking import CheckFailed

__all__ = [
    "SANITY_CHECKS",
    "SANITY_PROBES",
    "SanityResult",
    "measure_sanity",
    "verdict_sanity",
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
_MAX_NUMBERS = 10_000  # a returned tensor with more elements is recorded without its numbers


def _failure(number: int, text: str) -> CheckFailed:
    return CheckFailed(f"✗ sanity check {number} — {text}")


def _fail(number: int, text: str) -> None:
    raise _failure(number, text)


def _ok(number: int, text: str) -> str:
    return f"✓ sanity check {number}: {text}"


# --------------------------------------------------------------------------------------------
# measure: call the learner's code, record plain data


def _error_data(exc: BaseException, limit: int = 200) -> dict:
    """An exception as data: ``{"type", "message", "not_implemented", "runtime_error"}``.

    ``message`` is ``str(exc)`` cut to ``limit`` characters, as the messages have always shown it.
    """
    try:
        message = str(exc)[:limit]
    except Exception:  # an exception whose __str__ itself fails
        message = "(the message could not be printed)"
    return {
        "type": type(exc).__name__,
        "message": message,
        "not_implemented": isinstance(exc, NotImplementedError),
        "runtime_error": isinstance(exc, RuntimeError),
    }


def _name_of(fn: Any) -> str:
    try:
        return str(getattr(fn, "__name__", "the function"))[:200]
    except Exception:
        return "the function"


def _plain(value: Any) -> dict:
    """What the learner's function returned, as data; never trusts the object's own methods.

    - a tensor (any subclass): ``{"kind": "tensor", "type", "dtype", "shape", "requires_grad",
      "data"}`` — ``data`` is the flattened numbers as floats (read with torch's own methods,
      bypassing a subclass's overrides), or None when there are too many or they cannot be read;
    - a plain ``int``/``float``/``bool`` (not a subclass): ``{"kind": "number", "type", "data"}``;
    - anything else: ``{"kind": "other", "type"}``.
    """
    type_name = type(value).__name__
    if issubclass(type(value), Tensor):
        with torch._C.DisableTorchFunctionSubclass():  # torch's own methods, not a subclass's
            try:
                record = {
                    "kind": "tensor",
                    "type": type_name,
                    "dtype": str(Tensor.dtype.__get__(value)),
                    "shape": [int(n) for n in Tensor.size(value)],
                    "requires_grad": bool(Tensor.requires_grad.__get__(value)),
                    "data": None,
                }
            except Exception:
                return {"kind": "other", "type": type_name}
            try:
                if math.prod(record["shape"]) <= _MAX_NUMBERS and not Tensor.is_complex(value):
                    copy = Tensor.double(Tensor.cpu(Tensor.detach(value)))
                    record["data"] = [float(x) for x in Tensor.tolist(Tensor.reshape(copy, (-1,)))]
            except Exception:  # numbers that cannot be read (a meta or sparse tensor, an exotic subclass)
                pass
        return record
    if type(value) in (int, float, bool):
        try:
            return {"kind": "number", "type": type_name, "data": float(value)}
        except OverflowError:  # an int too big for a float
            pass
    return {"kind": "other", "type": type_name}


def _probe(fn: Callable, *args, **kwargs) -> tuple[dict, Any]:
    """Call the learner's ``fn``: the record ``{"fn", "error", "value"}`` and the live value.

    ``error`` is :func:`_error_data` of what it raised (anything but KeyboardInterrupt and the
    like), or None; ``value`` is :func:`_plain` of what it returned, or None.
    """
    record = {"fn": _name_of(fn), "error": None, "value": None}
    try:
        value = fn(*args, **kwargs)
    except Exception as exc:  # the learner's code may raise anything: it is recorded, not re-raised
        record["error"] = _error_data(exc)
        return record, None
    record["value"] = _plain(value)
    return record, value


def _grad_data(policy: Any, moved: bool = False) -> dict:
    """The policy's logits after a backward pass: ``{"present", "abs_sum", "finite"}`` (and
    ``"moved"``: the logits are no longer the uniform zeros), or ``{"failed": error}``."""
    try:
        grad = policy.logits.grad
        record = {"present": grad is not None, "abs_sum": None, "finite": None}
        if grad is not None:
            record["abs_sum"] = float(grad.abs().sum().item())
            record["finite"] = bool(torch.isfinite(grad).all().item())
        if moved:
            record["moved"] = not torch.equal(policy.logits.detach(), torch.zeros(2, 6))
        return record
    except Exception as exc:  # the learner's step may have replaced the logits with something odd
        return {"failed": _error_data(exc, 500)}


def _settled(record: dict) -> bool:
    """Whether the verdict on this (partial) record is already decided, so measuring can stop."""
    try:
        _run_judges(record["sanity"], record, [])
    except _Incomplete:
        return False
    except CheckFailed:
        return True
    return True


def _measure_loss_at_init(dpo_loss: Callable) -> dict:
    """Check 1. Keys: ``zeros`` (the call on all-zero log-probs) and ``equal`` (policy == reference
    on non-zero log-probs), each a :func:`_probe` record."""
    record: dict = {"sanity": "loss_at_init"}
    zeros = torch.zeros(8)
    record["zeros"], _ = _probe(dpo_loss, zeros, zeros, zeros, zeros, beta=0.1)
    if _settled(record):
        return record
    g = torch.Generator().manual_seed(1)
    chosen, rejected = -torch.rand(8, generator=g) * 30 - 1, -torch.rand(8, generator=g) * 30 - 1
    record["equal"], _ = _probe(dpo_loss, chosen, rejected, chosen.clone(), rejected.clone(), beta=0.1)
    return record


def _measure_gradient_flows(dpo_loss: Callable) -> dict:
    """Check 3 on the loss alone. Keys: ``loss`` (a :func:`_probe` record), then — when the loss
    is a tensor that requires grad — ``backward_error`` (:func:`_error_data` or None) and, after a
    successful backward, ``grad`` (:func:`_grad_data`)."""
    from .toy import ToyPolicy

    policy = ToyPolicy(2, 6)
    with torch.no_grad():
        policy.logits[0, 0] += 0.3
    logp = policy.logprobs(torch.tensor([0]))  # (1, 6)
    logp_ref = torch.zeros(1, 6).log_softmax(-1)  # the uniform reference
    record: dict = {"sanity": "gradient_flows"}
    record["loss"], loss = _probe(dpo_loss, logp[:, 0], logp[:, 1], logp_ref[:, 0], logp_ref[:, 1], beta=0.1)
    if _settled(record):
        return record
    try:
        loss.backward()
    except Exception as exc:  # a loss that is not 0-dim, or a graph that cannot be differentiated
        record["backward_error"] = _error_data(exc)
        return record
    record["backward_error"] = None
    record["grad"] = _grad_data(policy)
    return record


def _measure_margin_monotone(dpo_loss: Callable) -> dict:
    """Check 4, at β = 1. Keys: ``base`` (margin 0), ``bigger`` (+6), ``swapped`` (−6), each a
    :func:`_probe` record."""
    record: dict = {"sanity": "margin_monotone"}
    t = lambda v: torch.tensor([v])
    for key, (pc, pr) in (("base", (0.0, 0.0)), ("bigger", (3.0, -3.0)), ("swapped", (-3.0, 3.0))):
        record[key], _ = _probe(dpo_loss, t(pc), t(pr), t(0.0), t(0.0), beta=1.0)
        if _settled(record):
            break
    return record


def _measure_reward_scales_with_beta(implicit_reward: Callable) -> dict:
    """Check 6. Keys: ``beta_1`` (β = 0.1) and ``beta_2`` (β = 0.2), each a :func:`_probe` record."""
    lp, lr = torch.tensor([math.log(0.5), math.log(0.1)]), torch.tensor([math.log(0.25), math.log(0.3)])
    record: dict = {"sanity": "reward_scales_with_beta"}
    record["beta_1"], _ = _probe(implicit_reward, lp, lr, beta=0.1)
    if _settled(record):
        return record
    record["beta_2"], _ = _probe(implicit_reward, lp, lr, beta=0.2)
    return record


def _measure_reference(toy_result: Any) -> dict:
    """Check 2 on a ``run_toy_task`` result. Keys, in order: ``is_toy_result`` (a dict with
    ``ref``), ``same_object`` (the reference *is* the policy), ``trainable`` (names of reference
    parameters requiring grad), ``params`` (``[{"name", "equal", "moved"}]``: equal to the initial
    values, and the largest change if not), ``complete``. If reading it raised, the keys stop there
    and ``failed`` holds the error."""
    record: dict = {"is_toy_result": isinstance(toy_result, dict) and "ref" in toy_result}
    if not record["is_toy_result"]:
        return record
    try:
        ref, policy = toy_result["ref"], toy_result.get("policy")
        record["same_object"] = policy is not None and ref is policy
        record["trainable"] = [str(name) for name, p in ref.named_parameters() if p.requires_grad]
        initial = toy_result.get("ref_init")
        record["params"] = []
        for name, p in ref.named_parameters():
            start = initial[name] if initial is not None else torch.zeros_like(p)
            entry = {"name": str(name), "equal": bool(torch.equal(p.detach(), start.to(p.device)))}
            if not entry["equal"]:
                entry["moved"] = float((p.detach() - start.to(p.device)).abs().max().item())
            record["params"].append(entry)
        record["complete"] = True
    except Exception as exc:  # not a module, a missing initial value, …: "could not run"
        record["failed"] = _error_data(exc, 500)
    return record


def _measure_ranking(toy_result: Any) -> dict:
    """Check 5 on a ``run_toy_task`` result. Keys, in order: ``is_toy_result`` (it has rewards,
    rankings, before, after), ``prompts`` (``[{"prompt", "order", "row", "before_top",
    "after_top"}]``: the ranking, the implicit rewards, and the top response's probability before
    and after training), ``complete``. If reading it raised, the keys stop there and ``failed``
    holds the error."""
    record: dict = {}
    try:
        rewards, rankings, before, after = (toy_result[k] for k in ("rewards", "rankings", "before", "after"))
    except (KeyError, TypeError):
        record["is_toy_result"] = False
        return record
    except Exception as exc:
        record["failed"] = _error_data(exc, 500)
        return record
    record["is_toy_result"] = True
    record["prompts"] = []
    try:
        for prompt, order in rankings.items():
            entry = {"prompt": str(prompt), "order": [operator.index(y) for y in order],
                     "row": [float(v) for v in rewards[prompt]]}
            record["prompts"].append(entry)
            top = order[0]
            entry["before_top"], entry["after_top"] = float(before[prompt][top]), float(after[prompt][top])
        record["complete"] = True
    except Exception as exc:
        record["failed"] = _error_data(exc, 500)
    return record


def _measure_toy_result(toy_result: Any) -> dict:
    """Checks 2 and 5 on a ``run_toy_task`` result: ``{"reference": …, "ranking": …}``."""
    return {"reference": _measure_reference(toy_result), "ranking": _measure_ranking(toy_result)}


def _measure_toy_training(step_fn: Callable, steps: int = 400, beta: float = 0.1) -> dict:
    """Checks 3, 2 and 5 through the learner's step. Keys: ``step`` (one step from the uniform
    start, a :func:`_probe` record), ``grad`` (:func:`_grad_data` with ``moved``), then ``run``
    (``run_toy_task`` with the step, a :func:`_probe` record), ``reference`` and ``ranking``
    (:func:`_measure_toy_result`). The toy run happens only if check 3 passed."""
    from .toy import ToyPolicy, frozen_copy, make_toy_pairs, run_toy_task

    policy = ToyPolicy(2, 6)
    ref = frozen_copy(policy)
    optimizer = torch.optim.SGD(policy.parameters(), lr=0.5)
    record: dict = {"sanity": "toy_training"}
    record["step"], _ = _probe(step_fn, policy, ref, make_toy_pairs(), optimizer, beta=beta)
    if _settled(record):
        return record
    record["grad"] = _grad_data(policy, moved=True)
    if _settled(record):
        return record
    record["run"], result = _probe(run_toy_task, steps=steps, beta=beta, step_fn=step_fn)
    if _settled(record):
        return record
    record.update(_measure_toy_result(result))
    return record


# --------------------------------------------------------------------------------------------
# verdict: judge the record, never the learner's code


class _Incomplete(Exception):
    """The verdict needs a key the (partial) record does not have yet."""

    def __init__(self, number: int, key: str):
        super().__init__(number, key)
        self.number, self.key = number, key


def _need(record: dict, key: str, number: int) -> Any:
    """``record[key]``; if it is absent, the recorded failure ("could not run") or :class:`_Incomplete`."""
    if key in record:
        return record[key]
    failed = record.get("failed")
    if failed:
        _fail(number, f"could not run: {failed['type']}: {failed['message']}")
    raise _Incomplete(number, key)


def _need_gradient(record: dict, number: int, none_message: str, nonfinite_message: str) -> dict:
    """The record's ``grad`` entry; check ``number`` fails when the gradient is missing, all zero or not finite."""
    grad = _need(record, "grad", number)
    _need(grad, "present", number)
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
            except (CheckFailed, _Incomplete):
                raise
            except Exception as exc:
                raise _failure(number, f"could not run: {type(exc).__name__}: {exc}") from None

        return run

    return wrap


def _called(number: int, call: dict) -> dict:
    """The value record of a :func:`_probe` record; a recorded exception fails as a sentence."""
    error = call["error"]
    if error is not None:
        if error["not_implemented"]:
            _fail(number, f"{call['fn']} is not implemented yet (it raises NotImplementedError).")
        _fail(number, f"{call['fn']} raised {error['type']}: {error['message']}")
    return call["value"]


def _as_float(number: int, value: dict, what: str) -> float:
    """A recorded value that must be a single number (a plain number or a 1-element tensor)."""
    if value["kind"] == "tensor":
        if math.prod(value["shape"]) != 1:
            _fail(number, f"{what} should be a single number, got a tensor of shape {tuple(value['shape'])} — did you forget .mean()?")
        if value["dtype"].startswith("torch.complex"):
            _fail(number, f"{what} should be a number or a 0-dim tensor, got complex.")
        if value["data"] is None:
            _fail(number, f"{what} should be a number or a 0-dim tensor, got {value['type']}.")
        return float(value["data"][0])
    if value["kind"] != "number":
        _fail(number, f"{what} should be a number or a 0-dim tensor, got {value['type']}.")
    return float(value["data"])


def _nested(value: dict) -> Any:
    """A recorded value as ``.tolist()`` would show it (ints for integer dtypes, bools for bool)."""
    if value["kind"] != "tensor":
        return value["data"] if value["kind"] == "number" else value["type"]
    if value["data"] is None:
        return f"a tensor of shape {tuple(value['shape'])}"
    cast = bool if value["dtype"] == "torch.bool" else int if "int" in value["dtype"] else float

    def convert(x: Any) -> Any:
        return [convert(y) for y in x] if isinstance(x, list) else cast(x)

    return convert(_as_tensor(value).tolist())


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
def _judge_loss_at_init(record: dict) -> str:
    """Check 1: with policy == reference the loss is log 2 — on zeros, and on equal non-zero log-probs."""
    value = _as_float(1, _called(1, _need(record, "zeros", 1)), "the loss")
    if not abs(value - LOG2) <= 1e-5:  # written so that NaN fails too
        _fail(1, f"with all log-probs 0 the loss is {value:.6f}, expected log 2 ≈ {LOG2:.6f}: {_loss_at_init_hint(value, 8)}.")
    value = _as_float(1, _called(1, _need(record, "equal", 1)), "the loss")
    if not abs(value - LOG2) <= 1e-5:
        _fail(1, f"with policy == reference on non-zero log-probs the loss is {value:.6f}, expected log 2 ≈ {LOG2:.6f}. "
                 "It was log 2 on zeros, so the reference term is probably missing or mis-signed: "
                 "the margin is (log π(y_w) − log π_ref(y_w)) − (log π(y_l) − log π_ref(y_l)).")
    return _ok(1, f"at initialisation (policy == reference) the loss is log 2 = {LOG2:.4f}")


@_judged(2)
def _judge_reference_frozen(record: dict) -> str:
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
def _judge_gradient_flows(record: dict) -> str:
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
def _judge_margin_monotone(record: dict) -> str:
    """Check 4: at β = 1, a margin of +6 gives a loss < 0.01 < log 2 < the loss of the swapped pair."""
    base, big, swapped = (_as_float(4, _called(4, _need(record, key, 4)), "the loss") for key in ("base", "bigger", "swapped"))
    numbers = f"base {base:.4f}, bigger margin {big:.4f}, swapped {swapped:.4f}"
    if big > base > swapped:
        _fail(4, f"{numbers}: the loss falls as the rejected response gains — chosen and rejected are swapped (sign flipped).")
    if not (big < base < swapped):
        _fail(4, f"{numbers}: expected bigger margin < base < swapped. Does the loss depend on the margin through -logsigmoid?")
    if big >= 0.01:
        _fail(4, f"{numbers}: at margin 6 (β = 1) the loss should be -log σ(6) ≈ 0.0025 < 0.01.")
    return _ok(4, f"a bigger margin lowers the loss and swapping raises it ({numbers})")


@_judged(5)
def _judge_ranking_recovered(record: dict) -> str:
    """Check 5: after training, sorting responses by implicit reward gives each prompt's ranking,
    and each prompt's best response gained probability."""
    if not _need(record, "is_toy_result", 5):
        _fail(5, "expected the dict that run_toy_task returns (rewards, rankings, before, after).")
    for entry in _need(record, "prompts", 5):
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
                     f"decreasing rewards — {hint}.")
        if "after_top" not in entry:
            _need(record, "complete", 5)
        before, after = entry["before_top"], entry["after_top"]
        if not after > before:
            _fail(5, f"prompt {prompt}: the top response's probability went {before:.3f} → {after:.3f}; it should rise.")
    _need(record, "complete", 5)
    return _ok(5, "ranking by implicit reward reproduces every preference ranking, and the top response gained probability")


def _max_abs(values: list[float]) -> float:
    """``float(t.abs().max())`` for a tensor of ``values``: NaN if any is NaN."""
    return math.nan if any(math.isnan(v) for v in values) else max(abs(v) for v in values)


@_judged(6)
def _judge_reward_scales_with_beta(record: dict) -> str:
    """Check 6: doubling β doubles the implicit reward (and the reward is not identically 0)."""
    r1 = _called(6, _need(record, "beta_1", 6))
    r2 = _called(6, _need(record, "beta_2", 6))
    if r1["kind"] != "tensor" or tuple(r1["shape"]) != (2,):
        _fail(6, f"expected a tensor of shape (2,) (one reward per response), got "
                 f"{r1['type']}{'' if r1['kind'] != 'tensor' else ' of shape ' + str(tuple(r1['shape']))}.")
    if r1["data"] is None:
        _fail(6, f"the reward's numbers could not be read from a {r1['type']} of dtype {r1['dtype']}.")
    if not all(math.isfinite(v) for r in (r1, r2) if r.get("data") for v in r["data"]):
        _fail(6, f"β 0.1 → {_nested(r1)}, β 0.2 → {_nested(r2)}: expected finite rewards β·(log π − log π_ref); "
                 "an inf or NaN comes from exponentiating or dividing the log-probs instead of subtracting them.")
    if _max_abs(r1["data"]) == 0.0:
        _fail(6, "the implicit reward is 0 for responses whose policy and reference log-probs differ.")
    t1, t2 = _as_tensor(r1), _as_tensor(r2)
    try:
        close = t2 is not None and torch.allclose(t2, 2 * t1, atol=1e-6)
    except RuntimeError:  # shapes that do not broadcast
        close = False
    if not close:
        _fail(6, f"β 0.1 → {_nested(r1)}, β 0.2 → {_nested(r2)}: doubling β should double the reward r = β·log(π/π_ref).")
    return _ok(6, f"the implicit reward is linear in β (β 0.1 → {r1['data'][0]:.4f}, β 0.2 → {r2['data'][0]:.4f})")


@_judged(3)
def _judge_toy_step(record: dict) -> str:
    """Check 3 in its step form: one step from the uniform start gives the logits a non-zero,
    finite gradient and moves them."""
    _called(3, _need(record, "step", 3))
    grad = _need_gradient(record, 3, "after one step of your toy_dpo_step the policy's logits have no gradient: is "
                                     "loss.backward() called on a loss computed from policy.logprobs(...)?",
                          "the policy's gradient contains NaN or inf after one step.")
    if not grad["moved"]:
        _fail(3, "the gradient reached the policy but its logits did not move: is optimizer.step() called?")
    return _ok(3, f"gradient flows to the policy through your step (|grad| = {grad['abs_sum']:.4f})")


@_judged(2)
def _judge_toy_reference(record: dict) -> str:
    """Check 2 on the toy run trained with the learner's step (which must not have crashed)."""
    _called(2, _need(record, "run", 2))
    return _judge_reference_frozen(_need(record, "reference", 2))


@_judged(5)
def _judge_toy_ranking(record: dict) -> str:
    """Check 5 on the toy run trained with the learner's step."""
    return _judge_ranking_recovered(_need(record, "ranking", 5))


_MEASURES: dict[str, Callable[..., dict]] = {
    "loss_at_init": _measure_loss_at_init,
    "gradient_flows": _measure_gradient_flows,
    "margin_monotone": _measure_margin_monotone,
    "reward_scales_with_beta": _measure_reward_scales_with_beta,
    "toy_training": _measure_toy_training,
}

_JUDGES: dict[str, tuple[Callable[[dict], str], ...]] = {
    "loss_at_init": (_judge_loss_at_init,),
    "gradient_flows": (_judge_gradient_flows,),
    "margin_monotone": (_judge_margin_monotone,),
    "reward_scales_with_beta": (_judge_reward_scales_with_beta,),
    "toy_training": (_judge_toy_step, _judge_toy_reference, _judge_toy_ranking),
}

SANITY_PROBES: dict[str, str] = {
    "sanity_loss_at_init": "loss_at_init",
    "sanity_gradient_flows": "gradient_flows",
    "sanity_margin_monotone": "margin_monotone",
    "sanity_reward_scales_with_beta": "reward_scales_with_beta",
    "check_toy_training": "toy_training",
}


def _run_judges(name: str, record: dict, lines: list[str]) -> list[str]:
    for judge in _JUDGES[name]:
        lines.append(judge(record))
    return lines


def measure_sanity(name: str, *candidates: Callable, **options: Any) -> dict:
    """The measure half of sanity check ``name`` (a value of :data:`SANITY_PROBES`): call the
    learner's function and return plain JSON-able data, ``{"sanity": name, …}``.

    Each name takes one candidate: ``dpo_loss`` ("loss_at_init", "gradient_flows",
    "margin_monotone"), ``implicit_reward`` ("reward_scales_with_beta") or a ``toy_dpo_step``
    ("toy_training", which also takes ``steps=400`` and ``beta=0.1``). The other keys are listed
    in the docstring of each ``_measure_<name>``.
    """
    if name not in _MEASURES:
        raise ValueError(f"unknown sanity check {name!r}; expected one of {sorted(_MEASURES)}")
    if len(candidates) != 1:
        raise TypeError(f"sanity check {name!r} takes one function, got {len(candidates)}")
    return _MEASURES[name](candidates[0], **options)


def verdict_sanity(name: str, record: dict) -> list[str]:
    """The verdict half of sanity check ``name``: the ``✓`` lines for a record from
    :func:`measure_sanity`, or :class:`CheckFailed` at the first failure (its ``passed``
    attribute lists the lines that passed before it). Never calls the learner's code."""
    if name not in _JUDGES:
        raise ValueError(f"unknown sanity check {name!r}; expected one of {sorted(_JUDGES)}")
    if not isinstance(record, dict) or record.get("sanity") != name:
        got = record.get("sanity") if isinstance(record, dict) else type(record).__name__
        raise CheckFailed(f"✗ sanity check — expected the record of {name!r}, got {got!r}.")
    lines: list[str] = []
    try:
        return _run_judges(name, record, lines)
    except _Incomplete as exc:
        failure = _failure(exc.number, f"the record is incomplete: it has no {exc.key!r}.")
        failure.passed = lines
        raise failure from None
    except CheckFailed as exc:
        exc.passed = lines
        raise


def _print_sanity(name: str, candidate: Callable, **options: Any) -> None:
    """Measure and judge in this process; print the ✓ lines (on a failure, those before it)."""
    record = measure_sanity(name, candidate, **options)
    try:
        lines = verdict_sanity(name, record)
    except CheckFailed as exc:
        for line in getattr(exc, "passed", []):
            print(line)
        raise
    for line in lines:
        print(line)


def sanity_loss_at_init(dpo_loss: Callable) -> None:
    """Check 1: with policy == reference the loss is log 2 (zeros, and equal non-zero log-probs)."""
    _print_sanity("loss_at_init", dpo_loss)


def sanity_reference_frozen(toy_result: dict) -> None:
    """Check 2: no reference parameter requires grad, and none moved (``toy_result`` from run_toy_task)."""
    print(_judge_reference_frozen(_measure_reference(toy_result)))


def sanity_gradient_flows(dpo_loss: Callable) -> None:
    """Check 3: the loss sends a non-zero, finite gradient to a ToyPolicy's logits."""
    _print_sanity("gradient_flows", dpo_loss)


def sanity_margin_monotone(dpo_loss: Callable) -> None:
    """Check 4: a bigger margin lowers the loss; swapping chosen and rejected raises it."""
    _print_sanity("margin_monotone", dpo_loss)


def sanity_ranking_recovered(toy_result: dict) -> None:
    """Check 5: the implicit reward ranks every prompt's responses as preferred, strictly."""
    print(_judge_ranking_recovered(_measure_ranking(toy_result)))


def sanity_reward_scales_with_beta(implicit_reward: Callable) -> None:
    """Check 6: doubling β doubles the implicit reward."""
    _print_sanity("reward_scales_with_beta", implicit_reward)


def check_toy_training(step_fn: Callable, steps: int = 400, beta: float = 0.1) -> None:
    """Train the toy task with *your* ``toy_dpo_step`` and run checks 3, 2 and 5 on it.

    Check 3 in its step form: one step from the uniform start must give the policy's logits a
    non-zero, finite gradient and move them. Then ``steps`` steps of :func:`~rlhf_core.toy.run_toy_task`
    with your step, and checks 2 (reference frozen) and 5 (ranking recovered). Prints three ✓ lines.
    """
    _print_sanity("toy_training", step_fn, steps=steps, beta=beta)


SANITY_CHECKS: tuple[tuple[int, str, str], ...] = (
    (1, "loss at initialisation is log 2", "dpo_loss"),
    (2, "reference policy frozen", "toy_result"),
    (3, "gradient flows to the policy", "dpo_loss"),
    (4, "bigger margin lowers the loss, swapping raises it", "dpo_loss"),
    (5, "implicit reward recovers the ranking", "toy_result"),
    (6, "implicit reward linear in β", "implicit_reward"),
)

_FUNCTIONS: dict[int, Callable[[Any], str]] = {
    1: lambda f: verdict_sanity("loss_at_init", measure_sanity("loss_at_init", f))[0],
    2: lambda toy_result: _judge_reference_frozen(_measure_reference(toy_result)),
    3: lambda f: verdict_sanity("gradient_flows", measure_sanity("gradient_flows", f))[0],
    4: lambda f: verdict_sanity("margin_monotone", measure_sanity("margin_monotone", f))[0],
    5: lambda toy_result: _judge_ranking_recovered(_measure_ranking(toy_result)),
    6: lambda f: verdict_sanity("reward_scales_with_beta", measure_sanity("reward_scales_with_beta", f))[0],
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
