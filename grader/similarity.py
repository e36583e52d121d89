"""``python -m grader similarity SUBMISSIONS [--lesson NN]``: evidence of shared code between exercise cells.

Layout in: ``SUBMISSIONS/<student>/<NN_name>.ipynb``, as for ``autograde`` (a notebook renamed but keeping
its lesson's two-digit number counts for that lesson). Out: ``OUT/similarity.csv`` (lesson, exercise,
student_a, student_b, score, shared, kind, evidence), ranked by score, and ``OUT/similarity.html``,
self-contained, every piece of submission text HTML-escaped, each row's two texts side by side with the
shared regions highlighted. The report shows evidence for the instructor to judge; it never says who
copied: two short answers to the same exercise can share code because there are few ways to write them.

**What is compared.** Per lesson and exercise, every pair of students' *exercise cells* (the nbgrader
solution cells, found by their ``grade_id`` as :mod:`grader.compose` finds them). Each cell is
fingerprinted with `copydetect <https://github.com/blingenf/copydetect>`_ (as in MOSS: k-grams of Pygments
tokens with every name replaced by ``V``/``F``/``O``, strings by ``S``, comments and whitespace dropped, so
renamed variables and re-spaced lines change nothing; reordered lines keep every k-gram inside a line).
k = :data:`NOISE_T` filtered characters, window 1 (every k-gram kept: cells are short). A *fingerprint*
below is one distinct k-gram hash.

**Expected code** (copydetect's *boilerplate*: its fingerprints are removed from every cell before
comparing; sharing it is evidence of nothing):

* the released stub of the lesson (signature, docstring, ``raise NotImplementedError``);
* the reference solution of the lesson, and the exercise's reference function in ``rlhf_core``;
* every registered known mistake of the exercise (``rlhf_core.checks``: each record's ``mistakes``, with
  the module's helpers they call): the common mistakes are common because students make them
  independently;
* MOSS's rule for idioms: a fingerprint found in at least :data:`COMMON_SHARE` of the class's cells of the
  exercise (and in at least :data:`COMMON_MIN`) is how this class writes it, not a shared source. (So a copy
  of the answer most of the class wrote is not told from writing it; a copy ring larger than a quarter of
  the class would hide itself — a class of 30 has room for a ring of 7.)

**Known mistakes** are reported as such, one row per cell, never as shared code: ``known mistake``, with
the evidence "matches the known mistake 'dpo_no_ref' of dpo_loss — a common mistake, not evidence of
copying". Decided by *text*: the cell's function body, normalised (``ast.unparse``: spacing, comments and
parentheses gone, names kept, docstring dropped), is the mistake function's body — fingerprints cannot
decide it, since they abstract names (``beta * (logp_ref - logp_pol)`` and the correct answer are one
fingerprint). Text, not the grade, because this report explains shared *text*: a cell that computes a
known mistake in its own words is compared like any other (its own words remain after the mistake's are
removed), and this command runs without an autograde run's results (``OUT/results``, where the grade names
the matched mistake).

**Exercises too short to score.** For an exercise whose answer is a line or three, independent answers
share most of their fingerprints (there are few ways to write ``beta * (logp_pol - logp_ref)``). An
exercise is *scored* only when its reference body (the solution between the markers) has at least
:data:`MIN_EXERCISE_FINGERPRINTS` fingerprints; the others get one ``not scored`` line (``dpo_loss is not
scored: its answers are too short …``). The number is measured on the synthetic class of
``tests/similarity_class.py`` (``bench/similarity_rates.py``, asserted by ``tests/test_similarity.py``):
with these values no independent pair of that class and no independent cell against the library is shown,
and 13 of the 14 planted copies of scored exercises are (``docs/grading.md`` has the table; the one not shown
cannot be told from an independent answer of that class, see below). The short
exercises there: ``dpo_loss`` 22 fingerprints, ``implicit_reward`` 0, ``rms_norm`` 27, ``swiglu`` 20;
scored: ``apply_rope`` 88, ``toy_dpo_step`` 110, ``get_logps`` 116, ``sft_step`` 119.

Rows:

* ``similar cells``: two students' cells of one exercise; ``score`` = the larger of the two students'
  shares of their own (non-expected) code covered by shared fingerprints (copydetect's token overlap, so a
  copier who added dead code scores as high as the original's share, and swapped statements keep the
  tokens inside each statement), shown when ``score >= threshold`` *and* at least :data:`MIN_SHARED`
  fingerprints are shared (a handful of shared fingerprints is one idiom, not a cell: a cell whose own code
  is one idiom covers 100 % of itself with it); *or* when the two cells share at least
  :data:`MIN_UNIQUE_STATEMENTS` statements that no other cell of the exercise has (below);
* ``similar to a library file``: a cell's fingerprints found in a file of ``rlhf_core`` (the reference set:
  every ``rlhf_core/**/*.py`` but ``exercises.py``, the stubs), same score, at least
  :data:`MIN_SHARED_LIBRARY` shared fingerprints (about 80 files: more chances to meet an idiom), in every
  exercise, scored or not (library code is long whatever the exercise); ``student_b`` names the file. Code inside
  a string literal (``exec('''def dpo_loss…''')``) is unfolded and fingerprinted as code (the kind then
  says ``inside an exec'd string``). A student's fingerprints found in a library file are then left out
  of their comparisons with other students (two students showing the same library code are one source);
* ``execs code read at run time``: ``exec``/``eval``/``compile`` on something other than a string
  literal, in a cell that also reads source (``inspect.getsource``, ``__file__``, ``open``,
  ``rlhf_core``): what runs cannot be read from the notebook; no score. Encoded payloads (base64, zlib)
  of a *literal* are not unfolded: they show up only through this rule when the decoded text is ``exec``'d;
* ``known mistake`` (above), ``not scored`` (above), and ``not compared: …`` for a notebook that could not
  be read (invalid JSON, not a notebook): no score.

**Statements no other cell has.** Fingerprints are k-grams of the token stream, so a copy whose statements were
swapped *and* whose names were changed loses the k-grams that span two statements, and on a short exercise the
idiom rule leaves little else: measured, a renamed, reordered and padded ``get_logps`` scored 0.70 and a reordered
``toy_dpo_step`` 0.50. So each cell's statements are also read one by one (:func:`grader.fingerprints.statement_marks`:
a statement's text with names kept, its shape with names abstracted, and its longer comments), the expected
code's marks are left out, and a mark counts for a pair only when the two cells hold it and no other cell of the
class does; a row is shown when at least :data:`MIN_UNIQUE_STATEMENTS` statements are so shared (a statement counts
once, however many of its marks match). Measured on the synthetic class: independent pairs share at most 1 such
statement, in every exercise; the planted copies of scored exercises share 0 to 9 (a copy of the way many students
write an answer shares few: its statements are in other cells too; the fingerprints find all of those but one), and
two of them are shown by this rule alone. The evidence names the count and two of the statements. Its limit: a source three or
more cells share leaves no statement to two cells alone, and those rows rest on the fingerprints.

**The copy that is not shown** is a renamed, reordered and padded copy of ``s00``'s ``toy_dpo_step``, written the
way many in that class write it. The independent answer ``s16`` is ``s00`` with two names changed and one statement
left out, so any rule that ignores names (as catching a renamed copy requires) finds ``s16`` as close to ``s00`` as
the copy; showing the copy would show ``s16`` (``tests/test_similarity.py`` holds both facts).

The kind never depends on the threshold, and every score is the same ratio, so a row at 0.36 under
``--threshold 0.3`` reads "share 5 of 14 fingerprints": the label says what was measured, the instructor
decides what it means.

The fingerprints, the expected code and the normalised text are :mod:`grader.fingerprints`'s; this module
compares them and writes the report.
"""

from __future__ import annotations

import csv
import html
import json
from dataclasses import dataclass, field
from pathlib import Path

from rlhf_core.paths import LIBRARY_DIR

from .course import NOTEBOOKS_DIR, SOLUTIONS_DIR, lesson_paths
from .fingerprints import (
    MIN_EXERCISE_FINGERPRINTS,
    NOISE_T,
    ExerciseCode,
    as_array,
    exercise_cells,
    exercise_code,
    expected_code,
    fingerprint,
    fingerprints_of,
    highlight,
    library_fingerprints,
    statement_marks,
    statements,
    strip_literals,
    unfold,
)

__all__ = ["CSS", "DEFAULT_THRESHOLD", "NOISE_T", "MIN_SHARED", "MIN_EXERCISE_FINGERPRINTS", "MIN_SHARED_LIBRARY",
           "MIN_UNIQUE_STATEMENTS", "STUDENT", "LIBRARY", "LIBRARY_EXEC", "DYNAMIC", "MISTAKE", "NOT_SCORED", "Row", "Report",
           "exercise_cells", "expected_code", "compare", "similarity", "write_csv", "render_html", "section"]

DEFAULT_THRESHOLD = 0.75
MIN_SHARED = 10                 # a row needs at least this many shared fingerprints (measured: see the module doc)
COMMON_SHARE, COMMON_MIN = 0.25, 4  # a fingerprint in ≥ 25 % of an exercise's cells (and ≥ 4) is an idiom
MIN_SHARED_LIBRARY = 25         # the same against a library file (about 80 files: more chances to meet an idiom)
MIN_UNIQUE_STATEMENTS = 3       # or a row shares this many statements no other cell has (measured: see the module doc)
STUDENT, LIBRARY, LIBRARY_EXEC, DYNAMIC, MISTAKE, NOT_SCORED = (
    "similar cells", "similar to a library file", "similar to a library file, inside an exec'd string",
    "execs code read at run time", "known mistake", "not scored")


@dataclass
class Row:
    lesson: str
    student_a: str
    student_b: str
    score: float | None
    kind: str
    left: str = ""            # the two versions, already escaped and highlighted (HTML)
    right: str = ""
    exercise: str = ""
    shared: int | None = None  # shared fingerprints
    evidence: str = ""         # the row in one sentence
    unique: int | None = None  # statements the two cells share and no other cell of the class has


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)        # shown: similar cells, library files, exec'd code; ranked
    near: list[Row] = field(default_factory=list)        # the closest pairs not shown
    notes: list[Row] = field(default_factory=list)       # known mistakes, exercises not scored, notebooks not compared
    threshold: float = DEFAULT_THRESHOLD


def _lesson_of(path: Path, names: list[str]) -> str | None:
    if path.stem in names:
        return path.stem
    matches = [n for n in names if n[:2] == path.name[:2] and path.name[:2].isdigit()]
    return matches[0] if len(matches) == 1 else None


def _read_json(path: Path):
    try:
        nb = json.loads(path.read_bytes().decode("utf-8", errors="replace"))
    except (OSError, ValueError) as exc:
        return None, f"invalid notebook ({type(exc).__name__}: {str(exc)[:120]})"
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        return None, "invalid notebook (no list of cells: not nbformat 4)"
    return nb, ""


def _pair_evidence(a: str, b: str, shared: int, ca: float, cb: float, unique: list[str], min_unique: int) -> str:
    said = f"these two cells share {shared} fingerprints, covering {ca:.0%} of {a}'s own code and {cb:.0%} of {b}'s"
    if len(unique) >= min_unique:
        said += (f", and {len(unique)} statements (names aside) that no other cell of the class has, such as "
                 + ", ".join(f"`{text[:60]}`" for text in unique[:2]))
    return said + "; side by side below"


def _statements_only_two_hold(texts: dict[str, str], expected: frozenset, library: dict[str, set[str]]):
    """``unique(a, b)``: how ``a`` writes the statements it shares with ``b`` and with no other cell (a mark of
    :func:`statement_marks` held by two cells: theirs), one per statement; the expected code's marks, and those of a
    library file either student's row shows (``library``), left out."""
    marks = {s: {m: v for m, v in statement_marks(text).items() if m not in expected} for s, text in texts.items()}
    held: dict[str, int] = {}
    for found in marks.values():
        for m in found:
            held[m] = held.get(m, 0) + 1

    def unique(a: str, b: str) -> list[str]:
        left_out = library.get(a, set()) | library.get(b, set())
        found: dict[str, str] = {}
        for mark in marks[a].keys() & marks[b].keys():
            if held[mark] == 2 and mark not in left_out:
                statement, text = marks[a][mark]
                found.setdefault(statement, text)
        return sorted(found.values())

    return unique


def _library_row(student: str, fp, own: set[int], library, exercise: str, lesson: str, threshold: float,
                 min_shared: int, in_string_after: int | None):
    """The library file that shares most fingerprints with one student's cell, as a row, that file's
    fingerprints and its text, when it is shown (``score >= threshold``, at least ``min_shared`` shared); else None.
    ``in_string_after``: where the cell's own text ends and its unfolded strings begin (None: nothing unfolded)."""
    from copydetect.detector import compare_files

    best = None
    for name, ref in library:
        shared = len(own & {int(h) for h in ref.hashes})
        if shared and (best is None or shared > best[0]):
            best = (shared, name, ref)
    if best is None:
        return None
    shared, name, ref = best
    _, (score, _), (la, lb) = compare_files(fp, ref)
    if score < threshold or shared < min_shared:
        return None
    in_string = in_string_after is not None and la.size > 0 and la[1].max() > in_string_after
    row = Row(lesson, student, name, round(float(score), 3), LIBRARY_EXEC if in_string else LIBRARY, exercise=exercise,
              shared=shared, evidence=f"{shared} of the {len(own)} fingerprints of {student}'s cell are in {name}, "
                                      f"covering {score:.0%} of its own code; side by side below")
    row.left, row.right = highlight(fp, la), highlight(ref, lb, truncate=6)
    return row, {int(h) for h in ref.hashes}, ref.raw_code


def compare(cells: dict[str, str], exercise: ExerciseCode, lesson: str, library=(), *, threshold: float = DEFAULT_THRESHOLD,
            unfolded: dict[str, str] | None = None, notes: list | None = None, min_shared: int = MIN_SHARED,
            min_shared_library: int = MIN_SHARED_LIBRARY, min_unique: int = MIN_UNIQUE_STATEMENTS,
            scored: bool | None = None, near: int | None = 5):
    """Rows shown and the closest pairs not shown, for one exercise's cells ``{student: code}``.

    Known-mistake rows go to ``notes``, as do cells copydetect fails on. ``scored`` overrides the
    exercise's own rule (the measurement scores every exercise); ``near``: how many pairs not shown to
    return (``None``: all of them, the measurement)."""
    from copydetect.detector import compare_files

    unfolded = unfolded or {}
    notes = notes if notes is not None else []
    scored = exercise.scored if scored is None else scored
    cells = {s: strip_literals(code) if unfolded.get(s) else code for s, code in cells.items()}
    texts = {s: code + unfolded.get(s, "") for s, code in cells.items()}
    fps, own = {}, {}
    for s, text in texts.items():
        try:
            fps[s] = fingerprint(s, text, exercise.boiler)
        except Exception as exc:     # one odd cell must not end the report
            notes.append(Row(lesson, s, "(exercise cell)", None, f"not compared: copydetect failed ({type(exc).__name__}: {str(exc)[:120]})",
                             exercise=exercise.name))
            continue
        own[s] = {int(h) for h in fps[s].hashes}
        mid = exercise.mistake_text.get(statements(cells[s], exercise.name))
        if mid:
            notes.append(Row(lesson, s, f"{exercise.name}/{mid}", None, MISTAKE, exercise=exercise.name,
                             evidence=f"matches the known mistake '{mid}' of {exercise.name} — a common mistake, "
                                      "not evidence of copying"))
    students = sorted(fps)
    # MOSS's rule for idioms: a fingerprint found in many of this exercise's cells is expected code too
    counts: dict[int, int] = {}
    for s in students:
        for h in own[s]:
            counts[h] = counts.get(h, 0) + 1
    floor = max(COMMON_MIN, COMMON_SHARE * len(students))
    common = {h for h, n in counts.items() if n >= floor}
    if common:
        expected = as_array(set(int(h) for h in exercise.boiler) | common)
        for s in students:
            fps[s] = fingerprint(s, texts[s], expected)
            own[s] = {int(h) for h in fps[s].hashes}
    rows, below, from_library = [], [], {}
    library_marks: dict[str, set[str]] = {}
    for a in students:
        row = _library_row(a, fps[a], own[a], library, exercise.name, lesson, threshold, min_shared_library,
                           in_string_after=len(cells[a]) if unfolded.get(a) else None)
        if row is not None:
            rows.append(row[0])
            from_library[a] = row[1]
            library_marks[a] = set(statement_marks(row[2]))
    if not scored:
        return sorted(rows, key=_rank), []
    coverage = {s: fp.token_coverage for s, fp in fps.items()}
    for a, hashes in from_library.items():
        fps[a] = fingerprint(a, texts[a], as_array(set(int(h) for h in exercise.boiler) | common | hashes))
    # statements two cells share and no other cell has: what a copy keeps through renaming, reordering and padding
    only_two_hold = _statements_only_two_hold({s: texts[s] for s in students}, exercise.marks, library_marks)
    for i, a in enumerate(students):
        for b in students[i + 1:]:
            shared = len((own[a] - from_library.get(a, set())) & (own[b] - from_library.get(b, set())))
            unique = only_two_hold(a, b)
            if not shared and not unique:
                continue
            _, (sa, sb), (la, lb) = compare_files(fps[a], fps[b])
            # each a share of the student's own code (a library file's part, if removed, counts as not shared)
            share = lambda s, x: float(x) * fps[s].token_coverage / coverage[s] if coverage[s] else 0.0
            ca, cb = share(a, sa), share(b, sb)
            score = max(ca, cb)
            row = Row(lesson, a, b, round(score, 3), STUDENT, exercise=exercise.name, shared=shared,
                      evidence=_pair_evidence(a, b, shared, ca, cb, unique, min_unique), unique=len(unique))
            if (score >= threshold and shared >= min_shared) or len(unique) >= min_unique:
                row.left, row.right = highlight(fps[a], la), highlight(fps[b], lb)
                rows.append(row)
            else:
                below.append(row)
    return sorted(rows, key=_rank), sorted(below, key=_rank)[:near]


_rank = lambda r: (r.score is None, -(r.score or 0), -(r.shared or 0), r.lesson, r.exercise, r.student_a, r.student_b)


def _lesson_inputs(name: str, source: Path, released: Path) -> tuple[list[str], dict[str, str], dict[str, str]]:
    source_nb = json.loads(source.read_text())
    reference = exercise_cells(source_nb)
    ids = list(reference)
    released_path = Path(released) / f"{name}.ipynb"
    if released_path.exists():
        stub = exercise_cells(json.loads(released_path.read_text()), ids)
    else:
        from .compose import stub_of

        stub = {gid: stub_of(code) for gid, code in reference.items()}
    return ids, stub, reference


def similarity(submissions: Path, out: Path | None = None, *, lesson: str | None = None,
               threshold: float = DEFAULT_THRESHOLD, solutions: Path = SOLUTIONS_DIR, released: Path = NOTEBOOKS_DIR,
               library_dir: Path = LIBRARY_DIR, min_shared: int = MIN_SHARED, score_all: bool = False,
               log=print) -> Report | int:
    """Compare every lesson's exercise cells across students; write OUT/similarity.{csv,html}.

    ``score_all`` scores every exercise whatever its length (the measurement). Returns the report (2 for
    a bad SUBMISSIONS folder or an unknown ``lesson``)."""
    submissions = Path(submissions).resolve()
    out = Path(out) if out is not None else submissions.parent / "similarity"
    if not submissions.is_dir():
        log(f"error: {submissions} is not a folder of <student>/<NN_name>.ipynb submissions")
        return 2
    sources = {p.stem: p for p in lesson_paths(solutions)}
    names = sorted(sources)
    if lesson is not None:
        chosen = [n for n in names if n == lesson or n[:2] == str(lesson).zfill(2)[:2]]
        if not chosen:
            log(f"error: no lesson {lesson!r} (lessons: {', '.join(n[:2] for n in names)})")
            return 2
        names = chosen
    report = Report(threshold=threshold)
    by_lesson: dict[str, dict[str, Path]] = {}
    for student in sorted(p for p in submissions.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for path in sorted(p for p in student.iterdir() if p.suffix == ".ipynb" and not p.name.startswith(".")):
            name = _lesson_of(path, sorted(sources))
            if name in names:
                by_lesson.setdefault(name, {}).setdefault(student.name, path)
    library = library_fingerprints(library_dir) if by_lesson else []
    for name in sorted(by_lesson):
        ids, stub, reference = _lesson_inputs(name, sources[name], released)
        if not ids:
            continue
        handed: dict[str, dict[str, str]] = {}
        for student, path in by_lesson[name].items():
            nb, problem = _read_json(path)
            if nb is None:
                report.notes.append(Row(name, student, path.name, None, f"not compared: {problem}"))
                continue
            handed[student] = exercise_cells(nb, ids)
            _, runs = unfold("\n".join(handed[student].values()))
            if runs:
                report.rows.append(Row(name, student, "(code read at run time)", None, DYNAMIC, html.escape("\n".join(handed[student].values())),
                                       "exec/eval/compile of code that is not in the notebook: what runs is read when it runs",
                                       evidence="execs code read at run time: what runs cannot be read from the notebook"))
        for gid in ids:
            exercise = exercise_code(gid, stub.get(gid, ""), reference[gid])
            cells, unfolded = {}, {}
            for student, found in handed.items():
                code = found.get(gid)
                if code is None:
                    continue
                extra, _ = unfold(code)
                if fingerprints_of([code + extra]) <= set(int(h) for h in exercise.stub_ref):
                    continue           # nothing but the stub and the reference: nothing of the student's own
                cells[student], unfolded[student] = code, extra
            if not cells:
                continue
            if not (exercise.scored or score_all):
                report.notes.append(Row(name, "", gid, None, NOT_SCORED, exercise=gid, evidence=(
                    f"{gid} is not scored: its answers are too short for fingerprints to tell independent answers apart "
                    f"(the reference body has {exercise.size} fingerprints, fewer than {MIN_EXERCISE_FINGERPRINTS}); "
                    "only library code in it is shown")))
            rows, near = compare(cells, exercise, name, library, threshold=threshold, unfolded=unfolded, notes=report.notes,
                                 min_shared=min_shared, scored=True if score_all else None)
            report.rows += rows
            report.near += near
    report.rows.sort(key=_rank)
    report.near = sorted(report.near, key=_rank)[:5]
    out.mkdir(parents=True, exist_ok=True)
    write_csv(report, out / "similarity.csv")
    (out / "similarity.html").write_text(render_html(report), encoding="utf-8")
    for note in report.notes:
        if note.kind.startswith("not compared"):
            log(f"  {note.student_a}/{note.student_b}: {note.kind}")
    log(f"{len(report.rows)} shown (score ≥ {threshold} and ≥ {min_shared} shared fingerprints, or ≥ {MIN_UNIQUE_STATEMENTS} "
        "statements no other cell has); "
        f"wrote {out / 'similarity.csv'} and {out / 'similarity.html'}")
    return report


FIELDS = ["lesson", "exercise", "student_a", "student_b", "score", "shared", "kind", "evidence"]


def write_csv(report: Report, path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(FIELDS)
        for r in report.rows + report.notes:
            writer.writerow([r.lesson, r.exercise, r.student_a, r.student_b, "" if r.score is None else f"{r.score:.3f}",
                             "" if r.shared is None else r.shared, r.kind, r.evidence])


CSS = """body{font-family:system-ui,sans-serif;margin:1.5em;max-width:110em}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
.pair{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:1em}pre{background:#f7f7f7;padding:.6em;overflow:auto;font-size:85%}
mark{background:#ffd54f}h3{margin-top:2em}"""


def render_html(report: Report, *, title: str = "Similarity of exercise cells") -> str:
    """The report as one self-contained page (no scripts, no external resources): a ranked table, then
    each row's two texts side by side. Submission text arrives escaped in ``Row.left``/``Row.right``;
    every other string is escaped here."""
    e = html.escape
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{e(title)}</title><style>{CSS}</style></head><body>",
             f"<h1>{e(title)}</h1>", section(report), "</body></html>"]
    return "".join(parts)


def section(report: Report) -> str:
    """The report's body, for embedding in another page (the class report)."""
    e = html.escape
    parts = [f"<p>Evidence for you to judge, ranked: {len(report.rows)} rows at score ≥ {report.threshold} with at least "
             f"{MIN_SHARED} shared fingerprints, or sharing at least {MIN_UNIQUE_STATEMENTS} statements (names aside) that no "
             "other cell of the class has. Score: shared fingerprints (k-grams of the code with names, strings and "
             "comments abstracted) over the smaller cell's; the stub, the reference solution and the known mistakes are "
             "expected code and never count. Short answers can match without any copying: there are few ways to write "
             "them. Highlighted: the shared regions.</p>",
             "<table><tr><th>#</th><th>lesson</th><th>exercise</th><th>student a</th><th>student b</th><th>score</th>"
             "<th>evidence</th></tr>"]
    for i, r in enumerate(report.rows, 1):
        score = "" if r.score is None else f"{r.score:.2f}"
        parts.append(f"<tr><td><a href='#pair-{i}'>{i}</a></td><td>{e(r.lesson)}</td><td>{e(r.exercise)}</td>"
                     f"<td>{e(r.student_a)}</td><td>{e(r.student_b)}</td><td>{score}</td><td>{e(r.evidence or r.kind)}</td></tr>")
    parts.append("</table>")
    if report.near:
        parts.append("<p>Closest pairs not shown: " + "; ".join(
            f"{e(r.lesson[:2])} {e(r.exercise)} {e(r.student_a)} – {e(r.student_b)} {r.score:.2f} ({r.shared} shared)"
            for r in report.near) + ".</p>")
    scored_out = [r for r in report.notes if r.kind == NOT_SCORED]
    if scored_out:
        parts.append("<h2>Not scored</h2><ul>" + "".join(f"<li>{e(r.lesson)}: {e(r.evidence)}</li>" for r in scored_out) + "</ul>")
    mistakes = [r for r in report.notes if r.kind == MISTAKE]
    if mistakes:
        parts.append("<h2>Known mistakes (not evidence of copying)</h2><ul>" + "".join(
            f"<li>{e(r.lesson)} {e(r.student_a)}: {e(r.evidence)}</li>" for r in mistakes) + "</ul>")
    unread = [r for r in report.notes if r.kind.startswith("not compared")]
    if unread:
        parts.append("<h2>Not compared</h2><ul>" + "".join(
            f"<li>{e(r.student_a)}/{e(r.student_b)}: {e(r.kind)}</li>" for r in unread) + "</ul>")
    for i, r in enumerate(report.rows, 1):
        parts.append(f"<h3 id='pair-{i}'>{i}. {e(r.lesson)} {e(r.exercise)}: {e(r.student_a)} – {e(r.student_b)}</h3>"
                     f"<p>{e(r.evidence or r.kind)}</p><div class='pair'><div><b>{e(r.student_a)}</b><pre>{r.left}</pre></div>"
                     f"<div><b>{e(r.student_b)}</b><pre>{r.right}</pre></div></div>")
    return "".join(parts)
