"""The check of lesson 11 — ``export_model(model, tokenizer)``: a TinyLM as a ``LlamaForCausalLM``.

Each case builds a small TinyLM with seeded random weights (random norm gains too, so that a norm in
the wrong place shows), hands it to the candidate and records what the returned model holds: its
type, the configuration fields that carry a convention (``rms_norm_eps``, the RoPE base, whether the
head *is* the embedding matrix), every weight under its ``LlamaForCausalLM`` name, and the logits on
a right-padded batch. One case is tied with an unusual eps and RoPE base (where leaving Llama's
defaults shows), the other untied. ``transformers`` is imported only when a case runs.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import torch

from .. import hf
from ..model import ModelConfig, TinyLM
from ..tokenizer import WordTokenizer
from .framework import Case, Exercise, Missing, Mistake, register

_SMALL = dict(d_model=8, n_layers=2, n_heads=2, d_ff=12, max_seq_len=16)
_CONFIGS = {
    "a tied TinyLM (d_model 8, 2 layers), norm eps 0.1, RoPE base 500":
        dict(norm_eps=0.1, rope_base=500.0, tie_embeddings=True),
    "an untied TinyLM (its head is its own matrix), Llama's default eps and RoPE base":
        dict(norm_eps=1e-6, rope_base=10000.0, tie_embeddings=False),
}


def _tiny_model(tokenizer: WordTokenizer, settings: dict, seed: int) -> TinyLM:
    g = torch.Generator().manual_seed(seed)
    model = TinyLM(ModelConfig(vocab_size=tokenizer.vocab_size, **_SMALL, **settings))
    with torch.no_grad():
        for p in model.parameters():  # a tied head is one parameter, drawn once
            scale = 0.5 if p.dim() > 1 else 0.3
            p.copy_((1.0 if p.dim() == 1 else 0.0) + scale * torch.randn(p.shape, generator=g))
    return model.eval()


def _batch(tokenizer: WordTokenizer, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed + 1)
    ids = torch.randint(4, tokenizer.vocab_size, (2, 6), generator=g)
    ids[:, 0] = tokenizer.bos_id
    mask = torch.ones_like(ids)
    ids[1, 4:], mask[1, 4:] = tokenizer.pad_id, 0  # the second row is right-padded
    return ids, mask


def _record(returned, names: list[str], ids: torch.Tensor, mask: torch.Tensor) -> dict:
    values: dict = {"type of the returned model": type(returned).__name__}
    config = getattr(returned, "config", None)
    rope = getattr(config, "rope_parameters", None) or {}
    values["rms_norm_eps"] = getattr(config, "rms_norm_eps", Missing("rms_norm_eps"))
    values["RoPE base (rope_parameters['rope_theta'])"] = rope.get("rope_theta", Missing("rope_theta")) \
        if isinstance(rope, dict) else Missing("rope_theta")
    try:
        head, embedding = returned.get_output_embeddings().weight, returned.get_input_embeddings().weight
        values["the head is the embedding matrix"] = head is embedding or head.data_ptr() == embedding.data_ptr()
    except AttributeError:
        values["the head is the embedding matrix"] = Missing("lm_head")
    state = returned.state_dict() if isinstance(returned, torch.nn.Module) else {}
    for name in names:
        values[name] = state[name].detach() if name in state else Missing(name)
    with torch.no_grad():
        logits = returned(input_ids=ids, attention_mask=mask).logits if isinstance(returned, torch.nn.Module) else None
    values["logits on a right-padded batch"] = None if logits is None else logits * mask[..., None]
    return values


def _cases(seed: int) -> list[Case]:
    tokenizer = WordTokenizer.for_task()
    ids, mask = _batch(tokenizer, seed)

    def case(name: str, settings: dict, offset: int) -> Case:
        model_config = ModelConfig(vocab_size=tokenizer.vocab_size, **_SMALL, **settings)
        names = [hf.hf_weight_name(n) for n in TinyLM(model_config).state_dict()]

        def run(fn: Callable) -> dict:
            model = _tiny_model(tokenizer, settings, seed + offset)
            torch.manual_seed(seed)  # a weight the candidate leaves out keeps the same random start every time
            return _record(fn(model, tokenizer), names, ids, mask)

        return Case(name, run)

    return [case(name, settings, i) for i, (name, settings) in enumerate(_CONFIGS.items())]


# ---- known mistakes: the library's export with one thing changed ----------------------------------------


def _export(model: TinyLM, tokenizer: WordTokenizer, rename: dict[str, str] | None = None,
            transform: Callable[[str, torch.Tensor], torch.Tensor] | None = None, **config_changes):
    """``hf.export_model`` with parts of the name mapping swapped (``rename``: Llama name → the Llama
    name whose course weight it receives), tensors changed, or configuration fields changed."""
    from transformers import LlamaForCausalLM

    config = hf.llama_config(model.config, tokenizer)
    for key, value in config_changes.items():
        setattr(config, key, value)
    llama = LlamaForCausalLM(config)
    weights = hf.to_llama_state_dict({k: v.detach().clone() for k, v in model.state_dict().items()})
    rename = rename or {}
    weights = {name: weights[_sub(name, rename)] for name in weights}
    if transform is not None:
        weights = {name: transform(name, w) for name, w in weights.items()}
    llama.load_state_dict(weights, strict=False)
    return llama.eval()


def _sub(name: str, rename: dict[str, str]) -> str:
    for mine, theirs in rename.items():
        if name.endswith(mine):
            return name[: -len(mine)] + theirs
    return name


_ATTENTION = re.compile(r"self_attn\.[qkvo]_proj\.weight$")


def _transposed(model, tokenizer):
    return _export(model, tokenizer, transform=lambda n, w: w.T.contiguous() if _ATTENTION.search(n) else w)


def _q_k_swapped(model, tokenizer):
    return _export(model, tokenizer, rename={"q_proj.weight": "k_proj.weight", "k_proj.weight": "q_proj.weight"})


def _gate_up_swapped(model, tokenizer):
    return _export(model, tokenizer, rename={"gate_proj.weight": "up_proj.weight", "up_proj.weight": "gate_proj.weight"})


def _norms_swapped(model, tokenizer):
    return _export(model, tokenizer, rename={"input_layernorm.weight": "post_attention_layernorm.weight",
                                             "post_attention_layernorm.weight": "input_layernorm.weight"})


def _default_eps(model, tokenizer):
    return _export(model, tokenizer, rms_norm_eps=1e-6)


def _default_rope_base(model, tokenizer):
    return _export(model, tokenizer, rope_parameters={"rope_type": "default", "rope_theta": 10000.0})


def _head_untied(model, tokenizer):
    """Llama's default ``tie_word_embeddings=False``: the head is a copy, equal today, apart after one step."""
    return _export(model, tokenizer, tie_word_embeddings=False)


def _head_always_tied(model, tokenizer):
    return _export(model, tokenizer, tie_word_embeddings=True)


_HINT_TRANSPOSED = ("A weight matrix is transposed: TinyLM and LlamaForCausalLM both store nn.Linear weights as "
                    "(out, in), so every matrix is copied as it is, with no .T.")
_HINT_UNTIED = ("The exported head is a separate copy of the embedding matrix (LlamaConfig's default is "
                "tie_word_embeddings=False). The logits agree today, but the first training step would move "
                "the two apart: carry TinyLM's tie_embeddings into the config.")


def _explain(key: str, got: dict, want: dict) -> str | None:
    """What a difference in one weight means, when no registered mistake matches it exactly."""
    mine, wanted = got.get(key), want.get(key)
    if not (isinstance(mine, dict) and isinstance(wanted, dict) and mine.get("data") and wanted.get("data")):
        return None
    if mine.get("shape") == wanted.get("shape")[::-1] and len(wanted["shape"]) == 2:
        rows, cols = wanted["shape"]
        flipped = [wanted["data"][c * cols + r] for r in range(cols) for c in range(rows)]
        if all(abs(a - b) < 1e-6 for a, b in zip(mine["data"], flipped)):
            return _HINT_TRANSPOSED
    for other, entry in want.items():
        if other != key and isinstance(entry, dict) and entry.get("data") == mine["data"]:
            return f"This weight holds what belongs under {other!r}: two names of the mapping are swapped."
    return None


register(Exercise(
    name="export_model",
    lesson=11,
    points=3,
    cases=_cases,
    reference=hf.export_model,
    mistakes=[
        Mistake(_HINT_TRANSPOSED, _transposed),
        Mistake("q_proj and k_proj are swapped: the attention scores become k·q instead of q·k, which RoPE and the "
                "causal mask do not forgive. TinyLM's attn.q_proj is Llama's self_attn.q_proj.", _q_k_swapped),
        Mistake("gate_proj and up_proj are swapped: SiLU then gates the wrong branch. TinyLM's mlp.w_gate is "
                "Llama's mlp.gate_proj, mlp.w_up its mlp.up_proj.", _gate_up_swapped),
        Mistake("The two norms of a block are swapped: input_layernorm is the norm before attention (TinyLM's "
                "norm1), post_attention_layernorm the one before the MLP (norm2).", _norms_swapped),
        Mistake("rms_norm_eps is Llama's default (1e-6), not the model's own: set it from the course config's "
                "norm_eps.", _default_eps),
        Mistake("The RoPE base is Llama's default (10000), not the model's own: set rope_parameters' rope_theta "
                "from the course config's rope_base.", _default_rope_base),
        Mistake(_HINT_UNTIED, _head_untied),
        Mistake("The head is tied to the embedding matrix in a model whose head is its own matrix: set "
                "tie_word_embeddings from the course config, not always True.", _head_always_tied),
    ],
    summary="export_model gives a LlamaForCausalLM with TinyLM's weights, norms, RoPE base, tied head and logits",
    formula="LlamaForCausalLM(LlamaConfig(...)) with rms_norm_eps = norm_eps, rope_parameters' rope_theta = rope_base, "
            "tie_word_embeddings = tie_embeddings, then load_state_dict of every weight renamed (no transposes)",
    key_hints={
        "type of the returned model": "Return the LlamaForCausalLM itself (not its state dict or its config).",
        "rms_norm_eps": "Set LlamaConfig's rms_norm_eps from the course config's norm_eps.",
        "RoPE base (rope_parameters['rope_theta'])": "Set the RoPE base from the course config's rope_base.",
        "the head is the embedding matrix": "Carry the course config's tie_embeddings into tie_word_embeddings.",
        "logits on a right-padded batch": "Every weight and field agrees, yet the logits do not: is the model in "
                                          "eval mode, in float32, and were all the weights loaded?",
    },
    explain=_explain,
    rtol=1e-4,
    atol=1e-5,
))

