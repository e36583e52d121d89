"""The machinery of every check: cases, mistakes, the exercise registry, probe and judge.

A check runs in two halves so that the grader can keep them apart. **probe** calls the candidate
on fixed, seeded inputs (a list of *cases*) and records, for every case, either ``{"ok": True,
"values": {key: serialised}}`` or ``{"ok": False, "error": error record}``: plain JSON-able data,
exceptions, wrong types, shapes and NaNs included. This half runs the learner's code. **judge**
compares that record with the probe of the reference (the library's own function) and of the
known mistakes, and returns a one-line success message or raises :class:`CheckFailed` saying what
was expected, what came back and which mistake it matches. It never runs the learner's code.

``check(exercise, candidate)`` does both and prints ``✓ <what held>``. :func:`serialise` and
:func:`error_record` are the only ways a learner's value or exception becomes data, here and in
the sanity checks.
"""

from __future__ import annotations

import math
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["CheckFailed", "Missing", "Case", "Mistake", "Exercise", "EXERCISES", "register", "serialise",
           "error_record", "plain_number", "run_case", "probe", "judge", "check", "format_value"]

MAX_NUMBERS = 10_000  # a returned tensor with more elements is recorded without its numbers


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
    """Everything needed to check one exercise; ``reference`` is the library's own function."""

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
    # what a difference in ``key`` means, read from the whole case (key, got values, wanted values), if no mistake matches
    explain: Callable[[str, dict, dict], str | None] | None = None
    lesson: int = 0  # the lesson that teaches it: the registry is in lesson order


#: The one registry: exercise name → :class:`Exercise`, in lesson order (filled by the lesson modules).
EXERCISES: dict[str, Exercise] = {}


def register(exercise: Exercise) -> Exercise:
    """Add ``exercise`` to :data:`EXERCISES`, kept in lesson order whatever the import order."""
    EXERCISES[exercise.name] = exercise
    ordered = sorted(EXERCISES.values(), key=lambda e: e.lesson)  # stable: a lesson's own order is kept
    EXERCISES.clear()
    EXERCISES.update((e.name, e) for e in ordered)
    return exercise


# --------------------------------------------------------------------------------------------
# probe: run an implementation, record plain data


class Missing:
    """Stands for a key absent from a returned dict (so the verdict can say which key)."""

    def __init__(self, name: str):
        self.name = name


def type_name(value: Any) -> str:
    """The name of ``value``'s type, read from the type itself (a metaclass cannot fake it)."""
    try:
        name = type.__dict__["__name__"].__get__(type(value))
        return str.__getitem__(name, slice(0, 200)) if isinstance(name, str) else "object"
    except Exception:
        return "object"


def _tensor_record(value: Tensor) -> dict:
    """A tensor (any subclass) read with torch's own methods, bypassing a subclass's overrides."""
    with torch._C.DisableTorchFunctionSubclass():
        try:
            dtype = Tensor.dtype.__get__(value)
            record = {"kind": "tensor", "type": type_name(value), "dtype": str(dtype).replace("torch.", ""),
                      "shape": [int(n) for n in Tensor.size(value)],
                      "requires_grad": bool(Tensor.requires_grad.__get__(value)), "data": None}
        except Exception:
            return {"kind": "other", "type": type_name(value)}
        try:
            if math.prod(record["shape"]) <= MAX_NUMBERS and not dtype.is_complex:
                copy = Tensor.double(Tensor.cpu(Tensor.detach(value)))
                record["data"] = [float(x) for x in Tensor.tolist(Tensor.reshape(copy, (-1,)))]
        except Exception:  # numbers that cannot be read (a meta or sparse tensor, an exotic subclass)
            pass
    return record


def serialise(value: Any) -> dict:
    """A returned value as JSON-able data (every record has ``kind`` and ``type``); never trusts the
    object's own methods. A tensor (any subclass): ``dtype``, ``shape``, ``requires_grad`` and
    ``data``, the flattened numbers as floats (None when over :data:`MAX_NUMBERS`, complex or
    unreadable). A plain bool/int/float, not a subclass, or a numpy scalar: ``data: [x]``, ``shape: []``. A str:
    ``text`` (500 characters at most). Also ``none``, ``missing`` (a :class:`Missing` key) and ``other``.
    """
    kind = type(value)
    if kind is Missing:
        return {"kind": "missing", "type": "Missing", "name": str(value.name)}
    if issubclass(kind, Tensor):
        return _tensor_record(value)
    if kind in (bool, int, float):
        try:
            return {"kind": "bool" if kind is bool else "number", "type": kind.__name__, "data": [float(value)], "shape": []}
        except OverflowError:  # an int too big for a float
            pass
    if kind.__module__ == "numpy" and issubclass(kind, (np.floating, np.integer, np.bool_)):
        # numpy's own scalar types (np.mean(...) returns one): read through the type's method, not the value's
        return {"kind": "bool" if issubclass(kind, np.bool_) else "number", "type": kind.__name__,
                "data": [float(kind.item(value))], "shape": []}
    if issubclass(kind, str):
        return {"kind": "str", "type": type_name(value), "text": str.__getitem__(value, slice(0, 500))}
    if value is None:
        return {"kind": "none", "type": "NoneType"}
    return {"kind": "other", "type": type_name(value)}


def plain_number(value: Any) -> Any:
    """A one-element tensor as a Python number (read like :func:`serialise` does), else ``value``."""
    if issubclass(type(value), Tensor):
        with torch._C.DisableTorchFunctionSubclass():
            try:
                if Tensor.numel(value) == 1:
                    return Tensor.item(Tensor.detach(value))
            except Exception:
                pass
    return value


def error_record(exc: BaseException, limit: int = 500) -> dict:
    """An exception as data: ``{"type", "message", "where", "not_implemented"}``.

    ``message`` is ``str(exc)`` cut to ``limit`` characters (each judge shows what it needs of
    it); ``where`` is the innermost line of the learner's own code (``"line 3: return x @ w"``),
    not of a library; ``not_implemented`` whether it is a NotImplementedError.
    """
    try:
        message = str.__getitem__(str(exc), slice(0, limit))
    except Exception:  # an exception whose __str__ itself fails
        message = "(the message could not be printed)"
    where = ""
    try:
        for frame in reversed(traceback.extract_tb(exc.__traceback__)):
            path = frame.filename.replace("\\", "/")
            if not any(part in path for part in ("/rlhf_core/", "/site-packages/", "/torch/", "/lib/python")):
                where = f"line {frame.lineno}" + (f": {frame.line.strip()}" if frame.line else "")
                break
    except Exception:
        where = ""
    return {"type": type_name(exc), "message": message, "where": where[:200],
            "not_implemented": issubclass(type(exc), NotImplementedError)}


def run_case(case: Case, fn: Callable) -> dict:
    """Run one case against ``fn``; exceptions (but not KeyboardInterrupt) become data."""
    try:
        values = case.run(fn)
    except Exception as exc:  # the learner's code may raise anything; it is recorded, not re-raised
        return {"ok": False, "error": error_record(exc)}
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
    if kind == "bool":
        return str(bool(data[0])) if data else "?"
    if kind == "number" or (kind == "tensor" and shape == ()):
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
    return bool(got.get("ok") and want.get("ok")) and _first_difference(got, want, rtol, atol) is None


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


def _too_big(entry: dict) -> bool:
    """A tensor recorded without its numbers only because it has too many (its shape still counts)."""
    return (entry.get("kind") == "tensor" and entry.get("data") is None and not str(entry.get("dtype")).startswith("complex")
            and math.prod(entry.get("shape") or [0]) > MAX_NUMBERS)


def _is_finite(entry: dict) -> bool:
    return all(math.isfinite(x) for x in entry.get("data") or [])


def _fail(exercise: Exercise, case_name: str, text: str) -> None:
    raise CheckFailed(f"✗ {exercise.name} — {case_name}: {text}")


def _judge_error(exercise: Exercise, case_name: str, error: dict) -> None:
    kind, where = error.get("type", "Exception"), error.get("where", "")
    message = str(error.get("message", "")).strip()
    message = message.splitlines()[0][:300] if message else ""  # the first line is the message a learner reads
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
    if not mistake and exercise.explain is not None:
        specific = exercise.explain(key, got["values"], want["values"])
        hint = f" {specific}" if specific else ""
    if not hint and not mistake and key in exercise.key_hints:
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
    if _is_numeric(want_entry) and (_is_numeric(got_entry) or _too_big(got_entry)):
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
