"""The drill's toy task: DPO recovers two known rankings with a frozen reference."""

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
