"""The preference losses against their formulas, written out per example in plain float math."""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from rlhf_core import losses

logp = st.floats(min_value=-200.0, max_value=-0.01, allow_nan=False)
betas = st.sampled_from([0.01, 0.1, 0.5, 1.0, 5.0])


def _softplus(x: float) -> float:  # -log σ(-x), exact in plain Python
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def _neg_log_sigmoid(x: float) -> float:
    return _softplus(-x)


def test_dpo_loss_on_a_worked_example():
    t = torch.tensor
    loss = losses.dpo_loss(t([-12, -30.5, -7.25, -20.0]), t([-14, -29, -9.5, -20.0]),
                           t([-13, -31, -7, -20.0]), t([-13.5, -28, -8, -20.0]), beta=0.1)
    assert loss.dim() == 0
    assert abs(loss.item() - 0.641915) < 1e-5


def test_dpo_loss_is_log2_when_policy_equals_reference():
    c, r = -torch.rand(16) * 30, -torch.rand(16) * 30
    assert losses.dpo_loss(c, r, c, r, beta=0.3).item() == pytest.approx(math.log(2), abs=1e-6)


@pytest.mark.parametrize("margin", [1e4, -1e4, 1e3, -1e3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dpo_loss_is_finite_and_exact_at_huge_margins(margin, dtype):
    pc, pr = torch.tensor([margin / 2], dtype=dtype), torch.tensor([-margin / 2], dtype=dtype)
    zero = torch.zeros(1, dtype=dtype)
    loss = losses.dpo_loss(pc, pr, zero, zero, beta=0.1)
    assert torch.isfinite(loss)
    assert loss.item() == pytest.approx(_neg_log_sigmoid(0.1 * margin), rel=1e-6, abs=1e-6)


def test_float32_sigmoid_is_already_zero_at_minus_89_where_logsigmoid_is_exact():
    # the figure the module docstring and lesson 02 give: σ(h) is 0 in float32 well before h = -104
    h = -torch.arange(0, 12000, dtype=torch.float32) / 100              # 0, -0.01, ..., -119.99
    zero_from = h[torch.sigmoid(h) == 0].max().item()                  # the largest h whose σ(h) is 0
    assert -89.0 <= zero_from <= -87.0, zero_from
    assert math.log(torch.finfo(torch.float32).max) == pytest.approx(88.72, abs=0.01)   # e^{-h} overflows there
    at = torch.tensor([-89.0])
    assert torch.sigmoid(at).item() == 0.0 and torch.isinf(-torch.log(torch.sigmoid(at))).all()
    assert (-torch.nn.functional.logsigmoid(at)).item() == pytest.approx(89.0)
    assert torch.sigmoid(torch.tensor([-87.0])).item() > 0   # a normal float32 (1.6e-38): not yet 0


def test_gradient_weight_is_a_half_at_a_tie_and_near_one_only_for_a_wide_mis_ranking():
    zero = torch.zeros(5, dtype=torch.float64)
    h = torch.tensor([-20.0, -2.0, 0.0, 2.0, 20.0], dtype=torch.float64)   # β·margin
    w = losses.dpo_gradient_weight(h / 0.1, zero, zero, zero, beta=0.1)
    assert w[2].item() == 0.5                                            # a tie, as at the start
    assert w[1].item() == pytest.approx(0.8808, abs=1e-4) and w[0].item() > 1 - 1e-8   # mis-ranked: → 1 slowly
    assert w[3].item() == pytest.approx(0.1192, abs=1e-4) and w[4].item() < 1e-8       # ranked right: → 0
    assert torch.all(w[:-1] > w[1:])


def test_the_course_feeds_ipo_per_token_means_as_trl_does():
    from rlhf_core.course.studies import FIX_VARIANTS

    assert FIX_VARIANTS["IPO (length-normalised)"] == {"loss_type": "ipo", "average_logps": True}
    assert "per token" in losses.ipo_losses.__doc__ and "whole sequences" in losses.ipo_losses.__doc__
    # with per-token means and β = 0.1, the loss is 0 exactly at a per-token gap of 1/(2β) = 5 nats
    zero = torch.zeros(1, dtype=torch.float64)
    assert losses.ipo_loss(torch.tensor([5.0], dtype=torch.float64), zero, zero, zero, beta=0.1).item() == 0.0


def test_dpo_loss_gradient_is_finite_at_huge_margins():
    pc = torch.tensor([-1.0, -10001.0], requires_grad=True)
    pr = torch.tensor([-10001.0, -1.0], requires_grad=True)
    ref = torch.full((2,), -5001.0)
    losses.dpo_loss(pc, pr, ref, ref, beta=0.1).backward()
    assert torch.isfinite(pc.grad).all() and torch.isfinite(pr.grad).all()
    assert pc.grad[1].item() == pytest.approx(-0.05)  # σ(1000)·β / B for the mis-ranked pair


@given(st.lists(st.tuples(logp, logp, logp, logp), min_size=1, max_size=12), betas)
def test_dpo_losses_match_the_formula_per_example(rows, beta):
    pc, pr, rc, rr = (torch.tensor(col, dtype=torch.float64) for col in zip(*rows))
    got = losses.dpo_losses(pc, pr, rc, rr, beta=beta)
    want = [_neg_log_sigmoid(beta * ((a - c) - (b - d))) for a, b, c, d in rows]
    assert got.tolist() == pytest.approx(want, rel=1e-9, abs=1e-9)
    assert losses.dpo_loss(pc, pr, rc, rr, beta).item() == pytest.approx(sum(want) / len(want), rel=1e-9, abs=1e-9)


@given(st.lists(st.tuples(logp, logp, logp, logp), min_size=1, max_size=8), betas)
def test_gradient_weight_matches_autograd(rows, beta):
    pc, pr, rc, rr = (torch.tensor(col, dtype=torch.float64) for col in zip(*rows))
    pc.requires_grad_(True)
    losses.dpo_losses(pc, pr, rc, rr, beta).sum().backward()
    weight = losses.dpo_gradient_weight(pc.detach(), pr, rc, rr, beta)
    assert torch.allclose(pc.grad, -beta * weight, rtol=1e-9, atol=1e-12)


def test_implicit_reward_is_elementwise_and_linear_in_beta():
    lp, lr = torch.randn(3, 4), torch.randn(3, 4)
    r = losses.implicit_reward(lp, lr, beta=0.2)
    assert r.shape == (3, 4)
    assert torch.allclose(r, 0.2 * (lp - lr))
    assert torch.allclose(losses.implicit_reward(lp, lr, beta=0.4), 2 * r)


def test_dpo_logits_equal_the_implicit_reward_margin():
    pc, pr, rc, rr = (torch.randn(5) for _ in range(4))
    margin = losses.implicit_reward(pc, rc, 0.3) - losses.implicit_reward(pr, rr, 0.3)
    assert torch.allclose(losses.dpo_logits(pc, pr, rc, rr, 0.3), margin)


def test_mismatched_shapes_raise_a_clear_error():
    with pytest.raises(ValueError, match="same shape"):
        losses.dpo_loss(torch.zeros(4), torch.zeros(4, 1), torch.zeros(4), torch.zeros(4))


@given(st.lists(st.tuples(logp, logp, logp, logp), min_size=1, max_size=8), betas)
def test_ipo_regresses_the_unscaled_margin_to_one_over_two_beta(rows, beta):
    pc, pr, rc, rr = (torch.tensor(col, dtype=torch.float64) for col in zip(*rows))
    got = losses.ipo_losses(pc, pr, rc, rr, beta)
    want = [(((a - c) - (b - d)) - 1 / (2 * beta)) ** 2 for a, b, c, d in rows]
    assert got.tolist() == pytest.approx(want, rel=1e-9, abs=1e-9)


def test_ipo_minimum_is_at_the_target_margin():
    beta = 0.25
    zero = torch.zeros(1, dtype=torch.float64)
    at_target = losses.ipo_loss(torch.tensor([1 / (2 * beta)], dtype=torch.float64), zero, zero, zero, beta)
    assert at_target.item() == pytest.approx(0.0)
    beyond = losses.ipo_loss(torch.tensor([10.0], dtype=torch.float64), zero, zero, zero, beta)
    assert beyond.item() > 0  # unlike DPO, a margin past the target is penalised


@given(st.lists(st.tuples(logp, logp, logp, logp), min_size=1, max_size=8), betas, st.sampled_from([0.0, 0.05, 0.2, 0.4]))
def test_conservative_dpo_matches_its_formula(rows, beta, eps):
    pc, pr, rc, rr = (torch.tensor(col, dtype=torch.float64) for col in zip(*rows))
    got = losses.conservative_dpo_losses(pc, pr, rc, rr, beta, eps)
    want = []
    for a, b, c, d in rows:
        h = beta * ((a - c) - (b - d))
        want.append((1 - eps) * _neg_log_sigmoid(h) + eps * _neg_log_sigmoid(-h))
    assert got.tolist() == pytest.approx(want, rel=1e-9, abs=1e-9)


def test_conservative_dpo_is_dpo_at_zero_smoothing_and_has_a_finite_optimum():
    pc, pr, rc, rr = (torch.randn(6, dtype=torch.float64) for _ in range(4))
    assert torch.allclose(losses.conservative_dpo_loss(pc, pr, rc, rr, 0.1, 0.0), losses.dpo_loss(pc, pr, rc, rr, 0.1))
    eps = 0.1
    h = torch.linspace(-10, 10, 20001, dtype=torch.float64)
    zero = torch.zeros_like(h)
    curve = losses.conservative_dpo_losses(h, zero, zero, zero, beta=1.0, label_smoothing=eps)
    assert h[curve.argmin()].item() == pytest.approx(math.log((1 - eps) / eps), abs=2e-3)
    with pytest.raises(ValueError):
        losses.conservative_dpo_loss(pc, pr, rc, rr, 0.1, 0.6)


@given(st.lists(st.tuples(st.floats(-8, -0.01), st.floats(-8, -0.01)), min_size=1, max_size=8),
       st.sampled_from([1.0, 2.0, 2.5]), st.sampled_from([0.0, 0.5, 1.4]))
def test_simpo_matches_its_formula(rows, beta, gamma):
    aw, al = (torch.tensor(col, dtype=torch.float64) for col in zip(*rows))
    got = losses.simpo_losses(aw, al, beta, gamma)
    want = [_neg_log_sigmoid(beta * (a - b) - gamma) for a, b in rows]
    assert got.tolist() == pytest.approx(want, rel=1e-9, abs=1e-9)


@given(st.lists(st.tuples(st.floats(-8, -0.01), st.floats(-8, -0.01)), min_size=1, max_size=8))
def test_orpo_odds_ratio_matches_its_formula(rows):
    aw, al = (torch.tensor(col, dtype=torch.float64) for col in zip(*rows))
    got = losses.orpo_odds_ratio_losses(aw, al)

    def log_odds(a):
        p = math.exp(a)
        return math.log(p) - math.log(1 - p)

    want = [_neg_log_sigmoid(log_odds(a) - log_odds(b)) for a, b in rows]
    assert got.tolist() == pytest.approx(want, rel=1e-7, abs=1e-9)


def test_orpo_is_finite_near_probability_one():
    near_one = torch.tensor([-1e-9, -1e-12, 0.0])
    assert torch.isfinite(losses.orpo_odds_ratio_losses(near_one, torch.full((3,), -2.0))).all()


def test_losses_prefer_the_chosen_response():
    # every loss must be lower when the chosen response gains probability
    zero = torch.zeros(1)
    up, down = torch.tensor([-0.5]), torch.tensor([-3.0])
    for fn in (losses.dpo_loss, losses.ipo_loss, losses.conservative_dpo_loss):
        assert fn(up, down, zero - 1, zero - 1) < fn(down, up, zero - 1, zero - 1)
    assert losses.simpo_loss(up, down) < losses.simpo_loss(down, up)
    assert losses.orpo_odds_ratio_loss(up, down) < losses.orpo_odds_ratio_loss(down, up)


# ---- Plackett–Luce (the paper's Appendix A.3): a ranking of K responses --------------------------------


def _ranking_nll(scores: list[float]) -> float:
    """-log P(ranking) under Plackett–Luce, in plain Python: K successive choices among the remaining."""
    total = 0.0
    for k in range(len(scores)):
        rest = scores[k:]
        top = max(rest)
        total -= scores[k] - (top + math.log(sum(math.exp(s - top) for s in rest)))
    return total


rankings = st.integers(2, 5).flatmap(lambda k: st.lists(st.lists(logp, min_size=2 * k, max_size=2 * k), min_size=1, max_size=4))


@given(rankings, betas)
def test_plackett_luce_matches_its_formula_per_ranking(rows, beta):
    k = len(rows[0]) // 2
    pol = torch.tensor([r[:k] for r in rows], dtype=torch.float64)
    ref = torch.tensor([r[k:] for r in rows], dtype=torch.float64)
    want = sum(_ranking_nll([beta * (p - q) for p, q in zip(r[:k], r[k:])]) for r in rows) / len(rows)
    assert losses.plackett_luce_loss(pol, ref, beta).item() == pytest.approx(want, rel=1e-9, abs=1e-9)


@given(st.lists(logp, min_size=4, max_size=4), st.lists(logp, min_size=4, max_size=4), betas)
def test_plackett_luce_is_a_distribution_over_the_k_factorial_rankings(pol, ref, beta):
    import itertools

    pol, ref = torch.tensor([pol], dtype=torch.float64), torch.tensor([ref], dtype=torch.float64)
    total = sum(math.exp(-losses.plackett_luce_loss(pol[:, list(order)], ref[:, list(order)], beta).item())
                for order in itertools.permutations(range(4)))
    assert total == pytest.approx(1.0, rel=1e-9)


@given(st.lists(st.tuples(logp, logp, logp, logp), min_size=1, max_size=8), betas)
def test_plackett_luce_with_two_responses_is_dpo(rows, beta):
    pc, pr, rc, rr = (torch.tensor(col, dtype=torch.float64) for col in zip(*rows))
    pl = losses.plackett_luce_loss(torch.stack([pc, pr], -1), torch.stack([rc, rr], -1), beta)
    assert pl.item() == pytest.approx(losses.dpo_loss(pc, pr, rc, rr, beta).item(), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("k", [2, 3, 4, 6])
def test_plackett_luce_is_log_k_factorial_when_policy_equals_reference(k):
    pol = -torch.rand(5, k) * 30
    assert losses.plackett_luce_loss(pol, pol.clone(), beta=0.3).item() == pytest.approx(math.log(math.factorial(k)), rel=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_plackett_luce_is_finite_and_exact_at_huge_margins(dtype):
    pol = torch.tensor([[-1.0, -10001.0, -5001.0, -20001.0], [-20001.0, -1.0, -10001.0, -5001.0]], dtype=dtype,
                       requires_grad=True)
    ref = torch.full((2, 4), -5001.0, dtype=dtype)
    loss = losses.plackett_luce_loss(pol, ref, beta=0.1)
    loss.backward()
    want = sum(_ranking_nll([0.1 * (p - q) for p, q in zip(row, [-5001.0] * 4)]) for row in pol.tolist()) / 2
    assert torch.isfinite(loss) and torch.isfinite(pol.grad).all()
    assert loss.item() == pytest.approx(want, rel=1e-6)


def test_plackett_luce_reads_the_columns_as_the_ranking():
    pol, ref = torch.tensor([[-3.0, -7.0, -5.0]]), torch.tensor([[-4.0, -4.0, -4.0]])
    assert losses.plackett_luce_loss(pol, ref, 0.5).item() == pytest.approx(1.720868, abs=1e-6)   # the worked example
    by_policy = losses.plackett_luce_loss(pol[:, [0, 2, 1]], ref, 0.5)        # the policy's own order is likelier
    assert by_policy.item() < losses.plackett_luce_loss(pol, ref, 0.5).item()
    with pytest.raises(ValueError, match=r"\(B, K\)"):
        losses.plackett_luce_loss(pol[0], ref[0])
