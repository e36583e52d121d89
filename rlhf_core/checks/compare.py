"""Comparing two probe records, value by value, within a check's tolerances."""

from __future__ import annotations

import math

import numpy as np

from .records import MAX_NUMBERS
from .verdicts import format_value

__all__ = ["is_numeric", "values_close", "entries_match", "outcomes_match", "first_difference", "first_unequal",
           "format_pair", "too_big", "is_finite"]


def first_unequal(got: dict, want: dict, rtol: float, atol: float) -> int | None:
    """The flat index of the first element where two same-shape numeric records differ."""
    if not (is_numeric(got) and is_numeric(want)) or got.get("shape") != want.get("shape"):
        return None
    for i, (x, y) in enumerate(zip(got["data"], want["data"])):
        if not values_close([x], [y], rtol, atol):
            return i
    return None


def format_pair(want: dict, got: dict, rtol: float, atol: float, limit: int = 6) -> tuple[str, str]:
    """Expected and got as text; when the first ``limit`` numbers agree, both start just before the
    first difference, and ``got`` says at which index (so the two never read alike)."""
    index = first_unequal(got, want, rtol, atol)
    if index is None or index < limit:
        return format_value(want, limit), format_value(got, limit)
    shape = tuple(want["shape"])
    position = tuple(int(i) for i in np.unravel_index(index, shape)) if shape else ()
    start = index - 1
    return (format_value(want, limit, start),
            f"{format_value(got, limit, start)}, first differing at index {position}")


def is_numeric(entry: dict) -> bool:
    return entry.get("kind") in ("tensor", "number", "bool") and entry.get("data") is not None


def values_close(a: list[float], b: list[float], rtol: float, atol: float) -> bool:
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


def entries_match(got: dict, want: dict, rtol: float, atol: float) -> bool:
    """Same value up to tolerance; numbers and 0-dim tensors compare by value, not by kind."""
    if is_numeric(got) and is_numeric(want):
        if tuple(got.get("shape", [])) != tuple(want.get("shape", [])):
            return False
        return values_close(got["data"], want["data"], rtol, atol)
    if got.get("kind") != want.get("kind"):
        return False
    if got.get("kind") == "str":
        return got["text"] == want["text"]
    return got == want


def outcomes_match(got: dict, want: dict, rtol: float, atol: float) -> bool:
    """Whether two case outcomes agree on every key of ``want`` (errors agree with nothing)."""
    return bool(got.get("ok") and want.get("ok")) and first_difference(got, want, rtol, atol) is None


def first_difference(got: dict, want: dict, rtol: float, atol: float) -> str | None:
    for key, want_entry in want["values"].items():
        got_entry = got["values"].get(key)
        if got_entry is None or not entries_match(got_entry, want_entry, rtol, atol):
            return key
    return None


def too_big(entry: dict) -> bool:
    """A tensor recorded without its numbers only because it has too many (its shape still counts)."""
    return (entry.get("kind") == "tensor" and entry.get("data") is None and not str(entry.get("dtype")).startswith("complex")
            and math.prod(entry.get("shape") or [0]) > MAX_NUMBERS)


def is_finite(entry: dict) -> bool:
    return all(math.isfinite(x) for x in entry.get("data") or [])
