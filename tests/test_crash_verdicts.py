"""Crash verdicts: an exception a learner's function raises is judged by its likely cause (issue 27, point 5).

Every mapping is shown here with a known-wrong implementation that really raises it through a real check: a
``dpo_step`` whose policy forward runs under ``torch.no_grad()`` or is detached (no ``grad_fn``), ``get_logps``,
``dpo_loss`` and ``swiglu`` with shape and dtype mistakes, undefined names. Each verdict must name the cause (the
dimension and sizes of a shape mismatch, the dtypes of a dtype error, the name that is not defined) and not send
the learner to the generic "what shape and dtype each input has"; an unrelated exception still gets that generic
sentence, and an untouched stub is still "not implemented yet". The mapping reads only the error record (plain
data), so the grader, which judges records outside the kernel, gets the same verdicts.
"""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from rlhf_core import losses, train
from rlhf_core.checks import (
    EXERCISES,
    CheckFailed,
    check_apply_rope,
    check_dpo_loss,
    check_dpo_step,
    check_get_logps,
    check_swiglu,
    judge,
    probe,
)
from rlhf_core.checks.verdicts import crash_cause
from rlhf_core.course import exercises

GENERIC = ("Expected it to return normally; the inputs here are valid. Read the error and the line it names; the "
           "exercise's text says what shape and dtype each input has (its docstring too).")


def crash_verdict(check_fn, candidate, *fragments: str) -> CheckFailed:
    """The check's verdict on ``candidate``, a crash judged by its cause: one line, every fragment in it, and
    not the generic advice."""
    with pytest.raises(CheckFailed) as info:
        check_fn(candidate)
    exc = info.value
    message = str(exc)
    assert message.startswith("✗ ") and "\n" not in message, message
    assert exc.kind == "raised" and "your function raised " in message, message
    assert "shape and dtype each input has" not in message, message   # the cause, not the generic advice
    assert exc.problem and exc.problem in message and exc.advice in message and exc.got in message, message
    for fragment in fragments:
        assert fragment in message, f"expected {fragment!r} in: {message}"
    return exc


# ---- no grad_fn: a forward under no_grad, or a detached tensor -----------------------------------

def dpo_step_policy_under_no_grad(policy, batch, logp_ref_chosen, logp_ref_rejected, optimizer, beta=0.1):
    with torch.no_grad():   # the mistake: the policy's forward runs without gradients
        logp_chosen, logp_rejected = train.concatenated_logps(policy, batch)
    loss = losses.dpo_loss(logp_chosen, logp_rejected, logp_ref_chosen, logp_ref_rejected, beta)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return {"loss": loss.item()}


def dpo_step_detached(policy, batch, logp_ref_chosen, logp_ref_rejected, optimizer, beta=0.1):
    logp_chosen, logp_rejected = train.concatenated_logps(policy, batch)
    logp_chosen, logp_rejected = logp_chosen.detach(), logp_rejected.detach()   # the mistake: cut off from autograd
    loss = losses.dpo_loss(logp_chosen, logp_rejected, logp_ref_chosen, logp_ref_rejected, beta)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return {"loss": loss.item()}


@pytest.mark.parametrize("step", [dpo_step_policy_under_no_grad, dpo_step_detached])
def test_a_dpo_step_without_gradients_is_told_no_grad_or_detach_not_shapes(step):
    exc = crash_verdict(check_dpo_step, step, "raised RuntimeError: element 0 of tensors does not require grad",
                        "loss.backward()",                    # the line it names
                        "no `grad_fn`", "the policy", "`torch.no_grad()`", "`.detach()`", "`.item()`")
    assert exc.got.startswith("RuntimeError: element 0 of tensors does not require grad and does not have a grad_fn")
    assert "grad_fn" in exc.expected and "policy" in exc.expected
    assert exc.problem.startswith("`.backward()` needs a loss that autograd can trace back")


# ---- shapes: which dimension, the sizes, the usual cause -----------------------------------------

def logps_mask_not_shifted(logits, input_ids, response_mask, average=False):
    tok = torch.log_softmax(logits[:, :-1], -1).gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)   # (B, T-1)
    return (tok * response_mask).sum(-1)                                                                 # (B, T)


def logps_labels_not_shifted(logits, input_ids, response_mask, average=False):
    tok = torch.log_softmax(logits[:, :-1], -1).gather(-1, input_ids.unsqueeze(-1)).squeeze(-1)
    return (tok * response_mask[:, 1:]).sum(-1)


def logps_gather_without_unsqueeze(logits, input_ids, response_mask, average=False):
    tok = torch.log_softmax(logits[:, :-1], -1).gather(-1, input_ids[:, 1:])
    return (tok * response_mask[:, 1:]).sum(-1)


def logps_per_row_count_against_tokens(logits, input_ids, response_mask, average=False):
    tok = torch.log_softmax(logits[:, :-1], -1).gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    mask = response_mask[:, 1:]
    return (tok * mask / mask.sum(-1)).sum(-1)   # (B, T-1) against (B,)


def logps_loop_one_past_the_end(logits, input_ids, response_mask, average=False):
    rows = torch.arange(input_ids.shape[0])
    per_token = [torch.log_softmax(logits[:, t], -1)[rows, input_ids[:, t + 1]] * response_mask[:, t + 1]
                 for t in range(input_ids.shape[1])]   # t + 1 reaches T
    return torch.stack(per_token, -1).sum(-1)


def logps_view_as_unshifted(logits, input_ids, response_mask, average=False):
    batch, length = input_ids.shape
    tok = torch.log_softmax(logits[:, :-1], -1).gather(-1, input_ids[:, 1:].unsqueeze(-1)).view(batch, length)
    return (tok * response_mask).sum(-1)


def logps_cat_unshifted(logits, input_ids, response_mask, average=False):
    both = torch.cat([logits[:, :-1], logits], dim=2)
    return both.sum((-1, -2))


def logps_stack_unshifted(logits, input_ids, response_mask, average=False):
    return torch.stack([logits[:, :-1], logits]).sum((0, -1, -2))


def dpo_loss_sum_over_a_missing_axis(pc, pr, rc, rr, beta=0.1):
    return -F.logsigmoid(beta * ((pc - rc) - (pr - rr))).sum(1).mean()


def rope_without_the_head_axis(x, cos, sin):
    first, second = x.chunk(2, dim=-1)   # cos/sin (B, T, Dh/2) meet x (B, H, T, Dh/2) without a head axis
    return torch.cat((first * cos - second * sin, first * sin + second * cos), dim=-1)


def swiglu_weights_not_transposed(x, w_gate, w_up, w_down):
    return (F.silu(x @ w_gate) * (x @ w_up)) @ w_down


@pytest.mark.parametrize("check_fn, impl, fragments", [
    (check_get_logps, logps_mask_not_shifted,
     ["along dimension 1: one has 9 there, the other 10", "Sizes one apart (9 and 10) often mean a shift applied to "
      "one tensor and not to the other", "T−1"]),
    (check_apply_rope, rope_without_the_head_axis,   # one apart too, but no shift: the broadcasting cause is named
     ["along dimension 1: one has 3 there, the other 2", "Otherwise, broadcasting lines tensors up from their last "
      "dimension, so a tensor missing an axis is compared along the wrong one"]),
    (check_get_logps, logps_per_row_count_against_tokens,
     ["along dimension 1: one has 9 there, the other 4", "per-row (B,) tensor", "an `unsqueeze`"]),
    (check_get_logps, logps_labels_not_shifted,
     ["index of shape (4, 10, 1) for values of shape (4, 9, 7)", "along dimension 1 the index has 10 positions and the "
      "values only 9", "shifted by one and the labels were not"]),
    (check_get_logps, logps_gather_without_unsqueeze,
     ["`gather` got an index with a different number of dimensions", "a missing axis", "an `unsqueeze`"]),
    (check_get_logps, logps_loop_one_past_the_end,
     ["raised IndexError", "An index of 10 was used along dimension 1, which has size 10", "off-by-one"]),
    (check_get_logps, logps_view_as_unshifted,
     ["to [4, 10] (40 elements) was asked of a tensor of 36 elements", "T−1 positions, not T"]),
    (check_get_logps, logps_cat_unshifted,
     ["joined by `torch.cat` along dimension 2", "tensor number 1 has size 10 where 9 was expected"]),
    (check_get_logps, logps_stack_unshifted,
     ["`torch.stack` needs tensors of one shape, but got [4, 9, 7] at entry 0 and [4, 10, 7] at entry 1"]),
    (check_dpo_loss, dpo_loss_sum_over_a_missing_axis,
     ["raised IndexError", "Dimension 1 was asked of a tensor whose dimensions run from -1 to 0", "fewer dimensions",
      "without `keepdim`"]),
    (check_swiglu, swiglu_weights_not_transposed,
     ["raised RuntimeError: mat1 and mat2", "operands of shapes (10×8) and (12×8)", "the inner sizes, 8 and 12",
      "a `.T` missing or one too many"]),
])
def test_a_shape_mismatch_names_the_dimension_the_sizes_and_the_usual_cause(check_fn, impl, fragments):
    exc = crash_verdict(check_fn, impl, *fragments)
    assert exc.expected != "a normal return"


# ---- dtypes: which dtype was expected -----------------------------------------------------------

def logps_float_labels(logits, input_ids, response_mask, average=False):
    labels = input_ids[:, 1:].float()
    return torch.log_softmax(logits[:, :-1], -1).gather(-1, labels.unsqueeze(-1)).squeeze(-1).sum(-1)


def logps_float_labels_indexing(logits, input_ids, response_mask, average=False):
    lp = torch.log_softmax(logits[:, :-1], -1)
    batch, steps = lp.shape[:2]
    labels = input_ids[:, 1:] * 1.0
    return lp[torch.arange(batch)[:, None], torch.arange(steps), labels].sum(-1)


def logps_one_hot_of_floats(logits, input_ids, response_mask, average=False):
    lp = torch.log_softmax(logits[:, :-1], -1)
    return (lp * F.one_hot(input_ids[:, 1:].float(), lp.shape[-1])).sum((-1, -2))


def logps_embedding_of_floats(logits, input_ids, response_mask, average=False):
    lp = torch.log_softmax(logits[:, :-1], -1)
    return (lp * F.embedding(input_ids[:, 1:].float(), torch.eye(lp.shape[-1]))).sum((-1, -2))


def logps_nll_with_float_targets(logits, input_ids, response_mask, average=False):
    lp = torch.log_softmax(logits[:, :-1], -1).transpose(1, 2)
    return -(F.nll_loss(lp, input_ids[:, 1:].float(), reduction="none") * response_mask[:, 1:]).sum(-1)


def logps_masked_fill_with_a_long_mask(logits, input_ids, response_mask, average=False):
    tok = torch.log_softmax(logits[:, :-1], -1).gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    return tok.masked_fill(1 - response_mask[:, 1:], 0.0).sum(-1)


def logps_accumulate_into_the_ids_dtype(logits, input_ids, response_mask, average=False):
    total = torch.zeros_like(input_ids[:, 0])   # int64, like the ids
    for t in range(input_ids.shape[1] - 1):
        token = torch.log_softmax(logits[:, t], -1).gather(-1, input_ids[:, t + 1:t + 2]).squeeze(-1)
        total += token * response_mask[:, t + 1]
    return total


def logps_einsum_with_the_integer_mask(logits, input_ids, response_mask, average=False):
    tok = torch.log_softmax(logits[:, :-1], -1).gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    return torch.einsum("bt,bt->b", response_mask[:, 1:], tok)


def dpo_loss_mean_by_a_float32_vector(pc, pr, rc, rr, beta=0.1):
    losses_ = -F.logsigmoid(beta * ((pc - rc) - (pr - rr)))
    return losses_ @ torch.ones(len(losses_)) / len(losses_)   # float32 ones against the float64 case


def dpo_loss_logsigmoid_of_a_long_tensor(pc, pr, rc, rr, beta=0.1):
    return -F.logsigmoid((pc > pr).long()).float().mean()


def dpo_step_accuracy_of_bools(policy, batch, logp_ref_chosen, logp_ref_rejected, optimizer, beta=0.1):
    out = train.dpo_step(policy, batch, logp_ref_chosen, logp_ref_rejected, optimizer, beta)
    chosen, rejected = torch.tensor(out["rewards/chosen"]), torch.tensor(out["rewards/rejected"])
    out["rewards/accuracies"] = (chosen > rejected).mean().item()   # a bool tensor has no mean
    return out


@pytest.mark.parametrize("check_fn, impl, fragments", [
    (check_get_logps, logps_float_labels, ["`gather` needs its index as integers, int64 (`torch.long`)", "stay integers"]),
    (check_get_logps, logps_float_labels_indexing, ["Indexing with a tensor needs its index as integers, int64"]),
    (check_get_logps, logps_one_hot_of_floats, ["`one_hot` needs its index as integers, int64"]),
    (check_get_logps, logps_embedding_of_floats,
     ["The argument `indices` needs its index as integers, int64 (`torch.long`), and was given float32"]),
    (check_get_logps, logps_nll_with_float_targets,
     ["needed an int64 tensor and was given a float32 one", "stay integers"]),
    (check_get_logps, logps_masked_fill_with_a_long_mask, ["`masked_fill` needs a bool mask and was given an int64 one"]),
    (check_get_logps, logps_accumulate_into_the_ids_dtype,
     ["A float32 result cannot be written in place", "into an int64 tensor", "`dtype=`"]),
    (check_get_logps, logps_einsum_with_the_integer_mask,
     ["needed an int64 tensor and was given a float32 one", "convert it first (`.float()`"]),
    (check_dpo_loss, dpo_loss_mean_by_a_float32_vector,
     ["dtypes float64 and float32", "float64 inputs", "`dtype=x.dtype`"]),
    (check_dpo_loss, dpo_loss_logsigmoid_of_a_long_tensor,
     ["raised NotImplementedError", "needs a floating-point tensor and was given an int64 one", "`.float()`"]),
    (check_dpo_step, dpo_step_accuracy_of_bools,
     ["`.mean()` needs a floating-point tensor and was given a bool one", "a comparison's result", "`.float()`"]),
])
def test_a_dtype_error_says_which_dtype_was_expected(check_fn, impl, fragments):
    exc = crash_verdict(check_fn, impl, *fragments)
    assert any(word in exc.expected for word in ("int64", "bool", "float", "one dtype")), exc.expected


def test_torchs_own_not_implemented_for_a_dtype_is_not_an_untouched_stub():
    exc = crash_verdict(check_dpo_loss, dpo_loss_logsigmoid_of_a_long_tensor)
    assert "not implemented yet" not in str(exc) and exc.kind == "raised"


# ---- NameError: a cell (or a helper) not run ----------------------------------------------------

def logps_calling_an_undefined_helper(logits, input_ids, response_mask, average=False):
    return shift_and_gather(logits, input_ids).sum(-1)  # noqa: F821 — the helper's cell was not run


def dpo_loss_reading_a_local_before_it_is_assigned(pc, pr, rc, rr, beta=0.1):
    if beta < 0:
        loss = torch.zeros(())
    return loss  # noqa: F821 — never assigned for β > 0


def test_an_undefined_name_says_the_cell_above_or_a_helper_was_not_run():
    crash_verdict(check_get_logps, logps_calling_an_undefined_helper,
                  "raised NameError: name 'shift_and_gather' is not defined",
                  "`shift_and_gather` is not defined in this kernel", "the cell above that defines `shift_and_gather` "
                  "(or a helper of your own) was not run in this kernel", "spelled differently")


def test_an_undefined_import_alias_says_which_import():
    namespace = {"torch": torch}   # the notebook's cell ran without `import torch.nn.functional as F`
    exec("def get_logps(logits, input_ids, response_mask, average=False):\n"
         "    return F.log_softmax(logits, -1).sum((-1, -2))\n", namespace)
    crash_verdict(check_get_logps, namespace["get_logps"], "raised NameError: name 'F' is not defined",
                  "`F` comes from an import (`import torch.nn.functional as F`)")


def test_a_local_read_before_its_assignment_is_named():
    crash_verdict(check_dpo_loss, dpo_loss_reading_a_local_before_it_is_assigned, "raised UnboundLocalError",
                  "`loss` is read in your function before it is assigned there")


# ---- what stays as it was -----------------------------------------------------------------------

def dpo_loss_raising_its_own_value_error(pc, pr, rc, rr, beta=0.1):
    raise ValueError("something odd happened")


def dpo_loss_dividing_by_zero(pc, pr, rc, rr, beta=0.1):
    return 1 / 0


def dpo_loss_missing_key(pc, pr, rc, rr, beta=0.1):
    return {}["loss"]


def dpo_loss_own_shape_words(pc, pr, rc, rr, beta=0.1):
    raise RuntimeError("the size of my tensors must match, at some dimension")


@pytest.mark.parametrize("impl, kind", [(dpo_loss_raising_its_own_value_error, "ValueError"),
                                        (dpo_loss_dividing_by_zero, "ZeroDivisionError"),
                                        (dpo_loss_missing_key, "KeyError"),
                                        (dpo_loss_own_shape_words, "RuntimeError")])
def test_an_unrelated_exception_still_gets_the_generic_sentence(impl, kind):
    with pytest.raises(CheckFailed) as info:
        check_dpo_loss(impl)
    exc = info.value
    assert f"your function raised {kind}: " in str(exc) and str(exc).endswith(GENERIC), str(exc)
    assert exc.problem == "Your function raised an exception, on valid inputs." and exc.expected == "a normal return"
    assert exc.kind == "raised"
    assert crash_cause(kind, str(exc.got).split(": ", 1)[1]) is None


def test_an_untouched_stub_and_a_learners_own_not_implemented_are_still_not_implemented_yet():
    def half_done(logits, input_ids, response_mask, average=False):
        raise NotImplementedError("TODO: the mask")

    for stub in (exercises.get_logps, half_done):
        with pytest.raises(CheckFailed) as info:
            check_get_logps(stub)
        assert str(info.value).startswith("✗ get_logps — not implemented yet: replace the `raise NotImplementedError`")
        assert info.value.kind == "not implemented"
    assert crash_cause("NotImplementedError", "TODO: name 'x' is not defined") is None
    assert crash_cause("NotImplementedError", "") is None


# ---- the record is the only input: the grader's verdicts are the same ---------------------------

def test_the_verdict_is_read_from_the_plain_record_as_the_grader_reads_it():
    exercise = EXERCISES["get_logps"]
    record = json.loads(json.dumps(probe(exercise, logps_mask_not_shifted, seed=0)))   # what leaves the kernel
    with pytest.raises(CheckFailed) as outside:
        judge(exercise, record)
    with pytest.raises(CheckFailed) as inside:
        check_get_logps(logps_mask_not_shifted)
    assert str(outside.value) == str(inside.value) and "Sizes one apart (9 and 10)" in str(outside.value)


def test_a_record_written_by_hand_or_cut_short_is_judged_without_crashing():
    exercise = EXERCISES["dpo_loss"]
    case = exercise.cases(0)[0].name

    def verdict(error: dict) -> CheckFailed:
        with pytest.raises(CheckFailed) as info:
            judge(exercise, {"exercise": "dpo_loss", "seed": 0, "cases": {case: {"ok": False, "error": error}}})
        return info.value

    exc = verdict({"type": "RuntimeError", "message": "mat1 and mat2 shapes cannot be multiplied (4x8 and 16x8)\nmore",
                   "where": "line 3: return x @ w", "not_implemented": False})
    assert "the inner sizes, 8 and 16, must be equal" in str(exc) and "more" not in str(exc)
    cut = verdict({"type": "RuntimeError", "message": "mat1 and mat2 shapes cannot be multiplied (4x8 and 1",
                   "where": "", "not_implemented": False})   # a message cut before its numbers: the generic verdict
    assert str(cut).endswith(GENERIC)
    odd = verdict({"type": "NameError", "message": "name '<b>x</b>' is not defined", "where": ""})
    assert str(odd).endswith(GENERIC)   # only an identifier is ever taken from a message
    assert "<b>" not in odd._repr_html_()


def test_the_crash_verdict_renders_its_cause_as_html_and_plain_text():
    with pytest.raises(CheckFailed) as info:
        check_get_logps(logps_gather_without_unsqueeze)
    exc = info.value
    markup = exc._repr_html_()
    assert "<code>gather</code> got an index with a different number of dimensions" in markup
    assert "Index tensor must have the same number of dimensions as input tensor" in markup
    text = exc.text(100)
    assert all(len(line) <= 100 or " " not in line.strip() for line in text.splitlines())
    assert "expected: an index with as many dimensions as the values" in text.replace("  ", " ")


def test_every_cause_is_a_whole_sentence_with_no_answer_formula():
    causes = [crash_cause("RuntimeError", "element 0 of tensors does not require grad and does not have a grad_fn"),
              crash_cause("RuntimeError", "The size of tensor a (9) must match the size of tensor b (10) at "
                                          "non-singleton dimension 1"),
              crash_cause("RuntimeError", "expected scalar type Long but found Float"),
              crash_cause("NameError", "name 'get_logps' is not defined")]
    for cause in causes:
        assert cause is not None
        for sentence in (cause.problem, cause.advice):
            assert sentence[0].isupper() or sentence[0] == "`", sentence
            assert sentence.endswith("."), sentence
        assert "log_softmax" not in cause.advice and "logsigmoid" not in cause.advice


def test_the_graders_self_check_judges_the_same_cause_outside_the_kernel(capsys):
    from grader.selfcheck import verdict_table

    verdict = verdict_table({"SEED": 4, "get_logps": logps_gather_without_unsqueeze})[0]
    assert not verdict.passed and verdict.kind == "raised", verdict
    assert "`gather` got an index with a different number of dimensions" in verdict.message
    assert "shape and dtype each input has" not in verdict.message
