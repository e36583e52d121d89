"""Warm kernels: each grading job keeps a sandboxed server that has imported torch, numpy, matplotlib and
ipykernel once, and forks every notebook's kernel from it into namespaces of its own.

A cold kernel spends about two seconds of its notebook's grading importing those libraries (the README's time
breakdown); a kernel forked from :mod:`grader.kernel_server` starts with them imported. Isolation is the
cold kernel's: the server runs in a :class:`grader.sandbox.KernelSandbox` like a kernel's (the lesson's
withheld library, so there is one server per job and lesson), and each kernel it forks is a new process in
new user, mount, network, IPC, UTS, cgroup and PID namespaces, with fresh ``/tmp``, ``/var/tmp``,
``/dev/shm`` and ``/proc``, no capabilities, and only its own notebook's folder of the server's scratch
space, moved into the notebook's own cgroup (memory and process caps) before it runs any code. A notebook
cannot see or reach the server or the kernels before it (``tests/test_warm_kernels.py``).

Used by :func:`grader.autograde.autograde` on this machine when the sandbox is complete (``--cold`` turns it
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
import uuid
from pathlib import Path

from .sandbox import Isolation, KernelSandbox, Limits

__all__ = ["KernelServer", "WarmKernels", "ServerUnavailable"]

SERVER_FILE = Path(__file__).with_name("kernel_server.py")
SERVER_INSIDE = "/dpo-grader/kernel_server.py"     # where the sandbox shows it
START_TIMEOUT = 90.0


class ServerUnavailable(RuntimeError):
    """The kernel server did not start or cannot fork kernels here; the job grades with cold kernels."""


class KernelServer:
    """One pre-imported kernel server in its own sandbox, for one lesson's withheld library."""

    def __init__(self, iso: Isolation, limits: Limits, root: Path, lesson: str, library: Path | None):
        self.lesson, self.library = lesson, library
        self.failed: str | None = None     # what went wrong, once a kernel could not be forked or did not start
        name = f"server-{uuid.uuid4().hex[:10]}"
        self.sandbox = KernelSandbox(iso, limits, Path(root) / name, name, library=library)
        argv = self.sandbox.kernel_argv(command=[sys.executable, SERVER_INSIDE], ro_files={str(SERVER_FILE): SERVER_INSIDE})
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
        answer = json.loads(line)
        if "error" in answer:
            raise ServerUnavailable(f"the kernel server refused: {answer['error']}")
        return answer

    def _ask(self, request: dict, timeout: float = 30.0) -> dict:
        self.proc.stdin.write(json.dumps(request).encode() + b"\n")
        self.proc.stdin.flush()
        return self._answer(timeout)

    def spawn(self, notebook: KernelSandbox, connection_file: Path) -> int:
        """Fork the kernel of ``notebook`` (a sandbox whose scratch lies in :attr:`scratch`), put it in that
        sandbox's cgroups, let it start; its host pid (watch it: its exit is the kernel's)."""
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", **notebook.kernel_env()}
        request = {"op": "spawn", "connection_file": str(connection_file), "env": env, "cwd": str(notebook.work),
                   "log": str(notebook.scratch / "kernel.log"), "root": str(self.scratch), "own": str(notebook.scratch)}
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
        for path in self.sandbox.cgroups.values():
            for pid in (path / "cgroup.procs").read_text().split():
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    continue
                nspid = next((line.split()[1:] for line in status.splitlines() if line.startswith("NSpid:")), [])
                if len(nspid) >= 2 and int(nspid[-1]) == child and int(nspid[0]) != self.proc.pid:
                    return int(nspid[0])
            break
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
    """The kernel servers of one autograde run: one per job (thread) and lesson, the last one kept while the
    job's notebooks are of the same lesson. ``log`` hears once if a server cannot be used."""

    def __init__(self, iso: Isolation, limits: Limits, root: Path, log=print):
        self.iso, self.limits, self.root, self.log = iso, limits, Path(root), log
        self._local = threading.local()
        self._servers: list[KernelServer] = []
        self._lock = threading.Lock()
        self.problem: str | None = None

    def server(self, lesson: str, library: Path | None) -> KernelServer | None:
        """This job's server for ``lesson``, started if need be; None when servers cannot be used here."""
        if self.problem is not None:
            return None
        current = getattr(self._local, "server", None)
        if current is not None and current.failed:
            self.retire(current)
            self.unavailable(current.failed)
            return None
        if current is not None and current.lesson == lesson and current.library == library and current.alive():
            return current
        if current is not None:
            self.retire(current)
        try:
            current = KernelServer(self.iso, self.limits, self.root, lesson, library)
        except (ServerUnavailable, OSError) as exc:
            self.unavailable(str(exc))
            return None
        self._local.server = current
        with self._lock:
            self._servers.append(current)
        return current

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
            server.close()
