"""The withheld copy of the library a lesson is graded with (grader.withheld): no reference of the lesson's
exercises works in it, however reached, and everything else does.

The copy is built here as the grader builds it; the routes a submission could take to a reference are
tried in a fresh Python that imports the copy (as the grading kernel does, without the sandbox: the copy
comes first on the path). tests/test_autograde_hostile.py tries the same routes through the whole
grader, sandbox included, and tests/test_grader_check.py through the learner's self-check.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import marshal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from grader import withheld_plan
from grader.course import load_lessons
from grader.judge import judge_cell
from grader.spec import GradeCell, Probe
from grader.withheld import GUARDS, withheld_exercises, withheld_library

LESSONS = load_lessons()


@pytest.fixture(scope="module")
def copies(tmp_path_factory):
    """Every lesson's copy, built once into one scratch folder (as one grading run does)."""
    scratch = tmp_path_factory.mktemp("scratch")
    seconds, built = {}, {}
    for name, lesson in LESSONS.items():
        start = time.perf_counter()
        built[name] = withheld_library(name, lesson.spec, scratch)
        seconds[name] = time.perf_counter() - start
        again = time.perf_counter()
        assert withheld_library(name, lesson.spec, scratch) == built[name]      # built once per run and lesson
        seconds[name + " (cached)"] = time.perf_counter() - again
    print("build seconds:", {k: round(v, 3) for k, v in seconds.items()})
    return built


def _body_text(function) -> str:
    """A function's body as source, its docstring left out."""
    source = textwrap.dedent(inspect.getsource(function))
    node = ast.parse(source).body[0]
    body = node.body[1:] if ast.get_docstring(node) is not None else node.body
    return "\n".join(ast.unparse(statement) for statement in body)


def _withheld_functions(lesson: str):
    """The lesson's references and their same answers, and the known mistakes of every exercise (any lesson's)."""
    from rlhf_core.checks import EXERCISES

    for exercise in withheld_exercises(LESSONS[lesson].spec):
        reference = inspect.unwrap(EXERCISES[exercise].reference)
        yield reference.__module__, reference
        for qualname in EXERCISES[exercise].same_answer:
            module, _, name = qualname.rpartition(".")
            yield module, getattr(importlib.import_module(module), name)
    for exercise in EXERCISES.values():
        for mistake in exercise.mistakes:
            if mistake.fn.__name__ != "<lambda>":
                yield mistake.fn.__module__, mistake.fn


def _copy_file(copy: Path, module: str) -> Path:
    path = copy.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


@pytest.mark.parametrize("lesson", sorted(LESSONS))
def test_the_copy_holds_no_source_of_the_lessons_references_nor_of_any_known_mistake(copies, lesson):
    copy = copies[lesson]
    for module, function in _withheld_functions(lesson):
        text = _copy_file(copy, module).read_text()
        node = next(n for n in ast.parse(text).body if isinstance(n, ast.FunctionDef) and n.name == function.__name__)
        assert ast.get_docstring(node).startswith(f"Withheld while lesson {lesson[:2]} is graded"), (module, node.name)
        assert len(node.body) == 2, f"{lesson}: {module}.{node.name} keeps more than its stand-in"
        assert _body_text(function) not in text, f"{lesson}: {module}.{node.name} is still in the copy"


def test_the_copys_bytecode_is_compiled_from_the_copy(copies):
    pyc = next((copies["02_bradley_terry_and_dpo_loss"] / "rlhf_core" / "__pycache__").glob("losses.*.pyc"))
    module = marshal.loads(pyc.read_bytes()[16:])
    codes = {c.co_name: c for c in module.co_consts if hasattr(c, "co_code")}
    assert "logsigmoid" not in codes["dpo_losses"].co_names and "logsigmoid" not in codes["dpo_loss"].co_names
    assert "logsigmoid" in codes["simpo_losses"].co_names      # what is not withheld is still there


def test_a_lesson_without_exercises_needs_no_copy(tmp_path):
    assert withheld_library("00_nothing", [], tmp_path) is None


def test_the_guarded_functions_and_the_also_withheld_ones_exist():
    for (module, function), _ in GUARDS.items():
        assert callable(getattr(importlib.import_module(module), function))
    from rlhf_core.checks import EXERCISES

    for exercise in EXERCISES.values():
        for qualname in exercise.same_answer:
            module, _, name = qualname.rpartition(".")
            assert inspect.isfunction(getattr(importlib.import_module(module), name)), qualname


def run_in_copy(copy: Path, script: str, tmp_path: Path) -> dict:
    """Run ``script`` as ``__main__`` of a fresh Python that imports ``copy`` first; it prints one JSON line."""
    path = tmp_path / "script.py"
    path.write_text(textwrap.dedent(script))
    done = subprocess.run([sys.executable, str(path)], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(copy), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                               "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


ROUTES = r'''
import copy, importlib, inspect, json, types, __main__
import torch
import rlhf_core, rlhf_core.losses as L
from rlhf_core.checks import EXERCISES, CheckFailed, check_dpo_loss
from rlhf_core.course.notebook import yours_or_reference

out = {"file": rlhf_core.__file__}
args = (torch.tensor([-1.0, -2.0]), torch.tensor([-3.0, -1.0]), torch.tensor([-1.5, -2.5]), torch.tensor([-2.0, -2.0]))

def outcome(fn):
    try:
        return ["ok", float(fn(*args))]
    except Exception as exc:
        return [type(exc).__name__, str(exc)]

out["before any dpo_loss"] = outcome(L.dpo_loss)
def right(pc, pr, rc, rr, beta=0.1):
    return -torch.nn.functional.logsigmoid(beta * ((pc - rc) - (pr - rr))).mean()
__main__.dpo_loss = right
out["dispatched"] = outcome(L.dpo_loss)
out["right"] = outcome(right)
out["package alias"] = rlhf_core.dpo_loss is L.dpo_loss

routes = {
    "attribute": lambda *a, **k: L.dpo_loss(*a, **k),
    "importlib": lambda *a, **k: getattr(importlib.import_module("rlhf" + "_core." + "lo" + "sses"), "dpo" + "_loss")(*a, **k),
    "the function itself": L.dpo_loss,
    "copied function object": types.FunctionType(L.dpo_loss.__code__, L.dpo_loss.__globals__, "dpo_loss", L.dpo_loss.__defaults__),
    "copy.copy": copy.copy(L.dpo_loss),
    "the loss before its mean": lambda *a, **k: L.dpo_losses(*a, **k).mean(),
    "the mistake helpers": lambda pc, pr, rc, rr, beta=0.1: -torch.nn.functional.logsigmoid(
        beta * importlib.import_module("rlhf_core.checks.dpo_loss")._margin(pc, pr, rc, rr)).mean(),
}
namespace = {}
exec(inspect.getsource(L), namespace)
routes["inspect.getsource and exec"] = namespace["dpo_loss"]
namespace = {}
exec(open(L.__file__).read(), namespace)
routes["the module file and exec"] = namespace["dpo_loss"]
for label, fn in routes.items():
    __main__.dpo_loss = fn
    out[label] = outcome(fn)
out["source"] = inspect.getsource(L.dpo_losses)
out["mistakes"] = len(EXERCISES["dpo_loss"].mistakes)
out["judging left"] = [n for n, e in EXERCISES.items() if e.mistakes or e.explain or e.key_hints]
V = importlib.import_module("rlhf_core.checks.variant_losses")
out["cDPO with ε ignored"] = outcome(lambda *a: V._cdpo_smoothing_ignored(*a, beta=0.1))
out["IPO's 'used DPO's loss'"] = outcome(lambda *a: V._ipo_dpo_loss(*a, beta=0.1))
try:
    check_dpo_loss(right)
    out["in-kernel check"] = "passed"
except CheckFailed as exc:
    out["in-kernel check"] = str(exc)
out["yours_or_reference"] = yours_or_reference("dpo_loss", right) is right
# other lessons' references work
ref, rewards = torch.log_softmax(torch.tensor([[0.1, 0.5, -0.3]]), -1), torch.tensor([[1.0, 0.0, 2.0]])
out["optimal_policy"] = rlhf_core.optimal_policy(ref, rewards, 0.5).tolist()
out["get_logps"] = rlhf_core.get_logps(torch.zeros(1, 3, 4), torch.tensor([[0, 1, 2]]), torch.tensor([[0, 1, 1]])).tolist()
print(json.dumps(out))
'''


def test_every_route_to_a_withheld_reference_raises_in_the_copy(copies, tmp_path):
    import torch

    import rlhf_core

    got = run_in_copy(copies["02_bradley_terry_and_dpo_loss"], ROUTES, tmp_path)
    assert got["file"].startswith(str(copies["02_bradley_terry_and_dpo_loss"]))
    assert got["before any dpo_loss"][0] == "WithheldReference" and "not defined yet" in got["before any dpo_loss"][1]
    assert got["dispatched"] == got["right"] and got["package alias"]
    for route in ("attribute", "importlib", "the function itself", "copied function object", "copy.copy",
                  "the loss before its mean", "the mistake helpers", "inspect.getsource and exec", "the module file and exec"):
        kind, message = got[route]
        assert kind == "WithheldReference", (route, got[route])
        assert "withheld while lesson 02 is graded" in message, (route, message)
    assert "logsigmoid" not in got["source"] and got["mistakes"] == 0
    assert got["judging left"] == [], got["judging left"]      # no exercise of any lesson keeps its known mistakes
    for route in ("cDPO with ε ignored", "IPO's 'used DPO's loss'"):
        kind, message = got[route]
        assert kind == "WithheldReference" and "part of the grader's checks" in message, (route, got[route])
    assert "not checked here" in got["in-kernel check"] and got["yours_or_reference"]
    ref, rewards = torch.log_softmax(torch.tensor([[0.1, 0.5, -0.3]]), -1), torch.tensor([[1.0, 0.0, 2.0]])
    assert torch.allclose(torch.tensor(got["optimal_policy"]), rlhf_core.optimal_policy(ref, rewards, 0.5))
    want = rlhf_core.get_logps(torch.zeros(1, 3, 4), torch.tensor([[0, 1, 2]]), torch.tensor([[0, 1, 1]]))
    assert torch.allclose(torch.tensor(got["get_logps"]), want)


LIBRARY_CODE = r'''
import importlib.util, json, sys, __main__
import torch
import rlhf_core.model as model
from rlhf_core import train
from rlhf_core.toy import run_toy_task

# the learner's parts: the real library's, loaded from its own file under another name
spec = importlib.util.spec_from_file_location("real_model", {real_model!r})
real = sys.modules["real_model"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(real)
calls = {{"rms_norm": 0}}
def rms_norm(x, weight, eps=1e-6):
    calls["rms_norm"] += 1
    return real.rms_norm(x, weight, eps)
__main__.rms_norm, __main__.swiglu, __main__.apply_rope = rms_norm, real.swiglu, real.apply_rope
torch.manual_seed(0)
config = model.ModelConfig(vocab_size=11, d_model=16, n_layers=1, n_heads=2, max_seq_len=8)
lm = model.TinyLM(config)
state = lm.state_dict()
ids = torch.tensor([[1, 2, 3, 4]])
ours = lm(ids).detach()
torch.manual_seed(0)
theirs = real.TinyLM(real.ModelConfig(vocab_size=11, d_model=16, n_layers=1, n_heads=2, max_seq_len=8))
theirs.load_state_dict(state)
print(json.dumps({{"same logits": torch.allclose(ours, theirs(ids), atol=1e-6), "rms_norm calls": calls["rms_norm"]}}))
'''


@pytest.mark.slow  # about 8 s: a Python per lesson copy; make test runs it
def test_library_code_runs_on_the_learners_function(copies, tmp_path):
    """Lesson 05: the model calls the learner's rms_norm; lesson 08: train's callers reach the learner's
    dpo_step, options it does not take left out; lesson 03: run_toy_task's default step is the learner's."""
    from rlhf_core import model

    got = run_in_copy(copies["05_tiny_transformer"], LIBRARY_CODE.format(real_model=model.__file__), tmp_path)
    assert got == {"same logits": True, "rms_norm calls": 3}

    got = run_in_copy(copies["08_full_dpo"], r'''
        import json, __main__
        from rlhf_core import train
        def dpo_step(policy, batch, logp_ref_chosen, logp_ref_rejected, optimizer, beta=0.1):
            return {"beta": beta, "policy": policy}
        __main__.dpo_step = dpo_step
        print(json.dumps(train.dpo_step("p", "b", 1, 2, "o", 0.3, loss_type="sigmoid", max_grad_norm=1.0, micro_batches=1)))
    ''', tmp_path)
    assert got == {"beta": 0.3, "policy": "p"}

    got = run_in_copy(copies["03_toy_policy"], r'''
        import json, __main__
        import torch
        from rlhf_core import dpo_loss
        from rlhf_core.toy import run_toy_task
        steps = []
        def toy_dpo_step(policy, ref, batch, optimizer, beta=0.1):
            prompts, chosen, rejected = batch
            pick = lambda t, i: t.gather(1, i[:, None]).squeeze(1)
            logp, logp_ref = policy.logprobs(prompts), ref.logprobs(prompts).detach()
            loss = dpo_loss(pick(logp, chosen), pick(logp, rejected), pick(logp_ref, chosen), pick(logp_ref, rejected), beta=beta)
            optimizer.zero_grad(); loss.backward(); optimizer.step()
            steps.append(loss.item())
            return loss.item()
        __main__.toy_dpo_step = toy_dpo_step
        result = run_toy_task(steps=5)     # its default step: toy.toy_dpo_step(policy, ref, batch, optimizer, beta, loss_fn)
        print(json.dumps({"steps": len(steps), "losses": result["losses"] == steps}))
    ''', tmp_path)
    assert got == {"steps": 5, "losses": True}


def _cell(*probes) -> GradeCell:
    return GradeCell("a_check", 3.0, list(probes))


def test_a_record_that_reached_a_withheld_reference_gets_its_own_verdict():
    error = {"type": "WithheldReference", "message": "rlhf_core.losses.dpo_losses is withheld while lesson 02 is graded: …",
             "where": "", "not_implemented": False}
    record = {"grade_id": "a_check", "tampering": [], "probes": [
        {"exercise": "dpo_loss", "seed": 0, "cases": {"a random batch of 8 pairs, β = 0.1": {"ok": False, "error": error}}}]}
    verdict = judge_cell(_cell(Probe("exercise", "dpo_loss", ("dpo_loss",))), [json.dumps(record)], {})
    assert not verdict.passed and verdict.score == 0
    assert verdict.message.startswith("✗ dpo_loss: expected your own implementation")
    assert "rlhf_core.losses.dpo_losses" in verdict.message and "no credit" in verdict.message

    crashed = {"grade_id": "a_check", "tampering": [], "probes": [{"crashed": "WithheldReference: rlhf_core.toy.toy_dpo_step is withheld"}]}
    verdict = judge_cell(_cell(Probe("sanity", "toy_training", ("toy_dpo_step",))), [json.dumps(crashed)], {})
    assert verdict.message.startswith("✗ toy_dpo_step: expected your own implementation") and "rlhf_core.toy.toy_dpo_step" in verdict.message

    other = {"grade_id": "a_check", "tampering": [], "probes": [{"crashed": "ValueError: something else"}]}
    verdict = judge_cell(_cell(Probe("sanity", "toy_training", ("toy_dpo_step",))), [json.dumps(other)], {})
    assert verdict.message == "✗ the check crashed: ValueError: something else"      # a generic crash stays one


def test_the_self_check_closes_the_routes_the_grader_closes(monkeypatch):
    """grader.selfcheck.verdict_table withholds what the copy withholds: a dpo_loss that calls one of lesson 10's
    known mistakes that *are* DPO's loss earns nothing there either, and everything is back after it. Built the old
    way (only the lesson's own exercises lose their judging), the same dpo_loss passes."""
    import torch.nn.functional as F

    from grader.selfcheck import verdict_table
    from rlhf_core.checks import EXERCISES
    from rlhf_core.checks import variant_losses as V

    lesson = "02_bradley_terry_and_dpo_loss"
    before = {name: (list(e.mistakes), e.explain, dict(e.key_hints), e.shape_hint) for name, e in EXERCISES.items()}

    def implicit_reward(logp_pol, logp_ref, beta=0.1):
        return beta * (logp_pol - logp_ref)

    def through(helper: str):
        def dpo_loss(logp_pol_chosen, logp_pol_rejected, logp_ref_chosen, logp_ref_rejected, beta=0.1):
            return getattr(V, helper)(logp_pol_chosen, logp_pol_rejected, logp_ref_chosen, logp_ref_rejected, beta=beta)
        return dpo_loss

    graded = {c.grade_id for c in LESSONS[lesson].spec if any(p.kind == "exercise" and p.name == "dpo_loss" for p in c.probes)}

    def dpo_verdict(namespace):
        return next(v for v in verdict_table(namespace, lesson=lesson, quiet=True) if v.grade_id in graded)

    for helper in ("_cdpo_smoothing_ignored", "_ipo_dpo_loss"):
        verdict = dpo_verdict({"dpo_loss": through(helper), "implicit_reward": implicit_reward})
        assert not verdict.passed and verdict.score == 0, (helper, verdict.message)
        assert verdict.message.startswith("✗ dpo_loss: expected your own implementation"), verdict.message
        assert f"rlhf_core.checks.variant_losses.{helper}" in verdict.message
    after = {name: (list(e.mistakes), e.explain, dict(e.key_hints), e.shape_hint) for name, e in EXERCISES.items()}
    assert after == before
    import torch

    x = torch.tensor([-1.0, -2.0])
    assert torch.allclose(V._ipo_dpo_loss(x, x + 1, x, x), -F.logsigmoid(torch.tensor(-0.1)))   # its code is back

    monkeypatch.setattr(withheld_plan, "unjudged", lambda plans, withheld: None)      # the old construction
    verdict = dpo_verdict({"dpo_loss": through("_cdpo_smoothing_ignored"), "implicit_reward": implicit_reward})
    assert verdict.passed, verdict.message
