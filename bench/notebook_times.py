"""Wall time and kernel peak memory of every solution notebook, run one after another.

Each notebook runs top to bottom in a fresh python3 kernel (nbclient), exactly as a learner's
"Run all" would; the time includes the kernel's start. After the last cell, one extra cell reads the
kernel's own peak resident memory (``ru_maxrss``). The figures go into the README; the course's
budgets are 60 s and 1.5 GB per notebook on a 2-core CPU (Binder gives about 2 GB), 5 minutes for
all ten.

    python bench/notebook_times.py [solutions/01_*.ipynb ...] [--markdown]
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell

ROOT = Path(__file__).resolve().parents[1]
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
    args = parser.parse_args()
    paths = args.notebooks or sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))
    print(f"{platform.machine()} · {platform.python_version()} · solution notebooks, fresh kernel each")
    rows, total = [], 0.0
    for path in paths:
        seconds, peak = run(path)
        total += seconds
        rows.append((path.stem, seconds, peak))
        print(f"  {path.stem:<40} {seconds:6.1f} s   peak {peak:7.0f} MB", flush=True)
    print(f"  {'all':<40} {total:6.1f} s")
    if args.markdown:
        print("\n| notebook | run time | kernel peak memory |\n|---|---|---|")
        for stem, seconds, peak in rows:
            print(f"| {stem} | {seconds:.0f} s | {peak:.0f} MB |")
        print(f"| all | {total:.0f} s | |")


if __name__ == "__main__":
    main()
