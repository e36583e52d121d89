"""Run a composed notebook in one (sandboxed) kernel: deadlines, output caps, and the probe records.

:func:`run_notebook` never raises for anything the submission does. It returns a :class:`RunResult`:
the status (:class:`~grader.result.Status`: graded, timeout, memory or kernel died), a one-line reason and the records
that probe cells published (read as the messages arrived, before any output cap); the notebook is
executed in place, its outputs capped.

:func:`cancel_runs` (what ``autograde`` calls on Ctrl-C or SIGTERM) stops grading in this process: every kernel
running now is killed, none starts any more, and each notebook so stopped raises :class:`GradingCancelled` (a
``BaseException``: it is no notebook's grade) after its sandbox is cleaned up; :func:`allow_runs` lifts it.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from jupyter_client import AsyncKernelManager
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_core.utils import run_sync
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

from .kernel_side import RECORD_MIME
from .result import Status
from .sandbox import Isolation, KernelSandbox, Limits, kernel_name
from .warm import KernelServer, ServerUnavailable
from .wording import short_form

__all__ = ["RunResult", "run_notebook", "GradingCancelled", "cancel_runs", "allow_runs"]

MAX_RECORD_BYTES = 4_000_000


class GradingCancelled(BaseException):
    """This notebook's grading was stopped by :func:`cancel_runs`: it has no result (a re-run grades it)."""


_RUNS_LOCK = threading.Lock()
_RUNNING: dict[str, tuple | None] = {}     # run name -> (sandbox, kernel manager) once they exist
_CANCELLED: set[str] = set()
_STOPPING = threading.Event()


def cancel_runs() -> None:
    """Stop grading in this process: kill every running kernel (its notebook raises :class:`GradingCancelled`)
    and start no other."""
    _STOPPING.set()
    with _RUNS_LOCK:
        running = [parts for parts in _RUNNING.values() if parts is not None]
        _CANCELLED.update(_RUNNING)
    for sandbox, km in running:
        _kill(sandbox, km)


def allow_runs() -> None:
    """Let kernels start again (a new autograde run in this process)."""
    _STOPPING.clear()


def _kill(sandbox: KernelSandbox, km) -> None:
    """SIGKILL a kernel: its process group (the kernel manager starts it in a session of its own) and its cgroup."""
    process = getattr(getattr(km, "provisioner", None), "process", None)
    if process is not None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError, OSError):
            pass
    sandbox.kill_all()


def _attach(name: str, sandbox: KernelSandbox, km) -> None:
    with _RUNS_LOCK:
        _RUNNING[name] = (sandbox, km)
        cancelled = name in _CANCELLED
    if cancelled:
        raise GradingCancelled("stopped before its kernel started")


@dataclass
class RunResult:
    status: Status = Status.GRADED
    reason: str = ""
    records: dict[int, list[str]] = field(default_factory=dict)   # cell index -> raw record texts
    seconds: float = 0.0
    # where the time went, in seconds: "kernel start" (launch until the kernel answers), then per kind of
    # cell (see run_notebook's ``kinds``), and "shutdown" (kernel stopped, sandbox removed)
    timing: dict[str, float] = field(default_factory=dict)
    warm: bool = False     # the kernel was forked from a warm kernel server (grader.warm)


class _CappedClient(NotebookClient):
    """An nbclient that keeps at most ``max_output_bytes`` of outputs per cell and lifts the grader's
    records out of the message stream as they arrive."""

    def __init__(self, *args, max_output_bytes: int, records: dict, **kwargs):
        super().__init__(*args, **kwargs)
        self._cap, self._records, self._used, self._dropped = max_output_bytes, records, {}, {}

    def output(self, outs, msg, display_id, cell_index):
        content = msg.get("content", {})
        data = content.get("data") or {}
        if msg.get("msg_type") == "display_data" and RECORD_MIME in data:
            text = data[RECORD_MIME]
            if isinstance(text, str) and len(text) <= MAX_RECORD_BYTES:
                self._records.setdefault(cell_index, []).append(text)
            else:
                self._records.setdefault(cell_index, []).append("")   # an oversized record counts, and fails
            return None
        size = _size(content)
        used = self._used.get(cell_index, 0)
        if used + size > self._cap:
            if cell_index not in self._dropped:
                self._dropped[cell_index] = True
                outs.append(_note(f"[output truncated by the grader: this cell printed more than {self._cap // 1000} kB]"))
            return None
        self._used[cell_index] = used + size
        return super().output(outs, msg, display_id, cell_index)


def _size(content: dict) -> int:
    if "text" in content:
        return len(str(content["text"]).encode("utf-8", "replace"))
    total = 0
    for value in (content.get("data") or {}).values():
        total += len(value) if isinstance(value, str) else len(str(value))
    for key in ("traceback",):
        total += sum(len(str(line)) for line in content.get(key, []))
    return total


def _note(text: str):
    from nbformat.v4 import new_output

    return new_output("stream", name="stderr", text=text + "\n")


def run_notebook(nb, iso: Isolation, limits: Limits, scratch_root: Path, library: Path | None = None,
                 kinds: dict[int, str] | None = None, server: KernelServer | None = None) -> RunResult:
    """Execute ``nb`` cell by cell in a fresh kernel inside a :class:`KernelSandbox` (``library``: the
    folder of the ``rlhf_core`` copy the kernel imports, see :mod:`grader.withheld`). ``kinds`` names
    what some cells are (cell index → e.g. "probe cells"), for ``RunResult.timing``; the others count
    as "lesson cells". ``server``: fork the kernel from this warm kernel server (:mod:`grader.warm`, same
    isolation, the libraries already imported); if it cannot, or the forked kernel never answers, the
    notebook runs in a cold kernel (the fault is the server's, never the submission's: no submission code
    runs before the kernel answers)."""
    try:
        result = _run(nb, iso, limits, scratch_root, library, kinds, server)
        if server is not None and (server.failed or (result.warm and "kernel start" not in result.timing)):
            server.failed = server.failed or f"a kernel it forked did not start ({result.reason})"   # its job retires it
            result = _run(nb, iso, limits, scratch_root, library, kinds, None)
        return result
    finally:
        _close_thread_loop()


def _close_thread_loop() -> None:
    """Close the event loop jupyter_core's ``run_sync`` made for this worker thread. It keeps one loop per thread
    and never closes it, so every grading thread that ended would leave the loop's epoll and socket pair open: a
    process that grades many runs (a test session, a long-lived Dask worker) ran past 1024 descriptors, where
    ``select()`` fails ("filedescriptor out of range"). The next run in the thread makes a new loop. The main
    thread's loop is left alone: it is one loop, and code after the run may still use it."""
    if threading.current_thread() is threading.main_thread():
        return
    import asyncio

    from jupyter_core.utils import ensure_event_loop

    try:
        asyncio.get_running_loop()
        return                      # called from inside a running loop: not ours to close
    except RuntimeError:
        pass
    loop = ensure_event_loop()
    try:
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()


def _run(nb, iso: Isolation, limits: Limits, scratch_root: Path, library: Path | None, kinds: dict[int, str] | None,
         server: KernelServer | None) -> RunResult:
    name = kernel_name()
    with _RUNS_LOCK:
        if _STOPPING.is_set():
            raise GradingCancelled("grading was stopped")
        _RUNNING[name] = None
    try:
        result = _run_kernel(name, nb, iso, limits, scratch_root, library, kinds, server)
    finally:
        with _RUNS_LOCK:
            _RUNNING.pop(name, None)
            cancelled = name in _CANCELLED
            _CANCELLED.discard(name)
    if cancelled:
        raise GradingCancelled("its kernel was stopped")
    return result


def _run_kernel(name: str, nb, iso: Isolation, limits: Limits, scratch_root: Path, library: Path | None,
                kinds: dict[int, str] | None, server: KernelServer | None) -> RunResult:
    result = RunResult()
    kinds = kinds or {}
    sandbox = KernelSandbox(iso, limits, (server.scratch if server else Path(scratch_root)) / name, name, library=library)
    km = AsyncKernelManager(kernel_name="dpo-grader", kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(sandbox.spec_dir)]))
    km.transport = "ipc"
    km.ip = str(sandbox.sockets)
    km.connection_file = str(sandbox.scratch / "connection.json")
    client = _CappedClient(nb, km=km, timeout=limits.cell_timeout, allow_errors=True, interrupt_on_timeout=False,
                           startup_timeout=60, kernel_name="dpo-grader", max_output_bytes=limits.max_output_bytes,
                           records=result.records, resources={"metadata": {"path": str(sandbox.work)}})
    start = time.monotonic()
    deadline = start + limits.notebook_timeout
    try:
        _attach(name, sandbox, km)
        kernel_log = open(sandbox.scratch / "kernel.log", "wb")
        if server is not None:
            km.write_connection_file()
            try:
                sandbox.set_kernel_command([sys.executable, "-m", "grader.launch", "--watch",
                                            str(server.spawn(sandbox, Path(km.connection_file)))])
                result.warm = True
            except ServerUnavailable as exc:
                server.failed = str(exc)   # run_notebook runs this notebook again in a cold kernel
                kernel_log.close()
                return result
        with kernel_log, client.setup_kernel(cwd=str(sandbox.work), stdout=kernel_log, stderr=kernel_log):
            result.timing["kernel start"] = time.monotonic() - start
            for index, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    result.status, result.reason = Status.TIMEOUT, f"the notebook ran past its {limits.notebook_timeout:.0f} s limit before cell {index}"
                    break
                client.timeout = max(1, int(min(limits.cell_timeout, remaining)))
                began, kind = time.monotonic(), kinds.get(index, "lesson cells")
                try:
                    client.execute_cell(cell, index)
                    result.timing[kind] = result.timing.get(kind, 0.0) + time.monotonic() - began
                except CellTimeoutError:
                    which = "notebook" if remaining < limits.cell_timeout else "cell"
                    limit = limits.notebook_timeout if which == "notebook" else limits.cell_timeout
                    result.status, result.reason = Status.TIMEOUT, f"cell {index} ran past the {which}'s {limit:.0f} s limit"
                    break
                except DeadKernelError:
                    result.status, result.reason = _died(sandbox, limits, index)
                    break
                if not run_sync(km.is_alive)():
                    result.status, result.reason = _died(sandbox, limits, index)
                    break
    except (RuntimeError, TimeoutError) as exc:   # the kernel never started
        result.status, result.reason = Status.KERNEL_DIED, f"the kernel did not start: {short_form((str(exc).splitlines() or [''])[0], 200)}"
    except DeadKernelError:
        result.status, result.reason = Status.KERNEL_DIED, "the kernel died"
    finally:
        stopping = time.monotonic()
        if result.status == Status.KERNEL_DIED and sandbox.hit_memory_cap():
            result.status, result.reason = Status.MEMORY, f"the kernel went over the {limits.memory_mb} MB memory cap"
        try:
            if km.has_kernel:
                run_sync(km.shutdown_kernel)(now=True)
        except Exception:
            pass
        try:   # nbclient stops the client's channels only for a kernel manager it made itself: this one is ours
            if client.kc is not None:
                client.kc.stop_channels()     # the heartbeat channel is a thread with a zmq context and a loop
        except Exception:
            pass
        sandbox.cleanup()
        result.seconds = time.monotonic() - start
        result.timing["shutdown"] = time.monotonic() - stopping
    _cap_images(nb, limits.max_output_bytes)
    return result


def _died(sandbox: KernelSandbox, limits: Limits, index: int) -> tuple[Status, str]:
    """Why the kernel stopped in cell ``index``: its memory cap, else it died."""
    if sandbox.hit_memory_cap():
        return Status.MEMORY, f"cell {index} went over the {limits.memory_mb} MB memory cap"
    return Status.KERNEL_DIED, f"the kernel died in cell {index} (os._exit, a crash or a kill)"


def _cap_images(nb, cap: int) -> None:
    """Drop any single image output above the cap (they were counted, but one image may still be big)."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            data = out.get("data") or {}
            for mime in [m for m in data if m.startswith("image/")]:
                if len(data[mime]) > cap:
                    data.pop(mime)
                    data["text/plain"] = f"[image removed by the grader: over {cap // 1000} kB]"
