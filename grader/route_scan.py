"""The route scanner: does anything in a lesson's withheld copy of ``rlhf_core`` still compute a withheld answer?

The withheld copy (:mod:`grader.withheld`) withholds, by construction, each graded exercise's reference, the
functions its record names in ``same_answer``, and every exercise's judging (the known mistakes and their
helpers). What construction cannot see is a library function that computes the answer under another name, or
with some argument setting (the cDPO loss at ε = 0 *is* DPO's). This scanner looks for those, by trying them:

* it imports the copy in a fresh Python (the copy first on ``PYTHONPATH``, as the grading kernel does), imports
  every module of it, and collects every **candidate**: each function and class defined in ``rlhf_core`` (found
  in any module's namespace, deduplicated), each method, static method and class method of those classes (a
  plain method called unbound, so its first input stands in for ``self``), the bound methods of each class that
  can be built with no arguments, and the functions held in module-level dicts, lists and tuples, and in the
  fields of module-level objects of the library's own classes (two levels deep). Functions nested in other
  functions are out of reach; the copy's dispatch module (``rlhf_core._withheld``) is not a candidate;
* for each exercise the lesson grades, it calls every candidate whose signature accepts the first call a probe
  case makes (found by a spy: the case's own call, args and keywords) on the record's **probe cases** (seed 0),
  at the candidate's defaults and again with each extra numeric or boolean parameter (one the reference does
  not have: ``label_smoothing``, ``gamma``, ``average``…) set to 0, to 1, and all of them to 0; where the
  reference returns one number, each also with its result averaged (``.mean()``: a per-pair loss);
* a candidate that matches the reference on **every** case (:func:`~rlhf_core.checks.compare.outcomes_match`
  with the record's tolerances, as the judge compares) is a **route**. The references' outputs are computed
  here, in the grader's process, with the real library. The dispatch to the learner's own function is never a
  route: no learner's function is defined in the scan, so each withheld function raises ``WithheldReference``.

**What is skipped, and how** (no list of names): each call runs under a timer of :data:`PER_CALL_SECONDS` of CPU time (a
function that trains for long is stopped, counts as no route and is not called again in the scan), and under an audit hook that refuses
writing, renaming or removing any file outside the scan's scratch folder (its ``TMPDIR`` too; ``torch.save`` included), starting
a process, and opening a socket (the call raises, so it is no route either). Those stopped and refused are
reported, by name, with the routes.

One subprocess per lesson: :func:`scan_lesson` builds the copy like a grading run and scans it;
:func:`scan_library` scans any folder that holds an ``rlhf_core`` (the real library too, where every reference
is a route). ``tests/test_route_scanner.py`` runs it for every graded lesson. ``python -m grader.route_scan
[LESSON…]`` prints what it finds.

This module imports nothing outside the standard library at its top: the scan's child process loads this same
file by its path, next to the copy, without the grader.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

__all__ = ["PER_CALL_SECONDS", "Route", "Scan", "scan_library", "scan_lesson", "reference_records"]

#: The CPU seconds one candidate's call on one case may take before it is stopped (and counts as no route): CPU
#: time, so that a scan on a busy machine stops the same functions; and a wall-clock limit for a call that waits.
PER_CALL_SECONDS = 2.0
WALL_SECONDS = 30.0
#: At most this many extra numeric parameters of one candidate are varied.
MAX_EXTRAS = 6


@dataclass
class Route:
    """A candidate that gives an exercise's answer: ``function`` (where it was found), with ``overrides`` set."""

    exercise: str
    function: str
    overrides: dict = field(default_factory=dict)
    then: str = ""      # ".mean()": its per-pair result, averaged

    def __str__(self) -> str:
        extra = ", ".join(f"{k}={v!r}" for k, v in self.overrides.items())
        return f"{self.exercise}: {self.function}({extra}){self.then}" if extra or self.then else f"{self.exercise}: {self.function}"


@dataclass
class Scan:
    """What one scan found: the routes, and how much it tried (candidates, calls that bound), stopped and refused."""

    routes: list[Route]
    candidates: int
    calls: int
    stopped: list[str]
    refused: list[str]
    not_imported: dict[str, str]
    seconds: float


# --------------------------------------------------------------------------------------------
# the grader's side


def reference_records(exercises, seed: int = 0) -> dict:
    """The real library's reference outcomes on each exercise's probe cases, with the record's tolerances."""
    from rlhf_core.checks import EXERCISES, probe

    out = {}
    for name in exercises:
        exercise = EXERCISES[name]
        record = probe(exercise, exercise.reference, seed)
        out[name] = {"cases": record["cases"], "rtol": exercise.rtol, "atol": exercise.atol, "seed": seed}
    return out


def scan_library(root: Path, exercises, scratch: Path | None = None, seed: int = 0, timeout: float = 600.0) -> Scan:
    """Scan the ``rlhf_core`` under ``root`` (imported first, in a fresh Python) for routes to ``exercises``' answers."""
    with tempfile.TemporaryDirectory(dir=scratch) as folder:
        work = Path(folder)
        args = work / "scan.json"
        args.write_text(json.dumps({"references": reference_records(exercises, seed),
                                    "package": str(Path(root) / "rlhf_core")}, allow_nan=True))
        env = {"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin", "HOME": str(work), "OMP_NUM_THREADS": "1",
               "PYTHONDONTWRITEBYTECODE": "1", "MPLBACKEND": "Agg", "MPLCONFIGDIR": str(work / "mpl"),
               "TMPDIR": str(work), "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
        boot = ("import importlib.util, sys; spec = importlib.util.spec_from_file_location('_route_scan', sys.argv[1]); "
                "module = sys.modules['_route_scan'] = importlib.util.module_from_spec(spec); spec.loader.exec_module(module); module._child(sys.argv[2])")
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", boot, str(Path(__file__).resolve()), str(args)], cwd=work, env=env,
                              capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        seconds = time.perf_counter() - start
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode != 0 or not lines:
            raise RuntimeError(f"the route scan of {root} failed (exit {done.returncode}): {done.stderr[-3000:]}")
        got = json.loads(lines[-1])
    return Scan([Route(**r) for r in got["routes"]], got["candidates"], got["calls"], got["stopped"], got["refused"],
                got["not_imported"], seconds)


def scan_lesson(lesson: str, cells, scratch: Path) -> Scan | None:
    """Build ``lesson``'s withheld copy as a grading run does and scan it for its graded exercises (None: nothing graded)."""
    from .withheld import withheld_exercises, withheld_library

    copy = withheld_library(lesson, cells, scratch)
    if copy is None:
        return None
    return scan_library(copy, list(withheld_exercises(cells)), scratch)


# --------------------------------------------------------------------------------------------
# the child's side: runs next to the copy, imports only it and the standard library


class _Stop(BaseException):
    """Stops a call: the spy's first call, or the per-call timer (a BaseException, so no library code catches it)."""


def _child(args_path: str) -> None:
    import contextlib
    import functools
    import importlib
    import inspect
    import pkgutil
    import signal
    import warnings

    warnings.simplefilter("ignore")
    args = json.loads(Path(args_path).read_text())
    references = args["references"]
    out, sink = sys.stdout, open(os.devnull, "w")   # noqa: SIM115 — open for the whole run
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        import torch
        import torch._dynamo  # noqa: F401 — imported lazily by an optimizer's first step: not under a timer

        import rlhf_core

        torch.set_num_threads(1)
        modules, not_imported = [], {}
        for info in sorted(pkgutil.walk_packages([args["package"]], "rlhf_core."), key=lambda i: i.name):
            if info.name.rsplit(".", 1)[-1] == "_withheld":
                continue
            try:
                modules.append(importlib.import_module(info.name))
            except Exception as exc:   # an optional dependency missing: its module cannot be scanned
                not_imported[info.name] = f"{type(exc).__name__}: {exc}"[:200]
        modules.insert(0, rlhf_core)
        scratch = os.path.realpath(os.getcwd())
        _guard(scratch, torch)

        def timed(call):
            def ring(signum, frame) -> NoReturn:
                raise _Stop("timer")
            timers = ((signal.ITIMER_PROF, signal.SIGPROF, PER_CALL_SECONDS),          # CPU time: busy machines alike
                      (signal.ITIMER_REAL, signal.SIGALRM, WALL_SECONDS))              # a call that waits
            previous = [signal.signal(signum, ring) for _, signum, _ in timers]
            imported = set(sys.modules)
            for which, _, seconds in timers:
                signal.setitimer(which, seconds)
            try:
                return call()
            except _Stop:     # it may have stopped an import half-way: forget what the call imported, to import it again
                for module in set(sys.modules) - imported:
                    sys.modules.pop(module, None)
                raise
            finally:
                for (which, signum, _), handler in zip(timers, previous):
                    signal.setitimer(which, 0)
                    signal.signal(signum, handler)

        def settle():
            torch.set_grad_enabled(True)
            torch.set_default_dtype(torch.float32)
            if "matplotlib.pyplot" in sys.modules:
                sys.modules["matplotlib.pyplot"].close("all")

        stopped, refused, slow = [], [], set()
        candidates = _candidates(modules, timed, settle, inspect, functools)
        routes, calls = [], 0
        for name, wanted in references.items():
            calls += _scan_exercise(name, wanted, candidates, timed, settle, routes, stopped, refused, slow)
    print(json.dumps({"routes": routes, "candidates": len(candidates), "calls": calls, "stopped": sorted(set(stopped)),
                      "refused": sorted(set(refused)), "not_imported": not_imported}), file=out, flush=True)


def _scan_exercise(name, wanted, candidates, timed, settle, routes, stopped, refused, slow) -> int:
    """Call every candidate on one exercise's probe cases; append what matches to ``routes``; returns the calls made."""
    import inspect

    import torch

    from rlhf_core.checks import EXERCISES
    from rlhf_core.checks.compare import outcomes_match
    from rlhf_core.checks.framework import run_case

    calls = 0
    exercise = EXERCISES[name]
    cases = exercise.cases(wanted["seed"])
    first = _first_call(cases[0])
    if isinstance(first, str):
        raise RuntimeError(f"the first case of {name} never calls the function it checks: {first}")
    own = set(inspect.signature(exercise.reference).parameters)
    scalar = wanted["cases"][cases[0].name].get("values", {}).get("out", {}).get("shape") == []
    for where, fn, overrides, then in ((w, f, o, t) for w, f in candidates for o in _variants(f, own, inspect)
                                       for t in (("", ".mean()") if scalar else ("",))):
        if where in slow or not _binds(fn, first, overrides, inspect):
            continue
        calls += 1
        call = (lambda *a, _fn=fn, _ov=overrides, _then=then, **k: _reduced(_fn(*a, **{**k, **_ov}), _then, torch))
        for case in cases:
            try:
                got = timed(lambda case=case, call=call: run_case(case, call))
            except _Stop:
                stopped.append(f"{name}: {where}")
                slow.add(where)   # once stopped, not called again: what trains for long does so on any input
                break
            finally:
                settle()
            if not got.get("ok"):
                if "PermissionError" == got["error"].get("type") and "route scan" in got["error"].get("message", ""):
                    refused.append(f"{name}: {where}")
                break
            if not outcomes_match(got, wanted["cases"][case.name], wanted["rtol"], wanted["atol"]):
                break
        else:
            routes.append({"exercise": name, "function": where, "overrides": overrides, "then": then})
        spoiled = _first_call(cases[0])    # a candidate that breaks the cases would hide every later route
        if isinstance(spoiled, str):
            raise RuntimeError(f"calling {where}({overrides}) on {name}'s inputs broke its cases: {spoiled}")
    return calls


def _candidates(modules, timed, settle, inspect, functools) -> list[tuple[str, object]]:
    """Every callable of the library worth calling, with where it was found: see the module's docstring."""
    found, seen = [], set()

    def ours(obj) -> bool:
        module = getattr(obj, "__module__", None) or ""
        return module.startswith("rlhf_core") and not module.endswith("._withheld")

    def add(where: str, fn) -> None:
        qualname = getattr(fn, "__qualname__", "<")
        if inspect.isfunction(fn) and "<" not in qualname:   # a module's or a class's own: named where it is defined
            where = f"{fn.__module__}.{qualname}"
        key = id(getattr(fn, "__func__", fn)), id(getattr(fn, "__self__", None))
        if key not in seen:
            seen.add(key)
            found.append((where, fn))

    def add_class(where: str, cls) -> None:
        if id(cls) in seen:
            return
        seen.add(id(cls))
        for attr, raw in vars(cls).items():
            if attr.startswith("__") and attr != "__call__":
                continue
            if isinstance(raw, staticmethod):
                add(f"{where}.{attr}", raw.__func__)
            elif isinstance(raw, classmethod):
                add(f"{where}.{attr}", getattr(cls, attr))
            elif inspect.isfunction(raw):
                add(f"{where}.{attr}", raw)
        if issubclass(cls, BaseException) or inspect.isabstract(cls):
            return
        try:
            inspect.signature(cls).bind()
        except (TypeError, ValueError):
            return
        try:
            instance = timed(cls)
        except (Exception, _Stop):
            return
        finally:
            settle()
        for attr in list(vars(cls)):
            if inspect.isfunction(vars(cls)[attr]) and not (attr.startswith("__") and attr != "__call__"):
                add(f"{where}().{attr}", getattr(instance, attr))

    def visit(where: str, value, depth: int) -> None:
        if inspect.isfunction(value) or isinstance(value, functools.partial):
            if ours(value) or isinstance(value, functools.partial):
                add(where, value)
        elif inspect.isclass(value):
            if ours(value):
                add_class(where, value)
        elif depth < 2 and isinstance(value, dict):
            for key, item in list(value.items())[:500]:
                visit(f"{where}[{key!r}]", item, depth + 1)
        elif depth < 2 and isinstance(value, (list, tuple)):
            for index, item in enumerate(value[:500]):
                visit(f"{where}[{index}]", item, depth + 1)
        elif depth < 2 and ours(type(value)) and hasattr(value, "__dict__"):
            for key, item in list(vars(value).items())[:200]:
                visit(f"{where}.{key}", item, depth + 1)

    for module in modules:
        for name, value in sorted(vars(module).items()):
            if name.startswith("__"):
                continue
            defined = getattr(value, "__module__", None)
            if (inspect.isfunction(value) or inspect.isclass(value)) and defined and defined != module.__name__ and ours(value):
                visit(f"{defined}.{getattr(value, '__qualname__', name)}", value, 0)   # named where it is defined
            else:
                visit(f"{module.__name__}.{name}", value, 0)
    return found


def _reduced(out, then: str, torch):
    """A per-pair loss ``(B,)`` is one ``.mean()`` from a mean loss: tried where the reference returns one number."""
    if then == ".mean()" and isinstance(out, torch.Tensor) and out.dim() >= 1 and out.is_floating_point():
        return out.mean()
    return out


def _first_call(case) -> tuple | str:
    """The args and keywords a case passes to the function it checks first (the case stopped there), or why
    it never called it."""
    calls = []

    def spy(*args, **kwargs) -> NoReturn:
        calls.append((args, kwargs))
        raise _Stop("spy")

    try:
        case.run(spy)
    except _Stop:
        pass
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"[:300]
    return calls[0] if calls else "it returned without calling it"


def _variants(fn, own: set, inspect) -> list[dict]:
    """The candidate's defaults, then each extra numeric parameter at 0 and at 1, then all of them at 0."""
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return [{}]
    extras = [p for p in parameters if p.name not in own and p.default is not p.empty
              and type(p.default) in (int, float, bool) and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    extras = extras[:MAX_EXTRAS]
    out = [{}]
    for p in extras:
        for value in (0, 1):
            if value != p.default or type(p.default) is float:
                out.append({p.name: type(p.default)(value)})
    if len(extras) > 1:
        out.append({p.name: type(p.default)(0) for p in extras})
    unique = []
    for overrides in out:
        if overrides not in unique:
            unique.append(overrides)
    return unique


def _binds(fn, call: tuple, overrides: dict, inspect) -> bool:
    try:
        inspect.signature(fn).bind(*call[0], **{**call[1], **overrides})
    except (TypeError, ValueError):
        return False
    return True


def _guard(scratch: str, torch) -> None:
    """From here on, refuse writing outside ``scratch``, starting a process and opening a socket (an audit hook)."""
    def inside(path) -> bool:
        try:
            real = os.path.realpath(os.fsdecode(path))
        except Exception:
            return False
        return real == scratch or real.startswith(scratch + os.sep)

    def refuse(event: str) -> NoReturn:
        raise PermissionError(f"refused by the route scan: {event}")

    writing_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    paths = ("os.remove", "os.rename", "os.mkdir", "os.rmdir", "os.truncate", "os.chmod", "os.chown", "os.symlink",
             "os.link", "os.utime", "shutil.rmtree", "shutil.move", "shutil.copyfile", "shutil.copytree")
    closed = ("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty",
              "os.kill", "os.killpg", "socket.connect", "socket.bind", "socket.sendto", "pty.spawn")

    def hook(event, args):
        if event == "open":
            path, mode, flags = (list(args) + [None, None, None])[:3]
            writing = (any(c in mode for c in "wax+") if isinstance(mode, str)
                       else isinstance(flags, int) and bool(flags & writing_flags))
            if writing and isinstance(path, (str, bytes, os.PathLike)) and not inside(path):
                refuse(f"open({path!r}, {mode!r})")
        elif event in paths:
            for arg in args:
                if isinstance(arg, (str, bytes, os.PathLike)) and not inside(arg):
                    refuse(f"{event}({arg!r})")
        elif event in closed:
            refuse(event)

    sys.addaudithook(hook)
    save = torch.save

    def guarded_save(obj, f, *args, **kwargs):   # torch writes a path from C++, past the audit hook
        if isinstance(f, (str, bytes, os.PathLike)) and not inside(f):
            refuse(f"torch.save({f!r})")
        return save(obj, f, *args, **kwargs)

    torch.save = guarded_save


def main(argv: list[str] | None = None) -> int:
    """``python -m grader.route_scan [LESSON…]``: scan each lesson's copy (default: every lesson) and print the routes."""
    from .course import load_lessons

    lessons = load_lessons()
    wanted = argv if argv else sorted(lessons)
    found = 0
    with tempfile.TemporaryDirectory() as scratch:
        for name in wanted:
            scan = scan_lesson(name, lessons[name].spec, Path(scratch))
            if scan is None:
                continue
            found += len(scan.routes)
            print(f"{name}: {len(scan.routes)} route(s), {scan.candidates} candidates, {scan.calls} calls, "
                  f"{scan.seconds:.1f} s" + "".join(f"\n  route   {r}" for r in scan.routes)
                  + "".join(f"\n  stopped {s}" for s in scan.stopped) + "".join(f"\n  refused {s}" for s in scan.refused))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
