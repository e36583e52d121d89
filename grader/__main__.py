"""``python -m grader <command>``: the course's grading tool.

    release [--check]        build solutions/*.ipynb and notebooks/ from the lesson texts solutions/NN_name.py
                             (or check that both are current)
    setup-cells [--check]    rewrite the shared setup cell of every lesson text from its template
    publish [--check]        write the README's lesson table (Colab/Binder links, run times), binder/requirements.txt
                             and the run times in grader/lessons.json
    check NOTEBOOK... [--timeout S] [--variant V]
                             self-check: run your notebooks in a fresh kernel, print each check's verdict
    collect INBOX --out SUBMISSIONS [--format auto|canvas|moodle|folders]
                             copy hand-ins (a Canvas or Moodle download, Colab's "Copy of", "(1)" duplicates, nested
                             folders) into SUBMISSIONS/<student>/<NN_name>.ipynb; lists what it left out and why
    autograde SUBMISSIONS --out OUT [--jobs N | --dask ADDRESS] [--timeout S] [--notebook-timeout S] [--memory MB]
              [--figures] [--cold] [--no-sandbox] [--force] [--student NAME]... [--notebook NAME|NN]... [--secret FILE]
                             grade SUBMISSIONS/<student>/<NN_name>.ipynb in a sandbox; OUT/grades.csv, feedback/,
                             the gradebook and OUT/report.html (here, or on a Dask cluster: --dask tcp://host:8786
                             or local:N). A re-run grades what is new or changed since it was graded (--force: all
                             selected). Ctrl-C stops it in seconds, keeping what was graded (exit 130; run it again)
    report OUT [--submissions DIR]
                             the class report of an autograde run: OUT/report.html and OUT/mistakes.csv
    similarity SUBMISSIONS [--lesson NN] [--out DIR] [--threshold X]
                             code shared between students' exercise cells (or with the library), as evidence
    variants STUDENT...|SUBMISSIONS [--out OUT] [--secret FILE]
                             each student's drill variant of lesson 10 (what autograde grades them on)
    secret init|export|import [FILE] [--secret FILE] [--force]
                             the course secret (seeds of the hidden tests, lesson 10's variants): make it once, export
                             it to each TA, import it there (default ~/.config/dpo-grader/secret or
                             $DPO_GRADER_SECRET_FILE; see grader/secret.py)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .course import NOTEBOOKS_DIR, SOLUTIONS_DIR


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return _COMMANDS[args.command](args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m grader", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    rel = sub.add_parser("release", help="build solutions/*.ipynb and notebooks/ from the lesson texts")
    rel.add_argument("--check", action="store_true", help="only check that both are up to date")
    rel.add_argument("--solutions", type=Path, default=SOLUTIONS_DIR)
    rel.add_argument("--out", type=Path, default=NOTEBOOKS_DIR)

    setup = sub.add_parser("setup-cells", help="refresh the setup cell of every lesson text")
    setup.add_argument("--check", action="store_true", help="only check that every setup cell is current")
    setup.add_argument("--solutions", type=Path, default=SOLUTIONS_DIR)

    pub = sub.add_parser("publish", help="write the README's lesson table (Colab/Binder links, run times), "
                                         "binder/requirements.txt and the run times in grader/lessons.json")
    pub.add_argument("--check", action="store_true", help="only check that all three are up to date")

    chk = sub.add_parser("check", help="self-check: run notebooks in a fresh kernel and print the verdict table")
    chk.add_argument("notebooks", nargs="+", type=Path)
    chk.add_argument("--timeout", type=float, default=300.0, help="seconds per cell (default 300)")
    chk.add_argument("--variant", default=None, help="lesson 10's drill variant (default $RLHF_DRILL_VARIANT, else dpo)")

    _autograde_arguments(sub.add_parser("autograde", help="grade a folder of submissions in a sandbox"))

    rep = sub.add_parser("report", help="the class report of an autograde run: OUT/report.html and OUT/mistakes.csv")
    rep.add_argument("out", type=Path, help="the OUT folder of an autograde run")
    rep.add_argument("--submissions", type=Path, default=None,
                     help="the submissions, for the similarity section (default: the folder the run graded)")

    simi = sub.add_parser("similarity", help="code shared between exercise cells, as evidence for the instructor to judge")
    simi.add_argument("submissions", type=Path, help="SUBMISSIONS/<student>/<NN_name>.ipynb")
    simi.add_argument("--lesson", help="only this lesson (its number, e.g. 04, or its name)")
    simi.add_argument("--out", type=Path, help="where similarity.csv and similarity.html go (default SUBMISSIONS/../similarity)")
    simi.add_argument("--threshold", type=float, default=None, help="show rows at or above this score (default 0.75)")

    col = sub.add_parser("collect", help="copy hand-ins (Canvas, Moodle, Colab, duplicates, nested folders) into "
                                         "SUBMISSIONS/<student>/<NN_name>.ipynb")
    col.add_argument("inbox", type=Path, help="the unzipped download, or a folder of hand-ins (never changed)")
    col.add_argument("--out", type=Path, required=True, help="SUBMISSIONS, the folder autograde grades")
    col.add_argument("--format", default="auto", choices=["auto", "canvas", "moodle", "folders"],
                     help="what INBOX is (default auto: each file recognised by its name)")

    var = sub.add_parser("variants", help="each student's drill variant of lesson 10 (what autograde grades them on)")
    var.add_argument("students", nargs="+", help="student names, or a SUBMISSIONS folder (its sub-folders are the students)")
    var.add_argument("--out", type=Path, default=None,
                     help="an OUT folder graded by an earlier version, which keeps its own OUT/.secret (default: the course secret)")
    var.add_argument("--secret", type=Path, default=None, help="the course secret's file (default $DPO_GRADER_SECRET_FILE, "
                                                                "else ~/.config/dpo-grader/secret)")

    sec = sub.add_parser("secret", help="the course secret: init (make it), export (print it), import FILE (use it here)")
    sec.add_argument("action", choices=["init", "export", "import"])
    sec.add_argument("file", nargs="?", default=None, help="import: the file export wrote (- or none: stdin)")
    sec.add_argument("--secret", type=Path, default=None, help="where the course secret lives (default $DPO_GRADER_SECRET_FILE, "
                                                                "else ~/.config/dpo-grader/secret)")
    sec.add_argument("--force", action="store_true", help="import: replace a different course secret")
    return parser


def _autograde_arguments(auto: argparse.ArgumentParser) -> None:
    auto.add_argument("submissions", type=Path, help="SUBMISSIONS/<student>/<NN_name>.ipynb")
    auto.add_argument("--out", type=Path, required=True, help="where grades.csv, feedback/ and the gradebook go")
    auto.add_argument("--jobs", type=int, default=1, help="notebooks graded at once (default 1)")
    auto.add_argument("--timeout", type=float, default=120.0, help="seconds per cell (default 120)")
    auto.add_argument("--notebook-timeout", type=float, default=300.0, help="seconds per notebook (default 300)")
    auto.add_argument("--memory", type=int, default=1536, help="memory cap per kernel in MB (default 1536)")
    auto.add_argument("--force", action="store_true", help="grade again what is already graded (a changed submission is "
                                                            "graded again without it)")
    auto.add_argument("--student", action="append", metavar="NAME", help="grade only this student (repeatable)")
    auto.add_argument("--notebook", action="append", metavar="NAME", help="grade only this lesson: its name or number (repeatable)")
    auto.add_argument("--secret", type=Path, default=None, help="the course secret's file (default $DPO_GRADER_SECRET_FILE, "
                                                                "else ~/.config/dpo-grader/secret)")
    auto.add_argument("--no-sandbox", action="store_true", help="run kernels without isolation (said in the CSV)")
    auto.add_argument("--cold", action="store_true",
                      help="start every kernel from scratch instead of forking it from a kernel server (same isolation, slower)")
    auto.add_argument("--figures", action="store_true",
                      help="draw the notebooks' matplotlib figures into the feedback pages (slower; default: one line each)")
    auto.add_argument("--dask", metavar="ADDRESS", default=None,
                      help="grade on a Dask cluster: a scheduler address (tcp://host:8786) or local:N for N local workers")


def _release(args) -> int:
    from .release import release

    return release(args.solutions, args.out, check=args.check)


def _setup_cells(args) -> int:
    from .release import refresh_setup_cells

    return refresh_setup_cells(args.solutions, check=args.check)


def _publish(args) -> int:
    from .publish import publish

    stale = publish(check=args.check)
    if stale:
        print(("stale (run `python -m grader publish`): " if args.check else "wrote: ") + ", ".join(stale))
    return 1 if stale and args.check else 0


def _check(args) -> int:
    from .selfcheck import check_notebooks

    return check_notebooks(args.notebooks, timeout=args.timeout, variant=args.variant)


def _autograde(args) -> int:
    from .autograde import autograde
    from .sandbox import Limits

    limits = Limits(cell_timeout=args.timeout, notebook_timeout=args.notebook_timeout, memory_mb=args.memory,
                    draw_figures=args.figures)
    return autograde(args.submissions, args.out, jobs=args.jobs, limits=limits, force=args.force,
                     sandbox=not args.no_sandbox, dask=args.dask, warm=not args.cold, students=args.student,
                     notebooks=args.notebook, secret=args.secret)


def _report(args) -> int:
    from .report import class_report

    return class_report(args.out, submissions=args.submissions)


def _similarity(args) -> int:
    from .similarity import DEFAULT_THRESHOLD, similarity

    threshold = DEFAULT_THRESHOLD if args.threshold is None else args.threshold
    result = similarity(args.submissions, args.out, lesson=args.lesson, threshold=threshold)
    return result if isinstance(result, int) else 0


def _variants(args) -> int:
    from .course import load_lessons
    from .plan import SecretSeeds
    from .secret import resolve_secret

    names: list[str] = []
    for given in args.students:
        folder = Path(given)
        names += sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else [given]
    try:
        key = resolve_secret(args.out, args.secret, log=lambda message: print(message, file=sys.stderr))
    except (OSError, ValueError) as exc:
        print(f"error: the course secret cannot be read ({exc})", file=sys.stderr)
        return 2
    seeds, lessons = SecretSeeds(key.key), [lesson for lesson in load_lessons().values() if lesson.variants]
    print("student,notebook,variant")
    for name in names:
        for lesson in lessons:
            print(f"{name},{lesson.name},{seeds.variant_for(name, lesson)}")
    print("# each student sets VARIANT = \"<variant>\" in the lesson's start cell; autograde grades that variant",
          file=sys.stderr)
    return 0


def _collect(args) -> int:
    from .collect import collect

    return collect(args.inbox, args.out, fmt=args.format)


def _secret(args) -> int:
    from .secret import main as secret_main

    return secret_main(args.action, args.secret, args.file, force=args.force)


_COMMANDS = {"release": _release, "setup-cells": _setup_cells, "publish": _publish, "check": _check,
             "autograde": _autograde, "report": _report, "similarity": _similarity, "variants": _variants,
             "secret": _secret, "collect": _collect}


if __name__ == "__main__":
    sys.exit(main())
