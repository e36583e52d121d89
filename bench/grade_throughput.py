"""Autograding throughput: notebooks per minute, 1, 2 and 3 jobs, sandboxed and not, warm and cold kernels, figures
drawn or not, and a local Dask cluster of 1 and 2 workers, side by side in one run; then where a notebook's grading
time goes.

The synthetic class: ``--students`` students (default 4) each hand in the five lightest lessons
(01, 02, 04, 05, 10 by the README's run times) with the solutions' answers, so 20 submitted
notebooks by default, every one expected to score full marks. Each configuration grades the whole
class from scratch into its own OUT (gradebook update and feedback included: the instructor's
command end to end) and must reproduce the same full-marks grades; a configuration that does not
is reported as a failure, never as a throughput.

    python bench/grade_throughput.py [--students 4] [--repeat 1] [--only "2 jobs" Dask] [--markdown]

The breakdowns (median seconds per lesson and stage, from the results' ``timing``, of the "2 jobs,
sandboxed" configuration and of the same with cold kernels): the grader's own work before the kernel (compose, the withheld library),
the kernel's start, the grader's preamble cell, the lesson's setup cell (its imports and environment
check), the other lesson cells (the learner's and the lesson's own work), the probe cells, the kernel's
shutdown, then judging and the feedback page. Run on an idle machine; the configurations run one after
another, interleaved when ``--repeat`` > 1.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grader.autograde import autograde  # noqa: E402
from grader.result import NotebookResult  # noqa: E402
from grader.results import read_results  # noqa: E402
from grader.sandbox import Limits, detect  # noqa: E402

LIGHTEST = ("01_rlhf_objective", "02_bradley_terry_and_dpo_loss", "04_sequence_logps",
            "05_tiny_transformer", "10_mock_interview")
# (label, autograde's options): threads here, sandboxed or not (3 jobs on 2 cores: a third notebook fills the
# gaps while another's kernel starts or stops); warm kernels (forked from a pre-imported server, the default) or
# cold ones, figures drawn or not (the earlier version's defaults: cold, drawn); a local Dask cluster of 1 and 2
# workers (each worker keeps warm kernel servers of its own)
CONFIGS = [("1 job, sandboxed", {"jobs": 1}), ("2 jobs, sandboxed", {"jobs": 2}), ("3 jobs, sandboxed", {"jobs": 3}),
           ("2 jobs, sandboxed, cold kernels", {"jobs": 2, "warm": False}),
           ("2 jobs, sandboxed, cold, figures drawn", {"jobs": 2, "warm": False, "figures": True}),
           ("1 job, no sandbox", {"jobs": 1, "sandbox": False}), ("2 jobs, no sandbox", {"jobs": 2, "sandbox": False}),
           ("Dask local:1, sandboxed", {"dask": "local:1"}), ("Dask local:2, sandboxed", {"dask": "local:2"})]
BREAKDOWNS = ("2 jobs, sandboxed", "2 jobs, sandboxed, cold kernels")
STAGES = ("compose", "kernel start", "grader preamble", "setup cell", "lesson cells", "probe cells", "shutdown",
          "judge", "feedback page")


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


def grade(submissions: Path, out: Path, options: dict) -> tuple[float, list[dict], list[dict]]:
    """Seconds to grade the whole class, the CSV rows and the result files."""
    options = dict(options)
    limits = Limits(draw_figures=options.pop("figures", False))
    start = time.perf_counter()
    code = autograde(submissions, out, limits=limits, log=lambda *a: None, **options)
    seconds = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"autograde exited {code} with {options}")
    with open(out / "grades.csv", newline="") as f:
        return seconds, list(csv.DictReader(f)), read_results(out)


def breakdown(results: list[NotebookResult]) -> dict[str, dict[str, float]]:
    """Median seconds per stage of a notebook's grading, per lesson."""
    by_lesson: dict[str, dict[str, list[float]]] = {}
    for r in results:
        for stage, seconds in (r.timing or {}).items():
            by_lesson.setdefault(r.notebook, {}).setdefault(stage, []).append(seconds)
    return {lesson: {stage: statistics.median(v) for stage, v in stages.items()} for lesson, stages in sorted(by_lesson.items())}


def print_breakdown(label: str, table: dict[str, dict[str, float]], markdown: bool) -> None:
    print(f"\nwhere a notebook's time goes (median seconds, {label}):")
    print(f"  {'lesson':<32}" + "".join(f"{s[:13]:>14}" for s in STAGES) + f"{'total':>9}")
    for lesson, stages in table.items():
        print(f"  {lesson:<32}" + "".join(f"{stages.get(s, 0.0):14.2f}" for s in STAGES) + f"{sum(stages.values()):9.2f}")
    if markdown:
        print("\n| lesson | " + " | ".join(STAGES) + " | total |\n|---|" + "---|" * (len(STAGES) + 1))
        for lesson, stages in table.items():
            print(f"| {lesson[:2]} | " + " | ".join(f"{stages.get(s, 0.0):.2f}" for s in STAGES)
                  + f" | {sum(stages.values()):.2f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=4, help="students in the synthetic class (5 notebooks each)")
    parser.add_argument("--repeat", type=int, default=1, help="rounds over the configurations (best and slowest are shown)")
    parser.add_argument("--only", nargs="*", default=None, help="only the configurations whose label starts so")
    parser.add_argument("--markdown", action="store_true", help="also print README tables")
    args = parser.parse_args()
    configs = [(label, o) for label, o in CONFIGS if not args.only or any(label.startswith(x) for x in args.only)]

    iso = detect(want_sandbox=True)
    print(f"{platform.machine()} · {os.cpu_count()} cores · Python {platform.python_version()} · isolation: {iso.summary()}")
    if not iso.sandboxed:
        print("note: this machine cannot sandbox; the 'sandboxed' rows run with the weaker isolation it allows")
    work = Path(tempfile.mkdtemp(prefix="grade-bench-"))
    stages: dict[str, dict] = {}
    try:
        n = build_class(work / "submissions", args.students)
        print(f"{n} submitted notebooks ({args.students} students × {len(LIGHTEST)} lessons), every one a full-marks answer")
        best: dict[str, float] = {}
        worst: dict[str, float] = {}
        for round_ in range(args.repeat):
            for label, options in configs:
                out = work / f"out-{len(best)}-{round_}"
                seconds, rows, results = grade(work / "submissions", out, options)
                wrong = [r for r in rows if r["status"] != "graded" or float(r["score"]) != float(r["max_score"])]
                if len(rows) != n or wrong:
                    print(f"FAILED {label}: {len(rows)} rows, {len(wrong)} not full marks, e.g. {wrong[:1]}")
                    return 1
                if label in BREAKDOWNS and label not in stages:
                    stages[label] = breakdown(results)
                best[label] = min(seconds, best.get(label, float("inf")))
                worst[label] = max(seconds, worst.get(label, 0.0))
                print(f"  round {round_ + 1}: {label:<40} {seconds:6.1f} s  {n / seconds * 60:5.1f} notebooks/min", flush=True)
                shutil.rmtree(out, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    first = configs[0][0]
    rate = {k: n / s * 60 for k, s in best.items()}
    slowest = {k: n / s * 60 for k, s in worst.items()}
    print(f"\n{'configuration':<40}{'seconds':>9}{'nb/min':>9}{'slowest round':>15}{'vs ' + first:>28}")
    for label, _ in configs:
        print(f"{label:<40}{best[label]:9.1f}{rate[label]:9.1f}{slowest[label]:15.1f}{rate[label] / rate[first]:27.2f}×")
    if {"1 job, sandboxed", "1 job, no sandbox", "2 jobs, sandboxed", "2 jobs, no sandbox"} <= set(best):
        overhead = {j: best[f"{j} job{'s' if j > 1 else ''}, sandboxed"] / best[f"{j} job{'s' if j > 1 else ''}, no sandbox"] - 1
                    for j in (1, 2)}
        print(f"\nsandbox overhead: {overhead[1]:+.0%} with 1 job, {overhead[2]:+.0%} with 2 jobs (best rounds)")
    if args.markdown:
        print(f"\n| configuration | seconds (best round) | notebooks / min | slowest round | vs {first} |\n|---|---|---|---|---|")
        for label, _ in configs:
            print(f"| {label} | {best[label]:.0f} | **{rate[label]:.1f}** | {slowest[label]:.1f} | {rate[label] / rate[first]:.2f}× |")
    for label, table in stages.items():
        print_breakdown(label, table, args.markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
