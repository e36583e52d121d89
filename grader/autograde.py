"""``python -m grader autograde SUBMISSIONS --out OUT``: grade a folder of untrusted submissions.

Layout in: ``SUBMISSIONS/<student>/<NN_name>.ipynb``. Out:

* ``OUT/grades.csv`` — student, notebook, score, max_score, status, message, isolation; rewritten
  atomically after every notebook, sorted, so a killed run leaves a complete file of what finished;
* ``OUT/feedback/<student>/<notebook>.html`` — the graded notebook with each check's verdict;
* ``OUT/results/<student>/<notebook>.json`` — one result per notebook, written atomically; a re-run
  skips every notebook that has one (``--force`` grades again), so killing the grader at any moment
  and re-running loses and duplicates nothing;
* ``OUT/gradebook.db`` — nbgrader's gradebook with every score, for ``nbgrader export`` and formgrader.

Every notebook ends with a status and a one-line reason: ``graded``, ``timeout``, ``memory``,
``kernel died``, ``invalid notebook``, ``missing notebook`` or ``unexpected notebook``. A notebook
that stops early keeps the points of the checks that ran before it stopped.

The hidden tests' seeds are replaced by secret ones, derived from a key kept in ``OUT/.secret`` (out of
every kernel's reach), the student and the check: a submission cannot know its inputs in advance, and
re-running gives the same seeds, hence the same grades.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import os
import re
import secrets
import shutil
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import nbformat

from .compose import compose
from .execute import run_notebook
from .feedback import feedback_html
from .judge import CellVerdict, judge_cell
from .release import SOLUTIONS_DIR
from .sandbox import Isolation, Limits, detect
from .spec import grading_spec

__all__ = ["autograde", "Lesson", "load_lessons", "grade_one", "read_submission", "CSV_FIELDS"]

CSV_FIELDS = ["student", "notebook", "score", "max_score", "status", "message", "isolation"]
MAX_NOTEBOOK_BYTES = 50_000_000
_STUDENT = re.compile(r"^[A-Za-z0-9_.@+-]{1,100}$")


@dataclass
class Lesson:
    name: str            # "02_bradley_terry_and_dpo_loss"
    source: object       # the source NotebookNode
    spec: list

    @property
    def max_score(self) -> float:
        return sum(c.points for c in self.spec)


def load_lessons(solutions: Path = SOLUTIONS_DIR) -> dict[str, Lesson]:
    lessons = {}
    for path in sorted(Path(solutions).glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        lessons[path.stem] = Lesson(path.stem, nb, grading_spec(nb))
    return lessons


def read_submission(path: Path):
    """``(notebook, None)`` or ``(None, reason)`` — never raises for a bad file."""
    try:
        size = path.stat().st_size
        if size == 0:
            return None, "the file is empty"
        if size > MAX_NOTEBOOK_BYTES:
            return None, f"the file is {size // 2**20} MB, over the {MAX_NOTEBOOK_BYTES // 2**20} MB limit"
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return None, f"not UTF-8 text (byte {exc.start}): save the notebook from Jupyter again"
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON (line {exc.lineno}, column {exc.colno}): was the file edited by hand or truncated?"
    except OSError as exc:
        return None, f"cannot read the file: {exc.strerror}"
    if not isinstance(data, dict) or "cells" not in data and "worksheets" not in data:
        return None, "not a Jupyter notebook (no cells)"
    major = data.get("nbformat")
    if major != 4:
        return None, f"notebook format {major} is not supported: open and save it in a current Jupyter (format 4)"
    try:
        nb = nbformat.reads(text, as_version=4)
        for cell in nb.cells:
            if not isinstance(cell.get("source", ""), (str, list)) or cell.get("cell_type") not in ("code", "markdown", "raw"):
                raise ValueError("a cell without a type or source")
    except Exception as exc:
        return None, f"not a valid notebook ({type(exc).__name__}: {str(exc).splitlines()[0][:150] if str(exc) else ''})"
    return nb, None


class SecretSeeds:
    """Deterministic secret seeds for hidden tests: HMAC(key, student|notebook|grade_id|seed)."""

    def __init__(self, out: Path):
        path = out / ".secret"
        if not path.exists():
            _atomic_write(path, secrets.token_hex(32))
            os.chmod(path, 0o600)
        self.key = path.read_text().strip().encode()

    def for_cell(self, student: str, notebook: str, cell) -> dict[int, int]:
        seeds = {}
        for probe in cell.probes:
            if probe.kind == "exercise" and probe.seed != 0:
                digest = hmac.new(self.key, f"{student}|{notebook}|{cell.grade_id}|{probe.seed}".encode(), hashlib.sha256).digest()
                seeds[probe.seed] = 1000 + int.from_bytes(digest[:4], "big") % 1_000_000
        return seeds


def grade_one(lesson: Lesson, nb, student: str, iso: Isolation, limits: Limits, seeds: SecretSeeds | None,
              scratch: Path) -> dict:
    """Run and judge one submission notebook; returns the result dict (never raises for the submission's sake)."""
    cell_seeds = {c.grade_id: (seeds.for_cell(student, lesson.name, c) if seeds else {}) for c in lesson.spec}
    graded_nb, probe_index = compose(lesson.source, nb, lesson.spec, cell_seeds)
    run = run_notebook(graded_nb, iso, limits, scratch)
    verdicts = []
    for cell in lesson.spec:
        index = probe_index[cell.grade_id]
        ran = index in run.records or _cell_ran(graded_nb.cells[index])
        verdicts.append(judge_cell(cell, run.records.get(index), cell_seeds[cell.grade_id], ran=ran))
    _replace_probe_outputs(graded_nb, probe_index, verdicts, lesson)
    score = sum(v.score for v in verdicts)
    failed = [v for v in verdicts if not v.passed]
    if run.status != "graded":
        message = f"{run.reason}; {sum(v.passed for v in verdicts)} of {len(verdicts)} checks passed before that"
    elif failed:
        message = f"{len(verdicts) - len(failed)} of {len(verdicts)} checks passed; first failure, {failed[0].grade_id}: {failed[0].message}"
    else:
        message = f"all {len(verdicts)} checks passed"
    return {"student": student, "notebook": lesson.name, "score": score, "max_score": lesson.max_score,
            "status": run.status, "message": message[:500], "cells": [v.as_dict() for v in verdicts],
            "seconds": round(run.seconds, 2), "graded_notebook": graded_nb}


def _cell_ran(cell) -> bool:
    return cell.get("execution_count") is not None or bool(cell.get("outputs"))


def _replace_probe_outputs(nb, probe_index: dict, verdicts: list[CellVerdict], lesson: Lesson) -> None:
    """In the graded notebook, show each check cell as the learner knows it, with the grader's verdict."""
    from nbformat.v4 import new_output

    source_cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in lesson.source.cells}
    for verdict in verdicts:
        cell = nb.cells[probe_index[verdict.grade_id]]
        visible = source_cells[verdict.grade_id].source.split("### BEGIN HIDDEN TESTS")[0].rstrip()
        cell.source = visible
        mark = "PASSED" if verdict.passed else "FAILED"
        text = f"[grader] {mark} {verdict.score:g}/{verdict.max_score:g}: {verdict.message}\n"
        cell.outputs = [new_output("stream", name="stdout" if verdict.passed else "stderr", text=text)]


# ------------------------------------------------------------------------------------------
# the run over a folder


def _atomic_write(path: Path, text: str) -> None:
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


def _plan(submissions: Path, lessons: dict[str, Lesson]):
    """Every (student, lesson name or None, path or None, note) to grade, in a stable order."""
    plan = []
    students = sorted(p for p in submissions.iterdir() if p.is_dir() and not p.name.startswith("."))
    files = {d.name: sorted(p for p in d.iterdir() if p.is_file() and p.suffix == ".ipynb" and not p.name.startswith("."))
             for d in students}
    # each file's lesson: its exact name, else the one lesson with its two-digit number (a renamed copy)
    lesson_of = {path: path.stem if path.stem in lessons else _renamed_lesson(path, lessons)
                 for found in files.values() for path in found}
    in_play = {name for name in lesson_of.values() if name}
    for student, found in files.items():
        exact = {p.stem: p for p in found if p.stem in lessons}
        used = set(exact.values())
        for name in sorted(in_play):
            path, note = exact.get(name), ""
            if path is None:
                candidates = [p for p in found if p not in used and lesson_of[p] == name]
                if len(candidates) == 1:
                    path, note = candidates[0], f"graded from {candidates[0].name!r} (renamed; expected {name}.ipynb)"
                    used.add(path)
            plan.append((student, name, path, note))
        for path in found:
            if path not in used:
                plan.append((student, None, path, ""))
    return plan


def _renamed_lesson(path: Path, lessons: dict) -> str | None:
    number = path.name[:2]
    matches = [name for name in lessons if name[:2] == number and number.isdigit()]
    return matches[0] if len(matches) == 1 else None


def _row(result: dict, isolation: str) -> dict:
    return {"student": result["student"], "notebook": result["notebook"], "score": f"{result['score']:g}",
            "max_score": f"{result['max_score']:g}", "status": result["status"], "message": result["message"],
            "isolation": isolation}


def _write_csv(out: Path) -> None:
    rows = []
    for path in sorted((out / "results").glob("*/*.json")):
        try:
            result = json.loads(path.read_text())
            rows.append(result["row"])
        except (OSError, ValueError, KeyError):
            continue
    rows.sort(key=lambda r: (r["student"], r["notebook"]))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    _atomic_write(out / "grades.csv", buffer.getvalue())


def autograde(submissions: Path, out: Path, *, jobs: int = 1, limits: Limits | None = None, force: bool = False,
              sandbox: bool = True, solutions: Path = SOLUTIONS_DIR, gradebook: bool = True,
              log=print) -> int:
    """Grade every submission; returns 0 (the CSV says how each went), 2 for a bad SUBMISSIONS folder."""
    submissions, out = Path(submissions).resolve(), Path(out).resolve()
    limits = limits or Limits()
    if not submissions.is_dir():
        log(f"error: {submissions} is not a folder of <student>/<NN_name>.ipynb submissions")
        return 2
    if out == submissions or submissions in out.parents:
        log("error: OUT must not be inside SUBMISSIONS")
        return 2
    out.mkdir(parents=True, exist_ok=True)
    lessons = load_lessons(solutions)
    iso = detect(want_sandbox=sandbox)
    isolation = iso.summary()
    log(f"isolation: {isolation}")
    if not iso.sandboxed:
        log("warning: submissions will run with weaker isolation than the grader is built for; see the 'isolation' column")
    seeds = SecretSeeds(out)
    scratch = Path(tempfile.mkdtemp(prefix="dpo-grader-"))
    csv_lock = threading.Lock()
    plan = _plan(submissions, lessons)
    todo = []
    for student, name, path, note in plan:
        key = name or (path.stem if path else "?")
        result_path = out / "results" / _safe(student) / f"{_safe(key)}.json"
        if result_path.exists() and not force:
            continue
        todo.append((student, name, path, note, result_path))
    if jobs > 1:   # longest lessons first, so that no job is left alone with a long notebook at the end
        expected = _expected_seconds()
        todo.sort(key=lambda item: -expected.get(item[1] or "", 0.0))
    log(f"{len(plan)} notebooks from {len({p[0] for p in plan})} students; {len(todo)} to grade"
        + (f", {len(plan) - len(todo)} already graded (use --force to grade again)" if len(plan) > len(todo) else ""))

    prepared: list[bool] = []
    preparing = None
    if gradebook and todo:
        # The gradebook's creation is slow and independent of the grades: overlap it with the first notebooks.
        from .gradebook import prepare_gradebook

        def prepare():
            try:
                prepare_gradebook(out, lessons)
                prepared.append(True)
            except Exception:   # update_gradebook below prepares it again and reports the reason
                pass

        preparing = threading.Thread(target=prepare, daemon=True)
        preparing.start()

    def work(item):
        student, name, path, note, result_path = item
        result = _grade_item(student, name, path, note, lessons, iso, limits, seeds, scratch)
        row = _row(result, isolation)
        graded_nb = result.pop("graded_notebook", None)
        if graded_nb is not None:
            try:
                feedback = feedback_html(result, graded_nb)
            except Exception as exc:   # feedback is a courtesy; the grade must not depend on it
                feedback = f"<p>feedback could not be rendered: {type(exc).__name__}</p>"
            _atomic_write(out / "feedback" / _safe(student) / f"{_safe(result['notebook'])}.html", feedback)
            _atomic_write(out / "autograded" / _safe(student) / "dpo" / f"{_safe(result['notebook'])}.ipynb",
                          nbformat.writes(graded_nb))
        stored = {**result, "row": row}
        _atomic_write(result_path, json.dumps(stored, indent=1))
        with csv_lock:
            _write_csv(out)
        log(f"  {student:<20} {result['notebook']:<36} {row['score']:>5}/{row['max_score']:<5} {result['status']:<12} {result['message'][:80]}")

    try:
        if jobs <= 1:
            for item in todo:
                work(item)
        else:
            with ThreadPoolExecutor(max_workers=jobs) as pool:
                for future in [pool.submit(work, item) for item in todo]:
                    future.result()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    _write_csv(out)
    if preparing is not None:
        preparing.join()
    if gradebook:
        from .gradebook import update_gradebook

        try:
            update_gradebook(out, lessons, prepared=bool(prepared))
        except Exception as exc:
            log(f"warning: the nbgrader gradebook was not updated ({type(exc).__name__}: {str(exc)[:200]}); grades.csv is complete")
    log(f"wrote {out / 'grades.csv'}")
    return 0


def _expected_seconds() -> dict[str, float]:
    """Each lesson's measured run time (``bench/notebook_times.json``), or nothing where it is not shipped."""
    from .publish import TIMES_FILE

    try:
        times = json.loads(TIMES_FILE.read_text())
        return {name: float(entry["seconds"]) for name, entry in times["notebooks"].items()}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.@+-]", "_", name)[:120] or "_"


def _grade_item(student, name, path, note, lessons, iso, limits, seeds, scratch) -> dict:
    if name is None:
        lesson_names = ", ".join(sorted(lessons))
        return {"student": student, "notebook": path.stem, "score": 0, "max_score": 0, "status": "unexpected notebook",
                "message": f"{path.name} is not a lesson of this course (expected names: {lesson_names})", "cells": []}
    lesson = lessons[name]
    empty = {"student": student, "notebook": name, "score": 0, "max_score": lesson.max_score, "cells": []}
    if path is None:
        return {**empty, "status": "missing notebook", "message": f"no {name}.ipynb in the submission"}
    if not _STUDENT.match(student):
        return {**empty, "status": "invalid notebook", "message": "the student folder name has unusual characters"}
    nb, problem = read_submission(path)
    if nb is None:
        return {**empty, "status": "invalid notebook", "message": problem}
    try:
        result = grade_one(lesson, nb, student, iso, limits, seeds, scratch)
    except Exception as exc:   # a bug of the grader must not lose the other students' grades
        return {**empty, "status": "kernel died", "message": f"the grader failed on this notebook ({type(exc).__name__}: {str(exc)[:200]})"}
    if note:
        result["message"] = f"{note}; {result['message']}"[:500]
    return result
