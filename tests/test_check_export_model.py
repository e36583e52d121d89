"""Lesson 11's check on mappings no registered mistake covers: its verdict still names what is wrong
(a transposed matrix, two names swapped, a weight left out, something that is not a model)."""

import pytest

from rlhf_core import hf
from rlhf_core.checks import CheckFailed, check_export_model
from rlhf_core.checks.hf_export import _HINT_TRANSPOSED, _export


def _verdict(fn) -> str:
    with pytest.raises(CheckFailed) as info:
        check_export_model(fn, quiet=True)
    return str(info.value)


def test_one_transposed_matrix_is_named_as_a_transpose():
    def only_v_transposed(model, tokenizer):
        return _export(model, tokenizer, transform=lambda n, w: w.T.contiguous() if n.endswith("v_proj.weight") else w)

    verdict = _verdict(only_v_transposed)
    assert "v_proj.weight" in verdict and _HINT_TRANSPOSED in verdict


def test_two_swapped_names_are_named():
    def v_and_o_swapped(model, tokenizer):
        return _export(model, tokenizer, rename={"v_proj.weight": "o_proj.weight", "o_proj.weight": "v_proj.weight"})

    verdict = _verdict(v_and_o_swapped)
    assert "v_proj.weight" in verdict and "holds what belongs under 'model.layers.0.self_attn.o_proj.weight'" in verdict


def test_a_weight_left_out_and_a_wrong_return_type_are_explained():
    def final_norm_left_out(model, tokenizer):
        llama = hf.export_model(model, tokenizer)
        llama.model.norm.weight.data.fill_(1.0)   # as if model.norm.weight had not been loaded
        return llama

    assert "model.norm.weight: expected" in _verdict(final_norm_left_out)
    verdict = _verdict(lambda model, tokenizer: hf.export_model(model, tokenizer).state_dict())
    assert "type of the returned model: expected 'LlamaForCausalLM', got 'OrderedDict'" in verdict
    assert "Return the LlamaForCausalLM itself" in verdict


def test_the_stub_and_a_crash_are_reported_without_a_traceback():
    from rlhf_core.course import exercises

    assert "not implemented yet" in _verdict(exercises.export_model)
    verdict = _verdict(lambda model, tokenizer: model.no_such_attribute)
    assert "raised AttributeError" in verdict
