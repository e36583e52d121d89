"""SFT and DPO steps and loops: the loss definitions, the frozen cached reference, accumulation, metrics."""

import math

import pytest
import torch

from rlhf_core import task
from rlhf_core.data import collate_pairs, collate_sft
from rlhf_core.logps import get_logps_loop
from rlhf_core.metrics import EVAL_METRICS, TRAIN_METRICS, UpdateSizeMonitor
from rlhf_core.model import ModelConfig, TinyLM
from rlhf_core.tokenizer import WordTokenizer
from rlhf_core.train import (
    DPOConfig,
    SFTConfig,
    concatenated_logps,
    dpo_metrics,
    dpo_optimizer,
    dpo_step,
    lr_at,
    make_reference,
    reference_logps,
    sft_loss,
    sft_step,
    train_dpo,
    train_sft,
)


@pytest.fixture(scope="module")
def tok():
    return WordTokenizer.for_task()


def small_model(tok, seed=0):
    torch.manual_seed(seed)
    return TinyLM(ModelConfig(vocab_size=tok.vocab_size, d_model=32, n_layers=1, n_heads=2, d_ff=64))


def some_pairs(n, seed=0):
    corpus = task.make_corpus(2 * n, seed=seed)
    return [{"prompt": a["prompt"], "chosen": a["response"], "rejected": b["response"]} for a, b in zip(corpus[::2], corpus[1::2])]


def test_sft_loss_is_the_mean_nll_of_response_tokens(tok):
    model = small_model(tok)
    batch = collate_sft(task.make_corpus(3, seed=2), tok)
    logits = model(batch["input_ids"], batch["attention_mask"])
    total = get_logps_loop(logits.detach(), batch["input_ids"], batch["response_mask"]).sum()
    n_tokens = batch["response_mask"][:, 1:].sum()
    assert sft_loss(model, batch).item() == pytest.approx(-(total / n_tokens).item(), rel=1e-5)


def test_sft_step_lowers_the_loss_on_a_repeated_batch(tok):
    model = small_model(tok)
    batch = collate_sft(task.make_corpus(8, seed=3), tok)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = sft_step(model, batch, optimizer)
    for _ in range(20):
        last = sft_step(model, batch, optimizer)
    assert last < first - 0.5


def test_sft_config_rejects_unknown_keys():
    with pytest.raises(ValueError, match="unknown SFT config keys"):
        SFTConfig.from_dict({"stepz": 3})


def test_train_sft_runs_and_stop_after_keeps_the_schedule():
    config = SFTConfig(steps=40, corpus_size=200, batch_size=8, warmup_steps=5, eval_every=20,
                       model={"d_model": 32, "n_layers": 1, "n_heads": 2, "d_ff": 64, "max_seq_len": 64})
    _, _, full = train_sft(config, progress=False)
    _, _, prefix = train_sft(config, progress=False, stop_after=12)
    assert len(full.values("loss")) == 40 and full.values("eval/loss")
    assert prefix.values("loss") == pytest.approx(full.values("loss")[:12], rel=1e-6)


def test_the_learning_rate_warms_up_then_decays():
    lrs = [lr_at(s, 100, 1.0, 10, 0.1) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:])) and lrs[-1] == pytest.approx(0.1, abs=1e-3)


def test_one_concatenated_pass_equals_two_separate_passes(tok):
    model = small_model(tok).eval()
    batch = collate_pairs(some_pairs(5), tok)
    logp_pol_chosen, logp_pol_rejected = concatenated_logps(model, batch)
    for side, got in (("chosen", logp_pol_chosen), ("rejected", logp_pol_rejected)):
        ids = batch[f"{side}_input_ids"]
        alone = get_logps_loop(model(ids, batch[f"{side}_attention_mask"]).detach(), ids, batch[f"{side}_response_mask"])
        assert torch.allclose(got.double(), alone, atol=1e-4)


def test_the_reference_is_frozen_and_its_logps_are_computed_once(tok):
    policy = small_model(tok)
    reference = make_reference(policy)
    assert all(not p.requires_grad for p in reference.parameters()) and not reference.training
    calls = {"n": 0}
    original = reference.forward

    def counting_forward(*args, **kwargs):
        calls["n"] += 1
        return original(*args, **kwargs)

    reference.forward = counting_forward
    pairs = some_pairs(40)
    history = train_dpo(policy, reference, tok, pairs, DPOConfig(batch_size=8, steps=6, eval_every=100),
                        eval_prompts=None, progress=False)
    assert calls["n"] == 1  # 40 pairs fit one caching batch; no call during the 6 training steps
    assert len(history.values("loss")) == 6
    before = make_reference(small_model(tok))
    assert all(torch.equal(a, b) for a, b in zip(reference.parameters(), before.parameters()))


def test_train_dpo_refuses_a_trainable_reference(tok):
    policy = small_model(tok)
    with pytest.raises(ValueError, match="frozen copy"):
        train_dpo(policy, small_model(tok), tok, some_pairs(10), DPOConfig(batch_size=4, steps=1), progress=False)


def test_gradient_accumulation_equals_one_big_batch(tok):
    pairs = some_pairs(16, seed=5)
    results = []
    for batch_size, accum in ((8, 2), (16, 1)):
        policy = small_model(tok, seed=1)
        reference = make_reference(small_model(tok, seed=1))
        config = DPOConfig(batch_size=batch_size, grad_accum_steps=accum, steps=1, warmup_steps=0, lr=1e-2,
                           max_grad_norm=1e9, eval_every=100)
        train_dpo(policy, reference, tok, pairs, config, eval_prompts=None, progress=False,
                  optimizer=torch.optim.SGD(policy.parameters(), lr=1e-2))
        results.append(torch.cat([p.detach().flatten() for p in policy.parameters()]))
    assert torch.allclose(results[0], results[1], atol=1e-6)


def test_history_carries_the_conventional_metric_names(tok):
    policy = small_model(tok)
    history = train_dpo(policy, make_reference(policy), tok, some_pairs(24), DPOConfig(batch_size=8, steps=4, eval_every=2,
                        eval_samples_per_prompt=1), eval_pairs=some_pairs(6, seed=9), eval_prompts=task.HELDOUT_PROMPTS[:4],
                        progress=False)
    assert set(TRAIN_METRICS) | set(EVAL_METRICS) <= set(history.names())
    assert history.at("eval/kl", 0) == pytest.approx(0.0, abs=1e-4)  # policy == reference at step 0
    assert history.at("eval/margin", 0) == pytest.approx(0.0, abs=1e-4)
    assert history.values("loss")[0] == pytest.approx(math.log(2), abs=1e-4)


def test_dpo_metrics_are_consistent():
    logp_pol_chosen, logp_pol_rejected, logp_ref_chosen, logp_ref_rejected = (torch.randn(9) for _ in range(4))
    m = dpo_metrics(logp_pol_chosen, logp_pol_rejected, logp_ref_chosen, logp_ref_rejected, beta=0.5)
    assert m["rewards/margins"] == pytest.approx(m["rewards/chosen"] - m["rewards/rejected"], abs=1e-6)
    assert m["logratio/margin"] == pytest.approx(m["rewards/margins"] / 0.5, abs=1e-5)
    assert 0.0 <= m["rewards/accuracies"] <= 1.0


def test_dpo_step_moves_the_policy_toward_the_chosen_responses(tok):
    policy = small_model(tok)
    reference = make_reference(policy)
    pairs = some_pairs(8)
    batch = collate_pairs(pairs, tok)
    logp_ref_chosen, logp_ref_rejected = reference_logps(reference, pairs, tok)
    optimizer = torch.optim.AdamW(policy.parameters(), lr=1e-2)
    first = dpo_step(policy, batch, logp_ref_chosen, logp_ref_rejected, optimizer, beta=0.1)
    for _ in range(10):
        last = dpo_step(policy, batch, logp_ref_chosen, logp_ref_rejected, optimizer, beta=0.1)
    assert first["loss"] == pytest.approx(math.log(2), abs=1e-4)
    assert last["loss"] < first["loss"] and last["rewards/margins"] > 0


def test_train_dpo_runs_dpo_step_for_every_update(tok, monkeypatch):
    import rlhf_core.train as train_module

    seen = []
    real = train_module.dpo_step

    def spy(*args, **kwargs):
        seen.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(train_module, "dpo_step", spy)
    policy = small_model(tok)
    config = DPOConfig(batch_size=4, grad_accum_steps=2, steps=3, max_grad_norm=0.5, loss_type="cdpo",
                       label_smoothing=0.2, eval_every=100)
    train_dpo(policy, make_reference(policy), tok, some_pairs(16), config, eval_prompts=None, progress=False)
    assert len(seen) == 3
    assert seen[0] == {"loss_type": "cdpo", "label_smoothing": 0.2, "average_logps": False, "max_grad_norm": 0.5,
                       "micro_batches": 2, "rpo_alpha": 0.0}


def test_dpo_step_default_is_the_plain_sigmoid_step(tok):
    # what lesson 08 asks for: summed log-probs, dpo_loss, zero_grad / backward / step, no clipping
    from rlhf_core.losses import dpo_loss

    pairs = some_pairs(6, seed=4)
    batch = collate_pairs(pairs, tok)
    results = []
    for use_library in (True, False):
        policy = small_model(tok, seed=2)
        logp_ref_chosen, logp_ref_rejected = reference_logps(make_reference(small_model(tok, seed=3)), pairs, tok)
        optimizer = torch.optim.SGD(policy.parameters(), lr=0.5)
        if use_library:
            loss = dpo_step(policy, batch, logp_ref_chosen, logp_ref_rejected, optimizer, beta=0.2)["loss"]
        else:
            optimizer.zero_grad()
            logp_pol_chosen, logp_pol_rejected = concatenated_logps(policy, batch)
            by_hand = dpo_loss(logp_pol_chosen, logp_pol_rejected, logp_ref_chosen, logp_ref_rejected, beta=0.2)
            by_hand.backward()
            optimizer.step()
            loss = by_hand.item()
        results.append((loss, torch.cat([p.detach().flatten() for p in policy.parameters()])))
    assert results[0][0] == results[1][0]
    assert torch.equal(results[0][1], results[1][1])


def test_dpo_step_clips_and_accumulates(tok):
    pairs = some_pairs(8, seed=6)
    batch = collate_pairs(pairs, tok)
    logp_ref_chosen, logp_ref_rejected = reference_logps(make_reference(small_model(tok, seed=3)), pairs, tok)

    def step(**extras):
        policy = small_model(tok, seed=2)
        start = torch.cat([p.detach().flatten() for p in policy.parameters()])
        out = dpo_step(policy, batch, logp_ref_chosen, logp_ref_rejected, torch.optim.SGD(policy.parameters(), lr=1.0),
                       beta=0.5, **extras)
        return out, torch.cat([p.detach().flatten() for p in policy.parameters()]) - start

    plain, moved = step()
    clipped, moved_clipped = step(max_grad_norm=1e-3)
    assert moved_clipped.norm().item() == pytest.approx(1e-3, rel=1e-3) and moved.norm().item() > 1e-2
    accumulated, moved_accumulated = step(micro_batches=4)
    assert torch.allclose(moved_accumulated, moved, atol=1e-6)
    assert accumulated["loss"] == pytest.approx(plain["loss"], abs=1e-6)
    assert accumulated["logratio/margin"] == pytest.approx(plain["logratio/margin"], abs=1e-5)
    with pytest.raises(ValueError, match="micro-batches"):
        step(micro_batches=9)


@pytest.mark.parametrize("loss_type", ["ipo", "cdpo", "hinge"])
def test_other_losses_train(tok, loss_type):
    policy = small_model(tok)
    history = train_dpo(policy, make_reference(policy), tok, some_pairs(16),
                        DPOConfig(loss_type=loss_type, label_smoothing=0.1, average_logps=loss_type == "ipo",
                                  batch_size=8, steps=3, eval_every=100), eval_prompts=None, progress=False)
    assert all(math.isfinite(v) for v in history.values("loss"))
    with pytest.raises(ValueError, match="unknown loss_type"):
        train_dpo(policy, make_reference(policy), tok, some_pairs(16), DPOConfig(loss_type="ppo", batch_size=8, steps=1),
                  eval_prompts=None, progress=False)


def test_side_logps_equals_each_half_of_concatenated_logps():
    from rlhf_core.checkpoint import load_sft_model
    from rlhf_core.data import collate_pairs
    from rlhf_core.logps import concatenated_logps, side_logps

    model, tokenizer, _ = load_sft_model()
    pairs = [{"prompt": "honestly , the plot felt", "chosen": "great .", "rejected": "it was very dull and long ."},
             {"prompt": "overall , the cast was", "chosen": "not bad but slow .", "rejected": "awful ."}]
    batch = collate_pairs(pairs, tokenizer)
    with torch.no_grad():
        chosen, rejected = concatenated_logps(model, batch)
        assert torch.allclose(side_logps(model, batch, "chosen"), chosen, atol=1e-4)
        assert torch.allclose(side_logps(model, batch, "rejected"), rejected, atol=1e-4)
        assert not torch.allclose(chosen, rejected)


def test_heldout_pair_metrics_is_zero_margin_for_the_reference_itself():
    from rlhf_core.checkpoint import load_sft_model
    from rlhf_core.evaluation import heldout_pair_metrics
    from rlhf_core.train import reference_logps

    model, tokenizer, _ = load_sft_model()
    pairs = [{"prompt": "honestly , the plot felt", "chosen": "great .", "rejected": "it was very dull ."}] * 3
    logp_ref_chosen, logp_ref_rejected = reference_logps(model, pairs, tokenizer)
    model.train()
    metrics = heldout_pair_metrics(model, pairs, logp_ref_chosen, logp_ref_rejected, tokenizer)
    assert model.training, "heldout_pair_metrics must restore the model's training mode"
    assert metrics == {"eval/margin": pytest.approx(0.0, abs=1e-4), "eval/accuracy": 0.0}
    shifted = heldout_pair_metrics(model, pairs, logp_ref_chosen - 2.0, logp_ref_rejected, tokenizer)
    assert shifted["eval/margin"] == pytest.approx(2.0, abs=1e-4) and shifted["eval/accuracy"] == 1.0


# ------------------------------------------------------------------------------------------------
# RPO's NLL term, the margin cap (hinge), the optimizer and its step sizes


def test_rpo_adds_alpha_times_the_chosen_per_token_nll_to_the_dpo_loss(tok):
    from rlhf_core.losses import dpo_loss
    from rlhf_core.train import chosen_nll

    pairs = some_pairs(6, seed=5)
    batch = collate_pairs(pairs, tok)
    logp_ref_chosen, logp_ref_rejected = reference_logps(make_reference(small_model(tok, seed=3)), pairs, tok)
    results = []
    for use_library in (True, False):
        policy = small_model(tok, seed=2)
        optimizer = torch.optim.SGD(policy.parameters(), lr=0.5)
        if use_library:
            out = dpo_step(policy, batch, logp_ref_chosen, logp_ref_rejected, optimizer, beta=0.2, rpo_alpha=0.7)
            loss, nll = out["loss"], out["nll/chosen"]
        else:
            optimizer.zero_grad()
            logits = policy(batch["chosen_input_ids"], batch["chosen_attention_mask"])
            per_row = get_logps_loop(logits.detach(), batch["chosen_input_ids"], batch["chosen_response_mask"], average=True)
            nll = -per_row.mean().item()                                    # the oracle: a loop over tokens
            logp_pol_chosen, logp_pol_rejected = concatenated_logps(policy, batch)
            by_hand = dpo_loss(logp_pol_chosen, logp_pol_rejected, logp_ref_chosen, logp_ref_rejected, beta=0.2)
            by_hand = by_hand + 0.7 * chosen_nll(logp_pol_chosen, batch)
            by_hand.backward()
            optimizer.step()
            loss = by_hand.item()
        results.append((loss, nll, torch.cat([p.detach().flatten() for p in policy.parameters()])))
    (loss_a, nll_a, w_a), (loss_b, nll_b, w_b) = results
    assert nll_a == pytest.approx(nll_b, rel=1e-5) and nll_a > 1.0   # per token: a few nats, not a sum
    assert loss_a == pytest.approx(loss_b, rel=1e-6)
    assert torch.allclose(w_a, w_b, atol=1e-6)
    plain = dpo_step(small_model(tok, seed=2), batch, logp_ref_chosen, logp_ref_rejected,
                     torch.optim.SGD(small_model(tok, seed=2).parameters(), lr=0.5), beta=0.2)
    assert "nll/chosen" not in plain and loss_a == pytest.approx(plain["loss"] + 0.7 * nll_a, rel=1e-5)


def test_rpo_in_train_dpo_raises_the_chosen_log_probs_above_plain_dpo(tok):
    pairs = some_pairs(16, seed=7)
    ends = {}
    for alpha in (0.0, 1.0):
        policy = small_model(tok, seed=1)
        config = DPOConfig(batch_size=8, steps=15, lr=3e-3, warmup_steps=0, eval_every=100, rpo_alpha=alpha)
        history = train_dpo(policy, make_reference(policy), tok, pairs, config, eval_prompts=None, progress=False)
        ends[alpha] = sum(history.values("logps/chosen")[-5:]) / 5
        assert ("nll/chosen" in history.names()) == (alpha > 0)
    assert ends[1.0] > ends[0.0] + 1.0, ends


def test_dpo_optimizer_is_what_train_dpo_builds_by_default(tok):
    pairs = some_pairs(16, seed=8)
    rows = []
    for pass_it in (False, True):
        policy = small_model(tok, seed=4)
        config = DPOConfig(batch_size=8, steps=3, lr=1e-2, eval_every=100)
        optimizer = dpo_optimizer(policy, config) if pass_it else None
        rows.append(train_dpo(policy, make_reference(policy), tok, pairs, config, eval_prompts=None, progress=False,
                              optimizer=optimizer).rows)
    assert rows[0] == rows[1]


def test_update_size_monitor_sees_full_adam_steps_first_then_smaller_ones_as_the_gradient_shrinks():
    model = torch.nn.Linear(50, 1, bias=False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
    monitor = UpdateSizeMonitor(model, optimizer)
    x = torch.randn(64, 50, generator=torch.Generator().manual_seed(0))
    for step in range(1, 81):
        optimizer.zero_grad()
        scale = 1.0 if step <= 40 else 1e-3                       # the same loss, 1000× smaller from step 41
        (scale * model(x).pow(2).mean()).backward()
        optimizer.step()
        monitor(step, {"loss": 0.0})
        monitor(step, {"eval/kl": 0.0})                             # an evaluation row: ignored
    assert monitor.steps == list(range(1, 81))
    assert monitor.median_ratio[0] == pytest.approx(1.0, abs=1e-3)   # step 1 of Adam: |Δθ| = η for every weight
    assert monitor.median_ratio[79] < 0.05                          # 40 steps after the shrink: a small fraction of η
