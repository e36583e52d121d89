"""The drill's interview variants (rlhf_core.course.variants) and their checks (rlhf_core.checks.variant_losses):
every check passes its reference and names each of its mistakes as itself; the stubs are reported as not
implemented; the library's losses equal values worked out by hand; the loss at initialisation, the random
draw, the toy training hook, the citations, the sanity plans and the red flags hold what they promise."""

import inspect
import math
import re

import pytest
import torch

from rlhf_core import checks, losses
from rlhf_core.checks import EXERCISES, SANITY_CHECKS, CheckFailed, check, variant_losses
from rlhf_core.checks.framework import outcomes_match, run_case
from rlhf_core.checks.sanity_judge import judge_ranking_recovered, judge_reference_frozen
from rlhf_core.checks.sanity_probe import probe_ranking, probe_reference
from rlhf_core.course.variants import (
    VARIANTS,
    Variant,
    find_red_flags,
    get_variant,
    pick_variant,
    toy_loss_fn,
    train_toy_with,
)

SEEDS = (0, 101, 202)
NEW = ("ipo_loss", "conservative_dpo_loss", "simpo_loss", "orpo_odds_ratio_loss")   # the four exercises this module adds
MISTAKES = [pytest.param(name, i, id=f"{name}-{EXERCISES[name].mistakes[i].id}")
            for name in NEW for i in range(len(EXERCISES[name].mistakes))]


# ---- the checks ------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("key", list(VARIANTS))
def test_each_variant_check_passes_its_reference(key, seed):
    variant = VARIANTS[key]
    exercise = EXERCISES[variant.exercise]
    assert exercise.reference is variant.reference
    assert check(exercise, variant.reference, seed=seed, quiet=True) == "✓ " + exercise.summary
    assert variant.check(variant.reference, seed=seed, quiet=True) == "✓ " + exercise.summary


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name, index", MISTAKES)
def test_each_mistake_is_named_as_itself(name, index, seed):
    exercise = EXERCISES[name]
    mistake = exercise.mistakes[index]
    with pytest.raises(CheckFailed) as info:
        check(exercise, mistake.fn, seed=seed, quiet=True)
    assert mistake.hint in str(info.value), f"{mistake.id} was reported as: {info.value}"
    assert info.value.kind == "mistake" and info.value.mistake == mistake.id


@pytest.mark.parametrize("name", NEW)
def test_every_mistake_is_a_named_module_function_unlike_the_reference_and_the_others(name):
    exercise = EXERCISES[name]
    assert exercise.lesson == 10 and len(exercise.mistakes) >= 5
    ids = [m.id for m in exercise.mistakes]
    assert len(set(ids)) == len(ids), ids
    for mistake in exercise.mistakes:
        fn = mistake.fn
        assert fn.__module__ == variant_losses.__name__ and getattr(variant_losses, fn.__name__) is fn
        assert mistake.id == fn.__name__.lstrip("_")
    for seed in SEEDS:
        cases = exercise.cases(seed)
        want = [run_case(c, exercise.reference) for c in cases]
        outcomes = {m.id: [run_case(c, m.fn) for c in cases] for m in exercise.mistakes}
        for mid, got in outcomes.items():
            assert all(o["ok"] for o in got), mid   # a mistake returns a wrong value, it does not raise
            assert not all(outcomes_match(g, w, exercise.rtol, exercise.atol) for g, w in zip(got, want)), \
                f"{mid} equals the reference on every case (seed {seed})"
        for i, a in enumerate(ids):
            for b in ids[i + 1:]:
                assert not all(outcomes_match(x, y, exercise.rtol, exercise.atol)
                               for x, y in zip(outcomes[a], outcomes[b])), f"{a} and {b} agree on every case"


def test_the_check_functions_are_exported_and_name_their_exercise(capsys):
    for name in NEW:
        fn = getattr(checks, f"check_{name}")
        assert fn(EXERCISES[name].reference) is None
        assert capsys.readouterr().out.strip() == "✓ " + EXERCISES[name].summary
        with pytest.raises(CheckFailed, match=name):
            fn(EXERCISES[name].mistakes[0].fn)


@pytest.mark.parametrize("key", list(VARIANTS))
def test_the_stub_raises_not_implemented_and_the_check_says_so(key):
    variant = VARIANTS[key]
    stub = variant.stub_function()
    assert stub.__name__ == variant.exercise
    n_inputs = 4 if variant.uses_reference else 2
    with pytest.raises(NotImplementedError):
        stub(*[torch.zeros(3)] * n_inputs)
    with pytest.raises(CheckFailed, match="not implemented yet") as info:
        variant.check(stub, quiet=True)
    assert info.value.kind == "not implemented"
    assert "raise NotImplementedError" in variant.stub


@pytest.mark.parametrize("key", list(VARIANTS))
def test_the_stub_has_the_references_signature_and_states_its_conventions(key):
    variant = VARIANTS[key]
    stub, reference = inspect.signature(variant.stub_function()), inspect.signature(variant.reference)
    assert [(p.name, p.default) for p in stub.parameters.values()] == \
        [(p.name, p.default) for p in reference.parameters.values()]
    doc = variant.stub_function().__doc__
    assert variant.log_probs in doc and "(B,)" in doc and "0-dim" in doc
    for symbol, param in (("β", "beta"), ("γ", "gamma"), ("ε", "label_smoothing")):
        assert (symbol in doc) == (param in variant.params), (key, symbol)
    assert ("No reference model" in doc) == (not variant.uses_reference)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("key", list(VARIANTS))
def test_a_correct_implementation_written_differently_passes(key, seed):
    """The check asks for the loss, not for the library's way of writing it."""
    def dpo(pc, pr, rc, rr, beta=0.1):
        return torch.nn.functional.softplus(-beta * ((pc - pr) - (rc - rr))).mean()

    def ipo(pc, pr, rc, rr, beta=0.1):
        r_w, r_l = pc - rc, pr - rr                       # unscaled log-ratios
        return ((r_w - r_l) * 2 * beta - 1).pow(2).mean() / (2 * beta) ** 2

    def cdpo(pc, pr, rc, rr, beta=0.1, label_smoothing=0.1):
        h = beta * ((pc - rc) - (pr - rr))
        return ((1 - label_smoothing) * torch.nn.functional.softplus(-h)
                + label_smoothing * torch.nn.functional.softplus(h)).mean()

    def simpo(avg_logp_chosen, avg_logp_rejected, beta=2.0, gamma=0.5):   # γ/β inside the bracket
        return torch.nn.functional.softplus(-beta * (avg_logp_chosen - avg_logp_rejected - gamma / beta)).mean()

    def orpo(avg_logp_chosen, avg_logp_rejected):           # float64 inside, no clamp
        def log_odds(a):
            a = a.double()
            return a - torch.log(-torch.expm1(a))
        h = log_odds(avg_logp_chosen) - log_odds(avg_logp_rejected)
        return torch.nn.functional.softplus(-h).mean().to(avg_logp_chosen.dtype)

    candidate = {"dpo": dpo, "ipo": ipo, "cdpo": cdpo, "simpo": simpo, "orpo": orpo}[key]
    VARIANTS[key].check(candidate, seed=seed, quiet=True)


# ---- the library's losses, against numbers worked out by hand --------------------------------------

def _log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x)) if x >= 0 else x - math.log1p(math.exp(x))


PC, PR, RC, RR = [-1.0, -2.5, -0.5], [-1.5, -2.0, -3.0], [-1.25, -2.25, -1.0], [-1.0, -2.5, -2.0]


def _t(values):
    return torch.tensor(values, dtype=torch.float64)


def _margins():
    return [(pc - rc) - (pr - rr) for pc, pr, rc, rr in zip(PC, PR, RC, RR)]


def test_ipo_equals_its_squared_target_regression_by_hand():
    assert _margins() == [0.75, -0.75, 1.5]
    beta = 0.25                                              # target 1/(2β) = 2
    by_hand = sum((m - 2.0) ** 2 for m in _margins()) / 3    # (1.5625 + 7.5625 + 0.25) / 3
    assert by_hand == 3.125
    assert losses.ipo_loss(_t(PC), _t(PR), _t(RC), _t(RR), beta=beta).item() == pytest.approx(3.125, rel=1e-12)


@pytest.mark.parametrize("beta", [0.1, 0.25, 1.0, 2.0])
def test_ipo_at_initialisation_is_the_squared_target_not_log_2(beta):
    logps = _t([-3.0, -0.5, -7.25])
    got = losses.ipo_loss(logps, logps - 1.0, logps.clone(), logps - 1.0, beta=beta).item()
    assert got == pytest.approx((1.0 / (2.0 * beta)) ** 2, rel=1e-12)
    assert abs(got - math.log(2)) > 0.1


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.2, 0.45])
def test_conservative_dpo_mixes_the_two_labels_by_hand(eps):
    beta = 1.0
    by_hand = sum(-(1 - eps) * _log_sigmoid(beta * m) - eps * _log_sigmoid(-beta * m) for m in _margins()) / 3
    got = losses.conservative_dpo_loss(_t(PC), _t(PR), _t(RC), _t(RR), beta=beta, label_smoothing=eps).item()
    assert got == pytest.approx(by_hand, rel=1e-12)
    if eps == 0.0:   # plain DPO
        assert got == pytest.approx(losses.dpo_loss(_t(PC), _t(PR), _t(RC), _t(RR), beta=beta).item(), rel=1e-12)


def test_conservative_dpo_is_smallest_at_the_margin_log_of_one_minus_eps_over_eps():
    eps, beta = 0.1, 0.5
    best = math.log((1 - eps) / eps) / beta
    m = _t([best - 0.5, best, best + 0.5])
    zero = torch.zeros(1, dtype=torch.float64)
    values = [losses.conservative_dpo_loss(x.view(1), zero, zero, zero, beta=beta, label_smoothing=eps).item() for x in m]
    assert values[1] < values[0] and values[1] < values[2]


def test_simpo_by_hand():
    a_w, a_l, beta, gamma = [-0.5, -1.2, -2.0], [-1.0, -0.9, -2.0], 2.5, 1.0
    hs = [beta * (w - r) - gamma for w, r in zip(a_w, a_l)]
    assert hs == pytest.approx([0.25, -1.75, -1.0])
    by_hand = sum(-_log_sigmoid(h) for h in hs) / 3
    assert losses.simpo_loss(_t(a_w), _t(a_l), beta=beta, gamma=gamma).item() == pytest.approx(by_hand, rel=1e-12)
    tie = losses.simpo_loss(_t(a_w), _t(a_w), beta=beta, gamma=gamma).item()
    assert tie == pytest.approx(math.log(1 + math.exp(gamma)), rel=1e-12)


def test_orpo_odds_ratio_by_hand():
    a_w, a_l = [-0.1, -0.7, -2e-6], [-0.4, -0.2, -3.0]

    def log_odds(a):
        p = math.exp(a)
        return math.log(p / (1 - p))

    by_hand = sum(-_log_sigmoid(log_odds(w) - log_odds(r)) for w, r in zip(a_w, a_l)) / 3
    assert losses.orpo_odds_ratio_loss(_t(a_w), _t(a_l)).item() == pytest.approx(by_hand, rel=1e-8)
    assert losses.orpo_odds_ratio_loss(_t(a_w), _t(a_w)).item() == pytest.approx(math.log(2), rel=1e-12)


def test_orpo_log_odds_stay_finite_and_accurate_near_probability_one_in_float32():
    a = torch.tensor([math.log1p(-17.5 * 2.0 ** -24), -2e-6, -1e-5, -3e-4])   # 1 − p = 17.5 float32 steps below 1
    exact = [x - math.log(-math.expm1(x)) for x in a.double().tolist()]
    assert losses.orpo_log_odds(a).double().tolist() == pytest.approx(exact, rel=1e-5)
    naive = a - torch.log1p(-torch.exp(a))    # what the registered unstable mistake computes
    assert abs(naive[0].item() - exact[0]) > 0.02   # 1 − exp(a) lands at least half a step off: log(18/17.5)


# ---- the variants ------------------------------------------------------------------------------------

@pytest.mark.parametrize("key", list(VARIANTS))
def test_init_loss_is_the_reference_loss_at_initialisation(key):
    variant = VARIANTS[key]
    g = torch.Generator().manual_seed(7)
    chosen, rejected = -torch.rand(5, generator=g) * 3 - 0.01, -torch.rand(5, generator=g) * 3 - 0.01
    settings = [dict(variant.params)]
    if "beta" in variant.params:
        settings.append(dict(variant.params, beta=variant.params["beta"] * 2.5))
    if "gamma" in variant.params:
        settings.append(dict(variant.params, gamma=1.7))
    if "label_smoothing" in variant.params:
        settings.append(dict(variant.params, label_smoothing=0.3))
    for params in settings:
        if variant.uses_reference:   # policy == reference
            got = variant.reference(chosen, rejected, chosen.clone(), rejected.clone(), **params)
        else:                        # a tie: the chosen and rejected responses are equally likely
            got = variant.reference(chosen, chosen.clone(), **params)
        assert got.item() == pytest.approx(variant.init_loss(**params), rel=1e-6), (key, params)
    assert ("tie" in variant.init_condition) == (not variant.uses_reference)


def test_ipo_and_simpo_do_not_start_at_log_2():
    assert VARIANTS["ipo"].init_loss(beta=0.1) == pytest.approx(25.0)
    assert VARIANTS["simpo"].init_loss(beta=2.0, gamma=0.5) == pytest.approx(math.log(1 + math.exp(0.5)))
    for key in ("dpo", "cdpo", "orpo"):
        assert VARIANTS[key].init_loss(**VARIANTS[key].params) == pytest.approx(math.log(2))


def test_pick_variant_is_deterministic_and_draws_every_variant():
    draws = [pick_variant(seed) for seed in range(60)]
    assert draws == [pick_variant(seed) for seed in range(60)]
    assert set(draws) == set(VARIANTS)
    assert all(get_variant("random", seed) is VARIANTS[pick_variant(seed)] for seed in range(10))
    assert get_variant() is VARIANTS["dpo"] and get_variant(VARIANTS["ipo"]) is VARIANTS["ipo"]
    with pytest.raises(ValueError, match="unknown drill variant"):
        get_variant("kto")


@pytest.mark.parametrize("key", list(VARIANTS))
def test_train_toy_with_recovers_the_ranking(key):
    variant = VARIANTS[key]
    result = train_toy_with(key, seed=0)
    assert result["variant"] == key and result["loss_params"] == variant.params
    # the first step saw the uniform start (policy == reference, and every pair a tie): the variant's own loss
    assert result["losses"][0] == pytest.approx(variant.init_loss(**variant.params), rel=1e-5)
    assert result["losses"][-1] < result["losses"][0]
    assert judge_ranking_recovered(probe_ranking(result)).startswith("✓ sanity check 5")
    assert judge_reference_frozen(probe_reference(result)).startswith("✓ sanity check 2")


def test_the_toy_hook_trains_with_the_variant_loss_not_dpo():
    logp = torch.log(torch.tensor([0.5, 0.2]))
    ref = torch.log(torch.tensor([0.25, 0.25]))
    args = (logp[:1], logp[1:], ref[:1], ref[1:])
    assert toy_loss_fn("ipo")(*args, beta=0.1).item() == pytest.approx(losses.ipo_loss(*args, beta=0.1).item())
    assert toy_loss_fn("simpo")(*args, beta=2.0).item() == pytest.approx(
        losses.simpo_loss(logp[:1], logp[1:], beta=2.0, gamma=0.5).item())
    assert toy_loss_fn("orpo")(*args).item() == pytest.approx(losses.orpo_odds_ratio_loss(logp[:1], logp[1:]).item())
    assert toy_loss_fn("cdpo")(*args, beta=0.1).item() != pytest.approx(losses.dpo_loss(*args, beta=0.1).item())


EXPECTED_ARXIV = {"dpo": "2305.18290", "ipo": "2310.12036", "cdpo": None, "simpo": "2405.14734", "orpo": "2403.07691"}


@pytest.mark.parametrize("key", list(VARIANTS))
def test_every_citation_has_an_arxiv_id_or_says_it_has_none(key):
    citation = VARIANTS[key].citation
    assert citation.arxiv == EXPECTED_ARXIV[key]
    if citation.arxiv is None:
        assert "no arXiv id" in citation.note and "no arXiv id" in str(citation)
    else:
        assert re.fullmatch(r"\d{4}\.\d{4,5}", citation.arxiv) and f"arXiv:{citation.arxiv}" in str(citation)
    assert citation.authors and citation.title and citation.venue and 2023 <= citation.year <= 2024


@pytest.mark.parametrize("key", list(VARIANTS))
def test_every_variant_is_complete(key):
    variant = VARIANTS[key]
    assert isinstance(variant, Variant) and variant.key == key and variant.exercise in EXERCISES
    for part in ("problem", "idea", "evidence", "limitations"):
        assert len(getattr(variant.read, part)) > 80, part
    assert len(variant.explain_questions) >= 3 and all(q.endswith("?") for q in variant.explain_questions)
    assert len(variant.rubric) >= 4 and len(set(variant.rubric)) == len(variant.rubric)
    assert len(variant.debrief) >= 3 and all(q.endswith("?") and len(a) > 40 for q, a in variant.debrief)
    assert len(variant.red_flags) >= 3
    assert variant.log_probs in ("summed", "length-averaged")


def test_the_variants_rubrics_and_questions_are_their_own():
    rubrics = [item for v in VARIANTS.values() for item in v.rubric]
    questions = [q for v in VARIANTS.values() for q in v.explain_questions]
    assert len(set(rubrics)) == len(rubrics) and len(set(questions)) == len(questions)


@pytest.mark.parametrize("key", list(VARIANTS))
def test_the_sanity_plan_covers_the_six_checks(key):
    variant = VARIANTS[key]
    assert [(s.number, s.name) for s in variant.sanity] == [(n, name) for n, name, _ in SANITY_CHECKS]
    for step in variant.sanity:
        assert step.check
        if not step.applies:
            assert step.check.startswith(("replaced:", "does not apply:")), step
    not_applying = {s.number for s in variant.sanity if not s.applies}
    assert not_applying == {"dpo": set(), "ipo": {1, 4}, "cdpo": set(), "simpo": {1, 2, 6}, "orpo": {1, 2, 6}}[key]
    if key == "ipo":
        assert "(1/(2β))²" in variant.sanity[0].check and "log 2" in variant.sanity[0].check


@pytest.mark.parametrize("key", list(VARIANTS))
def test_each_red_flag_is_raised_by_its_example_and_not_when_negated(key):
    variant = VARIANTS[key]
    for flag in variant.red_flags:
        found = find_red_flags(variant, flag.example)
        assert (flag.flag, flag.why) in found, (flag.flag, flag.example)
        negated = f"It is not true that {flag.example[0].lower()}{flag.example[1:]}"
        assert find_red_flags(variant, negated) == [], negated


@pytest.mark.parametrize("key", list(VARIANTS))
def test_the_model_answers_and_the_records_own_text_raise_no_red_flag(key):
    """The variant's own prose (Read block, rubric, questions, debrief answers, sanity plan, notes) names what the
    paper replaces by contrast throughout: the scanner must read all of it as correct."""
    variant = VARIANTS[key]
    for question, answer in variant.debrief:
        assert find_red_flags(variant, answer) == [], (question, find_red_flags(variant, answer))
    read = variant.read
    texts = [read.problem, read.idea, read.evidence, read.limitations, variant.notes, *variant.rubric,
             *variant.explain_questions, *(step.check for step in variant.sanity)]
    for text in texts:
        assert find_red_flags(variant, text) == [], text
