"""Issue 26's studies: every number lessons 08 and 09 state about them is the shipped data's, and a cheap slice
re-run on the machine at hand tells the same story.

The shipped files are ``rlhf_core/assets/on_policy_study.json`` and ``overoptimisation_study.json``
(:mod:`rlhf_core.course.topic_studies`). As in ``tests/test_lesson_claims.py``, each claim is a sentence of a
lesson found by a pattern, its numbers read from the text and compared with the data up to the rounding the
sentence uses; words such as "about 0.3" get the bounds written next to them.
"""

from __future__ import annotations

import statistics

import pytest

from rlhf_core.course.topic_studies import (
    ROUND_TWO_ARMS,
    load_on_policy_study,
    load_overoptimisation_study,
    peak,
    run_on_policy_seed,
)
from test_lesson_claims import num, rounds_to, said

OVER = load_overoptimisation_study()
RUNS = OVER["runs"]
ON = load_on_policy_study()
SEEDS = ON["seeds"]


def evals_at(run, step):
    return next(e for e in run["evals"] if e["step"] == step)


def span(values, low: str, high: str, percent: bool = False) -> bool:
    """min and max of ``values`` round to ``low`` and ``high`` (a range "low–high" in the text)."""
    return rounds_to(min(values), low, percent) and rounds_to(max(values), high, percent)


# ---- the shipped files --------------------------------------------------------------------------------------

def test_the_overoptimisation_study_is_four_runs_of_500_steps_evaluated_every_50():
    assert sorted((r["beta"], r["seed"]) for r in RUNS) == [(0.1, 0), (0.1, 1), (0.3, 0), (0.3, 1)]
    for r in RUNS:
        assert r["config"]["steps"] == 500 and r["config"]["batch_size"] == 32 and r["config"]["lr"] == 3e-4
        assert [e["step"] for e in r["evals"]] == list(range(0, 501, 50))
    assert OVER["eval_samples_per_prompt"] == 8


def test_the_on_policy_study_has_two_seeds_three_arms_and_two_reward_models():
    assert [s["seed"] for s in SEEDS] == [0, 1] and ON["score_samples_per_prompt"] == 16
    for s in SEEDS:
        assert set(s["round2"]) == set(ROUND_TWO_ARMS)
        assert s["config"]["steps"] == 200 and s["config"]["beta"] == 0.3
        assert set(s["reward_models"]["sets"]) == {"training pairs", "SFT samples", "policy samples"}


# ---- lesson 09: over-optimisation -------------------------------------------------------------------------

def test_09_the_study_is_described_as_run():
    m = said("09", r"500 steps, about ([\d.]+) epochs of the (\d+) pairs")
    assert all(rounds_to(r["epochs"], m.group(1)) for r in RUNS)
    assert all(round(r["epochs"] * int(m.group(2)) / 32) == 500 for r in RUNS)


def test_09_the_gold_reward_rises_then_flattens():
    m = said("09", r"climbs to about ([\d.]+) by step 150, at a KL of (\d+)–(\d+) nats")
    at150 = [evals_at(r, 150) for r in RUNS]
    assert all(abs(e["reward"] - num(m.group(1))) <= 0.05 for e in at150)
    assert span([e["kl"] for e in at150], m.group(2), m.group(3))
    m = said("09", r"the best evaluation of each run is ([\d.]+)–([\d.]+), and the last is at most ([\d.]+) below it")
    assert span([peak(r)["reward"] for r in RUNS], m.group(1), m.group(2))
    assert max(peak(r)["reward"] - r["evals"][-1]["reward"] for r in RUNS) <= num(m.group(3))


def test_09_one_seed_dips_and_its_twin_does_not():
    m = said("09", r"β ([\d.]+) at seed (\d) falls from ([\d.]+) at step (\d+) to ([\d.]+) at step (\d+) while its KL "
                   r"climbs to (\d+) nats; the same β at seed (\d) does not")
    beta, seed = num(m.group(1)), int(m.group(2))
    run = next(r for r in RUNS if r["beta"] == beta and r["seed"] == seed)
    top, low = evals_at(run, int(m.group(4))), evals_at(run, int(m.group(6)))
    assert peak(run) is top or peak(run) == top
    assert rounds_to(top["reward"], m.group(3)) and rounds_to(low["reward"], m.group(5)) and rounds_to(low["kl"], m.group(7))
    assert low["reward"] == min(e["reward"] for e in run["evals"] if e["step"] > top["step"])
    twin = next(r for r in RUNS if r["beta"] == beta and r["seed"] == int(m.group(8)))
    best = peak(twin)
    assert all(best["reward"] - e["reward"] < 0.01 for e in twin["evals"] if e["step"] > best["step"])


def test_09_grammar_collapses_while_the_reward_narrows():
    m = said("09", r"grammatical fraction, (\d+)–(\d+) % at step 0 and above (\d+) % at step 100 in every run, "
                   r"drops to (\d+)–(\d+) % by step 150 and ends at (\d+)–(\d+) %")
    assert span([evals_at(r, 0)["grammatical"] for r in RUNS], m.group(1), m.group(2), percent=True)
    assert all(100 * evals_at(r, 100)["grammatical"] > num(m.group(3)) for r in RUNS)
    assert span([evals_at(r, 150)["grammatical"] for r in RUNS], m.group(4), m.group(5), percent=True)
    assert span([r["evals"][-1]["grammatical"] for r in RUNS], m.group(6), m.group(7), percent=True)
    said("09", r"shrinks from about 0\.3 to about 0\.1")
    assert all(0.25 <= evals_at(r, 0)["reward_std"] <= 0.35 for r in RUNS)
    assert all(0.05 <= r["evals"][-1]["reward_std"] <= 0.15 for r in RUNS)


def test_09_the_implicit_rewards_held_out_accuracy_stays_high():
    m = said("09", r"From step 50 on its held-out pair accuracy stays between ([\d.]+) and ([\d.]+)")
    assert span([e["accuracy"] for r in RUNS for e in r["evals"] if e["step"] >= 50], m.group(1), m.group(2))


# ---- lesson 08: on-policy data, iterative DPO, the implicit reward as a reward model -----------------------

def arm(name):
    return [s["round2"][name] for s in SEEDS]


def test_08_fresh_pairs_win():
    m = said("08", r"On-policy pairs lift the held-out reward to ([\d.]+)–([\d.]+) at a KL of ([\d.]+)–([\d.]+) nats "
                   r"to the SFT model, with (\d+)–(\d+) % of the samples grammatical — more than after round 1")
    on = arm("on-policy pairs")
    assert span([a["reward"] for a in on], m.group(1), m.group(2))
    assert span([a["kl_to_sft"] for a in on], m.group(3), m.group(4))
    assert span([a["grammatical"] for a in on], m.group(5), m.group(6), percent=True)
    assert all(s["round2"]["on-policy pairs"]["grammatical"] > s["round1"]["grammatical"] for s in SEEDS)
    m = said("08", r"the original pairs reach only ([\d.]+)–([\d.]+), at (\d+)–(\d+) nats, with (\d+)–(\d+) % grammatical")
    off = arm("offline")
    assert span([a["reward"] for a in off], m.group(1), m.group(2))
    assert span([a["kl_to_sft"] for a in off], m.group(3), m.group(4))
    assert span([a["grammatical"] for a in off], m.group(5), m.group(6), percent=True)
    m = said("08", r"their chosen responses score ([\d.]+)–([\d.]+) where the original ones scored ([\d.]+)")
    assert span([s["pairs"]["fresh"]["chosen_reward"] for s in SEEDS], m.group(1), m.group(2))
    assert all(rounds_to(s["pairs"]["original"]["chosen_reward"], m.group(3)) for s in SEEDS)


def test_08_moving_the_reference_spends_kl():
    m = said("08", r"The iterative arm ends within ([\d.]+) of the on-policy arm's reward, but at ([\d.]+)–([\d.]+) nats "
                   r"from the SFT model, with (\d+)–(\d+) % of its samples grammatical")
    for s in SEEDS:
        assert abs(s["round2"]["iterative"]["reward"] - s["round2"]["on-policy pairs"]["reward"]) <= num(m.group(1))
        assert s["round2"]["iterative"]["kl_to_sft"] > 2 * s["round2"]["on-policy pairs"]["kl_to_sft"]
    it = arm("iterative")
    assert span([a["kl_to_sft"] for a in it], m.group(2), m.group(3))
    assert span([a["grammatical"] for a in it], m.group(4), m.group(5), percent=True)


def test_08_the_implicit_reward_ranks_its_own_distribution_better_and_the_shifted_one_worse():
    sets = lambda name, which: [s["reward_models"]["sets"][name][which] for s in SEEDS]
    m = said("08", r"the implicit reward ranks better in both seeds: (\d+) % and (\d+)–(\d+) % against the reward "
                   r"model's (\d+)–(\d+) % and (\d+)–(\d+) %")
    assert all(rounds_to(v, m.group(1), percent=True) for v in sets("training pairs", "implicit"))
    assert span(sets("SFT samples", "implicit"), m.group(2), m.group(3), percent=True)
    assert span(sets("training pairs", "explicit"), m.group(4), m.group(5), percent=True)
    assert span(sets("SFT samples", "explicit"), m.group(6), m.group(7), percent=True)
    for name in ("training pairs", "SFT samples"):
        assert all(i > e for i, e in zip(sets(name, "implicit"), sets(name, "explicit")))
    m = said("08", r"both fall, to (\d+)–(\d+) %, the implicit reward further: from (\d+)–(\d+) % to (\d+)–(\d+) %, the "
                   r"reward model from (\d+)–(\d+) % to (\d+)–(\d+) %\. The reward model ranks them better in both "
                   r"seeds, by ([\d.]+) and ([\d.]+) points")
    shifted_i, shifted_e = sets("policy samples", "implicit"), sets("policy samples", "explicit")
    assert span(shifted_i + shifted_e, m.group(1), m.group(2), percent=True)
    assert span(sets("SFT samples", "implicit"), m.group(3), m.group(4), percent=True)
    assert span(shifted_i, m.group(5), m.group(6), percent=True)
    assert span(sets("SFT samples", "explicit"), m.group(7), m.group(8), percent=True)
    assert span(shifted_e, m.group(9), m.group(10), percent=True)
    drops = [(a - b, c - d) for a, b, c, d in zip(sets("SFT samples", "implicit"), shifted_i,
                                                  sets("SFT samples", "explicit"), shifted_e)]
    assert all(di > de for di, de in drops), drops                      # "the implicit reward further"
    leads = [100 * (e - i) for i, e in zip(shifted_i, shifted_e)]
    assert rounds_to(leads[0], m.group(11)) and rounds_to(leads[1], m.group(12))
    m = said("08", r"within the noise of (\d+) pairs \(a standard error of about ([\d.]+) points\)")
    n = [s["reward_models"]["sets"]["policy samples"]["n"] for s in SEEDS]
    se = [100 * (a * (1 - a) / k) ** 0.5 for a, k in zip(shifted_e, n)]
    assert all(abs(k - num(m.group(1))) <= 20 for k in n) and all(abs(x - num(m.group(2))) <= 0.1 for x in se)
    assert leads[1] < 2 * max(se) < leads[0]
    said("08", r"their reward gap averages about 0\.2, against about 0\.4 for the SFT model's samples")
    assert all(0.18 <= s["reward_models"]["sets"]["policy samples"]["gap"] <= 0.25 for s in SEEDS)
    assert all(0.35 <= s["reward_models"]["sets"]["SFT samples"]["gap"] <= 0.45 for s in SEEDS)
    said("08", r"about 1000 pairs")
    assert all(990 <= s["reward_models"]["sets"][k]["n"] <= 1020 for s in SEEDS for k in ("SFT samples", "policy samples"))


# ---- a cheap slice, re-run on the machine at hand ----------------------------------------------------------

@pytest.mark.slow
def test_a_rerun_of_seed_0s_on_policy_arm_tells_the_shipped_story():
    """Round 1 and the on-policy arm of seed 0, re-run (about 2 minutes on 2 cores: 400 steps, 11 000 samples).

    On the machine that made the study this repeats it; on another CPU the float sums run in another order, so the
    run is compared with the shipped one within three times the seed-to-seed spread the study measured (|seed 0 −
    seed 1|, at least three standard errors of a 688-sample mean), and its claim is checked: on-policy pairs beat
    round 1 on reward and keep most samples grammatical at a modest KL."""
    shipped = SEEDS[0]
    run = run_on_policy_seed(0, arms={"on-policy pairs": ROUND_TWO_ARMS["on-policy pairs"]}, reward_models=False)
    for key in ("reward", "kl_to_sft", "grammatical"):
        for where in ("round1", "on-policy pairs"):
            ours = run["round1"][key] if where == "round1" else run["round2"][where][key]
            theirs = shipped["round1"][key] if where == "round1" else shipped["round2"][where][key]
            other = SEEDS[1]["round1"][key] if where == "round1" else SEEDS[1]["round2"][where][key]
            sd = shipped["round1"]["reward_std"] if key == "reward" else 0.0
            tol = max(3 * abs(theirs - other), 3 * sd / 688 ** 0.5, 0.03 if key == "grammatical" else 0.0)
            assert abs(ours - theirs) <= tol, (where, key, ours, theirs, tol)
    on = run["round2"]["on-policy pairs"]
    assert on["reward"] > run["round1"]["reward"] + 0.15
    assert on["grammatical"] >= 0.75 and on["kl_to_sft"] < 10
    assert statistics.fmean([run["pairs"]["fresh"]["chosen_reward"]]) > run["pairs"]["original"]["chosen_reward"] + 0.2
