"""Submissions built from the released lesson 02, shared by the autograde tests.

Lesson 02 has three checks: check_dpo_loss (3 points), check_implicit_reward (1) and sanity_1_4_6 (1),
in that order, each after its exercise cell (the loss, then the reward).
"""

from __future__ import annotations

import csv
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
LESSON = "02_bradley_terry_and_dpo_loss"
FULL = 5.0

RIGHT_LOSS = '''
import torch.nn.functional as F
def dpo_loss(logp_pol_chosen, logp_pol_rejected, logp_ref_chosen, logp_ref_rejected, beta=0.1):
    h = beta * ((logp_pol_chosen - logp_ref_chosen) - (logp_pol_rejected - logp_ref_rejected))
    return -F.logsigmoid(h).mean()
'''
UNSTABLE_LOSS = '''
import torch
def dpo_loss(logp_pol_chosen, logp_pol_rejected, logp_ref_chosen, logp_ref_rejected, beta=0.1):
    h = beta * ((logp_pol_chosen - logp_ref_chosen) - (logp_pol_rejected - logp_ref_rejected))
    return -torch.log(torch.sigmoid(h)).mean()
'''
RIGHT_REWARD = '''
def implicit_reward(logp_pol, logp_ref, beta=0.1):
    return beta * (logp_pol - logp_ref)
'''


def released():
    return nbformat.read(ROOT / "notebooks" / f"{LESSON}.ipynb", as_version=4)


def cell_by_id(nb, grade_id):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def answered(loss=RIGHT_LOSS, reward=RIGHT_REWARD, extra_loss="", extra_reward=""):
    """The release with both exercises answered (right unless told), ``extra_…`` code after each answer."""
    nb = released()
    cell_by_id(nb, "dpo_loss").source = loss + extra_loss
    cell_by_id(nb, "implicit_reward").source = reward + extra_reward
    return nb


def stubs_with(code_in_loss_cell: str):
    """The release, unanswered, with ``code_in_loss_cell`` before the loss stub."""
    nb = released()
    cell = cell_by_id(nb, "dpo_loss")
    cell.source = code_in_loss_cell + "\n" + cell.source
    return nb


def check_cells(nb):
    return [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]


def write_submissions(submissions: Path, students: dict[str, object]) -> None:
    """``submissions/<student>/<LESSON>.ipynb`` for each: a notebook, raw bytes, or ``(file name, either)``."""
    for student, content in students.items():
        folder = submissions / student
        folder.mkdir(parents=True)
        name = f"{LESSON}.ipynb"
        if isinstance(content, tuple):
            name, content = content
        if isinstance(content, bytes):
            (folder / name).write_bytes(content)
        else:
            nbformat.write(content, folder / name)


def read_grades(out: Path) -> dict[str, list[dict]]:
    """``OUT/grades.csv`` by student."""
    with open(out / "grades.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    by_student: dict[str, list[dict]] = {}
    for row in rows:
        by_student.setdefault(row["student"], []).append(row)
    return by_student
