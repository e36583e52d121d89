"""The probe half of the drill's six sanity checks: call the learner's function, record plain data.

Each ``probe_<check>`` calls the learner's function on fixed inputs and records what happened as
JSON-able data — values by :func:`~rlhf_core.checks.records.serialise`, exceptions by
:func:`~rlhf_core.checks.records.error_record` — and stops calling the learner's code as soon
as the verdict is settled, so a failing check makes the same calls it always made.
:data:`PROBES` lists them by name.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any

import torch

from ..toy import ToyPolicy, frozen_copy, make_toy_pairs, run_toy_task
from .records import error_record, serialise
from .sanity_judge import Incomplete, run_judges
from .verdicts import CheckFailed


def _name_of(fn: Any) -> str:
    try:
        return str.__getitem__(str(getattr(fn, "__name__", "the function")), slice(0, 200))
    except Exception:
        return "the function"


def _call(fn: Callable, *args, **kwargs) -> tuple[dict, Any]:
    """Call the learner's ``fn``: the call record ``{"fn", "error", "value"}`` and the live value.

    ``error`` is the :func:`error_record` of what it raised (anything but KeyboardInterrupt and
    the like; its message cut to 200 characters), or None; ``value`` is :func:`serialise` of
    what it returned, or None.
    """
    record = {"fn": _name_of(fn), "error": None, "value": None}
    try:
        value = fn(*args, **kwargs)
    except Exception as exc:  # the learner's code may raise anything: it is recorded, not re-raised
        record["error"] = error_record(exc, 200)
        return record, None
    record["value"] = serialise(value)
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
        return {"failed": error_record(exc)}


def _settled(record: dict) -> bool:
    """Whether the verdict on this (partial) record is already decided, so probing can stop."""
    try:
        run_judges(record["sanity"], record, [])
    except Incomplete:
        return False
    except CheckFailed:
        return True
    return True


def probe_loss_at_init(dpo_loss: Callable) -> dict:
    """Check 1. Keys: ``zeros`` (the call on all-zero log-probs) and ``equal`` (policy == reference
    on non-zero log-probs), each a :func:`_call` record."""
    record: dict = {"sanity": "loss_at_init"}
    zeros = torch.zeros(8)
    record["zeros"], _ = _call(dpo_loss, zeros, zeros, zeros, zeros, beta=0.1)
    if _settled(record):
        return record
    g = torch.Generator().manual_seed(1)
    chosen, rejected = -torch.rand(8, generator=g) * 30 - 1, -torch.rand(8, generator=g) * 30 - 1
    record["equal"], _ = _call(dpo_loss, chosen, rejected, chosen.clone(), rejected.clone(), beta=0.1)
    return record


def probe_gradient_flows(dpo_loss: Callable) -> dict:
    """Check 3 on the loss alone. Keys: ``loss`` (a :func:`_call` record), then — when the loss
    is a tensor that requires grad — ``backward_error`` (an :func:`error_record` or None) and, after a
    successful backward, ``grad`` (:func:`_grad_data`)."""
    policy = ToyPolicy(2, 6)
    with torch.no_grad():
        policy.logits[0, 0] += 0.3
    logp = policy.logprobs(torch.tensor([0]))  # (1, 6)
    logp_ref = torch.zeros(1, 6).log_softmax(-1)  # the uniform reference
    record: dict = {"sanity": "gradient_flows"}
    record["loss"], loss = _call(dpo_loss, logp[:, 0], logp[:, 1], logp_ref[:, 0], logp_ref[:, 1], beta=0.1)
    if _settled(record):
        return record
    try:
        loss.backward()
    except Exception as exc:  # a loss that is not 0-dim, or a graph that cannot be differentiated
        record["backward_error"] = error_record(exc, 200)
        return record
    record["backward_error"] = None
    record["grad"] = _grad_data(policy)
    return record


def probe_margin_monotone(dpo_loss: Callable) -> dict:
    """Check 4, at β = 1. Keys: ``base`` (margin 0), ``bigger`` (+6), ``swapped`` (−6), each a
    :func:`_call` record."""
    record: dict = {"sanity": "margin_monotone"}
    t = lambda v: torch.tensor([v])
    for key, (logp_pol_chosen, logp_pol_rejected) in (("base", (0.0, 0.0)), ("bigger", (3.0, -3.0)), ("swapped", (-3.0, 3.0))):
        record[key], _ = _call(dpo_loss, t(logp_pol_chosen), t(logp_pol_rejected), t(0.0), t(0.0), beta=1.0)
        if _settled(record):
            break
    return record


def probe_reward_scales_with_beta(implicit_reward: Callable) -> dict:
    """Check 6. Keys: ``beta_1`` (β = 0.1) and ``beta_2`` (β = 0.2), each a :func:`_call` record."""
    logp_pol, logp_ref = torch.tensor([math.log(0.5), math.log(0.1)]), torch.tensor([math.log(0.25), math.log(0.3)])
    record: dict = {"sanity": "reward_scales_with_beta"}
    record["beta_1"], _ = _call(implicit_reward, logp_pol, logp_ref, beta=0.1)
    if _settled(record):
        return record
    record["beta_2"], _ = _call(implicit_reward, logp_pol, logp_ref, beta=0.2)
    return record


def probe_reference(toy_result: Any) -> dict:
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
        record["failed"] = error_record(exc)
    return record


MAX_STEP_LOSSES = 10_000  # a longer run is recorded by its first steps


def _step_losses(toy_result: Any) -> list[float | None] | None:
    """What each training step of a toy run returned (its ``losses`` entry), as plain numbers: None
    for a value that is not one number, and None for the whole when there is no list of them. Read
    with :func:`serialise`, never through the values' own methods."""
    try:
        losses = toy_result["losses"]
    except Exception:  # an older result, or a dict-like without it: nothing to read
        return None
    if type(losses) not in (list, tuple):
        return None
    numbers: list[float | None] = []
    for value in losses[:MAX_STEP_LOSSES]:
        entry = serialise(value)
        data = entry.get("data")
        one_number = entry["kind"] in ("number", "tensor") and data is not None and len(data) == 1
        numbers.append(float(data[0]) if one_number else None)
    return numbers


def probe_ranking(toy_result: Any) -> dict:
    """Check 5 on a ``run_toy_task`` result. Keys, in order: ``is_toy_result`` (it has rewards,
    rankings, before, after), ``prompts`` (``[{"prompt", "order", "row", "before_top",
    "after_top"}]``: the ranking, the implicit rewards, and the top response's probability before
    and after training), ``losses`` (what each training step returned, as numbers — see
    :func:`_step_losses`; None if the result has no ``losses`` list), ``complete``. If reading it
    raised, the keys stop there and ``failed`` holds the error."""
    record: dict = {}
    try:
        rewards, rankings, before, after = (toy_result[k] for k in ("rewards", "rankings", "before", "after"))
    except (KeyError, TypeError):
        record["is_toy_result"] = False
        return record
    except Exception as exc:
        record["failed"] = error_record(exc)
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
        record["losses"] = _step_losses(toy_result)
        record["complete"] = True
    except Exception as exc:
        record["failed"] = error_record(exc)
    return record


def probe_toy_result(toy_result: Any) -> dict:
    """Checks 2 and 5 on a ``run_toy_task`` result: ``{"reference": …, "ranking": …}``."""
    return {"reference": probe_reference(toy_result), "ranking": probe_ranking(toy_result)}


def probe_toy_training(step_fn: Callable, steps: int = 400, beta: float = 0.1) -> dict:
    """Checks 3, 2 and 5 through the learner's step. Keys: ``step`` (one step from the uniform
    start, a :func:`_call` record), ``grad`` (:func:`_grad_data` with ``moved``), then ``run``
    (``run_toy_task`` with the step, a :func:`_call` record), ``reference`` and ``ranking``
    (:func:`probe_toy_result`). The toy run happens only if check 3 passed."""
    policy = ToyPolicy(2, 6)
    ref = frozen_copy(policy)
    optimizer = torch.optim.SGD(policy.parameters(), lr=0.5)
    record: dict = {"sanity": "toy_training"}
    record["step"], _ = _call(step_fn, policy, ref, make_toy_pairs(), optimizer, beta=beta)
    if _settled(record):
        return record
    record["grad"] = _grad_data(policy, moved=True)
    if _settled(record):
        return record
    record["run"], result = _call(run_toy_task, steps=steps, beta=beta, step_fn=step_fn)
    if _settled(record):
        return record
    record.update(probe_toy_result(result))
    return record


#: The probe of each sanity check, by name (the values of ``SANITY_PROBES``).
PROBES: dict[str, Callable[..., dict]] = {
    "loss_at_init": probe_loss_at_init,
    "gradient_flows": probe_gradient_flows,
    "margin_monotone": probe_margin_monotone,
    "reward_scales_with_beta": probe_reward_scales_with_beta,
    "toy_training": probe_toy_training,
}
