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
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass

from rlhf_core.checks import EXERCISES, CheckFailed, judge, judge_sanity

from .spec import GradeCell
from .withheld import borrowed_verdict, reached_withheld, withheld_verdict
from .wording import clip, short_form

__all__ = ["CellVerdict", "judge_cell"]

_LOCK = threading.Lock()


@dataclass
class CellVerdict:
    grade_id: str
    score: float
    max_score: float
    passed: bool
    message: str

    def as_dict(self) -> dict:
        return {"grade_id": self.grade_id, "score": self.score, "max_score": self.max_score,
                "passed": self.passed, "message": self.message}


def judge_cell(cell: GradeCell, raw_records: list[str] | None, seeds: dict[int, int], ran: bool = True) -> CellVerdict:
    """The verdict for one check cell from the records its probe cell published."""
    fail = lambda why: CellVerdict(cell.grade_id, 0.0, cell.points, False, why)
    if not raw_records:
        return fail("not graded: the notebook stopped before this check" if not ran else
                    "no result came back from this check (the cell was interrupted or its output was suppressed)")
    if len(raw_records) > 1:
        return fail("tampering: more than one result was published for this check")
    try:
        record = json.loads(raw_records[0])
        if not isinstance(record, dict) or record.get("grade_id") != cell.grade_id:
            return fail("tampering: the result does not belong to this check")
        tampering = record.get("tampering") or []
        if tampering:
            return fail("tampering: " + "; ".join(clip(t, 160) for t in tampering[:3]))
        probes = record.get("probes")
        if not isinstance(probes, list) or len(probes) != len(cell.probes):
            return fail("tampering: the result does not list this check's probes")
        lines = []
        for probe, got in zip(cell.probes, probes):
            if not isinstance(got, dict):
                return fail("malformed result")
            if "absent" in got:
                return fail(f"✗ {', '.join(map(str, got['absent']))} is not defined: did you run (or delete) the exercise cell?")
            name = probe.name if probe.kind == "exercise" else probe.candidates[0]
            if "borrowed" in got:
                return fail(borrowed_verdict(name, str(got["borrowed"])))
            reached = reached_withheld(got)
            if reached is not None:
                return fail(withheld_verdict(name, reached))
            if "crashed" in got:
                return fail(f"✗ the check crashed: {clip(got['crashed'])}")
            with _LOCK:
                if probe.kind == "exercise":
                    seed = seeds.get(probe.seed, probe.seed)
                    lines.append(judge(EXERCISES[probe.name], {"exercise": probe.name, "seed": seed,
                                                                "cases": got.get("cases")}))
                else:
                    if got.get("sanity") != probe.name:
                        return fail("tampering: the result is not this sanity check's")
                    lines.extend(judge_sanity(probe.name, got))
    except CheckFailed as exc:
        return fail(clip(str(exc)))
    except Exception as exc:   # a record the submission mangled must not crash the grader
        return fail(f"malformed result ({type(exc).__name__}: {short_form(str(exc), 160)})")
    unique = list(dict.fromkeys(clip(line) for line in lines))   # the same verdict for several seeds, once
    return CellVerdict(cell.grade_id, cell.points, cell.points, True, " | ".join(unique))
