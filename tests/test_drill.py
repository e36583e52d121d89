"""The drill's clock, red-flag reader and scorecard."""

import pytest
import torch.nn.functional as F

from rlhf_core import dpo_loss, implicit_reward
from rlhf_core.checks import check_dpo_loss
from rlhf_core.drill import Drill, format_minutes, red_flags_in, start_drill
from rlhf_core.toy import toy_dpo_step


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_blocks_are_timed_until_the_next_begins():
    clock = FakeClock()
    drill = Drill(started=clock(), clock=clock)
    drill.begin("read")
    clock.now += 14 * 60
    drill.begin("explain")
    clock.now += 7 * 60
    drill.begin("implement")
    clock.now += 60
    times = {name: spent for name, _, spent in drill.block_times()}
    assert times == {"read": 14 * 60, "explain": 7 * 60, "implement": 60, "sanity-check": None}
    assert "over budget" not in drill.status_line()
    clock.now += 31 * 60
    assert "over budget" in drill.status_line() and "53:00 elapsed" in drill.status_line()


def test_check_records_and_reraises_with_the_elapsed_time(capsys):
    drill = Drill()
    drill.check("dpo_loss", check_dpo_loss, dpo_loss)

    def no_ref(pc, pr, rc, rr, beta=0.1):
        return -F.logsigmoid(beta * (pc - pr)).mean()

    with pytest.raises(AssertionError, match="drop log π_ref"):
        drill.check("dpo_loss", check_dpo_loss, no_ref)
    out = capsys.readouterr().out
    assert out.count("elapsed of 60:00") == 2
    assert not drill.checks["dpo_loss"].passed


@pytest.mark.parametrize("text, flag", [
    ("We run PPO with rollouts and a value head.", "PPO"),
    ("First we train a reward model on the pairs, then optimise.", "reward model"),
    ("DPO samples from the policy during training.", "online"),
])
def test_red_flags_are_found(text, flag):
    flags = red_flags_in(text)
    assert flags and flag.lower() in flags[0][0].lower()


def test_describing_the_rlhf_baseline_is_not_a_red_flag():
    text = "Standard RLHF trains a reward model, then runs PPO against it. DPO skips both stages."
    assert red_flags_in(text) == []
    assert red_flags_in("DPO, like RLHF, trains a reward model first.")  # a claim about DPO still counts


def test_negated_mentions_are_not_red_flags():
    text = ("DPO needs no reward model and no PPO loop. It is offline, without rollouts; "
            "the reward model is never trained.")
    assert red_flags_in(text) == []


@pytest.mark.slow
def test_scorecard_reflects_a_correct_drill(capsys):
    card = Drill().scorecard({}, "A supervised loss on fixed pairs against a frozen reference.",
                             dpo_loss=dpo_loss, implicit_reward=implicit_reward, toy_step=toy_dpo_step)
    assert all(r.passed for r in card["sanity"]) and all(ok for ok, _ in card["checks"].values())
    assert card["red_flags"] == []
    assert "The six sanity checks: 6/6" in capsys.readouterr().out


def test_scorecard_shows_a_wrong_loss_its_hints_and_the_red_flag(capsys):
    def no_ref(pc, pr, rc, rr, beta=0.1):
        return -F.logsigmoid(beta * (pc - pr)).mean()

    def stub(*a, **k):
        raise NotImplementedError

    card = Drill().scorecard({}, "We use PPO.", dpo_loss=no_ref, implicit_reward=implicit_reward, toy_step=stub)
    out = capsys.readouterr().out
    assert "✗ 1." in out and "reference term" in out
    assert "✗ check_dpo_loss" in out and "drop log π_ref" in out
    assert "not run: training the toy policy" in out
    assert [f for f, _ in card["red_flags"]] == ["described a PPO / RL loop", "forgot the reference term in the loss"]


def test_start_drill_keeps_the_clock_unless_restarted(capsys):
    clock = FakeClock()
    first = start_drill(restart=True, clock=clock)
    clock.now += 90
    assert start_drill(clock=clock) is first and "1:30 elapsed" in capsys.readouterr().out
    assert start_drill(restart=True, clock=clock) is not first
    assert format_minutes(754.4) == "12:34"
