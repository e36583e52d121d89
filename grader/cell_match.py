"""Which cell of a submission is which cell of the lesson's source notebook, and how that was found.

nbgrader knows a learner's answer by the ``grade_id`` in its cell's metadata. That metadata is lost when a
notebook is re-made in another editor or its cells re-created by copy-paste (nbgrader issues #424, #1398,
#1941); a correct answer would then be graded as the released stub. :func:`match_cells` finds the cells again,
trusting, in this order:

1. **metadata** — a cell whose nbgrader ``grade_id`` is one of the lesson's *is* that cell, whatever it holds (a
   ``grade_id`` that no cell of the lesson has counts as no metadata). When several carry one ``grade_id`` (a
   cell copied in Jupyter keeps its metadata), the first is that cell and the others are dropped, as before.
2. **cell id** — for a lesson cell that no metadata named: the submission's cell with the same cell id
   (nbformat 4.5 keeps ids through a save that drops metadata; a 4.4 notebook or Colab's has none).
3. **content** — for a lesson cell other than an exercise: every cell whose text, white space normalised, is the
   source's or the release's (a check cell without its hidden tests, a prose cell). For an *exercise* cell: the
   cell that defines the exercise's names at its top level (``def dpo_loss(`` … — the names the source's exercise
   cell defines that a check cell calls; helpers beside them are fine, a cell that defines only other functions is
   the learner's own). When several cells define them, the exercise cell is **the last of them before the
   exercise's check cell**: the definition a Run All had in effect when the learner's own check ran. When none
   comes before the check cell (or it is not found), the last one in the notebook, the one a Run All leaves
   defined — *unsure* when those cells differ, and said so. A cell that defines two exercises (both answers in
   one cell) is the first one's exercise cell; the second's place then runs nothing instead of its stub.

Only an exercise that no metadata found is looked for by id and content, so a notebook whose metadata is whole
is matched exactly as before. The cells left over are the learner's own: :mod:`grader.compose` keeps them, after
the lesson cell they followed. :meth:`Matching.note` says, for the result's message, which exercise cells were
found how; :meth:`Matching.explain` turns a check's "not implemented" into "the exercise cell could not be found"
where that is why.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field, replace

from .course import HIDDEN_BEGIN, HIDDEN_END, SOLUTION_BEGIN, SOLUTION_END

__all__ = ["Found", "Matching", "match_cells", "defined_names", "normalised", "NOT_FOUND_KIND"]

#: The ``kind`` of a failed check whose exercise cell could not be found (:data:`grader.judge.FAILURE_KINDS`).
NOT_FOUND_KIND = "exercise cell not found"

_HIDDEN_BLOCK = re.compile(rf"[ \t]*{re.escape(HIDDEN_BEGIN)}.*?{re.escape(HIDDEN_END)}[ \t]*\n?", re.S)
_SOLUTION_BLOCK = re.compile(rf"^([ \t]*){re.escape(SOLUTION_BEGIN)}.*?{re.escape(SOLUTION_END)}[ \t]*$", re.S | re.M)
_MAGIC_LINE = re.compile(r"^[ \t]*(%|!).*$", re.M)
_DEF_LINE = re.compile(r"^(?:async[ \t]+)?(?:def|class)[ \t]+([A-Za-z_]\w*)|^([A-Za-z_]\w*)[ \t]*(?::[^=\n]*)?=(?!=)", re.M)


def source_text(source) -> str:
    """A notebook field that may be a string, a list of strings (nbformat's multiline form) or missing."""
    if isinstance(source, list):
        return "".join(str(s) for s in source)
    return "" if source is None else str(source)


def normalised(text) -> str:
    """``text`` with every run of white space made one space, ends stripped: what "the same text" compares."""
    return " ".join(source_text(text).split())


def release_text(source: str) -> str:
    """A source cell as nbgrader's release leaves it: hidden tests removed, each answer made a stub."""
    text = _HIDDEN_BLOCK.sub("", source)
    return _SOLUTION_BLOCK.sub(lambda m: f"{m.group(1)}# YOUR CODE HERE\n{m.group(1)}raise NotImplementedError()", text)


def _grade_id(cell) -> str | None:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta.get("grade_id") if isinstance(meta, dict) else None


def _parse(code: str) -> ast.Module | None:
    """``code`` parsed, IPython's magics and shell escapes (``%…``, ``!…``) read as blank lines; None if it is not Python."""
    for text in (code, _MAGIC_LINE.sub("", code)):
        try:
            return ast.parse(text)
        except (SyntaxError, ValueError):
            continue
    return None


def defined_names(code) -> set[str]:
    """The names a cell binds at its top level — ``def``, ``class``, assignments — looking inside top-level
    ``if``/``try``/``with``/``for`` blocks but never inside a function or class. Code that is not Python (a cell
    magic) is read line by line: a ``def``/``class`` or an assignment that starts a line."""
    code = source_text(code)
    tree = _parse(code)
    if tree is None:
        return {a or b for a, b in _DEF_LINE.findall(code)}
    names: set[str] = set()

    def targets(node):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, (ast.Tuple, ast.List)):
            for element in node.elts:
                targets(element)
        elif isinstance(node, ast.Starred):
            targets(node.value)

    def visit(statements):
        for node in statements:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    targets(target)
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and node.value is not None:
                targets(node.target)
            elif isinstance(node, (ast.If, ast.For, ast.While, ast.With, ast.Try)):
                for block in ("body", "orelse", "finalbody"):
                    visit(getattr(node, block, []))
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)
    visit(tree.body)
    return names


@dataclass(frozen=True)
class Found:
    """How one exercise cell of the lesson was found in a submission.

    ``how``: ``"metadata"``, ``"cell id"``, ``"content"``; ``"shared"`` (its names are defined in the cell of the
    exercise ``shared_with``); ``"missing"`` (not found: its place runs the released stub). ``index``: the
    submission's cell (None when shared or missing). ``others``: how many more cells carried its metadata or,
    found by content, defined its names with other code (identical copies are not counted). ``unsure``: several
    different cells define its names and no check cell tells which one the learner's check ran on."""

    grade_id: str
    names: tuple[str, ...]
    how: str
    index: int | None = None
    others: int = 0
    unsure: bool = False
    shared_with: str | None = None


@dataclass
class Matching:
    """The submission's cells against the source's: ``source_of[i]`` is the index of the source cell that the
    submission's cell ``i`` is (a copy of), None for a cell of the learner's own; ``exercises`` how each
    exercise cell was found, by its ``grade_id``, in the source's order."""

    source_of: list[int | None]
    exercises: dict[str, Found] = field(default_factory=dict)

    def exercise_source(self, grade_id: str, submission_nb) -> str | None:
        """The code that stands in the exercise's place: the found cell's (a code cell's only), ``""`` when its
        names live in another exercise's cell, None when the stub should run."""
        found = self.exercises.get(grade_id)
        if found is None or found.how == "missing":
            return None
        if found.how == "shared":
            return f"# {', '.join(found.names)}: defined in the exercise cell of {found.shared_with} (one cell holds both answers)"
        cell = submission_nb.cells[found.index]
        return source_text(cell.get("source", "")) if cell.get("cell_type") == "code" else None

    def relevant(self, probed: set[str] | None) -> list[Found]:
        """The exercises whose names a graded check calls (``probed``; None: every exercise)."""
        return [f for f in self.exercises.values() if probed is None or set(f.names) & probed]

    def note(self, probed: set[str] | None = None) -> str:
        """What the result's message says about how the graded exercise cells were found ("" when each had its
        nbgrader metadata, as nbgrader expects)."""
        founds = self.relevant(probed)
        parts = [missing_sentence(f) for f in founds if f.how == "missing"]       # what the instructor must look at first
        parts += [unsure_sentence(f) for f in founds if f.unsure]
        for how in ("content", "cell id"):
            these = [f for f in founds if f.how == how and not f.unsure]
            if these:
                what = "cells" if len(these) > 1 else "cell"
                parts.append(f"{len(these)} exercise {what} matched by {how} ({', '.join(_names(f) for f in these)}): "
                             f"{'their' if len(these) > 1 else 'its'} nbgrader metadata was missing")
        doubled = [f for f in founds if f.how == "content" and f.others and not f.unsure]
        if doubled:
            parts.append(f"more than one cell defines {' and '.join(_names(f) for f in doubled)}, with different code: graded "
                         f"the last one before {'each' if len(doubled) > 1 else 'its'} check cell, the one a Run All checks")
        for f in founds:
            if f.how == "shared":
                parts.append(f"{_names(f)} was found in the exercise cell of {f.shared_with} (one cell defines both)")
        return "; ".join(parts)

    def explain(self, verdicts: list, spec) -> list:
        """``verdicts`` with each failed check of an exercise whose cell could not be found saying so (kind
        :data:`NOT_FOUND_KIND`) instead of "not implemented": its place ran the released stub."""
        missing = {name: f for f in self.exercises.values() if f.how == "missing" for name in f.names}
        if not missing:
            return verdicts
        cells = {c.grade_id: c for c in spec}
        out = []
        for verdict in verdicts:
            cell = cells.get(verdict.grade_id)
            hit = [missing[n] for p in (cell.probes if cell else []) for n in p.candidates if n in missing]
            if hit and not verdict.passed and verdict.kind in ("not implemented", "not defined"):
                verdict = replace(verdict, kind=NOT_FOUND_KIND,
                                  message=f"✗ {missing_sentence(hit[0])} (so the released stub ran in its place)")
            out.append(verdict)
        return out


def _names(found: Found) -> str:
    return " and ".join(found.names)


def missing_sentence(found: Found) -> str:
    """Why an exercise cell could not be found, in words the instructor can act on."""
    name = _names(found)
    return (f"the exercise cell of {name} could not be found: no cell has its nbgrader metadata or defines {name}; "
            f"the notebook may have been re-made in another editor")


def unsure_sentence(found: Found) -> str:
    """Why an exercise cell was matched without confidence."""
    name = _names(found)
    return (f"the exercise cell of {name} could not be found with confidence: cells with different code "
            f"define {name} and none comes before its check cell; graded the last one (the one a Run All leaves "
            f"defined), look at the notebook to confirm")


def _exercise_names(cell, probed: set[str]) -> tuple[str, ...]:
    """The names that make a cell this exercise's: those the source's exercise cell defines that a check calls,
    else the functions and classes it defines, else every name it binds."""
    code = source_text(cell.source)
    tree = _parse(code)
    defined = defined_names(code)
    functions = {n.name for n in (tree.body if tree else []) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    for names in (defined & probed, functions, defined):
        if names:
            return tuple(sorted(names))
    return ()


def _probed_names(source_nb) -> set[str]:
    from .spec import probes_in_source

    names = set()
    for cell in source_nb.cells:
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade"):
            try:
                names.update(c for p in probes_in_source(cell.source) for c in p.candidates)
            except SyntaxError:
                continue
    return names


def _check_cell_of(source_nb, index: int, names: tuple[str, ...]) -> int | None:
    """The source index of the exercise's check cell: the first check cell after it that names one of its names."""
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, names)) + r")\b") if names else None
    for k in range(index + 1, len(source_nb.cells)):
        cell = source_nb.cells[k]
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade") and pattern and pattern.search(cell.source):
            return k
    return None


def match_cells(source_nb, submission_nb) -> Matching:
    """Match ``submission_nb``'s cells to ``source_nb``'s (the lesson's nbgrader source notebook); see the module."""
    source, cells = source_nb.cells, submission_nb.cells
    exercises = [k for k, c in enumerate(source)
                 if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution") and _grade_id(c)]
    source_of: list[int | None] = [None] * len(cells)
    first: dict[int, int] = {}         # source index -> the submission cell that is it
    how: dict[int, str] = {}           # source index -> how that cell was found
    copies = _by_metadata(source, cells, source_of, first, how)
    _by_id(source, cells, source_of, first, how)
    _by_text(source, cells, source_of, first, how, set(exercises))
    probed = _probed_names(source_nb)
    result: dict[str, Found] = {}
    defines = [defined_names(c.get("source", "")) if c.get("cell_type") == "code" else set() for c in cells]
    for k in exercises:
        gid, names = _grade_id(source[k]), _exercise_names(source[k], probed)
        if k in first:
            result[gid] = Found(gid, names, how[k], first[k], copies.get(k, 0))
        else:
            result[gid] = _by_definition(source_nb, k, gid, names, cells, defines, source_of, first, result)
    return Matching(source_of, result)


def _by_metadata(source, cells, source_of, first, how) -> dict[int, int]:
    """Rule 1: each cell whose ``grade_id`` is the lesson's; returns how many more carried each one's."""
    index_of_gid: dict[str, int] = {}
    for k, cell in enumerate(source):
        if _grade_id(cell) is not None:
            index_of_gid.setdefault(_grade_id(cell), k)
    copies: dict[int, int] = {}
    for i, cell in enumerate(cells):
        k = index_of_gid.get(_grade_id(cell))
        if k is not None:
            source_of[i] = k
            if k in first:
                copies[k] = copies.get(k, 0) + 1
            else:
                first[k], how[k] = i, "metadata"
    return copies


def _by_id(source, cells, source_of, first, how) -> None:
    """Rule 2: a lesson cell no metadata named, by its cell id (the first cell with it: ids are meant to be unique)."""
    by_id: dict[str, int] = {}
    for i, cell in enumerate(cells):
        if source_of[i] is None and isinstance(cell.get("id"), str):
            by_id.setdefault(cell.get("id"), i)
    for k, cell in enumerate(source):
        cid = cell.get("id")
        if k not in first and isinstance(cid, str) and cid in by_id:
            i = by_id[cid]
            source_of[i], first[k], how[k] = k, i, "cell id"


def _by_text(source, cells, source_of, first, how, exercises: set[int]) -> None:
    """Rule 3, for the lesson cells other than exercises still unfound: every copy of their text (source's or release's)."""
    texts: dict[str, int] = {}
    for k, cell in enumerate(source):
        if k in first or k in exercises:
            continue
        for text in (cell.source, release_text(cell.source)):
            if normalised(text):
                texts.setdefault(f"{cell.cell_type}:{normalised(text)}", k)
    for i, cell in enumerate(cells):
        k = texts.get(f"{cell.get('cell_type')}:{normalised(cell.get('source', ''))}") if source_of[i] is None else None
        if k is not None:
            source_of[i] = k
            if k not in first:
                first[k], how[k] = i, "content"


def _by_definition(source_nb, k, gid, names, cells, defines, source_of, first, found: dict[str, Found]) -> Found:
    """Rule 3, for exercise ``k`` that neither metadata nor id found: the cell that defines its names (see the module)."""
    candidates = [i for i in range(len(cells)) if source_of[i] is None and names and set(names) & defines[i]]
    if not candidates:
        owner = next((f for f in found.values() if f.index is not None and set(names) & defines[f.index]), None)
        return Found(gid, names, "shared", shared_with=_names(owner)) if owner is not None else Found(gid, names, "missing")
    check = _check_cell_of(source_nb, k, names)
    check_at = first.get(check) if check is not None else None
    before = [i for i in candidates if check_at is not None and i < check_at]
    chosen = (before or candidates)[-1]
    code = normalised(cells[chosen].get("source", ""))
    others = sum(normalised(cells[i].get("source", "")) != code for i in candidates)   # identical copies: no doubt
    source_of[chosen] = k
    return Found(gid, names, "content", chosen, others, unsure=bool(others) and not before)
