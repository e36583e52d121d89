"""What each check cell of a source notebook grades, read from its code.

A check cell calls the library's checks on the learner's functions, for example::

    check_dpo_loss(dpo_loss)                                   # an exercise check, seed 0
    check_dpo_loss(dpo_loss, seed=101, quiet=True)             # a hidden test, another seed
    drill.check("dpo_loss", check_dpo_loss, dpo_loss)          # the drill's timed wrapper
    sanity_loss_at_init(dpo_loss)                              # one of the six sanity checks
    check_toy_training(toy_dpo_step)                           # sanity checks 3, 2 and 5 via a step

:func:`grading_spec` turns each such call into a :class:`Probe` — which check, on which global name —
so the grader can call the same checks itself, in two halves (the candidate's outputs recorded in the
submission's kernel, the verdict computed outside it), instead of trusting the cell's own result.
A call inside a helper function defined in the cell (lesson 10's ``six_sanity_checks``) is found too;
its parameters name the globals it is called with.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

import nbformat

from rlhf_core.checks import EXERCISES, SANITY_PROBES

__all__ = ["Probe", "GradeCell", "grading_spec", "probes_in_source"]


@dataclass(frozen=True)
class Probe:
    """One check to run: ``kind`` "exercise" (a ``check_<name>``) or "sanity" (a sanity check),
    ``name`` the exercise or sanity-probe name, ``candidates`` the global names it is called on,
    ``seed`` the seed of an exercise check (the grader replaces non-zero seeds with secret ones)."""

    kind: str
    name: str
    candidates: tuple[str, ...]
    seed: int = 0


@dataclass
class GradeCell:
    """A check cell: its grade id, its points and what it checks. ``variant``: the drill variant it belongs to
    alone (lesson 10: another variant's exercise, or a DPO-only check), None for a cell every student has."""

    grade_id: str
    points: float
    probes: list[Probe] = field(default_factory=list)
    variant: str | None = None


def _name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _seed(call: ast.Call) -> int:
    for kw in call.keywords:
        if kw.arg == "seed" and isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, int):
            return kw.value.value
    if len(call.args) >= 2 and isinstance(call.args[1], ast.Constant) and isinstance(call.args[1].value, int):
        return call.args[1].value
    return 0


def _probe_for(func: str, args: list[ast.AST], call: ast.Call) -> Probe | None:
    names = tuple(a.id for a in args if isinstance(a, ast.Name))
    if func.startswith("check_") and func[len("check_"):] in EXERCISES and names:
        return Probe("exercise", func[len("check_"):], names[:1], _seed(call))
    if func in SANITY_PROBES and names:
        return Probe("sanity", SANITY_PROBES[func], names[:1])
    return None


def _calls(statements: list[ast.stmt]):
    """Every call in ``statements``, in source order, not looking inside function definitions."""
    stack = list(reversed(statements))
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(node, ast.Call):
            yield node
        stack.extend(reversed(list(ast.iter_child_nodes(node))))


def probes_in_source(source: str) -> list[Probe]:
    """Every check call in a cell's code, in order, without duplicates."""
    tree = ast.parse(source)
    helpers = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    found: list[Probe] = []

    def visit(statements: list[ast.stmt], rename: dict[str, str]) -> None:
        for call in _calls(statements):
            func = _name(call.func)
            args = [ast.Name(rename.get(a.id, a.id)) if isinstance(a, ast.Name) else a for a in call.args]
            if func == "check" and len(args) >= 3 and isinstance(call.args[0], ast.Constant):
                func, args = _name(call.args[1]), args[2:]      # drill.check("label", check_fn, *candidates)
            if func in helpers:                                 # a helper of the cell: its body, with our names
                params = [p.arg for p in helpers[func].args.args]
                visit(helpers[func].body, {p: a.id for p, a in zip(params, args) if isinstance(a, ast.Name)})
            elif func:
                probe = _probe_for(func, args, call)
                if probe is not None and probe not in found:
                    found.append(probe)

    visit(tree.body, {})
    return found


def drill_variant_of(source: str) -> str | None:
    """The drill variant a check cell belongs to alone, read from its ``drill.check("label", …)``: the variant
    whose exercise or own check it is (:func:`rlhf_core.course.variants.owner_of_check`), else None (the same rule
    as :meth:`rlhf_core.course.drill.Drill.applies`)."""
    from rlhf_core.course.variants import owner_of_check

    tree = ast.parse(source)
    for call in _calls(tree.body):
        if _name(call.func) == "check" and isinstance(call.func, ast.Attribute) and call.args \
                and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str):
            return owner_of_check(call.args[0].value)
    return None


def grading_spec(source_notebook) -> list[GradeCell]:
    """The check cells of a source notebook (a path or a NotebookNode), in order."""
    nb = source_notebook if isinstance(source_notebook, nbformat.NotebookNode) else nbformat.read(source_notebook, as_version=4)
    cells = []
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("grade"):
            probes = probes_in_source(cell.source)
            if not probes:
                raise ValueError(f"check cell {meta.get('grade_id')!r} calls no check the grader knows")
            cells.append(GradeCell(meta["grade_id"], float(meta.get("points", 0)), probes, drill_variant_of(cell.source)))
    return cells
