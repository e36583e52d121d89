"""False-positive and detection rates of ``grader similarity`` on the synthetic class, per exercise.

The class: ``tests/similarity_class.py`` — 20 independently written answers per exercise (correct ones and
the common mistakes, in different styles) for ``dpo_loss``, ``implicit_reward`` (lesson 02),
``toy_dpo_step`` (03), ``get_logps`` (04), ``rms_norm``, ``swiglu``, ``apply_rope`` (05) and ``sft_step``
(06), and 24 planted copies (renamed, reordered, padded with comments, blank lines and dead code, or all
three). Every pair of independent answers is a negative; every (copy, original) pair a positive; a
negative is also any independent answer shown against a library file.

For each exercise: the fingerprints of its reference body (what decides whether it is scored), the
largest score and shared count among independent pairs, the smallest among planted copies, and the rates
at the shipped rule (score ≥ threshold and ≥ MIN_SHARED shared fingerprints, or ≥ MIN_UNIQUE_STATEMENTS statements no
other cell has); then the same for whole
lessons (a student's exercise cells of a lesson concatenated), and for one order of statements (every body's
statements sorted by their shape, names abstracted, before fingerprinting: a reordered copy then reads like its
original), the two alternatives measured against the shipped rule.

    .venv/bin/python bench/similarity_rates.py            # a table (about 15 s)
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import similarity_class as C  # noqa: E402
from grader import similarity as sim  # noqa: E402
from grader.course import SOLUTIONS_DIR  # noqa: E402
from grader.fingerprints import statement_shape  # noqa: E402
from rlhf_core.paths import LIBRARY_DIR  # noqa: E402


def _pairs_of(exercise: str, cells: dict[str, str], lesson: str, library, reference: str, stub: str):
    ex = sim.exercise_code(exercise, stub, reference)
    unfolded = {s: sim.unfold(c)[0] for s, c in cells.items()}
    rows, below = sim.compare(cells, ex, lesson, library, threshold=0.0, unfolded=unfolded, min_shared=0, scored=True, near=None)
    return ex, rows + below


def _inputs(lesson: str):
    return sim._lesson_inputs(lesson, SOLUTIONS_DIR / f"{lesson}.ipynb", sim.NOTEBOOKS_DIR)


def measure(threshold: float = sim.DEFAULT_THRESHOLD, min_shared: int = sim.MIN_SHARED) -> dict:
    """``{exercise: {...}}`` and ``{lesson: {...}}`` of the synthetic class: sizes, extremes and rates."""
    library = sim.library_fingerprints(LIBRARY_DIR)
    table = C.lesson_cells()
    planted = C.planted_pairs()
    shown = lambda r: r.score is not None and ((r.score >= threshold and (r.shared or 0) >= min_shared)
                                               or (r.unique or 0) >= sim.MIN_UNIQUE_STATEMENTS)
    independent = lambda r: r.kind == sim.STUDENT and all(s.startswith("s") for s in (r.student_a, r.student_b))
    results = {}
    for exercise, lesson in C.LESSON_OF.items():
        _, stub, reference = _inputs(lesson)
        cells = {s: found[exercise] for s, found in table[lesson].items() if exercise in found}
        ex, rows = _pairs_of(exercise, cells, lesson, library, reference[exercise], stub[exercise])
        negatives = [r for r in rows if independent(r)]
        n_negative = len(C.ANSWERS[exercise]) * (len(C.ANSWERS[exercise]) - 1) // 2
        library_fp = [r for r in rows if r.kind in (sim.LIBRARY, sim.LIBRARY_EXEC) and r.student_a.startswith("s") and shown(r)]
        positives = {frozenset((r.student_a, r.student_b)): r for r in rows
                     if r.kind == sim.STUDENT and (exercise, frozenset((r.student_a, r.student_b))) in planted}
        wanted = [pair for ex_name, pair in planted if ex_name == exercise]
        results[exercise] = {
            "lesson": lesson, "reference fingerprints": ex.size, "scored": ex.scored,
            "independent pairs": n_negative, "copies": len(wanted),
            "max independent score": max((r.score for r in negatives), default=0.0),
            "max independent shared": max((r.shared for r in negatives), default=0),
            "max independent unique": max((r.unique or 0 for r in negatives), default=0),
            "min copy unique": min((positives[p].unique or 0 if p in positives else 0 for p in wanted), default=None),
            "max copy unique": max((positives[p].unique or 0 if p in positives else 0 for p in wanted), default=None),
            # the copies the fingerprints alone would not show: [(copier, score, statements no other cell has)]
            "by statements alone": sorted((r.student_a if r.student_a.startswith("copy") else r.student_b, round(float(r.score), 2), r.unique)
                                          for p, r in positives.items() if p in wanted and shown(r)
                                          and not (r.score >= threshold and r.shared >= min_shared)),
            "min copy score": min((positives[p].score if p in positives else 0.0 for p in wanted), default=None),
            "min copy shared": min((positives[p].shared if p in positives else 0 for p in wanted), default=None),
            "false positives": sum(shown(r) for r in negatives) if ex.scored else 0,
            "false positives were it scored": sum(shown(r) for r in negatives), "library false positives": len(library_fp),
            "detected": sum(p in positives and shown(positives[p]) for p in wanted) if ex.scored else 0,
            "detected were it scored": sum(p in positives and shown(positives[p]) for p in wanted),
        }
    return results


def measure_lessons(threshold: float = sim.DEFAULT_THRESHOLD, min_shared: int = sim.MIN_SHARED) -> dict:
    """The alternative: a student's whole lesson (exercise cells concatenated, the stub where none was
    handed in) as one document, the expected code of all its exercises as expected code, the same score,
    idiom rule and row rule."""
    import numpy as np

    library = sim.library_fingerprints(LIBRARY_DIR)
    table = C.lesson_cells()
    planted = {(C.LESSON_OF[e], pair) for e, pair in C.planted_pairs()}
    results = {}
    for lesson, students in table.items():
        ids, stub, reference = _inputs(lesson)
        parts = [sim.exercise_code(g, stub[g], reference[g]) for g in ids]
        whole = sim.ExerciseCode(lesson, np.unique(np.concatenate([p.boiler for p in parts])),
                              np.unique(np.concatenate([p.stub_ref for p in parts])), (), {}, True, sum(p.size for p in parts))
        docs = {s: "\n\n".join(cells.get(g, stub[g]) for g in ids) for s, cells in students.items()}
        rows, below = sim.compare(docs, whole, lesson, library, threshold=0.0, min_shared=0, scored=True, near=None)
        pairs = [r for r in rows + below if r.kind == sim.STUDENT]
        ok = lambda r: r.score >= threshold and r.shared >= min_shared
        neg = [r for r in pairs if r.student_a.startswith("s") and r.student_b.startswith("s")]
        found = {frozenset((r.student_a, r.student_b)) for r in pairs if ok(r)}
        wanted = [pair for les, pair in planted if les == lesson]
        results[lesson] = {"independent pairs with a shared fingerprint": len(neg), "copies": len(wanted),
                           "max independent score": max((r.score for r in neg), default=0.0),
                           "false positives": sum(map(ok, neg)), "detected": sum(p in found for p in wanted)}
    return results


class _OneOrder(ast.NodeTransformer):
    """Every statement list below the module's top level sorted by shape (a docstring first, a last ``return`` last)."""

    def generic_visit(self, node):
        super().generic_visit(node)
        for name in ("body", "orelse", "finalbody"):
            body = getattr(node, name, None)
            if isinstance(node, ast.Module) or not isinstance(body, list) or not all(isinstance(x, ast.stmt) for x in body):
                continue
            head = body[:1] if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) else []
            tail = body[-1:] if len(body) > len(head) and isinstance(body[-1], ast.Return) else []
            setattr(node, name, head + sorted(body[len(head):len(body) - len(tail)], key=statement_shape) + tail)
        return node


def in_one_order(code: str) -> str:
    try:
        return ast.unparse(_OneOrder().visit(ast.parse(code)))
    except (SyntaxError, ValueError):
        return code


def measure_one_order(threshold: float = sim.DEFAULT_THRESHOLD, min_shared: int = sim.MIN_SHARED) -> dict:
    """The alternative: every cell, the expected code and the library in one order of statements
    (:func:`in_one_order`), then the shipped score and rules; ``{exercise: {...}}`` with the independent pairs
    shown (``[(a, b, score, shared)]``) and the copies found."""
    from grader import fingerprints as fp

    library = [(p.name, fp.fingerprint(p.name, in_one_order(p.read_text()))) for p in fp.library_files(LIBRARY_DIR)]
    table, planted = C.lesson_cells(), C.planted_pairs()
    shown = lambda r: r.score >= threshold and r.shared >= min_shared
    results = {}
    for exercise, lesson in C.LESSON_OF.items():
        _, stub, reference = _inputs(lesson)
        ex = fp.exercise_code(exercise, stub[exercise], reference[exercise], view=in_one_order)
        cells = {s: in_one_order(found[exercise]) for s, found in table[lesson].items() if exercise in found}
        rows, below = sim.compare(cells, ex, lesson, library, threshold=0.0, min_shared=0, scored=True, near=None)
        pairs = {frozenset((r.student_a, r.student_b)): r for r in rows + below if r.kind == sim.STUDENT}
        wanted = [pair for name, pair in planted if name == exercise]
        results[exercise] = {"scored": ex.scored, "copies": len(wanted),
                             "detected": sum(p in pairs and shown(pairs[p]) for p in wanted),
                             "independent shown": sorted((*sorted(p), round(float(r.score), 2), r.shared)
                                                         for p, r in pairs.items() if all(s.startswith("s") for s in p) and shown(r))}
    return results


def main() -> None:
    per_exercise = measure()
    print(f"rule: score ≥ {sim.DEFAULT_THRESHOLD} and ≥ {sim.MIN_SHARED} shared fingerprints, or ≥ {sim.MIN_UNIQUE_STATEMENTS} "
          f"statements no other cell has; an exercise is scored when its "
          f"reference body has ≥ {sim.MIN_EXERCISE_FINGERPRINTS} fingerprints (k = {sim.NOISE_T})")
    print(f"{'exercise':<16}{'ref fp':>7}{'scored':>7}{'pairs':>6}{'max ind':>8}{'(shared)':>9}{'(unique)':>9}{'FP':>4}{'lib FP':>7}"
          f"{'copies':>7}{'min copy':>9}{'(shared)':>9}{'(unique)':>9}{'found':>6}")
    print(f"(unique: statements two cells share and no other has, a row at ≥ {sim.MIN_UNIQUE_STATEMENTS}; FP and found: as if "
          "every exercise were scored; an exercise not scored shows no pair at all)")
    for name, r in per_exercise.items():
        print(f"{name:<16}{r['reference fingerprints']:>7}{'yes' if r['scored'] else 'no':>7}{r['independent pairs']:>6}"
              f"{r['max independent score']:>8.2f}{r['max independent shared']:>9}{r['max independent unique']:>9}"
              f"{r['false positives were it scored']:>4}{r['library false positives']:>7}{r['copies']:>7}{r['min copy score']:>9.2f}"
              f"{r['min copy shared']:>9}{r['min copy unique']:>9}{r['detected were it scored']:>6}")
    print("\nwhole lessons (exercise cells concatenated):")
    for lesson, r in measure_lessons().items():
        print(f"{lesson:<32} pairs sharing any {r['independent pairs with a shared fingerprint']:>4}  max independent {r['max independent score']:.2f}  "
              f"FP {r['false positives']:>3}  copies {r['detected']}/{r['copies']}")
    print("\none order of statements (each body sorted by shape before fingerprinting):")
    for name, r in measure_one_order().items():
        print(f"{name:<16}{'scored' if r['scored'] else 'not scored':<12} copies {r['detected']}/{r['copies']}  "
              f"independent pairs shown {len(r['independent shown'])} {r['independent shown'] or ''}")
    if "--json" in sys.argv:
        print(json.dumps(per_exercise, indent=1))


if __name__ == "__main__":
    main()
