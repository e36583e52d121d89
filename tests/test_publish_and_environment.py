"""The README's lesson table, the Binder requirements, the setup cell's install path and its [OK]/[FAIL] report."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import tomllib

from grader import publish as pub
from grader.course import SOLUTIONS_DIR
from grader.setup_cell import COURSE_REPO_URL, SOURCE_VARIABLE, render_setup_cell
from nbtools import ROOT
from rlhf_core.course import environment


def test_readme_table_and_binder_requirements_are_current():
    assert pub.publish(check=True) == [], "run `python -m grader publish`"


def test_every_link_is_built_from_the_one_repository_constant(monkeypatch):
    owner_name = COURSE_REPO_URL.removeprefix("https://github.com/")
    assert pub.colab_url("01_x.ipynb") == f"https://colab.research.google.com/github/{owner_name}/blob/main/notebooks/01_x.ipynb"
    assert pub.binder_url("01_x.ipynb") == f"https://mybinder.org/v2/gh/{owner_name}/main?urlpath=lab/tree/notebooks/01_x.ipynb"
    table = pub.lesson_table()
    lessons = len(list(SOLUTIONS_DIR.glob("[0-9][0-9]_*.ipynb")))
    assert lessons >= 11 and table.count(f"github/{owner_name}/blob/main/notebooks/") == lessons
    assert table.count(f"gh/{owner_name}/main?") == lessons and f"| | all {lessons} |" in table
    monkeypatch.setattr(pub, "COURSE_REPO_URL", "https://gitlab.com/a/b")
    with pytest.raises(ValueError, match="github.com"):
        pub._github_path(pub.COURSE_REPO_URL)


def test_the_table_shows_the_measured_run_times(tmp_path):
    times = tmp_path / "times.json"
    times.write_text('{"machine": "test box", "date": "2026-01-01", "notebooks": {"02_bradley_terry_and_dpo_loss": {"seconds": 42.4, "peak_mb": 123}}}')
    table = pub.lesson_table(times_file=times)
    row = next(line for line in table.splitlines() if line.startswith("| 02 |"))
    assert row.endswith("| 42 s | 123 MB |") and "`dpo_loss`, `implicit_reward`" in row
    assert "| 01 |" in table and "not measured" in next(line for line in table.splitlines() if line.startswith("| 01 |"))
    assert "test box" in table


def test_binder_gets_every_pin_but_torch():
    pins = [line for line in (ROOT / "requirements.txt").read_text().splitlines() if line and not line.startswith("#")]
    binder = pub.binder_requirements()
    assert "torch==" not in binder
    assert all(pin in binder.splitlines() for pin in pins if not pin.startswith("torch=="))
    post = (ROOT / "binder" / "postBuild").read_text()
    assert "download.pytorch.org/whl/cpu" in post and os.access(ROOT / "binder" / "postBuild", os.X_OK)


def test_fallback_minimums_match_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {"python": project["requires-python"].removeprefix(">=")}
    declared.update(dict(dep.split(">=") for dep in project["dependencies"]))
    assert environment.FALLBACK_MINIMUMS == declared
    assert environment.minimums() == declared      # the installed metadata says the same


def test_the_report_fails_a_missing_or_old_package(monkeypatch):
    real = environment.metadata.version

    def fake(name):
        if name == "pandas":
            raise environment.metadata.PackageNotFoundError(name)
        return "2.0.1" if name == "torch" else real(name)

    monkeypatch.setattr(environment.metadata, "version", fake)
    report = dict((line.split()[1], (ok, line)) for ok, line in environment.environment_report())
    assert report["pandas"][0] is False and "not installed" in report["pandas"][1] and "pip install 'pandas>=1.5'" in report["pandas"][1]
    assert report["torch"][0] is False and "too old" in report["torch"][1]
    assert report["numpy"][0] is True and report["numpy"][1].startswith("[OK]")
    lines = []
    assert environment.check_environment(out=lines.append) is False
    assert lines[-1].startswith("device: cpu")


def test_the_setup_cell_says_in_one_line_when_it_cannot_install(tmp_path):
    """No site-packages (python -S), so no rlhf_core; an install source that does not exist: one clear RuntimeError."""
    cell = render_setup_cell(1)
    code = "try:\n    exec(compile(" + repr(cell) + ", 'setup', 'exec'))\nexcept RuntimeError as exc:\n    print('ERROR', exc)\n"
    env = {**os.environ, SOURCE_VARIABLE: str(tmp_path / "no-such-course.whl"), "PIP_NO_INDEX": "1"}
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert "rlhf_core is missing in this kernel: installing it from" in out.stdout, out.stdout + out.stderr
    error = next(line for line in out.stdout.splitlines() if line.startswith("ERROR"))
    assert "pip could not install" in error and "no-such-course.whl" in error and "check the network" in error


@pytest.mark.parametrize("env, expected", [(None, 1), ("3", 3), ("zero", 1), ("0", 1)])
def test_setup_sets_the_lessons_torch_threads_and_says_why(monkeypatch, capsys, env, expected):
    """One thread unless RLHF_TORCH_THREADS says another positive number (bench/threads.py: two threads are many
    times slower beside a competing process); the line printed names the choice."""
    import torch

    from rlhf_core.course import notebook

    before = torch.get_num_threads()
    if env is None:
        monkeypatch.delenv(notebook.THREADS_ENV, raising=False)
    else:
        monkeypatch.setenv(notebook.THREADS_ENV, env)
    try:
        notebook.setup(seed=0)
        assert torch.get_num_threads() == expected
    finally:
        torch.set_num_threads(before)
    said = capsys.readouterr().out
    line = next(line for line in said.splitlines() if line.startswith("torch threads:"))
    assert line.startswith(f"torch threads: {expected} (")
    assert ("set by RLHF_TORCH_THREADS" in line) == (env == "3"), line   # "0" and "zero" are not a choice


def test_the_graders_kernels_run_one_torch_thread_whatever_the_environment_says(tmp_path, monkeypatch):
    """Jobs share the cores: a graded kernel gets one thread even where RLHF_TORCH_THREADS asks for more (without
    bubblewrap the kernel inherits the grader's environment, so the sandbox's own value must win)."""
    from grader.sandbox import Isolation, KernelSandbox, Limits

    monkeypatch.setenv("RLHF_TORCH_THREADS", "4")
    env = KernelSandbox(Isolation(bwrap=None, cgroup=None), Limits(), tmp_path / "scratch", "k").kernel_env()
    assert env["RLHF_TORCH_THREADS"] == "1" and env["OMP_NUM_THREADS"] == "1"
