"""The code the grader adds to a submission's notebook: a preamble cell and one probe cell per check.

The *preamble* runs first, before any submission code. It keeps its own references to the library's
probe functions and to the display publisher's ``publish``, and takes a snapshot of what the probes run
through (``builtins``, ``json``, every module of the ``rlhf_core.checks`` package, the exercises' cases,
IPython's event callbacks, the publisher's session and display hooks): tampering is any of it removed or
replaced, never something added beside it (the rule and why:
:func:`grader.kernel_probe.__dpo_grader_tampering_watch`).

A *probe cell* stands where the check cell was. It runs the check's first half — the learner's
function called on the check's inputs, its outputs recorded as plain numbers — and publishes the
record as one display message of its own MIME type. The grader reads that message as it arrives
(later cells cannot change it) and judges the numbers in its own process. A candidate that is one
of rlhf_core's own functions is not measured: the record says so (``borrowed``). The kernel imports
the lesson's withheld copy of the library (:mod:`grader.withheld`), where no reference of the
lesson's exercises works; a probe that reaches one records the ``WithheldReference`` error it
raised. A record also lists any tampering found against the snapshot; the grader then scores the
cell 0. Nothing here decides a score: the kernel only measures.

The preamble's program is a module of its own, :mod:`grader.kernel_probe`, which ruff reads like any other; the
preamble is its functions' source and one call with the run's settings as JSON (:func:`preamble_settings`).
"""

from __future__ import annotations

import ast
import functools
import inspect
import json

from . import kernel_probe
from .spec import GradeCell
from .wording import CRASH_LIMIT

RECORD_MIME = "application/vnd.dpo-grader.record"
FIGURE_LINE = "[figure not drawn: the grader judges numbers, not pictures; your own run of the notebook shows it]"

#: The preamble's rule, for the in-notebook self-check: ``"name=module.function"`` when the candidate is one of
#: rlhf_core's own functions, else None.
borrowed = kernel_probe.__dpo_grader_borrowed


def preamble_settings(figures: bool = False, variant: str | None = None) -> dict:
    """What the kernel program is told (:mod:`grader.kernel_probe`), as JSON: ``environ``, the variables it sets
    (lesson 10's drill ``variant`` in ``RLHF_DRILL_VARIANT``, so that the lesson's cells run that variant)."""
    from rlhf_core.course.drill import VARIANT_ENV

    return {"record_mime": RECORD_MIME, "crash_limit": CRASH_LIMIT, "draw_figures": bool(figures), "figure_line": FIGURE_LINE,
            "environ": {VARIANT_ENV: variant} if variant else {}}


@functools.lru_cache(maxsize=1)
def _program() -> tuple[str, list[str]]:
    """The source of :mod:`grader.kernel_probe`'s top-level functions, in order, and their names."""
    source = inspect.getsource(kernel_probe)
    functions = [node for node in ast.parse(source).body if isinstance(node, ast.FunctionDef)]
    return "\n\n\n".join(ast.get_source_segment(source, node) for node in functions), [node.name for node in functions]


def preamble_source(figures: bool = False, variant: str | None = None) -> str:
    """The first cell of every graded notebook: the kernel program, set up with :func:`preamble_settings`.
    ``figures``: matplotlib figures are drawn (PNG outputs, as in the learner's own run) instead of shown as
    :data:`FIGURE_LINE`; drawing them cost 8–18 % of grading time (``bench/grade_throughput.py``, ``docs/measurements.md``), so the
    grader leaves it out unless asked."""
    program, names = _program()
    return (f"# Added by the grader (not part of the lesson): keeps the checks' own probe functions.\n{program}\n\n\n"
            f"__dpo_grader_probe = __dpo_grader_setup({json.dumps(preamble_settings(figures, variant))!r})\n"
            f"del {', '.join(names)}")


def probe_source(cell: GradeCell, seeds: dict[int, int]) -> str:
    """The code that replaces a check cell: ``seeds`` maps each of the cell's seeds to the one to use."""
    probes = [[p.kind, p.name, list(p.candidates), seeds.get(p.seed, p.seed)] for p in cell.probes]
    return (f"# Check cell {cell.grade_id!r}: measured here, judged by the grader outside this kernel.\n"
            f"__dpo_grader_probe({cell.grade_id!r}, {json.dumps(probes)})")
