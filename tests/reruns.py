"""Re-running a shipped run inside the test suite, and when the rerun can repeat it bit for bit.

A shipped run (the SFT checkpoint, the studies) was made on two torch threads, and repeats bit for bit only on the
machine that made it (``rlhf_core.checkpoint.same_machine``) *and* on as many threads: the threads split each sum
differently. `make test` runs on two pytest-xdist workers with one torch thread each (``tests/conftest.py``): two
threads beside a busy worker would wait on each other at every step. So a rerun there uses the worker's one thread and
is compared to the shipped run within the tolerance a run on another machine gets; run alone (``pytest FILE``, two
threads), on the machine that made the data, it is also compared bit for bit.
"""

from __future__ import annotations

import contextlib
import os

import torch

from rlhf_core.checkpoint import same_machine

MADE_ON_THREADS = 2   # configs/sft.json's num_threads; `python -m rlhf_core.course.studies` and `.topic_studies`


def alone() -> bool:
    """The test process has the machine's cores to itself (no pytest-xdist sibling)."""
    return int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1) == 1 and (os.cpu_count() or 1) >= MADE_ON_THREADS


def bit_exact(recorded_machine) -> bool:
    """A rerun here repeats the shipped numbers bit for bit: the same machine, and the shipped run's threads."""
    return alone() and same_machine(recorded_machine)


def threads_for(exact: bool) -> int:
    """The torch threads a rerun uses: the shipped run's when it is to repeat it bit for bit, else the process's."""
    return MADE_ON_THREADS if exact else torch.get_num_threads()


@contextlib.contextmanager
def rerun_threads(exact: bool):
    """Torch on :func:`threads_for` threads inside the block, the process's count restored after it."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads_for(exact))
    try:
        yield
    finally:
        torch.set_num_threads(before)
