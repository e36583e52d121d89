"""Probe records: how a learner's value or exception becomes plain, JSON-able data.

:func:`serialise` and :func:`error_record` are the only ways a candidate's return value or exception
enters a record, here and in the sanity checks. Both read values with the types' own methods (never
the object's), so a lying subclass cannot fake a result.
"""

from __future__ import annotations

import math
import traceback
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["MAX_NUMBERS", "Missing", "type_name", "serialise", "plain_number", "error_record"]

MAX_NUMBERS = 10_000  # a returned tensor with more elements is recorded without its numbers


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
    it, and :func:`~rlhf_core.checks.verdicts.crash_cause` reads a common exception's likely cause
    from its first line); ``where`` is the innermost line of the learner's own code (``"line 3:
    return x @ w"``), not of a library; ``not_implemented`` whether it is a NotImplementedError.
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
