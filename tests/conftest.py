"""Shared test settings: deterministic torch, a small hypothesis budget that keeps CI fast.

Markers (registered in pyproject.toml): ``notebook``, ``sandbox``, ``browser``, ``fresh_env``, ``slow`` and ``gpu``.
``make test`` runs them all; ``make check`` deselects the first five.
"""

import atexit
import os
import re
import shutil
import tempfile

import matplotlib
import pytest
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


def _set_for_the_tests(name: str, value: str) -> None:
    """``name=value`` for the tests and the processes they start, unless whoever ran pytest set ``name``. pytest-xdist's
    workers inherit the environment of the process that started them, which ran this file as a single process: what
    this file set there (listed in ``RLHF_TESTS_SET``) it sets again in the worker."""
    ours = set(os.environ.get("RLHF_TESTS_SET", "").split())
    if name not in os.environ or name in ours:
        os.environ[name] = value
        os.environ["RLHF_TESTS_SET"] = " ".join(sorted(ours | {name}))


# Under pytest-xdist (`make test` and `make check`: -n 2) each worker gets its share of the cores, so two workers do
# not run four torch threads on two cores; the processes the tests start (scripts, pip, kernels) get as many.
_workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
torch.set_num_threads(max(1, min(2, (os.cpu_count() or 1) // max(1, _workers))))
if _workers > 1:
    _set_for_the_tests("OMP_NUM_THREADS", str(torch.get_num_threads()))
# The notebooks the tests run use as many (their kernels inherit the variable; a lesson's own default is one thread,
# for shared CPUs, rlhf_core.course.notebook.DEFAULT_THREADS): the tests own the machine, and the test of the default
# unsets it. The grader's kernels keep one thread whatever this says (grader.sandbox sets it).
_set_for_the_tests("RLHF_TORCH_THREADS", str(torch.get_num_threads()))

settings.register_profile(
    "course",
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "course"))


# Test files split across pytest-xdist's workers test by test (`make test`): they build nothing per module, and each
# holds minutes of work that would otherwise keep one worker busy while the other waits.
SPLIT = {"test_notebooks.py", "test_fresh_environments.py"}


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """`make test`'s units of work (``--dist loadscope``): a test module, so that its module fixtures are built once
    (a module graded as a class, TRL's runs), or a single test for the files in :data:`SPLIT`. (``--dist loadgroup``
    with an ``xdist_group`` mark would say the same, but pytest-xdist 3.8 marks the group on the test's id in a way
    pytest 9 no longer reads: every test became its own unit, and each worker built the module fixtures again.)"""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ModulesAndSplitFiles(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return nodeid if module.rsplit("/", 1)[-1] in SPLIT else module

    return ModulesAndSplitFiles(config, log)


def pytest_collection_modifyitems(config, items):
    """The order of `make test`, in which its units of work go to whichever of two pytest-xdist workers runs low
    (``--no-loadscope-reorder`` keeps it; units: :func:`pytest_xdist_make_scheduler`). Every test process runs torch
    on one thread (above): two threads beside a busy process wait on the descheduled thread at every step
    (``bench/threads.py``, 2-core AMD EPYC VM: lesson 03 took 11.5 s idle and over 60 s beside one busy process).

    Long units first, so that the short ones fill in at the end:

    1. the fresh-venv replays (minutes of pip each, mostly one core and the disk);
    2. the modules of the sandboxed grading tests;
    3. the modules with a ``slow`` test (trainings re-run), then the other modules;
    4. the solution notebooks, the longest lessons first;
    5. the browser tests (its figure test reads the solutions just executed, and executes what is missing when it
       gets there first): JupyterLab and its kernels then share the cores with notebook tests at most, not with pip
       (twice a Run All in the browser was seen finished on the page but not by the test while the replays ran). A
       browser test in a module of other tests runs with its module (a unit is sent whole, where its first test falls);
    6. the other notebook tests (the student notebooks, lesson 10's variants), the longest lessons first."""
    sandboxed = {item.path for item in items if item.get_closest_marker("sandbox") is not None}
    slow = {item.path for item in items if item.get_closest_marker("slow") is not None}
    position = {id(item): i for i, item in enumerate(items)}

    def phase(item) -> tuple:
        if item.get_closest_marker("fresh_env") is not None:
            return 1, 0
        if item.path in sandboxed:
            return 2, 0
        if item.get_closest_marker("browser") is not None:
            return 5, 0
        if item.path.name == "test_notebooks.py":
            lesson = re.search(r"\[(\d\d)_", item.name)
            return 4 if item.originalname.startswith("test_solution_") else 6, -int(lesson.group(1)) if lesson else 0
        return 3, 0 if item.path in slow else 1

    items.sort(key=lambda item: (*phase(item), position[id(item)]))


@pytest.fixture(autouse=True)
def _torch_threads_restored():
    """A test that changes torch's thread count (a study rerun on the threads it was made with) leaves the worker as
    it found it."""
    before = torch.get_num_threads()
    yield
    if torch.get_num_threads() != before:
        torch.set_num_threads(before)
