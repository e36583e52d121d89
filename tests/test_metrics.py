"""MetricsHistory: rows in, series out, JSON round trip."""

import math

from rlhf_core.metrics import EVAL_METRICS, TRAIN_METRICS, MetricsHistory


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
