"""The drill's diagnosis round: the shipped runs show what each case claims, the code reproduces it, and
answers are judged by letter and by the first change's keywords."""

from __future__ import annotations

import pytest

from rlhf_core.course import diagnosis_round as dd
from rlhf_core.course.drill import Drill

# The one pair of cases that no signature can tell apart from the other's side: the masked run trains exactly
# like the healthy one (the prompt cancels in every difference), so it also shows the healthy signature; only
# its log-probs' scale, relative to a healthy run, gives it away.
LOOKALIKES = {("healthy", "prompt_in_mask")}


@pytest.fixture(scope="module")
def shipped():
    return dd.load_runs()


def test_every_case_is_shipped_and_shows_its_signature(shipped):
    assert list(shipped) == list(dd.CASES)
    for key, history in shipped.items():
        assert dd.signature_problems(key, history, shipped["healthy"]) == [], key


def test_no_run_shows_another_cases_signature(shipped):
    for claimed in dd.CASES:
        for key, history in shipped.items():
            if key != claimed and (claimed, key) not in LOOKALIKES:
                assert dd.signature_problems(claimed, history, shipped["healthy"]), f"the {key} run passes as {claimed}"


def test_the_runs_are_logged_under_trls_names(shipped):
    names = set(shipped["healthy"].names())
    assert {"loss", "rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies",
            "logps/chosen", "logps/rejected"} <= names


@pytest.mark.parametrize("key", list(dd.CASES))
def test_the_right_letter_and_the_model_lever_earn_both_points(key):
    letter = dd.LETTERS[list(dd.CASES).index(key)]
    judged = dd.judge_answer(key, letter, dd.CASES[key].fix_words)
    assert judged.points == 2, judged.text
    wrong = dd.LETTERS[(list(dd.CASES).index(key) + 1) % len(dd.CASES)]
    judged = dd.judge_answer(key, wrong.lower(), "")
    assert judged.points == 0 and f"expected {letter}" in judged.text and "none given" in judged.text


@pytest.mark.parametrize("key, fix", [
    ("reference_is_policy", "use a smaller learning rate"),
    ("beta_too_large", "raise beta"),
    ("prompt_in_mask", "train for longer"),
    ("margin_explosion", "nothing, it looks fine"),
    ("likelihood_displacement", "fix the mask"),
])
def test_a_first_change_that_names_another_lever_earns_no_point(key, fix):
    judged = dd.judge_answer(key, dd.LETTERS[list(dd.CASES).index(key)], fix)
    assert judged.label_ok and not judged.fix_ok and "the rubric asks for" in judged.text


def test_no_answer_yet_is_said_not_judged():
    judged = dd.judge_answer("healthy", None)
    assert judged.points == 0 and "No diagnosis given yet" in judged.text


def test_the_round_in_a_drill_plots_the_curves_and_lands_on_the_scorecard(capsys):
    import matplotlib.pyplot as plt

    plt.close("all")
    drill = Drill()
    drill.judge_diagnosis("A")
    assert "diagnosis_case() first" in capsys.readouterr().out
    drill.begin("diagnose")
    key = drill.diagnosis_case(seed=3)
    assert key == dd.pick_case(3) and plt.get_fignums()
    out = capsys.readouterr().out
    assert all(f"{letter}. " in out for letter in dd.LETTERS)
    drill.judge_diagnosis(dd.LETTERS[list(dd.CASES).index(key)], dd.CASES[key].fix_words)
    card = drill.scorecard(print_it=False)
    assert f"Diagnosis round ({key}): 2/2" in card.text
    assert card.record()["diagnosis"] == {"case": key, "points": 2}
    assert "diagnose" in card.record()["blocks"]
    plt.close("all")


def test_every_case_can_be_drawn():
    assert {dd.pick_case(seed) for seed in range(200)} == set(dd.CASES)


@pytest.mark.slow
def test_the_code_reproduces_every_runs_signature_on_this_machine():
    """Every case trained again here (the runs are chaotic at their large steps, so only what they claim is
    compared, never their numbers)."""
    from rlhf_core.course.studies import study_data

    data = study_data()
    runs = {key: dd.make_run(key, data=data) for key in dd.CASES}
    for key, history in runs.items():
        assert dd.signature_problems(key, history, runs["healthy"]) == [], key
