"""`python -m grader check` (fresh kernel) and `verdict_table()` (in a running notebook): the learner's self-check.

Both withhold the lesson's references as the autograder does (grader.withheld), so an answer that calls
rlhf_core's own version fails here with the verdict it gets there."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from grader.selfcheck import verdict_table
from grading_helpers import BORROWED_LOSSES, BORROWED_REWARD, RIGHT_LOSS, RIGHT_REWARD, answered

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


def _namespace(loss_source: str, reward_source: str) -> dict:
    namespace = {"SEED": 2}
    exec(loss_source + reward_source, namespace)
    return namespace


@pytest.mark.parametrize("route", sorted(BORROWED_LOSSES))
def test_verdict_table_withholds_the_lessons_references_as_the_grader_does(route, capsys):
    import torch

    import rlhf_core.losses as losses
    from rlhf_core.checks import EXERCISES

    mistakes = list(EXERCISES["dpo_loss"].mistakes)
    verdicts = verdict_table(_namespace(BORROWED_LOSSES[route], RIGHT_REWARD))
    out = capsys.readouterr().out
    assert [(v.grade_id, v.passed) for v in verdicts] == [("check_dpo_loss", False), ("check_implicit_reward", True),
                                                         ("sanity_1_4_6", False)], out
    said = "rlhf_core's own function" if route == "imported" else "withholds while this lesson is graded"
    for verdict in (verdicts[0], verdicts[2]):
        assert verdict.message.startswith("✗ dpo_loss: expected your own implementation") and said in verdict.message, out
    assert "1/5 points" in out
    # afterwards the library is whole again: its reference works and its check knows the mistakes
    zeros = torch.zeros(3)
    assert abs(losses.dpo_loss(zeros, zeros, zeros, zeros).item() - 0.6931) < 1e-4
    assert EXERCISES["dpo_loss"].mistakes == mistakes and "_rlhf_withheld" not in vars(losses)


def test_verdict_table_sees_a_library_file_exec_and_a_copy_made_before_it_ran(capsys):
    from grading_helpers import reads_library_file

    copied = '''
import types
import rlhf_core.losses as _L
implicit_reward = types.FunctionType(_L.implicit_reward.__code__, {"__name__": "__main__", **_L.implicit_reward.__globals__})
'''
    verdicts = verdict_table(_namespace(reads_library_file(), copied))
    out = capsys.readouterr().out
    assert not any(v.passed for v in verdicts), out
    assert "rlhf_core.losses.dpo_loss" in verdicts[0].message and "rlhf_core.losses.implicit_reward" in verdicts[1].message
    assert "0/5 points" in out


def test_verdict_table_gives_an_honest_answer_full_marks(capsys):
    verdicts = verdict_table(_namespace(RIGHT_LOSS, RIGHT_REWARD))
    assert all(v.passed for v in verdicts) and "5/5 points" in capsys.readouterr().out


@pytest.mark.notebook
def test_check_withholds_the_lessons_references(tmp_path):
    nb = answered(loss=BORROWED_LOSSES["importlib"], reward=BORROWED_REWARD)
    path = tmp_path / f"{LESSON}.ipynb"
    nbformat.write(nb, path)
    done = run_check(path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.count("withholds while this lesson is graded") == 3 and "0/5 points" in done.stdout, done.stdout
