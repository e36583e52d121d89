"""A tiny decoder-only language model: the policy (and frozen reference) that DPO trains.

The architecture is a miniature LLaMA: token embeddings, ``n_layers`` pre-norm blocks of
causal multi-head self-attention with rotary position embeddings (RoPE) and a SwiGLU MLP,
RMSNorm everywhere, and an output head tied to the embedding matrix. At the defaults with a
vocabulary of 120 it has about 0.42M parameters, small enough to train on a laptop CPU.

Conventions used throughout:

* Shapes: ``B`` batch, ``T`` sequence length, ``D`` d_model, ``H`` heads, ``Dh = D // H`` head
  size, ``F`` SwiGLU hidden width, ``V`` vocabulary size.
* ``attention_mask`` is ``(B, T)`` with 1 for a real token and 0 for padding, on either side.
* ``logits[:, t]`` is the model's prediction for token ``t + 1``.
* Positions count real tokens only (``cumsum(mask) - 1``), so padding never shifts them.
* RoPE uses the "rotate-half" (GPT-NeoX / Hugging Face LLaMA) layout: the first half of each
  head vector is paired with the second half, not even with odd dimensions.
"""

from __future__ import annotations

import contextlib
import math
import sys
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

KVCache = list[tuple[Tensor, Tensor]]  # one (k, v) per layer, each (B, H, T, Dh)


# ----------------------------------------------------------------------------- config


@dataclass
class ModelConfig:
    """Hyper-parameters of :class:`TinyLM`. Round-trips through ``to_dict`` / ``from_dict``."""

    vocab_size: int
    d_model: int = 128
    n_layers: int = 2
    n_heads: int = 4
    d_ff: int = 352  # SwiGLU hidden width, about 8/3 * d_model
    max_seq_len: int = 64
    rope_base: float = 10000.0
    norm_eps: float = 1e-6
    tie_embeddings: bool = True

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads != 0:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")
        if (self.d_model // self.n_heads) % 2 != 0:
            raise ValueError(f"head size d_model // n_heads = {self.d_model // self.n_heads} must be even for RoPE")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown ModelConfig field(s): {unknown}")
        return cls(**d)


# ----------------------------------------------------------------------------- RMSNorm


def rms_norm(x: Tensor, weight: Tensor, eps: float = 1e-6) -> Tensor:
    """``x / sqrt(mean(x**2, -1) + eps) * weight`` over the last axis; x (..., D), weight (D,).

    Computed in at least float32 and cast back to ``x.dtype``.
    """
    dtype = x.dtype
    xf = x.to(torch.promote_types(dtype, torch.float32))
    inv_rms = torch.rsqrt(xf.pow(2).mean(dim=-1, keepdim=True) + eps)  # (..., 1)
    return (xf * inv_rms * weight.to(xf.dtype)).to(dtype)


class RMSNorm(nn.Module):
    """Root-mean-square layer norm (no mean subtraction, no bias) with a learned gain."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        return rms_norm(x, self.weight, self.eps)


# ----------------------------------------------------------------------------- SwiGLU


def swiglu(x: Tensor, w_gate: Tensor, w_up: Tensor, w_down: Tensor) -> Tensor:
    """SwiGLU MLP, weights in ``nn.Linear`` layout (out, in): w_gate, w_up (F, D), w_down (D, F).

    Returns ``(silu(x @ w_gate.T) * (x @ w_up.T)) @ w_down.T``.
    """
    gate = F.silu(F.linear(x, w_gate))  # (..., F)
    up = F.linear(x, w_up)  # (..., F)
    return F.linear(gate * up, w_down)  # (..., D)


class SwiGLU(nn.Module):
    """The position-wise feed-forward network of a block: D -> F (gated) -> D."""

    def __init__(self, d_model: int, d_ff: int):
        super().__init__()
        self.w_gate = nn.Linear(d_model, d_ff, bias=False)
        self.w_up = nn.Linear(d_model, d_ff, bias=False)
        self.w_down = nn.Linear(d_ff, d_model, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return swiglu(x, self.w_gate.weight, self.w_up.weight, self.w_down.weight)


# ----------------------------------------------------------------------------- RoPE


def rope_angles(positions: Tensor, head_dim: int, base: float = 10000.0) -> tuple[Tensor, Tensor]:
    """cos and sin of the rotary angles ``position * base ** (-2i / head_dim)``, i < head_dim // 2.

    positions: integer tensor (T,) or (B, T). Returns two float32 tensors of shape
    ``positions.shape + (head_dim // 2,)`` on ``positions.device``.
    """
    i = torch.arange(0, head_dim, 2, device=positions.device, dtype=torch.float32)  # (Dh/2,)
    inv_freq = base ** (-i / head_dim)  # (Dh/2,)
    angles = positions.to(torch.float32).unsqueeze(-1) * inv_freq  # (..., T, Dh/2)
    return angles.cos(), angles.sin()


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate query or key vectors by their positions' angles; keeps ``x.dtype``.

    Convention "rotate-half" (GPT-NeoX / Hugging Face LLaMA): dimension ``j`` of the first half
    is paired with dimension ``j + Dh/2`` of the second half, and each pair ``(x1, x2)`` is rotated
    by angle ``theta_j``: ``(x1*cos - x2*sin, x1*sin + x2*cos)``.

    x: (B, H, T, Dh); cos, sin: (T, Dh/2) or (B, T, Dh/2).
    """
    if cos.dim() == 3:
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)  # (B, 1, T, Dh/2), broadcasts over heads
    dtype = x.dtype
    work = torch.promote_types(dtype, torch.float32)
    xf, cos, sin = x.to(work), cos.to(work), sin.to(work)
    half = x.shape[-1] // 2
    x1, x2 = xf[..., :half], xf[..., half:]  # (B, H, T, Dh/2) each
    out = torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)  # (B, H, T, Dh)
    return out.to(dtype)


# ----------------------------------------------------------------------------- the transformer


#: The library's own parts, bound once: checks and ``yours_or_reference`` compare against these even
#: while :func:`using_parts` has swapped the module-level names for a learner's versions.
LIBRARY_PARTS = {"rms_norm": rms_norm, "swiglu": swiglu, "apply_rope": apply_rope}


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention with RoPE on queries and keys and an optional KV cache."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.n_heads = config.n_heads
        self.head_dim = config.d_model // config.n_heads
        self.q_proj = nn.Linear(config.d_model, config.d_model, bias=False)
        self.k_proj = nn.Linear(config.d_model, config.d_model, bias=False)
        self.v_proj = nn.Linear(config.d_model, config.d_model, bias=False)
        self.o_proj = nn.Linear(config.d_model, config.d_model, bias=False)

    def forward(
        self,
        x: Tensor,
        cos: Tensor,
        sin: Tensor,
        attn_mask: Tensor,
        past_kv: tuple[Tensor, Tensor] | None = None,
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """x (B, T, D); attn_mask bool, True = may attend, (B, 1, T, Tk) or (T, Tk) with
        Tk = T + cached length. Returns the output (B, T, D) and the new (k, v) cache."""
        B, T, D = x.shape
        q = self.q_proj(x).view(B, T, self.n_heads, self.head_dim).transpose(1, 2)  # (B, H, T, Dh)
        k = self.k_proj(x).view(B, T, self.n_heads, self.head_dim).transpose(1, 2)  # (B, H, T, Dh)
        v = self.v_proj(x).view(B, T, self.n_heads, self.head_dim).transpose(1, 2)  # (B, H, T, Dh)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if past_kv is not None:
            k = torch.cat([past_kv[0], k], dim=2)  # (B, H, Tk, Dh)
            v = torch.cat([past_kv[1], v], dim=2)  # (B, H, Tk, Dh)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)  # (B, H, T, Dh)
        y = y.transpose(1, 2).reshape(B, T, D)  # (B, T, D)
        return self.o_proj(y), (k, v)


class Block(nn.Module):
    """One pre-norm transformer block: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.norm1 = RMSNorm(config.d_model, config.norm_eps)
        self.attn = CausalSelfAttention(config)
        self.norm2 = RMSNorm(config.d_model, config.norm_eps)
        self.mlp = SwiGLU(config.d_model, config.d_ff)

    def forward(self, x, cos, sin, attn_mask, past_kv=None):
        a, kv = self.attn(self.norm1(x), cos, sin, attn_mask, past_kv)
        x = x + a
        x = x + self.mlp(self.norm2(x))
        return x, kv


class TinyLM(nn.Module):
    """Decoder-only LM. ``forward(input_ids, attention_mask)`` returns logits (B, T, V)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.head_dim = config.d_model // config.n_heads
        self.tok_emb = nn.Embedding(config.vocab_size, config.d_model)
        self.blocks = nn.ModuleList([Block(config) for _ in range(config.n_layers)])
        self.norm_f = RMSNorm(config.d_model, config.norm_eps)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.lm_head.weight = self.tok_emb.weight  # one (V, D) matrix reads and writes tokens
        self._init_weights()

    @classmethod
    def from_config_dict(cls, d: dict) -> TinyLM:
        return cls(ModelConfig.from_dict(d))

    def _init_weights(self) -> None:
        """Normal(0, 0.02) everywhere; the two projections that write into the residual stream
        get std 0.02 / sqrt(2 * n_layers) so the stream's variance does not grow with depth."""
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)
        resid_std = 0.02 / math.sqrt(2 * self.config.n_layers)
        for block in self.blocks:
            nn.init.normal_(block.attn.o_proj.weight, mean=0.0, std=resid_std)
            nn.init.normal_(block.mlp.w_down.weight, mean=0.0, std=resid_std)

    def num_parameters(self, exclude_embeddings: bool = False) -> int:
        """Number of distinct parameters (a tied matrix counts once). ``exclude_embeddings``
        leaves out the (V, D) token embedding, and the output head too when it is untied."""
        n = sum(p.numel() for p in self.parameters())
        if exclude_embeddings:
            n -= self.tok_emb.weight.numel()
            if not self.config.tie_embeddings:
                n -= self.lm_head.weight.numel()
        return n

    def _check_length(self, T: int) -> None:
        if T > self.config.max_seq_len:
            raise ValueError(f"sequence of length {T} exceeds max_seq_len={self.config.max_seq_len}")

    def _run(
        self, input_ids: Tensor, positions: Tensor, attn_mask: Tensor, past: KVCache | None = None
    ) -> tuple[Tensor, KVCache]:
        """The shared trunk of ``forward`` and ``generate``: ids (B, T), positions (T,) or (B, T),
        bool attn_mask broadcastable to (B, H, T, Tk). Returns logits (B, T, V) and the KV cache."""
        x = self.tok_emb(input_ids)  # (B, T, D)
        cos, sin = rope_angles(positions, self.head_dim, self.config.rope_base)  # (..., T, Dh/2)
        cache: KVCache = []
        for i, block in enumerate(self.blocks):
            x, kv = block(x, cos, sin, attn_mask, None if past is None else past[i])
            cache.append(kv)
        x = self.norm_f(x)
        logits = self.lm_head(x)  # (B, T, V)
        return logits, cache

    @staticmethod
    def _prefix_mask(attention_mask: Tensor | None, T: int, device: torch.device) -> tuple[Tensor, Tensor]:
        """Positions and the bool attention mask for a full (uncached) pass over T tokens."""
        causal = torch.ones(T, T, dtype=torch.bool, device=device).tril()  # (T, T)
        if attention_mask is None:
            return torch.arange(T, device=device), causal  # (T,), (T, T)
        keep = attention_mask.to(device=device, dtype=torch.bool)  # (B, T)
        positions = (keep.long().cumsum(dim=1) - 1).clamp(min=0)  # (B, T)
        allowed = causal & keep[:, None, :]  # (B, T, T): query t sees real keys s <= t
        allowed = allowed | torch.eye(T, dtype=torch.bool, device=device)  # every query sees itself: no empty row
        return positions, allowed.unsqueeze(1)  # (B, T), (B, 1, T, T)

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """input_ids (B, T) long; attention_mask (B, T), 1 = real token, 0 = padding on either
        side, None = all real. Returns logits (B, T, V); ``logits[:, t]`` predict token ``t + 1``.

        Padding changes nothing at the real tokens: positions count real tokens only, and padded
        keys are masked. Logits at padded positions are finite but meaningless.
        """
        B, T = input_ids.shape
        self._check_length(T)
        positions, attn_mask = self._prefix_mask(attention_mask, T, input_ids.device)
        logits, _ = self._run(input_ids, positions, attn_mask)
        return logits

    # ------------------------------------------------------------------------- sampling

    @staticmethod
    def _left_pack(ids: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Move every row's real tokens to the right end, in order (left padding), and drop
        leading columns that are padding in every row. A left-padded batch is left as it is,
        apart from that trimming; a right-padded one is re-packed."""
        order = torch.sort(mask.long(), dim=1, stable=True).indices  # (B, Tp): pads first, then real tokens
        ids, mask = ids.gather(1, order), mask.gather(1, order)  # (B, Tp)
        width = int(mask.sum(dim=1).max())
        return ids[:, ids.shape[1] - width :], mask[:, mask.shape[1] - width :]  # (B, Lmax)

    @staticmethod
    def _sample(logits: Tensor, temperature: float, top_k: int | None, generator) -> Tensor:
        """One token per row from logits (B, V): argmax if temperature == 0, else softmax sampling."""
        if temperature == 0:
            return logits.argmax(dim=-1)  # (B,)
        logits = logits.float() / temperature  # (B, V)
        if top_k is not None:
            k = min(int(top_k), logits.shape[-1])
            kth = torch.topk(logits, k, dim=-1).values[:, -1:]  # (B, 1)
            logits = logits.masked_fill(logits < kth, float("-inf"))
        probs = F.softmax(logits, dim=-1)  # (B, V)
        return torch.multinomial(probs, 1, generator=generator).squeeze(1)  # (B,)

    @torch.no_grad()
    def generate(
        self,
        prompt_ids: Tensor,
        prompt_mask: Tensor | None = None,
        max_new_tokens: int = 24,
        temperature: float = 1.0,
        top_k: int | None = None,
        eos_id: int | None = None,
        pad_id: int = 0,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Sample responses with a KV cache. Returns response ids (B, N), N <= max_new_tokens.

        prompt_ids (B, Tp) should be LEFT-padded, so every row's last column is its last prompt
        token; prompt_mask (B, Tp), 1 = real, None = all real. A right-padded (or otherwise
        padded) batch is re-packed to left padding internally, so it gives the same result.
        Each row stops at its first ``eos_id`` (kept) and is ``pad_id`` after it; generation
        stops early once every row has emitted EOS. ``temperature == 0`` is greedy;
        ``top_k`` keeps the k largest logits. ``generator`` (on the model's device) makes
        sampling reproducible. Runs in eval mode and restores the previous mode.
        """
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0 (0 = greedy), got {temperature}")
        if top_k is not None and top_k < 1:
            raise ValueError(f"top_k must be >= 1 or None, got {top_k}")
        device = prompt_ids.device
        B = prompt_ids.shape[0]
        if prompt_mask is None:
            prompt_mask = torch.ones_like(prompt_ids, dtype=torch.bool)
        mask = prompt_mask.to(device=device, dtype=torch.bool)  # (B, Tp)
        if not bool(mask.any(dim=1).all()):
            raise ValueError("every prompt needs at least one real token (a row of prompt_mask is all 0)")
        ids, mask = self._left_pack(prompt_ids, mask)  # (B, Lmax) each
        if max_new_tokens <= 0:
            return torch.empty(B, 0, dtype=torch.long, device=device)
        # The model reads the prompt and all new tokens but the last: Lmax + N - 1 positions.
        self._check_length(ids.shape[1] + max_new_tokens - 1)

        was_training = self.training
        self.eval()
        try:
            positions, attn_mask = self._prefix_mask(mask, ids.shape[1], device)  # (B, L), (B, 1, L, L)
            logits, cache = self._run(ids, positions, attn_mask)  # (B, L, V)
            next_logits = logits[:, -1]  # (B, V): the last column is every row's last real token
            next_pos = positions[:, -1:] + 1  # (B, 1): last real position + 1
            key_mask = mask  # (B, Tk): which cached keys are real
            done = torch.zeros(B, dtype=torch.bool, device=device)
            out = []
            for step in range(max_new_tokens):
                tok = self._sample(next_logits, temperature, top_k, generator)  # (B,)
                tok = torch.where(done, torch.full_like(tok, pad_id), tok)
                out.append(tok)
                if eos_id is not None:
                    done = done | (tok == eos_id)
                    if bool(done.all()):
                        break
                if step == max_new_tokens - 1:
                    break
                key_mask = torch.cat([key_mask, torch.ones(B, 1, dtype=torch.bool, device=device)], dim=1)  # (B, Tk+1)
                step_mask = key_mask[:, None, None, :]  # (B, 1, 1, Tk+1): the new token sees every real key
                logits, cache = self._run(tok[:, None], next_pos, step_mask, cache)  # (B, 1, V)
                next_logits = logits[:, -1]  # (B, V)
                next_pos = next_pos + 1
        finally:
            self.train(was_training)
        return torch.stack(out, dim=1)  # (B, N)


# ----------------------------------------------------------------------------- devices


@contextlib.contextmanager
def using_parts(rms_norm=None, swiglu=None, apply_rope=None):
    """Run every TinyLM with your own ``rms_norm`` / ``swiglu`` / ``apply_rope`` inside a ``with`` block.

    The model's modules look these functions up in this module when they run, so swapping the
    module-level names swaps them everywhere; the originals come back on exit, even after an error::

        with using_parts(rms_norm=my_rms_norm):
            logits = model(input_ids)
    """
    module = sys.modules[__name__]
    swaps = {name: fn for name, fn in (("rms_norm", rms_norm), ("swiglu", swiglu), ("apply_rope", apply_rope)) if fn is not None}
    saved = {name: getattr(module, name) for name in swaps}
    try:
        for name, fn in swaps.items():
            setattr(module, name, fn)
        yield
    finally:
        for name, fn in saved.items():
            setattr(module, name, fn)


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def pick_device(prefer: str | None = None) -> torch.device:
    """``"cuda"`` if available, else ``"mps"``, else ``"cpu"``. ``prefer`` (e.g. "cpu", "cuda:0")
    forces a device and raises a RuntimeError if it is not available."""
    if prefer is not None:
        device = torch.device(prefer)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {prefer!r} requested, but CUDA is not available")
        if device.type == "mps" and not _mps_available():
            raise RuntimeError(f"device {prefer!r} requested, but MPS (Apple GPU) is not available")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")
