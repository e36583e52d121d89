"""Lesson 09's shipped studies: the bars they must meet, that they follow the course's one explosion rule
and one frontier comparison (both in ``rlhf_core.diagnostics``), and that this code produces them."""

import pytest
import torch

from rlhf_core.checkpoint import same_machine
from rlhf_core.diagnostics import EXPLOSION_THRESHOLD, diagnose, first_explosion_step
from rlhf_core.experiments import (
    EXPLOSION_BY_STEP,
    FIX_VARIANTS,
    PATHOLOGY,
    explosion_rule,
    load_frontier,
    load_margin_study,
    run_variant,
)
from rlhf_core.frontier import betas_above_baseline
from rlhf_core.metrics import MetricsHistory

PATHOLOGY_NAME, DEFAULT_NAME = list(FIX_VARIANTS)[0], list(FIX_VARIANTS)[-1]

# How far a rerun of the pathology may drift from the shipped one on another CPU. Measured on an Intel
# Xeon (AVX-512, torch 2.13.0+cpu) against the study shipped from an AMD EPYC: relative difference of the
# losses 0 at step 1, 1.5e-7 at step 2, 1.2e-6 at 3, 5.2e-5 at 4, 9.9e-5 at 5, then 1.5e-3 at 8, 1e-2 at 10
# and a factor 5 at step 16: the run is chaotic (20 of the first 30 losses differ by more than 1e-3, by up
# to 4.8 nats). So the first 5 losses are compared at 1e-3 (10× the drift measured there), and beyond them
# only the signature. (The rerun there still exploded at step 17, as the shipped run did, with held-out
# margin 21.3 vs 17.5, KL 196 vs 183 and 0 % grammatical samples in both.)
FIRST_STEPS_EXACT = 5
FIRST_STEPS_REL = 1e-3


@pytest.fixture(scope="module")
def study():
    return load_margin_study()


def assert_pathology_signature(history: MetricsHistory) -> None:
    """What lesson 09 says of the batch-1 run, on any machine: the explosion rule fires by step 30 with
    loss < 0.01 and accuracy 1 at that step, diagnose calls it an explosion, and the policy ends far from
    the reference (KL > 50 nats) with no grammatical samples."""
    step = first_explosion_step(history, by_step=EXPLOSION_BY_STEP)
    assert step is not None, "the batch-1 run did not pass the explosion rule by step 30"
    assert history.at("loss", step) < 0.01 and history.at("rewards/accuracies", step) == 1.0
    assert diagnose(history).label == "margin_explosion"
    assert history.last("eval/grammatical") < 0.1 and history.last("eval/kl") > 50


def test_the_pathology_signature_holds_for_the_shipped_run_and_fails_for_the_fixes(study):
    runs = {name: MetricsHistory.from_dict(v["history"]) for name, v in study["variants"].items()}
    assert_pathology_signature(runs[PATHOLOGY_NAME])
    for name in ("smaller step: lr 3e-4", DEFAULT_NAME, "batch 32", "conservative DPO (ε 0.1)"):
        with pytest.raises(AssertionError):
            assert_pathology_signature(runs[name])


def test_the_batch_1_run_explodes_by_step_30(study):
    v = study["variants"][PATHOLOGY_NAME]
    h = MetricsHistory.from_dict(v["history"])
    step = v["first_explosion_step"]
    assert step is not None and step <= 30
    # the lesson's signature at that step: the one rule (margin > 50) implies loss < 0.01 and accuracy 1 here
    assert h.at("logratio/margin", step) > EXPLOSION_THRESHOLD
    assert h.at("loss", step) < 0.01 and h.at("rewards/accuracies", step) == 1.0
    assert h.last("eval/grammatical") < 0.1  # samples degenerate


def test_the_study_follows_the_one_explosion_rule(study):
    assert study["explosion_rule"] == explosion_rule()
    for name, v in study["variants"].items():
        h = MetricsHistory.from_dict(v["history"])
        assert v["first_explosion_step"] == first_explosion_step(h, by_step=EXPLOSION_BY_STEP), name
        if v["first_explosion_step"] is not None:
            assert diagnose(h).label == "margin_explosion", name


def test_the_fixed_configuration_keeps_held_out_margin_healthy_and_samples_grammatical(study):
    h = MetricsHistory.from_dict(study["variants"][DEFAULT_NAME]["history"])
    assert 1.0 < h.last("eval/margin") < 10.0
    assert h.last("eval/grammatical") >= 0.75
    assert study["variants"][DEFAULT_NAME]["first_explosion_step"] is None


def test_every_variant_changes_exactly_what_its_name_says(study):
    assert set(study["variants"]) == set(FIX_VARIANTS)
    for name, changes in FIX_VARIANTS.items():
        assert study["variants"][name]["changes"] == changes


def test_dpo_is_above_preferred_ft_beyond_half_a_nat_for_two_or_more_betas():
    verdicts = betas_above_baseline(load_frontier(), kl_min=0.5)
    assert sum(verdicts.values()) >= 2, verdicts
    assert verdicts == {0.1: True, 0.3: True, 1.0: True, 2.0: False}  # what lesson 09 says of the shipped frontier


@pytest.mark.slow
def test_the_shipped_pathology_run_is_what_the_code_produces(study):
    shipped = MetricsHistory.from_dict(study["variants"][PATHOLOGY_NAME]["history"])
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # as `python -m rlhf_core.experiments` made the study
    try:
        rerun = run_variant({})
    finally:
        torch.set_num_threads(threads)
    # on any machine: the first steps agree (before float reordering has been amplified) ...
    first = rerun.values("loss")[:FIRST_STEPS_EXACT]
    assert first == pytest.approx(shipped.values("loss")[:FIRST_STEPS_EXACT], rel=FIRST_STEPS_REL, abs=1e-6)
    # ... and the run has the pathology's signature, as lesson 09 describes it
    assert_pathology_signature(rerun)
    if same_machine(study.get("machine")):  # the machine that made the study: the same numbers, bit for bit
        assert rerun.rows == shipped.rows


def test_the_pathology_is_what_the_lesson_says():
    assert PATHOLOGY.batch_size == 1 and PATHOLOGY.beta == 0.1 and PATHOLOGY.lr == 1e-2


def test_an_unknown_machine_is_never_the_same_machine():
    from rlhf_core.checkpoint import machine_fingerprint

    here = machine_fingerprint()
    assert same_machine(here)
    assert not same_machine(None) and not same_machine("unknown") and not same_machine({})
    assert not same_machine({**here, "cpu_capability": "elsewhere"})
    assert all(isinstance(v, str) and v for v in here.values())
