"""Verdicts from probe records, computed in the grader's own process (never in a submission's kernel).

A check cell earns its points when exactly one record arrived for it, the record reports no
tampering, and every check in it passes when judged here: exercise checks by
:func:`rlhf_core.checks.judge` on the cases this process regenerates from the (secret) seed,
sanity checks by :func:`rlhf_core.checks.judge_sanity`. A probe that reached one of the lesson's
withheld references (:mod:`grader.withheld`), or whose candidate is one of rlhf_core's own
functions, earns 0 with a verdict that says so. Anything else — no record, two records, a
malformed one — earns 0 with a one-line reason. Judging is serialised by a lock: the checks' case
generators use torch's global random state.

A verdict is kept whole, on one line (:mod:`grader.wording`): ``CellVerdict.message`` is the check's
full text, and only ``grades.csv`` shows a short form of it, one that ends on a sentence.

A failed verdict also says what kind of failure it is (``kind``, one of :data:`FAILURE_KINDS`) and,
when the check matched a registered mistake, that mistake's stable id (``mistake``, e.g.
``dpo_loss/dpo_no_ref``): the class report (:mod:`grader.report`) counts these, never the prose.
"""

from __future__ import annotations

import json
import threading

from rlhf_core.checks import EXERCISES, CheckFailed, judge, judge_sanity
from rlhf_core.checks.framework import FAILURE_KINDS as CHECK_FAILURE_KINDS

from .cell_match import NOT_FOUND_KIND
from .result import CellVerdict
from .spec import GradeCell
from .withheld import borrowed_verdict, reached_withheld, withheld_verdict
from .wording import clip, short_form

__all__ = ["CellVerdict", "FAILURE_KINDS", "judge_cell"]

#: Every kind of failed check cell: the checks' own (a registered mistake, an unnamed wrong answer, an
#: untouched stub, an exception, an unreadable record), then the grader's: the notebook stopped before
#: the cell, no result came back, tampering, a name not defined, the library's own function handed
#: in, a withheld reference reached, the probe itself crashing, and the exercise's cell not found in the
#: submission (its nbgrader metadata lost and no cell defining it: :data:`grader.cell_match.NOT_FOUND_KIND`).
FAILURE_KINDS = CHECK_FAILURE_KINDS + ("not run", "no result", "tampering", "not defined", "borrowed", "withheld",
                                       "crashed", NOT_FOUND_KIND)

_LOCK = threading.Lock()


def judge_cell(cell: GradeCell, raw_records: list[str] | None, seeds: dict[int, int], ran: bool = True) -> CellVerdict:
    """The verdict for one check cell from the records its probe cell published."""
    def fail(why: str, kind: str, mistake: str | None = None) -> CellVerdict:
        return CellVerdict(cell.grade_id, 0.0, cell.points, False, why, kind, mistake)

    if not raw_records:
        return (fail("not graded: the notebook stopped before this check", "not run") if not ran else
                fail("no result came back from this check (the cell was interrupted or its output was suppressed)",
                     "no result"))
    if len(raw_records) > 1:
        return fail("tampering: more than one result was published for this check", "tampering")
    probe = None
    try:
        record = json.loads(raw_records[0])
        if not isinstance(record, dict) or record.get("grade_id") != cell.grade_id:
            return fail("tampering: the result does not belong to this check", "tampering")
        tampering = record.get("tampering") or []
        if tampering:
            return fail("tampering: " + "; ".join(clip(t, 160) for t in tampering[:3]), "tampering")
        probes = record.get("probes")
        if not isinstance(probes, list) or len(probes) != len(cell.probes):
            return fail("tampering: the result does not list this check's probes", "tampering")
        lines = []
        for probe, got in zip(cell.probes, probes):
            if not isinstance(got, dict):
                return fail("malformed result", "malformed")
            if "absent" in got:
                return fail(f"✗ {', '.join(map(str, got['absent']))} is not defined: did you run (or delete) the exercise cell?",
                            "not defined")
            name = probe.name if probe.kind == "exercise" else probe.candidates[0]
            if "borrowed" in got:
                return fail(borrowed_verdict(name, str(got["borrowed"])), "borrowed")
            reached = reached_withheld(got)
            if reached is not None:
                return fail(withheld_verdict(name, reached), "withheld")
            if "crashed" in got:
                return fail(f"✗ the check crashed: {clip(got['crashed'])}", "crashed")
            with _LOCK:
                if probe.kind == "exercise":
                    seed = seeds.get(probe.seed, probe.seed)
                    lines.append(judge(EXERCISES[probe.name], {"exercise": probe.name, "seed": seed,
                                                                "cases": got.get("cases")}))
                else:
                    if got.get("sanity") != probe.name:
                        return fail("tampering: the result is not this sanity check's", "tampering")
                    lines.extend(judge_sanity(probe.name, got))
    except CheckFailed as exc:
        kind = getattr(exc, "kind", "unnamed")
        kind = kind if kind in CHECK_FAILURE_KINDS else "unnamed"
        mistake = getattr(exc, "mistake", None)
        return fail(clip(str(exc)), kind, f"{probe.name}/{mistake}" if mistake and probe is not None else None)
    except Exception as exc:   # a record the submission mangled must not crash the grader
        return fail(f"malformed result ({type(exc).__name__}: {short_form(str(exc), 160)})", "malformed")
    unique = list(dict.fromkeys(clip(line) for line in lines))   # the same verdict for several seeds, once
    return CellVerdict(cell.grade_id, cell.points, cell.points, True, " | ".join(unique))
