"""A TRL DPOTrainer run and the course's own trainer, same setting, agree within the seed-to-seed spread.

For each seed both train the shipped SFT model on the same reward-ranked pairs (each trainer draws its
own batch order) and the course's ground-truth reward and sequence KL score the result on the same
held-out samples. Bit-exact agreement is neither expected nor asserted: the two differ in batch order,
in the warm-up's first learning rate and in float summation order. What is asserted is the claim of
lesson 11 and of docs/measurements.md: the mean difference is within the spread measured across the seeds, and
that spread is small next to what training changes, so that the comparison could tell a TRL run that
learned nothing (or learned the wrong way) from one that matches.
"""

import math
import statistics

import pytest

pytest.importorskip("trl")
pytestmark = pytest.mark.slow  # three seeds of two trainings and six evaluations

SEEDS = (0, 1, 2)
STEPS = 40  # lesson 11's run


@pytest.fixture(scope="module")
def results():
    from rlhf_core.trl_dpo import compare_with_course

    return compare_with_course(SEEDS, steps=STEPS)


def _scores(results, trainer, metric):
    return [row[metric] for row in results[trainer]]


def _tolerance(results, metric) -> float:
    """Three standard errors of the difference of the two means, from the pooled seed-to-seed spread."""
    pooled = math.sqrt((statistics.variance(_scores(results, "course", metric))
                        + statistics.variance(_scores(results, "TRL", metric))) / 2)
    return 3 * pooled * math.sqrt(2 / len(SEEDS))


@pytest.mark.parametrize("metric", ["eval/reward", "eval/kl"])
def test_the_two_trainers_agree_within_their_seed_spread(results, metric):
    course, trl = _scores(results, "course", metric), _scores(results, "TRL", metric)
    difference = statistics.mean(course) - statistics.mean(trl)
    tolerance = _tolerance(results, metric)
    assert abs(difference) <= tolerance, (
        f"{metric}: course {course} vs TRL {trl}: the means differ by {difference:+.4f}, more than three standard "
        f"errors of the seed-to-seed spread ({tolerance:.4f}); has a setting stopped mapping onto TRL's?")


def test_the_comparison_could_see_a_run_that_did_not_train(results):
    """Both trainers raise the held-out reward by much more than the tolerance, so a TRL run that learned
    nothing (or the wrong way) would fail the agreement test above. (The KL's seed spread at 40 steps is
    too wide for the same power: measured over five seeds, 0.16 ± 0.11 nats for the course and 0.10 ±
    0.02 for TRL; so the KL test only says that the two are not told apart, and that both moved.)"""
    sft = statistics.mean(_scores(results, "SFT", "eval/reward"))
    tolerance = _tolerance(results, "eval/reward")
    for trainer in ("course", "TRL"):
        moved = statistics.mean(_scores(results, trainer, "eval/reward")) - sft
        assert moved > 2 * tolerance, f"{trainer}: the reward moved by {moved:+.4f} from SFT, tolerance {tolerance:.4f}"
        assert min(_scores(results, trainer, "eval/kl")) > 0.01, f"{trainer}: a policy that did not move from SFT"
