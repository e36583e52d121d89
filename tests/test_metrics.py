"""MetricsHistory: rows in, series out, JSON round trip; the series a diagnosis reads."""

import math

import pytest

from rlhf_core.metrics import (
    DEFAULT_BETA,
    EVAL_METRICS,
    TRAIN_METRICS,
    MetricsHistory,
    finite_series,
    infer_beta,
    quarter_means,
    unscaled_margin,
)


def test_series_last_and_at():
    h = MetricsHistory()
    h.log(0, loss=0.69, **{"eval/kl": 0.0})
    h.log(1, loss=0.5)
    h.log(2, loss=0.3, **{"eval/kl": 1.5})
    assert h.series("loss") == ([0, 1, 2], [0.69, 0.5, 0.3])
    assert h.series("eval/kl") == ([0, 2], [0.0, 1.5])
    assert h.last("loss") == 0.3 and math.isnan(h.last("missing"))
    assert h.at("eval/kl", 2) == 1.5 and math.isnan(h.at("eval/kl", 1))
    assert h.names() == ["loss", "eval/kl"] and len(h) == 3


def test_json_round_trip(tmp_path):
    h = MetricsHistory()
    h.log(5, **{name: i / 10 for i, name in enumerate(TRAIN_METRICS + EVAL_METRICS)})
    h.save(tmp_path / "h.json")
    assert MetricsHistory.load(tmp_path / "h.json").rows == h.rows
    assert MetricsHistory.from_dict(h.to_dict()).rows == h.rows


def test_values_are_stored_as_floats():
    import torch

    h = MetricsHistory()
    h.log(1, loss=torch.tensor(0.25))
    assert isinstance(h.rows[0]["loss"], float)


def test_unscaled_margin_falls_back_row_by_row_and_says_where_it_came_from():
    h = MetricsHistory()
    h.log(0, **{"logratio/margin": 2.0, "rewards/margins": 0.4})                      # β = 0.2, read off this row
    h.log(1, **{"rewards/margins": 1.0})                                              # ÷ β
    h.log(2, **{"rewards/chosen": 0.6, "rewards/rejected": -0.2})                    # (chosen − rejected) ÷ β
    h.log(3, **{"logratio/margin": float("nan")})                                     # left out
    steps, values, source = unscaled_margin(h)
    assert steps == [0, 1, 2] and values == pytest.approx([2.0, 5.0, 4.0])
    assert "logratio/margin" in source and "rewards/margins ÷ β=0.2" in source and "rewards/chosen" in source
    assert infer_beta(h, None) == (pytest.approx(0.2), "β=0.2 (read from rewards/margins ÷ logratio/margin)")
    assert infer_beta(MetricsHistory(), None)[0] == DEFAULT_BETA and infer_beta(h, 0.5)[0] == 0.5


def test_finite_series_and_quarter_means():
    h = MetricsHistory()
    for step, value in enumerate([1.0, float("inf"), 3.0, float("nan"), 5.0]):
        h.log(step, loss=value)
    assert finite_series(h, "loss") == ([0, 2, 4], [1.0, 3.0, 5.0])
    assert quarter_means([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]) == (1.5, 7.5)
    assert quarter_means([4.0]) == (4.0, 4.0)
