# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
#   language_info:
#     name: python
# ---

# %% [markdown] nbgrader={"grade": false, "grade_id": "intro", "locked": true, "schema_version": 3, "solution": false}
# # 05 · A tiny modern transformer: RMSNorm, SwiGLU, RoPE
#
# From the next lesson on, the policy that DPO trains and the frozen reference it is compared with are
# one small language model, `rlhf_core.model.TinyLM`. It is built from the same three parts as most
# current open LLMs (the LLaMA family, Mistral, Qwen and many more): **RMSNorm** instead of LayerNorm,
# a gated **SwiGLU** MLP instead of a ReLU one, and **rotary position embeddings (RoPE)** instead of
# added position vectors. Here you write those three parts yourself, plug them into the library's model,
# and check that the shipped SFT model computes the same logits — and writes the same reviews — with
# your code inside it.
#
# **Goals**
# - implement `rms_norm`, `swiglu` and `apply_rope` (rotate-half convention) and run the real model on them;
# - see numerically why RoPE encodes *relative* position, and what a RoPE convention mismatch does to a loaded checkpoint;
# - count the model's parameters part by part, and say how the count scales with width and depth;
# - follow one forward pass shape by shape, and watch the causal mask at work.
#
# **Prerequisites:** PyTorch tensors and `nn.Linear`; scaled dot-product attention
# ($\mathrm{softmax}(QK^\top/\sqrt{d})\,V$) at the level of "queries, keys, values"; notebook 04 helps
# (what `logits[:, t]` predicts).
#
# **Time:** about 60 minutes.

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-01", "locked": true, "schema_version": 3, "solution": false}
# ## 1. The map
#
# `TinyLM` is a decoder-only, pre-norm transformer. One screen of it, with the shipped configuration
# ($D = 128$, 2 layers, 4 heads of size $D_h = 32$, SwiGLU width $F = 352$, a vocabulary of $V = 90$ words):
#
# ```
# input_ids                                                         (B, T)      integers < V
#   │  token embedding: row lookup in E, a (V, D) matrix
#   ▼
# x                                                                 (B, T, D)
#   │ ┌──────────── block, repeated n_layers = 2 times ────────────────────────────┐
#   │ │  h = RMSNorm(x)                                             (B, T, D)       │
#   │ │  q, k, v = h W_qᵀ, h W_kᵀ, h W_vᵀ, split into H heads        (B, H, T, D_h)  │
#   │ │  q, k = RoPE(q), RoPE(k)          ← positions enter here, and only here     │
#   │ │  a = softmax(q kᵀ / √D_h + causal mask) v, heads merged, · W_oᵀ  (B, T, D)   │
#   │ │  x = x + a                                                  residual        │
#   │ │  x = x + SwiGLU(RMSNorm(x))                                 residual        │
#   │ └─────────────────────────────────────────────────────────────────────────────┘
#   ▼
# RMSNorm(x) · Eᵀ    ← the output head *is* the embedding matrix (tied weights)
# logits                                                            (B, T, V)
# ```
#
# "Pre-norm" means each sub-layer reads a normalised copy of the residual stream `x` and *adds* its
# result back; `x` itself is never normalised until the very end. Nothing in the model is specific to
# DPO: it is a plain next-token predictor, and `logits[:, t]` scores the token at position `t + 1`.

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false}
# Setup: run this cell first. Where rlhf_core is missing (Colab, a fresh kernel) it installs the course
# library, keeping the torch already there; then it checks the environment and fixes the random seed.
COURSE_REPO_URL = "https://github.com/dpo-paper-to-code/dpo-paper-to-code"
SEED = 5
import importlib, importlib.util, os, subprocess, sys
if importlib.util.find_spec("rlhf_core") is None:
    source = os.environ.get("DPO_COURSE_SOURCE") or f"git+{COURSE_REPO_URL}"
    where = "Colab" if "google.colab" in sys.modules else "this kernel"
    print(f"rlhf_core is missing in {where}: installing it from {source} (about a minute) ...")
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--upgrade-strategy", "only-if-needed", source],
                         capture_output=True, text=True)
    if pip.returncode != 0:
        said = ((pip.stderr or pip.stdout).strip().splitlines() or ["no message"])[-1]
        raise RuntimeError(f"pip could not install {source} ({said}); check the network, or install the course yourself")
    importlib.invalidate_caches()
from rlhf_core.course.notebook import setup
setup(seed=SEED)

# %% id="demo-01"
import torch
from rlhf_core.checkpoint import load_sft_model

model, tokenizer, meta = load_sft_model()   # the SFT model every later lesson starts from (eval mode, CPU)
print(model.config)
print(f"head size D_h = {model.head_dim}, parameters = {model.num_parameters():,}")
print("the output head is the embedding matrix (tied):", model.lm_head.weight is model.tok_emb.weight)
print(model)


# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-02", "locked": true, "schema_version": 3, "solution": false}
# ## 2. RMSNorm
#
# LayerNorm centres each feature vector and divides by its standard deviation, then applies a gain
# $g$ and a bias $b$:
# $\mathrm{LN}(x) = \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}} \odot g + b$.
# RMSNorm (Zhang & Sennrich, 2019) keeps only the rescaling: no mean is subtracted and there is no bias,
#
# $$\mathrm{RMSNorm}(x) = \frac{x}{\sqrt{\frac{1}{D}\sum_{i=1}^{D} x_i^2 + \epsilon}} \odot g .$$
#
# It does one reduction over the features instead of two and has half the parameters, and in practice
# it trains as well: Zhang & Sennrich's argument is that the re-*scaling* is what keeps the activations
# of a deep network in range, and the re-centring can be dropped.
# After it, every vector has root-mean-square 1 (times $g$), whatever its length was before.
#
# | math | code |
# |---|---|
# | $\frac1D \sum_i x_i^2$, over the last (feature) axis | `x.pow(2).mean(-1, keepdim=True)` → `(..., 1)` |
# | $1/\sqrt{\,\cdot + \epsilon}$ ($\epsilon$ *inside* the root) | `torch.rsqrt(ms + eps)` |
# | $x \cdot (\dots) \odot g$ | `x * inv_rms * weight` (the `(D,)` weight broadcasts) |

# %% [markdown] nbgrader={"grade": false, "grade_id": "ex1-header", "locked": true, "schema_version": 3, "solution": false}
# ### Exercise 1 — `rms_norm` · ★☆☆ · 5 min
#
# Write RMSNorm as a function of the input and the learned gain. Keep `keepdim=True` so the `(..., 1)`
# root-mean-square broadcasts back over the features.

# %% nbgrader={"grade": false, "grade_id": "rms_norm", "locked": false, "schema_version": 3, "solution": true}
def rms_norm(x, weight, eps=1e-6):
    """x / sqrt(mean(x**2 over the last axis) + eps) * weight.

    x: (..., D) float tensor; weight: (D,) learned gain. Returns a tensor of x's shape.
    """
    ### BEGIN SOLUTION
    inv_rms = torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps)  # (..., 1)
    return x * inv_rms * weight
    ### END SOLUTION


# %% check="rms_norm"

# %% [markdown] nbgrader={"grade": false, "grade_id": "ex1-hint", "locked": true, "schema_version": 3, "solution": false}
# <details><summary>Hint</summary>
#
# Two lines: `inv_rms = torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)`, then
# `x * inv_rms * weight`. If the check says you subtracted the mean, you wrote LayerNorm; if it says
# `eps` is in the wrong place, you added it after the square root.
# </details>

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-03", "locked": true, "schema_version": 3, "solution": false}
# What the difference means in numbers: below, a batch of vectors with a large offset and scale goes
# through your `rms_norm` (if it passes its check) and through LayerNorm. RMSNorm leaves the mean alone
# and fixes the root-mean-square at 1; LayerNorm removes the mean. Both ignore a rescaling of the
# input, but only LayerNorm ignores a shift.

# %% id="demo-02"
import torch.nn.functional as F
from rlhf_core.course.notebook import yours_or_reference

my_rms_norm = yours_or_reference("rms_norm", rms_norm)
x = torch.randn(4, 128) * 5 + 3                    # 4 vectors of size D = 128, mean ≈ 3, std ≈ 5
ones = torch.ones(128)
rms = my_rms_norm(x, ones)
ln = F.layer_norm(x, (128,))
rms_of = lambda t: t.pow(2).mean(-1).sqrt()

print(f"{'first vector of the batch':<28}{'mean':>8}{'rms':>8}")
for label, t in [("input x", x), ("RMSNorm(x)", rms), ("LayerNorm(x)", ln)]:
    print(f"{label:<28}{t.mean(-1)[0].item():8.3f}{rms_of(t)[0].item():8.3f}")
print("RMSNorm(7·x) == RMSNorm(x):  ", torch.allclose(my_rms_norm(7 * x, ones), rms, atol=1e-5))
print("RMSNorm(x + 1) == RMSNorm(x):", torch.allclose(my_rms_norm(x + 1, ones), rms, atol=1e-5))
print("LayerNorm(x + 1) == LayerNorm(x):", torch.allclose(F.layer_norm(x + 1, (128,)), ln, atol=1e-5))
print("an all-zero vector stays finite thanks to eps:", my_rms_norm(torch.zeros(1, 128), ones).abs().max().item())

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-04", "locked": true, "schema_version": 3, "solution": false}
# ## 3. SwiGLU
#
# The classic transformer MLP is two matrices with a non-linearity between them,
# $\mathrm{ReLU}(x W_1^\top)\, W_2^\top$. SwiGLU (Shazeer, 2020, "GLU variants improve Transformer")
# uses *three*: a **gate** projection passed through SiLU, an **up** projection left linear, their
# elementwise product, and a **down** projection back to $D$:
#
# $$\mathrm{SwiGLU}(x) = \big(\mathrm{SiLU}(x W_\text{gate}^\top) \odot x W_\text{up}^\top\big)\, W_\text{down}^\top,
# \qquad \mathrm{SiLU}(z) = z\,\sigma(z).$$
#
# The gate decides, per hidden unit and per token, how much of the up-projection passes through: the
# output is a *product* of two learned linear functions of $x$, which a single ReLU layer cannot
# express. Shazeer found this lowers perplexity at the same compute, and the LLaMA family adopted it.
# Because it has three matrices instead of two, the hidden width is shrunk to about $\frac{8}{3}D$ to
# keep the parameter count of a $4D$-wide ReLU MLP: here $F = 352$, so $3 \cdot 128 \cdot 352 = 135{,}168$
# parameters, against $2 \cdot 128 \cdot 512 = 131{,}072$.
#
# The weights come in `nn.Linear` layout, `(out, in)`: `w_gate` and `w_up` are `(F, D)`, `w_down` is
# `(D, F)`, and $x W^\top$ is `x @ w.T` (or `F.linear(x, w)`).
#
# | math | code | shape |
# |---|---|---|
# | $\mathrm{SiLU}(x W_\text{gate}^\top)$ | `F.silu(x @ w_gate.T)` | `(..., F)` |
# | $x W_\text{up}^\top$ | `x @ w_up.T` | `(..., F)` |
# | $(\dots \odot \dots)\, W_\text{down}^\top$ | `(gate * up) @ w_down.T` | `(..., D)` |

# %% id="demo-03"
import matplotlib.pyplot as plt

z = torch.linspace(-5, 5, 200)
fig, ax = plt.subplots(figsize=(5.5, 3.2))
ax.plot(z, F.relu(z), label="ReLU(z)", ls="--", c="grey")
ax.plot(z, F.silu(z), label="SiLU(z) = z·σ(z)", c="C0")
ax.plot(z, torch.sigmoid(z), label="σ(z), the plain GLU gate", c="C1", alpha=0.7)
ax.axhline(0, c="k", lw=0.5)
ax.set(xlabel="z", title="SiLU: a smooth ReLU that lets a little negative signal through")
ax.legend()
fig.tight_layout()


# %% [markdown] nbgrader={"grade": false, "grade_id": "ex2-header", "locked": true, "schema_version": 3, "solution": false}
# ### Exercise 2 — `swiglu` · ★★☆ · 10 min
#
# Implement the SwiGLU MLP from its three weight matrices. It acts on the last axis only, so it must work
# for `x` of shape `(B, T, D)` as well as `(N, D)`.

# %% nbgrader={"grade": false, "grade_id": "swiglu", "locked": false, "schema_version": 3, "solution": true}
def swiglu(x, w_gate, w_up, w_down):
    """(silu(x W_gateᵀ) ⊙ x W_upᵀ) W_downᵀ.

    x: (..., D); w_gate, w_up: (F, D); w_down: (D, F)  (nn.Linear layout: (out, in)).
    Returns (..., D).
    """
    ### BEGIN SOLUTION
    gate = F.silu(x @ w_gate.T)  # (..., F)
    up = x @ w_up.T  # (..., F)
    return (gate * up) @ w_down.T  # (..., D)
    ### END SOLUTION


# %% check="swiglu"

# %% [markdown] nbgrader={"grade": false, "grade_id": "ex2-hint", "locked": true, "schema_version": 3, "solution": false}
# <details><summary>Hint</summary>
#
# Three lines: `gate = F.silu(x @ w_gate.T)`, `up = x @ w_up.T`, `return (gate * up) @ w_down.T`.
# The SiLU goes on the **gate** branch only, and the branches are *multiplied*. A shape error usually
# means a missing `.T`: the weights are stored `(out, in)`.
# </details>

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-05", "locked": true, "schema_version": 3, "solution": false}
# ## 4. RoPE: position as a rotation
#
# Attention compares a query with a key by a dot product, and on its own that comparison knows nothing
# about where the two tokens are. RoPE (Su et al., 2021, RoFormer) injects position by **rotating** the
# query and the key before the dot product. Split a head vector of size $D_h$ into $D_h/2$ pairs of
# coordinates; pair $i$ of a vector at position $m$ is rotated by the angle $m\,\theta_i$, with one
# frequency per pair:
#
# $$\theta_i = \text{base}^{-2i/D_h}, \quad i = 0, \dots, \tfrac{D_h}{2}-1 \qquad (\text{base} = 10000).$$
#
# In the **rotate-half** convention used here (GPT-NeoX, Hugging Face's LLaMA), pair $i$ is made of
# coordinate $i$ of the first half and coordinate $i$ of the second half:
#
# $$\begin{pmatrix} x'_i \\ x'_{i + D_h/2} \end{pmatrix} =
# \begin{pmatrix} \cos m\theta_i & -\sin m\theta_i \\ \sin m\theta_i & \cos m\theta_i \end{pmatrix}
# \begin{pmatrix} x_i \\ x_{i + D_h/2} \end{pmatrix}.$$
#
# **Why this encodes relative position.** Write $R_m$ for the whole (block-diagonal) rotation at
# position $m$. Rotations are orthogonal and rotations of the same plane add their angles, so
# $R_m^\top R_n = R_{n-m}$ and
#
# $$\langle R_m q,\; R_n k \rangle = q^\top R_m^\top R_n\, k = q^\top R_{n-m}\, k :$$
#
# the attention score depends on the two positions only through their **offset** $n - m$. The
# frequencies span a range of clocks: pair 0 turns by 1 radian per token, the last pair (for $D_h = 32$)
# by $10000^{-30/32} \approx 2 \cdot 10^{-4}$ radians, so near and far offsets are both distinguishable.
# Only $q$ and $k$ are rotated, never $v$: position should decide *how much* a token attends to another
# (the score), not change *what* it reads from it. Nothing is added to the residual stream.
#
# | math | code | shape |
# |---|---|---|
# | $\cos m\theta_i,\ \sin m\theta_i$ | `cos, sin = rope_angles(positions, Dh)` | `(T, Dh/2)`, or `(B, T, Dh/2)` for per-row positions |
# | the pairs | `x1, x2 = x[..., :Dh//2], x[..., Dh//2:]` | `(B, H, T, Dh/2)` each |
# | the rotation | `torch.cat([x1*cos - x2*sin, x1*sin + x2*cos], dim=-1)` | `(B, H, T, Dh)` |
# | per-row positions | `cos[:, None]` inserts the head axis: `(B, 1, T, Dh/2)` | broadcasts over heads |
#
# Per-row positions occur in left-padded batches: positions count real tokens only, so a row that
# starts with two pads has positions `0, 0, 0, 1, 2, …`.
#
# **Another convention exists.** The RoFormer paper, GPT-J and Meta's original LLaMA code pair
# *adjacent* coordinates, $(x_{2i}, x_{2i+1})$ ("interleaved"). It is just as valid — it is the same
# rotation applied to a different, fixed pairing of the coordinates — but it is a *different function*,
# and weights trained with one convention are wrong under the other (section 5 shows what that costs).
# `check_apply_rope` recognises the interleaved pairing and tells you when you used it.

# %% id="demo-04"
from rlhf_core.model import rope_angles

cos, sin = rope_angles(torch.arange(6), head_dim=8)              # positions 0..5, Dh = 8
print("cos for positions (T,)   :", tuple(cos.shape), "  (T, Dh/2)")
print("angles m·θ_i at m = 1    :", [round(a, 4) for a in torch.atan2(sin[1], cos[1]).tolist()], " θ_i = 10000^(-2i/8)")
left_padded = torch.tensor([[0, 1, 2, 3, 4, 5], [0, 0, 0, 1, 2, 3]])   # row 2 starts with 2 pads (clamped to 0)
bcos, bsin = rope_angles(left_padded, head_dim=8)
print("cos for positions (B, T) :", tuple(bcos.shape), "  (B, T, Dh/2): needs a head axis, cos[:, None]")


# %% [markdown] nbgrader={"grade": false, "grade_id": "ex3-header", "locked": true, "schema_version": 3, "solution": false}
# ### Exercise 3 — `apply_rope` · ★★★ · 15 min
#
# Rotate query or key vectors `x` of shape `(B, H, T, Dh)` by the angles in `cos` and `sin`. Handle both
# shapes of `cos`/`sin`: `(T, Dh/2)` broadcasts as it is; `(B, T, Dh/2)` needs a head axis inserted
# first. Use the rotate-half pairing.

# %% nbgrader={"grade": false, "grade_id": "apply_rope", "locked": false, "schema_version": 3, "solution": true}
def apply_rope(x, cos, sin):
    """Rotary position embedding, rotate-half convention.

    x: (B, H, T, Dh); cos, sin: (T, Dh/2) or (B, T, Dh/2) from rope_angles.
    Pair (x[..., i], x[..., i + Dh/2]) is rotated by the angle whose cos/sin sit at [..., i].
    Returns a tensor of x's shape.
    """
    ### BEGIN SOLUTION
    if cos.dim() == 3:  # per-row positions: (B, T, Dh/2) -> (B, 1, T, Dh/2), broadcasts over heads
        cos, sin = cos[:, None], sin[:, None]
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]  # (B, H, T, Dh/2) each
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)  # (B, H, T, Dh)
    ### END SOLUTION


# %% check="apply_rope"

# %% [markdown] nbgrader={"grade": false, "grade_id": "ex3-hint", "locked": true, "schema_version": 3, "solution": false}
# <details><summary>Hint</summary>
#
# Start with `if cos.dim() == 3: cos, sin = cos[:, None], sin[:, None]`. Then split `x` into its first
# and second half along the last axis, and concatenate `x1 * cos - x2 * sin` (the new first half) with
# `x1 * sin + x2 * cos` (the new second half). If the check mentions adjacent dimensions, you sliced
# `0::2` / `1::2`: that is the interleaved convention, not this course's.
# </details>

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-06", "locked": true, "schema_version": 3, "solution": false}
# ### The relative-position property, numerically
#
# Take one fixed query vector $q$ and one fixed key vector $k$ (head size 32, like the model's). Put the
# key at an absolute position $n$ and the query $\Delta$ tokens later, at $m = n + \Delta$, rotate both
# with your `apply_rope`, and plot the score $\langle R_m q, R_n k\rangle$ against the offset $\Delta$ for
# several $n$. With RoPE the curves lie on top of each other. For contrast, the right panel does the
# same with the original transformer's recipe — a sinusoidal position vector *added* to $q$ and $k$ —
# where the score depends on where the pair sits, not only on its offset.

# %% id="demo-05"
my_apply_rope = yours_or_reference("apply_rope", apply_rope)

torch.manual_seed(0)
Dh = model.head_dim
q, k = torch.randn(Dh), torch.randn(Dh)
offsets = torch.arange(0, 41)                                   # Δ = m − n


def rope_score(n):
    # q at positions n + Δ and k at position n, each as a (1, 1, T, Dh) batch for apply_rope
    cq, sq = rope_angles(n + offsets, Dh)                        # (T, Dh/2)
    ck, sk = rope_angles(torch.full_like(offsets, n), Dh)
    rq = my_apply_rope(q.expand(1, 1, len(offsets), Dh), cq, sq)[0, 0]   # (T, Dh)
    rk = my_apply_rope(k.expand(1, 1, len(offsets), Dh), ck, sk)[0, 0]
    return (rq * rk).sum(-1)                                     # (T,): one score per offset


def additive_score(n):
    cq, sq = rope_angles(n + offsets, Dh)                        # reuse the same frequencies as a
    ck, sk = rope_angles(torch.full_like(offsets, n), Dh)        # sinusoidal position vector
    pe_q, pe_k = torch.cat([sq, cq], -1), torch.cat([sk, ck], -1)    # (T, Dh)
    return ((q + pe_q) * (k + pe_k)).sum(-1)


starts = [0, 7, 20]
fig, axes = plt.subplots(1, 2, figsize=(9.4, 3.4), sharey=False)
for n, style in zip(starts, ["-", "--", ":"]):
    axes[0].plot(offsets, rope_score(n), ls=style, lw=2, label=f"key at n = {n}")
    axes[1].plot(offsets, additive_score(n), ls=style, lw=2, label=f"key at n = {n}")
axes[0].set(xlabel="offset Δ = m − n", ylabel="score ⟨q_m, k_n⟩", title="RoPE: the curves coincide")
axes[1].set(xlabel="offset Δ = m − n", title="added sinusoidal positions: they do not")
for ax in axes:
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3, fontsize=9, frameon=False)
fig.tight_layout()

spread_rope = torch.stack([rope_score(n) for n in starts]).std(0).max().item()
spread_add = torch.stack([additive_score(n) for n in starts]).std(0).max().item()
print(f"largest spread across start positions: RoPE {spread_rope:.1e}, additive {spread_add:.2f}")
print(f"a rotation keeps the length: |q| = {q.norm():.4f}, |R_13 q| = "
      f"{my_apply_rope(q.view(1, 1, 1, Dh), *rope_angles(torch.tensor([13]), Dh)).norm():.4f}")

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-07", "locked": true, "schema_version": 3, "solution": false}
# ## 5. Your parts inside the real model
#
# `TinyLM`'s modules look up `rms_norm`, `swiglu` and `apply_rope` in `rlhf_core.model` each time they
# run. `rlhf_core.model.using_parts(...)` swaps in your functions for the duration of a `with` block (and
# puts the library's back afterwards, even after an error). Below, the shipped SFT model reads a batch of
# held-out prompts with their responses (collated as `[BOS] prompt response [EOS]`, right-padded), once with
# the library's parts and once with yours. Only real tokens are compared: the logits at padded positions
# mean nothing.

# %% id="demo-06"
from rlhf_core import task
from rlhf_core.data import collate_sft
from rlhf_core.model import using_parts
from rlhf_core.train import sft_loss

my_swiglu = yours_or_reference("swiglu", swiglu)
yours = dict(rms_norm=my_rms_norm, swiglu=my_swiglu, apply_rope=my_apply_rope)

rows = task.make_corpus(16, seed=SEED, prompts=task.HELDOUT_PROMPTS)   # reviews for prompts never trained on
batch = collate_sft(rows, tokenizer)                                   # input_ids, attention_mask, response_mask: (B, T)
real = batch["attention_mask"].bool()                                  # (B, T)
with torch.no_grad():
    library_logits = model(batch["input_ids"], batch["attention_mask"])    # (B, T, V)
    library_loss = sft_loss(model, batch)
    with using_parts(**yours):
        your_logits = model(batch["input_ids"], batch["attention_mask"])   # (B, T, V)
        your_loss = sft_loss(model, batch)

print("batch:", tuple(batch["input_ids"].shape), "→ logits", tuple(your_logits.shape))
print(f"max |your logits − library logits| on real tokens: {(your_logits - library_logits)[real].abs().max().item():.2e}")
print(f"loss per response token: library {library_loss.item():.4f}, yours {your_loss.item():.4f}")

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-08", "locked": true, "schema_version": 3, "solution": false}
# The numbers agree to float32 rounding. Now let the model *write* with your parts: temperature-1
# samples for a few held-out prompts. `collate_prompts` pads prompts on the **left**, so every row's
# next token is generated in the same column; `generate` samples with a KV cache and stops each row at
# `<eos>`. `task.is_grammatical` checks the review against the task's grammar and `task.reward` is its
# sentiment score in $[-1, 1]$.

# %% id="demo-07"
from rlhf_core.data import collate_prompts

prompts = list(task.HELDOUT_PROMPTS[::9])                                   # 5 prompts never seen in training
prompt_ids, prompt_mask = collate_prompts(prompts, tokenizer)              # (B, Tp), left-padded
gen = torch.Generator().manual_seed(SEED)
with using_parts(**yours):
    response_ids = model.generate(prompt_ids, prompt_mask, max_new_tokens=30, temperature=1.0,
                                  eos_id=tokenizer.eos_id, pad_id=tokenizer.pad_id, generator=gen)  # (B, N)
for prompt, ids in zip(prompts, response_ids):
    text = tokenizer.decode(ids.tolist())
    ok = "grammatical" if task.is_grammatical(prompt, text) else "NOT grammatical"
    print(f"{prompt} | {text}\n{'':>8}[{ok}, reward {task.reward(text):+.2f}]")

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-09", "locked": true, "schema_version": 3, "solution": false}
# ### What a RoPE convention mismatch looks like
#
# The SFT model was trained with rotate-half RoPE. Run it with the *interleaved* pairing instead and
# nothing crashes — shapes are identical — but every query and key is rotated in the wrong planes, and
# the loss jumps to about what the model gets with no position information at all. This is the silent
# failure you meet when a checkpoint is loaded into code with the other convention, and the way to catch
# it is to **measure the loss (or perplexity) on known text right after loading**.
#
# The two conventions differ only by a fixed permutation of each head's coordinates, and a dot product
# does not change when both of its vectors are permuted the same way. So a checkpoint can be converted:
# reorder the rows of $W_q$ and $W_k$ within every head, and the interleaved code reproduces the original
# logits. (Converters between the two LLaMA layouts do exactly this.)

# %% id="demo-08"
import copy


def apply_rope_interleaved(x, cos, sin):
    # the other convention: pair adjacent coordinates (x_2i, x_2i+1); demo code, not for the exercise
    if cos.dim() == 3:
        cos, sin = cos[:, None], sin[:, None]
    x1, x2 = x[..., 0::2], x[..., 1::2]                                   # (B, H, T, Dh/2) each
    return torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).flatten(-2)   # (B, H, T, Dh)


H, Dh = model.config.n_heads, model.head_dim
half_layout = torch.cat([torch.arange(0, Dh, 2), torch.arange(1, Dh, 2)])  # interleaved index of each rotate-half slot
rows_per_head = torch.argsort(half_layout)                                  # where each slot's row must move
new_rows = (torch.arange(H)[:, None] * Dh + rows_per_head).flatten()        # (D,): the same reordering in every head
converted = copy.deepcopy(model)
with torch.no_grad():
    for block in converted.blocks:
        block.attn.q_proj.weight.copy_(block.attn.q_proj.weight[new_rows])
        block.attn.k_proj.weight.copy_(block.attn.k_proj.weight[new_rows])

    with using_parts(apply_rope=apply_rope_interleaved):
        wrong = sft_loss(model, batch).item()
        fixed = sft_loss(converted, batch).item()
        fixed_logits = converted(batch["input_ids"], batch["attention_mask"])
    with using_parts(apply_rope=lambda x, cos, sin: x):                     # no position information at all
        no_pos = sft_loss(model, batch).item()

print(f"loss per response token, rotate-half weights + rotate-half code : {library_loss.item():.4f}")
print(f"                         rotate-half weights + interleaved code : {wrong:.4f}   ← silent damage")
print(f"                         no RoPE at all                         : {no_pos:.4f}")
print(f"                         permuted W_q, W_k  + interleaved code  : {fixed:.4f}")
print(f"max |logit difference| after the conversion: {(fixed_logits - library_logits)[real].abs().max().item():.1e}")


# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-10", "locked": true, "schema_version": 3, "solution": false}
# ## 6. Where the parameters are
#
# With vocabulary $V$, width $D$, $L$ layers and SwiGLU width $F$:
#
# | part | parameters | here |
# |---|---|---|
# | token embedding $E$ (also the output head: tied) | $V D$ | $90 \cdot 128$ |
# | attention, per layer: $W_q, W_k, W_v, W_o$ | $4 D^2$ | $4 \cdot 128^2$ |
# | SwiGLU MLP, per layer: $W_\text{gate}, W_\text{up}, W_\text{down}$ | $3 D F$ | $3 \cdot 128 \cdot 352$ |
# | RMSNorm gains: 2 per layer + 1 final | $(2L + 1) D$ | $5 \cdot 128$ |
#
# No biases anywhere, and RoPE has no parameters. With $F \approx \frac83 D$ a layer holds about
# $4D^2 + 8D^2 = 12 D^2$ parameters, so the total is roughly $12 L D^2 + V D$: **quadratic in the width,
# linear in the depth**. The cell below counts the model's own tensors and checks the sum against
# `model.num_parameters()` (which counts the tied matrix once).

# %% id="demo-09"
def part_of(name):
    if name.startswith("tok_emb"):
        return "embedding = output head (tied)"
    if ".attn." in name:
        return "attention (W_q, W_k, W_v, W_o)"
    if ".mlp." in name:
        return "MLP (SwiGLU)"
    return "norms (RMSNorm gains)"


counts = dict.fromkeys(["embedding = output head (tied)", "attention (W_q, W_k, W_v, W_o)", "MLP (SwiGLU)",
                        "norms (RMSNorm gains)"], 0)
for name, p in model.named_parameters():                 # a tied matrix is listed once
    counts[part_of(name)] += p.numel()
total = sum(counts.values())
assert total == model.num_parameters()
for part, n in counts.items():
    print(f"{part:<34}{n:>9,}  {100 * n / total:5.1f} %")
print(f"{'total':<34}{total:>9,}")

fig, axes = plt.subplots(1, 2, figsize=(9.4, 3.7))
bars = axes[0].barh(list(counts), list(counts.values()), color=["C0", "C1", "C2", "C3"])
axes[0].bar_label(bars, labels=[f"{n:,}" for n in counts.values()], padding=3)
axes[0].set_xlim(0, 1.35 * max(counts.values()))
axes[0].xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v / 1000:.0f}k"))
axes[0].invert_yaxis()
axes[0].set(xlabel="parameters", title=f"TinyLM: {total:,} parameters")


import math


def n_params(V, D, L, F, tied=True):
    return V * D * (1 if tied else 2) + L * (4 * D * D + 3 * D * F + 2 * D) + D


widths = [64, 128, 256, 512, 1024]
for L in [2, 4, 8]:
    sizes = [n_params(90, d, L, 32 * math.ceil(8 * d / 3 / 32)) for d in widths]   # F ≈ 8/3·D, rounded up to a multiple of 32
    axes[1].plot(widths, sizes, marker="o", label=f"{L} layers")
axes[1].plot([128], [total], "k*", ms=14, label="this model")
axes[1].set(xscale="log", yscale="log", xlabel="width D", ylabel="parameters", title="≈ 12·L·D² + V·D")
axes[1].legend()
fig.tight_layout()

print("formula for this model:", f"{n_params(90, 128, 2, 352):,}")
print("the same formula, LLaMA-7B's shape (V=32000, D=4096, L=32, F=11008, untied head):",
      f"{n_params(32000, 4096, 32, 11008, tied=False) / 1e9:.2f} B")

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-11", "locked": true, "schema_version": 3, "solution": false}
# At this size the embedding is a small share because the vocabulary has only 90 words; with a real
# tokenizer ($V$ = 32k–150k) it is a large part of a small model, one reason small models often tie the
# input and output matrices. The same formula gives LLaMA-7B's published 6.74 B parameters once its output
# head is counted as a separate $V \times D$ matrix (`tied=False`): LLaMA does not tie it, so the blocks are
# the same as here, but the head is not — beyond that, only $V$, $D$, $L$ and $F$ grow.
#
# ## 7. One forward pass, shape by shape
#
# Here is the model's forward pass written out by hand with its own weights and your three functions,
# every step annotated with its shape. To keep it short, the batch is cut to a prefix where every row is
# a real token, so no padding mask is needed — just the causal one. The result must match `model(ids)`.

# %% id="demo-10"
T = int(batch["attention_mask"].sum(1).min())            # the shortest row: no padding before column T
ids = batch["input_ids"][:4, :T]                         # (B, T)
B = ids.shape[0]
eps = model.config.norm_eps
with torch.no_grad():
    x = model.tok_emb(ids)                                           # (B, T, D): one embedding row per token
    cos, sin = rope_angles(torch.arange(T), Dh)                      # (T, Dh/2) each
    causal = torch.ones(T, T, dtype=torch.bool).tril()               # (T, T): query t may see keys s ≤ t
    for block in model.blocks:
        attn, mlp = block.attn, block.mlp
        h = my_rms_norm(x, block.norm1.weight, eps)                  # (B, T, D)
        q = (h @ attn.q_proj.weight.T).view(B, T, H, Dh).transpose(1, 2)   # (B, H, T, Dh)
        k = (h @ attn.k_proj.weight.T).view(B, T, H, Dh).transpose(1, 2)   # (B, H, T, Dh)
        v = (h @ attn.v_proj.weight.T).view(B, T, H, Dh).transpose(1, 2)   # (B, H, T, Dh)
        q, k = my_apply_rope(q, cos, sin), my_apply_rope(k, cos, sin)      # (B, H, T, Dh): positions enter
        scores = q @ k.transpose(-2, -1) / Dh ** 0.5                 # (B, H, T, T)
        scores = scores.masked_fill(~causal, float("-inf"))          # (B, H, T, T): no looking ahead
        weights = scores.softmax(dim=-1)                             # (B, H, T, T): each row sums to 1
        a = (weights @ v).transpose(1, 2).reshape(B, T, H * Dh)      # (B, T, D): heads side by side
        x = x + a @ attn.o_proj.weight.T                             # (B, T, D): residual
        h = my_rms_norm(x, block.norm2.weight, eps)                  # (B, T, D)
        x = x + my_swiglu(h, mlp.w_gate.weight, mlp.w_up.weight, mlp.w_down.weight)  # (B, T, D); (B, T, F) inside
    x = my_rms_norm(x, model.norm_f.weight, eps)                     # (B, T, D)
    logits = x @ model.tok_emb.weight.T                              # (B, T, V): the tied output head
    reference = model(ids)                                           # (B, T, V)

print(f"ids {tuple(ids.shape)} → embeddings {(B, T, model.config.d_model)} → q, k, v {tuple(q.shape)} "
      f"→ scores {tuple(scores.shape)} → logits {tuple(logits.shape)}")
print(f"max |by hand − model(ids)| = {(logits - reference).abs().max().item():.1e}")

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-12", "locked": true, "schema_version": 3, "solution": false}
# ### The causal mask at work
#
# `logits[:, t]` must depend only on tokens `0 … t`: that is what lets one forward pass score every
# position of a sequence at once (SFT and DPO both rely on it). Below, one token in the middle of a
# sequence is replaced by another word. The logits before it do not move at all; from that position on
# they do. The left panel shows the attention weights of one head from the pass above: everything above
# the diagonal is exactly zero.

# %% id="demo-11"
row = batch["input_ids"][:1, :T].clone()                         # (1, T)
changed_at = T // 2
edited = row.clone()
new_word = "awful" if tokenizer.id_to_token(int(row[0, changed_at])) != "awful" else "great"
edited[0, changed_at] = tokenizer.token_to_id(new_word)
with torch.no_grad():
    delta = (model(edited) - model(row)).abs().amax(dim=-1)[0]   # (T,): largest logit change per position

print("sequence:", tokenizer.decode(row[0].tolist(), skip_special=False))
print(f"position {changed_at}: {tokenizer.id_to_token(int(row[0, changed_at]))!r} → {tokenizer.id_to_token(int(edited[0, changed_at]))!r}")
print(f"largest change before position {changed_at}: {delta[:changed_at].max().item():.1e}; "
      f"from it on: {delta[changed_at:].max().item():.2f}")

fig, axes = plt.subplots(1, 2, figsize=(9.4, 4))
im = axes[0].imshow(weights[0, 0], cmap="viridis")
axes[0].set(xlabel="key position s", ylabel="query position t", title="attention weights, last layer, head 0",
            xticks=range(0, T, 2), yticks=range(0, T, 2))
fig.colorbar(im, ax=axes[0], fraction=0.046)
axes[1].bar(range(changed_at, T), delta[changed_at:], color="C3")      # log scale: the exact zeros before are not drawn
axes[1].axvline(changed_at - 0.5, c="k", ls="--", lw=1)
axes[1].text(changed_at / 2 - 0.5, 0.5, "exactly 0\nbefore the change", ha="center", transform=axes[1].get_xaxis_transform())
axes[1].set(xlabel="position t", ylabel="max |Δ logits[t]|", yscale="log", xlim=(-0.5, T - 0.5),
            title=f"token {changed_at} changed: earlier logits stay put")
fig.tight_layout()

# %% [markdown] nbgrader={"grade": false, "grade_id": "takeaways", "locked": true, "schema_version": 3, "solution": false}
# ## Takeaways
#
# - `TinyLM` is a miniature LLaMA: embedding → $L$ × [RMSNorm → attention with RoPE → residual →
#   RMSNorm → SwiGLU → residual] → RMSNorm → tied output head. The DPO policy and reference are this model.
# - **RMSNorm** divides by the root-mean-square (with $\epsilon$ inside the root) and multiplies by a gain:
#   LayerNorm without the centring and the bias.
# - **SwiGLU** multiplies a SiLU-gated projection with a linear one; three matrices at width $\approx\frac83 D$
#   cost what a $4D$ ReLU MLP costs.
# - **RoPE** rotates pairs of query/key coordinates by position-dependent angles, so scores depend only
#   on the offset $m - n$. Rotate-half and interleaved pair the coordinates differently; mixing them up
#   fails silently, so measure the loss after loading weights.
# - Parameters: $VD$ for the tied embedding, $4D^2$ attention and $3DF$ MLP per layer, a few gains —
#   about $12LD^2 + VD$ in all; here 413,568, about two thirds of them in the MLPs.
# - The causal mask makes `logits[:, t]` a function of tokens $\le t$ only.
#
# ## Interview questions this prepares you for
#
# 1. RMSNorm vs LayerNorm: what does RMSNorm drop, and why does it still work? Where does $\epsilon$ go?
# 2. What does SwiGLU's gate add over a ReLU MLP, and why is its hidden width about $\frac83 D$ instead of $4D$?
# 3. How does RoPE encode *relative* position? Show that $\langle R_m q, R_n k\rangle$ depends only on $n - m$.
#    Why are $q$ and $k$ rotated but not $v$?
# 4. Which RoPE convention does your code use? How would you notice a mismatch when loading someone
#    else's weights, and how would you fix it without retraining?
# 5. How many parameters does this model have, and where are they? How does the count grow with width
#    and with depth?
# 6. Why can one forward pass produce the training signal for every position of a sequence?
