"""What a DPO run logs, and how to read it back: the metric names, the history, the series a diagnosis reads.

Names follow the convention of the common DPO trainers, so that what a learner sees here reads the
same as a real run's logs:

=====================  ===========================================================================
``loss``               the mean DPO loss of the batch
``rewards/chosen``     mean implicit reward of the chosen responses, β·(log π(y_w|x) − log π_ref(y_w|x))
``rewards/rejected``   the same for the rejected responses
``rewards/accuracies`` fraction of pairs whose chosen reward is strictly above the rejected reward
``rewards/margins``    mean of ``rewards/chosen − rewards/rejected`` (β-scaled)
``logps/chosen``       mean summed log-prob of the chosen responses under the policy
``logps/rejected``     the same for the rejected responses
``logratio/margin``    the *unscaled* margin, ``rewards/margins / β`` (the write-up's "reward margin"): a
                       log-ratio difference on the two fixed responses of each pair, *not* a KL
``nll/chosen``         only with ``rpo_alpha`` > 0: the chosen responses' mean per-token NLL (RPO's term)
``eval/…``             held-out metrics: ``eval/kl`` (sequence KL to the reference, nats, estimated from
                       the policy's own samples: what shows drift),
                       ``eval/reward`` and ``eval/reward_std`` (ground-truth reward of sampled, not
                       greedy, generations), ``eval/grammatical`` (fraction), ``eval/margin`` and
                       ``eval/accuracy`` (unscaled margin and accuracy on held-out pairs)
=====================  ===========================================================================

A history is a list of rows ``{"step": int, name: float, ...}``; training rows and evaluation rows
may carry different names. It round-trips through JSON.

The training metrics are computed by :func:`dpo_metrics` from the four ``(B,)`` log-prob tensors
named as in ``rlhf_core.losses.dpo_loss``: ``logp_pol_chosen``, ``logp_pol_rejected`` (the policy) and
``logp_ref_chosen``, ``logp_ref_rejected`` (the frozen reference); :class:`UpdateSizeMonitor` records,
beside them, how far each optimizer step moved the weights. :func:`as_history` reads a history in any
form a learner may hold it; :func:`unscaled_margin`, :func:`finite_series`, :func:`infer_beta` and
:func:`quarter_means` are the readings :mod:`rlhf_core.diagnostics` and :mod:`rlhf_core.plots` share.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import losses

__all__ = ["TRAIN_METRICS", "EVAL_METRICS", "MetricsHistory", "dpo_metrics", "UpdateSizeMonitor", "as_history",
           "DEFAULT_BETA", "finite_series", "infer_beta", "unscaled_margin", "quarter_means"]

TRAIN_METRICS = (
    "loss",
    "rewards/chosen",
    "rewards/rejected",
    "rewards/accuracies",
    "rewards/margins",
    "logps/chosen",
    "logps/rejected",
    "logratio/margin",
)
EVAL_METRICS = (
    "eval/kl",
    "eval/reward",
    "eval/reward_std",
    "eval/grammatical",
    "eval/margin",
    "eval/accuracy",
)


@dataclass
class MetricsHistory:
    """Rows of logged metrics, one row per logging call (several names per row)."""

    rows: list[dict] = field(default_factory=list)

    def log(self, step: int, **metrics: float) -> None:
        """Append one row; ``log(10, loss=0.5)`` or ``log(10, **{"rewards/margins": 1.2})``."""
        row = {"step": int(step)}
        for name, value in metrics.items():
            row[name] = float(value)
        self.rows.append(row)

    def series(self, name: str) -> tuple[list[int], list[float]]:
        """``(steps, values)`` of every row that carries ``name``, in logging order."""
        steps = [r["step"] for r in self.rows if name in r]
        values = [r[name] for r in self.rows if name in r]
        return steps, values

    def values(self, name: str) -> list[float]:
        return self.series(name)[1]

    def last(self, name: str, default: float = math.nan) -> float:
        vals = self.values(name)
        return vals[-1] if vals else default

    def at(self, name: str, step: int, default: float = math.nan) -> float:
        """The value logged at ``step`` (the last such row), or ``default``."""
        for r in reversed(self.rows):
            if r["step"] == step and name in r:
                return r[name]
        return default

    def names(self) -> list[str]:
        seen: dict[str, None] = {}
        for r in self.rows:
            for k in r:
                if k != "step":
                    seen.setdefault(k, None)
        return list(seen)

    def __len__(self) -> int:
        return len(self.rows)

    def to_dict(self) -> dict:
        return {"rows": self.rows}

    @classmethod
    def from_dict(cls, data: dict) -> MetricsHistory:
        return cls(rows=[dict(r) for r in data["rows"]])

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict()))

    @classmethod
    def load(cls, path: str | Path) -> MetricsHistory:
        return cls.from_dict(json.loads(Path(path).read_text()))


@torch.no_grad()
def dpo_metrics(logp_pol_chosen: torch.Tensor, logp_pol_rejected: torch.Tensor, logp_ref_chosen: torch.Tensor,
                logp_ref_rejected: torch.Tensor, beta: float) -> dict[str, float]:
    """The conventional metrics of a batch from the four ``(B,)`` log-prob tensors (the names above)."""
    reward_chosen = losses.implicit_reward(logp_pol_chosen, logp_ref_chosen, beta)  # (B,)
    reward_rejected = losses.implicit_reward(logp_pol_rejected, logp_ref_rejected, beta)  # (B,)
    margins = reward_chosen - reward_rejected  # (B,)
    return {
        "rewards/chosen": reward_chosen.mean().item(),
        "rewards/rejected": reward_rejected.mean().item(),
        "rewards/accuracies": (reward_chosen > reward_rejected).float().mean().item(),
        "rewards/margins": margins.mean().item(),
        "logps/chosen": logp_pol_chosen.mean().item(),
        "logps/rejected": logp_pol_rejected.mean().item(),
        "logratio/margin": (margins / beta).mean().item(),
    }


class UpdateSizeMonitor:
    """How far each optimizer step moved the weights, relative to that step's learning rate.

    An ``on_log`` callback for :func:`rlhf_core.train.train_dpo` (pass the same ``optimizer`` to both):
    after every training step it records ``|Δθ| / η`` over all trainable weights — its median and its mean —
    where ``η`` is the learning rate the step used (the schedule's, read off the optimizer). With
    Adam a ratio near 1 means full-size steps; the ratio falls when a weight's recent gradients are
    small next to the ones its second-moment average still remembers, or keep changing sign.
    Evaluation rows (no ``"loss"``) are skipped: the weights do not move there.
    """

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                 on_log: Callable[[int, dict], None] | None = None):
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = optimizer
        self.on_log = on_log
        self._last = self._flat()  # (P,): every trainable weight, as after the last step seen
        self.steps: list[int] = []
        self.median_ratio: list[float] = []
        self.mean_ratio: list[float] = []

    def _flat(self) -> torch.Tensor:
        return torch.cat([p.detach().reshape(-1) for p in self.params]).cpu()  # (P,), a copy

    def __call__(self, step: int, metrics: dict) -> None:
        if "loss" in metrics:
            lr = self.optimizer.param_groups[0]["lr"]
            now = self._flat()
            moved = (now - self._last).abs_().numpy()  # (P,)
            self._last = now
            middle = (moved.size - 1) // 2  # the lower median, as torch.median: a partition, not a sort
            self.steps.append(int(step))
            self.median_ratio.append(float(np.partition(moved, middle)[middle]) / lr)
            self.mean_ratio.append(float(moved.mean()) / lr)
        if self.on_log is not None:
            self.on_log(step, metrics)


# ------------------------------------------------------------------------------------------------
# reading a history in any of the forms a learner may hold it


def _to_float(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _clean_rows(rows: Sequence[Mapping]) -> list[dict]:
    clean = []
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise TypeError(f"history row {i} is a {type(row).__name__}, not a dict")
        step = row.get("step", i)
        out = {"step": int(step)}
        for key, value in row.items():
            if key == "step":
                continue
            number = _to_float(value)
            if number is not None:
                out[str(key)] = number
        clean.append(out)
    return clean


def as_history(history) -> MetricsHistory:
    """Turn any accepted history form into a :class:`MetricsHistory`.

    Accepted: a ``MetricsHistory`` (or anything with a ``rows`` list), a list of row dicts, a dict
    ``{"rows": [...]}``, a column dict ``{"step": [...], "loss": [...], ...}`` and a single row
    dict. Rows without a ``"step"`` get their index as step; values that are not numbers (or 0-d
    tensors) are dropped. ``None`` gives an empty history.
    """
    if history is None:
        return MetricsHistory()
    if isinstance(history, MetricsHistory):
        return history
    rows = getattr(history, "rows", None)
    if rows is not None and not isinstance(history, Mapping):
        return MetricsHistory(rows=_clean_rows(list(rows)))
    if isinstance(history, Mapping):
        if "rows" in history:
            return MetricsHistory(rows=_clean_rows(list(history["rows"])))
        columns = {k: v for k, v in history.items() if _is_sequence(v)}
        if columns and len(columns) == len(history):
            length = max(len(v) for v in columns.values())
            steps = list(columns.get("step", range(length)))
            rows = []
            for i in range(length):
                row = {"step": steps[i] if i < len(steps) else i}
                for key, values in columns.items():
                    if key != "step" and i < len(values):
                        row[key] = values[i]
                rows.append(row)
            return MetricsHistory(rows=_clean_rows(rows))
        return MetricsHistory(rows=_clean_rows([history]))
    if _is_sequence(history):
        return MetricsHistory(rows=_clean_rows(list(history)))
    raise TypeError(
        "expected a MetricsHistory, a list of row dicts or {'rows': [...]}, "
        f"got {type(history).__name__}"
    )


def _is_sequence(value) -> bool:
    """A list, tuple, 1-D array or tensor (not a string, a dict or a 0-d array/tensor)."""
    if isinstance(value, (str, bytes, Mapping)):
        return False
    if isinstance(value, (list, tuple)):
        return True
    ndim = getattr(value, "ndim", None)
    if ndim is not None:
        return ndim >= 1
    return hasattr(value, "__len__") and hasattr(value, "__getitem__")


# ------------------------------------------------------------------------------------------------
# the series a diagnosis reads (margins and log-ratios in nats, *unscaled*: not multiplied by β)

DEFAULT_BETA = 0.1  # only used when β cannot be read off the history


def finite_series(h: MetricsHistory, name: str) -> tuple[list[int], list[float]]:
    """``(steps, values)`` of ``name``, as :meth:`MetricsHistory.series`, without the NaN and inf values."""
    steps, values = h.series(name)
    pairs = [(s, v) for s, v in zip(steps, values) if math.isfinite(v)]
    return [s for s, _ in pairs], [v for _, v in pairs]


def infer_beta(h: MetricsHistory, beta: float | None) -> tuple[float, str]:
    """β and how it was found: ``beta`` when given, else read off the history (the median of
    ``rewards/margins ÷ logratio/margin``), else :data:`DEFAULT_BETA`."""
    if beta is not None:
        return float(beta), f"β={beta:g} (given)"
    ratios = []
    for row in h.rows:
        scaled, unscaled = row.get("rewards/margins"), row.get("logratio/margin")
        if scaled is None or unscaled is None:
            continue
        if math.isfinite(scaled) and math.isfinite(unscaled) and abs(unscaled) > 1e-8:
            ratios.append(scaled / unscaled)
    if ratios:
        b = float(np.median(ratios))
        if b > 0:
            return b, f"β={b:.3g} (read from rewards/margins ÷ logratio/margin)"
    return DEFAULT_BETA, f"β={DEFAULT_BETA:g} (assumed)"


def unscaled_margin(h: MetricsHistory, beta: float | None = None) -> tuple[list[int], list[float], str]:
    """The training unscaled margin series, ``(steps, values, where it came from)``.

    Row by row: ``logratio/margin`` where logged, else ``rewards/margins`` ÷ β, else
    ``(rewards/chosen − rewards/rejected)`` ÷ β (β from :func:`infer_beta`). Non-finite values are left out.
    """
    b, how = infer_beta(h, beta)
    steps, values, sources = [], [], set()
    for row in h.rows:
        if "logratio/margin" in row:
            value, source = row["logratio/margin"], "logratio/margin"
        elif "rewards/margins" in row:
            value, source = row["rewards/margins"] / b, f"rewards/margins ÷ {how}"
        elif "rewards/chosen" in row and "rewards/rejected" in row:
            value = (row["rewards/chosen"] - row["rewards/rejected"]) / b
            source = f"(rewards/chosen − rewards/rejected) ÷ {how}"
        else:
            continue
        if math.isfinite(value):
            steps.append(int(row["step"]))
            values.append(value)
            sources.add(source)
    if steps:
        return steps, values, " and ".join(sorted(sources))
    return [], [], ""


def quarter_means(values: Sequence[float]) -> tuple[float, float]:
    """Means of the first and the last quarter of ``values`` (at least one value each)."""
    n = len(values)
    w = max(1, n // 4)
    return float(np.mean(values[:w])), float(np.mean(values[-w:]))
