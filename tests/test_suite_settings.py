"""The test suite's own settings (``tests/conftest.py``), as `make test` runs them: two pytest-xdist workers, each with
its share of the cores, a test module per unit of work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CONFTEST = Path(__file__).with_name("conftest.py")
pytestmark = pytest.mark.slow   # each starts pytest or Python with torch several times (10-20 s)


def test_a_pytest_xdist_worker_gives_its_notebooks_its_own_share_of_the_cores(tmp_path):
    """tests/conftest.py runs in the process that starts pytest-xdist's workers (no worker count: both cores) and
    again in each worker, which inherits that process's environment. The worker's kernels and scripts must get the
    worker's one thread, not the two its parent set (that happened: every notebook of `make test` then ran two torch
    threads beside the other worker, several times slower); a value whoever ran pytest set is kept."""
    script = tmp_path / "show.py"   # conftest run as pytest runs it; the environment it leaves
    script.write_text("import json, os, runpy, sys\nrunpy.run_path(sys.argv[1])\nprint(json.dumps(dict(os.environ)))\n")
    base = {k: v for k, v in os.environ.items() if k not in ("PYTEST_XDIST_WORKER_COUNT", "RLHF_TORCH_THREADS",
                                                             "OMP_NUM_THREADS", "RLHF_TESTS_SET")}

    def env_after(env):
        out = subprocess.run([sys.executable, str(script), str(CONFTEST)], capture_output=True,
                             text=True, env=env, timeout=120, cwd=tmp_path)
        assert out.returncode == 0, out.stderr[-2000:]
        left = json.loads(out.stdout.strip().splitlines()[-1])
        return {k: left.get(k) for k in ("RLHF_TORCH_THREADS", "OMP_NUM_THREADS")}, left

    parent, parent_env = env_after(base)
    assert parent["RLHF_TORCH_THREADS"] == str(max(1, min(2, os.cpu_count() or 1)))
    worker, _ = env_after({**parent_env, "PYTEST_XDIST_WORKER_COUNT": "2"})
    assert worker == {"RLHF_TORCH_THREADS": "1", "OMP_NUM_THREADS": "1"}, worker
    chosen, _ = env_after({**base, "RLHF_TORCH_THREADS": "3", "OMP_NUM_THREADS": "2", "PYTEST_XDIST_WORKER_COUNT": "2"})
    assert chosen == {"RLHF_TORCH_THREADS": "3", "OMP_NUM_THREADS": "2"}, chosen


def test_a_module_is_one_unit_of_work_and_its_fixture_is_built_once(tmp_path):
    """Under `make test`'s ``--dist loadscope``, a module's tests go to one worker, so a module fixture (a class graded,
    TRL's runs: a minute each) is built once; a file the suite splits runs test by test on both workers."""
    pytest.importorskip("xdist")
    log = tmp_path / "log"
    module = """import os, time, pytest
@pytest.fixture(scope="module")
def built():
    with open(LOG, "a") as f:
        f.write(os.environ["PYTEST_XDIST_WORKER"] + " " + __name__ + "\\n")
@pytest.mark.parametrize("i", range(6))
def test_one(built, i):
    time.sleep(0.3)
"""
    for name in ("test_a.py", "test_b.py", "test_notebooks.py"):
        (tmp_path / name).write_text(f"LOG = {str(log)!r}\n" + module)
    out = subprocess.run([sys.executable, "-m", "pytest", "-p", "conftest", "-p", "no:cacheprovider", "-n", "2", "--dist",
                          "loadscope", "--no-loadscope-reorder", "-q", str(tmp_path)], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(CONFTEST.parent)})
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    built = [line.split() for line in log.read_text().splitlines()]
    assert sorted(m for _, m in built if m != "test_notebooks") == ["test_a", "test_b"], built   # once each
    assert {w for w, m in built if m == "test_notebooks"} == {"gw0", "gw1"}, built   # split: both workers
