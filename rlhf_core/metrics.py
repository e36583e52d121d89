"""A metrics history: what a training loop logs, and what diagnostics and plots read.

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

The training metrics are computed (``rlhf_core.train.dpo_metrics``) from the four ``(B,)`` log-prob
tensors named as in ``rlhf_core.losses.dpo_loss``: ``logp_pol_chosen``, ``logp_pol_rejected`` (the
policy) and ``logp_ref_chosen``, ``logp_ref_rejected`` (the frozen reference).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

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


def first_step_where(history, name: str, predicate: Callable[[float], bool]) -> int | None:
    """The first logged step whose ``name`` value satisfies ``predicate``, or ``None``.

    >>> first_step_where(history, "rewards/accuracies", lambda a: a >= 0.99)
    """
    h = as_history(history)
    for step, value in zip(*h.series(name)):
        if predicate(value):
            return int(step)
    return None
