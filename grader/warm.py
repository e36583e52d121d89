"""Warm kernels: each grading job keeps a sandboxed server that has imported torch, numpy, matplotlib and
ipykernel once, and forks every notebook's kernel from it into namespaces of its own.

A cold kernel spends about two seconds of its notebook's grading importing those libraries (``docs/measurements.md``'s time
breakdown); a kernel forked from :mod:`grader.kernel_server` starts with them imported. Isolation is the
cold kernel's: the server runs in a :class:`grader.sandbox.KernelSandbox` like a kernel's, which also shows,
read-only and out of the way, the withheld copy of ``rlhf_core`` of every lesson the run grades; each kernel it
forks is a new process in new user, mount, network, IPC, UTS and cgroup namespaces, with fresh ``/tmp``,
``/var/tmp`` and ``/dev/shm``, its own lesson's withheld copy bound read-only over ``rlhf_core`` and the other
copies covered, no capabilities, and only its own notebook's folder of the server's scratch space, moved into
the notebook's own cgroup (memory and process caps) before it runs any code. A notebook cannot see what the
kernels before it left (``tests/test_warm_kernels.py``).

Used by :func:`grader.autograde.autograde` (and on Dask workers) when the sandbox is complete (``--cold`` turns it
off); a server that cannot start, or cannot give a kernel its namespaces on this machine, is reported once and
the job grades with cold kernels, which isolate the same way.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

from rlhf_core.paths import LIBRARY_DIR

from .sandbox import Isolation, KernelSandbox, Limits, server_name

__all__ = ["KernelServer", "WarmKernels", "ServerUnavailable", "lesson_libraries"]

SERVER_FILE = Path(__file__).with_name("kernel_server.py")
SERVER_INSIDE = "/dpo-grader/kernel_server.py"     # where the sandbox shows it
LIBRARIES_INSIDE = "/dpo-grader/libraries"          # where it shows the lessons' withheld copies of rlhf_core
START_TIMEOUT = 90.0


class ServerUnavailable(RuntimeError):
    """The kernel server did not start or cannot fork kernels here; the job grades with cold kernels."""


class KernelServer:
    """One pre-imported kernel server in its own sandbox. ``libraries`` maps each lesson's withheld copy of
    ``rlhf_core`` (a folder holding it, :func:`grader.withheld.withheld_library`) to where the sandbox shows it."""

    def __init__(self, iso: Isolation, limits: Limits, root: Path, libraries: list[Path]):
        self.failed: str | None = None     # what went wrong, once a kernel could not be forked or did not start
        name = server_name()
        self.libraries = {Path(folder): f"{LIBRARIES_INSIDE}/{index}" for index, folder in enumerate(libraries)}
        self.sandbox = KernelSandbox(iso, limits, Path(root) / name, name)
        binds = {str(SERVER_FILE): SERVER_INSIDE,
                 **{str(folder / "rlhf_core"): inside for folder, inside in self.libraries.items()}}
        setup = {"root": str(self.sandbox.scratch), "library_target": str(LIBRARY_DIR), "libraries": LIBRARIES_INSIDE,
                 "keep": [inside for _, inside in self.sandbox.read_only_binds()]}
        argv = self.sandbox.kernel_argv(command=[sys.executable, SERVER_INSIDE, json.dumps(setup)], ro_files=binds)
        self._log = open(self.sandbox.scratch / "server.log", "wb")
        self._lock = threading.Lock()
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
                                     cwd=str(self.sandbox.work), start_new_session=True)
        try:
            ready = self._answer(START_TIMEOUT)
        except ServerUnavailable:
            self.close()
            raise
        if not ready.get("ready"):
            self.close()
            raise ServerUnavailable(ready.get("problem") or "the kernel server did not say it was ready")

    def serves(self, library: Path | None) -> bool:
        """Whether a kernel with this withheld library (None: the real one) can be forked here."""
        return library is None or Path(library) in self.libraries

    @property
    def scratch(self) -> Path:
        """Where the notebooks' own folders go: the server's sandbox shows this folder (each kernel only its own)."""
        return self.sandbox.scratch

    def alive(self) -> bool:
        return self.proc.poll() is None

    def _answer(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                raise ServerUnavailable(f"the kernel server did not answer within {timeout:.0f} s")
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                raise ServerUnavailable(f"the kernel server exited (code {self.proc.poll()}); see {self.sandbox.scratch / 'server.log'}")
            line += chunk
        try:
            answer = json.loads(line)
        except ValueError:
            raise ServerUnavailable(f"the kernel server answered something that is not JSON: {line[:200]!r}") from None
        if "error" in answer:
            raise ServerUnavailable(f"the kernel server refused: {answer['error']}")
        return answer

    def _ask(self, request: dict, timeout: float = 30.0) -> dict:
        self.proc.stdin.write(json.dumps(request).encode() + b"\n")
        self.proc.stdin.flush()
        return self._answer(timeout)

    def spawn(self, notebook: KernelSandbox, connection_file: Path) -> int:
        """Fork the kernel of ``notebook`` (a sandbox whose scratch lies in :attr:`scratch`, with a library this
        server :meth:`serves`), put it in that sandbox's cgroups, let it start; its host pid (watch it: its exit
        is the kernel's)."""
        env = notebook.sandboxed_env()
        library = self.libraries[notebook.library] if notebook.library is not None else None
        request = {"op": "spawn", "connection_file": str(connection_file), "env": env, "cwd": str(notebook.work),
                   "log": str(notebook.scratch / "kernel.log"), "own": str(notebook.scratch), "library": library}
        with self._lock:
            try:
                child = int(self._ask(request)["pid"])
                host = self._host_pid(child)
                for path in notebook.cgroups.values():
                    (path / "cgroup.procs").write_text(str(host))
                self._ask({"op": "go", "pid": child})
            except (OSError, ValueError, KeyError) as exc:
                raise ServerUnavailable(f"the kernel server could not fork a kernel: {exc}") from exc
        return host

    def _host_pid(self, child: int) -> int:
        """The host pid of the server's child ``child`` (a pid in the server's namespace): the process of the
        server's cgroup whose innermost pid it is."""
        cgroup = next(iter(self.sandbox.cgroups.values()))   # the server runs only under the full sandbox
        for pid in (cgroup / "cgroup.procs").read_text().split():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            nspid = next((line.split()[1:] for line in status.splitlines() if line.startswith("NSpid:")), [])
            if len(nspid) >= 2 and int(nspid[-1]) == child:
                return int(nspid[0])
        raise OSError(f"the kernel server's child {child} was not found in its cgroup")

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            pass
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        self._log.close()
        self.sandbox.cleanup()


class WarmKernels:
    """The kernel servers of one autograde run (or one Dask worker): one per job (thread), for the whole run.
    ``libraries()`` gives the withheld copies of the lessons the run grades (asked when a server starts; a
    notebook whose library is not among them starts cold). ``log`` hears once if servers cannot be used."""

    def __init__(self, iso: Isolation, limits: Limits, root: Path, libraries=lambda: [], log=print):
        self.iso, self.limits, self.root, self.log = iso, limits, Path(root), log
        self.libraries = libraries
        self._local = threading.local()
        self._servers: list[KernelServer] = []
        self._lock = threading.Lock()
        self.problem: str | None = None

    def server(self, library: Path | None) -> KernelServer | None:
        """This job's server, started if need be, when it can fork a kernel with ``library``; else None."""
        if self.problem is not None:
            return None
        current = getattr(self._local, "server", None)
        if current is not None and current.failed:
            self.retire(current)
            self.unavailable(current.failed)
            return None
        if current is not None and current.alive():
            return current if current.serves(library) else None
        if current is not None:
            self.retire(current)
        try:
            current = KernelServer(self.iso, self.limits, self.root, sorted({Path(p) for p in self.libraries() if p}))
        except (ServerUnavailable, OSError) as exc:
            self.unavailable(str(exc))
            return None
        self._local.server = current
        with self._lock:
            self._servers.append(current)
        return current if current.serves(library) else None

    def unavailable(self, problem: str) -> None:
        with self._lock:
            if self.problem is None:
                self.problem = problem
                self.log(f"note: kernels start cold (each imports the libraries itself), because the kernel server "
                         f"cannot be used here: {problem}")

    def retire(self, server: KernelServer) -> None:
        if getattr(self._local, "server", None) is server:
            self._local.server = None
        with self._lock:
            if server in self._servers:
                self._servers.remove(server)
        server.close()

    def close(self) -> None:
        with self._lock:
            servers, self._servers = self._servers, []
        for server in servers:
            if server.failed:   # failed on the job's last notebook: said here, as it would be at the next one
                self.unavailable(server.failed)
            server.close()


def lesson_libraries(lessons: dict, names, scratch: Path) -> list[Path]:
    """The withheld copies of ``rlhf_core`` of the lessons ``names`` (those of ``lessons`` that withhold any),
    built under ``scratch`` as grading them would."""
    from .withheld import withheld_library

    folders = [withheld_library(name, lessons[name].spec, scratch) for name in sorted(n for n in names if n in lessons)]
    return [folder for folder in folders if folder is not None]
