"""check_rms_norm, check_swiglu, check_apply_rope (notebook 05), on learner-style wrong code."""

import pytest
import torch
import torch.nn.functional as F

from checkhelpers import assert_fails_with, assert_passes
from rlhf_core.checks import check_apply_rope, check_rms_norm, check_swiglu
from rlhf_core.model import apply_rope, rms_norm, swiglu


def test_pass_on_the_library(capsys):
    assert_passes(check_rms_norm, rms_norm, capsys)
    assert_passes(check_swiglu, swiglu, capsys)
    assert_passes(check_apply_rope, apply_rope, capsys)


@pytest.mark.parametrize("impl, fragments", [
    (lambda x, w, eps=1e-6: F.layer_norm(x, x.shape[-1:]) * w, ["LayerNorm"]),
    (lambda x, w, eps=1e-6: x / (x.pow(2).mean(-1, keepdim=True).sqrt() + eps) * w, ["tiny x", "eps is added after"]),
    (lambda x, w, eps=1e-6: x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps), ["weight is not applied"]),
    (lambda x, w, eps=1e-6: x / x.norm(dim=-1, keepdim=True) * w, ["expected", "got"]),
    (lambda x, w, eps=1e-6: x * torch.rsqrt(x.pow(2).mean(0, keepdim=True) + eps) * w, ["wrong axis"]),
    (lambda x, w, eps=1e-6: x * torch.rsqrt(x.pow(2).mean(-1) + eps) * w, ["raised RuntimeError"]),
])
def test_rms_norm_mistakes(impl, fragments):
    assert_fails_with(check_rms_norm, impl, *fragments)


@pytest.mark.parametrize("impl, fragments", [
    (lambda x, g, u, d: (x @ g.T * F.silu(x @ u.T)) @ d.T, ["up branch"]),
    (lambda x, g, u, d: (F.gelu(x @ g.T) * (x @ u.T)) @ d.T, ["GEGLU"]),
    (lambda x, g, u, d: (torch.sigmoid(x @ g.T) * (x @ u.T)) @ d.T, ["GLU"]),
    (lambda x, g, u, d: F.silu(x @ g.T) @ d.T, ["expected", "got"]),
    (lambda x, g, u, d: (F.silu(x @ g) * (x @ u)) @ d, ["raised RuntimeError", "mat1 and mat2"]),
])
def test_swiglu_mistakes(impl, fragments):
    assert_fails_with(check_swiglu, impl, *fragments)


def _bc(c, s):
    return (c[:, None], s[:, None]) if c.dim() == 3 else (c, s)


def rope_interleaved(x, cos, sin):
    cos, sin = _bc(cos, sin)
    even, odd = x[..., ::2], x[..., 1::2]
    return torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1).reshape(x.shape)


def rope_reverse(x, cos, sin):
    cos, sin = _bc(cos, sin)
    a, b = x.chunk(2, dim=-1)
    return torch.cat((a * cos + b * sin, b * cos - a * sin), dim=-1)


def rope_no_head_axis(x, cos, sin):
    a, b = x.chunk(2, dim=-1)
    return torch.cat((a * cos - b * sin, a * sin + b * cos), dim=-1)


@pytest.mark.parametrize("impl, fragments", [
    (rope_interleaved, ["adjacent dimensions", "rotate-half"]),
    (rope_reverse, ["wrong way"]),
    (lambda x, cos, sin: x, ["unchanged"]),
    (rope_no_head_axis, ["per-row positions", "raised RuntimeError"]),
    (lambda x, cos, sin: x * cos.repeat(1, 2), ["expected", "got"]),
])
def test_apply_rope_mistakes(impl, fragments):
    assert_fails_with(check_apply_rope, impl, *fragments)


def test_checks_are_not_fooled_inside_using_parts():
    from rlhf_core.course.notebook import yours_or_reference
    from rlhf_core.model import using_parts

    zero = lambda x, w, eps=1e-6: x * 0
    with using_parts(rms_norm=zero):
        with pytest.raises(AssertionError):
            check_rms_norm(zero)
        assert yours_or_reference("rms_norm", zero) is not zero
