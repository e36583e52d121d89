"""Shared test settings: deterministic torch, a small hypothesis budget that keeps CI fast.

Markers (registered in pyproject.toml): ``notebook``, ``sandbox``, ``browser``, ``fresh_env``, ``slow``, ``beside``
and ``gpu``. ``make test`` runs them all; ``make check`` deselects the first six.
"""

import atexit
import os
import shutil
import tempfile

import matplotlib
import torch
from hypothesis import HealthCheck, settings

matplotlib.use("Agg")


def _throwaway(prefix: str) -> str:
    """A temp folder for this test process, removed when it exits."""
    folder = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


# Lesson 10 saves each drill attempt to a history (rlhf_core.course.drill.history_dir): the notebooks the tests run
# write it to a throw-away folder (kernels inherit the variable), never to the home of the machine.
if "RLHF_DRILL_HISTORY" not in os.environ:
    os.environ["RLHF_DRILL_HISTORY"] = _throwaway("drill-history-")
# ... and on DPO, whatever that history holds (a second attempt would otherwise draw a random variant); the tests of
# the other variants set it themselves.
os.environ.setdefault("RLHF_DRILL_VARIANT", "dpo")
# The grader keeps one course secret (grader.secret: $DPO_GRADER_SECRET_FILE, else ~/.config/dpo-grader/secret): the
# tests share a throw-away one, never the machine's.
if "DPO_GRADER_SECRET_FILE" not in os.environ:
    os.environ["DPO_GRADER_SECRET_FILE"] = os.path.join(_throwaway("dpo-grader-secret-"), "secret")
# Under pytest-xdist (`make check`: -n 2) each worker gets its share of the cores, so two workers do not
# run four torch threads on two cores.
_workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
torch.set_num_threads(max(1, min(2, (os.cpu_count() or 1) // max(1, _workers))))
# The notebooks the tests run use as many (their kernels inherit the variable; a lesson's own default is one thread,
# for shared CPUs, rlhf_core.course.notebook.DEFAULT_THREADS): the tests own the machine, and the test of the default unsets it.
# The grader's kernels keep one thread whatever this says (grader.sandbox sets it).
os.environ.setdefault("RLHF_TORCH_THREADS", str(torch.get_num_threads()))

settings.register_profile(
    "course",
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "course"))


def pytest_collection_modifyitems(config, items):
    """The order of a run, for `make test`, whose fresh-venv replays and ``beside`` tests (pip and the route
    scanner, one core each) run in a second process during the main one's first minutes (8 to 10 on the 2-core
    AMD EPYC VM):

    1. the modules of the sandboxed grading tests first: their kernels use one torch thread each, so they share the
       cores with the second process fairly. Torch on two threads beside a busy process waits on its descheduled
       thread at every parallel step (``bench/threads.py``, 2-core AMD EPYC VM: lesson 03 took 11.5 s idle and
       over 60 s beside one busy process, stopped there), and the notebook tests run two threads: in a `make test`
       that ran them first, lesson 08's student notebook took 221 s instead of about 25 s;
    2. then the other tests, the notebook tests last but one (the figure test reads the solutions they executed;
       under pytest-xdist the other worker may reach it while they still run, and then executes what is missing);
    3. the browser tests last, in the order collected: by then the replays have long ended, so JupyterLab and its
       kernels do not share the two cores with them (twice a Run All in the browser was seen finished on the page
       but not by the test while those ran).

    A module stays in one piece, so that its module fixtures are built once."""
    sandboxed = {item.path for item in items if item.get_closest_marker("sandbox") is not None}

    def group(item) -> tuple[bool, int]:
        middle = 2 if item.path.name == "test_notebooks.py" else 1
        return item.get_closest_marker("browser") is not None, 0 if item.path in sandboxed else middle

    items.sort(key=group)
