"""``python -m grader report OUT``: what a class got wrong, read from an autograde run's results.

Written at the end of every ``autograde`` run too. Reads ``OUT/results/<student>/<notebook>.json`` (the
same files ``grades.csv`` and the gradebook are rebuilt from, :func:`grader.results.read_results`) and
writes two files:

* ``OUT/report.html`` — one self-contained page (no script, no external resource; the histograms are
  PNGs embedded as data) for the instructor: per lesson, how many notebooks ended in each status
  (graded, timeout, memory, tampering, …), the score distribution, the median and the slowest run
  time; per check cell, its pass rate and every way it failed — each registered mistake the judges
  matched, with how many students made it and their share of those whose notebook reached the
  check, then the failures that match none of the known mistakes, counted apart with their most
  frequent messages grouped (:func:`group_key`), then the other kinds (untouched stubs, exceptions, tampering, …). No student is named
  in these counts; the similarity section (:mod:`grader.similarity`, when the submissions are at hand)
  names the pairs. Every piece of text that came from a submission is HTML-escaped.
* ``OUT/mistakes.csv`` — instructor-only: one row per lesson, check and way of failing (``kind``,
  ``mistake`` id, ``description``, ``students``, ``share``, and the students' names, ``;``-separated).

Counting never re-reads the verdicts' prose: each failed cell's result records its ``kind``
(:data:`grader.judge.FAILURE_KINDS`) and, for a registered mistake, its stable id
(``<exercise>/<Mistake.id>``, or ``<sanity probe>/sanity-N``); the description shown is the mistake's
hint from the course's registry. A result from before ids were recorded counts as ``unrecorded``.

A check's share is over the notebooks of that lesson whose result has the check (every notebook
that was run: a timeout's later checks count as ``not run``); notebooks that could not be read or
were not handed in appear in the status counts only.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from .result import NotebookResult
from .results import atomic_write, read_results

__all__ = ["CheckSummary", "LessonSummary", "summarise", "class_report", "render_report", "mistakes_rows",
           "MISTAKES_FIELDS", "group_key"]

MISTAKES_FIELDS = ["lesson", "check", "kind", "mistake", "description", "students", "share", "names"]
UNNAMED_GROUPS = 5     # the most frequent unnamed messages shown per check

_KIND_TEXT = {
    "not implemented": "left as the released stub (raises NotImplementedError)",
    "raised": "the function raised an exception on valid inputs",
    "malformed": "the check's record could not be read",
    "not run": "the notebook stopped before this check",
    "no result": "the check cell was interrupted or its output suppressed",
    "tampering": "tampering with the checks was detected",
    "not defined": "the function was not defined when the check ran",
    "borrowed": "the library's own function was handed in",
    "withheld": "the submission reached for the lesson's withheld reference",
    "crashed": "the grader's probe crashed on the submission",
    "exercise cell not found": "the exercise's cell was not found in the submission (its nbgrader metadata lost and "
                               "no cell defining the function)",
    "unrecorded": "failed (graded before mistake ids were recorded)",
}


def group_key(message: str) -> str:
    """The group of an unnamed failure: its message, whitespace aside. The same wrong formula reads the same
    for every student, as each check's public case (seed 0, the same for all) is judged before the hidden,
    per-student ones; a formula wrong only on hidden inputs is a group of its own per student. (Blanking the
    numbers instead would merge different wrong formulas that fail on the same case.)"""
    return " ".join(str(message).split())


@dataclass
class CheckSummary:
    """One check cell across the class: who reached it, who passed, and every way it failed."""

    grade_id: str
    reached: list[str] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)
    mistakes: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))   # id → students
    unnamed: dict[str, list[tuple[str, str]]] = field(default_factory=lambda: defaultdict(list))  # group → (student, message)
    other: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))       # kind → students

    @property
    def pass_rate(self) -> float | None:
        return len(self.passed) / len(self.reached) if self.reached else None


@dataclass
class LessonSummary:
    name: str
    max_score: float
    scores: list[float] = field(default_factory=list)        # one per notebook of the lesson (every status)
    statuses: Counter = field(default_factory=Counter)
    seconds: list[float] = field(default_factory=list)
    checks: dict[str, CheckSummary] = field(default_factory=dict)

    @property
    def notebooks(self) -> int:
        return sum(self.statuses.values())


def summarise(results: list[NotebookResult], lessons: dict) -> dict[str, LessonSummary]:
    """Per lesson (of ``lessons``, in course order), everything the report shows."""
    summaries = {name: LessonSummary(name, lesson.max_score,
                                     checks={c.grade_id: CheckSummary(c.grade_id) for c in lesson.spec})
                 for name, lesson in lessons.items()}
    for result in sorted(results, key=lambda r: (r.notebook, r.student)):
        lesson = summaries.get(result.notebook)
        if lesson is None:
            continue
        student = result.student
        lesson.statuses[str(result.status)] += 1
        lesson.scores.append(result.score)
        if result.seconds is not None:
            lesson.seconds.append(float(result.seconds))
        for cell in result.cells:
            check = lesson.checks.get(cell.grade_id)
            if check is None:
                continue
            check.reached.append(student)
            if cell.passed:
                check.passed.append(student)
                continue
            kind, mistake = cell.kind, cell.mistake
            if kind == "mistake" and mistake:
                check.mistakes[str(mistake)].append(student)
            elif kind == "unnamed":
                check.unnamed[group_key(cell.message)].append((student, cell.message))
            else:
                check.other[str(kind) if kind else "unrecorded"].append(student)
    return {name: s for name, s in summaries.items() if s.notebooks}


def describe(mistake: str) -> str:
    """What a mistake id means, in the course's words: the registered mistake's hint (or the sanity check's property)."""
    from rlhf_core.checks import EXERCISES, SANITY_CHECKS

    exercise, _, key = mistake.partition("/")
    if key.startswith("sanity-") and key[len("sanity-"):].isdigit():
        number = int(key[len("sanity-"):])
        names = {n: name for n, name, _ in SANITY_CHECKS}
        return f"sanity check {number} fails: {names.get(number, '?')} does not hold"
    for m in getattr(EXERCISES.get(exercise), "mistakes", []):
        if m.id == key:
            return m.hint
    return f"{mistake} (no longer registered in this version of the course)"


def mistakes_rows(summaries: dict[str, LessonSummary]) -> list[dict]:
    """The rows of ``mistakes.csv``: every way every check failed, most frequent first within a check."""
    def row(lesson, check, kind, mistake, description, students):
        distinct, n = sorted(set(students)), len(check.reached) or 1
        return {"lesson": lesson.name, "check": check.grade_id, "kind": kind, "mistake": mistake,
                "description": description, "students": len(distinct), "share": f"{len(distinct) / n:.3f}",
                "names": ";".join(distinct)}

    rows = []
    for lesson in summaries.values():
        for check in lesson.checks.values():
            named = [row(lesson, check, "mistake", m, describe(m), s) for m, s in check.mistakes.items()]
            unnamed = [row(lesson, check, "unnamed", "", pairs[0][1], [s for s, _ in pairs]) for pairs in check.unnamed.values()]
            other = [row(lesson, check, k, "", _KIND_TEXT.get(k, k), s) for k, s in check.other.items()]
            for group in (named, unnamed, other):
                rows += sorted(group, key=lambda r: (-r["students"], r["mistake"], r["description"]))
    return rows


def _histogram(lesson: LessonSummary) -> str:
    """The lesson's score distribution as an embedded PNG (an ``<img>``), readable at its shown size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    top = max(lesson.max_score, max(lesson.scores, default=0.0))
    edges = np.arange(0, np.floor(top) + 2) - 0.5   # one bar per whole point: 0, 1, …, max
    fig, ax = plt.subplots(figsize=(4.2, 2.6), dpi=100)
    counts, _, _ = ax.hist(lesson.scores, bins=edges, color="#4c72b0", edgecolor="white")
    ax.set_xlabel(f"score (out of {lesson.max_score:g})", fontsize=10)
    ax.set_ylabel("notebooks", fontsize=10)
    ax.set_xticks(np.arange(0, np.floor(top) + 1))
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.tick_params(labelsize=9)
    ax.set_title(f"Scores, {lesson.notebooks} notebooks", fontsize=11)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    alt = ", ".join(f"{int(c)} at {i}" for i, c in enumerate(counts) if c)
    return f"<img class='hist' alt='score histogram: {html.escape(alt)}' src='data:image/png;base64,{data}'>"


_CSS = """body{font-family:system-ui,sans-serif;margin:1.5em;max-width:110em;line-height:1.4}
table{border-collapse:collapse;margin:.5em 0 1em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums}.lesson{display:flex;gap:2em;flex-wrap:wrap;align-items:flex-start}
.bar{display:inline-block;height:.8em;background:#4c72b0;vertical-align:middle;margin-right:.4em}
.kind{color:#555;font-size:90%}h2{margin-top:2em;border-bottom:1px solid #ddd}q{font-family:monospace;font-size:90%}"""


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.0f}%"


def _seconds(values: list[float]) -> tuple[str, str]:
    return (f"{statistics.median(values):.1f} s", f"{max(values):.1f} s") if values else ("–", "–")


def _lesson_html(lesson: LessonSummary) -> str:
    e = html.escape
    median, worst = _seconds(lesson.seconds)
    mean = statistics.fmean(lesson.scores) if lesson.scores else 0.0
    statuses = "".join(f"<tr><td>{e(s)}</td><td class='n' data-status='{e(s)}'>{n}</td></tr>"
                       for s, n in sorted(lesson.statuses.items(), key=lambda kv: (-kv[1], kv[0])))
    parts = [f"<h2 id='{e(lesson.name)}'>{e(lesson.name)}</h2><div class='lesson' data-lesson='{e(lesson.name)}'>",
             _histogram(lesson),
             f"<div><table><tr><th>status</th><th>notebooks</th></tr>{statuses}</table>"
             f"<p>Mean score <b class='mean'>{mean:.2f}</b> of {lesson.max_score:g}; run time median "
             f"<b>{median}</b>, slowest <b>{worst}</b>.</p></div></div>"]
    for check in lesson.checks.values():
        n = len(check.reached)
        parts.append(f"<h3>{e(check.grade_id)}: passed by <span class='passed'>{len(check.passed)}</span> of "
                     f"<span class='reached'>{n}</span> ({_pct(check.pass_rate)})</h3>")
        if n == len(check.passed):
            continue
        rows = []
        for mistake, students in sorted(check.mistakes.items(), key=lambda kv: (-len(set(kv[1])), kv[0])):
            k = len(set(students))
            rows.append(f"<tr data-mistake='{e(mistake)}'><td><span class='bar' style='width:{6 * k / max(n, 1):.2f}em'></span></td>"
                        f"<td class='n count'>{k}</td><td class='n'>{_pct(k / n)}</td><td>{e(describe(mistake))}"
                        f"<br><span class='kind'>{e(mistake)}</span></td></tr>")
        unnamed = sorted(check.unnamed.values(), key=lambda pairs: -len(pairs))
        total_unnamed = len({s for pairs in unnamed for s, _ in pairs})
        if unnamed:
            groups = "".join(f"<li>{len(pairs)}× <q>{e(pairs[0][1])}</q></li>" for pairs in unnamed[:UNNAMED_GROUPS])
            more = f"<li>… and {len(unnamed) - UNNAMED_GROUPS} other messages</li>" if len(unnamed) > UNNAMED_GROUPS else ""
            rows.append(f"<tr data-kind='unnamed'><td><span class='bar' style='width:{6 * total_unnamed / max(n, 1):.2f}em'></span></td>"
                        f"<td class='n count'>{total_unnamed}</td><td class='n'>{_pct(total_unnamed / n)}</td>"
                        f"<td>matches none of the common mistakes; the most frequent messages:<ul>{groups}{more}</ul></td></tr>")
        for kind, students in sorted(check.other.items(), key=lambda kv: (-len(set(kv[1])), kv[0])):
            k = len(set(students))
            rows.append(f"<tr data-kind='{e(kind)}'><td><span class='bar' style='width:{6 * k / max(n, 1):.2f}em'></span></td>"
                        f"<td class='n count'>{k}</td><td class='n'>{_pct(k / n)}</td><td>{e(_KIND_TEXT.get(kind, kind))}</td></tr>")
        parts.append("<table><tr><th></th><th>students</th><th>share</th><th>what went wrong</th></tr>" + "".join(rows) + "</table>")
    return "".join(parts)


def render_report(summaries: dict[str, LessonSummary], similarity_section: str | None = None,
                  note: str = "") -> str:
    """The whole page. ``similarity_section`` is :func:`grader.similarity.section`'s HTML (already escaped)."""
    from .similarity import CSS as SIMILARITY_CSS

    e = html.escape
    total = sum(s.notebooks for s in summaries.values())
    contents = " · ".join(f"<a href='#{e(name)}'>{e(name[:2])}</a>" for name in summaries)
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>Class report</title>",
             f"<style>{_CSS}{SIMILARITY_CSS}</style></head><body><h1>Class report</h1>",
             f"<p>{total} notebooks{e(note)}. Lessons: {contents}"
             + (" · <a href='#similarity'>similarity</a>" if similarity_section is not None else "") + ". "
             "Shares are of the notebooks that reached the check. Which students made each mistake is in "
             "<code>mistakes.csv</code>, for the instructor only.</p>"]
    parts += [_lesson_html(s) for s in summaries.values()]
    if similarity_section is not None:
        parts.append(f"<h2 id='similarity'>Similarity of exercise cells</h2>{similarity_section}")
    parts.append("</body></html>")
    return "".join(parts)


def _write_mistakes_csv(rows: list[dict], path: Path) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=MISTAKES_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(path, buffer.getvalue())


def class_report(out: Path, *, submissions: Path | None = None, lessons: dict | None = None, log=print) -> int:
    """Write ``OUT/report.html`` and ``OUT/mistakes.csv`` from ``OUT/results``; 0, or 2 when OUT has no results.

    ``submissions`` (default: the folder the autograde run recorded in ``OUT/run.json``) adds the
    similarity section; without it, or when it is gone, the report says so and leaves it out."""
    from .course import load_lessons

    out = Path(out)
    results = read_results(out)
    if not results:
        log(f"error: no results in {out / 'results'}: run `python -m grader autograde SUBMISSIONS --out {out}` first")
        return 2
    lessons = lessons if lessons is not None else load_lessons()
    summaries = summarise(results, lessons)
    if submissions is None:
        try:
            submissions = Path(json.loads((out / "run.json").read_text())["submissions"])
        except (OSError, ValueError, KeyError, TypeError):
            submissions = None
    section = None
    if submissions is not None and Path(submissions).is_dir():
        from .similarity import section as similarity_section
        from .similarity import similarity

        report = similarity(Path(submissions), out / "similarity", log=lambda *_: None)
        section = similarity_section(report) if not isinstance(report, int) else None
    else:
        log("note: the submissions folder is not at hand, so the report has no similarity section "
            "(give it with --submissions)")
    students = len({r.student for r in results})
    atomic_write(out / "report.html", render_report(summaries, section, note=f" from {students} students"))
    _write_mistakes_csv(mistakes_rows(summaries), out / "mistakes.csv")
    log(f"wrote {out / 'report.html'} and {out / 'mistakes.csv'}")
    return 0
