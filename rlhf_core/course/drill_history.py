"""Progress over attempts: where the drill history lives, appending an attempt, reading, showing and dropping them.

An attempt is one JSON line in ``history.jsonl`` and its rendered card as ``attempt-<id>.md`` (the id is the UTC
time it was saved), in :func:`history_dir` (``~/.rlhf_course/drill`` unless ``RLHF_DRILL_HISTORY`` or a ``path``
says otherwise; nothing leaves the machine). :func:`drill_history` reads it back: a table of attempts (minutes per
block, sanity checks and stronger checks green, red flags, variant) — an HTML table in a notebook, plain text in a
terminal — and, with ``plot=True``, a figure. ``drill_history(drop=N)`` (or :func:`drop_attempt`) removes attempt
``N`` of that table, or the attempt with that id.

Only *real* attempts count when the drill draws the next paper (:func:`is_real_attempt`): the scorecard saves one
only when something was written (:attr:`rlhf_core.course.scorecard.Scorecard.evidence`) unless the learner forces
it. A history written before attempts were told apart may hold an untouched Run All: a line with every check red,
nothing graded, no red flag and a total under :data:`JUNK_SECONDS`. It is recognised, shown as not counted, and
skipped when the next paper is drawn; ``drill_history(drop=N)`` removes it for good.
"""

from __future__ import annotations

import html
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from .drill_clock import BLOCKS, OPTIONAL_BLOCKS, format_minutes
from .variants import DEFAULT_VARIANT

__all__ = ["HISTORY_ENV", "JUNK_SECONDS", "history_dir", "append_attempt", "read_history", "drill_history",
           "drop_attempt", "is_real_attempt", "attempt_id", "HistoryTable"]

HISTORY_ENV = "RLHF_DRILL_HISTORY"
_HISTORY_FILE = "history.jsonl"
#: An old record (no ``real`` field) under this many seconds, with nothing green, graded or flagged, is an untouched
#: Run All, not an attempt: a 60-minute drill is not done in five minutes.
JUNK_SECONDS = 300


def history_dir(path: str | os.PathLike | None = None) -> Path:
    """Where the drill history lives: ``path`` if given, else ``$RLHF_DRILL_HISTORY``, else ``~/.rlhf_course/drill``."""
    return Path(path or os.environ.get(HISTORY_ENV) or Path.home() / ".rlhf_course" / "drill").expanduser()


def _stamp(saved_at: str) -> str:
    """``2026-12-06T06:34:59+00:00`` → ``20261206T063459Z``."""
    return saved_at.replace(":", "").replace("-", "").replace("+0000", "Z")


def attempt_id(record: dict) -> str:
    """The id of a saved attempt (its card is ``attempt-<id>.md``): the UTC time it was saved, ``-2`` … when two
    were saved in one second; a record saved before ids existed gets the time alone."""
    return str(record.get("id") or _stamp(str(record.get("saved_at", ""))))


def is_real_attempt(record: dict) -> bool:
    """Whether a saved attempt counts as one when the next paper is drawn: its ``real`` field where it has one (the
    scorecard's :attr:`~rlhf_core.course.scorecard.Scorecard.is_attempt` when it was saved); for an older record,
    anything but an untouched Run All (under :data:`JUNK_SECONDS`, no check or sanity check passed, no rubric item
    graded, no red flag, no diagnosis)."""
    if "real" in record:
        return bool(record["real"])
    total = record.get("total_seconds")
    if total is None or total >= JUNK_SECONDS:
        return True
    passed = any((record.get("checks") or {}).values()) or any(
        s.get("passed") for s in record.get("sanity") or [] if s.get("applies", True))
    graded = any(v is not None for v in (record.get("rubric") or {}).values())
    return bool(passed or graded or record.get("red_flags") or record.get("diagnosis"))


def append_attempt(record: dict, text: str, path: str | os.PathLike | None = None) -> Path | None:
    """Append ``record`` (a JSON-able attempt) to ``history.jsonl`` in :func:`history_dir` and write ``text`` (the
    rendered card) as ``attempt-<id>.md`` beside it; the record gets its ``id``. Returns the directory, or ``None``
    (with a one-line explanation) when it cannot be written."""
    where = history_dir(path)
    try:
        where.mkdir(parents=True, exist_ok=True)
        stamp = _stamp(record["saved_at"])
        ident, n = stamp, 1
        while (where / f"attempt-{ident}.md").exists():   # two saves in one second
            n += 1
            ident = f"{stamp}-{n}"
        record["id"] = ident
        with open(where / _HISTORY_FILE, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    except OSError as exc:   # a read-only home (a sandbox, a locked-down lab machine): say so, lose nothing else
        print(f"Could not save this attempt to {where} ({type(exc).__name__}: {exc.strerror or exc}); "
              f"pass card.save(path) with a folder you can write to, or set {HISTORY_ENV}.")
        return None
    name = f"attempt-{ident}.md"
    (where / name).write_text(f"# Drill attempt, {record['saved_at']} (variant {record['variant']})\n\n"
                              f"```\n{text}\n```\n", encoding="utf-8")
    print(f"Saved this attempt to {where / _HISTORY_FILE} (and {name}); drill_history() shows all of them.")
    return where


def _read(where: Path) -> tuple[list[tuple[int, dict]], list[str]]:
    """``([(line index, record)], problems)`` of the history in ``where``."""
    entries, problems = [], []
    file = where / _HISTORY_FILE
    if not file.exists():
        return entries, problems
    for index, line in enumerate(file.read_text(encoding="utf-8").splitlines()):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or "blocks" not in record or "sanity" not in record:
                raise ValueError("it is not a saved scorecard")
            record.setdefault("variant", DEFAULT_VARIANT)
            entries.append((index, record))
        except (ValueError, TypeError) as exc:
            problems.append(f"line {index + 1} of {file} was skipped: it could not be read ({exc}).")
    return entries, problems


def read_history(where: Path) -> tuple[list[dict], list[str]]:
    """``(records, problems)`` of the history in ``where``: each readable attempt (one saved before there were
    variants gets :data:`~rlhf_core.course.variants.DEFAULT_VARIANT`, the paper it was on), and a line for each
    line that could not be read."""
    entries, problems = _read(where)
    return [record for _, record in entries], problems


def drop_attempt(which: int | str, path: str | os.PathLike | None = None) -> dict | None:
    """Remove one attempt from the history: ``which`` is its number in :func:`drill_history`'s table (1 = the
    oldest) or its id (:func:`attempt_id`, also the name of its card ``attempt-<id>.md``, which goes too).
    Returns the record removed, or None with a sentence saying why nothing was."""
    where = history_dir(path)
    entries, _ = _read(where)
    if isinstance(which, int) and not isinstance(which, bool):
        if not 1 <= which <= len(entries):
            print(f"There is no attempt {which} to drop: the history in {where} has {len(entries)} "
                  f"(numbered 1 to {len(entries)} in drill_history()'s table).")
            return None
        number, (index, record) = which, entries[which - 1]
    else:
        found = [(n, e) for n, e in enumerate(entries, 1) if attempt_id(e[1]) == str(which)]
        if not found:
            print(f"There is no attempt with id {which!r} in {where}: drill_history() shows each attempt's number; "
                  "drill_history(drop=NUMBER) drops one.")
            return None
        number, (index, record) = found[0]
    file = where / _HISTORY_FILE
    lines = file.read_text(encoding="utf-8").splitlines(keepends=True)
    del lines[index]
    partial = file.with_name(f".{file.name}.partial")
    partial.write_text("".join(lines), encoding="utf-8")
    partial.replace(file)
    card = where / f"attempt-{attempt_id(record)}.md"
    if card.exists():
        card.unlink()
    print(f"Dropped attempt {number} (saved {_saved(record)}, {record['variant']}) from {file}.")
    return record


def _saved(record: dict) -> str:
    return str(record.get("saved_at", ""))[:19].replace("T", " ")


def _block_names(records: list[dict]) -> list[str]:
    return [name for name, _ in BLOCKS] + [name for name, _ in OPTIONAL_BLOCKS
                                           if any((r.get("blocks") or {}).get(name) is not None for r in records)]


@dataclass
class HistoryTable:
    """The table :func:`drill_history` shows: an HTML table in a notebook (``_repr_html_``), plain text in a
    terminal (``str``). Each row is one saved attempt, numbered as :func:`drop_attempt` counts them."""

    records: list[dict]
    where: Path
    problems: list[str] = field(default_factory=list)

    def header(self) -> list[str]:
        return (["#", "saved (UTC)", "variant", "total"] + _block_names(self.records)
                + ["sanity", "checks", "counts", "red flags"])

    def rows(self) -> list[list[str]]:
        """One list of cell texts per attempt, in :meth:`header`'s order."""
        names, rows = _block_names(self.records), []
        for i, r in enumerate(self.records, 1):
            blocks = r.get("blocks") or {}
            applying = [s for s in r.get("sanity") or [] if s.get("applies", True)]
            checks = r.get("checks") or {}
            rows.append([str(i), _saved(r), r["variant"], format_minutes(r.get("total_seconds", 0))]
                        + ["—" if blocks.get(n) is None else format_minutes(blocks[n]) for n in names]
                        + [f"{sum(bool(s.get('passed')) for s in applying)}/{len(applying)}",
                           f"{sum(bool(v) for v in checks.values())}/{len(checks)}" if checks else "—",
                           "yes" if is_real_attempt(r) else "no",
                           "; ".join(r.get("red_flags") or []) or "none"])
        return rows

    def notes(self) -> list[str]:
        """The sentences under the table: lines that could not be read, attempts that do not count, what was done."""
        notes = list(self.problems)
        if not self.records:
            notes.append(f"No saved attempts in {self.where} yet: finish a drill and run card.save().")
            return notes
        junk = [i for i, r in enumerate(self.records, 1) if not is_real_attempt(r)]
        if junk:
            which = ", ".join(map(str, junk))
            notes.append(f"Attempt{'s' if len(junk) > 1 else ''} {which}: nothing was written (a Run All of the "
                         f"untouched lesson?), so {'they do' if len(junk) > 1 else 'it does'} not count when the next "
                         f"paper is drawn; drill_history(drop={junk[0]}) removes one for good.")
        done = sorted({r["variant"] for r in self.records if is_real_attempt(r)})
        notes.append(f"variants done: {', '.join(done) or 'none yet'}. drill_history(drop=N) removes attempt N.")
        return notes

    def __str__(self) -> str:
        if not self.records:
            return "\n".join(self.notes())
        header, rows = self.header(), self.rows()
        widths = [max(len(h), 2, *(len(row[k]) for row in rows)) for k, h in enumerate(header)]

        def line(cells: list[str]) -> str:   # text columns left, numbers right, the red flags last and unpadded
            left = {1, 2, len(header) - 2}
            return "  ".join((c.ljust(w) if k in left else c.rjust(w)) for k, (c, w) in enumerate(zip(cells[:-1], widths))) \
                + "  " + cells[-1]
        return "\n".join([line(header), *map(line, rows), "", *self.notes()])

    def _repr_pretty_(self, p, cycle) -> None:   # IPython in a terminal
        p.text(str(self))

    def _repr_html_(self) -> str:
        notes = "".join(f"<p>{html.escape(n)}</p>" for n in self.notes())
        if not self.records:
            return f"<div class='rlhf-drill-history'>{notes}</div>"
        def cells(tag: str, row: list[str]) -> str:   # the header and the time of saving never wrap
            style = lambda k: _HEAD if tag == "th" else _CELL + " white-space: nowrap;" if k == 1 else _CELL
            return "".join(f"<{tag} style='{style(k)}'>{html.escape(c)}</{tag}>" for k, c in enumerate(row))

        body = "".join(f"<tr{'' if row[-2] == 'yes' else _GREY}>{cells('td', row)}</tr>" for row in self.rows())
        return (f"<div class='rlhf-drill-history'><table style='{_TABLE}'><thead><tr>{cells('th', self.header())}</tr>"
                f"</thead><tbody>{body}</tbody></table>{notes}</div>")


_TABLE = "border-collapse: collapse; margin: 0.3em 0;"
_CELL = "text-align: left; padding: 2px 10px 2px 0; white-space: normal; vertical-align: top;"
_HEAD = "text-align: left; padding: 2px 10px 2px 0; white-space: nowrap; vertical-align: bottom;"
_GREY = " style='color: #777;'"


def show(obj) -> None:
    """Display ``obj`` (a :class:`HistoryTable` or a scorecard) in a notebook, rich; print its text elsewhere."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # pragma: no cover - IPython ships with Jupyter
        print(str(obj))
        return
    if get_ipython() is None:
        print(str(obj))
    else:
        display(obj)


def drill_history(path: str | os.PathLike | None = None, plot: bool = True, print_it: bool = True,
                  drop: int | str | None = None) -> list[dict]:
    """Every saved attempt, oldest first: shows a table (minutes per block, sanity checks and stronger checks green,
    red flags, variant, whether it counts as an attempt) — HTML in a notebook, text elsewhere — and, with
    ``plot=True`` and at least one attempt, draws :func:`rlhf_core.plots.plot_drill_history`. ``drop``: an attempt's
    number in the table, or its id, to remove first (:func:`drop_attempt`). Lines of the history that cannot be
    read are skipped with a note. Returns the records."""
    where = history_dir(path)
    if drop is not None:
        drop_attempt(drop, where)
    records, problems = read_history(where)
    if print_it:
        show(HistoryTable(records, where, problems))
    if plot and records:
        from ..plots import plot_drill_history

        plot_drill_history(records, BLOCKS)
    return records
