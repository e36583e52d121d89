"""Progress over attempts: where the drill history lives, appending an attempt, reading and showing them all.

An attempt is one JSON line in ``history.jsonl`` and its rendered card as ``attempt-<UTC time>.md``, in
:func:`history_dir` (``~/.rlhf_course/drill`` unless ``RLHF_DRILL_HISTORY`` or a ``path`` says otherwise; nothing
leaves the machine). :func:`drill_history` reads it back: a table of attempts (minutes per block, sanity checks and
stronger checks green, red flags, variant) and, with ``plot=True``, a figure.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .drill_clock import BLOCKS, OPTIONAL_BLOCKS, format_minutes
from .variants import DEFAULT_VARIANT

__all__ = ["HISTORY_ENV", "history_dir", "append_attempt", "read_history", "drill_history"]

HISTORY_ENV = "RLHF_DRILL_HISTORY"
_HISTORY_FILE = "history.jsonl"


def history_dir(path: str | os.PathLike | None = None) -> Path:
    """Where the drill history lives: ``path`` if given, else ``$RLHF_DRILL_HISTORY``, else ``~/.rlhf_course/drill``."""
    return Path(path or os.environ.get(HISTORY_ENV) or Path.home() / ".rlhf_course" / "drill").expanduser()


def append_attempt(record: dict, text: str, path: str | os.PathLike | None = None) -> Path | None:
    """Append ``record`` (a JSON-able attempt) to ``history.jsonl`` in :func:`history_dir` and write ``text`` (the
    rendered card) as ``attempt-<UTC time>.md`` beside it. Returns the directory, or ``None`` (with a one-line
    explanation) when it cannot be written."""
    where = history_dir(path)
    try:
        where.mkdir(parents=True, exist_ok=True)
        with open(where / _HISTORY_FILE, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    except OSError as exc:   # a read-only home (a sandbox, a locked-down lab machine): say so, lose nothing else
        print(f"Could not save this attempt to {where} ({type(exc).__name__}: {exc.strerror or exc}); "
              f"pass card.save(path) with a folder you can write to, or set {HISTORY_ENV}.")
        return None
    stamp = record["saved_at"].replace(":", "").replace("-", "").replace("+0000", "Z")
    name, n = f"attempt-{stamp}.md", 1
    while (where / name).exists():   # two saves in one second
        n += 1
        name = f"attempt-{stamp}-{n}.md"
    (where / name).write_text(f"# Drill attempt, {record['saved_at']} (variant {record['variant']})\n\n"
                              f"```\n{text}\n```\n", encoding="utf-8")
    print(f"Saved this attempt to {where / _HISTORY_FILE} (and {name}); drill_history() shows all of them.")
    return where


def read_history(where: Path) -> tuple[list[dict], list[str]]:
    """``(records, problems)`` of the history in ``where``: each readable attempt (one saved before there were
    variants gets :data:`~rlhf_core.course.variants.DEFAULT_VARIANT`, the paper it was on), and a line for each
    line that could not be read."""
    records, problems = [], []
    file = where / _HISTORY_FILE
    if not file.exists():
        return records, problems
    for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or "blocks" not in record or "sanity" not in record:
                raise ValueError("it is not a saved scorecard")
            record.setdefault("variant", DEFAULT_VARIANT)
            records.append(record)
        except (ValueError, TypeError) as exc:
            problems.append(f"line {number} of {file} was skipped: it could not be read ({exc}).")
    return records, problems


def _print_table(records: list[dict]) -> None:
    names = [name for name, _ in BLOCKS] + [name for name, _ in OPTIONAL_BLOCKS
                                            if any(r["blocks"].get(name) is not None for r in records)]
    print(f"{'#':>2}  {'saved (UTC)':<20}{'variant':<9}{'total':>6}  " + "".join(f"{n:>13}" for n in names)
          + f"{'sanity':>8}{'checks':>8}  red flags")
    for i, r in enumerate(records, 1):
        blocks = "".join(f"{'—' if r['blocks'].get(n) is None else format_minutes(r['blocks'][n]):>13}" for n in names)
        applying = [s for s in r["sanity"] if s.get("applies", True)]
        sanity = f"{sum(s['passed'] for s in applying)}/{len(applying)}"
        checks = f"{sum(r['checks'].values())}/{len(r['checks'])}" if r.get("checks") else "—"
        flags = "; ".join(r.get("red_flags") or []) or "none"
        print(f"{i:>2}  {r['saved_at'][:19].replace('T', ' '):<20}{r['variant']:<9}"
              f"{format_minutes(r.get('total_seconds', 0)):>6}  {blocks}{sanity:>8}{checks:>8}  {flags}")
    print(f"\nvariants done: {', '.join(sorted({r['variant'] for r in records}))}")


def drill_history(path: str | os.PathLike | None = None, plot: bool = True, print_it: bool = True) -> list[dict]:
    """Every saved attempt, oldest first: prints a table (minutes per block, sanity checks and stronger
    checks green, red flags, variant) and, with ``plot=True`` and at least one attempt, draws
    :func:`rlhf_core.plots.plot_drill_history`. Lines of the history that cannot be read are skipped
    with a note. Returns the records."""
    where = history_dir(path)
    records, problems = read_history(where)
    if print_it:
        for problem in problems:
            print(problem)
        if not records:
            print(f"No saved attempts in {where} yet: finish a drill and run card.save().")
        else:
            _print_table(records)
    if plot and records:
        from ..plots import plot_drill_history

        plot_drill_history(records, BLOCKS)
    return records
