"""The machinery of every check: the exercise record and its registry, probe, judge and check.

**One exercise, one record.** An exercise is one :class:`Exercise`, registered once with
``register(Exercise(name=..., lesson=..., reference=..., cases=..., mistakes=[...], ...))`` in its
lesson's checks module. The record holds its name and lesson, the reference it is judged against (the
library's own function, whose signature and docstring *are* the exercise's contract: written once, on
the reference), its cases, its known mistakes with their hints, its points and hidden seeds, and the
other library functions that give the same answer (``same_answer``). Everything else is read from it
(:mod:`~rlhf_core.checks.derived`): ``check_<name>`` and the exports of :mod:`rlhf_core.checks`, the
module-mode stubs (:mod:`rlhf_core.course.exercises`), the notebook's stub and check cell text, the
registry tests and the grader's withholding (``grader.withheld``). Adding an exercise touches three
files: its reference, its record, its place in a lesson.

**Probe and judge.** A check runs in two halves so that the grader can keep them apart. **probe**
calls the candidate on fixed, seeded inputs (a list of :class:`Case`) and records, for every case,
either ``{"ok": True, "values": {key: serialised}}`` or ``{"ok": False, "error": error record}``: plain
JSON-able data (:mod:`~rlhf_core.checks.records`), exceptions, wrong types, shapes and NaNs included.
This half runs the learner's code. **judge** compares that record with the probe of the reference and
of the known mistakes (:mod:`~rlhf_core.checks.compare`), and returns a one-line success message or
raises :class:`CheckFailed` saying what was expected, what came back and which mistake it matches
(:mod:`~rlhf_core.checks.verdicts`). It never runs the learner's code. ``check(exercise, candidate)``
does both and prints ``✓ <what held>``.

**Rules the grader sets for this package.** While a lesson is graded, ``grader.withheld`` rewrites the
library's *source* (it does not import it) so that no reference of that lesson's exercises works in the
grading kernel, and no judging of any exercise is there: every record loses its known mistakes (each one a
near-answer of some exercise: cDPO with ε ignored is DPO's loss), and judging happens outside the kernel. It
reads records and helpers by their text, so:

1. ``Exercise(...)`` takes **keyword arguments only**, with ``name=`` a string literal: the rewrite keeps a
   withheld exercise's probing fields (name, lesson, cases, reference, library_only, summary, formula, rtol,
   atol) and drops the rest, and drops every other exercise's judging fields (mistakes, explain, key_hints,
   shape_hint), so every field but those kept must keep a default.
2. A record's ``cases`` function lives in the module that holds its ``Exercise(...)`` (the grader finds the
   record there by ``cases.__module__``), and ``judge`` stays a module-level function with a parameter
   ``exercise``, in a module where ``CheckFailed`` is defined or imported (the grader puts a guard first in it).
3. A **private helper of an exercise's checks module** (a mistake, a helper of the mistakes) must not share its
   bare name with any text — code, comment or docstring — of another module of ``rlhf_core``: the rewrite
   withholds a private function only when no other file mentions its name, so a shared name would leave a
   mistake (one edit away from some answer) readable while a lesson is graded. Give each module's helpers
   their own names; copy a tiny helper rather than import another lesson's.
4. A reference is a module-level function of ``rlhf_core`` (not of ``checks`` or ``course``), found by its
   ``__module__`` and ``__name__``; ``same_answer`` names every other library function that computes the same
   answer, by qualified name — at its defaults or at some argument setting (the cDPO loss at ε = 0). The route
   scanner (``grader.route_scan``, ``tests/test_route_scanner.py``) finds one that is missing.

The registry tests (``tests/test_checks_registry.py``) hold rules 1 to 4 for every record, and are tested on
records that break them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

import torch

from .compare import first_difference, format_pair, is_finite, is_numeric, outcomes_match, too_big
from .records import MAX_NUMBERS, Missing, error_record, plain_number, serialise, type_name
from .verdicts import FAILURE_KINDS, CheckFailed, crash_cause, format_value, plain, shorten, verdict

__all__ = ["CheckFailed", "FAILURE_KINDS", "Missing", "Case", "Mistake", "Exercise", "EXERCISES", "register", "serialise",
           "error_record", "plain_number", "plain", "shorten", "verdict", "run_case", "probe", "judge", "check",
           "format_value", "outcomes_match", "type_name", "MAX_NUMBERS"]


@dataclass
class Case:
    """One probe input: a human description and a function that calls an implementation on it.

    ``run(fn)`` returns a dict ``{key: value}`` of what to compare (tensors, numbers, strings);
    ``key`` names appear in messages ("loss after step 1").
    """

    name: str
    run: Callable[[Callable], dict[str, Any]]


@dataclass
class Mistake:
    """A known-wrong implementation with the same signature as the exercise, and what to tell the learner.

    ``id`` names the mistake for good (results and the class report count mistakes by it, never by
    the hint's wording): by default the function's name without its leading underscores; a lambda
    must be given one."""

    hint: str
    fn: Callable
    id: str = ""

    def __post_init__(self):
        if not self.id:
            name = getattr(self.fn, "__name__", "")
            if not name.isidentifier():
                raise ValueError(f"the mistake {self.hint[:60]!r} needs an id= (its function has no name)")
            self.id = name.lstrip("_")


@dataclass
class Exercise:
    """One exercise, declared once: everything its stub, check, exports, grading and withholding read.

    The contract — the signature and the docstring a learner's stub carries — is the ``reference``'s own
    (:func:`~rlhf_core.checks.derived.exercise_signature`): keyword-only parameters of the reference and
    those named in ``library_only`` are the library's extras, not part of the exercise. Write it keywords
    only (see the module docstring's rules)."""

    name: str
    cases: Callable[[int], list[Case]]  # seed -> cases
    reference: Callable  # the library's own function: the answer, and the contract
    mistakes: list[Mistake]
    summary: str  # what a pass means, for the ✓ line
    formula: str  # what the right answer is: shown when no known mistake matches, never to an untouched stub
    shape_hint: Callable[[tuple, tuple], str | None] = lambda expected, got: None
    rtol: float = 1e-4
    atol: float = 1e-5
    key_hints: dict[str, str] = field(default_factory=dict)  # what a difference in this key means, if no mistake matches
    # what a difference in ``key`` means, read from the whole case (key, got values, wanted values), if no mistake matches
    explain: Callable[[str, dict, dict], str | None] | None = None
    lesson: int = 0  # the lesson that teaches it: the registry is in lesson order
    #: The points of its check cell in its own lesson, and the seeds its hidden tests run it with (the
    #: visible check runs seed 0; the grader replaces non-zero seeds with secret ones).
    points: float = 0.0
    hidden_seeds: tuple[int, ...] = (101, 202)
    #: Parameters of the reference that the exercise leaves out (a swappable ``loss_fn``), besides its
    #: keyword-only ones.
    library_only: tuple[str, ...] = ()
    #: Other library functions that compute this exercise's answer under another name, withheld with its
    #: reference while the exercise is graded (``grader.withheld``): qualified name → what stands in for it,
    #: ``None`` (calling it raises) or an expression over its own parameters that calls exercise functions
    #: (which then dispatch to the learner's own; used only when every exercise it names is withheld too).
    same_answer: dict[str, str | None] = field(default_factory=dict)

    @property
    def docstring(self) -> str:
        """The exercise's contract in words: the reference's docstring, cleaned of its indentation."""
        return inspect.getdoc(self.reference) or ""


#: The one registry: exercise name → :class:`Exercise`, in lesson order (filled by the lesson modules).
EXERCISES: dict[str, Exercise] = {}


def register(exercise: Exercise) -> Exercise:
    """Add ``exercise`` to :data:`EXERCISES`, kept in lesson order whatever the import order."""
    EXERCISES[exercise.name] = exercise
    ordered = sorted(EXERCISES.values(), key=lambda e: e.lesson)  # stable: a lesson's own order is kept
    EXERCISES.clear()
    EXERCISES.update((e.name, e) for e in ordered)
    return exercise


# --------------------------------------------------------------------------------------------
# probe: run an implementation, record plain data


def run_case(case: Case, fn: Callable) -> dict:
    """Run one case against ``fn``; exceptions (but not KeyboardInterrupt) become data."""
    try:
        values = case.run(fn)
    except Exception as exc:  # the learner's code may raise anything; it is recorded, not re-raised
        return {"ok": False, "error": error_record(exc)}
    return {"ok": True, "values": {k: serialise(v) for k, v in values.items()}}


def probe(exercise: Exercise, candidate: Callable, seed: int = 0) -> dict:
    """The record of ``candidate`` on the exercise's cases: plain data, safe to send elsewhere."""
    torch_state = torch.get_rng_state()
    try:
        results = {}
        for case in exercise.cases(seed):
            results[case.name] = run_case(case, candidate)
        return {"exercise": exercise.name, "seed": seed, "cases": results}
    finally:
        torch.set_rng_state(torch_state)


# --------------------------------------------------------------------------------------------
# judge: compare records


def _matching_mistake(exercise: Exercise, seed: int, case_name: str, got: dict, record_cases: dict) -> Mistake | None:
    """The known mistake whose output equals the candidate's on the failing case; among several,
    the one that agrees with the candidate on the most cases of the record. None if none matches."""
    cases = {c.name: c for c in exercise.cases(seed)}
    best, best_agreement = None, -1
    for mistake in exercise.mistakes:
        outcome = run_case(cases[case_name], mistake.fn)
        if not (outcome.get("ok") and outcomes_match(got, outcome, exercise.rtol, exercise.atol)):
            continue
        agreement = 0
        for name, case in cases.items():
            recorded = record_cases.get(name)
            if name != case_name and isinstance(recorded, dict) and recorded.get("ok"):
                agreement += outcomes_match(recorded, run_case(case, mistake.fn), exercise.rtol, exercise.atol)
        if agreement > best_agreement:
            best, best_agreement = mistake, agreement
    return best


def _fail(exercise: Exercise, case_name: str, text: str = "", *, message: str | None = None, **parts: Any) -> NoReturn:
    """Raise the verdict on ``case_name``, made of ``text`` (the problem) and the parts of :func:`verdict`;
    ``message``, when given, is the one-line text instead (the parts then only shape the display)."""
    title = f"✗ {exercise.name} — {case_name}"
    if message is None:
        raise verdict(title, problem=text, **parts)
    kind, mistake = parts.pop("kind", "unnamed"), parts.pop("mistake", None)
    raise CheckFailed(f"{title}: {message}", title=title, kind=kind, mistake=mistake,
                      **{k: v or None for k, v in parts.items()})


def _not_implemented_text(name: str) -> str:
    """What to do with an untouched stub — never the answer itself."""
    return (f"replace the `raise NotImplementedError` in `{name}` with your code, run that cell, then this one. "
            f"What {name} must compute is in the exercise's text above it, and the hint under the exercise "
            "helps if you are stuck.")


def _is_stub(error: dict) -> bool:
    """Whether an error record is an untouched stub's: a NotImplementedError that is not torch's own
    (``"…" not implemented for 'Long'`` is a dtype error, judged as one)."""
    return error.get("type") == "NotImplementedError" and crash_cause("NotImplementedError", str(error.get("message", ""))) is None


def _judge_error(exercise: Exercise, case_name: str, error: dict) -> NoReturn:
    """The verdict on a case where the candidate raised: an untouched stub is told what to do; a common
    exception (no ``grad_fn``, a shape or dtype mismatch, an undefined name) gets its likely cause
    (:func:`~rlhf_core.checks.verdicts.crash_cause`, read from the record alone); any other the generic advice."""
    kind, where = str(error.get("type", "Exception")), error.get("where", "")
    raw = str(error.get("message", "")).strip()
    message = shorten(raw.splitlines()[0]) if raw else ""  # the first line is the message a learner reads
    if _is_stub(error):
        todo = _not_implemented_text(exercise.name)
        _fail(exercise, "not implemented yet", message=todo, problem=f"{todo[0].upper()}{todo[1:]}", kind="not implemented")
    location = f" ({where})" if where else ""
    got = f"{kind}: {message}{location}"
    cause = crash_cause(kind, raw)
    if cause is not None:
        _fail(exercise, case_name, message=f"your function raised {got}. {cause.problem} {cause.advice}",
              problem=cause.problem, expected=cause.expected, got=got, advice=cause.advice, kind="raised")
    advice = ("Read the error and the line it names; the exercise's text says what shape and dtype each input has "
              "(its docstring too).")
    _fail(exercise, case_name, message=f"your function raised {got}. "
                                       f"Expected it to return normally; the inputs here are valid. {advice}",
          problem="Your function raised an exception, on valid inputs.", expected="a normal return",
          got=got, advice=advice, kind="raised")


def judge(exercise: Exercise, record: dict) -> str:
    """Verdict on a probe record: returns the ✓ text, or raises :class:`CheckFailed`."""
    if not isinstance(record, dict) or record.get("exercise") != exercise.name or not isinstance(record.get("cases"), dict):
        raise CheckFailed(f"✗ {exercise.name}: the record of the run is malformed, so nothing can be credited",
                          kind="malformed")
    seed = int(record.get("seed", 0))
    got_cases = record["cases"]
    # NotImplementedError anywhere means the stub is untouched: say so first, whatever the case order.
    for outcome in got_cases.values():
        if isinstance(outcome, dict) and not outcome.get("ok") and _is_stub(outcome.get("error") or {}):
            _judge_error(exercise, "", outcome["error"])
    for case in exercise.cases(seed):
        want = run_case(case, exercise.reference)
        if not want.get("ok"):  # the reference itself failing is a bug of this library, not the learner's
            raise RuntimeError(f"reference for {exercise.name} failed on {case.name}: {want['error']}")
        got = got_cases.get(case.name)
        if not isinstance(got, dict) or "ok" not in got:
            _fail(exercise, case.name, "no result was recorded for this case (the run stopped early?)", kind="malformed")
        if not got["ok"]:
            _judge_error(exercise, case.name, got.get("error") or {})
        if not outcomes_match(got, want, exercise.rtol, exercise.atol):
            _explain_mismatch(exercise, seed, case.name, got, want, got_cases)
    return exercise.summary


def _fail_on_kind(exercise: Exercise, case_name: str, key: str, got_entry: dict | None, want_entry: dict,
                  hint: str, tag: dict) -> None:
    """Fail when the candidate returned the wrong *kind* of thing for ``key`` (nothing, no key, None, a
    result cut off from autograd, a number for a tensor); return when the kinds agree."""
    label, what = ("", "") if key == "out" else (f"{key}: ", key)
    wanted = format_value(want_entry)
    if got_entry is None:
        _fail(exercise, case_name, **tag, message=f"{label}expected {wanted}, but nothing came back. {hint}".strip(),
              what=what, expected=wanted, got="nothing", advice=hint)
    if got_entry.get("kind") == "missing":
        name = got_entry.get("name", key)
        _fail(exercise, case_name, **tag, message=f"the returned dict has no key {name!r}; expected {wanted} there. {hint}".strip(),
              problem=f"The returned dict has no key {name!r}.", expected=wanted, got=f"no key {name!r}", advice=hint)
    if got_entry.get("kind") == "none" and want_entry.get("kind") != "none" and not key.startswith("grad"):
        _fail(exercise, case_name, **tag,
              message=f"{label}expected {wanted}, got None: is a `return` statement missing? {hint}".strip(),
              what=what, expected=wanted, got="None", advice=f"Is a `return` statement missing? {hint}".strip())
    if key.startswith("grad") and got_entry.get("kind") == "none":
        problem = "No gradient reached the inputs: the result is cut off from autograd."
        advice = ("Did you call .item(), .detach(), torch.tensor(...) or work under torch.no_grad()? "
                  f"Return a tensor computed from the inputs. {hint}").strip()
        _fail(exercise, case_name, **tag, message=f"{label}{problem[0].lower()}{problem[1:]} {advice}", what=what,
              problem=problem, advice=advice)
    if want_entry.get("kind") == "tensor" and got_entry.get("kind") != "tensor":
        extra = "Return the tensor itself (no .item()) so that .backward() can run through it." if got_entry.get("kind") == "number" else ""
        _fail(exercise, case_name, **tag, what=what, expected="a tensor", got=format_value(got_entry),
              advice=" ".join(t for t in (extra, hint) if t))


def _explain_mismatch(exercise: Exercise, seed: int, case_name: str, got: dict, want: dict, record_cases: dict) -> NoReturn:
    """Raise the verdict on a case where the candidate's values differ from the reference's."""
    key = first_difference(got, want, exercise.rtol, exercise.atol) or ""
    want_entry, got_entry = want["values"][key], got["values"].get(key)
    what = "" if key == "out" else key
    mistake = _matching_mistake(exercise, seed, case_name, got, record_cases)
    hint = mistake.hint if mistake else ""
    tag = {"kind": "mistake", "mistake": mistake.id} if mistake else {}   # what the results count
    if not mistake and exercise.explain is not None:
        hint = exercise.explain(key, got["values"], want["values"]) or ""
    if not hint and not mistake and key in exercise.key_hints:
        hint = exercise.key_hints[key]
    _fail_on_kind(exercise, case_name, key, got_entry, want_entry, hint, tag)
    assert got_entry is not None  # _fail_on_kind raised otherwise
    if is_numeric(want_entry) and (is_numeric(got_entry) or too_big(got_entry)):
        want_shape, got_shape = tuple(want_entry["shape"]), tuple(got_entry["shape"])
        if want_shape != got_shape:
            specific = exercise.shape_hint(want_shape, got_shape)
            shape_text = "a scalar (0-dim tensor)" if want_shape == () else f"shape {want_shape}"
            _fail(exercise, case_name, **tag, what=what, expected=shape_text, got=f"shape {got_shape}",
                  advice=" ".join(t for t in (specific, hint) if t))
        if is_finite(want_entry) and not is_finite(got_entry):
            generic = "" if mistake else "Numerically unstable: look for log(0), exp overflow or a division by zero."
            expected, got_text = format_pair(want_entry, got_entry, exercise.rtol, exercise.atol)
            _fail(exercise, case_name, **tag, what=what, expected=expected, got=got_text, advice=hint or generic)
    expected, got_text = format_pair(want_entry, got_entry, exercise.rtol, exercise.atol)
    _fail(exercise, case_name, **tag, what=what, expected=expected, got=got_text,
          advice=hint or f"This matches none of the common mistakes; compare with: {exercise.formula}")


def check(exercise: Exercise, candidate: Callable, seed: int = 0, quiet: bool = False) -> str | None:
    """Probe and judge in one go, or raise :class:`CheckFailed`.

    Prints ``✓ …`` and returns None (so a notebook shows the line once); with ``quiet=True``
    prints nothing and returns the message instead. (``check_<name>`` returns None either way.)
    """
    if not callable(candidate):
        got, advice = type_name(candidate), f"Pass the function itself, e.g. check_{exercise.name}({exercise.name}), without calling it."
        raise CheckFailed(f"✗ {exercise.name}: expected a function, got {got}. {advice}", title=f"✗ {exercise.name}",
                          problem="The check needs your function, not what it returns.", expected="a function",
                          got=got, advice=advice)
    message = "✓ " + judge(exercise, probe(exercise, candidate, seed))
    if quiet:
        return message
    print(message)
    return None
