"""Small helpers the lessons call: set up a notebook, and fall back to the library when an
exercise is not done yet (so that one unfinished exercise never blocks the rest of a lesson)."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

__all__ = ["DEFAULT_THREADS", "THREADS_ENV", "lesson_threads", "setup", "yours_or_reference"]

#: torch threads in a lesson. One, because it holds up in the worst case: measured by
#: ``bench/threads.py`` on the 2-core machine (``docs/measurements.md``), two threads saved at most
#: about a quarter of a lesson's time on an idle machine but made lessons up to 12.7× slower beside
#: one busy competing process (the shared vCPUs of Binder and Colab), while one thread lost little.
DEFAULT_THREADS = 1
THREADS_ENV = "RLHF_TORCH_THREADS"   # a learner with cores to spare sets it, e.g. to 4


def lesson_threads() -> int:
    """The torch threads a lesson uses: ``$RLHF_TORCH_THREADS`` if it is a positive number, else the default."""
    value = os.environ.get(THREADS_ENV, "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else DEFAULT_THREADS


def setup(seed: int) -> None:
    """Set torch's threads (:func:`lesson_threads`), print the environment check ([OK]/[FAIL] per package,
    the device, the threads and why), then seed Python, NumPy and torch."""
    from .environment import check_environment

    threads = lesson_threads()
    torch.set_num_threads(threads)
    ok = check_environment()
    from_env = os.environ.get(THREADS_ENV, "").strip()
    why = (f"set by {THREADS_ENV}" if from_env.isdigit() and int(from_env) == threads else
           f"the course's default: on shared CPUs more threads can be many times slower; {THREADS_ENV}=N changes it")
    print(f"torch threads: {threads} ({why})")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    print(f"seed {seed}" + ("" if ok else " · fix the [FAIL] lines above, then restart the kernel and run this cell again"))


def yours_or_reference(name: str, candidate):
    """Your function if it passes its check, else the library's reference (and say which is used).

    The reference is the one the check compares with: ``rlhf_core.checks.EXERCISES[name].reference``."""
    from ..checks import EXERCISES, check

    reference = EXERCISES[name].reference
    try:
        check(EXERCISES[name], candidate, quiet=True)
    except AssertionError as exc:
        why = getattr(exc, "title", None) or str(exc).split(":")[0]   # "✗ dpo_loss — not implemented yet"
        print(f"→ your {name} does not pass its check yet ({why.removeprefix('✗ ')}), so the cells below use "
              f"rlhf_core's {name}. Its check cell shows what to fix.")
        return reference
    print(f"→ the cells below use your {name} (it passes its check).")
    return candidate
