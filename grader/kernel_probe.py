"""The grader's program inside a graded kernel: the preamble's functions, as the kernel runs them.

The kernel never imports this module (the sandbox shows it no ``grader`` package, and no judging code may run
there): :func:`grader.kernel_side.preamble_source` copies the source of its top-level functions, in order, into
the preamble cell, then calls :func:`__dpo_grader_setup` with the run's settings as one JSON string and deletes
the functions again, so that the learner's namespace keeps only ``__dpo_grader_probe``, the function every probe
cell calls. Hence the rules of this file: only top-level functions, named ``__dpo_grader_…``; every import inside
them; no annotation that is not a builtin (the kernel evaluates them); nothing taken from the grader but the
settings.

The settings (:func:`grader.kernel_side.preamble_settings`): ``record_mime``, the MIME type of a record;
``crash_limit``, the longest crash message recorded; ``draw_figures`` and ``figure_line``, whether matplotlib
figures are drawn, and the line shown for each when they are not; ``environ``, environment variables to set
(lesson 10's drill variant).
"""


def __dpo_grader_borrowed(candidate, function):
    """``"name=module.function"`` when ``function`` is one of rlhf_core's own functions, else None (the rule the
    in-notebook self-check, :func:`grader.selfcheck.verdict_table`, applies too)."""
    if str(getattr(function, "__module__", "") or "").startswith("rlhf_core"):
        return f"{candidate}={getattr(function, '__module__', '')}.{getattr(function, '__name__', '?')}"[:200]
    return None


def __dpo_grader_figure_hooks(shell, draw_figures, figure_line):
    """matplotlib's own IPython hooks, registered lazily on the first figure (or by ``%matplotlib``): the hooks
    tampering is not. Unless ``draw_figures``, a figure is shown as ``figure_line``, never rasterised."""
    benign = []
    try:
        import matplotlib.pyplot as plt

        plt.close(plt.figure())
        benign.append(plt._draw_all_if_interactive)
        import matplotlib_inline.backend_inline as inline

        benign.append(inline.flush_figures)
        if not draw_figures:   # the grader judges numbers: a figure is shown as one line, never rasterised
            from matplotlib.figure import Figure

            for kind, formatter in shell.display_formatter.formatters.items():
                if kind == "text/plain":
                    formatter.for_type(Figure, lambda fig, p, cycle: p.text(figure_line))
                else:
                    formatter.for_type(Figure, lambda fig: None)
    except Exception:
        pass
    return benign


def __dpo_grader_tampering_watch(shell, benign, exercises):
    """A snapshot of everything a submission could patch to fake a result — ``builtins``, ``json``, every module of
    ``rlhf_core.checks``, the exercises' inputs, IPython's event hooks (but ``benign``), the output streams — and
    the function that lists what changed since."""
    import builtins
    import json
    import sys

    watched = {"builtins": builtins, "json": json, **{name: module for name, module in sorted(sys.modules.items())
                                                      if name == "rlhf_core.checks" or name.startswith("rlhf_core.checks.")}}
    snapshot = {name: dict(vars(module)) for name, module in watched.items()}
    cases = {name: exercise.cases for name, exercise in exercises.items()}
    missing = object()

    def own(callbacks):
        return [c for c in callbacks if not any(c is b for b in benign)]

    hooks = {event: own(callbacks) for event, callbacks in shell.events.callbacks.items()}
    streams = (sys.stdout, sys.stderr, sys.displayhook)

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

    return tampering


def __dpo_grader_setup(settings_json):
    """Keep the checks' own probe functions and the tampering watch; returns the probe cells' function
    ``run(grade_id, probes)``, which measures each probe and publishes the cell's record."""
    import json
    import os

    from IPython import get_ipython
    from IPython.display import publish_display_data

    import rlhf_core.checks as checks

    settings = json.loads(settings_json)
    os.environ.update(settings["environ"])
    shell = get_ipython()
    benign = __dpo_grader_figure_hooks(shell, settings["draw_figures"], settings["figure_line"])
    probe, measure, exercises = checks.probe, checks.probe_sanity, dict(checks.EXERCISES)
    tampering = __dpo_grader_tampering_watch(shell, benign, exercises)
    borrowed = __dpo_grader_borrowed
    dumps, publish, mime, limit = json.dumps, publish_display_data, settings["record_mime"], settings["crash_limit"]

    def clip(text):   # as grader.wording.clip: on one line, cut between words, never inside one
        text = " ".join(str(text).split())
        if len(text) <= limit:
            return text
        cut = text[:limit - 1]
        return (cut.rsplit(" ", 1)[0] if " " in cut else cut).rstrip(" ,;:") + "…"

    def run(grade_id, probes):
        namespace = shell.user_ns
        record = {"grade_id": grade_id, "tampering": tampering(), "probes": []}
        for kind, name, candidates, seed in probes:
            absent = [c for c in candidates if c not in namespace]
            if absent:
                record["probes"].append({"absent": absent})
                continue
            functions = [namespace[c] for c in candidates]
            lent = [b for b in (borrowed(c, f) for c, f in zip(candidates, functions)) if b]
            if lent:   # the library's own function standing in for the learner's: nothing to measure
                record["probes"].append({"borrowed": lent[0]})
                continue
            try:
                if kind == "exercise":
                    record["probes"].append(probe(exercises[name], functions[0], seed))
                else:
                    record["probes"].append(measure(name, *functions))
            except Exception as exc:
                record["probes"].append({"crashed": clip(f"{type(exc).__name__}: {exc}")})
        publish({mime: dumps(record, allow_nan=True)}, metadata={})
        print(f"[recorded for grading: {grade_id}]")

    return run
