"""Grading on a Dask cluster (``autograde --dask``) gives the same ``grades.csv`` as grading here, even when
one worker is killed while it grades: nothing is lost and nothing is duplicated.

The class: four students × lessons 02 and 04 — the release (stubs), right answers, a named mistake (the
unstable ``-log(sigmoid)`` loss), one student who did not hand in lesson 04, and lesson 02's answers
with one slow cell (a few seconds of sleep: the notebook a worker is killed on). The local run and the
cluster runs share the course secret, so their hidden tests have the same seeds.
"""

from __future__ import annotations

import csv
import os
import signal
import threading
from pathlib import Path

import nbformat
import pytest

from browser import wait_for
from grader.autograde import autograde
from grader.sandbox import Limits
from grading_helpers import LESSON, ROOT, UNSTABLE_LOSS, answered, released

pytestmark = [pytest.mark.sandbox, pytest.mark.notebook]
distributed = pytest.importorskip("distributed")

L04 = "04_sequence_logps"
SLOW = "\nimport time\ntime.sleep(4)   # a slow cell: the worker grading this notebook is killed meanwhile\n"
LIMITS = Limits(cell_timeout=60, notebook_timeout=120)


def build(submissions: Path) -> None:
    lessons = {
        "ann": {LESSON: released(), L04: nbformat.read(ROOT / "notebooks" / f"{L04}.ipynb", as_version=4)},
        "ben": {LESSON: answered(), L04: nbformat.read(ROOT / "solutions" / f"{L04}.ipynb", as_version=4)},
        "cat": {LESSON: answered(loss=UNSTABLE_LOSS), L04: nbformat.read(ROOT / "solutions" / f"{L04}.ipynb", as_version=4)},
        "dan": {LESSON: answered(extra_reward=SLOW)},     # no lesson 04: a "missing notebook" row
    }
    for student, notebooks in lessons.items():
        (submissions / student).mkdir(parents=True)
        for name, nb in notebooks.items():
            nbformat.write(nb, submissions / student / f"{name}.ipynb")


def rows(out: Path) -> list[dict]:
    with open(out / "grades.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    base = tmp_path_factory.mktemp("cluster")
    build(base / "submissions")
    out = base / "local"
    assert autograde(base / "submissions", out, jobs=2, limits=LIMITS, gradebook=False, log=lambda *a: None) == 0
    return base, out


def test_the_class_is_what_it_should_be(local):
    _, out = local
    got = {(r["student"], r["notebook"]): (r["score"], r["status"]) for r in rows(out)}
    assert got[("ben", LESSON)] == ("5", "graded") and got[("ann", LESSON)] == ("0", "graded")
    assert got[("cat", LESSON)] == ("2", "graded") and got[("dan", L04)][1] == "missing notebook"
    assert got[("ben", L04)] == ("3", "graded") and len(got) == 8


def _cluster_run(base: Path, local_out: Path, name: str, address: str) -> tuple[Path, list[str]]:
    out = base / name
    out.mkdir()
    said = []
    assert autograde(base / "submissions", out, limits=LIMITS, gradebook=False, dask=address, log=said.append) == 0, said
    return out, said


def _executing(dask_worker) -> list[str]:
    return [str(ts.key) for ts in dask_worker.state.executing]


def test_a_dask_cluster_with_a_worker_killed_mid_notebook_grades_to_the_same_csv(local):
    """One cluster run does both: the same grades.csv as the local path, though one of its two workers is
    killed with SIGKILL while it grades (its notebook goes to the other worker; nothing is lost or counted twice)."""
    base, local_out = local
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                       memory_limit=0)
    client = distributed.Client(cluster)
    try:
        pids_before = client.run(os.getpid)
        holder = {}
        run = threading.Thread(target=lambda: holder.update(result=_cluster_run(base, local_out, "killed", cluster.scheduler_address)))
        run.start()

        def grading_worker():   # a worker with a notebook in hand, dan's slow one if it has started
            busy = {addr: keys for addr, keys in client.run(_executing).items() if keys}
            slow = [addr for addr, keys in busy.items() if any("dan" in k for k in keys)]
            return (slow or list(busy) or [None])[0] if run.is_alive() else "the run ended first"

        victim = wait_for(grading_worker, 120, "a worker grading a notebook")
        assert victim in pids_before, f"no worker was seen grading a notebook ({victim})"
        os.kill(pids_before[victim], signal.SIGKILL)
        run.join(timeout=300)
        assert not run.is_alive(), "the cluster run did not finish after the kill"
        out, said = holder["result"]
        assert any(line.startswith("dask: 2 worker(s)") for line in said), said
        assert rows(out) == rows(local_out), said
        assert (out / "report.html").exists() and len(list((out / "feedback").glob("*/*.html"))) == 7
        results = sorted(p.relative_to(out / "results").as_posix() for p in (out / "results").glob("*/*.json"))
        assert len(results) == len(set(results)) == 8
        assert victim not in client.run(os.getpid) or client.run(os.getpid).get(victim) != pids_before[victim]
    finally:
        client.close()
        cluster.close()


def test_an_unreachable_scheduler_is_one_clear_line(tmp_path):
    (tmp_path / "subs" / "ann").mkdir(parents=True)
    nbformat.write(released(), tmp_path / "subs" / "ann" / f"{LESSON}.ipynb")
    said = []
    code = autograde(tmp_path / "subs", tmp_path / "out", gradebook=False, dask="tcp://127.0.0.1:9", log=said.append)
    assert code == 2 and any(line.startswith("error: cannot reach the Dask scheduler at tcp://127.0.0.1:9") for line in said), said
    said.clear()
    assert autograde(tmp_path / "subs", tmp_path / "out2", gradebook=False, dask="local:zero", log=said.append) == 2
    assert any("local:N needs a number" in line for line in said), said


def test_local_n_starts_n_single_threaded_worker_processes():
    from grader.cluster import connect

    client, cluster = connect("local:2")
    try:
        workers = client.scheduler_info()["workers"].values()
        assert len(workers) == 2 and all(w["nthreads"] == 1 for w in workers)
        assert len(set(client.run(os.getpid).values())) == 2       # two processes, not threads of one
    finally:
        client.close()
        cluster.close()
