"""Tests for rlhf_core.plots: every function returns a Figure with the expected artists."""

from __future__ import annotations

import inspect
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.container import BarContainer  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from rlhf_core import plots  # noqa: E402
from rlhf_core.diagnostics import LOG2  # noqa: E402
from rlhf_core.evaluation import FrontierPoint, pareto_frontier  # noqa: E402
from rlhf_core.metrics import MetricsHistory  # noqa: E402
from rlhf_core.plots import (  # noqa: E402
    plot_frontier,
    plot_loss_and_margin,
    plot_probability_bars,
    plot_training_curves,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _no_show_and_cleanup(monkeypatch):
    def _forbidden(*args, **kwargs):
        raise AssertionError("plots must not call plt.show()")

    monkeypatch.setattr(plt, "show", _forbidden)
    yield
    plt.close("all")


def full_history(n: int = 21, beta: float = 0.1) -> MetricsHistory:
    h = MetricsHistory()
    for i in range(n):
        s = 10 * i
        m = 6.0 * (1 - math.exp(-s / 60))
        h.log(
            s,
            loss=math.log1p(math.exp(-beta * m)),
            **{
                "rewards/chosen": beta * 0.2 * m,
                "rewards/rejected": -beta * 0.8 * m,
                "rewards/accuracies": min(0.9, 0.15 * m),
                "rewards/margins": beta * m,
                "logratio/margin": m,
            },
        )
        if s % 50 == 0:
            h.log(s, **{"eval/kl": 0.3 * m, "eval/reward": 0.1 * m, "eval/reward_std": 0.05, "eval/margin": 0.8 * m})
    return h


def _lines(ax):
    return len(ax.get_lines())


def _span(patch):
    """(low, high) data-y extent of an axhspan (a Rectangle in new matplotlib, a Polygon before)."""
    if isinstance(patch, Rectangle):
        return patch.get_y(), patch.get_y() + patch.get_height()
    ys = np.asarray(patch.get_xy())[:, 1]
    return ys.min(), ys.max()


def _saves_png(fig, path):
    fig.savefig(path)
    assert path.read_bytes()[:8] == PNG_MAGIC


# ------------------------------------------------------------------------------------------------


def test_training_curves_one_panel_per_default_metric(tmp_path):
    fig = plot_training_curves(full_history(), title="run A")
    assert isinstance(fig, Figure)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == [plots.METRIC_LABELS[name][0] for name in plots.DEFAULT_CURVES]   # in words, not log keys
    assert all(f"[{name}]" in ax.get_ylabel() for ax, name in zip(fig.axes, plots.DEFAULT_CURVES))
    assert fig._suptitle.get_text() == "run A"
    loss_ax = fig.axes[0]
    assert _lines(loss_ax) == 2  # the curve and log 2
    assert any(np.allclose(line.get_ydata(), LOG2) for line in loss_ax.get_lines())
    assert all(_lines(ax) == 1 for ax in fig.axes[1:])
    assert all(ax.get_xlabel() == "step" and ax.get_ylabel() for ax in fig.axes)
    assert "nats" in loss_ax.get_ylabel()
    _saves_png(fig, tmp_path / "curves.png")


def test_training_curves_skip_missing_names():
    h = MetricsHistory()
    for s in range(5):
        h.log(s, loss=LOG2 - 0.1 * s, **{"logratio/margin": float(s)})
    fig = plot_training_curves(h)
    assert [ax.get_title() for ax in fig.axes] == ["DPO loss", "Unscaled reward margin"]
    assert fig._suptitle.get_text()  # a default title
    fig = plot_training_curves(h.rows, names=("logratio/margin", "eval/kl", "nope"))
    assert [ax.get_title() for ax in fig.axes] == ["Unscaled reward margin"]
    assert _lines(fig.axes[0]) == 1


def test_training_curves_with_nothing_to_plot():
    fig = plot_training_curves([], title="empty")
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 1
    assert _lines(fig.axes[0]) == 0


def test_training_curves_draw_nan_as_gaps():
    rows = [{"step": s, "loss": v} for s, v in enumerate([0.7, 0.5, float("nan"), float("inf")])]
    fig = plot_training_curves({"rows": rows})
    y = fig.axes[0].get_lines()[0].get_ydata()
    assert np.isnan(y[2]) and np.isnan(y[3])


def test_loss_and_margin_twin_axes(tmp_path):
    fig = plot_loss_and_margin(full_history(), title="loss vs margin")
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2
    loss_ax, margin_ax = fig.axes
    assert loss_ax.get_title() == "loss vs margin"
    assert _lines(loss_ax) == 2 and _lines(margin_ax) == 1
    assert "nats" in loss_ax.get_ylabel() and "nats" in margin_ax.get_ylabel()
    # the shaded healthy band 1-10 lives on the margin axis
    assert _span(margin_ax.patches[0]) == pytest.approx((1.0, 10.0))
    assert max(margin_ax.get_lines()[0].get_ydata()) == pytest.approx(max(full_history().values("logratio/margin")))
    _saves_png(fig, tmp_path / "loss_margin.png")


def test_loss_and_margin_falls_back_to_scaled_margins():
    rows = [{"step": s, "loss": 0.6, "rewards/margins": 0.1 * s} for s in range(5)]
    fig = plot_loss_and_margin(rows)
    assert len(fig.axes) == 2 and fig.axes[0].get_title()
    assert _lines(fig.axes[1]) == 1
    fig = plot_loss_and_margin([{"step": 0, "loss": 0.69}, {"step": 1, "loss": 0.6}])
    assert len(fig.axes) == 2 and _lines(fig.axes[1]) == 0


@pytest.mark.parametrize("kind", ["torch", "numpy", "list"])
def test_probability_bars_2d(kind, tmp_path):
    before = np.full((3, 4), 0.25)
    after = np.array([[0.7, 0.1, 0.1, 0.1], [0.1, 0.6, 0.2, 0.1], [0.25, 0.25, 0.25, 0.25]])
    if kind == "torch":
        torch = pytest.importorskip("torch")
        before, after = torch.tensor(before, dtype=torch.float32), torch.tensor(after, requires_grad=True)
    elif kind == "list":
        before, after = before.tolist(), after.tolist()
    fig = plot_probability_bars(before, after, labels=["a", "b", "c", "d"], title="shift", highlight=[0, 1, None])
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 3
    assert fig._suptitle.get_text() == "shift"
    for ax in fig.axes:
        bars = [c for c in ax.containers if isinstance(c, BarContainer)]
        assert len(bars) == 2 and all(len(c) == 4 for c in bars)
        assert _lines(ax) == 1
        assert np.allclose(ax.get_lines()[0].get_ydata(), 0.25)
        assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c", "d"]
        assert ax.get_title() and ax.get_ylabel() == "probability"
    after_bars = fig.axes[0].containers[1]
    assert after_bars[0].get_height() == pytest.approx(0.7)
    assert after_bars[0].get_linewidth() == 2.0 and after_bars[1].get_linewidth() != 2.0
    assert fig.axes[1].containers[1][1].get_linewidth() == 2.0
    assert all(p.get_linewidth() != 2.0 for p in fig.axes[2].containers[1])
    _saves_png(fig, tmp_path / f"bars_{kind}.png")


@pytest.mark.parametrize("kind", ["torch", "numpy"])
def test_probability_bars_1d(kind):
    before, after = np.array([0.2, 0.3, 0.5]), np.array([0.6, 0.3, 0.1])
    if kind == "torch":
        torch = pytest.importorskip("torch")
        before, after = torch.from_numpy(before), torch.from_numpy(after)
    fig = plot_probability_bars(before, after, highlight=0)
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    assert len(ax.containers) == 2 and all(len(c) == 3 for c in ax.containers)
    assert np.allclose(ax.get_lines()[0].get_ydata(), 1 / 3)
    assert ax.containers[0][0].get_linewidth() == 2.0


def test_probability_bars_reject_bad_shapes():
    with pytest.raises(ValueError):
        plot_probability_bars(np.ones((2, 3)) / 3, np.ones((2, 4)) / 4)
    with pytest.raises(ValueError):
        plot_probability_bars(np.ones(3) / 3, np.ones(3) / 3, labels=["x", "y"])
    with pytest.raises(ValueError):
        plot_probability_bars(np.ones((2, 3)) / 3, np.ones((2, 3)) / 3, highlight=[0])


def test_probability_bars_per_row_labels():
    labels = [["x1", "y1"], ["x2", "y2"]]
    fig = plot_probability_bars(np.ones((2, 2)) / 2, np.array([[0.9, 0.1], [0.2, 0.8]]), labels=labels)
    assert [t.get_text() for t in fig.axes[1].get_xticklabels()] == ["x2", "y2"]


def _frontier_points():
    dpo = [FrontierPoint("DPO", b, kl, r) for b, kl, r in [(1.0, 0.5, 0.3), (0.3, 2.0, 0.7), (0.1, 4.0, 0.9), (0.05, 6.0, 0.85)]]
    sft = [FrontierPoint("preferred-FT", n, kl, r) for n, kl, r in [(100, 1.0, 0.2), (300, 3.0, 0.5), (600, 8.0, 0.6)]]
    return dpo + sft


def test_frontier_plot(tmp_path):
    pts = _frontier_points()
    fig = plot_frontier(pts, title="frontier")
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    assert ax.get_title() == "frontier"
    assert "KL" in ax.get_xlabel() and "nats" in ax.get_xlabel()
    assert "reward" in ax.get_ylabel()
    assert _lines(ax) == 2 and len(ax.collections) == 7   # one frontier per method, one scatter per run
    assert not ax.texts                                     # no labels on the points: the legend names the runs
    dpo_line = ax.get_lines()[0]
    front = pareto_frontier([p for p in pts if p.label == "DPO"])
    assert list(dpo_line.get_xdata()) == [p.kl for p in front]  # the dominated (6.0, 0.85) is not on it
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "DPO frontier" in legend and "preferred-FT frontier" in legend and "DPO, param 0.3" in legend
    named = plot_frontier(pts, param_names={"DPO": "β"}).axes[0]
    assert "DPO, β 0.05" in [t.get_text() for t in named.get_legend().get_texts()]
    _saves_png(fig, tmp_path / "frontier.png")


def test_frontier_plot_empty():
    fig = plot_frontier([])
    assert len(fig.axes) == 1 and _lines(fig.axes[0]) == 0


def test_module_does_not_pick_a_backend_or_show():
    source = inspect.getsource(plots).replace(plots.__doc__, "")
    assert "matplotlib.use(" not in source
    assert "plt.show(" not in source
    assert "plt.close(" not in source
