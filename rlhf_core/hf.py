"""The course's model and tokenizer in Hugging Face ``transformers``: a ``LlamaForCausalLM``.

:class:`~rlhf_core.model.TinyLM` is a miniature LLaMA, so the export is a renaming of weights,
plus a configuration that states the conventions the two codebases share:

===============================  ==============================  ==========================================
``ModelConfig`` (the course)     ``LlamaConfig`` (transformers)   convention it carries
===============================  ==============================  ==========================================
``d_model``, ``n_layers``        ``hidden_size``,                 —
                                 ``num_hidden_layers``
``n_heads``                      ``num_attention_heads`` and      plain multi-head attention (no grouped
                                 ``num_key_value_heads``          queries: as many key/value heads as heads)
``d_ff``                         ``intermediate_size``,           SwiGLU: ``down(silu(gate(x)) * up(x))``
                                 ``hidden_act="silu"``
``rope_base``                    ``rope_parameters``              "rotate-half" RoPE (first half of a head
                                 ``{"rope_type": "default",       paired with the second), the layout
                                 "rope_theta": base}``            ``LlamaForCausalLM`` uses
``norm_eps``                     ``rms_norm_eps``                 RMSNorm, eps inside the square root,
                                                                  computed in float32
``tie_embeddings``               ``tie_word_embeddings``          the output head *is* the embedding matrix
(no biases anywhere)             ``attention_bias=False``,        —
                                 ``mlp_bias=False``
``max_seq_len``                  ``max_position_embeddings``      —
===============================  ==============================  ==========================================

Positions. The course counts positions over *real* tokens only (``cumsum(mask) - 1``), so padding
never shifts them; ``LlamaForCausalLM.forward`` numbers columns ``0..T-1`` unless it is given
``position_ids``. With right padding the two agree. With left padding every position of a row is
shifted by the same count, which RoPE does not see (a score depends on the distance between two
positions only), so the logits still agree up to float32 rounding (larger rounding: larger angles;
lesson 11 prints both); ``position_ids=course_position_ids(attention_mask)`` gives exactly the
course's numbering, and ``generate`` derives its positions from the mask itself. Logits at padded
positions are meaningless in both.

The tokenizer becomes a ``PreTrainedTokenizerFast`` built with the ``tokenizers`` package: a
word-level model over the course's vocabulary (same ids), whitespace splitting, ``<unk>`` for an
unknown word, and the special tokens ``<pad>``/``<bos>``/``<eos>``/``<unk>`` (ids 0–3). The prompt
format is the course's, chat-free: ``<bos> prompt words`` then ``response words <eos>``;
``add_special_tokens=True`` adds the ``<bos>``.

Everything loads from a local folder, with no network: ``transformers`` is imported lazily (the
lessons that do not use it stay fast), and :func:`load_pretrained` passes ``local_files_only``.

CLI: ``python -m rlhf_core.hf export OUT_DIR [--checkpoint PATH]`` writes the shipped SFT model
(or the checkpoint given) to ``OUT_DIR`` with ``save_pretrained``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from .model import ModelConfig, TinyLM
from .tokenizer import WordTokenizer

if TYPE_CHECKING:  # the heavy imports stay out of lessons 01–10
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

__all__ = [
    "hf_weight_name",
    "to_llama_state_dict",
    "llama_config",
    "export_model",
    "export_tokenizer",
    "import_model",
    "save_pretrained",
    "load_pretrained",
    "course_position_ids",
    "trl_rows",
    "trl_config",
    "quiet_deprecations",
    "main",
]

# course parameter name (inside one block) -> LlamaForCausalLM's name (inside one decoder layer)
_BLOCK_NAMES = {
    "norm1.weight": "input_layernorm.weight",
    "attn.q_proj.weight": "self_attn.q_proj.weight",
    "attn.k_proj.weight": "self_attn.k_proj.weight",
    "attn.v_proj.weight": "self_attn.v_proj.weight",
    "attn.o_proj.weight": "self_attn.o_proj.weight",
    "norm2.weight": "post_attention_layernorm.weight",
    "mlp.w_gate.weight": "mlp.gate_proj.weight",
    "mlp.w_up.weight": "mlp.up_proj.weight",
    "mlp.w_down.weight": "mlp.down_proj.weight",
}
_TOP_NAMES = {
    "tok_emb.weight": "model.embed_tokens.weight",
    "norm_f.weight": "model.norm.weight",
    "lm_head.weight": "lm_head.weight",
}
_BLOCK = re.compile(r"blocks\.(\d+)\.(.+)")


def _offline() -> None:
    """Keep ``transformers`` and the hub client offline and quiet unless the user said otherwise:
    the course never downloads anything (set ``HF_HUB_OFFLINE=0`` yourself to allow it). The hub
    client reads them when it is first imported: code that imports ``transformers`` itself sets them
    first (lesson 11's first cell does)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


# TRL itself still uses names that transformers 5 deprecated; those warnings are not the learner's concern
_TRL_DEPRECATIONS = r"`(is_)?gradient_checkpointing` is deprecated"


@contextlib.contextmanager
def quiet_deprecations():
    """Hide the deprecation warnings TRL's own code triggers in ``transformers`` (and only those)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_TRL_DEPRECATIONS, category=FutureWarning)
        yield


def hf_weight_name(name: str) -> str:
    """The ``LlamaForCausalLM`` name of a ``TinyLM`` parameter: ``blocks.0.mlp.w_gate.weight`` →
    ``model.layers.0.mlp.gate_proj.weight``. Raises ``KeyError`` for a name TinyLM does not have."""
    if name in _TOP_NAMES:
        return _TOP_NAMES[name]
    match = _BLOCK.fullmatch(name)
    if match and match.group(2) in _BLOCK_NAMES:
        return f"model.layers.{match.group(1)}.{_BLOCK_NAMES[match.group(2)]}"
    raise KeyError(f"{name!r} is not a parameter name of TinyLM")


def to_llama_state_dict(state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    """TinyLM's state dict under LlamaForCausalLM's names. Both store ``nn.Linear`` weights as
    (out, in), so no matrix is transposed; a tied head is the embedding matrix under both names."""
    return {hf_weight_name(name): tensor for name, tensor in state_dict.items()}


def llama_config(config: ModelConfig, tokenizer: WordTokenizer) -> LlamaConfig:
    """The ``LlamaConfig`` of a TinyLM (see the module docstring for which field carries what)."""
    _offline()
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=config.vocab_size,
        hidden_size=config.d_model,
        intermediate_size=config.d_ff,
        num_hidden_layers=config.n_layers,
        num_attention_heads=config.n_heads,
        num_key_value_heads=config.n_heads,
        head_dim=config.d_model // config.n_heads,
        hidden_act="silu",
        max_position_embeddings=config.max_seq_len,
        rms_norm_eps=config.norm_eps,
        rope_parameters={"rope_type": "default", "rope_theta": float(config.rope_base)},
        tie_word_embeddings=config.tie_embeddings,
        attention_bias=False,
        mlp_bias=False,
        attention_dropout=0.0,
        pad_token_id=tokenizer.pad_id,
        bos_token_id=tokenizer.bos_id,
        eos_token_id=tokenizer.eos_id,
    )


def export_model(model: TinyLM, tokenizer: WordTokenizer) -> LlamaForCausalLM:
    """A ``LlamaForCausalLM`` (float32, eval mode, CPU) with the weights of ``model``."""
    _offline()
    from transformers import LlamaForCausalLM

    if tokenizer.vocab_size != model.config.vocab_size:
        raise ValueError(f"the tokenizer has {tokenizer.vocab_size} ids but the model's vocabulary is "
                         f"{model.config.vocab_size}: they do not belong together")
    hf_model = LlamaForCausalLM(llama_config(model.config, tokenizer))
    weights = {k: v.detach().to("cpu", torch.float32) for k, v in model.state_dict().items()}
    missing, unexpected = hf_model.load_state_dict(to_llama_state_dict(weights), strict=False)
    # rotary inverse frequencies are buffers computed from the config, not weights
    missing = [k for k in missing if "rotary_emb" not in k]
    if missing or unexpected:
        raise RuntimeError(f"weight mapping incomplete: missing {missing}, unexpected {unexpected}")
    if model.config.tie_embeddings and hf_model.lm_head.weight.data_ptr() != hf_model.model.embed_tokens.weight.data_ptr():
        raise RuntimeError("the exported head is not tied to the embedding matrix")
    return hf_model.eval()


def export_tokenizer(tokenizer: WordTokenizer) -> PreTrainedTokenizerFast:
    """The course's word-level tokenizer as a ``PreTrainedTokenizerFast`` with the same ids."""
    _offline()
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {tokenizer.id_to_token(i): i for i in range(tokenizer.vocab_size)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token=WordTokenizer.UNK))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins words with single spaces
    backend.post_processor = processors.TemplateProcessing(
        single=f"{WordTokenizer.BOS} $A", pair=f"{WordTokenizer.BOS} $A $B",
        special_tokens=[(WordTokenizer.BOS, tokenizer.bos_id)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=WordTokenizer.BOS, eos_token=WordTokenizer.EOS,
        pad_token=WordTokenizer.PAD, unk_token=WordTokenizer.UNK,
        padding_side="right", model_max_length=10**6,
    )


def import_model(hf_model: LlamaForCausalLM, config: ModelConfig) -> TinyLM:
    """The inverse of :func:`export_model`: a ``TinyLM`` of ``config`` with ``hf_model``'s weights
    (for example after TRL trained it), so the course's own evaluation can score it."""
    model = TinyLM(config)
    names = {hf_weight_name(name): name for name in model.state_dict()}
    theirs = {k: v for k, v in hf_model.state_dict().items() if "rotary_emb" not in k}
    if set(theirs) != set(names) and not (config.tie_embeddings and set(theirs) | {"lm_head.weight"} == set(names)):
        raise ValueError(f"not a TinyLM-shaped LlamaForCausalLM: its weights are {sorted(theirs)}")
    state = {names[k]: v.detach().to("cpu", torch.float32) for k, v in theirs.items()}
    if config.tie_embeddings:
        state["lm_head.weight"] = state["tok_emb.weight"]
    model.load_state_dict(state)
    return model.eval()


def save_pretrained(model: TinyLM, tokenizer: WordTokenizer, out_dir: str | Path) -> Path:
    """Export and write both with ``save_pretrained`` to ``out_dir``; returns the folder."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    export_model(model, tokenizer).save_pretrained(out)
    export_tokenizer(tokenizer).save_pretrained(out)
    return out


def load_pretrained(folder: str | Path) -> tuple[LlamaForCausalLM, PreTrainedTokenizerFast]:
    """``AutoModelForCausalLM`` and ``AutoTokenizer`` from a local folder, never from a hub."""
    _offline()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(folder)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path} has no config.json: export a model there first "
                                f"(python -m rlhf_core.hf export {path})")
    model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    return model.eval(), tok


def course_position_ids(attention_mask: Tensor) -> Tensor:
    """Positions as the course counts them, over real tokens only: ``cumsum(mask) - 1``, 0 on
    leading padding. (B, T) in, (B, T) long out; pass it as ``position_ids`` with left padding."""
    return (attention_mask.long().cumsum(dim=1) - 1).clamp(min=0)


def trl_rows(pairs) -> list[dict[str, str]]:
    """The course's pairs (``{prompt, chosen, rejected, …}``) as TRL's ``prompt``/``chosen``/``rejected`` text.

    TRL tokenizes ``prompt + chosen`` as one string and appends the EOS text itself, so each
    response carries its leading space; with the exported tokenizer the ids are then exactly the
    course's ``<bos> prompt response <eos>`` (lesson 04's mask: 1 on the response and its EOS).
    """
    return [{"prompt": p["prompt"], "chosen": " " + p["chosen"].strip(), "rejected": " " + p["rejected"].strip()}
            for p in pairs]


def trl_config(output_dir: str | Path, **overrides):
    """A ``trl.DPOConfig`` that runs the course's way: float32 (TRL's default ``bf16=True`` rounds
    the reference's log-probs and moves the loss by ~1e-3), offline (``report_to=[]``), no
    checkpoints, the CPU unless a GPU is there, and a log line every step. ``overrides`` win."""
    _offline()
    from trl import DPOConfig

    settings = dict(output_dir=str(output_dir), bf16=False, fp16=False, report_to=[], save_strategy="no",
                    logging_steps=1, use_cpu=not torch.cuda.is_available(), max_length=None,
                    disable_tqdm=True, remove_unused_columns=False)
    settings.update(overrides)
    with quiet_deprecations():
        return DPOConfig(**settings)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rlhf_core.hf",
                                     description="Export the course's model and tokenizer to Hugging Face transformers.")
    sub = parser.add_subparsers(dest="command", required=True)
    export = sub.add_parser("export", help="write a LlamaForCausalLM and its tokenizer to OUT_DIR")
    export.add_argument("out_dir", type=Path)
    export.add_argument("--checkpoint", type=Path, default=None,
                        help="a course checkpoint (.pt); default: the shipped SFT model")
    args = parser.parse_args(argv)
    from .checkpoint import load_checkpoint, load_sft_model

    try:
        model, tokenizer, _ = load_checkpoint(args.checkpoint) if args.checkpoint else load_sft_model()
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: could not load the checkpoint {args.checkpoint}: {exc}", file=sys.stderr)
        return 2
    out = save_pretrained(model, tokenizer, args.out_dir)
    print(f"wrote a LlamaForCausalLM ({model.num_parameters():,} parameters) and its tokenizer to {out}; "
          f"load it with AutoModelForCausalLM.from_pretrained({str(out)!r})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
