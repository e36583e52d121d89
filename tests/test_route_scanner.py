"""No route to a withheld answer in a lesson's withheld copy of rlhf_core (grader.route_scan), by trying them all.

The scanner calls every function, method and stored function of the copy on each graded exercise's probe cases
(with extra numeric parameters at 0 and 1 too, and a per-pair result averaged) and reports those that reproduce the
reference. It runs one
subprocess per lesson (tens of seconds each on two shared cores), so these tests are ``slow``. Each test prints
its scan's time; `python -m grader.route_scan` prints the same for every lesson.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from grader import withheld_plan
from grader.course import load_lessons
from grader.route_scan import scan_lesson, scan_library
from grader.withheld import withheld_exercises

pytestmark = pytest.mark.slow   # about a minute of calls on tiny inputs

LESSONS = load_lessons()
GRADED = sorted(name for name, lesson in LESSONS.items() if withheld_exercises(lesson.spec))
REPO = Path(__file__).resolve().parents[1]


def _report(what: str, scan) -> None:
    print(f"{what}: {len(scan.routes)} route(s), {scan.candidates} candidates, {scan.calls} calls, {scan.seconds:.1f} s"
          + "".join(f"\n  route   {r}" for r in scan.routes) + "".join(f"\n  stopped {s}" for s in scan.stopped)
          + "".join(f"\n  refused {s}" for s in scan.refused))


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("route-scan")


@pytest.mark.parametrize("lesson", GRADED)
def test_no_function_of_the_withheld_copy_gives_a_graded_answer(scratch, lesson):
    scan = scan_lesson(lesson, LESSONS[lesson].spec, scratch)
    _report(lesson, scan)
    assert not scan.not_imported, scan.not_imported            # every module was scanned
    assert scan.candidates > 500 and scan.calls > 0
    assert scan.routes == [], f"{lesson}: the withheld copy still gives an answer away: " + "; ".join(map(str, scan.routes))


def test_the_scanner_finds_the_routes_of_a_copy_built_the_old_way(tmp_path, monkeypatch):
    """Before the copy dropped every exercise's judging, lesson 02's copy kept lesson 10's known mistakes, and two
    of them are DPO's loss: cDPO with ε ignored, and IPO's "used DPO's loss"."""
    monkeypatch.setattr(withheld_plan, "unjudged", lambda plans, withheld: None)   # the old construction
    scan = scan_lesson("02_bradley_terry_and_dpo_loss", LESSONS["02_bradley_terry_and_dpo_loss"].spec, tmp_path)
    _report("02, built the old way", scan)
    found = {(r.exercise, r.function, tuple(sorted(r.overrides.items()))) for r in scan.routes}
    assert ("dpo_loss", "rlhf_core.checks.variant_losses._cdpo_smoothing_ignored", ()) in found
    assert ("dpo_loss", "rlhf_core.checks.variant_losses._ipo_dpo_loss", ()) in found
    # and an answer at an argument setting: the flipped-label term dropped is DPO at ε = 0
    assert ("dpo_loss", "rlhf_core.checks.variant_losses._cdpo_flipped_term_missing", (("label_smoothing", 0.0),)) in found


def test_the_scanner_finds_every_reference_in_the_real_library(tmp_path):
    """The scan can fail for every graded exercise: in the library itself, each reference is a route, and so is
    the cDPO loss at ε = 0 for dpo_loss (what the copy's ``same_answer`` withholds)."""
    exercises = sorted({name for lesson in GRADED for name in withheld_exercises(LESSONS[lesson].spec)})
    scan = scan_library(REPO, exercises, tmp_path)
    _report("the real library", scan)
    from rlhf_core.checks import EXERCISES

    found = {(r.exercise, r.function) for r in scan.routes}
    for name in exercises:
        reference = EXERCISES[name].reference
        assert (name, f"{reference.__module__}.{reference.__qualname__}") in found, name
    assert any(r.exercise == "dpo_loss" and r.function == "rlhf_core.losses.conservative_dpo_loss"
               and r.overrides == {"label_smoothing": 0.0} for r in scan.routes)
    assert any(r.exercise == "dpo_loss" and r.function == "rlhf_core.losses.dpo_losses" and r.then == ".mean()"
               for r in scan.routes)     # the per-pair loss, averaged
    assert math.isfinite(scan.seconds)
