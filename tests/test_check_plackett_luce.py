"""check_plackett_luce_loss (lesson 07, the paper's Appendix A.3): its verdicts, and that it is graded and withheld
like every other exercise — from its record alone, before any lesson holds its cells."""

from __future__ import annotations

import ast
import inspect
import json
import textwrap

import torch

from checkhelpers import assert_fails_with, assert_passes
from rlhf_core import losses
from rlhf_core.checks import EXERCISES, check_plackett_luce_loss, probe
from rlhf_core.checks.derived import check_cell_source, stub_source
from rlhf_core.course import exercises


def test_pass_on_the_reference(capsys):
    assert_passes(check_plackett_luce_loss, losses.plackett_luce_loss, capsys)


def _suffix(h):
    return torch.logcumsumexp(h.flip(-1), dim=-1).flip(-1)


def test_a_learners_own_loop_passes(capsys):
    def loop(logp_pol, logp_ref, beta=0.1):
        h = beta * (logp_pol - logp_ref)
        total = torch.zeros(h.shape[0], dtype=h.dtype)
        for k in range(h.shape[1]):
            total = total + h[:, k] - torch.logsumexp(h[:, k:], dim=-1)
        return -total.mean()

    assert_passes(check_plackett_luce_loss, loop, capsys)


def test_the_stub_says_what_to_do_not_the_answer():
    message = assert_fails_with(check_plackett_luce_loss, exercises.plackett_luce_loss, "not implemented yet")
    assert "logsumexp" not in message and "logcumsumexp" not in message


def test_shapes_are_explained():
    per_prompt = lambda p, r, beta=0.1: -(beta * (p - r) - _suffix(beta * (p - r))).sum(-1)   # noqa: E731
    per_term = lambda p, r, beta=0.1: -(beta * (p - r) - _suffix(beta * (p - r)))            # noqa: E731
    assert_fails_with(check_plackett_luce_loss, per_prompt, "expected a scalar", "got shape (6,)", ".mean()")
    assert_fails_with(check_plackett_luce_loss, per_term, "shape (6, 4)", "one term per position")


def test_an_unstable_loss_is_named_on_the_extreme_case():
    def unstable(logp_pol, logp_ref, beta=0.1):
        w = torch.exp(beta * (logp_pol - logp_ref))
        return -torch.log(w / w.flip(-1).cumsum(-1).flip(-1)).sum(-1).mean()

    assert_fails_with(check_plackett_luce_loss, unstable, "margins of ±1e4", "Numerically unstable", "log space")


def test_the_order_of_the_columns_is_the_data():
    def sorted_first(logp_pol, logp_ref, beta=0.1):
        h = (beta * (logp_pol - logp_ref)).sort(-1, descending=True).values
        return -(h - _suffix(h)).sum(-1).mean()

    assert_fails_with(check_plackett_luce_loss, sorted_first, "sorted the responses", "the ranking is the data's")


def test_a_wrong_answer_no_mistake_explains_shows_the_formula():
    doubled = lambda p, r, beta=0.1: 2 * losses.plackett_luce_loss(p, r, beta)   # noqa: E731
    message = assert_fails_with(check_plackett_luce_loss, doubled, "matches none of the common mistakes", "logsumexp")
    assert "expected" in message and ", got" in message


def test_only_k_equals_two_right_is_caught_beyond_the_pair_case():
    def dpo_of_the_ends(logp_pol, logp_ref, beta=0.1):   # right for K = 2, and wrong for K > 2
        return losses.dpo_loss(logp_pol[:, 0], logp_pol[:, -1], logp_ref[:, 0], logp_ref[:, -1], beta)

    message = assert_fails_with(check_plackett_luce_loss, dpo_of_the_ends, "K = 4")
    assert "K = 2" not in message.split(":")[0]


def test_the_stub_and_the_check_cell_come_from_the_record():
    exercise = EXERCISES["plackett_luce_loss"]
    assert exercise.lesson == 7 and exercise.points > 0 and exercise.reference is losses.plackett_luce_loss
    assert inspect.getdoc(exercises.plackett_luce_loss) == inspect.getdoc(losses.plackett_luce_loss)
    assert stub_source(exercise).startswith("def plackett_luce_loss(logp_pol: Tensor, logp_ref: Tensor, beta: float = 0.1)")
    assert "check_plackett_luce_loss(plackett_luce_loss, seed=101, quiet=True)" in check_cell_source(exercise)


def _cell():
    from grader.spec import GradeCell, probes_in_source

    exercise = EXERCISES["plackett_luce_loss"]
    return GradeCell("check_plackett_luce_loss", float(exercise.points), probes_in_source(check_cell_source(exercise)))


def _graded(candidate):
    """Grade ``candidate`` as the grader does: probed at secret seeds, judged from the plain record."""
    from grader.judge import judge_cell

    cell = _cell()
    secret = {p.seed: 7000 + p.seed for p in cell.probes}
    record = {"grade_id": cell.grade_id,
              "probes": [probe(EXERCISES[p.name], candidate, secret[p.seed]) for p in cell.probes]}
    return judge_cell(cell, [json.dumps(record)], secret)


def test_it_is_graded_like_the_others():
    assert [p.seed for p in _cell().probes] == [0, 101, 202]
    right = _graded(losses.plackett_luce_loss)
    assert right.passed and right.score == right.max_score == EXERCISES["plackett_luce_loss"].points
    wrong = _graded(EXERCISES["plackett_luce_loss"].mistakes[0].fn)
    assert not wrong.passed and wrong.score == 0 and wrong.mistake == "plackett_luce_loss/pl_whole_ranking"


def test_it_is_withheld_like_the_others(tmp_path):
    from grader.withheld import withheld_library

    copy = withheld_library("07_preference_pairs", [_cell()], tmp_path)
    lossfile = (copy / "rlhf_core" / "losses.py").read_text()
    node = next(n for n in ast.parse(lossfile).body if isinstance(n, ast.FunctionDef) and n.name == "plackett_luce_loss")
    assert ast.get_docstring(node).startswith("Withheld while lesson 07 is graded") and len(node.body) == 2
    assert "logcumsumexp" not in ast.unparse(node)
    checks_file = (copy / "rlhf_core" / "checks" / "plackett_luce.py").read_text()
    for mistake in EXERCISES["plackett_luce_loss"].mistakes:          # each one edit away from the answer
        body = ast.parse(textwrap.dedent(inspect.getsource(mistake.fn))).body[0].body
        assert "\n".join(ast.unparse(statement) for statement in body) not in checks_file, mistake.id
    assert "torch.logcumsumexp" not in checks_file                    # nor the helpers the mistakes share
    assert "def dpo_loss" in (copy / "rlhf_core" / "losses.py").read_text()   # lesson 02's reference stays
