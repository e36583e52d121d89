"""A process that grades many runs keeps its file descriptors and threads: nothing of a graded notebook's
kernel client outlives it.

nbclient stops a kernel client's channels only for a kernel manager it made itself, and the grader passes its own,
so each graded notebook used to leave its heartbeat thread running — a zmq context and an event loop, about ten
descriptors. A test session (or a long-lived Dask worker) then ran past 1024 descriptors, where ``select()`` fails
("filedescriptor out of range in select()") and every later notebook was a grader error."""

from __future__ import annotations

import os
import threading

import nbformat
import pytest

from grader.autograde import autograde
from grading_helpers import LESSON, answered

pytestmark = [pytest.mark.sandbox, pytest.mark.notebook]


def descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to count descriptors")
def test_grading_again_and_again_leaves_no_descriptor_or_thread_behind(tmp_path):
    submissions = tmp_path / "subs"
    for student in ("ann", "ben"):
        (submissions / student).mkdir(parents=True)
        nbformat.write(answered(), submissions / student / f"{LESSON}.ipynb")
    autograde(submissions, tmp_path / "out0", jobs=2)     # the first run may load what stays (fonts, modules)
    before, threads = descriptors(), threading.active_count()
    for run in (1, 2):
        autograde(submissions, tmp_path / f"out{run}", jobs=2)
    assert descriptors() <= before, f"{descriptors() - before} descriptors more after two runs of two notebooks"
    assert threading.active_count() <= threads, [t.name for t in threading.enumerate()]
