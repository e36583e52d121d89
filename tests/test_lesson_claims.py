"""Every number lessons 08 and 09 state in prose about a shipped study is the shipped study's.

Each claim below is a sentence of a lesson, found by a pattern, whose numbers are *read from the text* and
compared with ``rlhf_core/assets/*.json`` (through ``rlhf_core.course.studies``). The shipped files are
fixed, so the comparison is exact up to the rounding the sentence uses ("183" holds 182.5 to 183.5); words
such as "about a third" get the bounds written next to them. When a sentence is rewritten, its pattern
stops matching and the test says which claim to update; when the text states another number than the
data, the test prints both. (Numbers the lessons print from a cell, or measure live, are not listed here.)
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rlhf_core import task
from rlhf_core.course.studies import load_displacement_study, load_frontier, load_margin_study
from rlhf_core.diagnostics import first_drift_step
from rlhf_core.evaluation import frontier_gap
from rlhf_core.metrics import MetricsHistory

ROOT = Path(__file__).resolve().parents[1]
FRONTIER_SAMPLES_PER_PROMPT = 16  # run_frontier's eval_samples_per_prompt, with which the shipped frontier was made


def prose(lesson: str) -> str:
    """A lesson's markdown cells as one line of text (comment marks gone, whitespace collapsed)."""
    path = next((ROOT / "solutions").glob(f"{lesson}_*.py"))
    out, markdown = [], False
    for line in path.read_text().splitlines():
        if line.startswith("# %%"):
            markdown = "[markdown]" in line
        elif markdown:
            out.append(line[2:] if line.startswith("# ") else line.lstrip("#"))
    return " ".join(" ".join(out).split())


def num(text: str) -> float:
    return float(text.replace("−", "-").replace("+", ""))


def rounds_to(value: float, text: str, percent: bool = False) -> bool:
    """``value`` written with as many decimals as ``text`` (a percentage when ``percent``) is ``text``."""
    digits = len(text.split(".")[1]) if "." in text else 0
    shown = 100 * value if percent else value
    return abs(shown - num(text)) <= 0.5 * 10 ** -digits + 1e-9


def said(lesson: str, pattern: str) -> re.Match:
    m = re.search(pattern, prose(lesson))
    assert m, f"lesson {lesson} no longer says /{pattern}/: update this claim (and keep the number tested)"
    return m


# ---- the shipped data --------------------------------------------------------------------------------------

MARGIN = load_margin_study()
RUNS = {name: MetricsHistory.from_dict(v["history"]) for name, v in MARGIN["variants"].items()}
PATHOLOGY = RUNS["batch 1 · β 0.1 · lr 1e-2 (the pathology)"]
DEFAULT = RUNS["batch 32 · lr 3e-4 · β 0.3 (the course default)"]
FAST = {n: h for n, h in RUNS.items() if MARGIN["variants"][n]["changes"].get("lr") is None
        and "lr 3e-4" not in n}                                                           # learning rate 1e-2
SLOW = {n: h for n, h in RUNS.items() if n not in FAST}                                   # learning rate 3e-4
POINTS = load_frontier()
DISPLACEMENT = load_displacement_study()["seeds"]


def dpo_points(*betas):
    return [p for p in POINTS if p.label == "DPO" and p.param in betas]


PREFERRED_FT = [p for p in POINTS if p.label == "Preferred-FT"]


def test_the_two_learning_rates_split_the_study_as_the_lesson_says():
    assert set(SLOW) == {"smaller step: lr 3e-4", "batch 32 · lr 3e-4 · β 0.3 (the course default)"}
    assert all(MARGIN["variants"][n]["config"]["lr"] == 1e-2 for n in FAST)


# ---- lesson 09 -----------------------------------------------------------------------------------------------

def test_09_the_pathologys_training_margin_swings():
    m = said("09", r"from (−?\d+) to \+(\d+) in the shipped study's run")
    margins = PATHOLOGY.values("logratio/margin")
    assert rounds_to(min(margins), m.group(1)) and rounds_to(max(margins), m.group(2)), (min(margins), max(margins))


def test_09_the_pathologys_held_out_kl_grammar_margin_accuracy_and_reward():
    m = said("09", r"\(step 10; (\d+) in the shipped run\) and still well over 100 at the end \((\d+)\)")
    assert rounds_to(PATHOLOGY.at("eval/kl", 10), m.group(1)) and rounds_to(PATHOLOGY.last("eval/kl"), m.group(2))
    assert PATHOLOGY.at("eval/kl", 10) > 100 and PATHOLOGY.last("eval/kl") > 100
    m = said("09", r"from (\d+) % to (\d+) % by step 10, and they never come back")
    assert rounds_to(PATHOLOGY.at("eval/grammatical", 0), m.group(1), percent=True)
    assert all(rounds_to(g, m.group(2), percent=True) for s, g in zip(*PATHOLOGY.series("eval/grammatical")) if s >= 10)
    m = said("09", r"tens of nats \((\d+) in the shipped run\), but the held-out \*accuracy\* stays far from 1 \(([\d.]+)\)")
    assert rounds_to(PATHOLOGY.last("eval/margin"), m.group(1)) and rounds_to(PATHOLOGY.last("eval/accuracy"), m.group(2))
    m = said("09", r"it \*rises\* \(to ([\d.]+) in the shipped run\)")
    assert rounds_to(PATHOLOGY.last("eval/reward"), m.group(1))
    assert PATHOLOGY.last("eval/reward") > PATHOLOGY.at("eval/reward", 0)


def test_09_the_study_contrasts_grammar_and_kl_between_the_two_learning_rates():
    m = said("09", r"(\d+) % against (\d+)–(\d+) % grammatical samples, a KL of (\d+) or more nats against (\d+)–(\d+)")
    assert all(rounds_to(h.last("eval/grammatical"), m.group(1), percent=True) for h in FAST.values())
    gram = [h.last("eval/grammatical") for h in SLOW.values()]
    assert rounds_to(min(gram), m.group(2), percent=True) and rounds_to(max(gram), m.group(3), percent=True), gram
    assert min(round(h.last("eval/kl")) for h in FAST.values()) >= num(m.group(4))
    kls = [h.last("eval/kl") for h in SLOW.values()]
    assert rounds_to(min(kls), m.group(5)) and rounds_to(max(kls), m.group(6)), kls


def test_09_every_fast_variant_degenerates():
    m = said("09", r"(\d+) % grammatical samples and a KL of (\d+)–(\d+) nats, whatever else it changes")
    assert all(rounds_to(h.last("eval/grammatical"), m.group(1), percent=True) for h in FAST.values())
    kls = [h.last("eval/kl") for h in FAST.values()]
    assert num(m.group(2)) <= round(min(kls)) and max(kls) <= num(m.group(3)), kls


def test_09_length_normalisation_and_ipo_bound_the_margin_but_drift():
    m = said("09", r"keep the held-out margin at ~([\d.]+) and ~([\d.]+)")
    ln, ipo = RUNS["length-normalised log-probs"], RUNS["IPO (length-normalised)"]
    assert rounds_to(ln.last("eval/margin"), m.group(1)) and rounds_to(ipo.last("eval/margin"), m.group(2))
    m = said("09", r"a KL above (\d+) nats\. β 1\.0 and conservative DPO")
    assert min(ln.last("eval/kl"), ipo.last("eval/kl")) > num(m.group(1))
    m = said("09", r"they sit ~(\d+) nats from the reference")
    assert all(abs(h.last("eval/kl") / num(m.group(1)) - 1) <= 0.1 for h in (ln, ipo))  # "~": within 10 %


def test_09_conservative_dpo_passes_the_rule_while_its_loss_stays_near_1():
    m = said("09", r"conservative DPO's margin passes (\d+) nats at step (\d+) while its loss stays near (\d+)")
    v = MARGIN["variants"]["conservative DPO (ε 0.1)"]
    h, step = RUNS["conservative DPO (ε 0.1)"], int(m.group(2))
    assert v["first_explosion_step"] == step and h.at("logratio/margin", step) > num(m.group(1))
    assert abs(h.at("loss", step) - num(m.group(3))) < 0.1


def test_09_batch_32_lr_3e_4_and_the_course_default():
    m = said("09", r"but a held-out margin of (\d+)\.")
    assert rounds_to(RUNS["batch 32"].last("eval/margin"), m.group(1))
    assert MARGIN["variants"]["batch 32"]["first_explosion_step"] is None
    m = said("09", r"stays grammatical \((\d+) %\) but learns little \(reward ([\d.]+)\)")
    slow = RUNS["smaller step: lr 3e-4"]
    assert rounds_to(slow.last("eval/grammatical"), m.group(1), percent=True)
    assert rounds_to(slow.last("eval/reward"), m.group(2))
    m = said("09", r"keeps the held-out margin at (\d+\.\d+) with (\d+) % grammatical samples and reward (\d+\.\d+)")
    assert rounds_to(DEFAULT.last("eval/margin"), m.group(1))
    assert rounds_to(DEFAULT.last("eval/grammatical"), m.group(2), percent=True)
    assert rounds_to(DEFAULT.last("eval/reward"), m.group(3))
    m = said("09", r"against the shipped (\d+\.\d+)")
    assert rounds_to(DEFAULT.last("eval/margin"), m.group(1))


def test_09_drift_and_early_stopping_read_the_shipped_kl():
    said("09", r"every run at learning rate \$10\^\{-2\}\$ passes the 10-nat KL threshold at its first evaluation, "
               r"and no run at \$3\\times10\^\{-4\}\$ does")
    first_eval = PATHOLOGY.series("eval/kl")[0][1]
    assert all(first_drift_step(h) == first_eval for h in FAST.values())
    assert all(first_drift_step(h) is None for h in SLOW.values())
    m = said("09", r"at step (\d+) the KL is already over (\d+) nats and no sample is grammatical")
    step = int(m.group(1))
    assert PATHOLOGY.at("eval/kl", step) > num(m.group(2)) and PATHOLOGY.at("eval/grammatical", step) == 0


def test_09_frontier_points_and_error_bars():
    m = said("09", r"each a mean over (\d+) samples")
    assert FRONTIER_SAMPLES_PER_PROMPT * len(task.HELDOUT_PROMPTS) == int(m.group(1))
    m = said("09", r"plateaus\*\* near reward ([\d.]+), at a KL of (?:about )?(\d\.\d+)(?:–(\d\.\d+))? nats")
    best = max(p.reward for p in PREFERRED_FT)
    assert rounds_to(best, m.group(1))
    near_best = [p.kl for p in PREFERRED_FT if p.reward >= best - 0.025]                 # the plateau's points
    assert all(rounds_to(kl, m.group(2)) for kl in near_best) if m.group(3) is None else \
        all(num(m.group(2)) - 0.05 <= kl <= num(m.group(3)) + 0.05 for kl in near_best), near_best
    m = said("09", r"its point at the largest learning rate is measured at ([\d.]+) nats")
    largest = max(p.param for p in PREFERRED_FT)
    far = max((p for p in PREFERRED_FT if p.param == largest), key=lambda p: p.kl)
    assert rounds_to(far.kl, m.group(1)) and far.kl == max(p.kl for p in PREFERRED_FT)
    assert far.kl > 0.6363  # past log 4 − 3/4, the best-of-4 bound the sentence compares it with
    assert far.reward < best  # "with no more reward"


def test_09_dpo_frontier_by_beta():
    m = said("09", r"With β 0\.1 and 0\.3 (?:it|its points) reach(?:es)? reward ([\d.]+)–([\d.]+) at ([\d.]+)–([\d.]+) nats")
    high = [p for p in dpo_points(0.1, 0.3) if p.reward >= num(m.group(1))]
    assert high and all(p.reward <= num(m.group(2)) for p in dpo_points(0.1, 0.3))
    assert rounds_to(min(p.kl for p in high), m.group(3)) and rounds_to(max(p.kl for p in high), m.group(4))
    m = said("09", r"β 1\.0 stops near ([\d.]+) nats \(reward ([\d.]+)\); β 2\.0 stays below ([\d.]+) nats")
    last_1 = max(dpo_points(1.0), key=lambda p: p.kl)
    assert rounds_to(last_1.kl, m.group(1)) and rounds_to(last_1.reward, m.group(2))
    assert max(p.kl for p in dpo_points(2.0)) < num(m.group(3))


def test_09_beta_2_ties_preferred_ft_by_a_hundredth():
    said("09", r"one of its points is a hundredth of a reward unit below Preferred-FT's best at the same KL")
    gaps = frontier_gap(dpo_points(2.0), PREFERRED_FT)
    assert rounds_to(min(g for _, g in gaps), "-0.01")


def test_09_the_pathology_would_sit_far_off_the_frontier():
    m = said("09", r"at a KL of ~(\d+) nats and (\d+) % grammatical samples")
    assert abs(PATHOLOGY.last("eval/kl") / num(m.group(1)) - 1) <= 0.1
    assert rounds_to(PATHOLOGY.last("eval/grammatical"), m.group(2), percent=True)


# ---- lesson 08 (section 7: the displacement study) -----------------------------------------------------------
# tests/test_experiments.py holds the same claims as bounds of its own; here they are read from the text.

def test_08_plain_dpo_displaces_in_every_seed():
    said("08", r"The chosen log-prob fell for about three pairs in four, by a median of a little under 2 nats; the "
               r"rejected fell for all but a handful of pairs, by a median of about 8\.")
    for run in DISPLACEMENT:
        p = run["variants"]["DPO"]["pairs"]
        assert abs(p["chosen_fell"] - 3 / 4) <= 0.05                 # "about three in four"
        assert -2.0 < p["chosen_median_change"] <= -1.5               # "a little under 2 nats"
        assert p["rejected_fell"] >= 0.995                            # "all but a handful"
        assert abs(p["rejected_median_change"] + 8) <= 0.5            # "about 8"


def test_08_rpo_holds_the_chosen_and_halves_the_rejected_drop():
    said("08", r"about half of them fell and half rose, with a median change within a few tenths of a nat of zero\. "
               r"The rejected still fall, about half as far")
    for run in DISPLACEMENT:
        dpo, rpo = (run["variants"][k]["pairs"] for k in ("DPO", "DPO + NLL (RPO, α 1)"))
        assert abs(rpo["chosen_fell"] - 0.5) <= 0.05 and abs(rpo["chosen_median_change"]) <= 0.3
        assert 0.45 <= rpo["rejected_median_change"] / dpo["rejected_median_change"] <= 0.65


def test_08_rpo_costs_kl_and_length_as_the_lesson_says():
    said("08", r"about a third of DPO's KL, nearly every sample grammatical, reviews no longer than the SFT model's, "
               r"where DPO's grew by three to four words")
    for run in DISPLACEMENT:
        dpo, rpo, before = run["variants"]["DPO"]["after"], run["variants"]["DPO + NLL (RPO, α 1)"]["after"], run["before"]
        assert 0.25 <= rpo["kl"] / dpo["kl"] <= 0.42                  # "about a third"
        assert rpo["grammatical"] >= 0.95                             # "nearly every sample"
        assert rpo["words"] <= before["words"]                        # "no longer than the SFT model's"
        assert 3.0 <= dpo["words"] - before["words"] <= 4.0           # "three to four words"


@pytest.mark.parametrize("lesson", ["08", "09"])
def test_the_prose_reads(lesson):
    assert len(prose(lesson)) > 10_000
