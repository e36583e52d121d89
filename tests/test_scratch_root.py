"""The grader's scratch folder holds its kernels' Unix sockets, whose paths are limited (107 bytes on Linux, 103 on
macOS): a deep temp folder (an instructor's ``TMPDIR``, macOS's ``/var/folders/…/T``, pytest's own) moves the
scratch to ``/tmp`` under a name that says whose temp folder it stands in for, instead of failing every kernel
with "ZMQError: File name too long". Tested by binding a real socket where a warm server's kernel binds one."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from grader.sandbox import (
    DEEPEST_SOCKET,
    OWNER,
    SHORT_TEMP,
    SOCKET_PATH_MAX,
    SOCKETS,
    _started,
    kernel_name,
    scratch_root,
    server_name,
    short_prefix,
    sweep_dead_scratch,
)

zmq = pytest.importorskip("zmq")


def bind_deepest_socket(root: Path) -> None:
    """Bind and close an ipc socket where a forked kernel of a warm server binds one (names as the grader makes them)."""
    folder = root / server_name() / kernel_name()
    folder.mkdir(parents=True)
    context = zmq.Context()
    sock = context.socket(zmq.REP)
    try:
        sock.bind(f"ipc://{folder / SOCKETS}-99")
    finally:
        sock.close(linger=0)
        context.term()


@pytest.fixture
def deep_temp(tmp_path):
    folder = tmp_path / ("a-temp-folder-as-deep-as-some-machines-make-them-" * 2)
    folder.mkdir()
    return folder


def test_a_short_temp_folder_holds_the_scratch():
    temp = Path(tempfile.mkdtemp(prefix="t-", dir=SHORT_TEMP))      # short, and not /tmp itself: the scratch stays here
    try:
        root = scratch_root("dpo-grader-", str(temp))
        assert root.parent == temp and root.name.startswith("dpo-grader-")
        assert len(str(root).encode()) + DEEPEST_SOCKET <= SOCKET_PATH_MAX
        bind_deepest_socket(root)
    finally:
        shutil.rmtree(temp)


def test_a_deep_temp_folder_moves_the_scratch_to_tmp_under_a_name_of_its_own(deep_temp):
    root = scratch_root("dpo-grader-worker-", str(deep_temp))
    try:
        assert root.parent == SHORT_TEMP and root.name.startswith(short_prefix("dpo-grader-worker-", str(deep_temp)))
        assert short_prefix("dpo-grader-worker-", str(deep_temp)) != short_prefix("dpo-grader-worker-", "/elsewhere")
        assert not list(deep_temp.iterdir())
        bind_deepest_socket(root)
    finally:
        shutil.rmtree(root)


def test_the_deep_temp_folder_itself_could_not_hold_the_sockets(deep_temp):
    """What the move avoids: the same socket below the deep folder is refused (so the test above can fail)."""
    with pytest.raises(zmq.ZMQError, match="too long|longer than"):
        bind_deepest_socket(deep_temp / "dpo-grader-worker-abcdefgh")


def _scratch_of(folder: Path, owner) -> Path:
    scratch = Path(tempfile.mkdtemp(prefix="dpo-grader-worker-", dir=folder))
    (scratch / "a-kernel").mkdir()
    if owner is not None:
        (scratch / OWNER).write_text(owner if isinstance(owner, str) else json.dumps(owner))
    return scratch


@pytest.fixture
def short_temp():
    temp = Path(tempfile.mkdtemp(prefix="t-", dir=SHORT_TEMP))      # short: the scratch stays in it
    yield temp
    shutil.rmtree(temp)


def test_a_new_scratch_sweeps_the_folders_its_dead_predecessors_left_and_nothing_else(short_temp):
    """A Dask worker killed mid-notebook, or a grader quit by SIGKILL, never runs its clean-up: the next scratch of
    that name removes what a dead process of this host left, and keeps a live process's, another host's, one
    whose owner record is missing or unreadable, and another prefix's."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    here = socket.gethostname()
    dead = _scratch_of(short_temp, {"host": here, "pid": gone.pid, "started": "1"})
    live = _scratch_of(short_temp, {"host": here, "pid": os.getpid(), "started": _started(os.getpid())})
    reused = _scratch_of(short_temp, {"host": here, "pid": os.getpid(), "started": "not-when-this-one-started"})
    elsewhere = _scratch_of(short_temp, {"host": here + "-another", "pid": gone.pid, "started": "1"})
    being_made, garbled = _scratch_of(short_temp, None), _scratch_of(short_temp, "{not json")
    other = Path(tempfile.mkdtemp(prefix="dpo-grader-", dir=short_temp))
    (other / OWNER).write_text(json.dumps({"host": here, "pid": gone.pid, "started": "1"}))

    new = scratch_root("dpo-grader-worker-", str(short_temp))
    assert not dead.exists() and not reused.exists()        # a pid reused by another process is its owner's death
    assert all(p.exists() for p in (live, elsewhere, being_made, garbled, other, new))
    assert json.loads((new / OWNER).read_text()) == {"host": here, "pid": os.getpid(), "started": _started(os.getpid())}
    assert sweep_dead_scratch(short_temp, "dpo-grader-worker-") == []     # nothing more to sweep: the new one is alive
