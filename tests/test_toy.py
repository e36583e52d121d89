"""The drill's toy task: DPO recovers two known rankings with a frozen reference."""

import functools
import math

import torch

from rlhf_core.losses import dpo_loss
from rlhf_core.toy import TOY_RANKINGS, ToyPolicy, frozen_copy, make_toy_pairs, run_toy_task, toy_dpo_step


def test_toy_policy_starts_uniform():
    policy = ToyPolicy(2, 6)
    assert isinstance(policy.logits, torch.nn.Parameter)
    assert torch.equal(policy.logits, torch.zeros(2, 6))
    assert torch.allclose(policy.logprobs(torch.tensor([0, 1])).exp(), torch.full((2, 6), 1 / 6))


def test_pairs_cover_every_ordered_pair_of_both_rankings():
    prompts, chosen, rejected = make_toy_pairs()
    assert len(prompts) == 30
    for p, c, r in zip(prompts.tolist(), chosen.tolist(), rejected.tolist()):
        order = TOY_RANKINGS[p]
        assert order.index(c) < order.index(r)


def test_run_toy_task_recovers_the_rankings_and_keeps_the_reference_frozen():
    out = run_toy_task(seed=0, beta=0.1, steps=400)
    assert set(out) >= {"before", "after", "rewards", "rankings", "ref", "policy"}
    assert out["before"].shape == out["after"].shape == out["rewards"].shape == (2, 6)
    for prompt, order in out["rankings"].items():
        ranked = sorted(range(6), key=lambda y: out["rewards"][prompt, y].item(), reverse=True)
        assert ranked == order
        assert out["after"][prompt, order[0]] > 0.5 > out["before"][prompt, order[0]]
    assert all(not p.requires_grad for p in out["ref"].parameters())
    assert torch.equal(out["ref"].logits, torch.zeros(2, 6))


def test_the_loss_falls_from_log2():
    out = run_toy_task(steps=400)
    assert abs(out["losses"][0] - math.log(2)) < 1e-6
    assert out["losses"][-1] < 0.5 * out["losses"][0]


def test_a_swapped_loss_learns_the_reversed_ranking():
    def swapped(pc, pr, rc, rr, beta=0.1):
        return dpo_loss(pr, pc, rr, rc, beta)

    out = run_toy_task(steps=200, loss_fn=swapped)
    ranked = sorted(range(6), key=lambda y: out["rewards"][0, y].item(), reverse=True)
    assert ranked == TOY_RANKINGS[0][::-1]


def test_toy_step_leaves_the_reference_untouched():
    policy = ToyPolicy(2, 6)
    ref = frozen_copy(policy)
    opt = torch.optim.SGD(policy.parameters(), lr=1.0)
    loss = toy_dpo_step(policy, ref, make_toy_pairs(), opt, beta=0.1)
    assert abs(loss - math.log(2)) < 1e-6
    assert not torch.equal(policy.logits, ref.logits)
    assert torch.equal(ref.logits, torch.zeros(2, 6))


@functools.cache
def _toy_states(beta, at=(100, 400, 800)):
    """Prompt 0 of the drill's toy (Adam, lr 0.05, full batch) after each step count in ``at``: the unscaled
    best−worst log-ratio margin, π(best), KL(π‖π_ref), and whether every preference holds."""
    policy = ToyPolicy(2, 6)
    ref = frozen_copy(policy)
    opt = torch.optim.Adam(policy.parameters(), lr=0.05)
    batch, order, states = make_toy_pairs(), TOY_RANKINGS[0], {}
    for step in range(1, max(at) + 1):
        toy_dpo_step(policy, ref, batch, opt, beta=beta)
        if step in at:
            with torch.no_grad():
                logp, logp_ref = policy.logprobs(torch.tensor([0]))[0], ref.logprobs(torch.tensor([0]))[0]  # (6,)
                ratio = (logp - logp_ref)[order]                                  # best … worst
            states[step] = dict(margin=(ratio[0] - ratio[-1]).item(), top=logp[order[0]].exp().item(),
                                kl=(logp.exp() * (logp - logp_ref)).sum().item(), ordered=bool((ratio[:-1] > ratio[1:]).all()))
    return states


def test_a_tenfold_beta_changes_where_the_toy_policy_is_after_a_fixed_number_of_steps():
    # lesson 03, section 6: with Adam, β = 1 vs β = 0.1 is not "barely" different at a fixed step count
    small, large = _toy_states(0.1), _toy_states(1.0)
    assert large[100]["top"] > small[100]["top"] + 0.1           # more mass on the best response early ...
    assert large[100]["margin"] < small[100]["margin"]           # ... with the smaller best−worst margin
    assert small[800]["margin"] > 2 * large[800]["margin"]       # and later the small-β margin is far larger
    for states in (small, large):                                # neither stops: the margin still grows
        assert states[800]["margin"] > states[400]["margin"] > states[100]["margin"]


def test_the_toy_margin_grows_by_tens_of_nats_at_almost_no_cost_in_kl():
    # lesson 03: a large margin alone is not drift — the noiseless toy does exactly what its data asks
    states = _toy_states(0.1)
    assert states[800]["margin"] > 40 and all(s["ordered"] for s in states.values())
    assert states[800]["margin"] - states[400]["margin"] > 10
    assert 0 <= states[400]["kl"] < states[800]["kl"] <= math.log(6) + 1e-6   # KL to a uniform π_ref ≤ log 6
    assert states[800]["kl"] - states[400]["kl"] < 0.5
