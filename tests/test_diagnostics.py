"""Tests for rlhf_core.diagnostics (the run labels), rlhf_core.fixes (how a diagnosis prints, what to do)
and the reward-vs-KL frontier helpers of rlhf_core.evaluation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlhf_core.diagnostics import (
    DIAGNOSIS_LABELS,
    DRIFT_KL_THRESHOLD,
    EXPLOSION_THRESHOLD,
    LOG2,
    detect_margin_explosion,
    diagnose,
    first_drift_step,
    first_explosion_step,
)
from rlhf_core.evaluation import FrontierPoint, baseline_reward_at, betas_above_baseline, frontier_gap, pareto_frontier
from rlhf_core.fixes import FIXES, Diagnosis
from rlhf_core.metrics import MetricsHistory, as_history

BETA = 0.1


def _softplus_neg(x: float) -> float:
    """−log σ(x), the DPO loss for a scaled margin x."""
    return math.log1p(math.exp(-x)) if x > -30 else -x


def _log_run(margins, chosen, steps=None, accuracies=None, beta=BETA, losses=None) -> MetricsHistory:
    """A history from unscaled margins and chosen log-ratios (rejected = chosen − margin)."""
    h = MetricsHistory()
    steps = list(steps) if steps is not None else list(range(0, 10 * len(margins), 10))
    for i, (s, m, c) in enumerate(zip(steps, margins, chosen)):
        r = c - m
        acc = accuracies[i] if accuracies is not None else float(m > 0)
        loss = losses[i] if losses is not None else _softplus_neg(beta * m)
        h.log(
            s,
            loss=loss,
            **{
                "rewards/chosen": beta * c,
                "rewards/rejected": beta * r,
                "rewards/accuracies": acc,
                "rewards/margins": beta * m,
                "logps/chosen": -40.0 + c,
                "logps/rejected": -40.0 + r,
                "logratio/margin": m,
            },
        )
    return h


# The write-up's batch-1, β = 0.1 run: loss 0 and accuracy 1 by step 30, unscaled margin exploding.
WRITEUP_MARGINS = {30: 56.9, 70: 240.7, 80: 295.8, 150: 599.2, 200: 329.7}


def writeup_batch1_history() -> MetricsHistory:
    anchors = {0: 0.0, 10: 4.2, 20: 21.5, **WRITEUP_MARGINS}
    known = sorted(anchors)
    steps = list(range(0, 210, 10))
    margins = list(np.interp(steps, known, [anchors[s] for s in known]))
    for s, m in WRITEUP_MARGINS.items():  # the exact numbers, not interpolation round-off
        margins[steps.index(s)] = m
    losses = [LOG2, 0.35, 0.02] + [0.0] * (len(steps) - 3)
    accuracies = [0.0] + [1.0] * (len(steps) - 1)
    chosen = [-0.6 * m for m in margins]  # both log-ratios fall, rejected faster
    h = _log_run(margins, chosen, steps=steps, accuracies=accuracies, losses=losses)
    for s, em in zip(range(0, 250, 50), (0.0, 0.8, 1.1, 0.9, 1.2)):  # held-out margin stays flat
        h.log(s, **{"eval/margin": em, "eval/accuracy": 0.55})
    return h


def healthy_history() -> MetricsHistory:
    rng = np.random.default_rng(0)
    steps = list(range(0, 210, 10))
    margins = [6.0 * (1 - math.exp(-s / 60)) + (0.2 * rng.standard_normal() if s else 0.0) for s in steps]
    chosen = [0.2 * m for m in margins]
    accuracies = [min(0.9, 0.15 * m) if s else 0.0 for s, m in zip(steps, margins)]
    h = _log_run(margins, chosen, steps=steps, accuracies=accuracies)
    for s in range(0, 250, 50):
        m = 6.0 * (1 - math.exp(-s / 60))
        h.log(s, **{"eval/margin": 0.8 * m, "eval/accuracy": 0.5 + 0.05 * m, "eval/kl": 0.3 * m, "eval/reward": 0.1 * m})
    return h


def flat_history(n: int = 30, jitter: float = 0.0) -> MetricsHistory:
    return _log_run([jitter * (-1) ** i for i in range(n)], [0.0] * n, accuracies=[0.0] * n)


# ------------------------------------------------------------------------------------------------
# diagnose: one test per label
# ------------------------------------------------------------------------------------------------


def test_writeup_batch1_run_is_a_margin_explosion_from_step_30():
    d = diagnose(writeup_batch1_history())
    assert d.label == "margin_explosion"
    assert d.step == 30
    text = " ".join(d.evidence)
    assert "56.9" in text and "margin" in text
    assert "599.2" in text  # the peak, at step 150
    assert "held-out" in text
    assert isinstance(d, Diagnosis)


def test_margin_explosion_respects_the_threshold():
    h = writeup_batch1_history()
    assert diagnose(h, explosion_threshold=250.0).step == 80
    d = diagnose(h, explosion_threshold=1000.0)
    assert d.label != "margin_explosion"
    assert detect_margin_explosion(h, threshold=1000.0) is None
    assert detect_margin_explosion(h).step == 30


def test_one_explosion_rule_labels_and_steps():
    h = writeup_batch1_history()
    assert EXPLOSION_THRESHOLD == 50.0
    assert first_explosion_step(h) == detect_margin_explosion(h).step == diagnose(h).step == 30
    assert first_explosion_step(h, by_step=20) is None and first_explosion_step(h, by_step=30) == 30
    assert first_explosion_step(h, threshold=250.0) == 80
    assert first_explosion_step(healthy_history()) is None
    # the rule is the margin alone: a large-β run with loss ~0 and accuracy 1 but a margin of 40 is not one
    saturated = _log_run([0.0, 20.0, 40.0], [0.0, 10.0, 20.0], beta=1.0)
    assert saturated.values("loss")[-1] < 1e-15 and saturated.values("rewards/accuracies")[-1] == 1.0
    assert first_explosion_step(saturated) is None and diagnose(saturated).label != "margin_explosion"
    # ... and a margin above 50 is one, whatever the loss (conservative DPO's loss never reaches 0)
    cdpo_like = _log_run([0.0, 30.0, 60.0], [0.0, 0.0, 0.0], losses=[LOG2, 0.9, 1.0])
    assert first_explosion_step(cdpo_like) == 20 and diagnose(cdpo_like).label == "margin_explosion"
    # runs that log only held-out metrics are read on eval/margin
    assert first_explosion_step([{"step": 0, "eval/margin": 0.0}, {"step": 5, "eval/margin": 51.0}]) == 5


def test_explosion_also_reports_likelihood_displacement():
    d = diagnose(writeup_batch1_history())
    assert "likelihood_displacement" in d.also
    assert "likelihood_displacement" in str(d)


def test_healthy_run():
    d = diagnose(healthy_history())
    assert d.label == "healthy", str(d)
    assert d.step is None
    assert d.also == []
    assert d.ok
    assert any("healthy" in line for line in d.evidence)
    assert detect_margin_explosion(healthy_history()) is None


@pytest.mark.parametrize("jitter", [0.0, 0.05])
def test_flat_log2_run_is_no_learning(jitter):
    d = diagnose(flat_history(jitter=jitter))
    assert d.label == "no_learning", str(d)
    assert any("log 2" in line for line in d.evidence)


def test_small_but_real_learning_is_not_no_learning():
    h = _log_run([0.0, 1.0, 2.0, 3.0], [0.0, 0.5, 1.0, 1.5])
    assert diagnose(h).label != "no_learning"
    # with a tiny β the loss barely leaves log 2, but the unscaled margin shows the learning
    h = _log_run([0.0, 1.0, 2.0, 3.0], [0.0, 0.5, 1.0, 1.5], beta=0.001)
    assert max(abs(v - LOG2) for v in h.values("loss")) < 0.01
    assert diagnose(h).label != "no_learning"


def test_nan_run_is_diverged_at_the_first_nan():
    h = healthy_history()
    h.log(210, loss=float("nan"), **{"logratio/margin": 7.0})
    h.log(220, loss=float("nan"), **{"logratio/margin": float("nan")})
    d = diagnose(h)
    assert d.label == "diverged"
    assert d.step == 210
    assert any("nan" in line for line in d.evidence)


def test_inf_margin_is_diverged_and_wins_over_explosion():
    h = writeup_batch1_history()
    h.log(210, **{"logratio/margin": float("inf")})
    d = diagnose(h)
    assert d.label == "diverged"
    assert d.step == 210
    assert "margin_explosion" in d.also


def test_swapped_run_is_reversed_preferences():
    steps = list(range(0, 210, 10))
    margins = [-6.0 * (1 - math.exp(-s / 40)) for s in steps]
    h = _log_run(margins, [0.3 * m for m in margins], steps=steps, accuracies=[0.05] * len(steps))
    d = diagnose(h)
    assert d.label == "reversed_preferences", str(d)
    assert d.step is not None and d.step > 0
    assert any("accuracy" in line for line in d.evidence)


def test_reversed_preferences_seen_on_held_out_pairs_only():
    h = healthy_history()  # the loss is trained on swapped labels, so the train metrics look fine
    for s in range(0, 250, 50):
        h.log(s, **{"eval/margin": -0.05 * s, "eval/accuracy": 0.1})
    d = diagnose(h)
    assert d.label == "reversed_preferences"
    assert any("held-out" in line for line in d.evidence)


def test_chosen_logratio_falling_is_likelihood_displacement():
    steps = list(range(0, 210, 10))
    margins = [8.0 * s / 200 for s in steps]
    chosen = [-0.75 * m for m in margins]  # chosen falls by 6 nats while the margin grows by 8
    d = diagnose(_log_run(margins, chosen, steps=steps))
    assert d.label == "likelihood_displacement", str(d)
    assert any("fell" in line for line in d.evidence)
    assert d.step is not None


def test_chosen_falling_a_little_is_still_healthy():
    steps = list(range(0, 210, 10))
    margins = [8.0 * s / 200 for s in steps]
    chosen = [-0.25 * m for m in margins]  # a drop of 2 nats while the margin grows by 8: ordinary
    assert diagnose(_log_run(margins, chosen, steps=steps)).label == "healthy"


def test_likelihood_displacement_from_logps_only():
    h = MetricsHistory()
    for i, s in enumerate(range(0, 100, 10)):
        h.log(s, loss=_softplus_neg(BETA * i), **{"logratio/margin": float(i), "logps/chosen": -20.0 - i})
    assert diagnose(h).label == "likelihood_displacement"


# ------------------------------------------------------------------------------------------------
# short histories, input forms, β
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("empty", [MetricsHistory(), [], {"rows": []}, None])
def test_empty_history_does_not_crash(empty):
    d = diagnose(empty)
    assert d.label == "no_learning"
    assert any("no rows" in line for line in d.evidence)


def test_one_row_history():
    d = diagnose([{"step": 0, "loss": LOG2, "logratio/margin": 0.0}])
    assert d.label in ("no_learning", "healthy")
    assert any("only 1 step" in line for line in d.evidence)
    d = diagnose([{"step": 5, "loss": 0.0, "logratio/margin": 500.0}])
    assert any("only 1 step" in line for line in d.evidence)


def test_short_history_advice_says_to_log_more():
    for short in ([], [{"step": 0, "loss": LOG2}]):
        d = diagnose(short)
        assert d.fix.startswith("Log at least two steps")
        assert "Log at least two steps" in str(d)
    assert diagnose(flat_history()).fix == FIXES["no_learning"]


def test_one_row_with_nan_is_diverged():
    assert diagnose([{"step": 0, "loss": float("nan")}]).label == "diverged"


def test_rows_without_margin_or_loss():
    d = diagnose([{"step": 0, "eval/kl": 0.0}, {"step": 10, "eval/kl": 0.5}])
    assert d.label in DIAGNOSIS_LABELS


def test_list_of_dicts_and_dict_inputs_agree():
    h = writeup_batch1_history()
    as_rows = [dict(r) for r in h.rows]
    as_dict = {"rows": as_rows}
    for form in (as_rows, as_dict, h.to_dict()):
        d = diagnose(form)
        assert (d.label, d.step) == ("margin_explosion", 30)


def test_column_dict_and_tensor_values():
    torch = pytest.importorskip("torch")
    cols = {"step": [0, 10, 20], "loss": [LOG2, LOG2, LOG2], "logratio/margin": [0.0, 0.0, 0.0]}
    assert diagnose(cols).label == "no_learning"
    rows = [{"step": s, "loss": torch.tensor(LOG2), "logratio/margin": torch.tensor(0.0)} for s in (0, 10)]
    assert as_history(rows).values("loss") == pytest.approx([LOG2, LOG2])
    assert diagnose(rows).label == "no_learning"


def test_rejects_other_types():
    with pytest.raises(TypeError):
        diagnose(42)


def test_beta_is_used_when_only_scaled_margins_are_logged():
    rows = [{"step": s, "loss": 0.5, "rewards/margins": 10.0 * s / 100} for s in range(0, 110, 10)]
    # unscaled margin: 20 at β = 0.5 (fine), 100 at the assumed β = 0.1 (explosion)
    assert diagnose(rows, beta=0.5).label == "healthy"
    d = diagnose(rows)
    assert d.label == "margin_explosion"
    assert any("assumed" in line for line in d.evidence)


def test_beta_is_read_off_the_history():
    h = writeup_batch1_history()
    rows = [{k: v for k, v in r.items() if k != "logratio/margin"} for r in h.rows]
    rows[1]["logratio/margin"] = h.rows[1]["logratio/margin"]  # one row is enough to read β
    d = diagnose(rows)
    assert (d.label, d.step) == ("margin_explosion", 30)


# ------------------------------------------------------------------------------------------------
# Diagnosis text, FIXES
# ------------------------------------------------------------------------------------------------


def test_diagnosis_str_is_a_headline_bulleted_evidence_and_wrapped_advice():
    d = diagnose(writeup_batch1_history())
    lines = str(d).splitlines()
    assert lines[0] == "Diagnosis: margin_explosion from step 30 · also likelihood_displacement · not ok"
    assert lines[1] == "Evidence:" and lines[2] == "  • unscaled margin 56.9 at step 30 > 50"
    bullets = [line for line in lines if line.startswith("  • ")]
    assert len(bullets) == len(d.evidence)
    assert all(len(line) <= 100 for line in lines)
    advice = lines[lines.index("What to do:") + 1:]
    assert [line[:6] for line in advice if line.startswith("  (")] == ["  (1) ", "  (2) ", "  (3) ", "  (4) "]
    flat = " ".join(str(d).split())   # nothing lost: every piece of evidence and the whole fix, word for word
    assert all(" ".join(item.split()) in flat for item in d.evidence)
    assert " ".join(FIXES["margin_explosion"].split()) in flat


def test_diagnosis_headline_says_ok_and_drift():
    assert str(Diagnosis("healthy")).splitlines()[0] == "Diagnosis: healthy · ok"
    drifted = Diagnosis("healthy", ["held-out KL 12 nats"], drift_step=40)
    assert str(drifted).splitlines()[0] == "Diagnosis: healthy · drifted at step 40 · not ok"


def test_diagnosis_html_has_the_headline_a_list_and_escapes_its_text():
    d = Diagnosis("no_learning", ["loss <b>stuck</b> at log 2", "margin 0"], step=3, advice="Do <this> & that.")
    markup = d._repr_html_()
    assert "Diagnosis: no_learning from step 3 · not ok" in markup
    assert markup.count("<li>") == 2 and "&lt;b&gt;stuck&lt;/b&gt;" in markup and "<b>" not in markup
    assert "Do &lt;this&gt; &amp; that." in markup


def test_fixes_cover_every_label_with_the_right_advice():
    assert set(FIXES) == set(DIAGNOSIS_LABELS)
    explosion = FIXES["margin_explosion"].lower()
    for word in ("learning rate", "batch", "accumulation", "β", "length", "ipo", "early", "conservative"):
        assert word in explosion
    stuck = FIXES["no_learning"].lower()
    for word in ("reference", "frozen", "learning rate", "detach"):
        assert word in stuck
    assert all(isinstance(v, str) and len(v) > 80 for v in FIXES.values())


def test_margin_explosion_advice_comes_in_the_order_the_study_measured():
    """Lesson 09's study: at the learning rate that exploded, the other fixes failed; so the learning rate
    comes first, then batching (which helped only at the smaller rate), early stopping, and last the fixes
    that only bound the margin."""
    text = FIXES["margin_explosion"]
    items = [text.index(f"({n}) ") for n in range(1, 5)]
    assert items == sorted(items), "the four numbered items, in order"
    first, second, third, fourth = (text[a:b] for a, b in zip(items, items[1:] + [len(text)]))
    assert first.startswith("(1) Lower the learning rate")
    assert "bigger batch" in second and "accumulation" in second and "β" in second
    assert "Stop early" in third
    assert "Length-normalised" in fourth and "IPO" in fourth and "conservative DPO" in fourth and "β alone" in fourth
    assert "learning rate" not in text[: items[0]]   # nothing about the step before item 1


@pytest.fixture(scope="module")
def study():
    from rlhf_core.course.studies import FIX_VARIANTS, PATHOLOGY, load_margin_study

    shipped = load_margin_study()
    runs = {name: MetricsHistory.from_dict(v["history"]) for name, v in shipped["variants"].items()}
    assert set(runs) == set(FIX_VARIANTS)
    return shipped["variants"], runs, PATHOLOGY.lr


def test_every_figure_the_explosion_advice_quotes_is_the_shipped_studys(study):
    variants, runs, exploding_lr = study
    text = FIXES["margin_explosion"]
    at_exploding = [n for n, v in variants.items() if v["config"]["lr"] == exploding_lr]
    smaller, default = "smaller step: lr 3e-4", "batch 32 · lr 3e-4 · β 0.3 (the course default)"
    pathology = "batch 1 · β 0.1 · lr 1e-2 (the pathology)"
    assert len(at_exploding) == 6 and exploding_lr == 1e-2 and "(10⁻²)" in text
    assert variants[smaller]["config"]["lr"] * 33 == pytest.approx(exploding_lr, rel=0.02) and "33× smaller" in text
    # (1) every fix at the exploding learning rate: no grammatical sample, a KL of 90 nats or more
    assert all(runs[n].last("eval/grammatical") == 0.0 and runs[n].last("eval/kl") >= 90 for n in at_exploding)
    assert "no sample grammatical and a KL to the reference of 90 nats or more" in text
    # ... while the smaller learning rate alone stays grammatical, close to the reference, and learns little
    h = runs[smaller]
    assert round(100 * h.last("eval/grammatical")) == 85 and round(h.last("eval/kl")) == 2
    assert round(h.last("eval/reward"), 2) == 0.09 and round(h.last("eval/accuracy"), 2) == 0.60
    assert "85 % of the samples grammatical at a KL of about 2 nats" in text and "reward 0.09" in text
    # (2) the course default at the smaller rate, and a batch of 32 alone at the exploding one
    h = runs[default]
    assert variants[default]["changes"] == {"batch_size": 32, "lr": 3e-4, "beta": 0.3, "warmup_steps": 10}
    assert round(h.last("eval/accuracy"), 2) == 0.92 and round(h.last("eval/reward"), 2) == 0.50
    assert round(h.last("eval/kl")) == 3
    assert "accuracy of 0.92 and a reward of 0.50 at a KL of 3 nats, against 0.60 and 0.09" in text
    assert round(runs["batch 32"].last("eval/margin")) == 53 and "held-out margin of 53 nats" in text
    # (3) the pathology's damage is done by its first evaluation
    steps, kls = runs[pathology].series("eval/kl")
    first_eval = steps[1]
    assert first_eval == 10 and kls[1] > 100 and runs[pathology].at("eval/grammatical", first_eval) == 0.0
    assert "before the first evaluation, at step 10" in text
    # (4) margin-bounding fixes: no explosion by the rule, yet far from the reference; β 1.0 and cDPO explode anyway
    for name in ("length-normalised log-probs", "IPO (length-normalised)"):
        assert variants[name]["first_explosion_step"] is None
        assert runs[name].last("eval/kl") > 300 and runs[name].last("eval/grammatical") == 0.0
    assert "a KL above 300 nats, no grammatical sample" in text
    assert not any(v["config"]["lr"] != exploding_lr and v["changes"].get("average_logps") for v in variants.values())
    assert "the study did not try them at a smaller learning rate" in text
    for name in ("β 1.0", "conservative DPO (ε 0.1)", pathology):
        assert variants[name]["first_explosion_step"] == 17
    assert "at step 17 like the pathology" in text and f"{EXPLOSION_THRESHOLD:.0f} nats" in text


# ------------------------------------------------------------------------------------------------
# the companion drift signal: held-out KL, not the margin
# ------------------------------------------------------------------------------------------------


def test_first_drift_step_reads_the_held_out_kl():
    h = healthy_history()                                    # eval/kl at most 1.8 nats
    assert first_drift_step(h) is None
    assert first_drift_step(flat_history()) is None          # no eval/kl logged: no verdict
    for s, kl in ((50, 4.0), (100, DRIFT_KL_THRESHOLD + 2.0), (150, 30.0)):
        h.log(s, **{"eval/kl": kl})
    assert first_drift_step(h) == 100
    assert first_drift_step(h, by_step=90) is None and first_drift_step(h, threshold=25.0) == 150


def test_a_run_whose_held_out_kl_drifts_is_never_ok_whatever_its_training_metrics_say():
    h = healthy_history()
    assert diagnose(h).ok and diagnose(h).drift_step is None
    assert "no measured drift" in " ".join(diagnose(h).evidence)
    for s in (150, 200):
        h.log(s, **{"eval/kl": 40.0 + s / 10, "eval/grammatical": 0.0})
    d = diagnose(h)
    assert d.label == "healthy" and d.drift_step == 150 and not d.ok   # the label names the training metrics' pattern
    assert "the policy has drifted" in d.evidence[-1] and "grammatical" in d.evidence[-1]


def test_a_margin_explosion_without_measured_drift_says_the_margin_is_not_a_kl():
    d = diagnose(writeup_batch1_history())                   # no eval/kl in the write-up's table
    assert d.label == "margin_explosion" and d.drift_step is None
    assert any("not a KL" in line for line in d.evidence)
    h = writeup_batch1_history()
    for s in (0, 50, 100):
        h.log(s, **{"eval/kl": 0.0 if s == 0 else 150.0})
    d = diagnose(h)
    assert d.drift_step == 50 and not any("not a KL" in line for line in d.evidence)


def test_on_the_shipped_study_the_kl_shows_the_drift_the_margin_rule_misses(study):
    variants, runs, exploding_lr = study
    for name, v in variants.items():
        drift = first_drift_step(runs[name])
        if v["config"]["lr"] == exploding_lr:
            assert drift == 10, name                          # every variant at lr 1e-2, by the first evaluation
        else:
            assert drift is None and diagnose(runs[name]).ok, name
    for name in ("length-normalised log-probs", "IPO (length-normalised)"):
        assert variants[name]["first_explosion_step"] is None     # the margin rule is silent ...
        assert not diagnose(runs[name]).ok                       # ... the KL is not


# ------------------------------------------------------------------------------------------------
# frontiers
# ------------------------------------------------------------------------------------------------


def _pt(kl, reward, label="DPO", param=0.1):
    return FrontierPoint(label=label, param=param, kl=kl, reward=reward)


def test_pareto_frontier_removes_dominated_points():
    pts = [
        _pt(1.0, 1.0),
        _pt(2.0, 0.5),  # dominated by (1, 1)
        _pt(2.0, 2.0),
        _pt(3.0, 2.0),  # not strictly above (2, 2)
        _pt(0.5, 0.2),
        _pt(float("nan"), 9.0),  # dropped
        _pt(4.0, 2.5),
    ]
    front = pareto_frontier(pts)
    assert [(p.kl, p.reward) for p in front] == [(0.5, 0.2), (1.0, 1.0), (2.0, 2.0), (4.0, 2.5)]
    assert pareto_frontier([]) == []


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 10), st.floats(-5, 5)), min_size=1, max_size=25))
def test_pareto_frontier_properties(pairs):
    pts = [_pt(k, r) for k, r in pairs]
    front = pareto_frontier(pts)
    kls = [p.kl for p in front]
    rewards = [p.reward for p in front]
    assert kls == sorted(kls)
    assert all(b > a for a, b in zip(rewards, rewards[1:]))  # strictly increasing reward
    for p in pts:  # every point is weakly dominated by a frontier point
        assert any(f.kl <= p.kl and f.reward >= p.reward for f in front)


def test_baseline_reward_is_read_off_its_frontier_as_a_staircase():
    base = [_pt(0.2, 0.1, "B"), _pt(0.6, 0.3, "B"), _pt(0.4, 0.05, "B")]  # (0.4, 0.05) is dominated
    assert baseline_reward_at(base, 0.1) == -math.inf
    assert baseline_reward_at(base, 0.2) == baseline_reward_at(base, 0.5) == 0.1  # no interpolation
    assert baseline_reward_at(base, 0.6) == baseline_reward_at(base, 9.0) == 0.3  # a plateau stays a plateau
    assert baseline_reward_at([], 1.0) == -math.inf


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 10), st.floats(-5, 5)), min_size=1, max_size=25), st.floats(0, 10))
def test_baseline_reward_is_the_best_reward_within_the_kl_budget(pairs, kl):
    pts = [_pt(k, r) for k, r in pairs]
    within = [p.reward for p in pts if p.kl <= kl]
    assert baseline_reward_at(pts, kl) == (max(within) if within else -math.inf)


def test_frontier_gap_compares_each_point_with_the_baseline_frontier():
    lower = [_pt(0.0, 0.0, "preferred-FT"), _pt(2.0, 2.0, "preferred-FT"), _pt(3.0, 0.1, "preferred-FT")]
    upper = [_pt(0.3, 1.0), _pt(1.0, 2.0), _pt(2.5, 1.5), _pt(5.0, 4.0), _pt(float("nan"), 9.0)]
    gaps = frontier_gap(upper, lower)  # 0.3 is below kl_min = 0.5; the NaN point is dropped
    assert [(p.kl, g) for p, g in gaps] == [(1.0, 2.0), (2.5, -0.5), (5.0, 2.0)]
    assert [(p.kl, g) for p, g in frontier_gap(upper, lower, kl_min=0.0)][0] == (0.3, 1.0)
    assert all(g == math.inf for _, g in frontier_gap(upper, [_pt(9.0, 0.0)]))  # the baseline never got that close
    assert frontier_gap([], lower) == []


def test_betas_above_baseline_needs_every_point_past_kl_min_above():
    base = [FrontierPoint("B", 1, 0.2, 0.1), FrontierPoint("B", 1, 0.6, 0.3)]
    points = base + [FrontierPoint("A", 0.1, 0.7, 0.4), FrontierPoint("A", 0.1, 0.3, 0.0),  # below 0.5: ignored
                     FrontierPoint("A", 2.0, 0.8, 0.4), FrontierPoint("A", 2.0, 0.9, 0.2),
                     FrontierPoint("A", 5.0, 0.1, 9.0)]  # no point past kl_min: no verdict
    assert betas_above_baseline(points, method="A", baseline="B") == {0.1: True, 2.0: False}
    assert betas_above_baseline(points, kl_min=0.0, method="A", baseline="B") == {0.1: False, 2.0: False, 5.0: True}


def test_the_explosion_advice_claims_no_drift_that_the_margin_alone_cannot_show():
    """diagnose() reads the margin; whether the policy left the reference is the KL's to say. The advice must not
    assert drift (issue 26: it opened with "The policy has left the reference" while the evidence said drift was
    not measured)."""
    from rlhf_core.fixes import FIXES

    text = FIXES["margin_explosion"].lower()
    assert "left the reference" not in text and "has drifted" not in text
    assert "kl to the reference" in text            # it says what would show drift
