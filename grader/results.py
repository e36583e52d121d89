"""Writing an autograde run's results: one file per notebook, atomically, and everything rebuilt from them.

* ``OUT/results/<student>/<notebook>.json`` — the result of one notebook
  (:meth:`grader.result.NotebookResult.to_json`, its CSV row included), written atomically when the
  notebook is done, with the sha256 of the submission it graded; a re-run skips every notebook that has one, unless
  its submission changed since (:mod:`grader.plan`);
* ``OUT/grades.csv`` — rebuilt from the result files after every notebook, sorted, atomically; its
  ``message`` is the short form of the result's message (:func:`grader.wording.short_form`: whole
  sentences, at most :data:`~grader.wording.CSV_MESSAGE_LIMIT` characters, a check's diagnosis before its long
  numbers), while the result file, the
  feedback page and ``grader check`` keep the full text of every verdict;
* ``OUT/autograded/<student>/dpo/<notebook>.ipynb`` and ``OUT/feedback/<student>/<notebook>.html`` —
  the graded notebook as it ran and its feedback page.

The gradebook (:mod:`grader.gradebook`) is rebuilt from the result files too.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import tempfile
from pathlib import Path

import nbformat

from .course import ASSIGNMENT
from .feedback import feedback_html
from .result import CSV_FIELDS, NotebookResult

__all__ = ["CSV_FIELDS", "atomic_write", "read_results", "render_outputs", "result_path", "write_outputs", "write_result", "write_csv"]

def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader (or a killed run) sees the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.@+-]", "_", name)[:120] or "_"


def result_path(out: Path, student: str, notebook: str) -> Path:
    return out / "results" / _safe(student) / f"{_safe(notebook)}.json"


def render_outputs(result: NotebookResult, graded_nb) -> tuple[str, str]:
    """The graded notebook's text and its feedback page, made wherever the notebook was graded."""
    return nbformat.writes(graded_nb), feedback_html(result, graded_nb)


def write_outputs(out: Path, result: NotebookResult, notebook_text: str, page: str) -> None:
    """The graded notebook and its feedback page, into OUT (only the instructor's process writes there)."""
    student, notebook = _safe(result.student), _safe(result.notebook)
    atomic_write(out / "autograded" / student / ASSIGNMENT / f"{notebook}.ipynb", notebook_text)
    atomic_write(out / "feedback" / student / f"{notebook}.html", page)


def write_result(path: Path, result: NotebookResult) -> dict[str, str]:
    """Store one notebook's result with its CSV row; returns the row."""
    atomic_write(path, json.dumps(result.to_json(), indent=1))
    return result.csv_row()


def read_results(out: Path) -> list[NotebookResult]:
    """Every readable result file of ``OUT/results``, in path order (what the CSV, the gradebook and the
    class report are built from); a file that cannot be read as a result is left out."""
    results = []
    for path in sorted((Path(out) / "results").glob("*/*.json")):
        try:
            results.append(NotebookResult.from_json(json.loads(path.read_text())))
        except (OSError, ValueError, TypeError):
            continue
    return results


def write_csv(out: Path) -> None:
    """``OUT/grades.csv`` from every result file (each row as :meth:`~grader.result.NotebookResult.csv_row` gives it)."""
    rows = [r.csv_row() for r in read_results(out)]
    rows.sort(key=lambda r: (r["student"], r["notebook"]))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(out / "grades.csv", buffer.getvalue())
