"""TRL's DPOTrainer computes what the course's dpo_loss(get_logps(...)) computes, on the course's pairs.

The versions are pinned in requirements.txt; when a new TRL or transformers changes a number or a
metric name, these tests fail and say which.
"""

import copy
import os

import pytest
import torch

pytest.importorskip("trl")
pytestmark = pytest.mark.slow  # builds TRL trainers (seconds each)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from rlhf_core import losses, task  # noqa: E402
from rlhf_core.checkpoint import load_sft_model  # noqa: E402
from rlhf_core.data import collate_pairs, pairs_by_reward  # noqa: E402
from rlhf_core.logps import get_logps  # noqa: E402
from rlhf_core.metrics import dpo_metrics  # noqa: E402
from rlhf_core.train import make_reference  # noqa: E402

BETA = 0.1
LOSS_TOL = 1e-6  # absolute for losses of order 1; relative above 1 (float32 spacing at 25 is 2e-6)
METRIC_NAMES = ("rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies", "logps/chosen", "logps/rejected")


@pytest.fixture(scope="module")
def setting():
    sft, tokenizer, _ = load_sft_model()
    sft.eval()
    pairs = list(pairs_by_reward(sft, tokenizer, list(task.TRAIN_PROMPTS[:6]), n_samples=4, seed=1))
    policy = copy.deepcopy(sft)  # a policy that has moved away from the reference
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(0.02 * torch.randn(p.shape, generator=g))
    return policy, make_reference(sft), tokenizer, pairs


def _close(trl_value: float, course_value: float) -> bool:
    return abs(trl_value - course_value) <= LOSS_TOL * max(1.0, abs(course_value))


def _course_logps(policy, reference, tokenizer, pairs, average: bool):
    batch = collate_pairs(pairs, tokenizer)
    out = []
    with torch.no_grad():
        for model in (policy, reference):
            for side in ("chosen", "rejected"):
                logits = model(batch[f"{side}_input_ids"], batch[f"{side}_attention_mask"])
                out.append(get_logps(logits, batch[f"{side}_input_ids"], batch[f"{side}_response_mask"], average=average))
    return out  # logp_pol_chosen, logp_pol_rejected, logp_ref_chosen, logp_ref_rejected


def _trl_loss_and_metrics(setting, tmp_path, **config):
    from rlhf_core.trl_dpo import loss_on_batch

    policy, reference, tokenizer, pairs = setting
    return loss_on_batch(policy, reference, tokenizer, pairs, beta=BETA, output_dir=tmp_path, **config)


def test_trl_tokenizes_the_pairs_as_the_course_does(setting, tmp_path):
    _, _, tokenizer, pairs = setting
    _, _, batch = _trl_loss_and_metrics(setting, tmp_path)
    course = collate_pairs(pairs, tokenizer)
    ours = {tuple(row[m.bool()].tolist()) for row, m in zip(course["chosen_input_ids"], course["chosen_attention_mask"])}
    n = len(pairs)
    theirs = {tuple(row[m.bool()].tolist()) for row, m in zip(batch["input_ids"][:n], batch["attention_mask"][:n])}
    assert theirs == ours  # the same <bos> prompt response <eos> ids (TRL shuffles the order)
    responses = {tuple(row[m.bool()].tolist()) for row, m in zip(batch["input_ids"][:n], batch["completion_mask"][:n])}
    assert responses == {tuple(r[m.bool()].tolist()) for r, m in zip(course["chosen_input_ids"], course["chosen_response_mask"])}


def test_sigmoid_loss_and_every_metric_equal_the_course(setting, tmp_path):
    policy, reference, tokenizer, pairs = setting
    logps = _course_logps(policy, reference, tokenizer, pairs, average=False)
    loss, metrics, _ = _trl_loss_and_metrics(setting, tmp_path, loss_type=["sigmoid"])
    assert _close(loss, losses.dpo_loss(*logps, beta=BETA).item())
    missing = [name for name in METRIC_NAMES if name not in metrics]
    assert not missing, f"TRL no longer logs {missing}; it logs {sorted(metrics)}"
    ours = dpo_metrics(*logps, beta=BETA)
    for name in METRIC_NAMES:
        assert metrics[name] == pytest.approx(ours[name], rel=1e-5, abs=1e-6), name


@pytest.mark.parametrize("loss_type, course_loss, average", [
    ("hinge", losses.hinge_loss, False),
    ("ipo", losses.ipo_loss, True),            # TRL divides each log-ratio by its response length
    ("sigmoid_norm", losses.dpo_loss, True),   # the length-normalised DPO: the same loss on averages
])
def test_loss_types_the_course_also_implements(setting, tmp_path, loss_type, course_loss, average):
    policy, reference, tokenizer, pairs = setting
    logps = _course_logps(policy, reference, tokenizer, pairs, average=average)
    loss, _, _ = _trl_loss_and_metrics(setting, tmp_path, loss_type=[loss_type])
    assert _close(loss, course_loss(*logps, beta=BETA).item()), (loss, course_loss(*logps, beta=BETA).item())


def test_ipo_on_summed_log_probs_is_not_what_trl_computes(setting, tmp_path):
    """The convention that differs: the IPO paper writes full-sequence log-ratios; TRL averages them."""
    policy, reference, tokenizer, pairs = setting
    loss, _, _ = _trl_loss_and_metrics(setting, tmp_path, loss_type=["ipo"])
    summed = losses.ipo_loss(*_course_logps(policy, reference, tokenizer, pairs, average=False), beta=BETA).item()
    assert abs(loss - summed) > 1.0


def test_trl_robust_is_not_conservative_dpo(setting, tmp_path):
    """TRL's label smoothing: ``robust`` is the unbiased robust DPO (Chowdhury et al. 2024), not cDPO."""
    eps = 0.1
    policy, reference, tokenizer, pairs = setting
    logps = _course_logps(policy, reference, tokenizer, pairs, average=False)
    loss, _, _ = _trl_loss_and_metrics(setting, tmp_path, loss_type=["robust"], label_smoothing=eps)
    h = losses.dpo_logits(*logps, beta=BETA)
    robust = ((-(1 - eps) * torch.nn.functional.logsigmoid(h) + eps * torch.nn.functional.logsigmoid(-h)) / (1 - 2 * eps)).mean()
    assert _close(loss, robust.item())
    cdpo = losses.conservative_dpo_loss(*logps, beta=BETA, label_smoothing=eps).item()
    assert abs(loss - cdpo) > 1e-3


def test_trl_default_bf16_would_move_the_loss(setting, tmp_path):
    """Why hf.trl_config sets bf16=False: TRL's default rounds the reference's forward pass."""
    policy, reference, tokenizer, pairs = setting
    exact = losses.dpo_loss(*_course_logps(policy, reference, tokenizer, pairs, average=False), beta=BETA).item()
    loss, _, _ = _trl_loss_and_metrics(setting, tmp_path, bf16=True)
    assert abs(loss - exact) > 10 * LOSS_TOL


def test_the_course_config_maps_onto_trl_field_by_field(tmp_path):
    from rlhf_core.train import DPOConfig
    from rlhf_core.trl_dpo import trl_arguments

    config = DPOConfig(beta=0.3, batch_size=32, grad_accum_steps=2, steps=200, lr=3e-4, warmup_steps=10,
                       weight_decay=0.01, max_grad_norm=1.0, seed=5)
    args = trl_arguments(config, tmp_path, num_processes=2)
    assert (args.beta, args.learning_rate, args.max_steps, args.warmup_steps, args.seed) == (0.3, 3e-4, 200, 10, 5)
    assert (args.per_device_train_batch_size, args.gradient_accumulation_steps) == (16, 2)  # 2 × 16 = the course's 32
    assert args.loss_type == ["sigmoid"] and args.precompute_ref_log_probs and not args.bf16
    assert getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type) == "cosine" and args.max_grad_norm == 1.0 and args.weight_decay == 0.01
    assert trl_arguments(DPOConfig(average_logps=True), tmp_path).loss_type == ["sigmoid_norm"]
    assert trl_arguments(DPOConfig(loss_type="ipo"), tmp_path).loss_type == ["ipo"]
    with pytest.raises(ValueError, match="robust DPO"):
        trl_arguments(DPOConfig(loss_type="cdpo", label_smoothing=0.1), tmp_path)
    with pytest.raises(ValueError, match="does not split"):
        trl_arguments(DPOConfig(batch_size=9), tmp_path, num_processes=2)
