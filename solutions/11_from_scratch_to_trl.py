# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
#   language_info:
#     name: python
# ---

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-01", "locked": true, "schema_version": 3, "solution": false}
# # 11 · From scratch to the production stack: your model in `transformers`, your loss in TRL
#
# You wrote DPO yourself and checked every piece of it. The next DPO you run will most likely be
# Hugging Face's: a `transformers` model trained by TRL's `DPOTrainer`. The question to settle before
# you trust it is simple: **does TRL compute the same thing you wrote?** This bonus lesson answers it
# with numbers, offline and on a CPU: the course's SFT model becomes a `LlamaForCausalLM` (you write the
# export), TRL's loss and logged metrics are compared with yours on one batch, and a short TRL training
# run is set beside the course's own trainer on the same task and the same ground-truth reward.
#
# **Goals**
# - write the export of `TinyLM` to `LlamaForCausalLM`: which configuration field carries which
#   convention, and the renaming of every weight;
# - see the logits agree to float32 rounding, with right and with left padding, and after
#   `save_pretrained` / `from_pretrained`;
# - see your `dpo_loss` and TRL's loss and metrics agree on a batch, and where the two conventions differ;
# - train with `DPOTrainer` and with the course trainer in the same setting, and read the comparison;
# - map every `DPOConfig` argument that matters to the course concept it implements.
#
# **Prerequisites:** lesson 02 (the DPO loss), lesson 04 (`get_logps`, the response mask), lesson 05
# (the model's parts), lesson 08 (the training step, the cached reference). It uses `transformers`, `trl`,
# `accelerate` and `tokenizers` (pinned in the course's `requirements.txt`; Colab has them already).
#
# **Time:** about 40 minutes. Run All takes under a minute on a laptop CPU.

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false}
# Setup: run this cell first. Where rlhf_core is missing (Colab, a fresh kernel) it installs the course
# library, keeping the torch already there; then it checks the environment and fixes the random seed.
COURSE_REPO_URL = "https://github.com/dpo-paper-to-code/dpo-paper-to-code"
SEED = 11
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
import copy, os, tempfile
os.environ.setdefault("HF_HUB_OFFLINE", "1")            # before transformers loads: nothing comes from a hub
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
import torch
import transformers, trl
from rlhf_core import hf
from rlhf_core.checkpoint import load_sft_model
from rlhf_core.train import make_reference

sft, tokenizer, _ = load_sft_model()        # lesson 06's SFT model (the shipped checkpoint every lesson starts from)
reference = make_reference(sft)              # a frozen copy, as in lesson 08
print(f"transformers {transformers.__version__}, TRL {trl.__version__}; offline: HF_HUB_OFFLINE={os.environ['HF_HUB_OFFLINE']}")
print(sft.config)

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-02", "locked": true, "schema_version": 3, "solution": false}
# ## 1. The same model under two sets of names
#
# `TinyLM` is a miniature LLaMA: pre-norm blocks with RMSNorm, rotary embeddings in the rotate-half
# layout, a SwiGLU MLP and no biases. `transformers`' `LlamaForCausalLM` is built from exactly these
# parts, so an export changes no arithmetic. Two things must be carried over by hand:
#
# * **the configuration**: besides the sizes (vocabulary, width, depth, heads, MLP width), four fields
#   carry a *convention* that a loaded checkpoint must agree with, and `LlamaConfig`'s defaults do not
#   always match the course's: the epsilon inside RMSNorm's square root, the RoPE base (in
#   `transformers` 5 it sits in `rope_parameters`, under `"rope_theta"`), whether the output head *is*
#   the embedding matrix (`tie_word_embeddings`; **Llama's default is `False`**), and the absence of
#   biases. Plain multi-head attention means as many key/value heads as heads;
# * **the weight names**: the same tensors live under other names. Both libraries store an `nn.Linear`
#   weight as `(out, in)`.
#
# The cell below prints both lists side by side: the course's weights, and those of a
# `LlamaForCausalLM` built from the sizes alone. Read them before the exercise: the shapes and the
# order tell you most of the renaming.

# %% id="demo-02"
from transformers import LlamaConfig, LlamaForCausalLM

c = sft.config
sizes_only = LlamaConfig(vocab_size=c.vocab_size, hidden_size=c.d_model, intermediate_size=c.d_ff,
                         num_hidden_layers=c.n_layers, num_attention_heads=c.n_heads, num_key_value_heads=c.n_heads)
empty_llama = LlamaForCausalLM(sizes_only)
ours, theirs = sft.state_dict(), empty_llama.state_dict()
print(f"{'TinyLM':<28}{'shape':<14}  {'LlamaForCausalLM':<44}{'shape'}")
for (a, ta), (b, tb) in zip(ours.items(), theirs.items()):
    print(f"{a:<28}{str(tuple(ta.shape)):<14}  {b:<44}{tuple(tb.shape)}")
print(f"\nLlamaConfig's defaults: rms_norm_eps={sizes_only.rms_norm_eps}, rope_parameters={sizes_only.rope_parameters}, "
      f"tie_word_embeddings={sizes_only.tie_word_embeddings}")
print(f"the course's:           norm_eps={c.norm_eps}, rope_base={c.rope_base}, tie_embeddings={c.tie_embeddings}")


# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-03", "locked": true, "schema_version": 3, "solution": false}
# The two lists are in a different order inside a block (Llama keeps the MLP before the norms), so pair
# the names by role, not by line: `norm1` is the norm *before* attention, `norm2` the one before the MLP;
# `w_gate` is the branch that goes through SiLU (lesson 05), `w_up` the linear one.
#
# ### Exercise 1 — `export_model` · ★★☆ · 15 min
#
# Write `export_model(model, tokenizer)`: build a `LlamaConfig` whose fields carry `model.config`'s
# conventions, create a `LlamaForCausalLM` from it, load every weight of `model` under its Llama name,
# and return the Llama model in eval mode. Give the config the tokenizer's special ids too
# (`pad_token_id=tokenizer.pad_id`, and likewise `bos_id`, `eos_id`), so that `generate` and TRL
# know them. `load_state_dict(weights, strict=False)` returns the names it did not find: only the
# rotary buffers (`…rotary_emb.inv_freq`, computed from the config) may be among them.

# %% nbgrader={"grade": false, "grade_id": "export_model", "locked": false, "schema_version": 3, "solution": true}
def export_model(model, tokenizer):
    """The TinyLM `model` as a LlamaForCausalLM (float32, eval mode) with the same logits."""
    ### BEGIN SOLUTION
    c = model.config
    config = LlamaConfig(
        vocab_size=c.vocab_size, hidden_size=c.d_model, intermediate_size=c.d_ff,
        num_hidden_layers=c.n_layers, num_attention_heads=c.n_heads, num_key_value_heads=c.n_heads,
        head_dim=c.d_model // c.n_heads, max_position_embeddings=c.max_seq_len, hidden_act="silu",
        rms_norm_eps=c.norm_eps,                                                   # eps inside the root
        rope_parameters={"rope_type": "default", "rope_theta": float(c.rope_base)},  # the RoPE base
        tie_word_embeddings=c.tie_embeddings,                                      # the head IS the embedding
        attention_bias=False, mlp_bias=False,
        pad_token_id=tokenizer.pad_id, bos_token_id=tokenizer.bos_id, eos_token_id=tokenizer.eos_id,
    )
    top = {"tok_emb.weight": "model.embed_tokens.weight", "norm_f.weight": "model.norm.weight",
           "lm_head.weight": "lm_head.weight"}
    block = {"norm1": "input_layernorm", "norm2": "post_attention_layernorm",
             "attn.q_proj": "self_attn.q_proj", "attn.k_proj": "self_attn.k_proj",
             "attn.v_proj": "self_attn.v_proj", "attn.o_proj": "self_attn.o_proj",
             "mlp.w_gate": "mlp.gate_proj", "mlp.w_up": "mlp.up_proj", "mlp.w_down": "mlp.down_proj"}
    weights = {}
    for name, tensor in model.state_dict().items():
        if name in top:
            new_name = top[name]
        else:                                          # blocks.<i>.<part>.weight
            _, i, rest = name.split(".", 2)
            new_name = f"model.layers.{i}.{block[rest.removesuffix('.weight')]}.weight"
        weights[new_name] = tensor.detach().float()    # (out, in) in both: no transpose
    llama = LlamaForCausalLM(config)
    missing, unexpected = llama.load_state_dict(weights, strict=False)
    assert not unexpected and all("rotary_emb" in k for k in missing), (missing, unexpected)
    return llama.eval()
    ### END SOLUTION


# %% check="export_model"

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-04", "locked": true, "schema_version": 3, "solution": false}
# <details><summary>Hint</summary>
#
# Three groups of work. (1) The config: the sizes as in `sizes_only` above, then the four convention
# fields from `model.config` (`norm_eps`, `rope_base`, `tie_embeddings`, and no biases on attention or
# MLP). (2) The names: three top-level tensors (embedding, final norm, head) and nine per block; build
# the new name from the block index and a small dictionary of parts. (3) Load, then `.eval()`. If the
# check says a matrix is transposed, you added a `.T`: both libraries store `(out, in)`. If it says the
# head is a separate copy, you left `tie_word_embeddings` at Llama's default.
# </details>

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-05", "locked": true, "schema_version": 3, "solution": false}
# ## 2. The same logits, padded either way, saved and loaded back
#
# Below, your export (or the library's, while yours does not pass its check) runs on a batch of real
# prompts and responses. With **right** padding both models number the positions `0 … T−1` and the
# logits agree on every real token. With **left** padding they number them differently: the course
# counts positions over real tokens only (`cumsum(mask) − 1`), while `LlamaForCausalLM.forward` numbers
# the *columns* unless it is given `position_ids`, so a row with three pads starts at position 3. That
# shifts every position of the row by the same amount, and a RoPE attention score depends only on the
# *distance* between two positions (lesson 05): the logits still agree, up to float32 rounding, which is
# somewhat larger because larger angles are rotated. Passing `position_ids = cumsum(mask) − 1`
# (`hf.course_position_ids`) gives exactly the course's numbering. (With learned absolute position
# embeddings, as in GPT-2, the shift would change the logits: there the positions must be passed.)
# The cell prints all three differences.

# %% id="demo-03"
from rlhf_core import task
from rlhf_core.data import collate_sft
from rlhf_core.course.notebook import yours_or_reference

my_export = yours_or_reference("export_model", export_model)
llama = my_export(sft, tokenizer)
corpus = task.make_corpus(8, seed=3)
batch = collate_sft(corpus, tokenizer)                         # right-padded: <bos> prompt response <eos> <pad>…
ids, mask = batch["input_ids"], batch["attention_mask"]
real = mask.bool()

with torch.no_grad():
    course = sft(ids, mask)
    theirs = llama(input_ids=ids, attention_mask=mask).logits
    print(f"right padding: max |Δ logits| over real tokens = {(course - theirs)[real].abs().max():.2e}")

    shift = (1 - mask).sum(1)                                   # the same rows, left-padded
    left_ids = torch.stack([row.roll(int(s)) for row, s in zip(ids, shift)])
    left_mask = torch.stack([row.roll(int(s)) for row, s in zip(mask, shift)])
    left_real = left_mask.bool()
    course_left = sft(left_ids, left_mask)
    naive = llama(input_ids=left_ids, attention_mask=left_mask).logits
    positioned = llama(input_ids=left_ids, attention_mask=left_mask,
                       position_ids=hf.course_position_ids(left_mask)).logits
    print(f"left padding, Llama's default positions:      max |Δ| = {(course_left - naive)[left_real].abs().max():.2e}")
    print(f"left padding, position_ids = cumsum(mask) − 1: max |Δ| = {(course_left - positioned)[left_real].abs().max():.2e}")

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-06", "locked": true, "schema_version": 3, "solution": false}
# Saved with `save_pretrained`, the folder is an ordinary Hugging Face checkpoint: `config.json`, the
# weights in `model.safetensors`, and the tokenizer, built with the `tokenizers` package as a word-level
# model over the course's vocabulary (same ids, `<bos>` added in front). `AutoModelForCausalLM` and
# `AutoTokenizer` load it from the folder alone (`local_files_only`: nothing comes from a hub). Greedy
# decoding through `transformers`' own `generate` then writes what the course's model writes.

# %% id="demo-04"
folder = tempfile.mkdtemp(prefix="tinylm-llama-")
llama.save_pretrained(folder)
hf.export_tokenizer(tokenizer).save_pretrained(folder)
print("saved:", sorted(os.listdir(folder)))

loaded, hf_tokenizer = hf.load_pretrained(folder)               # AutoModelForCausalLM / AutoTokenizer, offline
with torch.no_grad():
    again = loaded(input_ids=ids, attention_mask=mask).logits
print(f"after from_pretrained: max |Δ logits| = {(course - again)[real].abs().max():.2e}")

prompt = task.HELDOUT_PROMPTS[0]
encoded = hf_tokenizer(prompt, return_tensors="pt")             # adds <bos>, like the course's encoder
with torch.no_grad():
    out = loaded.generate(**encoded, max_new_tokens=24, do_sample=False, eos_token_id=tokenizer.eos_id,
                          pad_token_id=tokenizer.pad_id)
    ours_ids = sft.generate(encoded["input_ids"], max_new_tokens=24, temperature=0.0, eos_id=tokenizer.eos_id)
theirs_text = hf_tokenizer.decode(out[0, encoded["input_ids"].shape[1]:], skip_special_tokens=True)
ours_text = tokenizer.decode(ours_ids[0].tolist(), skip_special=True)
print(f"prompt: {prompt!r}\n  transformers generate: {theirs_text!r}\n  course generate:       {ours_text!r}")
print("the same greedy text:", theirs_text.split() == ours_text.split())

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-07", "locked": true, "schema_version": 3, "solution": false}
# ## 3. Your loss against TRL's, on one batch
#
# TRL reads preference data as three text columns, `prompt`, `chosen` and `rejected`. It tokenizes
# `prompt + chosen` as one string, appends the EOS token, and marks the completion's tokens (and the
# EOS) in a `completion_mask`: lesson 04's response mask under another name. Each response therefore
# starts with a space, so that the words split where the course's encoder splits them
# (`hf.trl_rows` does it). TRL then computes the policy's and the reference's summed log-probs of each
# completion and the loss of the paper, $-\log\sigma\big(\beta[(\log\pi-\log\pi_\text{ref})(y_w) -
# (\log\pi-\log\pi_\text{ref})(y_l)]\big)$, averaged over the batch.
#
# The policy below is the SFT model moved a little (seeded noise), so that the loss is not exactly
# $\log 2$. The next cell holds the library's `dpo_loss`; paste your own from lesson 02 over it to
# compare *yours*: it is used only if it passes its check.

# %% id="demo-05"
from rlhf_core.losses import dpo_loss          # ← paste your dpo_loss from lesson 02 here to compare it with TRL's

# %% id="demo-06"
from rlhf_core.data import collate_pairs, pairs_by_reward
from rlhf_core.logps import get_logps
from rlhf_core.metrics import dpo_metrics
from rlhf_core.trl_dpo import loss_on_batch

BETA = 0.1
policy = copy.deepcopy(sft)
g = torch.Generator().manual_seed(0)
with torch.no_grad():
    for p in policy.parameters():
        p.add_(0.02 * torch.randn(p.shape, generator=g))
pairs = list(pairs_by_reward(reference, tokenizer, list(task.TRAIN_PROMPTS[:8]), n_samples=4, seed=1))

my_dpo_loss = yours_or_reference("dpo_loss", dpo_loss)
batch = collate_pairs(pairs, tokenizer)
with torch.no_grad():
    logps = [get_logps(model(batch[f"{side}_input_ids"], batch[f"{side}_attention_mask"]),
                       batch[f"{side}_input_ids"], batch[f"{side}_response_mask"])
             for model in (policy, reference) for side in ("chosen", "rejected")]
course_loss = my_dpo_loss(*logps, beta=BETA).item()
course_metrics = dpo_metrics(*logps, beta=BETA)

trl_loss, trl_metrics, _ = loss_on_batch(policy, reference, tokenizer, pairs, beta=BETA)
print(f"{len(pairs)} pairs, β = {BETA}")
print(f"{'':<20}{'course':>12}{'TRL':>12}{'|Δ|':>10}")
print(f"{'loss':<20}{course_loss:12.6f}{trl_loss:12.6f}{abs(course_loss - trl_loss):10.1e}")
for name in ("rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies", "logps/chosen", "logps/rejected"):
    print(f"{name:<20}{course_metrics[name]:12.5f}{trl_metrics[name]:12.5f}{abs(course_metrics[name] - trl_metrics[name]):10.1e}")

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-08", "locked": true, "schema_version": 3, "solution": false}
# Same loss, same metrics by name: TRL's `rewards/chosen` is $\beta(\log\pi-\log\pi_\text{ref})(y_w)$,
# with β (lesson 08's convention), and its `logps/*` are *summed* over the completion. The course's
# test suite pins these equalities (`tests/test_trl_parity.py`, loss to 1e-6) so that a new TRL version
# that changes a number or a metric name fails loudly.
#
# Where the conventions differ, the numbers show it. The IPO paper (Azar et al., 2023) writes its loss on
# full-sequence log-ratios; TRL's `loss_type="ipo"` averages each log-ratio over the completion's tokens
# (the course's `ipo_loss` follows TRL and says so), so the same β sets a target gap of $1/(2\beta)$ per
# *token* in TRL and per *sequence* in the paper. TRL's `label_smoothing` ε is read by four of its losses
# only: `"robust"` (robust DPO, Chowdhury et al. 2024, which subtracts the flipped-label term and rescales by
# $1/(1-2\varepsilon)$), `"exo_pair"`, `"aot"` and `"aot_unpaired"`. TRL 1.16's `"sigmoid"` loss ignores it and
# stays plain DPO, and no TRL 1.16 loss is lesson 09's conservative DPO pair by pair (older TRL versions, in
# 2023–24, computed conservative DPO inside `"sigmoid"` when ε > 0). The second cell below measures it. And
# TRL's default `bf16=True` rounds the forward passes: `hf.trl_config` sets it off, which is what keeps the
# loss within 1e-6.

# %% id="demo-07"
from rlhf_core.losses import ipo_loss

trl_ipo, _, _ = loss_on_batch(policy, reference, tokenizer, pairs, beta=BETA, loss_type=["ipo"])
with torch.no_grad():
    averaged = [get_logps(model(batch[f"{side}_input_ids"], batch[f"{side}_attention_mask"]),
                          batch[f"{side}_input_ids"], batch[f"{side}_response_mask"], average=True)
                for model in (policy, reference) for side in ("chosen", "rejected")]
print(f"TRL ipo:                           {trl_ipo:.6f}")
print(f"IPO on per-token averages (TRL's): {ipo_loss(*averaged, beta=BETA).item():.6f}")
print(f"IPO on summed log-probs (paper's): {ipo_loss(*logps, beta=BETA).item():.6f}")

# %% id="demo-07b"
from rlhf_core.losses import conservative_dpo_loss

eps = 0.3
trl_smoothed, _, _ = loss_on_batch(policy, reference, tokenizer, pairs, beta=BETA, label_smoothing=eps)
trl_robust, _, _ = loss_on_batch(policy, reference, tokenizer, pairs, beta=BETA, loss_type=["robust"], label_smoothing=eps)
print(f"TRL sigmoid, label_smoothing 0:   {trl_loss:.6f}")
print(f"TRL sigmoid, label_smoothing {eps}: {trl_smoothed:.6f}   (ignored: the same loss)")
print(f"TRL robust,  label_smoothing {eps}: {trl_robust:.6f}")
print(f"conservative DPO, ε {eps} (lesson 09): {conservative_dpo_loss(*logps, beta=BETA, label_smoothing=eps).item():.6f}")

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-09", "locked": true, "schema_version": 3, "solution": false}
# ## 4. A TRL training run beside the course's trainer
#
# Now the whole training. `rlhf_core.trl_dpo.train_with_trl` exports the SFT model, trains it with
# `DPOTrainer` and brings the weights back into a `TinyLM`, so that the course's ground-truth reward
# and its sequence-level KL (lesson 08) score both runs the same way. The setting is the same for both:
# β, learning rate, batch, steps, linear warm-up then cosine decay (TRL's warm-up starts from 0, the
# course's from lr/`warmup_steps`: a small difference), gradient clipping, and the reference's
# log-probs computed once (`precompute_ref_log_probs=True`, lesson 08's cache). Both start from the same
# weights and the same pairs; they draw their batches in different orders, so a single run of each is
# one sample of the same distribution, not a step-by-step replica. The course's tests compare the two
# trainers across seeds against their own seed-to-seed spread; here, look at the curves and the scores.

# %% id="demo-08"
from dataclasses import replace
from rlhf_core.evaluation import evaluate_policy
from rlhf_core.recipes import DEFAULT_DPO, reward_pairs
from rlhf_core.train import train_dpo
from rlhf_core.trl_dpo import train_with_trl

config = replace(DEFAULT_DPO, steps=40, eval_every=10**9)
# as many pairs as 40 steps of 32 take: each trainer sees each pair once (and the reference runs over no more)
train_pairs = reward_pairs(reference, tokenizer, groups_per_prompt=8, seed=1)[: config.steps * config.batch_size]
print(f"{len(train_pairs)} pairs; β {config.beta}, lr {config.lr}, batch {config.batch_size}, {config.steps} steps")

course_policy = copy.deepcopy(sft)
course_history = train_dpo(course_policy, reference, tokenizer, train_pairs, config, eval_prompts=None)
trl_run = train_with_trl(sft, reference, tokenizer, train_pairs, config, progress=True)
print(f"TRL's run took {trl_run.seconds:.0f} s")

# %% id="demo-09"
import matplotlib.pyplot as plt

trl_rows = [row for row in trl_run.log if "loss" in row and "rewards/margins" in row]
fig, axes = plt.subplots(1, 2, figsize=(9.4, 3.6))
for ax, name, title in ((axes[0], "loss", "training loss"), (axes[1], "rewards/margins", "reward margin β·m (nats)")):
    steps, values = course_history.series(name)
    ax.plot(steps, values, label="course train_dpo", alpha=0.85)
    ax.plot([r["step"] for r in trl_rows], [r[name] for r in trl_rows], label="TRL DPOTrainer", alpha=0.85)
    ax.set(xlabel="step", title=title)
    ax.grid(alpha=0.3)
axes[0].legend()
fig.tight_layout()
plt.show()

scores = {name: evaluate_policy(model, reference, tokenizer, seed=0)
          for name, model in (("SFT", sft), ("course", course_policy), ("TRL", trl_run.policy))}
print(f"{'held-out':<10}{'reward':>9}{'KL (nats)':>11}{'grammatical':>13}")
for name, s in scores.items():
    print(f"{name:<10}{s['eval/reward']:+9.3f}{s['eval/kl']:11.3f}{s['eval/grammatical']:13.0%}")
print(f"course − TRL: reward {scores['course']['eval/reward'] - scores['TRL']['eval/reward']:+.3f}, "
      f"KL {scores['course']['eval/kl'] - scores['TRL']['eval/kl']:+.3f}")

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-10", "locked": true, "schema_version": 3, "solution": false}
# ## 5. Which TRL argument is which course concept
#
# | `trl.DPOConfig` (or `DPOTrainer`) | what it is in this course |
# |---|---|
# | `beta` | β of the objective (lesson 01) and of the loss (lesson 02) |
# | `loss_type=["sigmoid"]` | the paper's loss, lesson 02's `dpo_loss`; `"ipo"`, `"hinge"` and `"sigmoid_norm"` (length-normalised) are the variants of lesson 09, with the conventions of section 3 |
# | `label_smoothing` | ε, read by `"robust"` (robust DPO), `"exo_pair"`, `"aot"` and `"aot_unpaired"`; `"sigmoid"` ignores it (older TRL versions computed conservative DPO there); no TRL 1.16 loss is the course's conservative DPO (lesson 09) |
# | `loss_type=["sigmoid", "sft"]`, `loss_weights=[1.0, α]` | lesson 08's RPO (TRL 1.16 has no `rpo_alpha`): DPO plus α times the chosen responses' NLL, which TRL averages over all chosen tokens of the batch, the course per response |
# | `f_divergence_type` (default `"reverse_kl"`) | the paper's reverse KL; `"forward_kl"`, `"js_divergence"` and `"alpha_divergence"` put another f-divergence in its place (f-DPO, Wang et al. 2023) |
# | `precompute_ref_log_probs=True` | lesson 08's cached reference: the frozen model runs once over the data, not at every step |
# | `DPOTrainer(ref_model=...)` | the frozen copy of the SFT model (lesson 08's `make_reference`), passed here explicitly. Left out, TRL uses the policy's own starting point when it precomputes (or disables a PEFT adapter), and otherwise loads the model again *by its name*, which means a hub download: this course never does |
# | `sync_ref_model`, `ref_model_sync_steps`, `ref_model_mixup_alpha` | a reference that moves *during* training (TR-DPO, Gorbatovski et al. 2024): every `ref_model_sync_steps` steps, π_ref ← α·π_θ + (1 − α)·π_ref. Off by default; lesson 08's iterative round moves the reference once, between two rounds, and keeps it frozen within each |
# | `max_length`, `truncation_mode` | lesson 04's mask meets a length limit: truncated tokens leave the `completion_mask`, so they count in no log-prob |
# | `completion_mask` (in the batch) | lesson 04's response mask: the response and its EOS |
# | `per_device_train_batch_size` × processes × `gradient_accumulation_steps` | the global batch (lesson 08's `batch_size` and `micro_batches`) |
# | `learning_rate`, `warmup_steps`, `lr_scheduler_type="cosine"`, `max_grad_norm` | lesson 08's optimiser settings, and the learning rate that lesson 09 showed to cause margin explosion |
# | `bf16` (default `True`) | float32 in this course; bf16 rounds the log-probs by about 1e-3 |
# | `rewards/chosen`, `rewards/margins`, `logps/chosen` (logged) | lesson 08's implicit rewards (with β) and summed log-probs |
#
# **Past one machine.** The same training runs data-parallel with Hugging Face `accelerate`: each process
# takes a slice of the global batch and the gradients are averaged. On a CPU (two processes over the
# `gloo` backend; the course's tests check that the first step's loss equals the single-process one):
#
# ```
# ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 -m rlhf_core.trl_dpo first-step
# ```
#
# and with N GPUs, `accelerate launch --num_processes N -m rlhf_core.trl_dpo first-step` (nothing in this
# course needs a GPU).

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-fdpo", "locked": true, "schema_version": 3, "solution": false}
# ## 6. Two questions past the course: the direction of the KL, and the recipe at scale
#
# ### Which KL, in which direction: f-DPO
#
# The objective of lesson 01 charges the **reverse** KL, $\mathrm{KL}(\pi\,\|\,\pi_\text{ref}) =
# \mathbb{E}_{y\sim\pi}[\log \pi(y|x)/\pi_\text{ref}(y|x)]$: an expectation under the *policy*. A response the policy
# stops writing costs it nothing; a response it writes that the reference would not costs a lot. That makes the
# reverse KL *mode-seeking*: the policy may keep a few of the reference's modes and drop the rest, one reason
# DPO-tuned models write less varied text. Wang et al. 2023 (*Beyond Reverse KL: Generalizing Direct Preference
# Optimization with Diverse Divergence Constraints*, f-DPO) put an f-divergence
# $\mathbb{E}_{\pi_\text{ref}}[f(\pi/\pi_\text{ref})]$ in its place ($f(u) = u\log u$ is the reverse KL). The optimum then
# satisfies $\beta f'\big(\pi^*(y|x)/\pi_\text{ref}(y|x)\big) = r(x, y) - \lambda(x)$, with $\lambda(x)$ the multiplier that
# makes $\pi^*$ sum to 1; it plays the part of $\log Z(x)$ and cancels in a difference of two responses, as
# $Z(x)$ did in lesson 02 (they show it for every $f$ whose derivative is invertible with 0 outside its domain). So
# the implicit reward becomes $\beta f'(u)$ with $u = \pi/\pi_\text{ref}$, and the loss
# $-\log\sigma\big(\beta[f'(u_w) - f'(u_l)]\big)$:
#
# | `f_divergence_type` | $f'(u)$, as TRL 1.16 computes it | as $\log u$ grows |
# |---|---|---|
# | `"reverse_kl"` (DPO) | $\log u$ | unbounded: raising $y_w$ always pays |
# | `"forward_kl"` | $1 - 1/u$ | at most 1 |
# | `"js_divergence"` | $\log\frac{2u}{1+u}$ | at most $\log 2$ |
# | `"alpha_divergence"` | $\frac{u^{\alpha-1} - 1}{\alpha - 1}$ | at most $\frac{1}{1-\alpha}$ for $\alpha < 1$ |
#
# Every divergence of the table but the reverse KL caps the credit for raising a chosen response, while pushing a
# rejected one down still pays without bound (each $f'(u) \to -\infty$ as $u \to 0$). Wang et al. report the trade
# this buys: the other divergences keep the samples more diverse, at some cost in reward. In TRL it is one argument,
# TRL's `f_divergence_type` (default `"reverse_kl"`), with TRL's `f_alpha_divergence_coef` (default `0.5`) as α;
# the loss types built on the difference of the two scores accept it (`"sigmoid"` among them). The cell below
# computes the four losses with the formulas of the table on section 3's batch, next to TRL's own (one trainer
# each: about 2 s), and prints each $f'$ at a few log-ratios.

# %% id="demo-fdpo"
import math

import torch.nn.functional as F

f_prime = {                                   # f'(u) as a function of the log-ratio log u = log π − log π_ref
    "reverse_kl": lambda r: r,
    "forward_kl": lambda r: 1 - torch.exp(-r),
    "js_divergence": lambda r: math.log(2) + F.logsigmoid(r),
    "alpha_divergence": lambda r: (torch.exp(-0.5 * r) - 1) / -0.5,    # α = 0.5, TRL's default
}
ratio_chosen, ratio_rejected = logps[0] - logps[2], logps[1] - logps[3]   # (B,) log π/π_ref of y_w and y_l
grid = torch.tensor([-5.0, -1.0, 0.0, 1.0, 5.0])
print(f"{'f_divergence_type':<18}{'course formula':>15}{'TRL':>11}{'|Δ|':>9}   f'(u) at log u = " + "  ".join(f"{v:+.0f}" for v in grid))
for name, fp in f_prime.items():
    ours = -F.logsigmoid(BETA * (fp(ratio_chosen) - fp(ratio_rejected))).mean().item()
    theirs = trl_loss if name == "reverse_kl" else loss_on_batch(policy, reference, tokenizer, pairs, beta=BETA,
                                                                   f_divergence_type=name)[0]
    print(f"{name:<18}{ours:15.6f}{theirs:11.6f}{abs(ours - theirs):9.1e}   " + "  ".join(f"{v:+6.2f}" for v in fp(grid).tolist()))

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-scale", "locked": true, "schema_version": 3, "solution": false}
# The losses agree with TRL's to float32 rounding, and the rows show the caps: at a log-ratio of +5 the reverse
# KL's score is 5, the others' stay below 2; at −5 all of them are strongly negative.
#
# ### The recipe at scale
#
# The course trains a 0.4M-parameter model from its own SFT checkpoint, so its settings are not a recipe for a
# 7B model. For those, three sources side by side: the paper's Appendix B (lesson 09 shows it next to the
# course's), a public recipe built on TRL — the alignment-handbook's for Zephyr-7B-β (Tunstall et al. 2023,
# `recipes/zephyr-7b-beta/dpo` in `huggingface/alignment-handbook`), full fine-tuning and QLoRA — and TRL 1.16's
# defaults:
#
# | | the paper (Appendix B) | Zephyr-7B-β, full | Zephyr-7B-β, QLoRA | TRL 1.16's defaults | the course default |
# |---|---|---|---|---|---|
# | β | 0.1 (0.5 for TL;DR) | 0.01 | 0.01 | 0.1 | 0.3 |
# | peak learning rate | $10^{-6}$, RMSprop | $5\times10^{-7}$, AdamW | $5\times10^{-6}$ (LoRA r 16) | $10^{-6}$, AdamW | $3\times10^{-4}$, AdamW |
# | schedule | linear warm-up over 150 steps | cosine, warm-up over the first 10 % | the same | linear decay, no warm-up | 10 warm-up steps, cosine |
# | epochs | — | 1 | 1 | 3 | about 2.3 (200 × 32 of 2768 pairs) |
# | reference | the frozen SFT model | the frozen SFT model | the LoRA bullet below | the LoRA bullet below | a frozen copy (lesson 08) |
#
# What carries over, and what to check in your own runs:
#
# - **A small learning rate, a warm-up, one to three epochs.** At $5\times10^{-7}$–$10^{-6}$ each step barely moves a 7B
#   model; lesson 09 showed what a step too large does to a small one. Train longer and the held-out reward can
#   stop rising while the KL keeps growing: lesson 09's over-optimisation study measures where this task sits.
# - **β from 0.01 to 0.5.** A smaller β lets the policy move further from the reference (lesson 09's frontier).
# - **LoRA, and the reference for free.** With a LoRA adapter (the `peft` package) the starting policy *is* the
#   base model with the adapter switched off, since a fresh adapter's second matrix is zero. Pass
#   `DPOTrainer(peft_config=...)` and leave `DPOTrainer(ref_model=...)` at `None`: TRL 1.16 then keeps no
#   reference model at all and computes the reference's log-probs inside the adapter's `disable_adapter()`
#   context, one model in memory instead of two. Given a model that already carries a trained adapter and no
#   `ref_model`, it copies that adapter into a second, frozen one named `"ref"` and uses it as the reference: the
#   starting policy, not the bare base. (`tests/test_trl_claims.py` reads both paths in the pinned TRL's source.)
#   LoRA recipes use a larger learning rate than full fine-tuning: ten times larger in the two columns above.
# - **Filter the pairs by their quality gap.** A pair whose two responses the judge scores almost alike is mostly
#   label noise for Bradley–Terry, and DPO pushes its margin as hard as any other (lesson 02's gradient weight
#   depends on the margin, not on how sure the label is). Recipes drop ties and near-ties; the course's pairs do
#   it in the extreme — best against worst of four samples, ties dropped (lesson 07 compares this with all six
#   pairs of the four).

# %% [markdown] nbgrader={"grade": false, "grade_id": "prose-11", "locked": true, "schema_version": 3, "solution": false}
# ## Takeaways
#
# - `TinyLM` *is* a small LLaMA: the export is a renaming of weights plus a configuration whose
#   `rms_norm_eps`, RoPE base and `tie_word_embeddings` must carry the course's conventions. Llama's
#   defaults (an untied head, for one) give a model that looks right and is not.
# - Positions are a convention too. With RoPE a constant shift per row is harmless (scores depend on
#   distances); `position_ids` from the mask give exactly the course's numbering.
# - TRL's sigmoid loss and its logged rewards and log-probs equal the ones you wrote, to float32
#   rounding, once bf16 is off. Its IPO averages per token; TRL 1.16's `"sigmoid"` loss ignores
#   `label_smoothing`, which only `"robust"` (robust DPO) and a few others read.
# - `precompute_ref_log_probs`, `completion_mask` and `max_length` are lessons 08 and 04 under other
#   names; a short TRL run and the course's trainer reach the same kind of policy on the same task.
# - DPO's objective charges the reverse KL, mode-seeking; f-DPO swaps in another f-divergence, which in TRL is
#   `f_divergence_type`, and caps the credit for raising a chosen response. At scale: a learning rate near 1e-6
#   (about ten times more for LoRA), β 0.01–0.5, one to three epochs, a warm-up, pairs with a clear quality gap;
#   with LoRA the reference is the base model with the adapter switched off.
#
# ## Interview questions
#
# 1. Your exported model's logits match the original's, yet after one training step its outputs drift
#    from those of the original trained the same way. What would you check first?
# 2. A left-padded batch goes through `LlamaForCausalLM` without `position_ids`. Why are its logits
#    still right with RoPE, and for which kind of position embedding would they be wrong?
# 3. TRL's logged `rewards/margins` rises to 5 while its `logps/chosen` falls. What is happening, and
#    which lesson of this course describes it?
# 4. What does `precompute_ref_log_probs=True` save, and when can you not use it?
# 5. A colleague reports that IPO "needs a β ten times smaller in TRL than in the paper". Is that
#    plausible? Why?
# 6. Which KL does DPO's objective charge, and what changes with the forward KL or JS in its place (f-DPO)?
# 7. You fine-tune a 7B model with DPO and LoRA. What learning rate, β and number of epochs do you start from,
#    and where does the reference model come from?
