"""Verdicts: what a failing check says, in parts, and how values read in it.

A verdict is built from its parts (:func:`verdict`: title, problem, expected, got, advice), so that a
notebook can show expected and got on their own lines (:mod:`~rlhf_core.checks.render`) while
``str(exc)`` stays the one plain line the grader records. Values enter verdicts as plain numbers
(``1.5506``, ``(4, 7)``, never ``tensor(1.5506)``): through :func:`format_value` for recorded
values and :func:`plain` for anything else; a learner's exception message through :func:`shorten`.

An exception a learner's function raised is judged by its likely cause (:func:`crash_cause`): a loss with no
``grad_fn`` (a forward under ``no_grad``, a detached tensor), a shape mismatch (which dimension, which sizes, the
usual cause), a dtype error (which dtype was expected), an undefined name (a cell not run). It reads the error
record alone (:func:`~rlhf_core.checks.records.error_record`: plain data), so the grader, judging outside the
kernel, says the same; an exception it does not know gets the generic advice.
"""

from __future__ import annotations

import math
import re
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from .records import serialise

__all__ = ["FAILURE_KINDS", "CheckFailed", "verdict", "shorten", "format_value", "plain", "CrashCause", "crash_cause"]


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


# --------------------------------------------------------------------------------------------
# crashes: what an exception a learner's function raised most likely means


class CrashCause(NamedTuple):
    """The likely cause of an exception, read from its type and message (:func:`crash_cause`).

    ``cause`` names it for good (``"no grad_fn"``, ``"shape"``, ``"dtype"``, ``"name"``, ``"unbound
    local"``); ``problem`` is a sentence saying what was expected and what came back (the sizes,
    dtypes or name read from the message); ``expected`` the same, short, for the verdict's
    *expected* line; ``advice`` the likely mistake, without the answer."""

    cause: str
    problem: str
    expected: str
    advice: str


#: torch's names of dtypes in its messages → the names a learner writes (``torch.int64``…)
_DTYPES = {"long": "int64", "long int": "int64", "int64": "int64", "int": "int32", "int32": "int32",
           "short": "int16", "int16": "int16", "char": "int8", "int8": "int8", "byte": "uint8", "uint8": "uint8",
           "bool": "bool", "float": "float32", "float32": "float32", "double": "float64", "float64": "float64",
           "half": "float16", "float16": "float16", "bfloat16": "bfloat16"}
_INTEGERS = {"int64", "int32", "int16", "int8", "uint8", "bool"}
_DTYPE_WORD = re.compile(r"\b(long int|bfloat16|float16|float32|float64|int16|int32|int64|uint8|int8|long|int|short|"
                         r"char|byte|bool|float|double|half)\b", re.IGNORECASE)
#: names that an import cell defines, and that import
_IMPORTS = {"torch": "import torch", "F": "import torch.nn.functional as F", "nn": "from torch import nn",
            "np": "import numpy as np", "math": "import math", "Tensor": "from torch import Tensor"}

_INDEX_ADVICE = ("Indices (token ids, the labels passed to `gather`, positions) must stay integers, int64 "
                 "(`torch.long`): one became a float on the way (arithmetic with a float, or a tensor built without "
                 "`dtype=`).")
_FLOAT_ADVICE = ("An integer or bool tensor (a mask, token ids, a comparison's result) reached an operation that "
                 "needs floating point: convert it first (`.float()`, or `.to(x.dtype)` to match the other operand).")
_PRECISION_ADVICE = ("One of the cases passes float64 inputs: give any tensor you create the inputs' dtype "
                     "(`dtype=x.dtype`, `torch.zeros_like(x)`, `.to(x.dtype)`) rather than the float32 default.")
_PRINT_SHAPES = "Print the `.shape` of each operand on the line named."
_BROADCAST = ("broadcasting lines tensors up from their last dimension, so a tensor missing an axis is compared along "
              "the wrong one: a per-row (B,) tensor against a (B, T) one needs a trailing axis (an `unsqueeze`), or a "
              "sum or mean ran over the wrong dimension.")


def _dtype(word: str) -> str:
    """torch's name of a dtype in a message (``Long``, ``long int``, ``torch.FloatTensor``) as ``int64``."""
    word = word.strip().lower().removeprefix("torch.").removesuffix("tensor")
    return _DTYPES.get(word, word)


def _a(dtype: str) -> str:
    """``dtype`` with its article: ``an int64``, ``a float32``, ``a uint8``."""
    return f"{'an' if dtype[:1] in 'aeio' or dtype[:2] == 'in' else 'a'} {dtype}"


def _pair_advice(a: str, b: str) -> str:
    """What mixing dtypes ``a`` and ``b`` most likely means."""
    if (a in _INTEGERS) != (b in _INTEGERS):
        return _FLOAT_ADVICE
    if a not in _INTEGERS and b not in _INTEGERS:
        return _PRECISION_ADVICE
    return _INDEX_ADVICE


def _float_needed(dtype: str, what: str) -> CrashCause:
    advice = _FLOAT_ADVICE if dtype in _INTEGERS else "Compute in float32 or float64, the dtype of the inputs."
    return CrashCause("dtype", f"{what} needs a floating-point tensor and was given {_a(dtype)} one.",
                      "a floating-point tensor (float32 or float64)", advice)


def _index_dtype(what: str, got: str = "") -> CrashCause:
    given = f", and was given {got}" if got else ""
    return CrashCause("dtype", f"{what} needs its index as integers, int64 (`torch.long`){given}.",
                      "an int64 index (torch.long)", _INDEX_ADVICE)


def _no_grad(m: re.Match) -> CrashCause:
    return CrashCause(
        "no grad_fn",
        "`.backward()` needs a loss that autograd can trace back to the parameters being trained, but this loss has "
        "no `grad_fn`: it was computed without gradients.",
        "a loss connected by autograd to the policy's parameters (one with a grad_fn)",
        "Likely mistake: the forward pass of the model being trained (the policy) runs under `torch.no_grad()` (or "
        "`torch.inference_mode()`), or a tensor on the path from its output to the loss is cut off by `.detach()`, "
        "`.item()` or `torch.tensor(...)`. Only what is not trained, such as a frozen reference's log-probs, belongs "
        "under `no_grad`.")


def _elementwise(m: re.Match) -> CrashCause:
    a, b, dim = int(m[1]), int(m[2]), m[3]
    problem = (f"Two tensors combined elementwise disagree in size along dimension {dim}: one has {a} there, the "
               f"other {b}, and only equal sizes (or 1) can be combined.")
    if abs(a - b) == 1:
        advice = (f"Sizes one apart ({min(a, b)} and {max(a, b)}) often mean a shift applied to one tensor and not to the "
                  "other: a sequence of T positions has T−1 once shifted, and every tensor combined with it (logits, "
                  f"labels, mask) must have those T−1. Otherwise, {_BROADCAST} {_PRINT_SHAPES}")
    else:
        advice = f"{_BROADCAST[0].upper()}{_BROADCAST[1:]} {_PRINT_SHAPES}"
    return CrashCause("shape", problem, f"equal sizes along dimension {dim}", advice)


def _matmul(m: re.Match) -> CrashCause:
    rows, inner_a, inner_b, cols = m[1], m[2], m[3], m[4]
    return CrashCause(
        "shape",
        f"A matrix product got operands of shapes ({rows}×{inner_a}) and ({inner_b}×{cols}): the inner sizes, "
        f"{inner_a} and {inner_b}, must be equal.",
        f"equal inner sizes (got {inner_a} and {inner_b})",
        "Likely mistake: a weight used the wrong way round (a `.T` missing or one too many) or the operands in the "
        f"wrong order; the exercise's text gives each weight's shape. {_PRINT_SHAPES}")


def _gather_size(m: re.Match) -> CrashCause:
    dim, index, values = m[1], [int(n) for n in m[2].split(",")], [int(n) for n in m[3].split(",")]
    d = int(dim)
    i, s = (index[d], values[d]) if d < min(len(index), len(values)) else (None, None)
    along = f": along dimension {dim} the index has {i} positions and the values only {s}" if i is not None else ""
    problem = f"`gather` got an index of shape {tuple(index)} for values of shape {tuple(values)}{along}."
    if i is not None and i - s == 1:
        advice = ("An index one position longer usually means the values (the logits) were shifted by one and the "
                  "labels were not, or the other way round: after the shift both cover T−1 positions.")
    else:
        advice = ("Outside the dimension it gathers along, an index must be no larger than the values it reads: print "
                  "both `.shape`s on the line named.")
    return CrashCause("shape", problem, f"an index no larger than the values along dimension {dim}", advice)


def _gather_dims(m: re.Match) -> CrashCause:
    return CrashCause(
        "shape", "`gather` got an index with a different number of dimensions from the values it reads.",
        "an index with as many dimensions as the values",
        "Likely mistake: a missing axis. To pick one entry of the last dimension at each position, a (B, T) index "
        "into (B, T, V) values needs a trailing axis of size 1 (an `unsqueeze`), removed again afterwards.")


def _index_range(m: re.Match) -> CrashCause:
    index, dim, size = int(m[1]), m[2], int(m[3])
    problem = (f"An index of {index} was used along dimension {dim}, which has size {size} (valid indices run from 0 "
               f"to {size - 1}, or from −{size} to −1).")
    if index in (size, -size - 1):
        advice = ("One past the end usually means an off-by-one: a loop or a shift that runs one step too far (a "
                  "sequence of T positions has T−1 once shifted).")
    else:
        advice = ("Check which tensor indexes which dimension on the line named: token ids index the vocabulary, the "
                  "last dimension of the logits.")
    return CrashCause("shape", problem, f"indices from 0 to {size - 1} along dimension {dim}", advice)


def _dim_range(m: re.Match) -> CrashCause:
    low, high, asked = m[1], m[2], m[3]
    return CrashCause(
        "shape",
        f"Dimension {asked} was asked of a tensor whose dimensions run from {low} to {high}: it has fewer dimensions "
        "than the code assumes.",
        f"a dimension from {low} to {high}",
        "Likely mistake: an axis was removed earlier (a `.sum()` or `.mean()` without `keepdim`, an index such as "
        "`x[:, 0]`), or a per-row tensor is missing an axis (an `unsqueeze`). Print the tensor's `.shape` on the line "
        "named.")


def _reshape(m: re.Match) -> CrashCause:
    shape, size = m[1], int(m[2])
    sizes = [int(n) for n in shape.split(",") if n.strip()]
    wanted = math.prod(sizes) if all(n >= 0 for n in sizes) else None
    holds = f" ({wanted} elements)" if wanted is not None else ""
    return CrashCause(
        "shape", f"A `view` or `reshape` to [{shape}]{holds} was asked of a tensor of {size} elements, which does not fit.",
        f"a tensor of {wanted} elements" if wanted is not None else f"a shape that {size} elements fill",
        "Print the tensor's `.shape` just before: it is not the size the code assumes (for example, after a shift a "
        "sequence has T−1 positions, not T).")


_JOIN_ADVICE = "Print the `.shape` of each tensor joined: one of them is shifted, padded or reduced differently from the others."


def _cat(m: re.Match) -> CrashCause:
    dim, want, got, number = m[1], m[2], m[3], m[4]
    return CrashCause(
        "shape",
        f"The tensors joined by `torch.cat` along dimension {dim} must agree in every other dimension, but tensor "
        f"number {number} has size {got} where {want} was expected.",
        f"size {want} in every dimension but {dim}", _JOIN_ADVICE)


def _stack(m: re.Match) -> CrashCause:
    return CrashCause("shape", f"`torch.stack` needs tensors of one shape, but got [{m[1]}] at entry {m[2]} and "
                               f"[{m[3]}] at entry {m[4]}.", "tensors of one shape", _JOIN_ADVICE)


def _mixed_dtypes(words: list[str]) -> CrashCause | None:
    dtypes = list(dict.fromkeys(_dtype(w) for w in words))
    if len(dtypes) < 2:
        return None
    listed = " and ".join(dtypes) if len(dtypes) == 2 else ", ".join(dtypes[:-1]) + f" and {dtypes[-1]}"
    return CrashCause("dtype", f"An operation was given tensors of dtypes {listed}, and its operands must share one dtype.",
                      "operands of one dtype", _pair_advice(dtypes[0], dtypes[1]))


def _scalar_type(m: re.Match) -> CrashCause:
    want, got = _dtype(m[1]), _dtype(m[2])
    return CrashCause("dtype", f"An operation needed {_a(want)} tensor and was given {_a(got)} one (its operands must "
                               "share one dtype).", f"{_a(want)} tensor", _pair_advice(want, got))


def _target_dtype(m: re.Match) -> CrashCause:
    want, got = _dtype(m[1]), _dtype(m[2])
    advice = _INDEX_ADVICE if want in _INTEGERS else _pair_advice(want, got)
    return CrashCause("dtype", f"The operation needed {_a(want)} tensor and was given {_a(got)} one.", f"{_a(want)} tensor", advice)


def _cast(m: re.Match) -> CrashCause:
    result, into = _dtype(m[1]), _dtype(m[2])
    advice = (f"The tensor being updated was created as {into} (from a mask or ids, or `zeros_like` of one): create it "
              "with the dtype of the values written into it (`dtype=`).")
    return CrashCause("dtype", f"{_a(result).capitalize()} result cannot be written in place (`+=`, an in-place method, `out=`) into "
                               f"{_a(into)} tensor.", f"{_a(result)} tensor to hold the result", advice)


def _bool_mask(m: re.Match) -> CrashCause:
    return CrashCause("dtype", f"`masked_fill` needs a bool mask and was given {_a(_dtype(m[1]))} one.", "a bool mask",
                      "Turn the 0/1 mask into booleans first (a comparison such as `mask == 0`, or `.bool()`), and check "
                      "which positions it selects.")


def _name(m: re.Match) -> CrashCause:
    name = m[1]
    if name in _IMPORTS:
        advice = (f"`{name}` comes from an import (`{_IMPORTS[name]}`): run the notebook's import cell, or add the "
                  "import above your function.")
    else:
        advice = (f"Likely cause: the cell above that defines `{name}` (or a helper of your own) was not run in this "
                  f"kernel (after a restart, run the cells above this one in order: Run All Above), or `{name}` is "
                  "spelled differently where it is defined.")
    return CrashCause("name", f"`{name}` is not defined in this kernel: your function uses that name, but nothing run "
                              "so far defines it.", f"{name} defined when the check runs", advice)


def _unbound(m: re.Match) -> CrashCause:
    name = m[1] or m[2]
    return CrashCause(
        "unbound local", f"`{name}` is read in your function before it is assigned there.",
        f"{name} assigned before it is read",
        "A name that a function assigns anywhere in its body is local throughout it, even above the assignment: "
        f"assign `{name}` before its first use, or give the local its own name if you meant an outer `{name}`.")


_N = r"(-?\d+)"
#: (the exception types it applies to, None for any but a NotImplementedError; a pattern on the message's first
#: line; what it means). torch raises most as RuntimeError, some as IndexError, TypeError or NotImplementedError.
_CRASHES: list[tuple[frozenset[str] | None, re.Pattern, Any]] = [
    (None, re.compile(r"does not require grad and does not have a grad_fn"), _no_grad),
    (None, re.compile(rf"The size of tensor a \({_N}\) must match the size of tensor b \({_N}\) at non-singleton "
                      rf"dimension {_N}"), _elementwise),
    (None, re.compile(r"mat1 and mat2 shapes cannot be multiplied \((\d+)x(\d+) and (\d+)x(\d+)\)"), _matmul),
    (None, re.compile(r"Size does not match at dimension (\d+) expected index \[([\d, ]+)\] to be (?:smaller than|no "
                      r"larger than) self \[([\d, ]+)\]"), _gather_size),
    (None, re.compile(r"Index tensor must have the same number of dimensions as input tensor"), _gather_dims),
    (None, re.compile(rf"index {_N} is out of bounds for dimension (\d+) with size (\d+)"), _index_range),
    (None, re.compile(rf"Dimension out of range \(expected to be in range of \[{_N}, {_N}\], but got {_N}\)"), _dim_range),
    (None, re.compile(r"shape '\[([-\d, ]*)\]' is invalid for input of size (\d+)"), _reshape),
    (None, re.compile(r"Sizes of tensors must match except in dimension (\d+)\. Expected size (\d+) but got size (\d+) "
                      r"for tensor number (\d+)"), _cat),
    (None, re.compile(r"stack expects each tensor to be equal size, but got \[([\d, ]*)\] at entry (\d+) and "
                      r"\[([\d, ]*)\] at entry (\d+)"), _stack),
    (None, re.compile(r"expected scalar type (\w+) but found (\w+)"), _scalar_type),
    (None, re.compile(r"expected target dtype to be (\w+)(?: or \w+)*, but got (\w+)"), _target_dtype),
    (None, re.compile(r"(?:must|to) have (?:the )?same dtype,? but (?:got|found):? ([\w ,!=]+)"),
     lambda m: _mixed_dtypes(_DTYPE_WORD.findall(m[1]))),
    (None, re.compile(r"^(\w+)\(\): Expected dtype [\w/ ]+ for index"), lambda m: _index_dtype(f"`{m[1]}`")),
    (None, re.compile(r"^one_hot is only applicable to index tensor"), lambda m: _index_dtype("`one_hot`")),
    (None, re.compile(r"tensors used as indices must be long, int, byte or bool tensors"),
     lambda m: _index_dtype("Indexing with a tensor")),
    (None, re.compile(r"Expected tensor for argument #\d+ '(\w+)' to have one of the following scalar types: [\w, ]+; "
                      r"but got torch\.(\w+) instead"), lambda m: _index_dtype(f"The argument `{m[1]}`", _dtype(m[2]))),
    (None, re.compile(r"result type (\w+) can't be cast to the desired output type (\w+)"), _cast),
    (None, re.compile(r"^mean\(\): could not infer output dtype\. Input dtype must be either a floating point or complex "
                      r"dtype\. Got: (\w+)"), lambda m: _float_needed(_dtype(m[1]), "`.mean()`")),
    (frozenset({"NotImplementedError", "RuntimeError"}), re.compile(r"^\"\w+\" not implemented for '(\w+)'$"),
     lambda m: _float_needed(_dtype(m[1]), "The operation on the line named")),
    (None, re.compile(r"only supports boolean masks, but got mask with dtype ([\w ]+)"), _bool_mask),
    (frozenset({"NameError"}), re.compile(r"^name '(\w+)' is not defined"), _name),
    (frozenset({"UnboundLocalError"}), re.compile(r"cannot access local variable '(\w+)'|local variable '(\w+)' "
                                                  r"referenced before assignment"), _unbound),
]


def crash_cause(kind: str, message: str) -> CrashCause | None:
    """The likely cause of an exception of type ``kind`` (its name) with ``message``, or None when it is
    none of the common ones (the verdict then stays generic).

    Read from an error record (:func:`~rlhf_core.checks.records.error_record`): plain data, so the grader
    reads the same causes outside the kernel. Only the message's first line is read, and only numbers,
    dtype names and identifiers are taken from it. A ``NotImplementedError`` is a cause only when it is
    torch's (``"…" not implemented for 'Long'``: a dtype), never a stub's."""
    text = str(message).strip()
    first = text.splitlines()[0][:1000] if text else ""   # a record is data: bound what the patterns read
    for kinds, pattern, meaning in _CRASHES:
        allowed = kind != "NotImplementedError" if kinds is None else kind in kinds
        if not allowed:
            continue
        match = pattern.search(first)
        if match:
            try:
                cause = meaning(match)
            except (ValueError, IndexError):  # a message cut short (a crash limit) in the middle of its numbers
                cause = None
            if cause is not None:
                return cause
    return None
