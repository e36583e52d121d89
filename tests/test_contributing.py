"""CONTRIBUTING.md's walkthroughs work: a test follows them, block by block, in a temporary copy of the repository.

Each block the walkthroughs give is introduced by a comment that says what to do with it:
``<!-- walkthrough: append PATH -->``, ``<!-- walkthrough: create PATH -->`` or ``<!-- walkthrough: run -->`` (a
bash block, each line run in the copy's root, with the copy first on Python's path). So what the guide shows is what
this test does, and an edit to the guide that breaks a step breaks the test. After following them, the test checks
what each walkthrough promises: an exercise added in three files is checked, exported, stubbed, graded and withheld;
a lesson added in one file is released, timed, published and run by the notebook tests.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from nbtools import ROOT

GUIDE = ROOT / "CONTRIBUTING.md"
STEP = re.compile(r"<!-- walkthrough: (append|create|run)(?: (\S+))? -->\n```[a-z]*\n(.*?)```", re.S)


def steps(section: str) -> list[tuple[str, str | None, str]]:
    """The walkthrough steps of one ``## section`` of the guide, in order."""
    text = GUIDE.read_text(encoding="utf-8")
    start = text.index(f"\n## {section}\n")
    end = text.find("\n## ", start + 1)
    return [(m.group(1), m.group(2), m.group(3)) for m in STEP.finditer(text[start:end if end > 0 else None])]


def copy_repository(dest: Path) -> Path:
    """The working tree's files (tracked and untracked, not ignored) copied to ``dest``."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True,
                            check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def follow(section: str, repo: Path) -> list[str]:
    """Do every step of ``section`` in ``repo``; returns what the commands printed."""
    done, printed = steps(section), []
    assert done, f"CONTRIBUTING.md's '{section}' has no walkthrough steps"
    env = {**os.environ, "PYTHONPATH": str(repo), "HF_HUB_OFFLINE": "1"}
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    for action, path, body in done:
        if action == "create":
            assert not (repo / path).exists(), f"the guide creates {path}, which exists already"
            (repo / path).parent.mkdir(parents=True, exist_ok=True)
            (repo / path).write_text(body, encoding="utf-8")
        elif action == "append":
            with open(repo / path, "a", encoding="utf-8") as handle:
                handle.write(body)
        else:
            for line in filter(None, (line.strip() for line in body.splitlines())):
                command = line.replace("python ", f"{sys.executable} ", 1) if line.startswith("python ") else line
                run = subprocess.run(command, shell=True, cwd=repo, env=env, capture_output=True, text=True, timeout=900)
                printed.append(run.stdout + run.stderr)
                assert run.returncode == 0, f"`{line}` failed in the copy:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    return printed


def in_copy(repo: Path, code: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(repo)}
    run = subprocess.run([sys.executable, "-c", code], cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    return copy_repository(tmp_path_factory.mktemp("contributing"))


def test_the_walkthroughs_have_their_steps():
    assert [a for a, _, _ in steps("Adding an exercise")] == ["append", "create", "append", "run"]
    assert [a for a, _, _ in steps("Adding a lesson")] == ["create", "run"]


@pytest.mark.slow
@pytest.mark.notebook
def test_adding_an_exercise_takes_three_files_and_gives_everything_else(repo):
    edited = {path for action, path, _ in steps("Adding an exercise") if action != "run"}
    assert len(edited) == 3, edited
    follow("Adding an exercise", repo)
    out = in_copy(repo, f"import rlhf_core, rlhf_core.checks as c; assert rlhf_core.__file__.startswith({str(repo)!r})\n"
                        "from rlhf_core.course import exercises\n"
                        "print(c.EXERCISES['reward_accuracy'].points, 'check_reward_accuracy' in c.__all__,\n"
                        "      callable(exercises.reward_accuracy))")
    assert out.split() == ["1", "True", "True"]
    released = nbformat.read(repo / "notebooks" / "02_bradley_terry_and_dpo_loss.ipynb", as_version=4)
    cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in released.cells}
    assert "NotImplementedError" in cells["reward_accuracy"].source and "margin > 0" not in cells["reward_accuracy"].source
    assert cells["check_reward_accuracy"].metadata["nbgrader"]["points"] == 1
    assert "HIDDEN" not in cells["check_reward_accuracy"].source          # hidden tests stay in the source
    graded = json.loads((repo / "grader" / "lessons.json").read_text())["02_bradley_terry_and_dpo_loss"]["checks"]
    assert any(c["grade_id"] == "check_reward_accuracy" for c in graded)
    withheld = in_copy(repo, "from grader.course import load_lessons\nfrom grader.withheld import withheld_exercises\n"
                             "print(sorted(withheld_exercises(load_lessons()['02_bradley_terry_and_dpo_loss'].spec)))")
    assert "reward_accuracy" in withheld


@pytest.mark.slow
@pytest.mark.notebook
def test_adding_a_lesson_takes_one_file(repo):
    edited = {path for action, path, _ in steps("Adding a lesson") if action != "run"}
    assert edited == {"solutions/12_reading_margins.py"}
    printed = follow("Adding a lesson", repo)
    assert (repo / "notebooks" / "12_reading_margins.ipynb").exists()
    assert "from rlhf_core.course.notebook import setup" in (repo / "solutions" / "12_reading_margins.py").read_text()
    assert "| 12 | [Reading margins](notebooks/12_reading_margins.ipynb) | `implicit_reward` |" in (repo / "README.md").read_text()
    assert "12_reading_margins" in json.loads((repo / "bench" / "notebook_times.json").read_text())["notebooks"]
    assert re.search(r"\d+ passed", printed[-1]), printed[-1]
