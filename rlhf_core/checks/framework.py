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

A verdict is built from its parts (:func:`verdict`: title, problem, expected, got, advice), so that a
notebook can show expected and got on their own lines (:mod:`~rlhf_core.checks.render`) while
``str(exc)`` stays the one plain line the grader records. Values enter verdicts as plain numbers
(``1.5506``, ``(4, 7)``, never ``tensor(1.5506)``): through :func:`format_value` for recorded
values and :func:`plain` for anything else; a learner's exception message through :func:`shorten`.
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

__all__ = ["CheckFailed", "FAILURE_KINDS", "Missing", "Case", "Mistake", "Exercise", "EXERCISES", "register", "serialise",
           "error_record", "plain_number", "plain", "shorten", "verdict", "run_case", "probe", "judge", "check",
           "format_value"]

MAX_NUMBERS = 10_000  # a returned tensor with more elements is recorded without its numbers


#: How a check can fail, as results and the class report count it: a registered mistake matched, a
#: wrong answer that matches none, an untouched stub, an exception raised on valid inputs, a record
#: the judge could not read.
FAILURE_KINDS = ("mistake", "unnamed", "not implemented", "raised", "malformed")


class CheckFailed(AssertionError):
    """A check's verdict: the message says what was expected, what came back and the likely mistake.

    ``str(exc)`` is the verdict as one plain line (what the grader records and tests read). The same
    verdict in parts, for display: ``title`` (``"✗ dpo_loss — β = 0.5"``), ``problem`` (a sentence),
    ``what`` (the quantity compared), ``expected`` and ``got`` (plain values, or None when the verdict
    has none) and ``advice`` (the likely mistake, or what to do).

    In Jupyter the verdict is all a learner sees: IPython calls ``_render_traceback_`` in place of a
    traceback through the library's internals; it displays the verdict as a short HTML block
    (:func:`~rlhf_core.checks.render.verdict_html`) and leaves one short red error line, so the cell
    still fails for nbgrader's Validate, nbval and Run All. In a terminal IPython it prints the
    verdict as wrapped plain text (:func:`~rlhf_core.checks.render.verdict_text`)."""

    def __init__(self, message: str = "", *, title: str | None = None, problem: str | None = None,
                 what: str | None = None, expected: str | None = None, got: str | None = None,
                 advice: str | None = None, kind: str = "unnamed", mistake: str | None = None):
        super().__init__(message)
        self.title, self.problem, self.what = title, problem, what
        self.expected, self.got, self.advice = expected, got, advice
        # what kind of failure, for counting (never shown): see FAILURE_KINDS; ``mistake`` the id of the
        # registered mistake it matched (``Mistake.id``, or ``sanity-N`` for a sanity check's verdict)
        self.kind, self.mistake = kind, mistake

    def _repr_html_(self) -> str:
        from .render import verdict_html

        return verdict_html(self)

    def text(self, width: int = 100) -> str:
        """The verdict as plain text wrapped to ``width`` columns, expected and got on their own lines."""
        from .render import verdict_text

        return verdict_text(self, width)

    def _render_traceback_(self) -> list[str]:
        from .render import show_failure

        return show_failure(self)


def verdict(title: str, *, problem: str = "", what: str = "", expected: str | None = None, got: str | None = None,
            advice: str = "", kind: str = "unnamed", mistake: str | None = None) -> CheckFailed:
    """A :class:`CheckFailed` whose one-line message is made of its parts, in the course's form:
    ``"{title}: {what}: {problem} expected {expected}, got {got}. {advice}"`` (the parts present)."""
    body = problem.strip()
    if expected is not None:
        values = f"expected {expected}" + (f", got {got}" if got is not None else "") + "."
        body = f"{body} {values}" if body else values
    if what:
        body = f"{what}: {body}" if body else what
    if advice:
        body = f"{body} {advice.strip()}" if body else advice.strip()
    return CheckFailed(f"{title}: {body}" if body else title, title=title, problem=problem or None,
                       what=what or None, expected=expected, got=got, advice=advice or None, kind=kind,
                       mistake=mistake)


def shorten(text: str, limit: int = 300) -> str:
    """``text`` cut to at most ``limit`` characters at a word boundary, with an ellipsis when cut."""
    text = str(text)
    if len(text) <= limit:
        return text
    cut = text[:limit - 1]
    space = cut.rfind(" ")
    if space >= limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:.-—") + "…"


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
    """A known-wrong implementation with the same signature as the exercise, and what to tell the learner.

    ``id`` names the mistake for good (results and the class report count mistakes by it, never by
    the hint's wording): by default the function's name without its leading underscores; a lambda
    must be given one."""

    hint: str
    fn: Callable
    id: str = ""

    def __post_init__(self):
        if not self.id:
            name = getattr(self.fn, "__name__", "")
            if not name.isidentifier():
                raise ValueError(f"the mistake {self.hint[:60]!r} needs an id= (its function has no name)")
            self.id = name.lstrip("_")


@dataclass
class Exercise:
    """Everything needed to check one exercise; ``reference`` is the library's own function."""

    name: str
    cases: Callable[[int], list[Case]]  # seed -> cases
    reference: Callable
    mistakes: list[Mistake]
    summary: str  # what a pass means, for the ✓ line
    formula: str  # what the right answer is: shown when no known mistake matches, never to an untouched stub
    shape_hint: Callable[[tuple, tuple], str | None] = lambda expected, got: None
    rtol: float = 1e-4
    atol: float = 1e-5
    grade_id: str | None = None
    extra_judge: Callable[[dict], None] | None = None  # extra rules on the candidate's record
    key_hints: dict[str, str] = field(default_factory=dict)  # what a difference in this key means, if no mistake matches
    # what a difference in ``key`` means, read from the whole case (key, got values, wanted values), if no mistake matches
    explain: Callable[[str, dict, dict], str | None] | None = None
    lesson: int = 0  # the lesson that teaches it: the registry is in lesson order
    #: Other library functions that compute this exercise's answer under another name, withheld with its
    #: reference while the exercise is graded (``grader.withheld``): qualified name → what stands in for it,
    #: ``None`` (calling it raises) or an expression over its own parameters that calls exercise functions
    #: (which then dispatch to the learner's own; used only when every exercise it names is withheld too).
    same_answer: dict[str, str | None] = field(default_factory=dict)


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


def format_value(entry: dict, limit: int = 6, start: int = 0) -> str:
    """A short human rendering of a serialised value: ``0.6931`` (a 0-dim tensor reads as its number),
    ``[0.1, -2.3, …] (shape (8,))``; from flat index ``start`` on, ``[…, 0.5, 0.7, …] (shape (2, 6))``."""
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
    if kind == "bool":
        return str(bool(data[0])) if data else "?"
    if kind == "number" or (kind == "tensor" and shape == ()):
        return _fmt(data[0]) if data else "?"
    start = max(0, min(start, len(data) - limit))
    nums = [_fmt(x) for x in data[start:start + limit]]
    body = ("…, " if start else "") + ", ".join(nums) + (", …" if len(data) > start + limit else "")
    return f"[{body}] (shape {shape})"


def _first_unequal(got: dict, want: dict, rtol: float, atol: float) -> int | None:
    """The flat index of the first element where two same-shape numeric records differ."""
    if not (_is_numeric(got) and _is_numeric(want)) or got.get("shape") != want.get("shape"):
        return None
    for i, (x, y) in enumerate(zip(got["data"], want["data"])):
        if not _values_close([x], [y], rtol, atol):
            return i
    return None


def _format_pair(want: dict, got: dict, exercise: Exercise, limit: int = 6) -> tuple[str, str]:
    """Expected and got as text; when the first ``limit`` numbers agree, both start just before the
    first difference, and ``got`` says at which index (so the two never read alike)."""
    index = _first_unequal(got, want, exercise.rtol, exercise.atol)
    if index is None or index < limit:
        return format_value(want, limit), format_value(got, limit)
    shape = tuple(want["shape"])
    position = tuple(int(i) for i in np.unravel_index(index, shape)) if shape else ()
    start = index - 1
    return (format_value(want, limit, start),
            f"{format_value(got, limit, start)}, first differing at index {position}")


def _fmt(x: float) -> str:
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x != 0 and (abs(x) >= 1e5 or abs(x) < 1e-3):
        return f"{x:.4g}"
    return f"{x:.4f}".rstrip("0").rstrip(".") if "." in f"{x:.4f}" else f"{x:.4f}"


def plain(value: Any, limit: int = 6) -> str:
    """A value as a learner reads it in a verdict: ``1.5506`` (not ``tensor(1.5506)``), ``(4, 7)`` for a
    shape, ``[0.1, -2.3, …] (shape (8,))`` for a tensor or an array, ``True``, ``'text'``.

    Reads tensors like :func:`serialise` does (never through a subclass's own methods); numpy scalars
    and arrays, ``torch.Size`` and nested lists or tuples of numbers are turned into numbers too."""
    kind = type(value)
    if kind is torch.Size or (kind is tuple and value and all(type(n) is int for n in value)):
        return str(tuple(int(n) for n in value))
    if issubclass(kind, Tensor):
        return format_value(serialise(value), limit)
    if kind.__module__ == "numpy" and issubclass(kind, np.ndarray) and value.dtype.kind in "biuf":
        return format_value(serialise(torch.from_numpy(np.array(value, dtype=np.float64))), limit)
    if kind in (bool, int, float) or (kind.__module__ == "numpy" and issubclass(kind, (np.floating, np.integer, np.bool_))):
        return format_value(serialise(value), limit)
    if kind in (list, tuple):
        items = [plain(v, limit) for v in value[:limit]]
        body = ", ".join(items) + (", …" if len(value) > limit else "")
        return f"[{body}]" if kind is list else f"({body}{',' if len(value) == 1 else ''})"
    return format_value(serialise(value), limit)


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


def _fail(exercise: Exercise, case_name: str, text: str = "", *, message: str | None = None, **parts: Any) -> None:
    """Raise the verdict on ``case_name``, made of ``text`` (the problem) and the parts of :func:`verdict`;
    ``message``, when given, is the one-line text instead (the parts then only shape the display)."""
    title = f"✗ {exercise.name} — {case_name}"
    if message is None:
        raise verdict(title, problem=text, **parts)
    kind, mistake = parts.pop("kind", "unnamed"), parts.pop("mistake", None)
    raise CheckFailed(f"{title}: {message}", title=title, kind=kind, mistake=mistake,
                      **{k: v or None for k, v in parts.items()})


def _not_implemented_text(name: str) -> str:
    """What to do with an untouched stub — never the answer itself."""
    return (f"replace the `raise NotImplementedError` in `{name}` with your code, run that cell, then this one. "
            f"What {name} must compute is in the exercise's text above it, and the hint under the exercise "
            "helps if you are stuck.")


def _judge_error(exercise: Exercise, case_name: str, error: dict) -> None:
    kind, where = error.get("type", "Exception"), error.get("where", "")
    message = str(error.get("message", "")).strip()
    message = shorten(message.splitlines()[0]) if message else ""  # the first line is the message a learner reads
    if kind == "NotImplementedError":
        todo = _not_implemented_text(exercise.name)
        _fail(exercise, "not implemented yet", message=todo, problem=f"{todo[0].upper()}{todo[1:]}", kind="not implemented")
    location = f" ({where})" if where else ""
    advice = ("Read the error and the line it names; the exercise's text says what shape and dtype each input has "
              "(its docstring too).")
    _fail(exercise, case_name, message=f"your function raised {kind}: {message}{location}. "
                                       f"Expected it to return normally; the inputs here are valid. {advice}",
          problem="Your function raised an exception, on valid inputs.", expected="a normal return",
          got=f"{kind}: {message}{location}", advice=advice, kind="raised")


def judge(exercise: Exercise, record: dict) -> str:
    """Verdict on a probe record: returns the ✓ text, or raises :class:`CheckFailed`."""
    if not isinstance(record, dict) or record.get("exercise") != exercise.name or not isinstance(record.get("cases"), dict):
        raise CheckFailed(f"✗ {exercise.name}: the record of the run is malformed, so nothing can be credited",
                          kind="malformed")
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
            _fail(exercise, case.name, "no result was recorded for this case (the run stopped early?)", kind="malformed")
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
    label, what = ("", "") if key == "out" else (f"{key}: ", key)
    mistake = _matching_mistake(exercise, seed, case_name, got, record_cases)
    hint = mistake.hint if mistake else ""
    tag = {"kind": "mistake", "mistake": mistake.id} if mistake else {}   # what the results count
    if not mistake and exercise.explain is not None:
        hint = exercise.explain(key, got["values"], want["values"]) or ""
    if not hint and not mistake and key in exercise.key_hints:
        hint = exercise.key_hints[key]
    wanted = format_value(want_entry)
    if got_entry is None:
        _fail(exercise, case_name, **tag, message=f"{label}expected {wanted}, but nothing came back. {hint}".strip(),
              what=what, expected=wanted, got="nothing", advice=hint)
    if got_entry.get("kind") == "missing":
        name = got_entry.get("name", key)
        _fail(exercise, case_name, **tag, message=f"the returned dict has no key {name!r}; expected {wanted} there. {hint}".strip(),
              problem=f"The returned dict has no key {name!r}.", expected=wanted, got=f"no key {name!r}", advice=hint)
    if got_entry.get("kind") == "none" and want_entry.get("kind") != "none" and not key.startswith("grad"):
        _fail(exercise, case_name, **tag,
              message=f"{label}expected {wanted}, got None: is a `return` statement missing? {hint}".strip(),
              what=what, expected=wanted, got="None", advice=f"Is a `return` statement missing? {hint}".strip())
    if key.startswith("grad") and got_entry.get("kind") == "none":
        problem = "No gradient reached the inputs: the result is cut off from autograd."
        advice = ("Did you call .item(), .detach(), torch.tensor(...) or work under torch.no_grad()? "
                  f"Return a tensor computed from the inputs. {hint}").strip()
        _fail(exercise, case_name, **tag, message=f"{label}{problem[0].lower()}{problem[1:]} {advice}", what=what,
              problem=problem, advice=advice)
    if want_entry.get("kind") == "tensor" and got_entry.get("kind") != "tensor":
        extra = "Return the tensor itself (no .item()) so that .backward() can run through it." if got_entry.get("kind") == "number" else ""
        _fail(exercise, case_name, **tag, what=what, expected="a tensor", got=format_value(got_entry),
              advice=" ".join(t for t in (extra, hint) if t))
    if _is_numeric(want_entry) and (_is_numeric(got_entry) or _too_big(got_entry)):
        want_shape, got_shape = tuple(want_entry["shape"]), tuple(got_entry["shape"])
        if want_shape != got_shape:
            specific = exercise.shape_hint(want_shape, got_shape)
            shape_text = "a scalar (0-dim tensor)" if want_shape == () else f"shape {want_shape}"
            _fail(exercise, case_name, **tag, what=what, expected=shape_text, got=f"shape {got_shape}",
                  advice=" ".join(t for t in (specific, hint) if t))
        if _is_finite(want_entry) and not _is_finite(got_entry):
            generic = "" if mistake else "Numerically unstable: look for log(0), exp overflow or a division by zero."
            expected, got_text = _format_pair(want_entry, got_entry, exercise)
            _fail(exercise, case_name, **tag, what=what, expected=expected, got=got_text, advice=hint or generic)
    expected, got_text = _format_pair(want_entry, got_entry, exercise)
    _fail(exercise, case_name, **tag, what=what, expected=expected, got=got_text,
          advice=hint or f"This matches none of the common mistakes; compare with: {exercise.formula}")


def check(exercise: Exercise, candidate: Callable, seed: int = 0, quiet: bool = False) -> str | None:
    """Probe and judge in one go, or raise :class:`CheckFailed`.

    Prints ``✓ …`` and returns None (so a notebook shows the line once); with ``quiet=True``
    prints nothing and returns the message instead.
    """
    if not callable(candidate):
        got, advice = type_name(candidate), f"Pass the function itself, e.g. check_{exercise.name}({exercise.name}), without calling it."
        raise CheckFailed(f"✗ {exercise.name}: expected a function, got {got}. {advice}", title=f"✗ {exercise.name}",
                          problem="The check needs your function, not what it returns.", expected="a function",
                          got=got, advice=advice)
    message = "✓ " + judge(exercise, probe(exercise, candidate, seed))
    if quiet:
        return message
    print(message)
    return None
