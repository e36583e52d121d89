"""Runs inside a grading sandbox: imports what every graded kernel imports, once, then forks a fresh kernel per notebook.

``python kernel_server.py`` is started by :mod:`grader.warm` as the command of a sandbox like a kernel's
(:class:`grader.sandbox.KernelSandbox`: no network, read-only environment, the lesson's withheld library, uid
65534, no capabilities, ``no_new_privs``, prlimits, its own cgroup). It imports torch, numpy, matplotlib and
ipykernel (about two seconds a kernel otherwise spends on every notebook), answers ``ready``, then serves
requests, one JSON line each on stdin, answers on stdout:

* ``{"op": "spawn", "connection_file": …, "env": {…}, "cwd": …, "log": …}`` forks a child that waits;
  the answer is its pid in this sandbox's PID namespace. The grader moves the child into the notebook's own
  cgroup, then sends
* ``{"op": "go", "pid": …}``: the child leaves every namespace it shares with this server and with the
  kernels before it but the PID namespace — new user, mount, network, IPC, UTS and cgroup namespaces, fresh
  ``/tmp``, ``/var/tmp`` and ``/dev/shm``, and of the server's scratch folder only its own notebook's — binds
  its lesson's withheld copy of ``rlhf_core`` (``library``) read-only over the package and covers the other
  lessons' copies, drops every capability it gained there, and becomes the kernel. Nothing one notebook leaves behind (files,
  shared memory, sockets; its processes die with its cgroup) is visible to the next. The PID namespace is
  the server's sandbox's (a new one would need a new ``/proc``, which bwrap's covered ``/proc`` does not
  allow): the kernel sees the server there, cannot read or trace it (the server is not dumpable), and a kernel
  that kills it ends only its own notebook (the grader starts another server for the next).

Only the standard library is imported before the fork besides the pre-imports; ``rlhf_core`` is not (each
kernel imports it, so what it reads from the environment is the notebook's). Python's ``random`` reseeds
itself in a forked child; numpy's global generator is reseeded here, so no two kernels share random state.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
from typing import NoReturn

CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x02000000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWNET = 0x10000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 32, 0x1000, 0x4000, 0x40000
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP = 1, 4, 24
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

_libc = ctypes.CDLL(None, use_errno=True)
# from the grader, as the one argument (JSON): the server's writable folder ("root"), the read-only paths a kernel
# must keep seeing ("keep"), the rlhf_core package's path ("library_target") and where the lessons' withheld
# copies lie ("libraries")
SETUP: dict = {}


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(source: str, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    _check(_libc.mount(source.encode(), target.encode(), fstype.encode() if fstype else None, flags,
                       data.encode() if data else None), f"mount {target}")


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def _leave_namespaces(root: str | None = None, own: str | None = None, keep: list[str] = ()) -> None:
    """New user (the same uid and gid, mapped), mount, network, IPC, UTS and cgroup namespaces. Fresh scratch file
    systems in the new mount namespace over ``/tmp``, ``/var/tmp``, ``/dev/shm`` and the server's writable folder
    ``root``; under them only the notebook's own folder ``own`` (writable) and the read-only paths ``keep`` that lay
    there (the sandbox's binds of a checkout or venv under ``/tmp``) are left, at their own paths."""
    uid, gid = os.getuid(), os.getgid()
    _check(_libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP),
           "unshare")
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"{uid} {uid} 1")
    _write("/proc/self/gid_map", f"{gid} {gid} 1")
    _mount("none", "/", None, MS_REC | MS_PRIVATE)
    fresh = [path for path in ("/dev/shm", "/var/tmp", "/tmp") if os.path.isdir(path)]
    covered = fresh + ([root] if root else [])
    kept = [(path, True) for path in keep if os.path.exists(path) and any(_inside(path, c) for c in covered)]
    kept += [(own, False)] if own else []
    kept = [(path, ro) for path, ro in kept if not any(other != path and _inside(path, other) for other, _ in kept)]
    # keep those at a staging point on a fresh tmpfs that lies over none of them, cover everything, put them back
    staging = next(path for path in fresh + ["/run"] if not any(_inside(kept_path, path) for kept_path, _ in kept))
    _mount("tmpfs", staging, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=256m")
    held = []
    for index, (path, ro) in enumerate(kept):
        spot = os.path.join(staging, f".kept-{index}")
        _make_spot(spot, os.path.isdir(path))
        _mount(path, spot, None, MS_BIND | MS_REC)
        held.append((spot, path, ro))
    for path in covered:
        if path != staging and os.path.isdir(path):   # the server's folder may lie under a fresh tmpfs already
            _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=256m")
    for spot, path, ro in held:
        _make_spot(path, os.path.isdir(spot))
        _mount(spot, path, None, MS_BIND | MS_REC)
        if ro:
            _read_only(path)
        _check(_libc.umount2(spot.encode(), MNT_DETACH), f"umount {spot}")
        os.rmdir(spot) if os.path.isdir(spot) else os.unlink(spot)


def _make_spot(path: str, folder: bool) -> None:
    """A mount point: a folder, or an empty file for a file."""
    if folder:
        os.makedirs(path, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "a").close()


def _read_only(path: str) -> None:
    """``path``'s mount read-only (a bind of a read-only mount already is; else remounted), or an error."""
    if not os.statvfs(path).f_flag & os.ST_RDONLY:
        _mount("none", path, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    if not os.statvfs(path).f_flag & os.ST_RDONLY:
        raise OSError(f"{path} could not be made read-only")


def _show_library(library: str | None, target: str, libraries: str | None) -> None:
    """The lesson's withheld copy of rlhf_core (``library``) bound read-only over the package (``target``), and
    every lesson's copy (under ``libraries``) covered."""
    if library:
        _mount(library, target, None, MS_BIND | MS_REC)
        _read_only(target)
    if libraries and os.path.isdir(libraries):
        _mount("tmpfs", libraries, "tmpfs", MS_NOSUID | MS_NODEV | MS_RDONLY, "mode=0755,size=4k")


def _inside(path: str, folder: str) -> bool:
    return os.path.commonpath([os.path.abspath(path), folder]) == folder


def _drop_capabilities() -> None:
    """Every capability the new user namespace granted, gone (bounding set, then effective/permitted/inheritable)."""
    cap = 0
    while _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0:
        cap += 1
    header, data = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0), (_CapData * 2)()
    _check(_libc.capset(ctypes.byref(header), data), "capset")
    with open("/proc/self/status") as f:
        effective = next(line.split()[1] for line in f if line.startswith("CapEff:"))
    if int(effective, 16):
        raise OSError("capabilities left after dropping them")


def _die_with_parent() -> None:
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _kernel(request: dict) -> None:
    """Become the kernel: the notebook's environment, working directory and log, then ipykernel."""
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.closerange(3, 65536)
    sys.stdin, sys.stdout, sys.stderr = (open(0, closefd=False), open(1, "w", closefd=False, buffering=1),
                                         open(2, "w", closefd=False, buffering=1))
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [path for path in sys.path if path and os.path.abspath(path) != here]   # as ipykernel_launcher's
    sys.argv = ["ipykernel_launcher", "-f", request["connection_file"]]
    from ipykernel import kernelapp

    kernelapp.launch_new_instance()


def _child(request: dict, go: int) -> NoReturn:
    """The forked child: wait for the grader's go (it has moved us into the notebook's cgroup), then leave the
    server's namespaces and become the kernel. Never returns."""
    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)   # the server's reaper is not the kernel's
        _die_with_parent()
        if os.read(go, 1) != b"g":
            os._exit(1)
        os.close(go)
        _leave_namespaces(SETUP["root"], request["own"], SETUP["keep"])
        _show_library(request.get("library"), SETUP["library_target"], SETUP["libraries"])
        _drop_capabilities()
        _libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)   # as any process: its own /proc files are its own
        os.setsid()
        _kernel(request)
        code = 0
    except BaseException as exc:   # noqa: BLE001 - a child must never return into the server's loop
        try:
            os.write(2, f"kernel_server: the kernel did not start: {type(exc).__name__}: {exc}\n".encode())
        except OSError:
            pass
    finally:
        os._exit(code)


def _self_test() -> str | None:
    """Whether a child can leave the namespaces, keep what a kernel needs in sight and drop its capabilities here
    (user namespaces may be off): None, or what failed."""
    own = os.path.join(SETUP["root"], "self-test")
    os.makedirs(own, exist_ok=True)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        message = b""
        try:
            _leave_namespaces(SETUP["root"], own, SETUP["keep"])
            _show_library(None, SETUP["library_target"], SETUP["libraries"])
            _drop_capabilities()
            missing = [path for path in (sys.executable, SETUP["library_target"], own) if not os.path.exists(path)]
            if missing:
                message = f"after leaving the namespaces a kernel would not see {', '.join(missing)}".encode()
        except BaseException as exc:   # noqa: BLE001
            message = f"{type(exc).__name__}: {exc}".encode()
        os.write(write, message)
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as f:
        message = f.read()
    os.waitpid(pid, 0)
    os.rmdir(own)
    return message.decode() or None


def _preimport() -> None:
    import ipykernel.ipkernel  # noqa: F401
    import ipykernel.kernelapp  # noqa: F401
    import IPython  # noqa: F401
    import matplotlib  # noqa: F401
    import matplotlib.pyplot  # noqa: F401
    import matplotlib_inline.backend_inline  # noqa: F401
    import numpy  # noqa: F401
    import torch  # noqa: F401


def main() -> None:
    SETUP.update(json.loads(sys.argv[1]))
    requests, answers = sys.stdin.buffer, sys.stdout.buffer

    def answer(message: dict) -> None:
        answers.write(json.dumps(message).encode() + b"\n")
        answers.flush()

    _libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)   # no kernel may read or trace this process's memory
    _preimport()
    problem = _self_test()
    answer({"ready": problem is None, "problem": problem, "pid": os.getpid()})
    if problem is not None:
        return
    signal.signal(signal.SIGCHLD, lambda *_: _reap())
    waiting: dict[int, int] = {}
    for line in requests:
        try:
            request = json.loads(line)
            if request.get("op") == "spawn":
                go_read, go_write = os.pipe()
                pid = os.fork()
                if pid == 0:
                    os.close(go_write)
                    for fd in list(waiting.values()):
                        os.close(fd)
                    _child(request, go_read)
                os.close(go_read)
                waiting[pid] = go_write
                answer({"pid": pid})
            elif request.get("op") == "go":
                go_write = waiting.pop(int(request["pid"]))
                os.write(go_write, b"g")
                os.close(go_write)
                answer({"ok": True})
            else:
                answer({"error": f"unknown request {request!r}"})
        except Exception as exc:   # noqa: BLE001 - a bad request is answered, never the end of the server
            answer({"error": f"{type(exc).__name__}: {exc}"})


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


if __name__ == "__main__":
    main()
