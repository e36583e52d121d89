"""Autograding throughput: notebooks per minute, 1 and 2 jobs, sandboxed and not, side by side in one run.

The synthetic class: ``--students`` students (default 4) each hand in the five lightest lessons
(01, 02, 04, 05, 10 by the README's run times) with the solutions' answers, so 20 submitted
notebooks by default, every one expected to score full marks. Each configuration grades the whole
class from scratch into its own OUT (gradebook update and feedback included: the instructor's
command end to end) and must reproduce the same full-marks grades; a configuration that does not
is reported as a failure, never as a throughput.

    python bench/grade_throughput.py [--students 4] [--repeat 1] [--markdown]

Bars: with 2 jobs sandboxed, at least 20 notebooks per minute on the course's 2-core
machine; sandbox overhead (sandboxed time over unsandboxed time, same jobs, minus one) at most 20%.
Run on an idle machine; the configurations run one after another, interleaved when ``--repeat`` > 1.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grader.autograde import autograde  # noqa: E402
from grader.sandbox import Limits, detect  # noqa: E402

LIGHTEST = ("01_rlhf_objective", "02_bradley_terry_and_dpo_loss", "04_sequence_logps",
            "05_tiny_transformer", "10_mock_interview")
CONFIGS = [(1, True), (2, True), (1, False), (2, False)]   # (jobs, sandboxed)


def build_class(folder: Path, students: int) -> int:
    """Write ``folder/<student>/<lesson>.ipynb`` with the solutions' answers; returns the notebook count."""
    for s in range(students):
        student = folder / f"student{s + 1:02d}"
        student.mkdir(parents=True)
        for lesson in LIGHTEST:
            nb = nbformat.read(ROOT / "solutions" / f"{lesson}.ipynb", as_version=4)
            for cell in nb.cells:
                if cell.cell_type == "code":
                    cell.outputs, cell.execution_count = [], None
            nbformat.write(nb, student / f"{lesson}.ipynb")
    return students * len(LIGHTEST)


def grade(submissions: Path, out: Path, jobs: int, sandboxed: bool) -> tuple[float, list[dict]]:
    """Seconds to grade the whole class, and the CSV rows."""
    start = time.perf_counter()
    code = autograde(submissions, out, jobs=jobs, limits=Limits(), sandbox=sandboxed, log=lambda *a: None)
    seconds = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"autograde exited {code} for jobs={jobs} sandboxed={sandboxed}")
    with open(out / "grades.csv", newline="") as f:
        return seconds, list(csv.DictReader(f))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=4, help="students in the synthetic class (5 notebooks each)")
    parser.add_argument("--repeat", type=int, default=1, help="rounds over the four configurations (best and slowest are shown)")
    parser.add_argument("--markdown", action="store_true", help="also print a README table")
    args = parser.parse_args()

    iso = detect(want_sandbox=True)
    print(f"{platform.machine()} · {os.cpu_count()} cores · Python {platform.python_version()} · isolation: {iso.summary()}")
    if not iso.sandboxed:
        print("note: this machine cannot sandbox; the 'sandboxed' rows run with the weaker isolation it allows")
    work = Path(tempfile.mkdtemp(prefix="grade-bench-"))
    try:
        n = build_class(work / "submissions", args.students)
        print(f"{n} submitted notebooks ({args.students} students × {len(LIGHTEST)} lessons), every one a full-marks answer")
        best: dict[tuple[int, bool], float] = {}
        worst: dict[tuple[int, bool], float] = {}
        for round_ in range(args.repeat):
            for jobs, sandboxed in CONFIGS:
                out = work / f"out-{jobs}-{int(sandboxed)}-{round_}"
                seconds, rows = grade(work / "submissions", out, jobs, sandboxed)
                wrong = [r for r in rows if r["status"] != "graded" or float(r["score"]) != float(r["max_score"])]
                if len(rows) != n or wrong:
                    print(f"FAILED jobs={jobs} sandboxed={sandboxed}: {len(rows)} rows, {len(wrong)} not full marks, "
                          f"e.g. {wrong[:1]}")
                    return 1
                best[(jobs, sandboxed)] = min(seconds, best.get((jobs, sandboxed), float("inf")))
                worst[(jobs, sandboxed)] = max(seconds, worst.get((jobs, sandboxed), 0.0))
                print(f"  round {round_ + 1}: jobs={jobs} {'sandboxed' if sandboxed else 'no sandbox':<10} "
                      f"{seconds:6.1f} s  {n / seconds * 60:5.1f} notebooks/min", flush=True)
                shutil.rmtree(out, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    rate = {k: n / s * 60 for k, s in best.items()}
    slowest = {k: n / s * 60 for k, s in worst.items()}
    print(f"\n{'configuration':<26}{'seconds':>9}{'nb/min':>9}{'slowest round':>15}{'vs 1 job sandboxed':>20}")
    for jobs, sandboxed in CONFIGS:
        key = (jobs, sandboxed)
        label = f"{jobs} job{'s' if jobs > 1 else ''}, {'sandboxed' if sandboxed else 'no sandbox'}"
        print(f"{label:<26}{best[key]:9.1f}{rate[key]:9.1f}{slowest[key]:15.1f}{rate[key] / rate[(1, True)]:19.2f}×")
    overhead = {jobs: best[(jobs, True)] / best[(jobs, False)] - 1 for jobs in (1, 2)}
    print(f"\nsandbox overhead: {overhead[1]:+.0%} with 1 job, {overhead[2]:+.0%} with 2 jobs (best rounds)")
    bar_rate, bar_overhead = rate[(2, True)] >= 20, overhead[2] <= 0.20
    print(f"bar ≥ 20 notebooks/min with 2 jobs sandboxed: {'met' if bar_rate else 'NOT met'} "
          f"({rate[(2, True)]:.1f} best, {slowest[(2, True)]:.1f} slowest round)")
    print(f"bar sandbox overhead ≤ 20% (2 jobs): {'met' if bar_overhead else 'NOT met'} ({overhead[2]:+.0%})")
    if args.markdown:
        print("\n| configuration | seconds (best round) | notebooks / min | slowest round | vs 1 job sandboxed |\n|---|---|---|---|---|")
        for jobs, sandboxed in CONFIGS:
            key = (jobs, sandboxed)
            print(f"| {jobs} job{'s' if jobs > 1 else ''}, {'sandboxed' if sandboxed else 'no sandbox'} | "
                  f"{best[key]:.0f} | **{rate[key]:.1f}** | {slowest[key]:.1f} | {rate[key] / rate[(1, True)]:.2f}× |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
