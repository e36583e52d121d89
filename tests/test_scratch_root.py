"""The grader's scratch folder holds its kernels' Unix sockets, whose paths are limited (107 bytes on Linux, 103 on
macOS): a deep temp folder (an instructor's ``TMPDIR``, macOS's ``/var/folders/…/T``, pytest's own) moves the
scratch to ``/tmp`` under a name that says whose temp folder it stands in for, instead of failing every kernel
with "ZMQError: File name too long". Tested by binding a real socket where a warm server's kernel binds one."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from grader.sandbox import (
    DEEPEST_SOCKET,
    SHORT_TEMP,
    SOCKET_PATH_MAX,
    SOCKETS,
    kernel_name,
    scratch_root,
    server_name,
    short_prefix,
)

zmq = pytest.importorskip("zmq")


def bind_deepest_socket(root: Path) -> None:
    """Bind and close an ipc socket where a forked kernel of a warm server binds one (names as the grader makes them)."""
    folder = root / server_name() / kernel_name()
    folder.mkdir(parents=True)
    context = zmq.Context()
    socket = context.socket(zmq.REP)
    try:
        socket.bind(f"ipc://{folder / SOCKETS}-99")
    finally:
        socket.close(linger=0)
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
