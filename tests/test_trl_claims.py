"""Every TRL argument, loss type and class that the lessons and the library name, checked against the pinned TRL.

The claims are *read from the text*: the prose of ``solutions/NN_*.py`` and the docstrings of
``rlhf_core/hf.py`` and ``rlhf_core/trl_dpo.py`` (parsed from the files, so a test run on another copy of
the sources checks that copy). What is checked:

* every name the text attaches to TRL ("TRL's `x`", "TRL calls it `x`", the first column of lesson 11's
  table, the TRL column of ``trl_dpo``'s table) is a field of ``trl.DPOConfig``, a parameter of
  ``DPOTrainer`` (written ``DPOTrainer(x=...)``), a metric TRL logs or a key of its batch, as the text says;
* "TRL has no `x`" is checked the other way round;
* a default the text quotes ("TRL's default `bf16=True`", "`f_divergence_type` (default `"reverse_kl"`)") is
  ``DPOConfig``'s default;
* every loss type quoted next to TRL is one TRL's ``DPOTrainer`` computes, and what each of them does with
  ``label_smoothing`` is *measured*: TRL's own loss on a batch of six of the course's pairs, at two values of ε.
  A loss type the text says reads ε must change with it, one it says ignores ε must not; lesson 11's table
  must name exactly the loss types that read it;
* the RPO recipe the text gives for TRL (``loss_type=["sigmoid", "sft"]``, ``loss_weights=[1.0, α]``) is
  measured against the course's DPO loss and NLL term, and the claim that no TRL loss is conservative DPO
  pair by pair is measured against the course's ``conservative_dpo_loss``.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import inspect
import os
import re
import tempfile
from pathlib import Path

import pytest
import torch

pytest.importorskip("trl")
pytestmark = pytest.mark.slow  # builds a TRL trainer (seconds)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import trl  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "solutions").glob("[0-9][0-9]_*.py"))
LIBRARY = [ROOT / "rlhf_core" / "hf.py", ROOT / "rlhf_core" / "trl_dpo.py", ROOT / "rlhf_core" / "losses.py",
           ROOT / "rlhf_core" / "train.py"]
BETA = 0.1
EPS = (0.1, 0.3)  # two values of label_smoothing: a loss that reads ε changes between them

CODE = re.compile(r"``(.+?)``|`([^`\n]+)`")
QUOTED = re.compile(r'"(\w+)"')
IGNORES = re.compile(r"\bignor|no effect|does not read|not read\b", re.IGNORECASE)
HISTORY = re.compile(r"\bolder\b|\bearlier (?:versions?|releases?)\b|\bused to\b", re.IGNORECASE)
SMOOTHING = re.compile(r"label_smoothing|label smoothing|\bε\b")


# ---- the text ------------------------------------------------------------------------------------------

def lesson_prose(path: Path) -> str:
    """The markdown cells of a jupytext percent lesson, without the comment marks."""
    out, markdown = [], False
    for line in path.read_text().splitlines():
        if line.startswith("# %%"):
            markdown = "[markdown]" in line
            out.append("")
            continue
        if markdown:
            out.append(line[2:] if line.startswith("# ") else line.lstrip("#"))
    return "\n".join(out)


def docstrings(path: Path) -> str:
    """Every docstring of a module (its own, its classes' and functions'), parsed from the file."""
    tree = ast.parse(path.read_text())
    nodes = [tree, *(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef))]
    return "\n\n".join(doc for n in nodes if (doc := ast.get_docstring(n, clean=True)))


def units(text: str) -> list[str]:
    """Sentences of the prose, markdown table rows apart (each row is one unit); reStructuredText tables
    are left out (``trl_dpo``'s is read by :func:`trl_dpo_table`)."""
    out = []
    for block in re.split(r"\n\s*\n", text):
        lines = block.splitlines()
        rules = [i for i, line in enumerate(lines) if re.match(r"\s*=+\s+=+", line)]
        if rules:
            lines = lines[:rules[0]] + lines[rules[-1] + 1:]
        prose = []
        for line in lines:
            if line.lstrip().startswith("|"):
                out.append(line)
            else:
                prose.append(line.strip())
        paragraph = " ".join(prose)
        out += [s for s in re.split(r"(?<=[.!?])\s+(?=[A-Z*(`-])", paragraph) if s]
    return out


def code_spans(unit: str) -> list[str]:
    return [a or b for a, b in CODE.findall(unit)]


def all_sources() -> list[tuple[str, str]]:
    return [(p.name, lesson_prose(p)) for p in LESSONS] + [(p.name, docstrings(p)) for p in LIBRARY]


def trl_units() -> list[tuple[str, str]]:
    """Every unit that speaks of TRL: sentences and table rows, and the TRL and note columns of
    ``trl_dpo``'s table (its first column is the course's)."""
    prose = [(name, u) for name, text in all_sources() for u in units(text) if "TRL" in u or "DPOConfig" in u]
    table = [(LIBRARY[1].name, f"TRL: {trl_col} | {note}") for _, trl_col, note in trl_dpo_table()]
    lesson_11 = [("11's table", f"| TRL: {first} | {second} |") for first, second in lesson_11_table()]
    return prose + table + lesson_11


def lesson_11_table() -> list[list[str]]:
    """Lesson 11's table of TRL arguments: rows of [TRL argument, what it is in the course]."""
    text = lesson_prose(next(p for p in LESSONS if p.name.startswith("11_")))
    rows = [line for line in text.splitlines() if line.startswith("|")]
    header = next(i for i, r in enumerate(rows) if "trl.DPOConfig" in r)
    body = []
    for row in rows[header + 2:]:
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        if len(cells) != 2:
            break
        body.append(cells)
    assert body, "lesson 11 has no table of TRL arguments"
    return body


def trl_dpo_table() -> list[tuple[str, str, str]]:
    """``rlhf_core.trl_dpo``'s table, as (course, TRL, note) with continuation lines joined."""
    doc = ast.get_docstring(ast.parse(LIBRARY[1].read_text()))
    lines = doc.splitlines()
    rules = [i for i, line in enumerate(lines) if re.match(r"=+\s+=+\s+=+", line)]
    assert len(rules) >= 3, "trl_dpo's docstring lost its table"
    spans = [m.span() for m in re.finditer(r"=+", lines[rules[0]])]
    rows: list[list[str]] = []
    for line in lines[rules[1] + 1:rules[2]]:
        cells = [line[a:b if i < len(spans) - 1 else None].strip() for i, (a, b) in enumerate(spans)]
        if cells[0] or not rows:
            rows.append(cells)
        else:
            rows[-1] = [f"{old} {new}".strip() for old, new in zip(rows[-1], cells)]
    return [tuple(r) for r in rows]


# ---- the pinned TRL ------------------------------------------------------------------------------------

FIELDS = {f.name: f for f in dataclasses.fields(trl.DPOConfig)}
TRAINER_PARAMS = set(inspect.signature(trl.DPOTrainer.__init__).parameters) - {"self"}


def trl_loss_types() -> list[str]:
    """The loss types TRL's own ``DPOConfig`` documents (its ``loss_type`` help)."""
    return QUOTED.findall(FIELDS["loss_type"].metadata["help"].replace("'", '"'))


def trl_f_divergences() -> list[str]:
    return re.findall(r"`(\w+)`", FIELDS["f_divergence_type"].metadata["help"].split("Only")[0])


def default_config():
    """``DPOConfig()``'s values after its own ``__post_init__`` (built before any trainer: a new
    ``TrainingArguments`` resets accelerate's state under a live trainer)."""
    from rlhf_core.hf import quiet_deprecations

    with tempfile.TemporaryDirectory() as tmp, quiet_deprecations():
        return trl.DPOConfig(output_dir=tmp, use_cpu=True, report_to=[])


@pytest.fixture(scope="module")
def measured():
    """TRL's loss on one batch of six of the course's pairs, for every loss type and two values of ε.

    One ``DPOTrainer`` is built (as ``rlhf_core.trl_dpo.loss_on_batch`` builds it); its loss settings are
    then set per measurement, as its ``__init__`` sets them from ``DPOConfig`` (a test below checks that a
    trainer built from the config gives the same number)."""
    from datasets import Dataset

    from rlhf_core import hf, task
    from rlhf_core.checkpoint import load_sft_model
    from rlhf_core.data import collate_pairs, pairs_by_reward
    from rlhf_core.logps import get_logps
    from rlhf_core.train import make_reference
    from rlhf_core.trl_dpo import _dataset_bars, _trainer

    defaults = default_config()
    sft, tokenizer, _ = load_sft_model()
    sft.eval()
    pairs = list(pairs_by_reward(sft, tokenizer, list(task.TRAIN_PROMPTS[:6]), n_samples=4, seed=1))
    policy = copy.deepcopy(sft)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(0.02 * torch.randn(p.shape, generator=g))
    reference = make_reference(sft)
    scratch = tempfile.TemporaryDirectory(prefix="trl-claims-")

    def build(**config):
        args = hf.trl_config(scratch.name, beta=BETA, per_device_train_batch_size=len(pairs), seed=0, **config)
        with _dataset_bars(False):
            trainer = _trainer(policy, reference, tokenizer, Dataset.from_list(hf.trl_rows(pairs)), args)
        trainer.model.train()
        return trainer

    trainer = build()
    batch = next(iter(trainer.get_train_dataloader()))

    def loss(loss_type, eps=0.0, weights=None, f_divergence="reverse_kl", on=None):
        t = on or trainer
        if on is None:
            t.loss_types, t.label_smoothing, t.f_divergence_type = list(loss_type), eps, f_divergence
            t.loss_weights = list(weights) if weights is not None else [1.0] * len(loss_type)
        with torch.no_grad(), hf.quiet_deprecations():
            return float(t.compute_loss(t.model, batch).item())

    course = collate_pairs(pairs, tokenizer)
    with torch.no_grad():
        logps = [get_logps(m(course[f"{s}_input_ids"], course[f"{s}_attention_mask"]), course[f"{s}_input_ids"],
                           course[f"{s}_response_mask"]) for m in (policy, reference) for s in ("chosen", "rejected")]
    chosen_tokens = course["chosen_response_mask"][:, 1:].sum(-1).to(logps[0].dtype)  # (B,) as get_logps counts

    reads_eps, accepted = set(), set()
    for lt in trl_loss_types():
        values = [loss([lt], eps) for eps in EPS]
        assert all(v == v and abs(v) != float("inf") for v in values), (lt, values)
        accepted.add(lt)
        if abs(values[0] - values[1]) > 1e-6:
            reads_eps.add(lt)
    yield dict(loss=loss, build=build, batch=batch, logps=logps, chosen_tokens=chosen_tokens, course=course,
               reads_eps=reads_eps, accepted=accepted, metrics=set(trainer._metrics["train"]),
               default=lambda name: getattr(defaults, name))
    scratch.cleanup()


def accepts(measured, loss_type: str) -> bool:
    if loss_type in measured["accepted"]:
        return True
    try:
        measured["loss"]([loss_type], 0.1)
    except ValueError:
        return False
    return True


# ---- the names -------------------------------------------------------------------------------------------

def resolve(token: str, cell: str = "", known: frozenset = frozenset()) -> str | None:
    """Why ``token`` is a TRL name, or None. ``cell`` is the text around it (table cells say "(logged)");
    ``known``: the metrics TRL logged and the columns of the preference data it was built on."""
    token = token.strip()
    if re.fullmatch(r'"\w+"', token):
        return "a loss type (measured below)"
    if m := re.fullmatch(r"(?:trl\.)?DPOTrainer\((\w+)=.*\)", token):
        return "a DPOTrainer parameter" if m.group(1) in TRAINER_PARAMS else None
    name = re.split(r"\s*=", token, maxsplit=1)[0].strip()
    if name.startswith("trl."):
        return "a class of trl" if hasattr(trl, name[4:]) else None
    if "." in name:
        owner, attr = name.split(".", 1)
        return "an attribute of a trl class" if hasattr(getattr(trl, owner, None), attr) else None
    if name in FIELDS:
        return "a DPOConfig field"
    if hasattr(trl, name) and inspect.isclass(getattr(trl, name)):
        return "a class of trl"
    if "(logged)" in cell and "/" in name:
        return "a logged metric"  # checked against what TRL logs in test_logged_metrics_and_batch_keys
    if "(in the batch)" in cell:
        return "a key of TRL's batch"
    if name in known:
        return "a metric TRL logs, or a column of its preference data"
    return None


def known_names(measured) -> frozenset:
    from rlhf_core import hf

    columns = hf.trl_rows([{"prompt": "p", "chosen": "c", "rejected": "r"}])[0]  # the columns the trainer was built on
    return frozenset(measured["metrics"]) | frozenset(columns)


def without_defaults(cell: str) -> str:
    return re.sub(r"\(default [^)]*\)", "", cell)


TRL_NAMED = re.compile(r"TRL(?: 1\.16)?(?:'s)?(?: default| own)? (?:calls it |names it )?(?:``|`)([^`]+)(?:``|`)")
TRL_HAS_NO = re.compile(r"TRL(?: 1\.16)? has no (?:``|`)([^`]+)(?:``|`)")


def test_every_name_the_text_attaches_to_trl_exists_in_the_pinned_trl(measured):
    known = known_names(measured)
    named = [(src, m.group(1), u) for src, u in trl_units() if not HISTORY.search(u) for m in TRL_NAMED.finditer(u)]
    assert named, "no 'TRL's `x`' in the text: the extraction broke"
    missing = [f"{src}: `{tok}` in: {u}" for src, tok, u in named if resolve(tok, "", known) is None]
    assert not missing, f"TRL {trl.__version__} has no such argument or class:\n" + "\n".join(missing)


def test_what_the_text_says_trl_lacks_it_lacks():
    said = [(src, m.group(1)) for src, u in trl_units() for m in TRL_HAS_NO.finditer(u)]
    wrong = [f"{src}: `{tok}`" for src, tok in said if resolve(tok) is not None]
    assert not wrong, f"the text says TRL has no such name, but TRL {trl.__version__} has it: {wrong}"


def test_lesson_11s_table_names_only_trl_arguments():
    bad = []
    for first, _ in lesson_11_table():
        for token in code_spans(without_defaults(first)):
            if resolve(token, first) is None:
                bad.append(f"`{token}` (row {first!r})")
    assert not bad, f"lesson 11's table names what TRL {trl.__version__} does not have: {bad}"


def test_trl_dpo_tables_trl_column_names_only_trl_arguments():
    bad = []
    for course_col, trl_col, _note in trl_dpo_table():
        tokens = code_spans(trl_col)
        if trl_col == "the same names":
            tokens = code_spans(course_col)
        for token in tokens:
            if resolve(token) is None:
                bad.append(f"``{token}`` (row {course_col!r})")
    assert not bad, f"rlhf_core.trl_dpo's table names what TRL {trl.__version__} does not have: {bad}"


DEFAULT_QUOTED = (re.compile(r"(?:``|`)(\w+)(?:``|`) \(default (?:``|`)([^`]+)(?:``|`)\)"),
                  re.compile(r"default (?:``|`)(\w+)=([^`]+)(?:``|`)"))


def test_every_default_the_text_quotes_is_trls_default(measured):
    default = measured["default"]
    quoted = [(src, *m.groups()) for src, u in trl_units() for pattern in DEFAULT_QUOTED for m in pattern.finditer(u)]
    assert quoted, "no TRL default quoted in the text: the extraction broke"
    wrong = [f"{src}: {name} = {value}, TRL's default is {default(name)!r}"
             for src, name, value in quoted if name in FIELDS and str(default(name)) != value.strip('"')]
    assert not wrong, "\n".join(wrong)


def test_logged_metrics_and_batch_keys(measured):
    for first, _ in lesson_11_table():
        for token in code_spans(first):
            if "(logged)" in first:
                assert token in measured["metrics"], f"TRL does not log {token!r}; it logs {sorted(measured['metrics'])}"
            elif "(in the batch)" in first:
                assert token in measured["batch"], f"TRL's batch has no {token!r}: {sorted(measured['batch'])}"


# ---- loss types and label smoothing ----------------------------------------------------------------------

def quoted_values(unit: str) -> list[str]:
    """Loss types (and f-divergences) quoted in code spans: `"x"` alone, or in `loss_type=...`."""
    return [q for span in code_spans(unit) if re.fullmatch(r'"\w+"', span) or span.startswith("loss_type")
            for q in QUOTED.findall(span)]


def test_every_loss_type_named_next_to_trl_is_one_trl_computes(measured):
    f_divergences = set(trl_f_divergences())
    assert "reverse_kl" in f_divergences
    named = [(src, q, u) for src, u in trl_units() if not HISTORY.search(u) for q in quoted_values(u)]
    assert any(q == "sigmoid" for _, q, _ in named), "no TRL loss type found in the text: the extraction broke"
    wrong = [f"{src}: {q!r} in: {u}" for src, q, u in named if q not in f_divergences and not accepts(measured, q)]
    assert not wrong, f"TRL {trl.__version__}'s DPOTrainer computes no such loss:\n" + "\n".join(wrong)


def smoothing_claims() -> list[tuple[str, str, bool, str]]:
    """(source, loss type, the text says it reads ε, the clause) for every loss type quoted where the text
    speaks of TRL and label smoothing. A clause that says "ignores" claims the opposite; one about older
    versions claims nothing about the pinned one."""
    claims = []
    for src, u in trl_units():
        if not SMOOTHING.search(u):
            continue
        for clause in re.split(r"[;()]|, and | but |, which ", u):
            if HISTORY.search(clause):
                continue
            for q in quoted_values(clause):
                if q in trl_f_divergences():
                    continue
                claims.append((src, q, not IGNORES.search(clause), clause.strip()))
    return claims


def test_what_the_text_says_a_trl_loss_does_with_label_smoothing_is_measured(measured):
    claims = smoothing_claims()
    assert claims, "no claim about TRL's label_smoothing found: the extraction broke"
    wrong = []
    for src, loss_type, reads, clause in claims:
        if (loss_type in measured["reads_eps"]) != reads:
            values = [measured["loss"]([loss_type], eps) for eps in EPS]
            wrong.append(f"{src}: the text says {loss_type!r} {'reads' if reads else 'ignores'} label_smoothing "
                         f"({clause!r}); measured: loss {values[0]:.6f} at ε {EPS[0]}, {values[1]:.6f} at ε {EPS[1]}")
    assert not wrong, "\n".join(wrong)


def test_lesson_11s_table_names_every_loss_that_reads_label_smoothing(measured):
    row = next((second for first, second in lesson_11_table() if code_spans(first) == ["label_smoothing"]), None)
    assert row is not None, "lesson 11's table has no `label_smoothing` row"
    said = {q for clause in re.split(r"[;()]", row) if not IGNORES.search(clause) and not HISTORY.search(clause)
            for q in quoted_values(clause)}
    assert said == measured["reads_eps"], f"the row names {sorted(said)}; the losses that read ε: {sorted(measured['reads_eps'])}"
    assert "sigmoid" not in measured["reads_eps"]


def test_no_trl_loss_is_conservative_dpo_pair_by_pair(measured):
    """Lessons 09 and 11, losses.py: TRL 1.16 has no conservative DPO (older TRL computed it in "sigmoid")."""
    from rlhf_core.losses import conservative_dpo_loss

    eps = EPS[1]
    cdpo = conservative_dpo_loss(*measured["logps"], beta=BETA, label_smoothing=eps).item()
    close = [lt for lt in measured["accepted"] if abs(measured["loss"]([lt], eps) - cdpo) <= 1e-6 * max(1, abs(cdpo))]
    assert not close, f"TRL's {close} equals conservative DPO at ε {eps} on this batch"
    # "aot" applies cDPO's smoothing to *sorted* margins: the same formula, not paired
    pol_c, pol_r, ref_c, ref_r = measured["logps"]
    h = BETA * ((pol_c - pol_r).sort().values - (ref_c - ref_r).sort().values)
    aot = (-(1 - eps) * torch.nn.functional.logsigmoid(h) - eps * torch.nn.functional.logsigmoid(-h)).mean().item()
    assert measured["loss"](["aot"], eps) == pytest.approx(aot, rel=1e-5)


def test_robust_is_robust_dpo_and_sigmoid_is_plain_dpo(measured):
    from rlhf_core.losses import dpo_logits, dpo_loss

    eps = EPS[1]
    h = dpo_logits(*measured["logps"], beta=BETA)
    F = torch.nn.functional
    robust = ((-(1 - eps) * F.logsigmoid(h) + eps * F.logsigmoid(-h)) / (1 - 2 * eps)).mean().item()
    assert measured["loss"](["robust"], eps) == pytest.approx(robust, rel=1e-5)
    assert measured["loss"](["sigmoid"], eps) == pytest.approx(dpo_loss(*measured["logps"], beta=BETA).item(), rel=1e-5)


# ---- RPO and f-divergences -------------------------------------------------------------------------------

RPO_RECIPE = re.compile(r'loss_type=\["sigmoid", "sft"\]`?,?\s*(?:with\s*)?`loss_weights=\[1\.0, α\]')


def test_rpo_in_trl_is_sigmoid_plus_sft_weighted_and_averages_over_the_batchs_tokens(measured):
    """Lessons 08 and 11: TRL 1.16 has no ``rpo_alpha``; RPO there is ``loss_type=["sigmoid", "sft"]`` with
    ``loss_weights=[1.0, α]``, whose NLL term averages over all chosen tokens of the batch (the course's
    ``chosen_nll`` averages per response, then over the batch)."""
    from rlhf_core.losses import dpo_loss
    from rlhf_core.train import chosen_nll

    text = "\n".join(t for _, t in all_sources())
    assert "rpo_alpha" not in FIELDS
    assert len(RPO_RECIPE.findall(text.replace("``", "`"))) >= 2, "lessons 08 and 11 should give TRL's RPO recipe"
    alpha = 0.7
    trl_rpo = measured["loss"](["sigmoid", "sft"], weights=[1.0, alpha])
    logps, n = measured["logps"], measured["chosen_tokens"]
    dpo = dpo_loss(*logps, beta=BETA).item()
    per_token_of_batch = (-logps[0].sum() / n.sum()).item()
    assert trl_rpo == pytest.approx(dpo + alpha * per_token_of_batch, rel=1e-5)
    per_response = chosen_nll(logps[0], measured["course"]).item()
    assert abs(trl_rpo - (dpo + alpha * per_response)) > 1e-4, "the two averages coincide on this batch"


def test_f_divergence_type_values_are_trls_and_change_the_loss(measured):
    text = "\n".join(t for _, t in all_sources())
    said = set(re.findall(r'`"(\w+(?:_kl|_divergence))"`', text))
    assert said, "no f_divergence_type value named: the extraction broke"
    assert said <= set(trl_f_divergences()), said - set(trl_f_divergences())
    assert measured["default"]("f_divergence_type") == "reverse_kl"
    base = measured["loss"](["sigmoid"])
    for value in said - {"reverse_kl"}:
        assert abs(measured["loss"](["sigmoid"], f_divergence=value) - base) > 1e-6, value


def test_setting_the_trainer_is_what_the_config_does(measured):
    """The measurements set the built trainer's loss settings; a trainer built from ``DPOConfig`` agrees."""
    built = measured["build"](loss_type=["robust"], label_smoothing=EPS[1])
    assert measured["loss"](None, on=built) == pytest.approx(measured["loss"](["robust"], EPS[1]), rel=1e-6)
    built = measured["build"](loss_type=["sigmoid"], label_smoothing=EPS[1])
    assert measured["loss"](None, on=built) == pytest.approx(measured["loss"](["sigmoid"], 0.0), rel=1e-6)


def test_the_course_config_with_rpo_alpha_is_refused_not_dropped_on_the_way_to_trl(tmp_path):
    """TRL 1.16 has no ``rpo_alpha``: a course config that asks for RPO must not silently train plain DPO in TRL."""
    from rlhf_core.train import DPOConfig
    from rlhf_core.trl_dpo import trl_arguments

    with pytest.raises(ValueError, match=r"TRL 1\.16 has no rpo_alpha.*loss_type=\['sigmoid', 'sft'\].*loss_weights"):
        trl_arguments(DPOConfig(rpo_alpha=0.5), tmp_path)


# ---- lesson 11, section 6: f-DPO's formulas, TRL's defaults at scale, the reference under LoRA (issue 26) ----

F_PRIME = {  # f'(u) of lesson 11's f-DPO table, as functions of the log-ratio log u (α = TRL's default 0.5)
    "reverse_kl": lambda r: r,
    "forward_kl": lambda r: 1 - torch.exp(-r),
    "js_divergence": lambda r: torch.log(torch.tensor(2.0)) + torch.nn.functional.logsigmoid(r),
    "alpha_divergence": lambda r: (torch.exp(-0.5 * r) - 1) / -0.5,
}


def test_lesson_11s_f_dpo_formulas_are_trls_loss(measured):
    """Lesson 11's f-DPO table: TRL's ``"sigmoid"`` loss under each ``f_divergence_type`` is
    −log σ(β[f'(u_w) − f'(u_l)]) with the table's f', at TRL's default ``f_alpha_divergence_coef``."""
    assert measured["default"]("f_alpha_divergence_coef") == 0.5
    assert set(F_PRIME) == set(trl_f_divergences())
    pol_c, pol_r, ref_c, ref_r = measured["logps"]
    for name, fp in F_PRIME.items():
        ours = -torch.nn.functional.logsigmoid(BETA * (fp(pol_c - ref_c) - fp(pol_r - ref_r))).mean().item()
        assert measured["loss"](["sigmoid"], f_divergence=name) == pytest.approx(ours, rel=1e-5), name


def recipe_column(header: str) -> dict[str, str]:
    """Lesson 11's at-scale table: {row label: the cell under ``header``}."""
    text = lesson_prose(next(p for p in LESSONS if p.name.startswith("11_")))
    rows = [line for line in text.splitlines() if line.startswith("|")]
    at = next(i for i, r in enumerate(rows) if "the paper (Appendix B)" in r and header in r)
    cells = lambda r: [c.strip() for c in r.strip().strip("|").split("|")]
    col = cells(rows[at]).index(header)
    out = {}
    for r in rows[at + 2:]:
        c = cells(r)
        if len(c) != len(cells(rows[at])):
            break
        out[c[0]] = c[col]
    return out


def test_lesson_11s_at_scale_table_quotes_trls_defaults(measured):
    default = measured["default"]
    col = recipe_column("TRL 1.16's defaults")
    assert col["β"] == "0.1" and default("beta") == 0.1
    assert col["peak learning rate"] == "$10^{-6}$, AdamW" and default("learning_rate") == 1e-6
    assert "adamw" in str(default("optim")).lower()
    assert col["schedule"] == "linear decay, no warm-up"
    assert str(default("lr_scheduler_type")).lower().endswith("linear") and default("warmup_steps") == 0
    assert col["epochs"] == "3" and default("num_train_epochs") == 3.0


def test_the_moving_reference_of_lesson_11s_table_is_trls_tr_dpo(measured):
    """Lesson 11's row: ``sync_ref_model`` is off by default and mixes π_ref ← α·π_θ + (1 − α)·π_ref."""
    assert default_config().sync_ref_model is False
    assert "π_ref = α * π_θ + (1 - α) * π_ref_prev" in FIELDS["ref_model_mixup_alpha"].metadata["help"]


def test_with_lora_and_no_ref_model_trl_disables_the_adapter_or_copies_a_trained_one():
    """Lesson 11: with ``peft_config`` and ``ref_model=None`` TRL 1.16 keeps no reference model and computes the
    reference's log-probs with the adapter disabled; a model that already carries an adapter gets a frozen copy
    of it named "ref", used as the reference. Read in the pinned TRL's source (``peft`` is not installed here)."""
    from trl.trainer import dpo_trainer, utils

    assert {"peft_config", "ref_model"} <= TRAINER_PARAMS
    assert inspect.signature(trl.DPOTrainer.__init__).parameters["ref_model"].default is None
    source = inspect.getsource(dpo_trainer.DPOTrainer)
    flat = " ".join(source.split())
    assert "if ref_model is None: if is_peft_model(self.model) or" in flat and "self.ref_model = None" in flat
    assert "elif is_peft_model(model) and ref_model is None:" in flat
    assert 'model.add_adapter("ref", default_config)' in flat
    assert 'if self.ref_model is None and is_peft_model(self.model):' in flat
    assert 'adapter_name="ref" if "ref" in unwrapped_model.peft_config else None' in flat
    use_adapter = " ".join(inspect.getsource(utils.use_adapter).split())
    assert "if adapter_name is None: with model.disable_adapter(): yield" in use_adapter
