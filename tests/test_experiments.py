"""Lesson 09's shipped studies: the bars they must meet, and that this code produces them."""


import pytest

from rlhf_core.diagnostics import FrontierPoint
from rlhf_core.experiments import (FIX_VARIANTS, PATHOLOGY, betas_above_baseline, envelope_at, first_explosion_step,
                                   load_frontier, load_margin_study, run_variant)
from rlhf_core.metrics import MetricsHistory

PATHOLOGY_NAME, DEFAULT_NAME = list(FIX_VARIANTS)[0], list(FIX_VARIANTS)[-1]


@pytest.fixture(scope="module")
def study():
    return load_margin_study()


def test_the_batch_1_run_explodes_by_step_30(study):
    v = study["variants"][PATHOLOGY_NAME]
    h = MetricsHistory.from_dict(v["history"])
    step = v["first_explosion_step"]
    assert step is not None and step <= 30
    assert h.at("loss", step) < 0.01 and h.at("rewards/accuracies", step) == 1.0 and h.at("logratio/margin", step) > 50
    assert h.last("eval/grammatical") < 0.1  # samples degenerate


def test_the_fixed_configuration_keeps_held_out_margin_healthy_and_samples_grammatical(study):
    h = MetricsHistory.from_dict(study["variants"][DEFAULT_NAME]["history"])
    assert 1.0 < h.last("eval/margin") < 10.0
    assert h.last("eval/grammatical") >= 0.75


def test_every_variant_changes_exactly_what_its_name_says(study):
    assert set(study["variants"]) == set(FIX_VARIANTS)
    for name, changes in FIX_VARIANTS.items():
        assert study["variants"][name]["changes"] == changes


def test_dpo_is_above_preferred_ft_beyond_half_a_nat_for_two_or_more_betas():
    verdicts = betas_above_baseline(load_frontier(), kl_min=0.5)
    assert sum(verdicts.values()) >= 2, verdicts


def test_envelope_and_comparison_rules():
    base = [FrontierPoint("B", 1, 0.2, 0.1), FrontierPoint("B", 1, 0.6, 0.3)]
    assert envelope_at(base, 0.1) == float("-inf") and envelope_at(base, 0.5) == 0.1 and envelope_at(base, 9) == 0.3
    points = base + [FrontierPoint("A", 0.1, 0.7, 0.4), FrontierPoint("A", 0.1, 0.3, 0.0),  # below 0.5: ignored
                     FrontierPoint("A", 2.0, 0.8, 0.4), FrontierPoint("A", 2.0, 0.9, 0.2)]
    assert betas_above_baseline(points, method="A", baseline="B") == {0.1: True, 2.0: False}


def test_the_shipped_pathology_run_is_what_the_code_produces(study):
    shipped = MetricsHistory.from_dict(study["variants"][PATHOLOGY_NAME]["history"])
    rerun = run_variant({})
    assert rerun.values("loss")[:30] == pytest.approx(shipped.values("loss")[:30], rel=1e-3, abs=1e-4)
    assert first_explosion_step(rerun, by_step=30) == study["variants"][PATHOLOGY_NAME]["first_explosion_step"]


def test_the_pathology_is_what_the_lesson_says():
    assert PATHOLOGY.batch_size == 1 and PATHOLOGY.beta == 0.1
