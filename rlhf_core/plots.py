"""Figures for DPO runs: training curves, loss vs margin, probability shifts, frontiers, drill attempts.

Every function builds a new figure with ``plt.subplots`` and returns the
:class:`matplotlib.figure.Figure`; none calls ``plt.show()`` or closes anything, so the caller
decides whether to show, save (``fig.savefig("run.png")``) or close (``plt.close(fig)``) it.
The module does not choose a matplotlib backend; scripts and tests without a display should call
``matplotlib.use("Agg")`` before importing pyplot.

Histories can be a :class:`~rlhf_core.metrics.MetricsHistory`, a list of row dicts or
``{"rows": [...]}``. Margins are shown *unscaled* (log-ratio margins in nats, ``logratio/margin``),
with the healthy band of about 1–10 shaded where it helps.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from .diagnostics import HEALTHY_MARGIN_BAND, LOG2
from .evaluation import FrontierPoint, pareto_frontier
from .metrics import as_history, unscaled_margin

__all__ = [
    "DEFAULT_CURVES",
    "METRIC_LABELS",
    "plot_frontier",
    "plot_loss_and_margin",
    "plot_probability_bars",
    "plot_training_curves",
    "plot_drill_history",
]

DEFAULT_CURVES = (
    "loss",
    "rewards/accuracies",
    "logratio/margin",
    "rewards/chosen",
    "rewards/rejected",
    "eval/kl",
    "eval/reward",
)

# name -> (what it is, y-axis label with units)
METRIC_LABELS: dict[str, tuple[str, str]] = {
    "loss": ("DPO loss", "loss (nats)"),
    "rewards/chosen": ("Implicit reward, chosen", "β · log-ratio (nats)"),
    "rewards/rejected": ("Implicit reward, rejected", "β · log-ratio (nats)"),
    "rewards/accuracies": ("Train preference accuracy", "fraction of pairs"),
    "rewards/margins": ("Reward margin (β-scaled)", "β · margin (nats)"),
    "logps/chosen": ("Log-prob of chosen", "summed log-prob (nats)"),
    "logps/rejected": ("Log-prob of rejected", "summed log-prob (nats)"),
    "logratio/margin": ("Unscaled reward margin", "log-ratio margin (nats)"),
    "eval/kl": ("Held-out KL(π‖π_ref)", "sequence KL (nats)"),
    "eval/reward": ("Ground-truth reward of samples", "mean reward"),
    "eval/reward_std": ("Spread of sample reward", "reward std"),
    "eval/grammatical": ("Grammatical samples", "fraction of samples"),
    "eval/margin": ("Held-out unscaled margin", "log-ratio margin (nats)"),
    "eval/accuracy": ("Held-out preference accuracy", "fraction of pairs"),
}

_MARGIN_NAMES = ("logratio/margin", "eval/margin")
_FRACTION_NAMES = ("rewards/accuracies", "eval/accuracy", "eval/grammatical")


def _describe(name: str) -> tuple[str, str]:
    return METRIC_LABELS.get(name, (name, name))


def _colors() -> list[str]:
    return plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0", "C1", "C2", "C3"])


def _plottable(values: Sequence[float]) -> np.ndarray:
    """Floats with inf turned into NaN, so that a diverged run draws as a gap, not a spike."""
    arr = np.asarray(values, dtype=float)
    return np.where(np.isfinite(arr), arr, np.nan)


def _marker(n: int) -> str | None:
    return "o" if n <= 20 else None


#: The widest figure, in inches: at matplotlib's 100 dpi it fits JupyterLab's output area in a laptop's window
#: (about 950 px at 1400 px wide), which would otherwise shrink the figure and its text with it.
MAX_WIDTH = 9.4


def _grid(n: int, ncols: int = 3, panel: tuple[float, float] = (4.0, 3.0)):
    """A figure with exactly ``n`` axes laid out on a grid (surplus cells removed), at most
    :data:`MAX_WIDTH` wide (panels narrowed to fit)."""
    ncols = max(1, min(ncols, n))
    nrows = max(1, math.ceil(n / ncols))
    width = min(panel[0] * ncols, MAX_WIDTH)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(width, panel[1] * nrows), squeeze=False, layout="constrained"
    )
    flat = list(axes.ravel())
    for ax in flat[n:]:
        fig.delaxes(ax)
    return fig, flat[:n]


def _empty(fig: Figure, ax, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def _to_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor
        x = x.detach().cpu().float().numpy()
    return np.asarray(x, dtype=float)


# ------------------------------------------------------------------------------------------------
# training curves
# ------------------------------------------------------------------------------------------------


def plot_training_curves(history, names: Sequence[str] = DEFAULT_CURVES, title: str | None = None,
                         smooth: int = 0) -> Figure:
    """A grid of small panels, one per metric of ``names`` that the history holds.

    ``smooth`` > 1 draws each step's value faint and, over it, the running mean of the last ``smooth``
    steps (a batch-1 run's curves are mostly noise; the mean shows their trend).

    Names the history does not carry are skipped. The loss panel has a dashed line at log 2 (the
    loss when policy == reference); the unscaled-margin panels shade the healthy band 1–10; the
    ``eval/reward`` panel shades ± ``eval/reward_std`` when it was logged. Each panel's title says
    in words what the metric is (:data:`METRIC_LABELS`), its y label the unit and, in brackets, the
    name it is logged under, so a reader can find it in TRL's logs.
    """
    h = as_history(history)
    present = [n for n in dict.fromkeys(names) if h.series(n)[0]]
    fig, axes = _grid(max(1, len(present)))
    fig.suptitle(title or "DPO training curves")
    if not present:
        _empty(fig, axes[0], "none of the requested metrics was logged")
        return fig
    for ax, name in zip(axes, present):
        what, unit = _describe(name)
        steps, values = h.series(name)
        if smooth > 1:
            raw = _plottable(values)
            windows = [raw[max(0, i + 1 - smooth):i + 1] for i in range(len(raw))]
            mean = [np.nanmean(w) if np.isfinite(w).any() else np.nan for w in windows]
            lines = ax.plot(steps, raw, color="C0", alpha=0.3, lw=0.8) + ax.plot(steps, mean, color="C0", lw=2)
        else:
            ax.plot(steps, _plottable(values), marker=_marker(len(steps)), markersize=3)
        if name == "loss":
            ax.axhline(LOG2, ls="--", color="0.5", lw=1, label="log 2 (policy = reference)")
            ax.legend(fontsize=9, loc="best")
        if name in _MARGIN_NAMES:
            ax.axhspan(*HEALTHY_MARGIN_BAND, color="tab:green", alpha=0.12, lw=0)
        if name in _FRACTION_NAMES:
            ax.set_ylim(-0.05, 1.05)
        if name == "eval/reward":
            s_steps, s_vals = h.series("eval/reward_std")
            std = dict(zip(s_steps, s_vals))
            if steps and all(s in std for s in steps):
                mean = _plottable(values)
                spread = _plottable([std[s] for s in steps])
                ax.fill_between(steps, mean - spread, mean + spread, alpha=0.2, lw=0)
        ax.set_title(what, fontsize=11)
        ax.set_xlabel("step")
        ax.set_ylabel(f"{unit}\n[{name}]", fontsize=9)
        ax.grid(alpha=0.3)
    if smooth > 1:
        fig.legend(lines, ["each step", f"mean of the last {smooth} steps"], loc="outside lower center", ncol=2,
                   fontsize=9)
    return fig


def plot_loss_and_margin(history, title: str | None = None) -> Figure:
    """Loss (left axis) and unscaled margin (right axis) against step, on twin axes.

    The picture that gives a margin explosion away: the loss flattens at 0 while the margin keeps
    climbing far out of the shaded healthy band (1–10 nats). A dashed line marks log 2 on the
    loss axis. Always two axes (``fig.axes[0]`` loss, ``fig.axes[1]`` margin), even when one of
    the two was not logged.
    """
    h = as_history(history)
    fig, ax = plt.subplots(figsize=(8, 5), layout="constrained")
    ax2 = ax.twinx()
    loss_color, margin_color = "tab:blue", "tab:red"
    handles = []
    l_steps, l_vals = h.series("loss")
    if l_steps:
        handles += ax.plot(l_steps, _plottable(l_vals), color=loss_color, marker=_marker(len(l_steps)), label="loss")
    handles.append(ax.axhline(LOG2, ls="--", color="0.5", lw=1, label="log 2 ≈ 0.693"))
    m_steps, m_vals = h.series("logratio/margin")  # raw, so that a diverged run shows gaps
    source = "logratio/margin"
    if not m_steps:
        m_steps, m_vals, source = unscaled_margin(h)
    band = ax2.axhspan(
        *HEALTHY_MARGIN_BAND, color="tab:green", alpha=0.12, lw=0,
        label=f"healthy margin {HEALTHY_MARGIN_BAND[0]:g}–{HEALTHY_MARGIN_BAND[1]:g}",
    )
    if m_steps:
        handles += ax2.plot(
            m_steps, _plottable(m_vals), color=margin_color, marker=_marker(len(m_steps)),
            label=f"unscaled margin ({source})",
        )
    handles.append(band)
    ax.set_xlabel("step")
    ax.set_ylabel("DPO loss (nats)", color=loss_color)
    ax2.set_ylabel("unscaled reward margin (nats)", color=margin_color)
    ax.tick_params(axis="y", colors=loss_color)
    ax2.tick_params(axis="y", colors=margin_color)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=9, frameon=False)
    ax.set_title(title or "DPO loss and unscaled reward margin")
    if not l_steps and not m_steps:
        _empty(fig, ax, "neither loss nor margin was logged")
    return fig


# ------------------------------------------------------------------------------------------------
# probabilities, margins, frontiers
# ------------------------------------------------------------------------------------------------


def _row_labels(labels, row: int, n: int) -> list[str]:
    if labels is None:
        return [str(i) for i in range(n)]
    labels = list(labels)
    if labels and not isinstance(labels[0], str) and isinstance(labels[0], Sequence):
        labels = list(labels[row])  # one list of labels per prompt row
    if len(labels) != n:
        raise ValueError(f"got {len(labels)} labels for {n} responses")
    return [str(x) for x in labels]


def _highlights(highlight, rows: int) -> list[int | None]:
    if highlight is None:
        return [None] * rows
    arr = _to_numpy(highlight) if not isinstance(highlight, (list, tuple)) else None
    if arr is not None and arr.ndim == 0:
        return [int(arr)] * rows
    items = list(arr.astype(int)) if arr is not None else list(highlight)
    if len(items) != rows:
        raise ValueError(f"got {len(items)} highlight indices for {rows} prompt rows")
    return [None if i is None else int(i) for i in items]


def plot_probability_bars(before, after, labels=None, title: str | None = None, highlight=None) -> Figure:
    """How DPO moved probability between candidate responses, before vs after, per prompt.

    ``before`` and ``after`` are probabilities of shape ``(P, N)`` (P prompts, N candidate
    responses each) or ``(N,)``, as torch tensors, numpy arrays or lists. One panel per prompt
    row, with grouped bars (before, after) per response and a dotted line at the uniform 1/N.
    ``labels``: N response names, or one list of N per row. ``highlight``: an index per row (or
    one int for all rows; ``None`` entries allowed) whose bars get a thick black edge, e.g. the
    top-ranked response.
    """
    b, a = _to_numpy(before), _to_numpy(after)
    if b.ndim == 1:
        b = b[None, :]
    if a.ndim == 1:
        a = a[None, :]
    if b.ndim != 2 or b.shape != a.shape:
        raise ValueError(f"before and after must have the same shape (P, N) or (N,); got {b.shape} and {a.shape}")
    rows, n = b.shape
    marks = _highlights(highlight, rows)
    fig, axes = _grid(rows, ncols=min(rows, 3), panel=(max(4.0, 0.6 * n + 1.5), 3.2))
    fig.suptitle(title or "Response probabilities before and after DPO")
    x = np.arange(n)
    width = 0.4
    for row, ax in enumerate(axes):
        names = _row_labels(labels, row, n)
        bars_b = ax.bar(x - width / 2, b[row], width, label="before", color="0.65")
        bars_a = ax.bar(x + width / 2, a[row], width, label="after", color="tab:blue")
        ax.axhline(1.0 / n, ls=":", color="0.3", lw=1, label=f"uniform 1/{n}")
        mark = marks[row]
        if mark is not None:
            if not 0 <= mark < n:
                raise ValueError(f"highlight index {mark} out of range for {n} responses")
            for bars in (bars_b, bars_a):
                bars[mark].set_edgecolor("black")
                bars[mark].set_linewidth(2.0)
        long_names = max(len(s) for s in names) > 6
        ax.set_xticks(x)
        ax.set_xticklabels(names, rotation=30 if long_names else 0, ha="right" if long_names else "center", fontsize=9)
        if mark is not None:
            ax.get_xticklabels()[mark].set_fontweight("bold")
        top = float(np.nanmax(np.concatenate([b[row], a[row], [1.0 / n]])))
        ax.set_ylim(0, top * 1.15 if top > 0 else 1.0)
        ax.set_title(f"prompt {row}" if rows > 1 else "responses", fontsize=10)
        ax.set_xlabel("response")
        ax.set_ylabel("probability")
        ax.grid(axis="y", alpha=0.3)
        if row == 0:  # plain swatches, so a highlighted first bar does not restyle the legend
            ax.legend(
                handles=[Patch(color="0.65", label="before"), Patch(color="tab:blue", label="after"),
                         *ax.get_lines()],
                fontsize=9,
            )
    return fig


def plot_frontier(points: Sequence[FrontierPoint], title: str | None = None,
                  param_names: Mapping[str, str] | None = None) -> Figure:
    """Reward vs KL: the points of each run, and a Pareto-frontier line per method label.

    x is the sequence KL(π‖π_ref) in nats, y the mean ground-truth reward of samples. Each method
    (``label``) has one colour family and each of its runs (``param``: β for DPO, a learning rate
    for Preferred-FT) one shade and marker, named in the legend outside the axes as
    ``"{label}, {param name} {param}"`` (``param_names`` maps a label to the name of its parameter;
    ``"param"`` by default) — no text labels on the points, which overlap where runs crowd together.
    One scatter collection per run and one frontier line per label. Upper-left is better: more
    reward for less KL.
    """
    fig, ax = plt.subplots(figsize=(8, 4.8), layout="constrained")
    names = dict(param_names or {})
    groups: dict[str, dict[float, list[FrontierPoint]]] = {}
    for p in points:
        groups.setdefault(p.label, {}).setdefault(p.param, []).append(p)
    families = ("Blues", "Oranges", "Greens", "Purples", "Reds", "Greys")
    markers = ("o", "s", "^", "D", "v", "P", "X", "*")
    for (label, runs), family, base in zip(groups.items(), families * 10, _colors() * 10):
        cmap = plt.get_cmap(family)
        for i, (param, pts) in enumerate(sorted(runs.items())):
            shade = cmap(0.45 + 0.5 * i / max(1, len(runs) - 1)) if len(runs) > 1 else base
            ax.scatter([p.kl for p in pts], [p.reward for p in pts], color=shade, marker=markers[i % len(markers)],
                       s=36, alpha=0.85, edgecolors="white", linewidths=0.5,
                       label=f"{label}, {names.get(label, 'param')} {param:g}")
        front = pareto_frontier([p for pts in runs.values() for p in pts])
        ax.plot([p.kl for p in front], [p.reward for p in front], color=cmap(0.85), lw=1.8,
                marker="o" if len(front) == 1 else None, label=f"{label} frontier", zorder=0)
    ax.set_title(title or "Reward vs KL frontier")
    ax.set_xlabel("KL(π‖π_ref) per sequence (nats)")
    ax.set_ylabel("mean ground-truth reward")
    ax.grid(alpha=0.3)
    if groups:
        ax.legend(fontsize=9, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    else:
        _empty(fig, ax, "no points to plot")
    return fig


# ------------------------------------------------------------------------------------------------
# the drill's progress over attempts
# ------------------------------------------------------------------------------------------------


def plot_drill_history(records: Sequence[Mapping], blocks: Sequence[tuple[str, int]] | None = None) -> Figure:
    """Attempts of the 60-minute drill (:func:`rlhf_core.course.drill.drill_history`'s records), oldest first.

    Left: minutes per block, stacked, one bar per attempt, with the 60-minute budget dashed
    (``blocks``: ``(name, budget minutes)`` in order, :data:`rlhf_core.course.drill.BLOCKS`; by default the
    block names of the first record, without budgets). Right: the sanity checks and the stronger
    checks that passed, and the number of red flags, per attempt. Each attempt's x tick names its variant.
    """
    if blocks is None:
        blocks = [(name, None) for name in (records[0].get("blocks") or {})] if records else []
    fig, (left, right) = plt.subplots(1, 2, figsize=(MAX_WIDTH, 4.2), layout="constrained")
    x = np.arange(1, len(records) + 1)
    bottom = np.zeros(len(records))
    for (name, budget), color in zip(blocks, _colors() * 3):
        minutes = np.array([(r.get("blocks", {}).get(name) or 0.0) / 60 for r in records])
        left.bar(x, minutes, bottom=bottom, color=color, label=name if budget is None else f"{name} (budget {budget} min)")
        bottom += minutes
    left.axhline(60, ls="--", color="0.4", lw=1, label="60-minute budget")
    left.set(title="Time per block", xlabel="attempt", ylabel="minutes")
    left.legend(fontsize=9, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    # a step a variant does not have (SimPO, ORPO: no reference to freeze) counts neither way
    sanity = [sum(bool(s.get("passed")) for s in r.get("sanity", []) if s.get("applies", True)) for r in records]
    checks = [sum(bool(v) for v in (r.get("checks") or {}).values()) for r in records]
    flags = [len(r.get("red_flags") or []) for r in records]
    right.plot(x, sanity, marker="o", label="sanity checks passed (of those that apply)")
    right.plot(x, checks, marker="s", label="stronger checks passed")
    right.plot(x, flags, marker="^", color="tab:red", label="red flags")
    right.set(title="Checks and red flags", xlabel="attempt", ylabel="count", ylim=(-0.3, 6.5))
    right.legend(fontsize=9, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    labels = [f"{i}\n{r.get('variant', 'dpo')}" for i, r in zip(x, records)]
    for ax in (left, right):
        ax.set_xticks(x, labels)
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle("Your drill attempts")
    return fig
