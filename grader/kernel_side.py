"""The code the grader adds to a submission's notebook: a preamble cell and one probe cell per check.

The *preamble* runs first, before any submission code. It keeps its own references to the library's
probe functions and takes a snapshot of everything a submission could patch to fake a result
(``builtins``, every module of the ``rlhf_core.checks`` package, IPython's event
hooks, ``sys.stdout``/``stderr``/``displayhook``).

A *probe cell* stands where the check cell was. It runs the check's first half — the learner's
function called on the check's inputs, its outputs recorded as plain numbers — and publishes the
record as one display message of its own MIME type. The grader reads that message as it arrives
(later cells cannot change it) and judges the numbers in its own process. A candidate that is one
of rlhf_core's own functions is not measured: the record says so (``borrowed``). The kernel imports
the lesson's withheld copy of the library (:mod:`grader.withheld`), where no reference of the
lesson's exercises works; a probe that reaches one records the ``WithheldReference`` error it
raised. A record also lists any tampering found against the snapshot; the grader then scores the
cell 0. Nothing here decides a score: the kernel only measures.
"""

from __future__ import annotations

import json

from .spec import GradeCell
from .wording import CRASH_LIMIT

RECORD_MIME = "application/vnd.dpo-grader.record"

PREAMBLE = r'''
# Added by the grader (not part of the lesson): keeps the checks' own probe functions.
def __dpo_grader_setup():
    import builtins, json, sys
    import rlhf_core.checks as checks
    from IPython import get_ipython
    from IPython.display import publish_display_data

    shell = get_ipython()
    watched = {"builtins": builtins, "json": json, **{name: module for name, module in sorted(sys.modules.items())
                                                      if name == "rlhf_core.checks" or name.startswith("rlhf_core.checks.")}}
    snapshot = {name: dict(vars(module)) for name, module in watched.items()}
    benign = []   # matplotlib's own hooks, registered lazily on the first figure (or by %matplotlib)
    try:
        import matplotlib.pyplot as plt
        plt.close(plt.figure())
        benign.append(plt._draw_all_if_interactive)
        import matplotlib_inline.backend_inline as inline
        benign.append(inline.flush_figures)
        if not DRAW_FIGURES:   # the grader judges numbers: a figure is shown as one line, never rasterised
            from matplotlib.figure import Figure
            for kind, formatter in shell.display_formatter.formatters.items():
                if kind == "text/plain":
                    formatter.for_type(Figure, lambda fig, p, cycle: p.text(FIGURE_LINE))
                else:
                    formatter.for_type(Figure, lambda fig: None)
    except Exception:
        pass

    def own(callbacks):
        return [c for c in callbacks if not any(c is b for b in benign)]

    hooks = {event: own(callbacks) for event, callbacks in shell.events.callbacks.items()}
    streams = (sys.stdout, sys.stderr, sys.displayhook)
    probe, measure, exercises = checks.probe, checks.probe_sanity, dict(checks.EXERCISES)
    cases = {name: exercise.cases for name, exercise in exercises.items()}
    dumps, publish, missing = json.dumps, publish_display_data, object()

    def clip(text, limit=CRASH_LIMIT):   # as grader.wording.clip: on one line, cut between words, never inside one
        text = " ".join(str(text).split())
        if len(text) <= limit:
            return text
        cut = text[:limit - 1]
        return (cut.rsplit(" ", 1)[0] if " " in cut else cut).rstrip(" ,;:") + "…"

    def tampering():
        found = []
        for name, module in watched.items():
            now = vars(module)
            for key, value in snapshot[name].items():
                if name == "builtins" and (key.startswith("_") or key in ("input", "raw_input")):
                    continue   # ipykernel swaps input() for every execution request
                if now.get(key, missing) is not value:
                    found.append(f"{name}.{key} was replaced")
        for name, exercise in exercises.items():
            if exercise.cases is not cases[name]:
                found.append(f"the inputs of check_{name} were replaced")
        for event, callbacks in shell.events.callbacks.items():
            if own(callbacks) != hooks.get(event, []):
                found.append(f"IPython '{event}' hooks were changed")
        if (sys.stdout, sys.stderr, sys.displayhook) != streams:
            found.append("sys.stdout, sys.stderr or sys.displayhook was replaced")
        return found[:20]

    def run(grade_id, probes):
        namespace = shell.user_ns
        record = {"grade_id": grade_id, "tampering": tampering(), "probes": []}
        for kind, name, candidates, seed in probes:
            absent = [c for c in candidates if c not in namespace]
            if absent:
                record["probes"].append({"absent": absent})
                continue
            functions = [namespace[c] for c in candidates]
            borrowed = [f"{c}={getattr(f, '__module__', '')}.{getattr(f, '__name__', '?')}" for c, f in zip(candidates, functions)
                        if str(getattr(f, "__module__", "") or "").startswith("rlhf_core")]   # as borrowed() below
            if borrowed:   # the library's own function standing in for the learner's: nothing to measure
                record["probes"].append({"borrowed": borrowed[0][:200]})
                continue
            try:
                if kind == "exercise":
                    record["probes"].append(probe(exercises[name], functions[0], seed))
                else:
                    record["probes"].append(measure(name, *functions))
            except Exception as exc:
                record["probes"].append({"crashed": clip(f"{type(exc).__name__}: {exc}")})
        publish({"application/vnd.dpo-grader.record": dumps(record, allow_nan=True)}, metadata={})
        print(f"[recorded for grading: {grade_id}]")

    return run


__dpo_grader_probe = __dpo_grader_setup()
del __dpo_grader_setup
'''.strip().replace("CRASH_LIMIT", str(CRASH_LIMIT))


def borrowed(candidate: str, function) -> str | None:
    """The preamble's rule, for the in-notebook self-check: ``"name=module.function"`` when the candidate
    is one of rlhf_core's own functions, else None."""
    if str(getattr(function, "__module__", "") or "").startswith("rlhf_core"):
        return f"{candidate}={getattr(function, '__module__', '')}.{getattr(function, '__name__', '?')}"[:200]
    return None


FIGURE_LINE = "[figure not drawn: the grader judges numbers, not pictures; your own run of the notebook shows it]"


def preamble_source(figures: bool = False) -> str:
    """The first cell of every graded notebook. ``figures``: matplotlib figures are drawn (PNG outputs, as in
    the learner's own run) instead of shown as :data:`FIGURE_LINE`; drawing them cost 8–18 % of
    grading time (``bench/grade_throughput.py``, README), so the grader leaves it out unless asked."""
    return PREAMBLE.replace("DRAW_FIGURES", repr(bool(figures))).replace("FIGURE_LINE", repr(FIGURE_LINE))


def probe_source(cell: GradeCell, seeds: dict[int, int]) -> str:
    """The code that replaces a check cell: ``seeds`` maps each of the cell's seeds to the one to use."""
    probes = [[p.kind, p.name, list(p.candidates), seeds.get(p.seed, p.seed)] for p in cell.probes]
    return (f"# Check cell {cell.grade_id!r}: measured here, judged by the grader outside this kernel.\n"
            f"__dpo_grader_probe({cell.grade_id!r}, {json.dumps(probes)})")
