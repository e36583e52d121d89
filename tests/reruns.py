"""Re-running a shipped run inside the test suite, and when the rerun can repeat it bit for bit.

A shipped run (the SFT checkpoint, the studies) was made on ``rlhf_core.train.SHIPPED_THREADS`` torch threads, and
repeats bit for bit only on the machine that made it (``rlhf_core.checkpoint.same_machine``) *and* on as many threads:
the threads split each sum differently. `make test` runs on two pytest-xdist workers with one torch thread each
(``tests/conftest.py``): two threads beside a busy worker would wait on each other at every step. So a rerun there uses
the worker's one thread and is compared to the shipped run within the tolerance a run on another machine gets; run
alone (``pytest FILE``: the shipped run's threads), on the machine that made the data, it is also compared bit for bit.
"""

from __future__ import annotations

import os

import torch

from rlhf_core.checkpoint import same_machine
from rlhf_core.train import SHIPPED_THREADS, torch_threads


def bit_exact(recorded_machine) -> bool:
    """A rerun here repeats the shipped numbers bit for bit: the same machine, and the test process has the cores for
    the shipped run's threads to itself (no pytest-xdist sibling)."""
    alone = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1) == 1 and (os.cpu_count() or 1) >= SHIPPED_THREADS
    return alone and same_machine(recorded_machine)


def threads_for(exact: bool) -> int:
    """The torch threads a rerun uses: the shipped run's when it is to repeat it bit for bit, else the process's."""
    return SHIPPED_THREADS if exact else torch.get_num_threads()


def rerun_threads(exact: bool):
    """Torch on :func:`threads_for` threads inside the ``with`` block, the process's count restored after it."""
    return torch_threads(threads_for(exact))
