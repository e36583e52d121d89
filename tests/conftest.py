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
    """The browser tests run last, in the order collected: by then `make test`'s fresh-venv replays (pip
    installing beside the main run) have ended, so JupyterLab and its kernels do not share the two cores with
    them. Twice a Run All in the browser was seen finished on the page but not by the test while those ran.
    The notebook tests run first: the figure test reads the solutions they executed (under pytest-xdist, the
    other worker may reach it while they still run; it then executes what is missing itself)."""
    items.sort(key=lambda item: (item.get_closest_marker("browser") is not None, item.path.name != "test_notebooks.py"))
