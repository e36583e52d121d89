"""Every lesson with 1 and 2 torch threads, on an idle CPU and beside one busy competing process.

Binder and Colab give one or two *shared* vCPUs. With as many torch threads as cores, a competing
process makes the threads wait for each other at every parallel region (oversubscription), and a
step can become many times slower; with fewer threads an idle machine leaves a core unused. This
script measures both sides, in one run, so that the course's default is the one that holds up in
the worst case:

    python bench/threads.py [solutions/08_*.ipynb ...] [--rounds 1] [--cap 4] [--threads 1]

For each notebook and each of the four settings — threads ∈ {1, 2} × {idle, one competitor} — the
notebook runs top to bottom in a fresh kernel (as ``bench/notebook_times.py`` does, in a process of its
own) with ``OMP_NUM_THREADS`` and ``RLHF_TORCH_THREADS`` set (torch reads the first at start-up, the
lessons' setup cell the second); the competitor is a second Python process spinning on one core for as
long as the run lasts. Oversubscribed runs can take ten times longer or more: a run is stopped at
``--cap`` times the slowest of the lesson's other settings and shown as ``>seconds``, a lower bound. Settings are interleaved within each round, so
drifting machine load hits them alike. It prints seconds per setting, the ratio 2 threads / 1 thread
idle and busy, and the worst case of each choice over the lessons. ``--threads 1`` measures only the lessons'
default (one thread, idle and busy): the course's budget, 45 s idle and 60 s beside one busy process, is set for it.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import statistics
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SETTINGS = ((1, False), (2, False), (1, True), (2, True))  # (threads, competing process)


@contextmanager
def competitor(on: bool):
    """One process spinning on a core while the block runs (nothing when ``on`` is False)."""
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if on else None
    try:
        yield
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()


def run_with(path: Path, threads: int, busy: bool, cap: float | None = None) -> float | None:
    """Seconds for one run of ``path`` with ``threads`` torch threads (``OMP_NUM_THREADS`` and the lessons'
    ``RLHF_TORCH_THREADS``, which the kernel inherits), beside a competitor when ``busy``; None when the run
    went past ``cap`` seconds and was stopped (the table then shows ``>cap``)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "RLHF_TORCH_THREADS": str(threads)}
    code = (f"import sys; sys.path.insert(0, {str(ROOT / 'bench')!r}); import pathlib, notebook_times; "
            f"print('SECONDS', notebook_times.run(pathlib.Path({str(path)!r}))[0])")
    with competitor(busy):
        proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True, start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=cap)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)   # its kernel exits when its parent is gone (ipykernel's parent poller)
            proc.wait()
            return None
    if proc.returncode != 0 or "SECONDS" not in out:
        raise SystemExit(f"{path.name} failed with {threads} thread(s){' beside a competitor' if busy else ''}")
    return float(out.split("SECONDS")[1].split()[0])


def _cell(value: float | None, cap: float | None) -> str:
    return f"{value:13.1f}" if value is not None else f"{'>' + format(cap, '.0f'):>13}"


def _ratio(a: float | None, b: float | None, cap: float | None) -> str:
    if a is None:
        return f"{'>' + format(cap / b, '.1f'):>10}"
    return f"{a / b:10.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--rounds", type=int, default=1, help="runs per setting (the median is reported)")
    parser.add_argument("--cap", type=float, default=4.0,
                        help="stop a run after this many times the slowest of the lesson's other settings "
                             "(at least 60 s); it is shown as '>seconds' (default 4)")
    parser.add_argument("--threads", type=int, choices=(1, 2), action="append",
                        help="only these thread counts (repeatable; default both)")
    args = parser.parse_args()
    settings = tuple(s for s in SETTINGS if not args.threads or s[0] in args.threads)
    paths = args.notebooks or sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))
    print(f"{platform.machine()} · {os.cpu_count()} cores · Python {platform.python_version()} · "
          f"{args.rounds} round(s), settings interleaved, runs stopped at {args.cap:g}× the lesson's slowest other setting")
    header = "".join(f"{f'{t} thr ' + ('busy' if b else 'idle'):>13}" for t, b in settings)
    both = len({t for t, _ in settings}) == 2
    print(f"  {'notebook':<32}{header}" + (f"{'2/1 idle':>10}{'2/1 busy':>10}" if both else ""))
    table: dict[str, dict[tuple[int, bool], float | None]] = {}
    caps: dict[str, float] = {}
    for path in paths:
        times: dict[tuple[int, bool], list[float | None]] = {s: [] for s in settings}
        for _ in range(args.rounds):
            for setting in settings:
                done = [t for v in times.values() for t in v if t is not None]
                cap = max(60.0, args.cap * max(done)) if done else None
                caps[path.stem] = cap or 0.0
                times[setting].append(run_with(path, *setting, cap=cap))
        med = {s: (statistics.median(v) if None not in v else None) for s, v in times.items()}
        table[path.stem] = med
        cap = caps[path.stem]
        cells = "".join(_cell(med[s], cap) for s in settings)
        ratios = f"{_ratio(med[(2, False)], med[(1, False)], cap)}{_ratio(med[(2, True)], med[(1, True)], cap)}" if both else ""
        print(f"  {path.stem:<32}{cells}{ratios}", flush=True)
    for threads in sorted({t for t, _ in settings}):
        runs = [m[(threads, b)] for m in table.values() for b in (False, True)]
        if None in runs:
            print(f"{threads} thread(s): at least one run went past its cap (the slowest lesson took longer than that)")
            continue
        worst = max(runs)
        idle = sum(m[(threads, False)] for m in table.values())
        busy = sum(m[(threads, True)] for m in table.values())
        print(f"{threads} thread(s): slowest lesson {worst:.1f} s, all lessons {idle:.0f} s idle and {busy:.0f} s beside a competing process")


if __name__ == "__main__":
    main()
