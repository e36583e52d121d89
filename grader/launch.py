"""``python -m grader.launch [--cgroup DIR]... -- COMMAND...``: join the given cgroups, then become COMMAND.

The grader's kernelspec starts every submission kernel through this, so the kernel (and everything it
forks) is inside its memory and process caps from its first instruction.

``python -m grader.launch --watch PID``: stand for a kernel that :mod:`grader.warm` forked from its server
(already in its cgroups): exit when that process exits, so that the kernel manager sees the kernel's death;
killed, it leaves the kernel to the sandbox's cleanup, which kills its cgroup.
"""

from __future__ import annotations

import os
import select
import sys


def watch(pid: int) -> None:
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    select.select([fd], [], [])


def main(argv: list[str]) -> None:
    if argv[:1] == ["--watch"]:
        watch(int(argv[1]))
        return
    cgroups, i = [], 0
    while i < len(argv) and argv[i] != "--":
        if argv[i] == "--cgroup":
            cgroups.append(argv[i + 1])
            i += 2
        else:
            raise SystemExit(f"grader.launch: unknown option {argv[i]!r}")
    command = argv[i + 1:]
    if not command:
        raise SystemExit("grader.launch: nothing to run after --")
    for path in cgroups:
        with open(os.path.join(path, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
