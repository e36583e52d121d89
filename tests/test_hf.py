"""The export to Hugging Face transformers: same logits, same ids, saved and loaded offline."""

import json
import os

import pytest
import torch

pytest.importorskip("transformers")
pytestmark = pytest.mark.slow  # importing transformers takes seconds

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rlhf_core import hf  # noqa: E402
from rlhf_core.checkpoint import load_sft_model  # noqa: E402
from rlhf_core.model import ModelConfig, TinyLM  # noqa: E402
from rlhf_core.tokenizer import WordTokenizer  # noqa: E402

LOGIT_TOL = 1e-5


@pytest.fixture(scope="module")
def sft():
    model, tokenizer, _ = load_sft_model()
    return model.eval(), tokenizer


def _random_batch(vocab: int, lengths: list[int], width: int, left: bool, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, vocab, (len(lengths), width), generator=g)
    mask = (torch.arange(width)[None] < torch.tensor(lengths)[:, None]).long()  # right padding
    if left:
        mask = mask.flip(1)
    return ids.masked_fill(mask == 0, 0), mask


def _max_logit_gap(model, hf_model, ids, mask) -> float:
    with torch.no_grad():
        ours = model(ids, mask)
        theirs = hf_model(input_ids=ids, attention_mask=mask, position_ids=hf.course_position_ids(mask)).logits
    real = mask.bool()
    return (ours - theirs)[real].abs().max().item()


@pytest.mark.parametrize("left", [False, True], ids=["right padding", "left padding"])
def test_exported_sft_model_gives_the_same_logits(sft, left):
    model, tokenizer = sft
    hf_model = hf.export_model(model, tokenizer)
    for seed in range(3):
        ids, mask = _random_batch(tokenizer.vocab_size, [40, 31, 12, 1], 40, left, seed)
        assert _max_logit_gap(model, hf_model, ids, mask) < LOGIT_TOL


def test_right_padding_needs_no_position_ids(sft):
    model, tokenizer = sft
    hf_model = hf.export_model(model, tokenizer)
    ids, mask = _random_batch(tokenizer.vocab_size, [30, 17, 5], 30, left=False)
    with torch.no_grad():
        gap = (model(ids, mask) - hf_model(input_ids=ids, attention_mask=mask).logits)[mask.bool()].abs().max()
    assert gap.item() < LOGIT_TOL


@pytest.mark.parametrize("tie", [True, False])
def test_random_untrained_models_of_other_shapes_export_too(tie):
    torch.manual_seed(3)
    config = ModelConfig(vocab_size=30, d_model=48, n_layers=3, n_heads=6, d_ff=96, max_seq_len=24,
                         rope_base=500.0, norm_eps=1e-5, tie_embeddings=tie)
    model = TinyLM(config).eval()
    with torch.no_grad():  # norms away from 1, so a norm mapped to the wrong place shows
        for name, p in model.named_parameters():
            if "norm" in name:
                p.uniform_(0.5, 1.5)
    tokenizer = WordTokenizer([f"w{i}" for i in range(26)])
    hf_model = hf.export_model(model, tokenizer)
    assert hf_model.config.tie_word_embeddings is tie
    ids, mask = _random_batch(30, [24, 10, 3], 24, left=True)
    assert _max_logit_gap(model, hf_model, ids, mask) < LOGIT_TOL


def test_a_wrong_mapping_is_caught_by_the_logit_comparison(sft, monkeypatch):
    """The comparison above can fail: swap q and k in the mapping and the logits differ."""
    model, tokenizer = sft
    swapped = dict(hf._BLOCK_NAMES)
    swapped["attn.q_proj.weight"], swapped["attn.k_proj.weight"] = swapped["attn.k_proj.weight"], swapped["attn.q_proj.weight"]
    monkeypatch.setattr(hf, "_BLOCK_NAMES", swapped)
    hf_model = hf.export_model(model, tokenizer)
    ids, mask = _random_batch(tokenizer.vocab_size, [20, 9], 20, left=False)
    assert _max_logit_gap(model, hf_model, ids, mask) > 1e-3


def test_every_parameter_has_a_name_and_unknown_names_are_refused():
    model = TinyLM(ModelConfig(vocab_size=20, d_model=16, n_layers=2, n_heads=2, d_ff=32))
    names = [hf.hf_weight_name(n) for n in model.state_dict()]
    assert len(set(names)) == len(names)
    assert hf.hf_weight_name("blocks.1.mlp.w_down.weight") == "model.layers.1.mlp.down_proj.weight"
    with pytest.raises(KeyError, match="not a parameter name"):
        hf.hf_weight_name("blocks.0.mlp.w_side.weight")


def test_save_and_load_offline_round_trip(sft, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model, tokenizer = sft
    hf.save_pretrained(model, tokenizer, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert config["rms_norm_eps"] == model.config.norm_eps
    loaded, hf_tok = hf.load_pretrained(tmp_path)
    ids, mask = _random_batch(tokenizer.vocab_size, [25, 14, 2], 25, left=True, seed=7)
    assert _max_logit_gap(model, loaded, ids, mask) < LOGIT_TOL
    text = "honestly , the plot felt"
    assert hf_tok(text)["input_ids"] == tokenizer.encode(text, add_bos=True)
    assert hf_tok(text, add_special_tokens=False)["input_ids"] == tokenizer.encode(text)
    assert hf_tok("the plot felt zzzz")["input_ids"][-1] == tokenizer.unk_id
    ids = tokenizer.encode("the film was good .", add_bos=True, add_eos=True)
    assert hf_tok.decode(ids, skip_special_tokens=True) == tokenizer.decode(ids)
    assert (hf_tok.pad_token_id, hf_tok.bos_token_id, hf_tok.eos_token_id) == (tokenizer.pad_id, tokenizer.bos_id, tokenizer.eos_id)


def test_loading_a_folder_without_a_model_says_how_to_make_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m rlhf_core.hf export"):
        hf.load_pretrained(tmp_path)


def test_cli_exports_the_shipped_model(tmp_path, capsys):
    assert hf.main(["export", str(tmp_path / "out")]) == 0
    assert "LlamaForCausalLM" in capsys.readouterr().out
    assert (tmp_path / "out" / "config.json").is_file() and (tmp_path / "out" / "tokenizer.json").is_file()
    assert hf.main(["export", str(tmp_path / "x"), "--checkpoint", str(tmp_path / "missing.pt")]) == 2
