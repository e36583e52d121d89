"""The machinery behind ``rlhf_core.checks``: probe a candidate, then judge plain numbers.

A check runs in two halves so that the grader can keep them apart:

1. **probe** — call the candidate on fixed, seeded inputs (a list of *cases*) and record what
   came back as plain JSON-able data: for every case either ``{"ok": True, "values": {key:
   serialised}}`` or ``{"ok": False, "error": {"type", "message"}}``. Exceptions, wrong types,
   wrong shapes and NaNs are all just data here. This half runs the learner's code.
2. **judge** — compare that record with the probe of the reference implementation and of the
   known-wrong implementations (the common mistakes), and either return a one-line success
   message or raise :class:`CheckFailed` (an ``AssertionError``) that says what was expected,
   what came back, and which mistake it matches. This half never runs the learner's code, so a
   process that never saw the submission can do it.

``check(exercise, candidate)`` does both and prints ``✓ <what held>``.
"""

from __future__ import annotations

import math
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

__all__ = [
    "CheckFailed",
    "Missing",
    "Case",
    "Mistake",
    "Exercise",
    "serialise",
    "run_case",
    "probe",
    "judge",
    "check",
    "format_value",
]


class CheckFailed(AssertionError):
    """A check's verdict: the message says what was expected, what came back and the likely mistake.

    In Jupyter the verdict is all a learner sees: IPython shows ``_render_traceback_`` in place of a
    traceback through the library's internals (where the learner's own code raised, the verdict
    names the error and the line)."""

    def _render_traceback_(self) -> list[str]:
        return [f"\x1b[31m{self}\x1b[0m"]


@dataclass
class Case:
    """One probe input: a human description and a function that calls an implementation on it.

    ``run(fn)`` returns a dict ``{key: value}`` of what to compare (tensors, numbers, strings);
    ``key`` names appear in messages ("loss after step 1").
    """

    name: str
    run: Callable[[Callable], dict[str, Any]]


@dataclass
class Mistake:
    """A known-wrong implementation with the same signature as the exercise, and what to tell the learner."""

    hint: str
    fn: Callable


@dataclass
class Exercise:
    """Everything needed to check one exercise."""

    name: str
    cases: Callable[[int], list[Case]]  # seed -> cases
    reference: Callable
    mistakes: list[Mistake]
    summary: str  # what a pass means, for the ✓ line
    formula: str  # what the right answer is, shown when no known mistake matches
    shape_hint: Callable[[tuple, tuple], str | None] = lambda expected, got: None
    rtol: float = 1e-4
    atol: float = 1e-5
    grade_id: str | None = None
    extra_judge: Callable[[dict], None] | None = None  # extra rules on the candidate's record
    key_hints: dict[str, str] = field(default_factory=dict)  # what a difference in this key means, if no mistake matches


# --------------------------------------------------------------------------------------------
# probe: run an implementation, record plain data


class Missing:
    """Stands for a key absent from a returned dict (so the verdict can say which key)."""

    def __init__(self, name: str):
        self.name = name


def serialise(value: Any) -> dict:
    """A returned value as JSON-able data: kind, shape, dtype and the numbers themselves."""
    if isinstance(value, Missing):
        return {"kind": "missing", "name": value.name}
    if isinstance(value, torch.Tensor):
        data = value.detach().cpu()
        is_number = data.is_floating_point() or data.dtype in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool)
        return {
            "kind": "tensor",
            "shape": list(data.shape),
            "dtype": str(data.dtype).replace("torch.", ""),
            "requires_grad": bool(value.requires_grad),
            "data": data.double().flatten().tolist() if is_number else None,
        }
    if isinstance(value, bool):
        return {"kind": "bool", "data": [float(value)], "shape": []}
    if isinstance(value, (int, float)):
        return {"kind": "number", "data": [float(value)], "shape": []}
    if isinstance(value, str):
        return {"kind": "str", "text": value[:500]}
    if value is None:
        return {"kind": "none"}
    return {"kind": "other", "type": type(value).__name__}


def _error_record(exc: BaseException) -> dict:
    message = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
    where = ""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        # the innermost frame of the learner's own code ("line 3: return x @ w"), not of a library
        path = frame.filename.replace("\\", "/")
        if not any(part in path for part in ("/rlhf_core/", "/site-packages/", "/torch/", "/lib/python")):
            where = f"line {frame.lineno}" + (f": {frame.line.strip()}" if frame.line else "")
            break
    return {"type": type(exc).__name__, "message": message, "where": where[:200]}


def run_case(case: Case, fn: Callable) -> dict:
    """Run one case against ``fn``; exceptions (but not KeyboardInterrupt) become data."""
    try:
        values = case.run(fn)
    except Exception as exc:  # the learner's code may raise anything; it is recorded, not re-raised
        return {"ok": False, "error": _error_record(exc)}
    return {"ok": True, "values": {k: serialise(v) for k, v in values.items()}}


def probe(exercise: Exercise, candidate: Callable, seed: int = 0) -> dict:
    """The record of ``candidate`` on the exercise's cases: plain data, safe to send elsewhere."""
    torch_state = torch.get_rng_state()
    try:
        results = {}
        for case in exercise.cases(seed):
            results[case.name] = run_case(case, candidate)
        return {"exercise": exercise.name, "seed": seed, "cases": results}
    finally:
        torch.set_rng_state(torch_state)


# --------------------------------------------------------------------------------------------
# judge: compare records


def format_value(entry: dict, limit: int = 6) -> str:
    """A short human rendering of a serialised value: ``0.6931``, ``[0.1, -2.3, …] (shape (8,))``."""
    kind = entry.get("kind")
    if kind == "str":
        return repr(entry["text"])
    if kind == "none":
        return "None"
    if kind == "missing":
        return "(missing)"
    if kind == "other":
        return f"an object of type {entry['type']}"
    data, shape = entry.get("data"), tuple(entry.get("shape", []))
    if data is None:
        return f"a {entry.get('dtype')} tensor of shape {shape}"
    nums = [_fmt(x) for x in data[:limit]]
    if kind in ("number", "bool") or (kind == "tensor" and shape == ()):
        text = nums[0] if nums else "?"
        return text if kind != "tensor" else f"tensor({text})"
    body = ", ".join(nums) + (", …" if len(data) > limit else "")
    return f"[{body}] (shape {shape})"


def _fmt(x: float) -> str:
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x != 0 and (abs(x) >= 1e5 or abs(x) < 1e-3):
        return f"{x:.4g}"
    return f"{x:.4f}".rstrip("0").rstrip(".") if "." in f"{x:.4f}" else f"{x:.4f}"


def _is_numeric(entry: dict) -> bool:
    return entry.get("kind") in ("tensor", "number", "bool") and entry.get("data") is not None


def _values_close(a: list[float], b: list[float], rtol: float, atol: float) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if math.isnan(x) or math.isnan(y):
            if not (math.isnan(x) and math.isnan(y)):
                return False
        elif math.isinf(x) or math.isinf(y):
            if x != y:
                return False
        elif abs(x - y) > atol + rtol * abs(y):
            return False
    return True


def _entries_match(got: dict, want: dict, rtol: float, atol: float) -> bool:
    """Same value up to tolerance; numbers and 0-dim tensors compare by value, not by kind."""
    if _is_numeric(got) and _is_numeric(want):
        if tuple(got.get("shape", [])) != tuple(want.get("shape", [])):
            return False
        return _values_close(got["data"], want["data"], rtol, atol)
    if got.get("kind") != want.get("kind"):
        return False
    if got.get("kind") == "str":
        return got["text"] == want["text"]
    return got == want


def outcomes_match(got: dict, want: dict, rtol: float, atol: float) -> bool:
    """Whether two case outcomes agree on every key of ``want`` (errors agree with nothing)."""
    if not (got.get("ok") and want.get("ok")):
        return False
    for key, want_entry in want["values"].items():
        got_entry = got["values"].get(key)
        if got_entry is None or not _entries_match(got_entry, want_entry, rtol, atol):
            return False
    return True


def _first_difference(got: dict, want: dict, rtol: float, atol: float) -> str | None:
    for key, want_entry in want["values"].items():
        got_entry = got["values"].get(key)
        if got_entry is None or not _entries_match(got_entry, want_entry, rtol, atol):
            return key
    return None


def _matching_mistake(exercise: Exercise, seed: int, case_name: str, got: dict, record_cases: dict) -> Mistake | None:
    """The known mistake whose output equals the candidate's on the failing case; among several,
    the one that agrees with the candidate on the most cases of the record. None if none matches."""
    cases = {c.name: c for c in exercise.cases(seed)}
    best, best_agreement = None, -1
    for mistake in exercise.mistakes:
        outcome = run_case(cases[case_name], mistake.fn)
        if not (outcome.get("ok") and outcomes_match(got, outcome, exercise.rtol, exercise.atol)):
            continue
        agreement = 0
        for name, case in cases.items():
            recorded = record_cases.get(name)
            if name != case_name and isinstance(recorded, dict) and recorded.get("ok"):
                agreement += outcomes_match(recorded, run_case(case, mistake.fn), exercise.rtol, exercise.atol)
        if agreement > best_agreement:
            best, best_agreement = mistake, agreement
    return best


def _is_finite(entry: dict) -> bool:
    return all(math.isfinite(x) for x in entry.get("data") or [])


def _fail(exercise: Exercise, case_name: str, text: str) -> None:
    raise CheckFailed(f"✗ {exercise.name} — {case_name}: {text}")


def _judge_error(exercise: Exercise, case_name: str, error: dict) -> None:
    kind, message, where = error.get("type", "Exception"), error.get("message", ""), error.get("where", "")
    if kind == "NotImplementedError":
        _fail(exercise, "not implemented yet",
              f"replace the `raise NotImplementedError` in `{exercise.name}` with your code, run that cell, then this one. "
              f"Expected: {exercise.formula}")
    location = f" ({where})" if where else ""
    _fail(exercise, case_name,
          f"your function raised {kind}: {message}{location}. Expected it to return normally; "
          f"the inputs here are valid. {exercise.formula}")


def judge(exercise: Exercise, record: dict) -> str:
    """Verdict on a probe record: returns the ✓ text, or raises :class:`CheckFailed`."""
    if not isinstance(record, dict) or record.get("exercise") != exercise.name or not isinstance(record.get("cases"), dict):
        raise CheckFailed(f"✗ {exercise.name}: the record of the run is malformed, so nothing can be credited")
    seed = int(record.get("seed", 0))
    got_cases = record["cases"]
    # NotImplementedError anywhere means the stub is untouched: say so first, whatever the case order.
    for outcome in got_cases.values():
        if isinstance(outcome, dict) and not outcome.get("ok") and (outcome.get("error") or {}).get("type") == "NotImplementedError":
            _judge_error(exercise, "", outcome["error"])
    cases = exercise.cases(seed)
    for case in cases:
        want = run_case(case, exercise.reference)
        if not want.get("ok"):  # the reference itself failing is a bug of this library, not the learner's
            raise RuntimeError(f"reference for {exercise.name} failed on {case.name}: {want['error']}")
        got = got_cases.get(case.name)
        if not isinstance(got, dict) or "ok" not in got:
            _fail(exercise, case.name, "no result was recorded for this case (the run stopped early?)")
        if not got["ok"]:
            _judge_error(exercise, case.name, got.get("error") or {})
        if outcomes_match(got, want, exercise.rtol, exercise.atol):
            continue
        _explain_mismatch(exercise, seed, case.name, got, want, got_cases)
    if exercise.extra_judge is not None:
        exercise.extra_judge(record)
    return exercise.summary


def _explain_mismatch(exercise: Exercise, seed: int, case_name: str, got: dict, want: dict, record_cases: dict) -> None:
    key = _first_difference(got, want, exercise.rtol, exercise.atol)
    want_entry = want["values"][key]
    got_entry = got["values"].get(key)
    label = "" if key == "out" else f"{key}: "
    mistake = _matching_mistake(exercise, seed, case_name, got, record_cases)
    hint = f" {mistake.hint}" if mistake else ""
    if not mistake and key in exercise.key_hints:
        hint = f" {exercise.key_hints[key]}"
    if got_entry is None:
        _fail(exercise, case_name, f"{label}expected {format_value(want_entry)}, but nothing came back.{hint}")
    if got_entry.get("kind") == "missing":
        _fail(exercise, case_name, f"the returned dict has no key {got_entry.get('name', key)!r}; expected "
              f"{format_value(want_entry)} there.{hint}")
    if got_entry.get("kind") == "none" and want_entry.get("kind") != "none" and not key.startswith("grad"):
        _fail(exercise, case_name, f"{label}expected {format_value(want_entry)}, got None: is a `return` statement missing?{hint}")
    if key.startswith("grad") and got_entry.get("kind") == "none":
        _fail(exercise, case_name,
              f"{label}no gradient reached the inputs: the result is cut off from autograd. "
              "Did you call .item(), .detach(), torch.tensor(...) or work under torch.no_grad()? "
              "Return a tensor computed from the inputs." + hint)
    if want_entry.get("kind") == "tensor" and got_entry.get("kind") != "tensor":
        got_text = format_value(got_entry)
        extra = " Return the tensor itself (no .item()) so that .backward() can run through it." if got_entry.get("kind") == "number" else ""
        _fail(exercise, case_name, f"{label}expected a tensor, got {got_text}.{extra}{hint}")
    if _is_numeric(want_entry) and _is_numeric(got_entry):
        want_shape, got_shape = tuple(want_entry["shape"]), tuple(got_entry["shape"])
        if want_shape != got_shape:
            specific = exercise.shape_hint(want_shape, got_shape)
            shape_text = "a scalar (0-dim tensor)" if want_shape == () else f"shape {want_shape}"
            _fail(exercise, case_name, f"{label}expected {shape_text}, got shape {got_shape}."
                  + (f" {specific}" if specific else "") + hint)
        if _is_finite(want_entry) and not _is_finite(got_entry):
            generic = "" if mistake else " Numerically unstable: look for log(0), exp overflow or a division by zero."
            _fail(exercise, case_name, f"{label}expected {format_value(want_entry)}, got {format_value(got_entry)}.{hint or generic}")
    _fail(exercise, case_name,
          f"{label}expected {format_value(want_entry)}, got {format_value(got_entry)}."
          + (hint or f" This matches none of the common mistakes; compare with: {exercise.formula}"))


def check(exercise: Exercise, candidate: Callable, seed: int = 0, quiet: bool = False) -> str | None:
    """Probe and judge in one go, or raise :class:`CheckFailed`.

    Prints ``✓ …`` and returns None (so a notebook shows the line once); with ``quiet=True``
    prints nothing and returns the message instead.
    """
    if not callable(candidate):
        raise CheckFailed(f"✗ {exercise.name}: expected a function, got {type(candidate).__name__}. "
                          f"Pass the function itself, e.g. check_{exercise.name}({exercise.name}), without calling it.")
    message = "✓ " + judge(exercise, probe(exercise, candidate, seed))
    if quiet:
        return message
    print(message)
    return None
