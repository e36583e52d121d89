"""The checks of lesson 05 — the tiny transformer's parts: ``rms_norm``, ``swiglu`` and ``apply_rope``."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..model import LIBRARY_PARTS, rope_angles
from .cases import fn_case
from .framework import Case, Exercise, Mistake, register


def _norm_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    x, w = torch.randn(2, 5, 16, generator=g) * 3 + 1, torch.rand(16, generator=g) + 0.5
    tiny = torch.randn(3, 8, generator=g) * 1e-4
    return [
        fn_case("x of shape (2, 5, 16) with a learned weight", (x, w), {"eps": 1e-6}, grad=("arg0",)),
        fn_case("a tiny x (~1e-4), where eps matters, eps = 1e-6", (tiny, torch.ones(8)), {"eps": 1e-6}),
        fn_case("eps = 0.1", (x[0], w), {"eps": 0.1}),
    ]


def _rms_layernorm(x, weight, eps=1e-6):
    xc = x - x.mean(-1, keepdim=True)
    return xc / torch.sqrt(xc.pow(2).mean(-1, keepdim=True) + eps) * weight


def _rms_eps_outside(x, weight, eps=1e-6):
    return x / (x.pow(2).mean(-1, keepdim=True).sqrt() + eps) * weight


def _rms_no_weight(x, weight, eps=1e-6):
    return x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + eps)


def _rms_no_sqrt(x, weight, eps=1e-6):
    return x / (x.pow(2).mean(-1, keepdim=True) + eps) * weight


def _rms_l2(x, weight, eps=1e-6):
    return x / torch.sqrt(x.pow(2).sum(-1, keepdim=True) + eps) * weight


def _rms_wrong_axis(x, weight, eps=1e-6):
    return x / torch.sqrt(x.pow(2).mean(0, keepdim=True) + eps) * weight


register(Exercise(
    name="rms_norm",
    lesson=5,
    points=1,
    cases=_norm_cases,
    reference=LIBRARY_PARTS["rms_norm"],  # the library's own, immune to model.using_parts
    mistakes=[
        Mistake("You subtracted the mean: that is LayerNorm. RMSNorm only rescales by the root mean square.", _rms_layernorm),
        Mistake("eps is added after the square root; it goes inside: sqrt(mean(x²) + eps).", _rms_eps_outside),
        Mistake("The learned weight is not applied: multiply by weight at the end.", _rms_no_weight),
        Mistake("The square root is missing: divide by sqrt(mean(x²) + eps).", _rms_no_sqrt),
        Mistake("You divided by the L2 norm (a sum); RMS uses the mean of x² over the last axis.", _rms_l2),
        Mistake("Normalised over the wrong axis: the mean of x² is over the last (feature) axis.", _rms_wrong_axis),
    ],
    summary="rms_norm is x / sqrt(mean(x², -1) + eps) · weight, eps inside the root",
    formula="x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight",
    shape_hint=lambda e, g: "RMSNorm keeps the input's shape." if e != g else None,
))


def _swiglu_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    d, f = 8, 12
    weights = (torch.randn(f, d, generator=g) / 3, torch.randn(f, d, generator=g) / 3, torch.randn(d, f, generator=g) / 3)
    return [
        fn_case("x (2, 5, 8), hidden width 12", (torch.randn(2, 5, d, generator=g),) + weights, grad=("arg0",)),
        fn_case("x (3, 8) with large values", (torch.randn(3, d, generator=g) * 4,) + weights),
    ]


def _sw_silu_on_up(x, wg, wu, wd):
    return ((x @ wg.T) * F.silu(x @ wu.T)) @ wd.T


def _sw_gelu(x, wg, wu, wd):
    return (F.gelu(x @ wg.T) * (x @ wu.T)) @ wd.T


def _sw_relu(x, wg, wu, wd):
    return (F.relu(x @ wg.T) * (x @ wu.T)) @ wd.T


def _sw_sigmoid(x, wg, wu, wd):
    return (torch.sigmoid(x @ wg.T) * (x @ wu.T)) @ wd.T


def _sw_no_gate(x, wg, wu, wd):
    return F.silu(x @ wu.T) @ wd.T


def _sw_sum(x, wg, wu, wd):
    return (F.silu(x @ wg.T) + (x @ wu.T)) @ wd.T


register(Exercise(
    name="swiglu",
    lesson=5,
    points=2,
    cases=_swiglu_cases,
    reference=LIBRARY_PARTS["swiglu"],  # the library's own, immune to model.using_parts
    mistakes=[
        Mistake("SiLU is applied to the up branch; it goes on the gate: silu(x W_gateᵀ) ⊙ (x W_upᵀ).", _sw_silu_on_up),
        Mistake("That is GEGLU (gelu); SwiGLU uses SiLU (x·sigmoid(x)) on the gate.", _sw_gelu),
        Mistake("That is ReGLU (relu); SwiGLU uses SiLU (x·sigmoid(x)) on the gate.", _sw_relu),
        Mistake("That is GLU (sigmoid gate); SwiGLU uses SiLU, x·sigmoid(x), on the gate.", _sw_sigmoid),
        Mistake("The gate branch is missing: multiply silu(x W_gateᵀ) by the up projection x W_upᵀ.", _sw_no_gate),
        Mistake("The two branches are added; SwiGLU multiplies them elementwise.", _sw_sum),
    ],
    summary="swiglu is (silu(x W_gateᵀ) ⊙ x W_upᵀ) W_downᵀ",
    formula="(F.silu(x @ w_gate.T) * (x @ w_up.T)) @ w_down.T   (weights in nn.Linear layout: (out, in))",
    shape_hint=lambda e, g: "the output has the input's shape (..., D): check the transposes (weights are (out, in))." if e != g else None,
))


def _rope_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    head_dim = 8
    cos, sin = rope_angles(torch.arange(5), head_dim)  # (5, 4)
    positions = torch.stack([torch.arange(5), torch.clamp(torch.arange(5) - 2, min=0)])  # a left-padded row
    bcos, bsin = rope_angles(positions, head_dim)  # (2, 5, 4)
    return [
        fn_case("q of shape (1, 2, 5, 8), positions 0…4", (torch.randn(1, 2, 5, head_dim, generator=g), cos, sin), grad=("arg0",)),
        fn_case("a batch of 2 with per-row positions, cos/sin (B, T, Dh/2)", (torch.randn(2, 3, 5, head_dim, generator=g), bcos, bsin)),
    ]


def _rope_broadcast(cos, sin, x):
    if cos.dim() == 3:  # (B, T, Dh/2) -> (B, 1, T, Dh/2)
        return cos[:, None], sin[:, None]
    return cos, sin


def _rope_interleaved(x, cos, sin):
    cos, sin = _rope_broadcast(cos, sin, x)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    out = torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], -1)
    return out.flatten(-2)


def _rope_wrong_way(x, cos, sin):
    cos, sin = _rope_broadcast(cos, sin, x)
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos + x2 * sin, -x1 * sin + x2 * cos], -1)


def _rope_swapped_trig(x, cos, sin):
    cos, sin = _rope_broadcast(cos, sin, x)
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * sin - x2 * cos, x1 * cos + x2 * sin], -1)


def _rope_identity(x, cos, sin):
    return x


def _rope_first_half_only(x, cos, sin):
    cos, sin = _rope_broadcast(cos, sin, x)
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x2], -1)


def _rope_halves_swapped(x, cos, sin):
    cos, sin = _rope_broadcast(cos, sin, x)
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * sin + x2 * cos, x1 * cos - x2 * sin], -1)


register(Exercise(
    name="apply_rope",
    lesson=5,
    points=3,
    cases=_rope_cases,
    reference=LIBRARY_PARTS["apply_rope"],  # the library's own, immune to model.using_parts
    mistakes=[
        Mistake("You paired adjacent dimensions (x[..., 0::2], x[..., 1::2]); this course uses the rotate-half convention: "
                "dimension i pairs with i + Dh/2.", _rope_interleaved),
        Mistake("The rotation goes the wrong way: first half x1·cos − x2·sin, second half x1·sin + x2·cos.", _rope_wrong_way),
        Mistake("cos and sin are swapped.", _rope_swapped_trig),
        Mistake("x comes back unchanged: the rotation is not applied.", _rope_identity),
        Mistake("Only the first half is rotated; the second half becomes x1·sin + x2·cos.", _rope_first_half_only),
        Mistake("The two halves are in the wrong order: cat([x1·cos − x2·sin, x1·sin + x2·cos], -1).", _rope_halves_swapped),
    ],
    summary="apply_rope rotates (x_i, x_{i+Dh/2}) by position·θ_i, per row positions included",
    formula="x1, x2 = x[..., :Dh/2], x[..., Dh/2:]; cat([x1·cos − x2·sin, x1·sin + x2·cos], -1) "
            "(cos/sin (T, Dh/2) broadcast over batch and heads; (B, T, Dh/2) needs a head axis: cos[:, None])",
    shape_hint=lambda e, g: "RoPE keeps the shape of x; insert the head axis into a (B, T, Dh/2) cos/sin (cos[:, None])." if e != g else None,
))
