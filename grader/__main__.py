"""``python -m grader <command>``: the course's grading tool.

    release [--check]        write notebooks/ from solutions/ through nbgrader (or check it is current)
    setup-cells [--check]    rewrite the shared setup cell of every solution notebook from its template
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import release as release_mod


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    rel = sub.add_parser("release", help="write notebooks/ from solutions/ (student versions)")
    rel.add_argument("--check", action="store_true", help="only check that notebooks/ is up to date")
    rel.add_argument("--solutions", type=Path, default=release_mod.SOLUTIONS_DIR)
    rel.add_argument("--out", type=Path, default=release_mod.NOTEBOOKS_DIR)

    setup = sub.add_parser("setup-cells", help="refresh the setup cell of every solution notebook")
    setup.add_argument("--check", action="store_true", help="only check that every setup cell is current")
    setup.add_argument("--solutions", type=Path, default=release_mod.SOLUTIONS_DIR)

    args = parser.parse_args(argv)
    if args.command == "release":
        return release_mod.release(args.solutions, args.out, check=args.check)
    if args.command == "setup-cells":
        return release_mod.refresh_setup_cells(args.solutions, check=args.check)
    return 2


if __name__ == "__main__":
    sys.exit(main())
