"""Grading on a Dask cluster: ``python -m grader autograde SUBMISSIONS --out OUT --dask ADDRESS``.

Each notebook is one task for Dask `distributed <https://distributed.dask.org>`_ workers; each worker
grades it exactly as ``autograde`` does on one machine (:func:`grader.grading.grade_outcome`: the
same sandbox, limits and withheld library, the feedback page rendered there) and sends back the
result and the two texts. The instructor's process is the only writer of ``OUT``: it writes each
result atomically as it arrives, then ``grades.csv``, the gradebook and the report from them, as the
local path does. What a worker is given of a notebook: the student's name, the lesson, the file's
bytes (read here: workers need no access to the submissions) and the *derived* seeds of that
notebook's hidden tests — never the course secret (:mod:`grader.secret`). The lessons themselves (the
source notebooks and their check specs) are sent once to every worker, so workers grade against
the instructor's version of the course; a worker needs the course's Python environment installed
(``pip install -e ".[grader,cluster]"`` and the CPU build of torch), nothing else.

**Killed workers.** A worker that dies mid-notebook (killed, out of memory, its machine gone) loses
nothing: the scheduler hands its tasks to another worker, and since the instructor's process writes a
notebook's result only when that notebook's one task returns, none is counted twice. A notebook whose
grading kills ``distributed.scheduler.allowed-failures`` workers in a row (Dask's default: 3) is that
notebook's ``grader error``; the others are graded all the same. A re-run skips what is done.

**Ctrl-C and SIGTERM** (``stop``, set by ``autograde``'s signal handler): the notebooks not yet back are cancelled
on the cluster and not recorded (a re-run grades them); every worker kills the kernels it is running (Dask cannot
interrupt a running task: :func:`grader.execute.cancel_runs` on each worker ends it), then the client is closed and
a local cluster shut down, its workers removing their scratch as they exit; what came back before is written as
usual. A ``local:N`` cluster's workers ignore Ctrl-C themselves (they share the terminal's process group): the
instructor's process stops them.

**Isolation.** Every worker checks its own sandbox (:func:`grader.sandbox.detect`), and each row's
``isolation`` column says what the worker that graded it had: a worker without bubblewrap or
cgroups is visible in the CSV, as on one machine.

``ADDRESS`` is a scheduler's address (``tcp://host:8786``), or ``local:N`` for a
:class:`distributed.LocalCluster` of N single-threaded worker processes on this machine (N notebooks at
once, like ``--jobs N``, each in its own process). On a SLURM cluster, start the scheduler and workers
with ``dask-jobqueue`` (``SLURMCluster(cores=2, memory="4GB", processes=1)``, ``cluster.scale(jobs=10)``,
then pass ``cluster.scheduler_address``); on Kubernetes, with ``dask-kubernetes``
(``KubeCluster(name="grader", image=<an image with the course installed>)``, ``cluster.scale(10)``).
Give each worker one thread per notebook it may run at once (``--nthreads``) and at least the
kernel's memory cap (``--memory``, 1.5 GB by default) per thread. ``docs/grading.md``'s *Grading on a cluster*
has the commands.
"""

from __future__ import annotations

import atexit
import shutil
import signal
import threading
import time
from pathlib import Path

from .execute import GradingCancelled, allow_runs, cancel_runs
from .grading import Outcome, grade_outcome, grader_error, read_bytes
from .plan import Item
from .sandbox import Limits, detect, scratch_root
from .warm import WarmKernels, lesson_libraries

__all__ = ["grade_on_cluster", "grade_remote", "connect", "stop_worker"]

_WORKER: dict = {}          # per worker process: its isolation and its scratch folder
_WORKER_LOCK = threading.Lock()


def _worker_state(sandbox: bool):
    """This worker process's isolation (probed once) and scratch folder (removed when it exits)."""
    with _WORKER_LOCK:
        if ("iso", sandbox) not in _WORKER:
            _WORKER[("iso", sandbox)] = detect(want_sandbox=sandbox)
        if "scratch" not in _WORKER:
            scratch = scratch_root("dpo-grader-worker-")
            atexit.register(shutil.rmtree, scratch, ignore_errors=True)
            _WORKER["scratch"] = scratch
        return _WORKER[("iso", sandbox)], _WORKER["scratch"]


def _worker_servers(iso, limits: Limits, scratch: Path, lessons: dict, names: list[str]) -> WarmKernels:
    """This worker process's warm kernel servers (:mod:`grader.warm`) for the lessons ``names``, closed when it exits."""
    with _WORKER_LOCK:
        if "warm" not in _WORKER:
            _WORKER["warm"] = WarmKernels(iso, limits, scratch, log=lambda message: print(message, flush=True),
                                          libraries=lambda: lesson_libraries(lessons, names, scratch))
            atexit.register(_WORKER["warm"].close)
        return _WORKER["warm"]


def grade_remote(item: Item, raw: tuple[bytes | None, str | None], lessons: dict, cell_seeds: dict | None,
                 sandbox: bool, limits: Limits, warm: list[str] | None = None) -> Outcome | None:
    """The task a worker runs: grade one notebook from its bytes. Never raises (see ``grade_outcome``).
    ``warm``: the lessons of the run, when the kernel is forked from this worker's kernel server (where its
    sandbox allows); None: a cold kernel. None when the run was stopped while it graded (:func:`stop_worker`)."""
    allow_runs()    # a stop of an earlier run on this worker is over once a new task arrives
    iso, scratch = _worker_state(sandbox)
    servers = _worker_servers(iso, limits, scratch, lessons, warm) if warm is not None and iso.sandboxed else None
    try:
        return grade_outcome(item, lessons, iso, limits, cell_seeds, scratch, raw, warm=servers)
    except GradingCancelled:
        return None


def stop_worker() -> None:
    """Run on every worker when the instructor stops the run: kill the kernels it is running now."""
    cancel_runs()


def connect(address: str):
    """``(client, cluster or None)`` for ``address``: ``local:N`` starts a local cluster of N workers."""
    from distributed import Client, LocalCluster

    if address.startswith("local:"):
        count = address[len("local:"):]
        if not count.isdigit() or int(count) < 1:
            raise ValueError(f"--dask local:N needs a number of workers N ≥ 1, got {address!r}")
        # one thread per worker process: one notebook at a time each; no memory limit from Dask (the
        # kernels, which hold the memory, are capped by the sandbox and are not the worker's own RSS)
        # the worker processes, in this terminal's process group, start with Ctrl-C ignored: the instructor's
        # process stops them (a worker that took it would die with a traceback and leave its scratch behind)
        main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
        try:
            cluster = LocalCluster(n_workers=int(count), threads_per_worker=1, processes=True,
                                   dashboard_address=None, memory_limit=0)
        finally:
            if main:
                signal.signal(signal.SIGINT, previous)
        return Client(cluster), cluster
    _reachable(address)
    return Client(address, timeout="30s"), None


def _reachable(address: str, seconds: float = 5.0) -> None:
    """Fail at once (ConnectionError) when nothing listens at a ``tcp://host:port`` address, rather than
    after Dask's connection retries; other schemes are left to Dask."""
    import socket
    from urllib.parse import urlsplit

    if not address.startswith("tcp://"):
        return
    parts = urlsplit(address)
    with socket.create_connection((parts.hostname or "localhost", parts.port or 8786), timeout=seconds):
        pass


def grade_on_cluster(address: str, todo: list[Item], lessons: dict, sandbox: bool, limits: Limits,
                     seeds_of, record, log=print, warm: bool = True, stop: threading.Event | None = None) -> int:
    """Send every item of ``todo`` to the cluster and ``record`` each outcome as it arrives (``warm``: each worker
    forks the kernels from its kernel servers, :mod:`grader.warm`; False: cold kernels).

    ``seeds_of(item)`` gives the item's derived seeds; ``record(outcome)`` writes it into OUT (called in
    this process only). ``stop``: once set, the tasks not yet back are cancelled and nothing more is recorded.
    Returns 0, or 2 when the cluster cannot be reached."""
    try:
        from distributed import as_completed
    except ImportError:
        log('error: --dask needs Dask distributed: pip install "distributed" (or the course\'s [cluster] extra)')
        return 2
    try:
        client, cluster = connect(address)
    except Exception as exc:
        log(f"error: cannot reach the Dask scheduler at {address} ({type(exc).__name__}: {str(exc)[:200]})")
        return 2
    try:
        workers = client.scheduler_info().get("workers", {})
        log(f"dask: {len(workers)} worker(s) at {client.scheduler.address}")
        [shared] = client.scatter([lessons], broadcast=True)
        futures = {}
        names = sorted({item.lesson for item in todo if item.lesson}) if warm else None
        for item in todo:
            future = client.submit(grade_remote, item, read_bytes(item.path) if item.path else (None, None), shared,
                                   seeds_of(item), sandbox, limits, names, pure=False,
                                   key=f"grade-{item.student}-{item.notebook}-{len(futures)}")
            futures[future] = item
        arriving = as_completed(list(futures))
        while not arriving.is_empty() and not (stop is not None and stop.is_set()):
            batch = arriving.next_batch(block=False)
            if not batch:
                time.sleep(0.2)
                continue
            for future in batch:
                if stop is not None and stop.is_set():   # an error now may be the signal's (workers share our group)
                    break
                item = futures.pop(future)
                try:
                    outcome = future.result()
                except Exception as exc:   # the task never returned: its workers died (KilledWorker), or cannot import the course
                    outcome = Outcome(item, grader_error(item, lessons, exc, isolation="unknown: the worker was lost"), None, None)
                if outcome is not None:    # None: stopped on its worker (only after a stop of this run)
                    record(outcome)
                future.release()
        if stop is not None and stop.is_set() and futures:
            log(f"stopping: {len(futures)} notebook(s) cancelled on the cluster (no result; a re-run grades them)")
            client.cancel(list(futures))
            try:
                client.run(stop_worker)
            except Exception as exc:   # a worker that cannot be reached: its notebook is cancelled all the same
                log(f"note: not every worker could be told to stop its kernels ({type(exc).__name__})")
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return 0
