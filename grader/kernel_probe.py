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

*Tampering* (:func:`__dpo_grader_tampering_watch`). **The rule: tampering is the grader's machinery removed or
replaced, never something added beside it.** What the probe runs through, and so what is watched:

* the module attributes its code looks up at call time: ``builtins`` (but ``input``/``raw_input``, which
  ipykernel swaps for every execution request, and the ``_``-names IPython sets), ``json`` and every module
  of ``rlhf_core.checks`` — an attribute replaced or deleted (``rlhf_core.checks.probe`` included, although
  the preamble holds its own: replacing a check's function is an attempt, and says so);
* the exercises' cases (``Exercise.cases``), which the probe calls for its inputs;
* the display publisher the record goes through (:func:`__dpo_grader_setup` holds its own ``publish``, so
  ``shell.display_pub`` swapped for another — ``%%capture`` does so for a cell — does not reach the record),
  where only what that held method looks up can change the message: its ``session`` and the session's
  ``send``/``msg`` replaced, or an ipykernel display hook (``display_pub.register_hook``) added — the one
  *addition* that counts, because such a hook receives every display message, the record among them, and
  may rewrite or drop it. No extension of the course's environment registers one (ipywidgets' ``Output``
  and tqdm's bars route by message header instead);
* IPython's event callbacks that were there at the snapshot (IPython's own, the kernel's): one *removed*
  (or replaced: gone, with another in its place) is the kernel's machinery taken out before the probe runs,
  which no extension does to callbacks it did not register. matplotlib's own (``benign``) are exempt:
  switching backends (``%matplotlib agg``, ``widget``) removes them.

**What is not tampering, and why.** An *added* event callback (``%autoreload``, ``ipython-autotime``, a
home-made cell timer) cannot fake a grade: the probe cell publishes its record from inside the cell and the
grader reads it as it arrives, so a ``post_execute``/``post_run_cell`` callback comes too late to change it
(one that publishes a second record makes the judge score the check 0: "more than one result"); a
``pre_execute``/``pre_run_cell`` callback runs before the probe, and whatever it patches in the watched
modules is caught by the attribute snapshot itself, while a function it puts in the learner's namespace is the
learner's code, probed (and withheld from, and borrowed-checked) like any answer. ``sys.stdout``,
``sys.stderr`` and ``sys.displayhook`` are not watched: the record is a display message, not a stream write
nor a cell's value, so a stream replaced for good (a tee to a log file, ``colorama``) or for a while
(``%%capture``, ``redirect_stdout``) neither hides nor fakes it; IPython even puts ``sys.displayhook`` back at
every cell, and a hook swapped for good in IPython's display trap runs after the record was sent.

**Limits.** This is evidence against patching, not a wall: code in the kernel can also rewrite the probe cell
before it runs (an input or AST transformer) or forge the outgoing message below the session. What bounds any
forged record is the judge, outside the kernel: it regenerates each case from the secret seed and compares the
outputs with the real reference, so a forged record must carry the right answers.
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


def __dpo_grader_same(a, b, type=type):
    """``a is b``; a bound method is made anew at each lookup, so two compare by the function and object they bind.
    (The builtins it uses are held as defaults when the preamble runs, as the watch holds its own.)"""
    import types

    if a is b:
        return True
    return (type(a) is types.MethodType and type(b) is types.MethodType
            and a.__func__ is b.__func__ and a.__self__ is b.__self__)


def __dpo_grader_named(obj, type=type, isinstance=isinstance):
    """``"module.qualname"`` of a function, a method or (for any other object) its type, for a tampering line."""
    import types

    try:
        function = obj.__func__ if type(obj) is types.MethodType else obj
        if not isinstance(function, (types.FunctionType, types.BuiltinFunctionType, type)):
            function = type(obj)
        return f"{function.__module__}.{function.__qualname__}"[:120]
    except Exception:
        return type(obj).__qualname__[:120]


def __dpo_grader_tampering_watch(shell, benign, exercises):
    """A snapshot of what the probe cells run through, and the function that lists what was removed or replaced
    since: each entry names the change (the attribute, the callback by qualified name, what replaced it).
    The rule it applies and what it watches: the module docstring, *Tampering*."""
    import builtins
    import json
    import sys

    # held now, like the probe's own functions: a builtins.vars (or any, type, …) replaced later cannot hide a change
    any, getattr, list, type, vars = builtins.any, builtins.getattr, builtins.list, builtins.type, builtins.vars
    missing = object()

    same, named = __dpo_grader_same, __dpo_grader_named   # held: the top-level copies are deleted after setup

    watched = {"builtins": builtins, "json": json, **{name: module for name, module in sorted(sys.modules.items())
                                                      if name == "rlhf_core.checks" or name.startswith("rlhf_core.checks.")}}
    snapshot = {name: dict(vars(module)) for name, module in watched.items()}
    cases = {name: exercise.cases for name, exercise in exercises.items()}
    callbacks = {event: [c for c in listed if not any(same(c, b) for b in benign)]
                 for event, listed in shell.events.callbacks.items()}
    publisher = shell.display_pub
    session = getattr(publisher, "session", None)
    channel = {part: getattr(session, part, None) for part in ("send", "msg")}
    display_hooks = list(getattr(publisher, "_hooks", None) or [])

    def attributes(found):
        for name, module in watched.items():
            now = vars(module)
            for key, value in snapshot[name].items():
                if name == "builtins" and (key.startswith("_") or key in ("input", "raw_input")):
                    continue   # ipykernel swaps input() for every execution request; IPython sets _, __, …
                current = now.get(key, missing)
                if current is missing:
                    found.append(f"{name}.{key} was deleted")
                elif current is not value:
                    found.append(f"{name}.{key} was replaced by {named(current)}")
        for name, exercise in exercises.items():
            if exercise.cases is not cases[name]:
                found.append(f"the inputs of check_{name} (Exercise.cases) were replaced by {named(exercise.cases)}")

    def events(found):
        now = shell.events.callbacks
        for event, before in callbacks.items():
            listed = list(now.get(event, []))
            added = [c for c in listed if not any(same(c, b) for b in before) and not any(same(c, b) for b in benign)]
            for callback in before:
                if not any(same(callback, c) for c in listed):
                    instead = f", replaced by {', '.join(named(c) for c in added)}" if added else ""
                    found.append(f"IPython's '{event}' callback {named(callback)} was removed{instead}")

    def publishing(found):
        if getattr(publisher, "session", None) is not session:
            found.append(f"the display publisher's session was replaced by {named(getattr(publisher, 'session', None))}")
        elif session is not None:
            for part, before in channel.items():
                current = getattr(session, part, None)
                if not same(current, before):
                    found.append(f"the display publisher's session.{part} was replaced by {named(current)}")
        for hook in list(getattr(publisher, "_hooks", None) or []):
            if not any(hook is h for h in display_hooks):
                found.append(f"a display hook {named(hook)} was added to the publisher the grader's record goes through")

    def tampering():
        found = []
        for part in (attributes, events, publishing):
            try:
                part(found)
            except Exception as exc:   # what the snapshot is compared with was broken beyond reading
                found.append(f"the grader could not read back what it watches ({part.__name__}: {type(exc).__name__})")
        return found[:20]

    return tampering


def __dpo_grader_setup(settings_json):
    """Keep the checks' own probe functions, the display publisher's ``publish`` and the tampering watch; returns
    the probe cells' function ``run(grade_id, probes)``, which measures each probe and publishes the cell's record
    through that held ``publish`` (a ``shell.display_pub`` swapped later, as ``%%capture`` does for a cell, does not
    reach the record)."""
    import json
    import os

    from IPython import get_ipython

    import rlhf_core.checks as checks

    settings = json.loads(settings_json)
    os.environ.update(settings["environ"])
    shell = get_ipython()
    benign = __dpo_grader_figure_hooks(shell, settings["draw_figures"], settings["figure_line"])
    probe, measure, exercises = checks.probe, checks.probe_sanity, dict(checks.EXERCISES)
    tampering = __dpo_grader_tampering_watch(shell, benign, exercises)
    borrowed = __dpo_grader_borrowed
    dumps, publish, mime, limit = json.dumps, shell.display_pub.publish, settings["record_mime"], settings["crash_limit"]

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
