"""get_logps against a brute-force per-token loop, on ragged prompts with right and left padding."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from rlhf_core.logps import get_logps, get_logps_loop, get_token_logps


@st.composite
def padded_batches(draw):
    """A batch of ragged (prompt, response) rows padded on one side, with matching logits."""
    batch = draw(st.integers(1, 5))
    vocab = draw(st.integers(2, 9))
    left = draw(st.booleans())
    rows = []
    for _ in range(batch):
        prompt_len = draw(st.integers(1, 5))
        resp_len = draw(st.integers(0, 6))
        rows.append((prompt_len, resp_len))
    length = max(p + r for p, r in rows) + draw(st.integers(0, 3))
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    input_ids = torch.zeros(batch, length, dtype=torch.long)
    mask = torch.zeros(batch, length, dtype=torch.long)
    for b, (p, r) in enumerate(rows):
        start = length - (p + r) if left else 0
        input_ids[b, start:start + p + r] = torch.randint(0, vocab, (p + r,), generator=g)
        mask[b, start + p:start + p + r] = 1
    scale = draw(st.sampled_from([0.1, 1.0, 30.0]))
    logits = torch.randn(batch, length, vocab, generator=g) * scale
    return logits, input_ids, mask


@given(padded_batches(), st.booleans())
def test_get_logps_equals_the_per_token_loop(batch, average):
    logits, input_ids, mask = batch
    got = get_logps(logits, input_ids, mask, average=average)
    want = get_logps_loop(logits, input_ids, mask, average=average)
    assert got.shape == (input_ids.shape[0],)
    assert torch.allclose(got.double(), want, rtol=1e-5, atol=1e-4)


@given(padded_batches())
def test_padding_side_does_not_change_the_result(batch):
    logits, input_ids, mask = batch
    # move every row's real tokens to the other side; the result must not change
    flipped_ids, flipped_mask, flipped_logits = input_ids.clone(), mask.clone(), logits.clone()
    for b in range(input_ids.shape[0]):
        nonpad = (input_ids[b] != 0) | (mask[b] == 1)
        if nonpad.sum() == 0:
            continue
        flipped_ids[b] = torch.roll(input_ids[b], shifts=3)
        flipped_mask[b] = torch.roll(mask[b], shifts=3)
        flipped_logits[b] = torch.roll(logits[b], shifts=3, dims=0)
    # rolling wraps tokens around, so compare with the oracle on the rolled batch instead of the original
    assert torch.allclose(get_logps(flipped_logits, flipped_ids, flipped_mask).double(),
                          get_logps_loop(flipped_logits, flipped_ids, flipped_mask), rtol=1e-5, atol=1e-4)


def test_a_fully_masked_row_gives_zero_and_no_nan():
    logits, ids = torch.randn(3, 6, 5), torch.randint(0, 5, (3, 6))
    mask = torch.tensor([[0, 0, 1, 1, 0, 0], [0] * 6, [0, 1, 1, 1, 1, 1]])
    for average in (False, True):
        out = get_logps(logits, ids, mask, average=average)
        assert out[1].item() == 0.0
        assert torch.isfinite(out).all()


def test_average_divides_by_the_number_of_response_tokens():
    logits, ids = torch.randn(2, 7, 4), torch.randint(0, 4, (2, 7))
    mask = torch.tensor([[0, 0, 1, 1, 1, 0, 0], [0, 1, 1, 1, 1, 1, 1]])
    summed, averaged = get_logps(logits, ids, mask), get_logps(logits, ids, mask, average=True)
    assert torch.allclose(averaged, summed / torch.tensor([3.0, 6.0]))


def test_the_shift_scores_token_t_with_logits_t_minus_1():
    # A one-hot "model" that puts all mass on token 2 at position 0, token 3 at position 1 and token 1
    # (not the padding 0) at position 2. Prompt [1], response [2, 3], then one pad.
    logits = torch.full((1, 4, 4), -1e4)
    logits[0, 0, 2] = 0.0
    logits[0, 1, 3] = 0.0
    logits[0, 2, 1] = 0.0
    ids = torch.tensor([[1, 2, 3, 0]])
    mask = torch.tensor([[0, 1, 1, 0]])
    assert get_logps(logits, ids, mask).item() == pytest.approx(0.0, abs=1e-6)
    token_logps = get_token_logps(logits, ids)          # (1, 3): log p(ids[t+1] | logits[t])
    right = token_logps.mul(mask[:, 1:]).sum()          # the mask shifted with the labels
    assert right.item() == pytest.approx(0.0, abs=1e-6)
    # the unshifted mask (the silent bug) drops the first response token and scores the pad after the
    # response with logits that put no mass on it: about -1e4, far from the right answer
    wrong = token_logps.mul(mask[:, :-1]).sum()
    assert wrong.item() < right.item() - 1e3


def test_half_precision_logits_are_scored_in_float32():
    logits = torch.randn(2, 5, 6) * 4
    ids, mask = torch.randint(0, 6, (2, 5)), torch.ones(2, 5, dtype=torch.long)
    full = get_logps(logits, ids, mask)
    half = get_logps(logits.to(torch.bfloat16), ids, mask)
    assert half.dtype == torch.float32
    assert torch.allclose(full, half, atol=0.2)


def test_gradient_only_reaches_the_logits_that_predict_response_tokens():
    logits = torch.randn(1, 6, 5, requires_grad=True)
    ids = torch.randint(0, 5, (1, 6))
    mask = torch.tensor([[0, 0, 0, 1, 1, 0]])  # response = tokens 3, 4
    get_logps(logits, ids, mask).backward()
    touched = logits.grad.abs().sum(-1)[0] > 0
    assert touched.tolist() == [False, False, True, True, False, False]


def test_wrong_shapes_raise_a_clear_error():
    with pytest.raises(ValueError, match="expects logits"):
        get_logps(torch.randn(2, 5, 3), torch.zeros(2, 4, dtype=torch.long), torch.zeros(2, 4))


def test_what_the_unshifted_mask_bug_actually_counts():
    # [BOS] p p r r EOS pad : the right mask scores r, r, EOS; the bug scores r, EOS, pad
    ids = torch.tensor([[1, 5, 6, 7, 8, 2, 0]])
    mask = torch.tensor([[0, 0, 0, 1, 1, 1, 0]])
    right = mask[:, 1:]
    buggy = mask[:, :-1]
    labels = ids[:, 1:]
    assert labels[right.bool()].tolist() == [7, 8, 2]
    assert labels[buggy.bool()].tolist() == [8, 2, 0]  # first response token dropped, padding after EOS scored
