"""Every lesson with 1 and 2 torch threads, on an idle CPU and beside one busy competing process.

Binder and Colab give one or two *shared* vCPUs. With as many torch threads as cores, a competing
process makes the threads wait for each other at every parallel region (oversubscription), and a
step can become many times slower; with fewer threads an idle machine leaves a core unused. This
script measures both sides, in one run, so that the course's default is the one that holds up in
the worst case:

    python bench/threads.py [solutions/08_*.ipynb ...] [--rounds 1]

For each notebook and each of the four settings — threads ∈ {1, 2} × {idle, one competitor} — the
notebook runs top to bottom in a fresh kernel (as ``bench/notebook_times.py`` does) with
``OMP_NUM_THREADS`` set, which torch reads at start-up; the competitor is a second Python process
spinning on one core for as long as the run lasts. Settings are interleaved within each round, so
drifting machine load hits them alike. It prints seconds per setting, the ratio 2 threads / 1 thread
idle and busy, and the worst case of each choice over the lessons.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import statistics
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("notebook_times", ROOT / "bench" / "notebook_times.py")
notebook_times = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(notebook_times)

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


def run_with(path: Path, threads: int, busy: bool) -> float:
    saved = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = str(threads)  # the kernel inherits it; torch reads it at start-up
    try:
        with competitor(busy):
            seconds, _ = notebook_times.run(path)
    finally:
        if saved is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = saved
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--rounds", type=int, default=1, help="runs per setting (the median is reported)")
    args = parser.parse_args()
    paths = args.notebooks or sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))
    print(f"{platform.machine()} · {os.cpu_count()} cores · Python {platform.python_version()} · "
          f"{args.rounds} round(s), settings interleaved")
    header = "".join(f"{f'{t} thr ' + ('busy' if b else 'idle'):>13}" for t, b in SETTINGS)
    print(f"  {'notebook':<32}{header}{'2/1 idle':>10}{'2/1 busy':>10}")
    table: dict[str, dict[tuple[int, bool], float]] = {}
    for path in paths:
        times: dict[tuple[int, bool], list[float]] = {s: [] for s in SETTINGS}
        for _ in range(args.rounds):
            for setting in SETTINGS:
                times[setting].append(run_with(path, *setting))
        med = {s: statistics.median(v) for s, v in times.items()}
        table[path.stem] = med
        cells = "".join(f"{med[s]:13.1f}" for s in SETTINGS)
        print(f"  {path.stem:<32}{cells}{med[(2, False)] / med[(1, False)]:10.2f}{med[(2, True)] / med[(1, True)]:10.2f}",
              flush=True)
    totals = {s: sum(m[s] for m in table.values()) for s in SETTINGS}
    print(f"  {'all':<32}" + "".join(f"{totals[s]:13.1f}" for s in SETTINGS))
    for threads in (1, 2):
        worst = max(max(m[(threads, False)], m[(threads, True)]) for m in table.values())
        print(f"{threads} thread(s): slowest lesson {worst:.1f} s, all lessons {totals[(threads, False)]:.0f} s idle and "
              f"{totals[(threads, True)]:.0f} s beside a competing process")


if __name__ == "__main__":
    main()
