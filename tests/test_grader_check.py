"""`python -m grader check` (fresh kernel) and `verdict_table()` (in a running notebook): the learner's self-check."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from grader.selfcheck import verdict_table

ROOT = Path(__file__).resolve().parents[1]
LESSON = "02_bradley_terry_and_dpo_loss"


def run_check(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader", "check", str(path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.notebook
def test_check_passes_a_solved_notebook_and_fails_the_release():
    solved = run_check(ROOT / "solutions" / f"{LESSON}.ipynb")
    assert solved.returncode == 0, solved.stdout + solved.stderr
    assert "5/5 points" in solved.stdout and "✗ FAIL" not in solved.stdout
    fresh = run_check(ROOT / "notebooks" / f"{LESSON}.ipynb")
    assert fresh.returncode == 1
    assert fresh.stdout.count("✗ FAIL") == 3 and "not implemented yet" in fresh.stdout and "0/5 points" in fresh.stdout


@pytest.mark.slow      # a `python -m grader check` process: imports torch and reads every lesson
def test_check_explains_a_broken_file(tmp_path):
    bad = tmp_path / f"{LESSON}.ipynb"
    bad.write_text("{ not json")
    done = run_check(bad)
    assert done.returncode == 1 and "not valid JSON" in done.stdout


def test_verdict_table_in_a_running_notebook(capsys):
    def dpo_loss(pc, pr, rc, rr, beta=0.1):
        import torch
        return -torch.log(torch.sigmoid(beta * ((pc - rc) - (pr - rr)))).mean()

    verdicts = verdict_table({"SEED": 2, "dpo_loss": dpo_loss, "implicit_reward": lambda p, r, beta=0.1: beta * (p - r)})
    out = capsys.readouterr().out
    assert [v.passed for v in verdicts] == [False, True, True], out
    assert "logsigmoid" in out and "2/5 points" in out


def test_spec_finds_checks_in_helpers_and_drill_wrappers_but_not_unrelated_calls():
    from grader.spec import Probe, probes_in_source

    source = '''
def six(loss, reward):
    sanity_loss_at_init(loss)
    sanity_reward_scales_with_beta(reward)

def unused(x):
    check_swiglu(x)

print(check_dpo_loss)                               # a reference, not a call with a candidate
drill.check("dpo_loss", check_dpo_loss, my_loss)
check_dpo_loss(my_loss, seed=101, quiet=True)
drill.check("six", six, my_loss, my_reward)
'''
    assert probes_in_source(source) == [
        Probe("exercise", "dpo_loss", ("my_loss",), 0),
        Probe("exercise", "dpo_loss", ("my_loss",), 101),
        Probe("sanity", "loss_at_init", ("my_loss",), 0),
        Probe("sanity", "reward_scales_with_beta", ("my_reward",), 0),
    ]
