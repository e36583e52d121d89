"""The drill's clock: its four blocks and their budgets, when each began, and the status line a cell prints.

:class:`DrillClock` is the part of :class:`rlhf_core.course.drill.Drill` that only keeps time; the drill adds
the paper, the checks and the scorecard.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["BLOCKS", "OPTIONAL_BLOCKS", "DrillClock", "format_minutes"]

BLOCKS: tuple[tuple[str, int], ...] = (("read", 15), ("explain", 5), ("implement", 30), ("sanity-check", 10))
#: The optional fifth block: a run's curves, what went wrong and what to change first (:mod:`rlhf_core.course.diagnosis_round`).
OPTIONAL_BLOCKS: tuple[tuple[str, int], ...] = (("diagnose", 10),)


def format_minutes(seconds: float) -> str:
    """``754.2`` → ``'12:34'``."""
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60:d}:{seconds % 60:02d}"


@dataclass
class DrillClock:
    """When the drill started and when each block began; a block lasts until the next one begins."""

    started: float = field(default_factory=time.time)
    block_starts: dict[str, float] = field(default_factory=dict)
    clock: Callable[[], float] = field(default=time.time, repr=False)

    def elapsed(self) -> float:
        return self.clock() - self.started

    def current_block(self) -> tuple[str, int] | None:
        begun = [(t, name) for name, t in self.block_starts.items()]
        if not begun:
            return None
        name = max(begun)[1]
        return name, dict(BLOCKS + OPTIONAL_BLOCKS)[name]

    def status_line(self) -> str:
        """``clock 12:34 elapsed of 60:00 · implement: 3:10 of 30:00``: plain text, no glyph a font may lack."""
        line = f"clock {format_minutes(self.elapsed())} elapsed of 60:00"
        block = self.current_block()
        if block:
            name, budget = block
            spent = self.clock() - self.block_starts[name]
            over = " — over budget, move on" if spent > budget * 60 else ""
            line += f" · {name}: {format_minutes(spent)} of {budget}:00{over}"
        return line

    def start_block(self, block: str) -> None:
        """Mark the start of ``block`` (once: a re-run cell keeps the first time) and print the clock."""
        if block not in dict(BLOCKS + OPTIONAL_BLOCKS):
            raise ValueError(f"unknown block {block!r}; the blocks are {[b for b, _ in BLOCKS + OPTIONAL_BLOCKS]}")
        self.block_starts.setdefault(block, self.clock())
        print(self.status_line())

    def block_times(self) -> list[tuple[str, int, float | None]]:
        """``(block, budget minutes, seconds spent or None)``; a block lasts until the next one begins."""
        starts = sorted((t, name) for name, t in self.block_starts.items())
        spent: dict[str, float] = {}
        for i, (t, name) in enumerate(starts):
            end = starts[i + 1][0] if i + 1 < len(starts) else self.clock()
            spent[name] = end - t
        return [(name, budget, spent.get(name)) for name, budget in BLOCKS] + [
            (name, budget, spent[name]) for name, budget in OPTIONAL_BLOCKS if name in spent]
