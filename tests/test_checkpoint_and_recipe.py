"""The shipped SFT checkpoint and the default DPO run: the figures the README quotes.

The slow tests here train for real (about 1.5 min for SFT, 30 s for DPO on 2 cores)."""

import json
from pathlib import Path

import pytest
import torch

from rlhf_core import task
from rlhf_core.checkpoint import SFT_CHECKPOINT, load_checkpoint, load_sft_model, save_checkpoint
from rlhf_core.data import collate_sft
from rlhf_core.evaluation import sample_and_score
from rlhf_core.toy import frozen_copy
from rlhf_core.train import SFTConfig, sft_loss, train_sft

ROOT = Path(__file__).resolve().parents[1]
CONFIG = json.loads((ROOT / "configs" / "sft.json").read_text())


@pytest.fixture(scope="module")
def shipped():
    return load_sft_model()


def test_the_shipped_checkpoint_is_small_and_loads(shipped):
    model, tokenizer, meta = shipped
    assert SFT_CHECKPOINT.stat().st_size < 3_000_000
    assert tokenizer == tokenizer.for_task()
    assert 300_000 < model.num_parameters() < 600_000
    assert meta["train_config"] == SFTConfig.from_dict(CONFIG).to_dict()  # made from the config kept in the repo


def test_the_shipped_weights_reach_the_stated_loss(shipped):
    model, tokenizer, meta = shipped
    heldout = task.make_corpus(512, seed=CONFIG["seed"] + 10_000, prompts=task.HELDOUT_PROMPTS)
    with torch.no_grad():
        loss = sft_loss(model, collate_sft(heldout, tokenizer)).item()
    assert loss == pytest.approx(meta["metrics"]["eval_loss"], abs=1e-4)
    assert loss < 2.1  # the README's figure: held-out loss 2.02 nats per response token


def test_ninety_percent_of_temperature_one_samples_are_grammatical(shipped):
    model, tokenizer, _ = shipped
    report = sample_and_score(model, frozen_copy(model), tokenizer, task.HELDOUT_PROMPTS, n_per_prompt=12, seed=7)
    assert report.summary()["eval/grammatical"] >= 0.90
    assert report.kl == pytest.approx(0.0, abs=1e-4)  # the policy is its own reference


def test_the_first_steps_of_the_script_reproduce_the_shipped_loss_curve(shipped):
    _, _, meta = shipped
    _, _, history = train_sft(SFTConfig.from_dict(CONFIG), progress=False, stop_after=100)
    assert history.values("loss") == pytest.approx(meta["metrics"]["loss_curve"][:100], rel=1e-4)


@pytest.mark.slow
def test_the_script_and_its_config_produce_the_shipped_checkpoint(shipped, tmp_path):
    from rlhf_core.train_sft import main

    out = tmp_path / "sft.pt"
    assert main(["--config", str(ROOT / "configs" / "sft.json"), "--out", str(out), "--quiet"]) == 0
    model, _, meta = load_checkpoint(out)
    ship_model, _, ship_meta = shipped
    assert meta["metrics"]["eval_loss"] == pytest.approx(ship_meta["metrics"]["eval_loss"], abs=2e-3)
    assert meta["metrics"]["grammatical_t1"] >= 0.90
    diffs = [(a - b).abs().max().item() for a, b in zip(model.state_dict().values(), ship_model.state_dict().values())]
    assert max(diffs) < 5e-2  # bit-identical on the machine that made it; close elsewhere


def test_checkpoints_round_trip(tmp_path, shipped):
    model, tokenizer, _ = shipped
    save_checkpoint(tmp_path / "c.pt", model, tokenizer, {"a": 1}, {"b": 2.0})
    loaded, tok2, meta = load_checkpoint(tmp_path / "c.pt")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))
    assert tok2 == tokenizer and meta == {"train_config": {"a": 1}, "metrics": {"b": 2.0}}
    with pytest.raises(FileNotFoundError, match="make sft-checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


@pytest.mark.slow
def test_the_default_dpo_run_raises_sampled_reward_by_a_standard_deviation_at_bounded_kl():
    from rlhf_core.recipes import default_dpo_run

    run = default_dpo_run(progress=False)
    h = run.history
    corpus_std = task.corpus_reward_stats()["std"]
    rewards = h.values("eval/reward")
    assert rewards[-1] - rewards[0] >= corpus_std
    assert 0.0 < h.last("eval/kl") < 10.0
    assert h.last("eval/grammatical") >= 0.75
    assert 1.0 < h.last("eval/margin") < 10.0  # held-out margin stays in the healthy band
    assert all(not p.requires_grad for p in run.reference.parameters())
