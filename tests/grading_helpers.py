"""Submissions built from the released lesson 02, shared by the autograde tests.

Lesson 02 has three checks: check_dpo_loss (3 points), check_implicit_reward (1) and sanity_1_4_6 (1),
in that order, each after its exercise cell (the loss, then the reward). ``BORROWED_LOSSES`` are answers
that reach for rlhf_core's own dpo_loss, one route each (the grader withholds it while lesson 02 is graded).
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

# Answers that reach for rlhf_core's own version of the exercise, each by another route (the grader
# withholds this lesson's references while it is graded: each earns nothing for the check it is in).
BORROWED_LOSSES = {
    "attribute": '''
import rlhf_core.losses as _L
def dpo_loss(*a, **k): return _L.dpo_loss(*a, **k)
''',
    "importlib": '''
import importlib
_module = importlib.import_module("rlhf" + "_core." + "lo" + "sses")
def dpo_loss(*a, **k): return getattr(_module, "dpo" + "_" + "loss")(*a, **k)
''',
    "imported": '''
from rlhf_core.losses import dpo_loss
''',
    "copied_function": '''
import types
import rlhf_core.losses as _L
_f = _L.dpo_loss
dpo_loss = types.FunctionType(_f.__code__, dict(_f.__globals__, __name__="__main__"), "dpo_loss", _f.__defaults__)
''',
    "getsource_exec": '''
import inspect
import rlhf_core.losses as _L
_namespace = {}
exec(inspect.getsource(_L), _namespace)
def dpo_loss(*a, **k): return _namespace["dpo_loss"](*a, **k)
''',
    "alias": '''
import rlhf_core.losses as _L
def dpo_loss(*a, **k): return _L.dpo_losses(*a, **k).mean()
''',
    "mistake_helper": '''
import torch.nn.functional as F
from rlhf_core.checks.dpo_loss import _margin
def dpo_loss(pc, pr, rc, rr, beta=0.1): return -F.logsigmoid(beta * _margin(pc, pr, rc, rr)).mean()
''',
}
BORROWED_REWARD = '''
import rlhf_core.losses as _L
def implicit_reward(*a, **k): return _L.implicit_reward(*a, **k)
'''


def reads_library_file(module: str = "losses") -> str:
    """An answer that reads rlhf_core's own file at its real path (out of reach only under the sandbox) and execs it."""
    path = ROOT / "rlhf_core" / f"{module}.py"
    return f'''
_namespace = {{}}
exec(compile(open({str(path)!r}).read(), "copied.py", "exec"), _namespace)
def dpo_loss(*a, **k): return _namespace["dpo_loss"](*a, **k)
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


# A message is whole when it is the full text, or a short form of it (grader.wording.short_form) that ends
# a sentence, or ends on a word with "…": never cut inside a word.

def ends_a_sentence(short: str, full: str) -> bool:
    return full.startswith(short) and short[-1] in ".!?" and (len(short) == len(full) or full[len(short)].isspace())


def ends_on_a_word(short: str, full: str) -> bool:
    """``short`` is ``full`` cut before a space (trailing punctuation dropped), then "…"; or, where the
    first word alone is longer than the room, hard cut."""
    kept = short[:-len("…")]
    if not (short.endswith("…") and kept and full.startswith(kept) and len(kept) < len(full)):
        return False
    rest = full[len(kept):].lstrip(",;:—–-(/")      # what the cut dropped: trailing punctuation, then a space
    return rest[:1].isspace() or not any(c.isspace() for c in kept)


def is_whole(short: str, full: str) -> bool:
    """Whether ``short`` is a whole reading of ``full``: all of it, a cut at a sentence's or a word's end, or (a long
    verdict) its diagnosis first with the numbers after it, as :func:`grader.wording.short_form` writes it."""
    from grader.wording import numbers_last

    full = " ".join(str(full).split())
    if short == full or ends_a_sentence(short, full) or ends_on_a_word(short, full):
        return True
    split = numbers_last(full)
    if split is None:
        return False
    rest, values = split
    kept, sep, numbers = short.partition(" expected ")
    return (kept == rest or ends_a_sentence(kept, rest)) and (not sep or (numbers.endswith(".") and values.startswith("expected ")))
