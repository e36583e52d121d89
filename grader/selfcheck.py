"""The learner's self-check: the autograder's verdict table, without a gradebook or a sandbox.

* ``python -m grader check NOTEBOOK…`` runs each notebook in a fresh kernel, exactly as the
  autograder composes it (your answers, the course's check cells including the hidden tests), and
  prints per check: pass/fail, points and the check's message. Exit code 1 if any check fails.
* ``from grader.selfcheck import verdict_table; verdict_table()`` in a running notebook (Colab
  included) runs the same checks on the functions defined in the notebook and prints the same table.
  It needs only the installed package: the checks of each lesson ship as ``grader/lessons.json``,
  written by ``python -m grader release`` (:mod:`grader.course`).

Both withhold the lesson's references as the grader does (:mod:`grader.withheld`): an answer that
calls rlhf_core's version of its own exercise fails here as it fails there.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from .course import cells_for_variant, load_lessons, read_lessons_json
from .judge import judge_cell
from .result import Status
from .wording import CRASH_LIMIT, clip

__all__ = ["verdict_table", "check_notebooks", "format_table"]


def format_table(title: str, verdicts: list, status: Status | str = "", reason: str = "") -> str:
    """The verdict table: one line per check, then the total."""
    score = sum(v.score for v in verdicts)
    total = sum(v.max_score for v in verdicts)
    lines = [title]
    if status and status != Status.GRADED:
        lines.append(f"  ! {status}: {reason}")
    width = max([len(v.grade_id) for v in verdicts] + [5])
    for v in verdicts:
        mark = "✓ pass" if v.passed else "✗ FAIL"
        lines.append(f"  {v.grade_id:<{width}}  {mark}  {v.score:g}/{v.max_score:g}  {v.message}")
    lines.append(f"  {'total':<{width}}  {score:g}/{total:g} points" + ("" if score == total else "  — fix the ✗ lines, top first"))
    return "\n".join(lines)


def _lesson_of(namespace: dict, lessons: dict) -> str:
    seed = namespace.get("SEED")
    for name in lessons:
        if isinstance(seed, int) and int(name[:2]) == seed:
            return name
    raise ValueError("cannot tell which lesson this is (run the notebook's setup cell first, or pass lesson='02_...')")


def _drill_variant(namespace: dict) -> str | None:
    """Lesson 10's variant in a learner's kernel: the running drill's, else ``$RLHF_DRILL_VARIANT`` (None: DPO)."""
    from rlhf_core.course.drill import VARIANT_ENV, Drill

    drill = namespace.get("drill")
    return drill.variant.key if isinstance(drill, Drill) else os.environ.get(VARIANT_ENV)


def verdict_table(namespace: dict | None = None, lesson: str | None = None, quiet: bool = False):
    """Run every check of this lesson on the functions in ``namespace`` (default: the notebook's)
    and print the verdict table; returns the list of verdicts.

    While the checks run, this lesson's references are withheld as in the grading kernel
    (:func:`grader.withheld.withheld_in_process`): a function that calls rlhf_core's version of its
    exercise — however reached, a copy of it or its source exec'd included — gets the grader's verdict
    for that. ``python -m grader check`` runs the notebook exactly as the grader does."""
    from rlhf_core.checks import EXERCISES, probe, probe_sanity

    from .kernel_side import borrowed
    from .withheld import withheld_in_process

    if namespace is None:
        from IPython import get_ipython

        namespace = get_ipython().user_ns
    lessons = read_lessons_json()
    name = lesson or _lesson_of(namespace, lessons)
    records = []
    with withheld_in_process(name, lessons[name], namespace) as watch:
        for cell in cells_for_variant(lessons[name], _drill_variant(namespace)):
            # the record a probe cell would publish from the grader's kernel, judged below by the same judge_cell
            record = {"grade_id": cell.grade_id, "tampering": [], "probes": []}
            for p in cell.probes:
                absent = [c for c in p.candidates if c not in namespace]
                lent = [b for b in (borrowed(c, namespace[c]) for c in p.candidates if c in namespace) if b]
                watch.clear()
                try:
                    if absent:
                        got = {"absent": absent}
                    elif lent:
                        got = {"borrowed": lent[0]}
                    elif p.kind == "exercise":
                        got = probe(EXERCISES[p.name], namespace[p.candidates[0]], p.seed)
                    else:
                        got = probe_sanity(p.name, *(namespace[c] for c in p.candidates))
                except Exception as exc:   # as the grader's probe cell records it
                    got = {"crashed": clip(f"{type(exc).__name__}: {exc}", CRASH_LIMIT)}
                if watch.reached:    # the grader's kernel has no such code: there the call would have raised
                    got = {"crashed": f"WithheldReference: {watch.message()}"}
                record["probes"].append(got)
            records.append((cell, record))
    verdicts = [judge_cell(cell, [json.dumps(record, allow_nan=True)], {}) for cell, record in records]
    if not quiet:
        print(format_table(f"self-check of {name} (the autograder's checks, hidden tests included):", verdicts))
    return verdicts


def check_notebooks(paths: list[Path], timeout: float = 300.0, log=print, variant: str | None = None) -> int:
    """``python -m grader check``: run each notebook in a fresh kernel and print its verdict table. ``variant``
    (default ``$RLHF_DRILL_VARIANT``, else DPO) is lesson 10's drill variant, graded as the autograder would."""
    from rlhf_core.course.drill import VARIANT_ENV

    variant = variant or os.environ.get(VARIANT_ENV)
    from .grading import grade_one, read_submission  # here, so that verdict_table() needs no nbclient
    from .sandbox import Limits, detect

    lessons = load_lessons()
    iso = detect(want_sandbox=False)
    limits = Limits(cell_timeout=timeout, notebook_timeout=max(timeout, 600.0), memory_mb=4096)
    failed = False
    with tempfile.TemporaryDirectory(prefix="dpo-check-") as scratch:
        for path in map(Path, paths):
            stem = path.stem if path.stem in lessons else next((n for n in lessons if n[:2] == path.name[:2]), None)
            if stem is None:
                log(f"{path}: not a lesson of this course (expected a name like {next(iter(lessons))}.ipynb)")
                failed = True
                continue
            nb, problem = read_submission(path)
            if nb is None:
                log(f"{path}: {problem}")
                failed = True
                continue
            log(f"running {path.name} in a fresh kernel ...")
            result, _ = grade_one(lessons[stem], nb, "you", iso, limits, None, Path(scratch), variant)
            log(format_table(f"{path.name}:", result.cells, result.status, result.message))
            failed = failed or result.score < result.max_score or result.status != Status.GRADED
    return 1 if failed else 0
