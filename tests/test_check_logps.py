"""check_get_logps (notebook 04): the shift, the mask, padding, empty rows, extreme logits."""

import pytest
import torch

from checkhelpers import assert_fails_with, assert_passes
from rlhf_core.checks import check_get_logps
from rlhf_core.logps import get_logps


def test_passes_on_the_reference(capsys):
    assert_passes(check_get_logps, get_logps, capsys)


def test_passes_on_a_loop_written_correctly(capsys):
    def mine(logits, input_ids, response_mask, average=False):
        logprobs = torch.log_softmax(logits, -1)
        rows = []
        for b in range(logits.shape[0]):
            picked = [logprobs[b, t - 1, input_ids[b, t]] for t in range(1, logits.shape[1]) if response_mask[b, t]]
            total = torch.stack(picked).sum() if picked else logits.new_zeros(())
            rows.append(total / max(len(picked), 1) if average else total)
        return torch.stack(rows)

    assert_passes(check_get_logps, mine, capsys)


def mask_not_shifted(logits, input_ids, response_mask, average=False):
    logp = torch.log_softmax(logits[:, :-1], -1).gather(-1, input_ids[:, 1:, None]).squeeze(-1)
    mask = response_mask[:, :-1].float()
    total = (logp * mask).sum(-1)
    return total / mask.sum(-1).clamp(min=1) if average else total


def no_shift(logits, input_ids, response_mask, average=False):
    logp = torch.log_softmax(logits, -1).gather(-1, input_ids[..., None]).squeeze(-1)
    total = (logp * response_mask).sum(-1)
    return total / response_mask.sum(-1).clamp(min=1) if average else total


def ignores_mask(logits, input_ids, response_mask, average=False):
    logp = torch.log_softmax(logits[:, :-1], -1).gather(-1, input_ids[:, 1:, None]).squeeze(-1)
    return logp.mean(-1) if average else logp.sum(-1)


def log_of_softmax(logits, input_ids, response_mask, average=False):
    logp = torch.softmax(logits[:, :-1], -1).log().gather(-1, input_ids[:, 1:, None]).squeeze(-1)
    mask = response_mask[:, 1:].bool()
    total = logp.masked_fill(~mask, 0).sum(-1)
    return total / mask.sum(-1).clamp(min=1) if average else total


def nan_on_empty_rows(logits, input_ids, response_mask, average=False):
    logp = torch.log_softmax(logits[:, :-1], -1).gather(-1, input_ids[:, 1:, None]).squeeze(-1)
    mask = response_mask[:, 1:].float()
    total = (logp * mask).sum(-1)
    return total / mask.sum(-1) if average else total


def per_token(logits, input_ids, response_mask, average=False):
    logp = torch.log_softmax(logits[:, :-1], -1).gather(-1, input_ids[:, 1:, None]).squeeze(-1)
    return logp * response_mask[:, 1:]


def average_ignored(logits, input_ids, response_mask, average=False):
    logp = torch.log_softmax(logits[:, :-1], -1).gather(-1, input_ids[:, 1:, None]).squeeze(-1)
    return (logp * response_mask[:, 1:]).sum(-1)


@pytest.mark.parametrize("impl, fragments", [
    (mask_not_shifted, ["response_mask[:, 1:]", "silent"]),
    (no_shift, ["no shift", "logits[:, :-1]"]),
    (ignores_mask, ["response_mask is ignored"]),
    (log_of_softmax, ["×100", "-inf", "log_softmax"]),
    (nan_on_empty_rows, ["fully masked", "got [", "nan", "clamp"]),
    (per_token, ["one value per token"]),
    (average_ignored, ["average=True", "is ignored"]),
])
def test_get_logps_check_names_the_mistake(impl, fragments):
    assert_fails_with(check_get_logps, impl, *fragments)
