"""``python -m grader similarity SUBMISSIONS [--lesson NN]``: near-identical exercise code between students.

Layout in: ``SUBMISSIONS/<student>/<NN_name>.ipynb``, as for ``autograde`` (a notebook renamed but keeping
its lesson's two-digit number counts for that lesson). Out: ``OUT/similarity.csv`` (lesson, student_a,
student_b, score, kind), ranked by score, and ``OUT/similarity.html``, self-contained, every piece of
submission text HTML-escaped, each flagged pair's two versions side by side with the matched regions
highlighted.

**What is compared.** Per lesson, a student's *exercise cells* only (the nbgrader solution cells, found by
their ``grade_id`` as :mod:`grader.compose` finds them), joined in lesson order into one document. Each
document is fingerprinted with `copydetect <https://github.com/blingenf/copydetect>`_ (winnowing as in
MOSS, on Pygments tokens with every name replaced by ``V``/``F``/``O``, strings by ``S``, comments and
whitespace dropped: renamed variables and re-spaced lines change nothing; reordered lines keep every
k-gram inside a line and most across). Three things never count as a match (their k-grams are removed
from every document before comparing, copydetect's *boilerplate*):

* the released stub of the lesson (``notebooks/NN_*.ipynb``: signature, docstring, ``raise NotImplementedError``);
* the reference solution (``solutions/NN_*.ipynb``): two students who both hand in the reference answer
  are not copying each other, and a student who pastes it is not copying from a student either (the
  grader scores that answer like any other; getting the solution is not what this report is about);
* for the same reason, the reference solution is not "library source" either.

Kinds of row:

* ``copied from another student``: the score is the larger of the two students' shares of their own
  (non-boilerplate) exercise code found in the other's — a student who copied one of two exercises scores
  as high as one who copied both;
* ``pasted library source``: a student's exercise code matches a file of ``rlhf_core`` (the reference set:
  every ``rlhf_core/**/*.py`` but ``exercises.py``, the stubs); the score is the student's share found in
  that file, and ``student_b`` names the file. Code inside a string literal (``exec('''def dpo_loss…''')``)
  is unfolded and fingerprinted as code, so pasting the source into an ``exec``'d string is caught the same
  way (the kind then says ``in an exec'd string``);
* ``execs code read at run time``: ``exec``/``eval``/``compile`` on something other than a string literal,
  in a cell that also reads source (``inspect.getsource``, ``__file__``, ``open``, ``rlhf_core``):
  what runs cannot be read from the notebook, so the row says so with score 1.0 instead of a similarity.
  Encoded payloads (base64, zlib) of a *literal* are not unfolded: they show up only through this rule
  when the decoded text is ``exec``'d;
* ``not compared: …``: a notebook that could not be read (invalid JSON, not a notebook), one line each.

**Threshold.** Rows below ``threshold`` (default :data:`DEFAULT_THRESHOLD`) are not flagged; the HTML
also lists the five closest unflagged pairs with their scores. Measured on the synthetic class of
``tests/test_similarity.py`` (lessons 02 and 04, k = :data:`NOISE_T`), see ``measure()`` there and the
``docs/measurements.md``'s *Similarity*: the copy with renamed variables and reordered lines scores 0.99 and 1.0, pasted
library source 0.99–1.0 (0.73–0.78 inside an ``exec``'d string: the ``exec(...)`` around it is the student's
own), while independent correct answers written differently score at most 0.25 against each other and
at most 0.29 against their closest library file; 0.5 sits in the gap (k = 12 gives 0.38 for the closest
independent library score, k = 18 and 25 lower the copies' scores: 0.92).

**copydetect's fitness** (0.5.0, measured): its :class:`copydetect.CopyDetector` only takes files on disk
(directories or paths), but its lower-level API takes in-memory text —
``CodeFingerprint(name, k, win_size, boilerplate, language="python", fp=io.StringIO(code))`` and
``compare_files(fp1, fp2)`` (token overlap, both shares, the matched slices mapped back to the raw text) —
and ``copydetect.utils.highlight_overlap(..., escape_html=True)`` highlights with the text escaped; that is
what is used here. Its default noise threshold (k = 25 filtered characters) is too long for exercise cells
of three to ten lines (a whole ``dpo_loss`` body filters to about 40 characters): k = :data:`NOISE_T`
with window 1 (every k-gram kept: documents are short) is used instead. Importing it costs about 0.5 s
(it imports matplotlib), so it is imported only when this command runs.
"""

from __future__ import annotations

import ast
import csv
import html
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from rlhf_core.paths import LIBRARY_DIR

from .course import NOTEBOOKS_DIR, SOLUTIONS_DIR, lesson_paths

__all__ = ["CSS", "DEFAULT_THRESHOLD", "NOISE_T", "STUDENT", "LIBRARY", "LIBRARY_EXEC", "DYNAMIC", "Row", "Report",
           "exercise_cells", "compare", "similarity", "write_csv", "render_html", "section"]

DEFAULT_THRESHOLD = 0.5
NOISE_T = 15              # k: the shortest match, in filtered characters ("V=V-V" is 5)
NOT_LIBRARY = {"exercises.py"}   # the stubs: matching them is matching the released notebook
_READS_SOURCE = re.compile(r"getsource|__file__|\bopen\s*\(|rlhf_core|read_text|importlib")
STUDENT, LIBRARY, LIBRARY_EXEC, DYNAMIC = ("copied from another student", "pasted library source",
                                           "pasted library source (in an exec'd string)", "execs code read at run time")


@dataclass
class Row:
    lesson: str
    student_a: str
    student_b: str
    score: float | None
    kind: str
    left: str = ""            # the two versions, already escaped and highlighted (HTML)
    right: str = ""


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)        # flagged, ranked by score
    near: list[Row] = field(default_factory=list)        # the closest unflagged pairs
    notes: list[Row] = field(default_factory=list)       # notebooks not compared
    threshold: float = DEFAULT_THRESHOLD


def _grade_id(cell) -> str | None:
    meta = cell.get("metadata", {}) if isinstance(cell, dict) else {}
    meta = meta.get("nbgrader", {}) if isinstance(meta, dict) else {}
    gid = meta.get("grade_id") if isinstance(meta, dict) else None
    return gid if isinstance(gid, str) else None


def _is_solution(cell) -> bool:
    meta = cell.get("metadata", {})
    meta = meta.get("nbgrader", {}) if isinstance(meta, dict) else {}
    return bool(isinstance(meta, dict) and meta.get("solution"))


def _text(source) -> str:
    return "".join(str(s) for s in source) if isinstance(source, list) else ("" if source is None else str(source))


def exercise_cells(nb: dict, ids: list[str] | None = None) -> dict[str, str]:
    """``{grade_id: code}`` of a notebook's exercise cells (nbgrader solution code cells); with ``ids``,
    the code cells carrying those grade ids whatever their metadata says (a learner may have edited it)."""
    found = {}
    for cell in nb.get("cells", []) if isinstance(nb, dict) else []:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        gid = _grade_id(cell)
        wanted = gid in ids if ids is not None else _is_solution(cell)
        if gid and wanted:
            found.setdefault(gid, _text(cell.get("source")))
    return found


def _document(cells: dict[str, str], ids: list[str]) -> str:
    """One lesson's exercise code as one document; the cell headers are comments (dropped by the filter)."""
    return "".join(f"# ── {gid} ──\n{cells[gid].rstrip()}\n\n" for gid in ids if gid in cells)


def _unfold(code: str) -> tuple[str, bool]:
    """Code held in string literals (``exec('''...''')``), as extra code, and whether the cell execs
    something that is not a literal while reading source."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return "", False
    extra, dynamic = [], False
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and len(node.value) >= 40:
            try:
                inner = ast.parse(node.value)
            except (SyntaxError, ValueError):
                continue
            if any(isinstance(s, (ast.FunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom, ast.Assign, ast.Return))
                   for s in ast.walk(inner)):
                extra.append(node.value)
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("exec", "eval", "compile")
                and node.args and not (isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str))):
            dynamic = True
    dynamic = dynamic and bool(_READS_SOURCE.search(code))
    return "".join(f"# ── code in a string ──\n{s.rstrip()}\n\n" for s in extra), dynamic


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


def _fingerprint(name: str, code: str, boilerplate=None):
    from copydetect.detector import CodeFingerprint

    return CodeFingerprint(name, NOISE_T, 1, boilerplate, language="python", fp=io.StringIO(code))


def _boilerplate(texts: list[str]):
    import numpy as np

    hashes = set()
    for text in texts:
        hashes |= _fingerprint("boilerplate", text).hashes
    return np.array(sorted(hashes), dtype=np.int64)


_LIBRARY_CACHE: dict = {}


def _library(library_dir: Path) -> list[tuple[str, object]]:
    """``[(rlhf_core/<file>, fingerprint)]``, fingerprinted once per process and state of the files (about 2 s)."""
    files = sorted(p for p in Path(library_dir).rglob("*.py") if p.name not in NOT_LIBRARY and "__pycache__" not in p.parts)
    key = (NOISE_T, tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files))
    if key not in _LIBRARY_CACHE:
        _LIBRARY_CACHE.clear()
        _LIBRARY_CACHE[key] = _fingerprint_library(library_dir, files)
    return _LIBRARY_CACHE[key]


def _fingerprint_library(library_dir: Path, files: list[Path]) -> list[tuple[str, object]]:
    return [(str(p.relative_to(Path(library_dir).parent)), _fingerprint(p.name, p.read_text(errors="replace"))) for p in files]


def _side_by_side(fp_a, fp_b, slices_a, slices_b) -> tuple[str, str]:
    from copydetect.utils import highlight_overlap

    def one(fp, slices):
        if len(slices) == 0 or slices.shape[-1] == 0:
            return html.escape(fp.raw_code)
        text, _ = highlight_overlap(fp.raw_code, slices, "<mark>", "</mark>", escape_html=True)
        return text

    return one(fp_a, slices_a), one(fp_b, slices_b)


def _excerpt(fp, slices, context: int = 6) -> str:
    """The matched part of a long library file, with a few lines around it."""
    from copydetect.utils import highlight_overlap

    text, _ = highlight_overlap(fp.raw_code, slices, "<mark>", "</mark>", truncate=context, escape_html=True)
    return text


def compare(docs: dict[str, str], stub: list[str], reference: list[str], lesson: str, library=(), *,
            threshold: float = DEFAULT_THRESHOLD, dynamic: set[str] = frozenset(), unfolded: dict[str, str] | None = None,
            library_threshold: float | None = None, notes: list | None = None):
    """Flagged rows and the closest unflagged pairs of one lesson's documents ``{student: code}``.

    Library first: a student flagged for pasted library source is then compared with the others without
    the k-grams it shares with that file (two students who pasted the same library function are one
    source, not a copy of each other; what else they share still counts, as a share of the student's whole
    code). ``library_threshold`` (default: ``threshold``) is the score from which a student counts as a paster
    (``threshold=0`` with the default here lists every score without changing them: the measurement).
    A document copydetect fails on is left out, with a row in ``notes``."""
    import numpy as np
    from copydetect.detector import compare_files

    unfolded = unfolded or {}
    boiler = _boilerplate(stub + reference)
    texts = {s: code + unfolded.get(s, "") for s, code in docs.items()}
    fps = {}
    for s, text in texts.items():
        try:
            fps[s] = _fingerprint(s, text, boiler)
        except Exception as exc:     # one odd document must not end the report
            if notes is not None:
                notes.append(Row(lesson, s, "(exercise cells)", None, f"not compared: copydetect failed ({type(exc).__name__}: {str(exc)[:120]})"))
    students = sorted(fps)
    rows, below, pasted = [], [], {}
    library_threshold = threshold if library_threshold is None else library_threshold
    coverage = {s: fp.token_coverage for s, fp in fps.items()}
    for a in students:
        best = None
        for name, ref in library:
            overlap, (sa, _), (la, lb) = compare_files(fps[a], ref)
            if overlap and (best is None or sa > best[0]):
                best = (float(sa), name, ref, la, lb)
        if best and best[0] >= threshold:
            score, name, ref, la, lb = best
            in_string = bool(unfolded.get(a)) and la.size > 0 and la[1].max() > len(docs[a])
            row = Row(lesson, a, name, round(score, 3), LIBRARY_EXEC if in_string else LIBRARY)
            row.left, _ = _side_by_side(fps[a], ref, la, lb)
            row.right = _excerpt(ref, lb)
            rows.append(row)
        if best and best[0] >= library_threshold:
            pasted[a] = best[2].hashes
        if a in dynamic:
            rows.append(Row(lesson, a, "(code read at run time)", 1.0, DYNAMIC, html.escape(texts[a]),
                            "exec/eval/compile of code that is not in the notebook: what runs is read when it runs"))
    for a, hashes in pasted.items():
        fps[a] = _fingerprint(a, texts[a], np.union1d(boiler, np.array(sorted(hashes), dtype=np.int64)))
    for i, a in enumerate(students):
        for b in students[i + 1:]:
            overlap, (sa, sb), (la, lb) = compare_files(fps[a], fps[b])
            # each share of the student's whole code (the library's part, if removed, counts as not matched)
            share = lambda s, x: float(x) * fps[s].token_coverage / coverage[s] if coverage[s] else 0.0
            score = float(max(share(a, sa), share(b, sb))) if overlap else 0.0
            row = Row(lesson, a, b, round(score, 3), STUDENT)
            if score >= threshold:
                row.left, row.right = _side_by_side(fps[a], fps[b], la, lb)
                rows.append(row)
            elif score > 0:
                below.append(row)
    return sorted(rows, key=_rank), sorted(below, key=_rank)[:5]


_rank = lambda r: (-(r.score or 0), r.lesson, r.student_a, r.student_b)


def similarity(submissions: Path, out: Path | None = None, *, lesson: str | None = None,
               threshold: float = DEFAULT_THRESHOLD, library_threshold: float | None = None, solutions: Path = SOLUTIONS_DIR, released: Path = NOTEBOOKS_DIR,
               library_dir: Path = LIBRARY_DIR, log=print) -> Report | int:
    """Compare every lesson's exercise cells across students; write OUT/similarity.{csv,html}.

    Returns the report (2 for a bad SUBMISSIONS folder or an unknown ``lesson``)."""
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
    library = _library(library_dir) if by_lesson else []
    for name in sorted(by_lesson):
        source_nb = json.loads(sources[name].read_text())
        ids = list(exercise_cells(source_nb))
        if not ids:
            continue
        reference = exercise_cells(source_nb)
        released_path = Path(released) / f"{name}.ipynb"
        if released_path.exists():
            stub = exercise_cells(json.loads(released_path.read_text()), ids)
        else:
            from .compose import stub_of

            stub = {gid: stub_of(code) for gid, code in reference.items()}
        docs, unfolded, dynamic = {}, {}, set()
        for student, path in by_lesson[name].items():
            nb, problem = _read_json(path)
            if nb is None:
                report.notes.append(Row(name, student, path.name, None, f"not compared: {problem}"))
                continue
            cells = exercise_cells(nb, ids)
            docs[student] = _document(cells, ids)
            extra, runs = _unfold("\n".join(cells.values()))
            unfolded[student] = extra
            if runs:
                dynamic.add(student)
        stub_texts = [_document(stub, ids)] + list(stub.values())
        ref_texts = [_document(reference, ids)] + list(reference.values())
        rows, near = compare(docs, stub_texts, ref_texts, name, library, threshold=threshold,
                             dynamic=dynamic, unfolded=unfolded, library_threshold=library_threshold, notes=report.notes)
        report.rows += rows
        report.near += near
    report.rows.sort(key=_rank)
    report.near = sorted(report.near, key=_rank)[:5]
    out.mkdir(parents=True, exist_ok=True)
    write_csv(report, out / "similarity.csv")
    (out / "similarity.html").write_text(render_html(report), encoding="utf-8")
    for note in report.notes:
        log(f"  {note.student_a}/{note.student_b}: {note.kind}")
    log(f"{len(report.rows)} flagged (threshold {threshold}); wrote {out / 'similarity.csv'} and {out / 'similarity.html'}")
    return report


def write_csv(report: Report, path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["lesson", "student_a", "student_b", "score", "kind"])
        for row in report.rows + report.notes:
            writer.writerow([row.lesson, row.student_a, row.student_b, "" if row.score is None else f"{row.score:.3f}", row.kind])


CSS = """body{font-family:system-ui,sans-serif;margin:1.5em;max-width:110em}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
.pair{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:1em}pre{background:#f7f7f7;padding:.6em;overflow:auto;font-size:85%}
mark{background:#ffd54f}h3{margin-top:2em}"""


def render_html(report: Report, *, title: str = "Similarity of exercise cells") -> str:
    """The report as one self-contained page (no scripts, no external resources): a ranked table, then
    each flagged pair side by side. Submission text arrives escaped in ``Row.left``/``Row.right``; every
    other string is escaped here."""
    e = html.escape
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{e(title)}</title><style>{CSS}</style></head><body>",
             f"<h1>{e(title)}</h1><p>{len(report.rows)} flagged at score ≥ {report.threshold}. Score: the share of a "
             "student's own exercise code (stub and reference solution excluded) found in the other's. "
             "Highlighted: the matched regions.</p>", section(report), "</body></html>"]
    return "".join(parts)


def section(report: Report) -> str:
    """The report's body, for embedding in another page (the class report)."""
    e = html.escape
    parts = ["<table><tr><th>#</th><th>lesson</th><th>student a</th><th>student b</th><th>score</th><th>kind</th></tr>"]
    for i, r in enumerate(report.rows, 1):
        parts.append(f"<tr><td><a href='#pair-{i}'>{i}</a></td><td>{e(r.lesson)}</td><td>{e(r.student_a)}</td>"
                     f"<td>{e(r.student_b)}</td><td>{r.score:.2f}</td><td>{e(r.kind)}</td></tr>")
    parts.append("</table>")
    if report.near:
        parts.append("<p>Closest pairs below the threshold: " + "; ".join(
            f"{e(r.lesson[:2])} {e(r.student_a)} – {e(r.student_b)} {r.score:.2f}" for r in report.near) + ".</p>")
    if report.notes:
        parts.append("<h2>Not compared</h2><ul>" + "".join(
            f"<li>{e(r.student_a)}/{e(r.student_b)}: {e(r.kind)}</li>" for r in report.notes) + "</ul>")
    for i, r in enumerate(report.rows, 1):
        parts.append(f"<h3 id='pair-{i}'>{i}. {e(r.lesson)}: {e(r.student_a)} – {e(r.student_b)} "
                     f"({r.score:.2f}, {e(r.kind)})</h3><div class='pair'><div><b>{e(r.student_a)}</b><pre>{r.left}</pre></div>"
                     f"<div><b>{e(r.student_b)}</b><pre>{r.right}</pre></div></div>")
    return "".join(parts)
