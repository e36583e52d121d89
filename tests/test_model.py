"""Tests of rlhf_core.model: the building blocks against their formulas, masking and padding,
and KV-cached generation against a slow reference loop."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from rlhf_core.model import (
    ModelConfig,
    RMSNorm,
    SwiGLU,
    TinyLM,
    apply_rope,
    pick_device,
    rms_norm,
    rope_angles,
    swiglu,
)

V = 120


def small_model(seed: int = 0, dtype=torch.float32, peaked: bool = True, **overrides) -> TinyLM:
    """A small random model. ``peaked`` re-draws the weights with a larger std so that logits are
    far from uniform and greedy decoding has no near-ties."""
    torch.manual_seed(seed)
    cfg = dict(vocab_size=V, d_model=32, n_layers=2, n_heads=4, d_ff=64, max_seq_len=64)
    cfg.update(overrides)
    model = TinyLM(ModelConfig(**cfg))
    if peaked:
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "norm" not in name:
                    p.normal_(0.0, 0.3)
    return model.to(dtype).eval()


def ragged_prompts(lengths, seed=0, pad_id=0):
    """Left- and right-padded versions of the same ragged prompts (tokens drawn from 1..V-1)."""
    g = torch.Generator().manual_seed(seed)
    rows = [torch.randint(1, V, (n,), generator=g) for n in lengths]
    T = max(lengths)
    left = torch.full((len(rows), T), pad_id, dtype=torch.long)
    right = left.clone()
    left_mask = torch.zeros(len(rows), T, dtype=torch.long)
    right_mask = left_mask.clone()
    for i, r in enumerate(rows):
        n = len(r)
        left[i, T - n :], left_mask[i, T - n :] = r, 1
        right[i, :n], right_mask[i, :n] = r, 1
    return rows, (left, left_mask), (right, right_mask)


# ----------------------------------------------------------------------------- config and size


def test_parameter_count_at_defaults():
    model = TinyLM(ModelConfig(vocab_size=V))
    n = model.num_parameters()
    assert 300_000 <= n <= 600_000, n
    assert model.lm_head.weight is model.tok_emb.weight  # tied: counted once
    assert n == sum(p.numel() for p in model.parameters())
    assert model.num_parameters(exclude_embeddings=True) == n - V * 128


def test_untied_counts_head_separately():
    tied = TinyLM(ModelConfig(vocab_size=V))
    untied = TinyLM(ModelConfig(vocab_size=V, tie_embeddings=False))
    assert untied.num_parameters() == tied.num_parameters() + V * 128
    assert untied.num_parameters(exclude_embeddings=True) == tied.num_parameters(exclude_embeddings=True)


def test_config_round_trip_and_validation():
    cfg = ModelConfig(vocab_size=50, d_model=64, n_heads=2, rope_base=500.0)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    assert TinyLM.from_config_dict(cfg.to_dict()).config == cfg
    with pytest.raises(ValueError, match="unknown"):
        ModelConfig.from_dict({**cfg.to_dict(), "dropout": 0.1})
    with pytest.raises(ValueError):
        ModelConfig(vocab_size=10, d_model=30, n_heads=4)


def test_residual_projections_have_smaller_init():
    torch.manual_seed(0)
    model = TinyLM(ModelConfig(vocab_size=V, n_layers=8))
    expected = 0.02 / math.sqrt(16)
    assert model.blocks[0].attn.o_proj.weight.std().item() == pytest.approx(expected, rel=0.1)
    assert model.blocks[0].mlp.w_down.weight.std().item() == pytest.approx(expected, rel=0.1)
    assert model.blocks[0].attn.q_proj.weight.std().item() == pytest.approx(0.02, rel=0.1)


# ----------------------------------------------------------------------------- RMSNorm, SwiGLU


def test_rms_norm_matches_formula():
    torch.manual_seed(0)
    x, w = torch.randn(3, 5, 16), torch.randn(16)
    by_hand = x / torch.sqrt((x**2).mean(dim=-1, keepdim=True) + 1e-6) * w
    torch.testing.assert_close(rms_norm(x, w), by_hand)
    eps = 0.5  # a large eps must be inside the square root
    by_hand = x / torch.sqrt((x**2).mean(dim=-1, keepdim=True) + eps) * w
    torch.testing.assert_close(rms_norm(x, w, eps), by_hand)


def test_rms_norm_module_unit_rms_and_dtype():
    torch.manual_seed(0)
    norm = RMSNorm(16, eps=1e-8)
    assert torch.equal(norm.weight, torch.ones(16))
    y = norm(5 * torch.randn(4, 7, 16) + 3)
    rms = y.pow(2).mean(dim=-1).sqrt()
    torch.testing.assert_close(rms, torch.ones_like(rms), atol=1e-5, rtol=0)

    x64 = torch.randn(2, 16, dtype=torch.float64)
    y64 = norm(x64)
    assert y64.dtype == torch.float64
    torch.testing.assert_close(y64, x64 / torch.sqrt((x64**2).mean(-1, keepdim=True) + 1e-8))
    assert norm(torch.randn(2, 16).to(torch.bfloat16)).dtype == torch.bfloat16


def test_swiglu_matches_module_and_formula():
    torch.manual_seed(0)
    mlp = SwiGLU(16, 40)
    assert mlp.w_gate.weight.shape == (40, 16) and mlp.w_down.weight.shape == (16, 40)
    x = torch.randn(2, 3, 16)
    out = swiglu(x, mlp.w_gate.weight, mlp.w_up.weight, mlp.w_down.weight)
    assert out.shape == x.shape
    torch.testing.assert_close(mlp(x), out)
    a = x @ mlp.w_gate.weight.T
    by_hand = (a * torch.sigmoid(a) * (x @ mlp.w_up.weight.T)) @ mlp.w_down.weight.T
    torch.testing.assert_close(out, by_hand)


# ----------------------------------------------------------------------------- RoPE


def test_rope_angles_shapes_and_frequencies():
    cos, sin = rope_angles(torch.arange(5), 8, base=100.0)
    assert cos.shape == sin.shape == (5, 4)
    freqs = torch.tensor([100.0 ** (-2 * i / 8) for i in range(4)])
    torch.testing.assert_close(torch.atan2(sin[1], cos[1]), freqs)
    cos_b, _ = rope_angles(torch.arange(10).view(2, 5), 8)
    assert cos_b.shape == (2, 5, 4)


def test_rope_preserves_pair_norms():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 6, 8)
    cos, sin = rope_angles(torch.arange(6) * 7, 8)
    y = apply_rope(x, cos, sin)
    assert y.shape == x.shape and y.dtype == x.dtype
    pair_norm = lambda t: t[..., :4] ** 2 + t[..., 4:] ** 2  # noqa: E731 - (x1_i, x2_i) pairs
    torch.testing.assert_close(pair_norm(y), pair_norm(x))
    assert not torch.allclose(y[:, :, 1:], x[:, :, 1:])  # it does rotate


def test_rope_rotate_half_convention():
    x = torch.zeros(1, 1, 1, 4)
    x[..., 0] = 1.0  # unit vector on the first dimension of the first pair (dims 0 and 2)
    cos, sin = rope_angles(torch.tensor([1]), 4, base=10000.0)  # angle of pair 0 is 1 radian
    y = apply_rope(x, cos, sin)
    expected = torch.tensor([math.cos(1.0), 0.0, math.sin(1.0), 0.0]).view(1, 1, 1, 4)
    torch.testing.assert_close(y, expected)


def test_rope_position_zero_is_identity():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 4, 8, dtype=torch.float64)
    cos, sin = rope_angles(torch.zeros(4, dtype=torch.long), 8)
    y = apply_rope(x, cos, sin)
    assert y.dtype == torch.float64
    torch.testing.assert_close(y, x)


def test_rope_dot_product_depends_only_on_offset():
    torch.manual_seed(0)
    q, k = torch.randn(1, 1, 1, 16), torch.randn(1, 1, 1, 16)

    def dot(m, n):
        cq, sq = rope_angles(torch.tensor([m]), 16)
        ck, sk = rope_angles(torch.tensor([n]), 16)
        return (apply_rope(q, cq, sq) * apply_rope(k, ck, sk)).sum().item()

    assert dot(5, 2) == pytest.approx(dot(13, 10), abs=1e-4)
    assert dot(7, 0) == pytest.approx(dot(40, 33), abs=1e-4)
    assert dot(3, 3) == pytest.approx((q * k).sum().item(), abs=1e-5)
    assert dot(5, 2) != pytest.approx(dot(5, 4), abs=1e-3)  # but it does depend on the offset


def test_rope_batched_angles_match_shared_angles():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 5, 8)
    cos, sin = rope_angles(torch.arange(5), 8)  # (T, Dh/2)
    cos_b, sin_b = rope_angles(torch.stack([torch.arange(5), torch.arange(5) + 3]), 8)  # (B, T, Dh/2)
    y_b = apply_rope(x, cos_b, sin_b)
    torch.testing.assert_close(y_b[:1], apply_rope(x[:1], cos, sin))
    cos3, sin3 = rope_angles(torch.arange(5) + 3, 8)
    torch.testing.assert_close(y_b[1:], apply_rope(x[1:], cos3, sin3))


# ----------------------------------------------------------------------------- forward: causality, padding


def test_forward_shape_and_causality():
    model = small_model()
    torch.manual_seed(1)
    ids = torch.randint(0, V, (3, 12))
    logits = model(ids)
    assert logits.shape == (3, 12, V)
    for t in (0, 5, 11):
        changed = ids.clone()
        changed[:, t] = (changed[:, t] + 1) % V
        new = model(changed)
        torch.testing.assert_close(new[:, :t], logits[:, :t], atol=1e-6, rtol=0)
        assert not torch.allclose(new[:, t], logits[:, t])


def test_padding_does_not_change_real_logits():
    model = small_model()
    rows, (left, left_mask), (right, right_mask) = ragged_prompts([9, 4, 1, 6], seed=3, pad_id=7)
    T = left.shape[1]
    logits_left = model(left, left_mask)
    logits_right = model(right, right_mask)
    for i, r in enumerate(rows):
        n = len(r)
        alone = model(r[None])[0]  # (n, V)
        torch.testing.assert_close(logits_left[i, T - n :], alone, atol=1e-5, rtol=0)
        torch.testing.assert_close(logits_right[i, :n], alone, atol=1e-5, rtol=0)
    assert torch.isfinite(logits_left).all() and torch.isfinite(logits_right).all()


def test_pad_token_value_is_irrelevant_and_no_nan_with_pad_everywhere():
    model = small_model()
    _, (left, mask), _ = ragged_prompts([5, 2, 3], seed=4, pad_id=0)
    other = torch.where(mask.bool(), left, torch.full_like(left, 99))
    real = mask.bool()
    torch.testing.assert_close(model(left, mask)[real], model(other, mask)[real])
    all_pad = model(left, torch.zeros_like(mask))  # degenerate, but must stay finite
    assert torch.isfinite(all_pad).all()


def test_attention_mask_is_causal_key_padded_and_never_empty():
    # Recent CPU kernels return 0 for an all-masked query row, older ones and other backends NaN,
    # so check the mask itself: every query may attend to itself, even a padding query.
    mask = torch.tensor([[0, 0, 1, 1], [1, 1, 1, 0]])
    positions, allowed = TinyLM._prefix_mask(mask, 4, torch.device("cpu"))
    assert positions.tolist() == [[0, 0, 0, 1], [0, 1, 2, 2]]
    assert allowed.shape == (2, 1, 4, 4)
    expected_row0 = torch.tensor(
        [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 1, 1]], dtype=torch.bool
    )  # pad queries see only themselves; real queries see real keys up to themselves
    assert torch.equal(allowed[0, 0], expected_row0)
    expected_row1 = torch.tensor(
        [[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]], dtype=torch.bool
    )
    assert torch.equal(allowed[1, 0], expected_row1)


def test_max_seq_len_error():
    model = small_model(max_seq_len=16)
    model(torch.zeros(1, 16, dtype=torch.long))  # exactly at the limit is fine
    with pytest.raises(ValueError, match="exceeds max_seq_len=16"):
        model(torch.zeros(1, 17, dtype=torch.long))
    with pytest.raises(ValueError, match="exceeds max_seq_len=16"):
        model.generate(torch.ones(1, 10, dtype=torch.long), max_new_tokens=8)
    assert model.generate(torch.ones(1, 10, dtype=torch.long), max_new_tokens=7, temperature=0).shape == (1, 7)


# ----------------------------------------------------------------------------- generate


def slow_greedy(model, ids, mask, n_new):
    """Reference decoder: re-run the full forward on the growing left-padded sequence."""
    if mask is None:
        mask = torch.ones_like(ids)
    out = []
    for _ in range(n_new):
        tok = model(ids, mask)[:, -1].argmax(dim=-1)  # (B,)
        out.append(tok)
        ids = torch.cat([ids, tok[:, None]], dim=1)
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
    return torch.stack(out, dim=1)


@pytest.mark.parametrize("training", [False, True])
def test_greedy_kv_cache_matches_slow_loop(training):
    model = small_model(dtype=torch.float64)
    model.train(training)
    _, (left, mask), (right, right_mask) = ragged_prompts([7, 3, 1, 5, 7], seed=5)
    expected = slow_greedy(model, left, mask, 12)
    got = model.generate(left, mask, max_new_tokens=12, temperature=0)
    assert model.training is training  # mode restored
    assert got.shape == (5, 12) and got.dtype == torch.long
    assert torch.equal(got, expected)
    assert len(set(expected.flatten().tolist())) > 3  # not a degenerate constant output
    assert torch.equal(model.generate(right, right_mask, max_new_tokens=12, temperature=0), expected)


def test_right_padded_sampling_equals_left_padded():
    model = small_model(dtype=torch.float64)
    _, (left, mask), (right, right_mask) = ragged_prompts([2, 6, 4], seed=6)
    a = model.generate(left, mask, max_new_tokens=10, generator=torch.Generator().manual_seed(0))
    b = model.generate(right, right_mask, max_new_tokens=10, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b)


def test_unmasked_prompt_is_all_real():
    model = small_model(dtype=torch.float64)
    ids = torch.randint(1, V, (3, 4), generator=torch.Generator().manual_seed(0))
    assert torch.equal(model.generate(ids, max_new_tokens=5, temperature=0), slow_greedy(model, ids, None, 5))


def test_eos_truncates_rows_and_pads_after():
    model = small_model(dtype=torch.float64)
    _, (left, mask), _ = ragged_prompts([4, 6, 2, 5], seed=7)
    free = model.generate(left, mask, max_new_tokens=10, temperature=0)  # no EOS
    eos, pad = int(free[0, 2]), 119
    first = [(row == eos).nonzero()[0, 0].item() if (row == eos).any() else None for row in free]
    got = model.generate(left, mask, max_new_tokens=10, temperature=0, eos_id=eos, pad_id=pad)
    n = 10 if any(f is None for f in first) else max(first) + 1
    assert got.shape == (4, n)
    for i, f in enumerate(first):
        if f is None:
            assert torch.equal(got[i], free[i, :n])
        else:
            assert torch.equal(got[i, : f + 1], free[i, : f + 1])  # EOS included
            assert (got[i, f + 1 :] == pad).all()


def test_forced_eos_stops_early_and_per_row():
    model = small_model()
    eos, pad = 5, 0
    ids = torch.randint(1, V, (3, 4), generator=torch.Generator().manual_seed(0))

    bias = torch.zeros(3, 1, V)
    bias[:, :, eos] = 1e4  # every row: EOS is the argmax from the first step
    hook = model.lm_head.register_forward_hook(lambda mod, inp, out: out + bias)
    got = model.generate(ids, max_new_tokens=8, temperature=0, eos_id=eos, pad_id=pad)
    assert torch.equal(got, torch.full((3, 1), eos))  # stopped after one step
    hook.remove()

    bias = torch.zeros(3, 1, V)
    bias[1, :, eos] = 1e4  # only row 1 is forced; the others sample freely
    model.lm_head.register_forward_hook(lambda mod, inp, out: out + bias)
    got = model.generate(ids, max_new_tokens=8, temperature=1.0, eos_id=eos, pad_id=pad,
                         generator=torch.Generator().manual_seed(0))
    assert got.shape[1] > 1
    assert got[1, 0] == eos and (got[1, 1:] == pad).all()


def test_top_k_one_equals_greedy():
    model = small_model()
    _, (left, mask), _ = ragged_prompts([3, 5, 1], seed=8)
    greedy = model.generate(left, mask, max_new_tokens=8, temperature=0)
    top1 = model.generate(left, mask, max_new_tokens=8, temperature=1.3, top_k=1,
                          generator=torch.Generator().manual_seed(1))
    assert torch.equal(top1, greedy)


def test_seeded_sampling_is_reproducible():
    model = small_model(peaked=False)  # near-uniform logits: samples vary a lot
    ids = torch.randint(1, V, (6, 3), generator=torch.Generator().manual_seed(0))
    a = model.generate(ids, max_new_tokens=10, generator=torch.Generator().manual_seed(123))
    b = model.generate(ids, max_new_tokens=10, generator=torch.Generator().manual_seed(123))
    c = model.generate(ids, max_new_tokens=10, generator=torch.Generator().manual_seed(124))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("temperature, top_k", [(1.0, None), (0.7, None), (1.0, 3)])
def test_sampling_distribution_matches_softmax(temperature, top_k):
    torch.manual_seed(0)
    model = TinyLM(ModelConfig(vocab_size=6, d_model=16, n_layers=1, n_heads=2, d_ff=32)).eval()
    with torch.no_grad():
        model.tok_emb.weight.normal_(0.0, 0.5)  # a spread-out but not degenerate distribution
    prompt = torch.tensor([[1, 2, 3]])
    logits = model(prompt)[0, -1] / temperature
    if top_k is not None:
        logits[logits < logits.topk(top_k).values[-1]] = float("-inf")
    probs = F.softmax(logits, dim=-1)
    n = 20_000
    samples = model.generate(prompt.expand(n, -1), max_new_tokens=1, temperature=temperature, top_k=top_k,
                             generator=torch.Generator().manual_seed(0))
    assert samples.shape == (n, 1)
    counts = torch.bincount(samples[:, 0], minlength=6).double()
    expected = probs.double() * n
    if top_k is not None:
        assert counts[expected == 0].sum() == 0  # nothing outside the top k
    keep = expected > 0
    chi2 = (((counts - expected)[keep]) ** 2 / expected[keep]).sum().item()
    # df <= 5; P(chi2 > 25) < 2e-4 under the null, and the seed is fixed.
    assert chi2 < 25, (chi2, counts, expected)


def test_generate_rejects_empty_prompt_and_zero_tokens():
    model = small_model()
    ids = torch.ones(2, 3, dtype=torch.long)
    with pytest.raises(ValueError, match="at least one real token"):
        model.generate(ids, torch.tensor([[1, 1, 1], [0, 0, 0]]))
    assert model.generate(ids, max_new_tokens=0).shape == (2, 0)
    with pytest.raises(ValueError, match="temperature"):
        model.generate(ids, temperature=-1.0)
    with pytest.raises(ValueError, match="top_k"):
        model.generate(ids, top_k=0)


# ----------------------------------------------------------------------------- devices


def test_pick_device_cpu_and_errors():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device().type in {"cpu", "cuda", "mps"}
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            pick_device("cuda")


def _accelerator() -> torch.device | None:
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return None


@pytest.mark.gpu
def test_gpu_matches_cpu():
    device = _accelerator()
    if device is None:
        pytest.skip("needs a CUDA or MPS device; none is available")
    assert pick_device() == device or pick_device().type == device.type
    model = small_model()
    _, (left, mask), _ = ragged_prompts([6, 2, 4], seed=9)
    cpu_logits = model(left, mask)
    cpu_greedy = model.generate(left, mask, max_new_tokens=10, temperature=0)
    model.to(device)
    dev_logits = model(left.to(device), mask.to(device))
    dev_greedy = model.generate(left.to(device), mask.to(device), max_new_tokens=10, temperature=0)
    assert dev_logits.device.type == device.type and dev_greedy.device.type == device.type
    torch.testing.assert_close(dev_logits.cpu(), cpu_logits, atol=1e-3, rtol=1e-3)
    assert torch.equal(dev_greedy.cpu(), cpu_greedy)
    g = torch.Generator(device=device).manual_seed(0)
    sampled = model.generate(left.to(device), mask.to(device), max_new_tokens=10, generator=g)
    assert sampled.shape == (3, 10) and sampled.device.type == device.type
