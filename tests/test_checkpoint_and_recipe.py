"""The shipped SFT checkpoint and the default DPO run: the figures docs/measurements.md quotes.

The slow tests here train for real (about 1.5 min for SFT, 30 s for DPO on 2 cores).

Training repeats bit for bit only on the CPU and torch build that made the checkpoint, on as many threads (float sums
run in another order elsewhere), so the bit-exact comparisons run only where ``same_machine`` says the checkpoint's
recorded fingerprint is this machine's and the test has those threads to itself (``tests/reruns.py``); elsewhere (and
for the shipped checkpoint, which carries no fingerprint) the tests compare what the claims are, to tolerances
measured across machines and seeds (see the constants below)."""

import json
from pathlib import Path

import pytest
import torch

from reruns import bit_exact, threads_for
from rlhf_core import task
from rlhf_core.checkpoint import (
    SFT_CHECKPOINT,
    load_checkpoint,
    load_sft_model,
    machine_fingerprint,
    same_machine,
    save_checkpoint,
)
from rlhf_core.data import collate_sft
from rlhf_core.evaluation import sample_and_score
from rlhf_core.toy import frozen_copy
from rlhf_core.train import SHIPPED_THREADS, SFTConfig, sft_loss, train_sft

ROOT = Path(__file__).resolve().parents[1]
CONFIG = json.loads((ROOT / "configs" / "sft.json").read_text())

# The first steps of a rerun against the shipped loss curve, on another machine. Measured on an Intel Xeon
# (AVX-512, torch 2.13.0+cpu, 2 threads) against the curve shipped from an AMD EPYC: the largest relative
# difference is 1.1e-7 over the first 10 steps, 1.8e-7 over 40, 2.2e-7 over 60, 8.1e-7 over 70, then the
# drift is amplified: 3.6e-5 by step 80, 1.2e-4 by step 100, 1.7e-2 by step 150. So: 40 steps at 1e-5,
# about 50× the drift measured there, and 10× below a run that is off by 1e-4.
FIRST_STEPS = 40
FIRST_STEPS_REL = 1e-5
# A full retrain against the shipped checkpoint's figures (held-out loss 2.0223, 98.3 % grammatical), on
# another machine. The retrain on the Intel Xeon above ended 0.47 away in some weight, yet within 2e-3 of the
# shipped held-out loss and above 90 % grammatical (it failed only the old bit-level weight bound). The
# grammatical fraction is measured on 1032 samples: its binomial standard error at 0.98 is 0.0044.
# Tolerances: 0.01 nats of held-out loss (5× that cross-machine difference) and 3 points of grammatical
# samples (about 7 standard errors).
EVAL_LOSS_TOL = 0.01
GRAMMATICAL_TOL = 0.03


def assert_first_steps_match(losses, shipped_curve):
    """The rerun's first losses equal the shipped curve's, to what float reordering allows."""
    n = len(losses)
    assert n >= 1 and losses == pytest.approx(shipped_curve[:n], rel=FIRST_STEPS_REL), (
        f"the first {n} SFT losses drifted from the shipped curve by more than {FIRST_STEPS_REL:g} (relative)")


def assert_retrain_matches(metrics, shipped_metrics):
    """A retrain from the shipped config reaches the shipped checkpoint's held-out loss and sample quality,
    within the spread measured across seeds and machines."""
    assert metrics["eval_loss"] == pytest.approx(shipped_metrics["eval_loss"], abs=EVAL_LOSS_TOL)
    assert metrics["grammatical_t1"] >= shipped_metrics["grammatical_t1"] - GRAMMATICAL_TOL
    assert metrics["grammatical_t1"] >= 0.90  # a floor under the shipped 98.3 % (docs/measurements.md)


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
    assert loss < 2.1  # docs/measurements.md's figure: held-out loss 2.022 nats per response token


@pytest.mark.slow
def test_ninety_percent_of_temperature_one_samples_are_grammatical(shipped):
    model, tokenizer, _ = shipped
    report = sample_and_score(model, frozen_copy(model), tokenizer, task.HELDOUT_PROMPTS, n_per_prompt=12, seed=7)
    assert report.summary()["eval/grammatical"] >= 0.90
    assert report.kl == pytest.approx(0.0, abs=1e-4)  # the policy is its own reference


def test_the_config_kept_in_the_repo_trains_on_the_threads_the_reruns_take_for_the_shipped_ones():
    assert CONFIG["num_threads"] == SHIPPED_THREADS == SFTConfig().num_threads


@pytest.mark.slow
def test_the_first_steps_of_the_script_reproduce_the_shipped_loss_curve(shipped):
    _, _, meta = shipped
    exact = bit_exact(meta["machine"])   # the machine that made the checkpoint, on its threads (tests/reruns.py)
    steps = 100 if exact else FIRST_STEPS
    config = SFTConfig.from_dict({**CONFIG, "num_threads": threads_for(exact)})
    _, _, history = train_sft(config, progress=False, stop_after=steps)
    if exact:  # the machine that made the checkpoint: the same numbers, bit for bit
        assert history.values("loss") == meta["metrics"]["loss_curve"][:steps]
    else:
        assert_first_steps_match(history.values("loss"), meta["metrics"]["loss_curve"])


def test_the_loss_curve_comparison_can_fail(shipped):
    curve = shipped[2]["metrics"]["loss_curve"]
    assert_first_steps_match(curve[:FIRST_STEPS], curve)
    for wrong in ([v * (1 + 10 * FIRST_STEPS_REL) for v in curve[:FIRST_STEPS]],  # a slightly different run
                  curve[1:FIRST_STEPS + 1]):  # off by one step
        with pytest.raises(AssertionError, match="drifted"):
            assert_first_steps_match(wrong, curve)


@pytest.mark.slow
def test_the_script_and_its_config_produce_the_shipped_checkpoint(shipped, tmp_path):
    from rlhf_core.course.sft_checkpoint import main

    ship_model, _, ship_meta = shipped
    exact = bit_exact(ship_meta["machine"])
    config = ROOT / "configs" / "sft.json"
    if not exact:   # the shipped config on this process's threads
        config = tmp_path / "sft.json"
        config.write_text(json.dumps({**CONFIG, "num_threads": threads_for(exact)}))
    out = tmp_path / "sft.pt"
    assert main(["--config", str(config), "--out", str(out), "--quiet"]) == 0
    model, _, meta = load_checkpoint(out)
    assert meta["machine"] == machine_fingerprint()  # the script records where it ran
    assert_retrain_matches(meta["metrics"], ship_meta["metrics"])
    if exact:  # the machine that made the checkpoint, on its threads: bit for bit
        assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), ship_model.state_dict().values()))
        assert meta["metrics"]["loss_curve"] == ship_meta["metrics"]["loss_curve"]


def test_the_retrain_comparison_can_fail(shipped):
    metrics = shipped[2]["metrics"]
    assert_retrain_matches(metrics, metrics)
    for key, change in (("eval_loss", 2 * EVAL_LOSS_TOL), ("eval_loss", -2 * EVAL_LOSS_TOL),
                        ("grammatical_t1", -2 * GRAMMATICAL_TOL)):
        with pytest.raises(AssertionError):
            assert_retrain_matches({**metrics, key: metrics[key] + change}, metrics)


def test_checkpoints_round_trip(tmp_path, shipped):
    model, tokenizer, _ = shipped
    save_checkpoint(tmp_path / "c.pt", model, tokenizer, {"a": 1}, {"b": 2.0})
    loaded, tok2, meta = load_checkpoint(tmp_path / "c.pt")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))
    assert tok2 == tokenizer and meta == {"train_config": {"a": 1}, "metrics": {"b": 2.0}, "machine": None}
    save_checkpoint(tmp_path / "d.pt", model, tokenizer, machine=machine_fingerprint())
    assert same_machine(load_checkpoint(tmp_path / "d.pt")[2]["machine"])
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
