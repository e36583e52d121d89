"""No verdict is cut inside a word: the full text in the results, the self-check and the feedback page,
a short form that ends on a sentence (or on a word, with …) in ``grades.csv`` and the progress log.

The long verdict used here is the one a learner gets for a mask not shifted with the labels in
``get_logps`` (lesson 04): three sentences, over 400 characters, which the grader used to cut at 300
("… As written you drop th")."""

from __future__ import annotations

import csv
import html
import json

import nbformat
from hypothesis import given
from hypothesis import strategies as st

from grader.autograde import LOG_WIDTH, log_row
from grader.feedback import feedback_html
from grader.grading import summary_message
from grader.result import NotebookResult, Status
from grader.results import write_csv, write_result
from grader.selfcheck import format_table, verdict_table
from grader.wording import CSV_MESSAGE_LIMIT, ELLIPSIS, clip, numbers_last, one_line, short_form
from grading_helpers import ends_on_a_word, is_whole

UNSHIFTED_MASK_TAIL = ("As written you drop the first response token and score the token after EOS (padding, "
                       "predicted from the EOS position) — the loss looks normal, which is why this bug is silent.")


def get_logps_with_an_unshifted_mask(logits, input_ids, response_mask, average=False):
    import torch

    lp = torch.log_softmax(logits[:, :-1], -1).gather(-1, input_ids[:, 1:, None]).squeeze(-1)   # (B, T-1)
    mask = response_mask[:, :-1].to(lp.dtype)            # the mistake: the mask is not shifted with the labels
    total = (lp * mask).sum(-1)                          # (B,)
    return total / mask.sum(-1).clamp(min=1) if average else total


def test_a_long_verdict_is_whole_in_the_self_check_the_results_the_csv_and_the_feedback_page(tmp_path, capsys):
    verdicts = verdict_table({"SEED": 4, "get_logps": get_logps_with_an_unshifted_mask})
    table = capsys.readouterr().out
    verdict = verdicts[0]
    assert not verdict.passed and verdict.message.endswith(UNSHIFTED_MASK_TAIL), verdict.message
    assert len(verdict.message) > CSV_MESSAGE_LIMIT, "the test needs a verdict longer than the CSV's limit"
    assert UNSHIFTED_MASK_TAIL in table and UNSHIFTED_MASK_TAIL in format_table("t", verdicts)

    message = summary_message(verdicts)
    result = NotebookResult("ada", "04_sequence_logps", 0.0, 3.0, Status.GRADED, message, verdicts, isolation="sandboxed")
    path = tmp_path / "results" / "ada" / "04_sequence_logps.json"
    path.parent.mkdir(parents=True)
    write_result(path, result)
    write_csv(tmp_path)
    (row,) = csv.DictReader(open(tmp_path / "grades.csv", newline=""))
    # the diagnosis first, the numbers after it (grader.wording.short_form), so the CSV keeps the named mistake
    assert len(row["message"]) <= CSV_MESSAGE_LIMIT and is_whole(row["message"], message), row["message"]
    assert "The mask is not shifted with the labels" in row["message"], row["message"]
    assert row["message"].index("The mask is not shifted") < row["message"].index("expected [")
    assert "expected [" in row["message"] and "got [" in row["message"]      # what was expected, what came back
    stored = json.loads(path.read_text())
    assert stored["message"] == message and stored["cells"][0]["message"].endswith(UNSHIFTED_MASK_TAIL)

    page = feedback_html(NotebookResult.from_json(stored), nbformat.v4.new_notebook())
    assert html.escape(UNSHIFTED_MASK_TAIL) in page


def test_short_form_keeps_a_short_text_and_ends_a_long_one_on_a_sentence():
    assert short_form("✓ dpo_loss holds.\n  All 6 cases.") == "✓ dpo_loss holds. All 6 cases."
    text = "First, e.g. this one, ends here. " + "Second sentence " * 30 + "ends."
    assert short_form(text, 60) == "First, e.g. this one, ends here."
    assert short_form("expected 0.6931, got 0.0. " + "x" * 400, 40) == "expected 0.6931, got 0.0."


def test_a_first_sentence_over_the_limit_ends_on_a_word_with_an_ellipsis():
    text = "expected log 2 ≈ 0.6931 at initialisation, got 0.0 — did you return sigmoid instead of -logsigmoid? Then"
    short = short_form(text, 50)
    assert len(short) <= 50 and ends_on_a_word(short, text), short
    assert short == "expected log 2 ≈ 0.6931 at initialisation, got…"        # not "got 0.…"
    assert clip("a" * 100, 10) == "a" * 9 + ELLIPSIS          # one word longer than the room: the only hard cut


words = st.text(alphabet=st.characters(categories=["L", "N"]), min_size=1, max_size=14)
pieces = st.lists(st.tuples(words, st.sampled_from([" ", " ", ", ", ". ", "? ", " — ", "\n", "(", ") ", ": "])),
                  min_size=1, max_size=80)


@given(pieces, st.integers(min_value=8, max_value=200))
def test_no_short_form_is_cut_inside_a_word(parts, limit):
    text = "".join(word + sep for word, sep in parts)
    short = short_form(text, limit)
    assert len(short) <= max(limit, 1) and is_whole(short, text), (short, text)
    clipped = clip(text, limit)
    assert len(clipped) <= limit and (clipped == one_line(text) or ends_on_a_word(clipped, one_line(text)))


BETA_MISSING = ("2 of 3 checks passed; first failure, check_implicit_reward: ✗ implicit_reward — a batch of 64, β = 0.1: "
                "expected [" + ", ".join(f"-{i}.1234" for i in range(40)) + ", …] (shape (64,)), got ["
                + ", ".join(f"-{i}1.234" for i in range(40)) + ", …] (shape (64,)). "
                "β is missing: the implicit reward is β·(log π − log π_ref).")


def test_a_long_array_verdict_keeps_its_diagnosis_in_the_csv_and_puts_the_numbers_after_it():
    short = short_form(BETA_MISSING)
    assert len(BETA_MISSING) > CSV_MESSAGE_LIMIT >= len(short)
    assert "β is missing: the implicit reward is β·(log π − log π_ref)." in short
    assert short.index("β is missing") < short.index("expected [")
    assert "expected [-0.1234, …] (shape (64,)), got [-01.234, …] (shape (64,))." in short
    rest, values = numbers_last(BETA_MISSING)
    assert values.startswith("expected [") and values.endswith("(shape (64,)).") and "β is missing" in rest
    assert all(is_whole(short_form(BETA_MISSING, limit), BETA_MISSING) for limit in (300, 250, 200, 150, 120))


def test_a_values_sentence_without_a_diagnosis_or_a_short_text_is_left_as_it_was():
    assert numbers_last("✗ f: expected 1.0, got 2.0.") is None
    assert short_form("✗ f: expected 1.0, got 2.0. Did you square it?") == "✗ f: expected 1.0, got 2.0. Did you square it?"
    assert short_form("expected 0.6931, got 0.0. " + "x" * 400, 40) == "expected 0.6931, got 0.0."


def test_the_progress_log_wraps_a_long_message_under_its_row_instead_of_cutting_it():
    row = {"student": "ann", "notebook": "02_bradley_terry_and_dpo_loss", "score": "4", "max_score": "5",
           "status": "graded", "message": BETA_MISSING}
    lines = log_row(row).splitlines()
    assert len(lines) > 1 and all(len(line) <= LOG_WIDTH for line in lines)
    assert all(line.startswith("      ") for line in lines[1:])
    assert one_line(" ".join(lines)).endswith(one_line(short_form(BETA_MISSING)))
