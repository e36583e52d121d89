"""Warm kernels (grader.warm): kernels forked from a pre-imported server in the sandbox isolate one notebook from
the next as cold kernels do, and a server that cannot serve never costs a grade: its notebooks start cold."""

from __future__ import annotations

import subprocess

import pytest

import grader.warm
from grader.autograde import autograde
from grader.results import read_results
from grader.sandbox import Limits, detect
from grading_helpers import FULL, RIGHT_LOSS, RIGHT_REWARD, answered, write_submissions

pytestmark = pytest.mark.sandbox

if not detect().sandboxed:
    pytest.skip("needs the grader's sandbox (bubblewrap and writable cgroups, as root)", allow_module_level=True)

LIMITS = Limits(cell_timeout=60)

# The first student's notebook leaves something everywhere a kernel can write, and a process behind.
LEAVE_TRACES = '''
import os, pathlib, subprocess
for folder in ["/tmp", "/var/tmp", "/dev/shm", os.getcwd(), str(pathlib.Path(os.getcwd()).parent),
               str(pathlib.Path(os.getcwd()).parents[1]), os.environ["HOME"]]:
    try:
        pathlib.Path(folder, "left-by-ann").write_text("the answer is 42")
    except OSError:
        pass
from multiprocessing import shared_memory
_kept = shared_memory.SharedMemory(name="left-by-ann", create=True, size=64)
_sleeper = subprocess.Popen(["sleep", "600"], start_new_session=True)
'''
# The second student's loss is right only if nothing of the first notebook is in sight.
LOOK_FOR_TRACES = '''
import glob, os, pathlib
_places = ["/tmp", "/var/tmp", "/dev/shm", str(pathlib.Path(os.getcwd()).parents[1]), os.environ["HOME"]]
_seen = [p for place in _places for p in glob.glob(place + "/**/left-by-ann", recursive=True)]
_others = [p for p in glob.glob("/proc/[0-9]*/cmdline") if b"sleep" in open(p, "rb").read()]
assert not _seen and not _others and not os.path.exists("/dev/shm/left-by-ann"), (_seen, _others)
import rlhf_core
try:   # the library is read-only, and no other lesson's withheld copy is in sight
    open(os.path.join(os.path.dirname(rlhf_core.__file__), "left-by-ben"), "w").close()
    _written = True
except OSError:
    _written = False
assert not _written and not glob.glob("/dpo-grader/libraries/*"), _written
''' + RIGHT_LOSS


def _grade(tmp_path, students, **options):
    write_submissions(tmp_path / "submissions", students)
    said = []
    assert autograde(tmp_path / "submissions", tmp_path / "out", jobs=1, limits=LIMITS, gradebook=False, report=False,
                     log=said.append, **options) == 0
    return {r.student: r for r in read_results(tmp_path / "out")}, said


def test_a_warm_kernel_sees_nothing_the_notebook_before_it_left(tmp_path):
    results, _ = _grade(tmp_path, {"ann": answered(extra_loss=LEAVE_TRACES), "ben": answered(loss=LOOK_FOR_TRACES)})
    assert [results[s].kernel for s in ("ann", "ben")] == ["warm", "warm"], results
    assert results["ann"].score == FULL, results["ann"].message
    assert (results["ben"].score, results["ben"].status) == (FULL, "graded"), results["ben"].message
    assert results["ben"].timing["grader preamble"] < 1.0, results["ben"].timing   # the imports were paid before


def test_the_same_traces_are_seen_by_a_later_cell_of_the_same_notebook(tmp_path):
    """The look-for-traces answer can fail: in the notebook that left them, it sees them."""
    results, _ = _grade(tmp_path, {"ann": answered(extra_loss=LEAVE_TRACES,
                                                   reward=LOOK_FOR_TRACES.replace(RIGHT_LOSS, RIGHT_REWARD))})
    # left in the loss cell, looked for in the reward cell: the assertion fails there, so no implicit_reward
    failed = [c.grade_id for c in results["ann"].cells if not c.passed]
    assert "check_implicit_reward" in failed and "check_dpo_loss" not in failed, results["ann"].cells


def test_a_notebook_that_kills_its_server_ends_only_itself(tmp_path):
    kill_server = '''
import glob, os, signal
for _cmdline in glob.glob("/proc/[0-9]*/cmdline"):
    if b"kernel_server.py" in open(_cmdline, "rb").read():
        os.kill(int(_cmdline.split("/")[2]), signal.SIGKILL)
'''
    results, _ = _grade(tmp_path, {"ann": answered(extra_loss=kill_server), "ben": answered()})
    assert results["ann"].status == "kernel died", results["ann"]
    assert (results["ben"].score, results["ben"].kernel) == (FULL, "warm"), results["ben"]


def test_a_server_that_cannot_start_leaves_cold_kernels_and_says_so(tmp_path, monkeypatch):
    def refuse(self, *args, **kwargs):
        raise grader.warm.ServerUnavailable("user namespaces are turned off on this machine")

    monkeypatch.setattr(grader.warm.KernelServer, "__init__", refuse)
    results, said = _grade(tmp_path, {"ann": answered(), "ben": answered()})
    assert all((r.score, r.kernel) == (FULL, "cold") for r in results.values()), results
    notes = [line for line in said if "start cold" in line]
    assert len(notes) == 1 and "user namespaces are turned off" in notes[0], said


def _spawn_nothing(self, notebook, connection_file):
    return _dead_pid()   # a kernel that is gone before it answers


def _spawn_refused(self, notebook, connection_file):
    raise grader.warm.ServerUnavailable("the kernel server could not fork a kernel: no more processes")


@pytest.mark.parametrize("spawn, said", [(_spawn_nothing, "did not start"), (_spawn_refused, "could not fork")])
def test_a_kernel_the_server_cannot_give_is_run_cold_and_costs_no_grade(tmp_path, monkeypatch, spawn, said):
    monkeypatch.setattr(grader.warm.KernelServer, "spawn", spawn)
    results, log = _grade(tmp_path, {"ann": answered(), "ben": answered()})
    assert all((r.score, r.status, r.kernel) == (FULL, "graded", "cold") for r in results.values()), results
    assert sum("start cold" in line and said in line for line in log) == 1, log


def test_cold_kernels_on_request(tmp_path):
    results, _ = _grade(tmp_path, {"ann": answered()}, warm=False)
    assert (results["ann"].score, results["ann"].kernel) == (FULL, "cold")


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid
