"""``python -m grader similarity``: a synthetic class built from the released lessons 02 and 04.

Students (exercise cells only; everything else is the released notebook):

* alice, dave: two independent correct answers written differently — not shown;
* carol: alice's answer with renamed variables, reordered helper lines, new comments (and a ``<script>``
  in a comment) — shown beside alice's for lesson 04 (``get_logps``); lesson 02's ``dpo_loss`` and
  ``implicit_reward`` are too short to score (a ``not scored`` line), so there only library code is shown;
* erin: the untouched stub — never in a row;
* frank, gina: the reference solution verbatim — not flagged as copying each other;
* hal: pastes the library's functions (``inspect.getsource`` of ``rlhf_core``) — "similar to a library file";
* ivan: ``exec`` of a string literal holding the library's source — the same, "inside an exec'd string";
* judy: ``exec(inspect.getsource(...))`` at run time — "execs code read at run time";
* mallory: a notebook that is not JSON — one "not compared" line, no crash.

The synthetic class of ``tests/similarity_class.py`` (20 independent answers per exercise of lessons
02–06 and 24 planted copies) measures the rates: no independent pair shown, the planted copies of scored
exercises shown (``bench/similarity_rates.py`` prints the table). No kernels: nothing here runs a
submission. ``python tests/test_similarity.py`` prints every pair's score of the small class.
"""

from __future__ import annotations

import copy
import csv
import inspect
import json
import re
from pathlib import Path

import pytest

import rlhf_core.logps
import rlhf_core.losses
from grader import similarity as sim
from grader.__main__ import main
from grader.course import NOTEBOOKS_DIR, SOLUTIONS_DIR

L02, L04 = "02_bradley_terry_and_dpo_loss", "04_sequence_logps"
SIG02 = "def dpo_loss(logp_pol_chosen, logp_pol_rejected, logp_ref_chosen, logp_ref_rejected, beta=0.1):\n"
SIG04 = "def get_logps(logits, input_ids, response_mask, average=False):\n"
REWARD = "def implicit_reward(logp_pol, logp_ref, beta=0.1):\n    return beta * (logp_pol - logp_ref)\n"

ALICE = {
    L02: {"dpo_loss": "import torch\n\n\n" + SIG02 + '''    """Sigmoid DPO loss."""
    def log_ratio(pol, ref):
        return pol - ref

    def softplus_mean(z):
        return torch.nn.functional.softplus(z).mean()

    win = log_ratio(logp_pol_chosen, logp_ref_chosen)
    lose = log_ratio(logp_pol_rejected, logp_ref_rejected)
    margin = beta * (win - lose)
    margin = margin.to(torch.float64) if margin.dtype == torch.float16 else margin
    return softplus_mean(-margin)
''', "implicit_reward": REWARD},
    L04: {"get_logps": "import torch\n\n\n" + SIG04 + '''    """Sum or mean of response-token log-probs."""
    def shift(x):
        return x[:, 1:]

    targets = shift(input_ids)
    logprobs = torch.log_softmax(logits[:, :-1, :].float(), dim=2)
    picked = torch.gather(logprobs, 2, targets.unsqueeze(2)).squeeze(2)
    weights = shift(response_mask).to(picked.dtype)
    total = (picked * weights).sum(dim=1)
    if average:
        count = weights.sum(dim=1)
        total = total / torch.clamp(count, min=1.0)
    return total
'''},
}

# alice's answers, variables renamed, helper lines reordered, comments added, a <script> in a comment
CAROL = {
    L02: {"dpo_loss": "import torch\n\n\n" + SIG02 + '''    """DPO."""
    def sp_mean(x):  # </pre><script>alert("carol")</script>
        return torch.nn.functional.softplus(x).mean()

    def lr(a, b):
        return a - b

    bad = lr(logp_pol_rejected, logp_ref_rejected)   # rejected first
    good = lr(logp_pol_chosen, logp_ref_chosen)
    m = beta * (good - bad)
    m = m.to(torch.float64) if m.dtype == torch.float16 else m
    return sp_mean(-m)
''', "implicit_reward": REWARD},
    L04: {"get_logps": "import torch\n\n\n" + SIG04 + '''    """My get_logps."""  # <script>alert(1)</script>
    def sh(t):
        return t[:, 1:]

    lp = torch.log_softmax(logits[:, :-1, :].float(), dim=2)   # log-probs first
    tgt = sh(input_ids)
    w = sh(response_mask).to(lp.dtype)
    got = torch.gather(lp, 2, tgt.unsqueeze(2)).squeeze(2)
    s = (got * w).sum(dim=1)
    if average:
        n = w.sum(dim=1)
        s = s / torch.clamp(n, min=1.0)
    return s
'''},
}

DAVE = {
    L02: {"dpo_loss": "import math\nimport torch\n\n\n" + SIG02 + '''    h = beta * ((logp_pol_chosen - logp_pol_rejected) - (logp_ref_chosen - logp_ref_rejected))
    # log(1 + exp(-h)) without overflow, one branch per sign
    pos = torch.clamp(h, min=0)
    neg = torch.clamp(h, max=0)
    per_example = torch.log1p(torch.exp(-torch.abs(h))) - neg + 0 * pos
    return per_example.sum() / len(h)
''', "implicit_reward": "def implicit_reward(logp_pol, logp_ref, beta=0.1):\n    diff = logp_pol - logp_ref\n    return diff * beta\n"},
    L04: {"get_logps": "import torch\nimport torch.nn.functional as F\n\n\n" + SIG04 + '''    B, T, V = logits.shape
    pred = logits[:, :-1].reshape(-1, V).float()
    gold = input_ids[:, 1:].reshape(-1)
    nll = F.cross_entropy(pred, gold, reduction="none").view(B, T - 1)
    keep = response_mask[:, 1:] > 0
    out = torch.zeros(B)
    for b in range(B):
        vals = -nll[b][keep[b]]
        if average and vals.numel() > 0:
            out[b] = vals.mean()
        else:
            out[b] = vals.sum()
    return out
'''},
}


def _without_markers(code: str) -> str:
    return re.sub(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n", "", code, flags=re.M)


def _reference(lesson: str) -> dict[str, str]:
    cells = sim.exercise_cells(json.loads((SOLUTIONS_DIR / f"{lesson}.ipynb").read_text()))
    return {gid: _without_markers(code) for gid, code in cells.items()}


def _library_paste(lesson: str) -> dict[str, str]:
    if lesson == L02:
        L = rlhf_core.losses
        head = "import torch\nimport torch.nn.functional as F\nfrom torch import Tensor\n\n\n"
        body = "\n\n".join(inspect.getsource(f) for f in (L._check_same_shape, L.dpo_logits, L.dpo_losses, L.dpo_loss))
        return {"dpo_loss": head + body, "implicit_reward": "from torch import Tensor\n\n\n" + inspect.getsource(L.implicit_reward)}
    L = rlhf_core.logps
    return {"get_logps": "import torch\nfrom torch import Tensor\n\n\n" + inspect.getsource(L.get_token_logps) + "\n\n"
                         + inspect.getsource(L.get_logps)}


def _exec_paste(lesson: str) -> dict[str, str]:
    return {gid: f"exec({code!r})\n" for gid, code in _library_paste(lesson).items()}


def _exec_dynamic(lesson: str) -> dict[str, str]:
    module, names = ("rlhf_core.losses", ("dpo_logits", "dpo_losses", "dpo_loss")) if lesson == L02 else ("rlhf_core.logps", ("get_token_logps", "get_logps"))
    code = f"import inspect\nimport {module} as lib\n\nfor _name in {names!r}:\n    exec(inspect.getsource(getattr(lib, _name)))\n"
    return {gid: code for gid in sim.exercise_cells(json.loads((NOTEBOOKS_DIR / f"{lesson}.ipynb").read_text()))}


STUDENTS = {
    "alice": lambda lesson: ALICE[lesson],
    "carol": lambda lesson: CAROL[lesson],
    "dave": lambda lesson: DAVE[lesson],
    "erin": lambda lesson: {},
    "frank": _reference,
    "gina": _reference,
    "hal": _library_paste,
    "ivan": _exec_paste,
    "judy": _exec_dynamic,
}


def _submission(lesson: str, cells: dict[str, str]) -> dict:
    nb = copy.deepcopy(json.loads((NOTEBOOKS_DIR / f"{lesson}.ipynb").read_text()))
    for cell in nb["cells"]:
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if gid in cells:
            cell["source"] = cells[gid]
    return nb


def build_class(root: Path) -> Path:
    subs = root / "submissions"
    for student, make in STUDENTS.items():
        (subs / student).mkdir(parents=True)
        for lesson in (L02, L04):
            (subs / student / f"{lesson}.ipynb").write_text(json.dumps(_submission(lesson, make(lesson))))
    (subs / "mallory").mkdir()
    (subs / "mallory" / f"{L04}.ipynb").write_text("{ this is not json")
    return subs


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("similarity")
    subs = build_class(root)
    lines = []
    report = sim.similarity(subs, root / "out", log=lines.append)
    return report, root / "out", lines


def _pairs(report, kind=sim.STUDENT):
    return {(r.lesson, frozenset((r.student_a, r.student_b))): r for r in report.rows if r.kind == kind}


def test_a_copy_with_renamed_variables_and_reordered_lines_is_shown_first(run):
    report, _, _ = run
    pairs = _pairs(report)
    assert (L04, frozenset(("alice", "carol"))) in pairs, "carol's copy of alice's get_logps not shown"
    top = [r for r in report.rows if r.kind == sim.STUDENT][0]
    assert {top.student_a, top.student_b} == {"alice", "carol"} and top.exercise == "get_logps"
    assert "share" in top.evidence and "fingerprints" in top.evidence


def test_exercises_too_short_to_score_say_so(run):
    report, _, _ = run
    skipped = {r.exercise for r in report.notes if r.kind == sim.NOT_SCORED}
    assert skipped == {"dpo_loss", "implicit_reward"}, skipped
    assert not any(r.kind == sim.STUDENT and r.lesson == L02 for r in report.rows)
    note = next(r for r in report.notes if r.exercise == "dpo_loss" and r.kind == sim.NOT_SCORED)
    assert note.evidence.startswith("dpo_loss is not scored: its answers are too short")


def test_independent_answers_stub_and_reference_are_never_a_student_match(run):
    report, _, _ = run
    flagged = {pair for (_, pair) in _pairs(report)}
    assert flagged == {frozenset(("alice", "carol"))}, f"unexpected pairs: {flagged}"
    assert not any("erin" in (r.student_a, r.student_b) for r in report.rows), "the untouched stub matched"
    assert not any(r.student_a in ("frank", "gina") for r in report.rows), "the reference solution matched"


def test_library_code_and_code_read_at_run_time_are_their_own_row_kinds(run):
    report, _, _ = run
    for lesson, file in ((L02, "rlhf_core/losses.py"), (L04, "rlhf_core/logps.py")):
        pasted = [r for r in report.rows if r.student_a == "hal" and r.lesson == lesson]
        assert [(r.kind, r.student_b) for r in pasted] == [(sim.LIBRARY, file)], pasted
        in_string = [r for r in report.rows if r.student_a == "ivan" and r.lesson == lesson]
        assert [(r.kind, r.student_b) for r in in_string] == [(sim.LIBRARY_EXEC, file)], in_string
        dynamic = [r for r in report.rows if r.student_a == "judy" and r.lesson == lesson]
        assert [r.kind for r in dynamic] == [sim.DYNAMIC], dynamic
    # the two who show library code are not shown beside each other: that is one source
    assert not any({"hal", "ivan"} & {r.student_a, r.student_b} for r in report.rows if r.kind == sim.STUDENT)


def test_scores_of_copies_and_of_independent_answers_are_apart_from_the_threshold(run):
    report, _, _ = run
    copies = [r.score for r in report.rows if r.kind != sim.DYNAMIC]
    near = [r.score for r in report.near]
    assert min(copies) >= sim.DEFAULT_THRESHOLD + 0.2, copies
    assert not near or max(near) <= sim.DEFAULT_THRESHOLD - 0.3, near


def test_outputs_are_ranked_escaped_and_note_the_malformed_notebook(run):
    report, out, lines = run
    with open(out / "similarity.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == sim.FIELDS
    scores = [float(r["score"]) for r in rows if r["score"]]
    assert scores == sorted(scores, reverse=True)
    notes = [r for r in rows if r["student_a"] == "mallory"]
    assert len(notes) == 1 and notes[0]["kind"].startswith("not compared: invalid notebook"), notes
    page = (out / "similarity.html").read_text()
    assert "<script" not in page.lower(), "submission text reached the page unescaped"
    assert "&lt;script&gt;alert" in page and "<mark>" in page
    assert "mallory" in page and sum("mallory" in line for line in lines) == 1


def test_no_row_accuses_and_every_label_reads_the_same_at_any_threshold(tmp_path):
    """Issue 28.7: the label said "copied" whatever the score. Now no word of the page or the CSV says who
    copied or pasted, and a row's kind is the same at threshold 0.3 as at the default."""
    subs = build_class(tmp_path)
    low = sim.similarity(subs, tmp_path / "low", threshold=0.3, log=lambda *a: None)
    default = sim.similarity(subs, tmp_path / "default", log=lambda *a: None)
    kinds = lambda rep: {(r.lesson, r.exercise, r.student_a, r.student_b): r.kind for r in rep.rows}
    assert kinds(default).items() <= kinds(low).items()
    for out in ("low", "default"):
        text = (tmp_path / out / "similarity.html").read_text().lower() + (tmp_path / out / "similarity.csv").read_text().lower()
        assert not re.search(r"\bcop(y|ied|ier)\b|\bpast(e|ed)\b", text), out
    for r in low.rows:
        if r.kind == sim.STUDENT:
            assert (r.score >= 0.3 or r.unique >= sim.MIN_UNIQUE_STATEMENTS) and f"share {r.shared} fingerprints" in r.evidence


def test_a_known_mistake_is_reported_as_that_mistake(tmp_path):
    """Five students hand in the most common mistake of lesson 02 exactly as the registry writes it:
    no row says they share code; each gets a "known mistake" line."""
    no_ref = "    return -F.logsigmoid(beta * (logp_pol_chosen - logp_pol_rejected)).mean()\n"
    subs = tmp_path / "submissions"
    for i in range(5):
        (subs / f"m{i}").mkdir(parents=True)
        cell = _reference(L02)["dpo_loss"].split("    chosen_logratio")[0] + no_ref
        (subs / f"m{i}" / f"{L02}.ipynb").write_text(json.dumps(_submission(L02, {"dpo_loss": cell})))
    report = sim.similarity(subs, tmp_path / "out", threshold=0.0, log=lambda *a: None)
    assert not report.rows, report.rows
    mistakes = [r for r in report.notes if r.kind == sim.MISTAKE]
    assert len(mistakes) == 5 and all(r.student_b == "dpo_loss/dpo_no_ref" for r in mistakes)
    assert "matches the known mistake 'dpo_no_ref' of dpo_loss — a common mistake, not evidence of copying" == mistakes[0].evidence


def test_the_synthetic_class_shows_no_independent_pair_and_the_planted_copies():
    """The rates of ``bench/similarity_rates.py``, on the class of ``tests/similarity_class.py``."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from similarity_rates import measure

    rates = measure()
    assert sum(r["false positives"] + r["library false positives"] for r in rates.values()) == 0, rates
    scored = {name: r for name, r in rates.items() if r["scored"]}
    assert set(scored) == {"toy_dpo_step", "get_logps", "apply_rope", "sft_step"}
    # measured: 13 of the 14 copies of scored exercises (the reordered toy_dpo_step at 0.50 and the renamed,
    # reordered and padded get_logps at 0.70 by the statements only they have); the one missed is the next test's
    assert sum(r["detected"] for r in scored.values()) == 13, scored
    assert scored["toy_dpo_step"]["detected"] == scored["toy_dpo_step"]["copies"] - 1, scored
    # the statement rule's margin: independent pairs share at most one statement no other cell has; the copies of
    # scored exercises 0 to 9 (docs/grading.md), and two are shown by that rule alone
    assert max(r["max independent unique"] for r in rates.values()) < sim.MIN_UNIQUE_STATEMENTS - 1, rates
    assert (min(r["min copy unique"] for r in scored.values()), max(r["max copy unique"] for r in scored.values())) == (0, 9)
    alone = {name: r["by statements alone"] for name, r in scored.items() if r["by statements alone"]}
    assert alone == {"toy_dpo_step": [("copy07_of_s03", 0.5, 6)], "get_logps": [("copy10_of_s02", 0.7, 6)]}, alone


def test_the_copy_not_shown_is_as_far_from_its_original_as_an_independent_answer():
    """The planted copy the report misses (s00's toy_dpo_step renamed, reordered and padded) cannot be shown without
    showing s16: names aside, s16 holds all but one of s00's statements, in s00's order, so every rule that ignores
    names finds it as close to s00 as the copy. Neither is shown."""
    import ast

    from grader.fingerprints import statement_shape
    from similarity_class import ANSWERS, LESSON_OF, cell, copies, lesson_cells

    def shapes(code):
        fn = next(n for n in ast.walk(ast.parse(code)) if isinstance(n, ast.FunctionDef) and n.name == "toy_dpo_step")
        return [statement_shape(s) for s in fn.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]

    planted = {index: (student, code) for student, exercise, index, _, code in copies() if exercise == "toy_dpo_step"}
    copier, missed = planted.pop(0)
    s00, s16 = (shapes(cell("toy_dpo_step", ANSWERS["toy_dpo_step"][i])) for i in (0, 16))
    assert len(s16) == len(s00) - 1 and all(s in s00 for s in s16), (s00, s16)
    assert set(s00) <= set(shapes(missed)), "the copy keeps every statement of its original"

    lesson = LESSON_OF["toy_dpo_step"]
    cells = {s: found["toy_dpo_step"] for s, found in lesson_cells()[lesson].items() if "toy_dpo_step" in found}
    _, stub, reference = sim._lesson_inputs(lesson, SOLUTIONS_DIR / f"{lesson}.ipynb", NOTEBOOKS_DIR)
    rows, _ = sim.compare(cells, sim.exercise_code("toy_dpo_step", stub["toy_dpo_step"], reference["toy_dpo_step"]), lesson)
    shown = {frozenset((r.student_a, r.student_b)) for r in rows if r.kind == sim.STUDENT}
    assert not shown & {frozenset(("s00", "s16")), frozenset(("s00", copier))}, shown
    others = {frozenset((student, f"s{index:02d}")) for index, (student, _) in planted.items()}
    assert len(others) == 3 and others <= shown, shown   # the other three copies of toy_dpo_step are shown


@pytest.mark.slow
def test_one_order_of_statements_would_find_more_copies_and_show_independent_pairs():
    """Why the report does not sort statements before fingerprinting (docs/grading.md): measured on the same class,
    it finds the reordered get_logps copy, and shows independent answers whose statements differ only in order."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from similarity_rates import measure_one_order

    scored = {name: r for name, r in measure_one_order().items() if r["scored"]}
    assert scored["get_logps"]["detected"] == scored["get_logps"]["copies"] == 4, scored
    assert sum(r["detected"] for r in scored.values()) >= 12, scored
    shown = {(name, a, b) for name, r in scored.items() for a, b, *_ in r["independent shown"]}
    assert ("toy_dpo_step", "s00", "s16") in shown and len(shown) >= 2, scored


@pytest.mark.parametrize("answers", [ALICE, CAROL, DAVE], ids=["alice", "carol", "dave"])
def test_the_synthetic_answers_are_correct(answers):
    """The "independent correct answers" are correct: the lesson's own checks pass on them."""
    from rlhf_core import checks

    for cells in answers.values():
        for gid, code in cells.items():
            namespace = {}
            exec(code, namespace)
            getattr(checks, f"check_{gid}")(namespace[gid], quiet=True)     # raises CheckFailed when wrong


@pytest.mark.parametrize("exercise", ["dpo_loss", "implicit_reward", pytest.param("toy_dpo_step", marks=pytest.mark.slow),
                                      "get_logps", "rms_norm", "swiglu", "apply_rope", pytest.param("sft_step", marks=pytest.mark.slow)])
def test_the_synthetic_class_is_what_it_says(exercise):
    """Its "correct" answers and copies pass the exercise's check; its mistakes fail it (the lesson's own
    imports, torch and F, are in scope as in the notebook)."""
    import torch
    import torch.nn.functional as F

    import similarity_class as C
    from rlhf_core import checks

    def passes(code):
        namespace = {"torch": torch, "F": F}
        exec(code, namespace)
        try:
            getattr(checks, f"check_{exercise}")(namespace[exercise], quiet=True)
        except AssertionError:
            return False
        return True

    for i, answer in enumerate(C.ANSWERS[exercise]):
        assert passes(C.cell(exercise, answer)) == (answer.expect == "ok"), (exercise, i, answer.expect)
    for student, name, index, how, code in C.copies():
        if name == exercise:
            assert passes(code) == (C.ANSWERS[exercise][index].expect == "ok"), (student, how)


def test_cli_one_lesson_with_a_threshold(tmp_path):
    subs = build_class(tmp_path)
    assert main(["similarity", str(subs), "--lesson", "04", "--out", str(tmp_path / "o"), "--threshold", "0.97"]) == 0
    with open(tmp_path / "o" / "similarity.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and {r["lesson"] for r in rows} == {L04}
    assert all(float(r["score"]) >= 0.97 for r in rows if r["score"])
    assert main(["similarity", str(subs), "--lesson", "77", "--out", str(tmp_path / "o")]) == 2


def measure(root: Path) -> None:
    """Print every pair's score and every student's best library score (threshold 0: all of them)."""
    report = sim.similarity(build_class(root), root / "out", threshold=0.0, min_shared=0, log=lambda *a: None)
    for r in report.rows:
        print(f"{r.lesson[:2]} {r.exercise:<16} {r.student_a:>6} {r.student_b:<24} {r.score if r.score is not None else '':<6} {r.kind}")

def test_statement_marks_keep_what_renaming_reordering_and_padding_keep():
    from grader.fingerprints import statement_marks

    original = "import torch\ndef f(x, m):\n    '''Doc.'''\n    s = x[:, 1:].sum(dim=-1)  # the shifted sum of each row\n    return s\n"
    renamed = "import torch\ndef f(x, m):\n    total = x[:, 1:].sum(dim=-1)  # the shifted sum of each row\n    return total\n"
    a, b = statement_marks(original), statement_marks(renamed)
    shared = {v[0] for k, v in a.items() if k in b}
    assert shared == {"V = V [ : , C : ] . V ( V = - C )", "# the shifted sum of each row"}, shared   # shape and comment
    assert not any("import" in k or "Doc." in k for k in a), a            # imports and docstrings are everyone's
    assert not any(k.startswith(("text: return", "shape: return")) for k in a), a   # `return s`: too short
    assert statement_marks("def f(:\n    # a comment long enough\n") == {
        "comment: # a comment long enough": ("# a comment long enough", "# a comment long enough")}


def test_three_statements_no_other_cell_has_show_a_pair_and_a_third_holder_or_the_reference_does_not():
    """The statement rule alone (a threshold no fingerprint score reaches): it shows a pair that holds three
    statements no other cell has, not two, not three that a third cell also holds, and never the expected code's."""
    _, stubs, references = sim._lesson_inputs(L04, SOLUTIONS_DIR / f"{L04}.ipynb", NOTEBOOKS_DIR)
    exercise = sim.exercise_code("get_logps", stubs["get_logps"], references["get_logps"])
    lines = ["    a = logits.log_softmax(-1)[:, :-1]\n", "    b = response_mask[:, 1:].to(a.dtype)\n",
             "    c = a.gather(2, input_ids[:, 1:, None])[..., 0]\n"]

    def cell(statements):
        return SIG04 + "".join(statements) + "    return c\n"   # too short to count

    def shown(cells):
        rows, _ = sim.compare(cells, exercise, L04, threshold=1.1)   # no fingerprint score can reach 1.1
        return {frozenset((r.student_a, r.student_b)): r.unique for r in rows if r.kind == sim.STUDENT}

    assert shown({"p": cell(lines), "q": cell(lines[::-1]), "r": SIG04 + "    return 0\n"}) == {frozenset("pq"): 3}
    assert shown({"p": cell(lines[:2]), "q": cell(lines[:2])}) == {}                       # two statements
    assert shown({"p": cell(lines), "q": cell(lines), "r": cell(lines)}) == {}             # a third holder
    body = _without_markers(references["get_logps"]).split('"""')[-1]
    assert shown({"p": SIG04 + body, "q": SIG04 + body}) == {}                             # the reference's own


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        measure(Path(d))

