"""Building blocks the lessons' cases share: a case that calls a function on fresh inputs, seeded
random inputs, a tiny transformer with ragged batches, and the shape hints of a reduction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from .framework import Case


def fn_case(name: str, args: tuple, kwargs: dict | None = None, grad: tuple[str, ...] = ()) -> Case:
    """A case that calls ``fn(*args, **kwargs)`` on fresh copies of the inputs.

    ``grad`` names positional arguments (``"arg0"``…) whose gradient of ``out.sum()`` is recorded
    too, so a result that is cut off from autograd is caught.
    """
    kwargs = kwargs or {}

    def run(fn: Callable) -> dict[str, Any]:
        fresh = [a.detach().clone() if isinstance(a, Tensor) else a for a in args]
        for i, a in enumerate(fresh):
            if f"arg{i}" in grad:
                a.requires_grad_(True)
        out = fn(*fresh, **kwargs)
        values: dict[str, Any] = {"out": out}
        if grad:
            if isinstance(out, Tensor) and out.requires_grad:
                out.sum().backward()
            for i, a in enumerate(fresh):
                if f"arg{i}" in grad:
                    values[f"gradient wrt argument {i + 1}"] = a.grad
        return values

    return Case(name, run)


def reduction_hint(what: str) -> Callable[[tuple, tuple], str | None]:
    """The shape hint of a function that reduces over its last axis (``what`` names the result)."""

    def hint(expected: tuple, got: tuple) -> str | None:
        if expected == () and len(got) == 1:
            return f"{what[0].upper() + what[1:]} must be one number for the whole batch: did you forget .mean()?"
        if expected == () and len(got) == 2:
            return "A (B, B) result means a (B,) tensor was broadcast against a (B, 1) one: keep every input (B,)."
        if len(got) == len(expected) + 1:
            return "There is an extra axis: a reduction (.sum(-1) / .mean(-1)) is missing."
        if len(got) + 1 == len(expected) or got == ():
            return "An axis is missing: you reduced over one axis too many (keep one value per row)."
        return None

    return hint


def policy_logprobs(g: torch.Generator, *shape: int, temperature: float = 1.0) -> Tensor:
    """Random log-probs over the last axis."""
    return torch.log_softmax(torch.randn(*shape, generator=g) * temperature, dim=-1)


def seq_logps(g: torch.Generator, n: int, dtype=torch.float32) -> Tensor:
    """``n`` summed sequence log-probs between -40 and -5."""
    return -(torch.rand(n, generator=g, dtype=torch.float64) * 35 + 5).to(dtype)


def tiny_model(seed: int):
    """A one-layer TinyLM with a 12-word vocabulary, initialised from ``seed``."""
    from ..model import ModelConfig, TinyLM

    torch.manual_seed(seed)
    return TinyLM(ModelConfig(vocab_size=12, d_model=16, n_layers=1, n_heads=2, d_ff=32, max_seq_len=24))


def tiny_rows(g: torch.Generator, batch: int, length: int, vocab: int = 12) -> tuple[Tensor, Tensor, Tensor]:
    """Right-padded ``[BOS] prompt response EOS`` rows with ragged lengths: ids, attention and response masks."""
    ids = torch.zeros(batch, length, dtype=torch.long)
    attention = torch.zeros(batch, length, dtype=torch.long)
    response = torch.zeros(batch, length, dtype=torch.long)
    for b in range(batch):
        prompt_len = int(torch.randint(2, 5, (1,), generator=g))
        resp_len = int(torch.randint(2, length - prompt_len + 1, (1,), generator=g))
        ids[b, : prompt_len + resp_len] = torch.randint(3, vocab, (prompt_len + resp_len,), generator=g)
        ids[b, 0], ids[b, prompt_len + resp_len - 1] = 1, 2  # BOS, EOS
        attention[b, : prompt_len + resp_len] = 1
        response[b, prompt_len: prompt_len + resp_len] = 1
    return ids, attention, response


def flat_params(model) -> Tensor:
    """All of ``model``'s parameters, flattened into one detached copy."""
    return torch.cat([p.detach().flatten() for p in model.parameters()]).clone()
