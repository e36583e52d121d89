"""Wall time and kernel peak memory of every solution notebook, run one after another.

Each notebook runs top to bottom in a fresh python3 kernel (nbclient), exactly as a learner's
"Run all" would; the time includes the kernel's start. After the last cell, one extra cell reads the
kernel's own peak resident memory (``ru_maxrss``). The figures go into the README; the course's
budgets are 60 s and 1.5 GB per notebook on a 2-core CPU (Binder gives about 2 GB), 5 minutes for
all ten.

    python bench/notebook_times.py [solutions/01_*.ipynb ...] [--markdown] [--write]

Lesson 10 runs once per drill variant (``RLHF_DRILL_VARIANT``, a throw-away drill history); its entry is the
slowest variant's time and the largest peak, and each variant's figures are printed.

``--write`` stores the figures in ``bench/notebook_times.json``, from which ``python -m grader publish``
writes the README's lesson table (run time and memory next to each notebook's Colab and Binder links)
and the run times in ``grader/lessons.json`` (the autograder starts the longest lessons first).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell

ROOT = Path(__file__).resolve().parents[1]
TIMES_FILE = ROOT / "bench" / "notebook_times.json"
PEAK_CELL = "import resource, sys; print('PEAK_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"


def run(path: Path) -> tuple[float, float]:
    """``(seconds, peak MB)`` of one notebook."""
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(new_code_cell(PEAK_CELL))
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.output_type == "stream")
    peak_kb = int(text.split("PEAK_KB")[1].split()[0])
    return seconds, peak_kb / 1024  # Linux reports ru_maxrss in KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--markdown", action="store_true", help="print a README table")
    parser.add_argument("--write", action="store_true", help=f"store the figures in {TIMES_FILE.relative_to(ROOT)}")
    args = parser.parse_args()
    paths = args.notebooks or sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))
    print(f"{platform.machine()} · {platform.python_version()} · solution notebooks, fresh kernel each")
    rows, total = [], 0.0
    for path in paths:
        if path.stem.startswith("10_"):
            from rlhf_core.course.variants import VARIANTS

            runs = []
            for key in VARIANTS:
                os.environ["RLHF_DRILL_VARIANT"] = key
                os.environ["RLHF_DRILL_HISTORY"] = tempfile.mkdtemp(prefix="drill-history-")
                runs.append(run(path))
                print(f"  {path.stem + ' (' + key + ')':<40} {runs[-1][0]:6.1f} s   peak {runs[-1][1]:7.0f} MB", flush=True)
            seconds, peak = max(s for s, _ in runs), max(p for _, p in runs)
        else:
            seconds, peak = run(path)
        total += seconds
        rows.append((path.stem, seconds, peak))
        print(f"  {path.stem:<40} {seconds:6.1f} s   peak {peak:7.0f} MB", flush=True)
    print(f"  {'all':<40} {total:6.1f} s")
    if args.write:
        # notebooks named on the command line update their own entries; the others keep theirs (each has its date)
        machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
        today = datetime.date.today().isoformat()
        old = json.loads(TIMES_FILE.read_text()) if args.notebooks and TIMES_FILE.exists() else {"notebooks": {}}
        entries = {stem: {"date": old.get("date", today), **entry} for stem, entry in old["notebooks"].items()}
        entries.update({stem: {"seconds": round(seconds, 1), "peak_mb": round(peak), "date": today}
                        for stem, seconds, peak in rows})
        if old.get("machine", machine) != machine:
            raise SystemExit(f"{TIMES_FILE.name} was measured on {old['machine']}, this is {machine}: measure every notebook")
        TIMES_FILE.write_text(json.dumps({"machine": machine, "date": today, "notebooks": dict(sorted(entries.items()))},
                                         indent=1) + "\n")
        print(f"wrote {TIMES_FILE.relative_to(ROOT)}")
    if args.markdown:
        print("\n| notebook | run time | kernel peak memory |\n|---|---|---|")
        for stem, seconds, peak in rows:
            print(f"| {stem} | {seconds:.0f} s | {peak:.0f} MB |")
        print(f"| all | {total:.0f} s | |")


if __name__ == "__main__":
    main()
