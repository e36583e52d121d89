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

Before it runs a notebook, ``python -m grader check`` also warns about what would cost points at grading without
showing in the verdicts (:func:`hand_in_warnings`), one sentence each with how to fix it: a file name that is not
the lesson's; exercise cells that lost their nbgrader metadata (found only by their cell id or content, or not at
all: :mod:`grader.cell_match`); copied or re-typed exercise cells; and code the grader's kernel reads as tampering
(:func:`grader.tamper_scan.tampering_in`, a static scan of the code: conservative, it names only what the kernel's watch,
:mod:`grader.kernel_probe`, would report, never an honest habit such as ``%autoreload``, ``tqdm``, a tee on
``sys.stdout`` or a cell timer of one's own).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from .course import cells_for_variant, load_lessons, read_lessons_json
from .judge import judge_cell
from .result import Status
from .tamper_scan import notebook_names, tampering_in
from .wording import CRASH_LIMIT, clip

__all__ = ["verdict_table", "check_notebooks", "format_table", "hand_in_warnings", "tampering_in"]


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
    from .sandbox import Limits, detect, scratch_root

    lessons = load_lessons()
    iso = detect(want_sandbox=False)
    limits = Limits(cell_timeout=timeout, notebook_timeout=max(timeout, 600.0), memory_mb=4096)
    failed = False
    scratch = scratch_root("dpo-check-")       # short enough for the kernels' sockets, whatever TMPDIR is
    try:
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
            for warning in hand_in_warnings(path, nb, lessons[stem], variant):
                log(f"  ! before you hand it in: {warning}")
            log(f"running {path.name} in a fresh kernel ...")
            result, _ = grade_one(lessons[stem], nb, "you", iso, limits, None, Path(scratch), variant)
            log(format_table(f"{path.name}:", result.cells, result.status, result.message))
            failed = failed or result.score < result.max_score or result.status != Status.GRADED
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 1 if failed else 0


# -- before handing in: what the grader would read differently from the learner's own run -----------------------

def hand_in_warnings(path: Path, nb, lesson, variant: str | None = None) -> list[str]:
    """What would cost points at grading in the notebook ``nb`` (read from ``path``) of ``lesson``, without
    showing in its verdicts: one sentence each, saying how to fix it. Empty for a notebook handed in as released."""
    from .cell_match import match_cells, normalised, release_text

    warnings = []
    if path.stem != lesson.name:
        warnings.append(f"the file is named {path.name!r}, not {lesson.name}.ipynb: rename it to {lesson.name}.ipynb, "
                        f"the name the grader looks for in your folder")
    graded = lesson.for_variant((variant or "dpo") if lesson.variants else None)
    probed = {name for cell in graded.spec for p in cell.probes for name in p.candidates}
    matching = match_cells(lesson.source, nb)
    founds = matching.relevant(probed)

    def names(found) -> str:
        return " and ".join(found.names)

    lost = [f for f in founds if f.how in ("cell id", "content") and not f.unsure]
    if lost:
        many = len(lost) > 1
        by = ("their cell ids" if many else "its cell id") if all(f.how == "cell id" for f in lost) else \
            ("the functions they define" if many else "the function it defines")
        warnings.append(f"the exercise cell{'s' if many else ''} of {' and '.join(names(f) for f in lost)} lost "
                        f"{'their' if many else 'its'} nbgrader metadata (the notebook was re-made in another editor, or "
                        f"the cell re-created): the grader finds {'them' if many else 'it'} only by {by}; to be safe, paste "
                        f"your code into the exercise cells of a fresh copy of the released notebook")
    for f in founds:
        if f.how == "missing":
            warnings.append(f"the grader cannot find your {names(f)}: no cell has the nbgrader metadata of its exercise cell "
                            f"or defines {names(f)}, so the released stub would be graded — define {names(f)} in the "
                            f"exercise cell of the released notebook")
        elif f.unsure:
            warnings.append(f"different cells define {names(f)} and none comes before its check cell: the grader would take "
                            f"the last one — keep one {names(f)}, in its exercise cell, above its check cell")
        elif f.how == "content" and f.others:
            warnings.append(f"more than one cell defines {names(f)}, with different code: the grader takes the last one "
                            f"before its check cell — delete the copies you do not mean to hand in")
        elif f.how == "metadata" and f.others:
            k = matching.source_of[f.index]
            copies = [i for i, s in enumerate(matching.source_of) if s == k and i != f.index]
            first = normalised(nb.cells[f.index].get("source", ""))
            if any(normalised(nb.cells[i].get("source", "")) != first for i in copies):
                warnings.append(f"{len(copies) + 1} cells carry the nbgrader metadata of the exercise cell of {names(f)} "
                                f"(a copied cell keeps it): the grader grades the first of them only — put your final "
                                f"{names(f)} there and delete the copies")
        if f.how == "metadata":   # the answer typed into a cell of its own above the exercise cell, left as released
            k = matching.source_of[f.index]
            stub = normalised(nb.cells[f.index].get("source", "")) == normalised(release_text(lesson.source.cells[k].source))
            above = [i for i, anchor in _anchors(matching, lesson.source) if anchor is None or anchor < k
                     if nb.cells[i].get("cell_type") == "code" and set(f.names) & _defines(nb.cells[i])]
            if stub and above:
                warnings.append(f"your {names(f)} is in a cell of your own (cell {above[-1] + 1}) above its exercise cell, "
                                f"which still holds the released stub: that stub runs after your cell and undoes it — "
                                f"move your code into the exercise cell")
    imports = notebook_names(nb.cells)
    for index, cell in enumerate(nb.cells):
        if cell.get("cell_type") == "code":
            for what, line in tampering_in(cell.get("source", ""), imports):
                warnings.append(f"cell {index + 1} ({line}) {what}")
    return warnings


def _anchors(matching, source_nb):
    """Each learner's cell of the submission and the source cell it follows in the graded notebook (its index; None:
    the top), as :func:`grader.compose.compose` places it."""
    previous = None
    for i, k in enumerate(matching.source_of):
        if k is None:
            yield i, previous
        elif source_nb.cells[k].get("metadata", {}).get("nbgrader", {}).get("grade_id") is not None:
            previous = k


def _defines(cell) -> set[str]:
    from .cell_match import defined_names

    return defined_names(cell.get("source", ""))
