"""A static scan of a learner's code for what the grader's kernel reports as tampering, for ``grader check``.

The kernel's watch (:mod:`grader.kernel_probe`) reports what the probe cells run through that was *replaced or
removed*: an attribute of ``builtins`` (but ``input``/``raw_input``, which ipykernel swaps itself, and the
``_``-names), of ``json``, or of a module of ``rlhf_core.checks`` (an exercise's cases included); IPython event
callbacks that were there before (not one a learner adds); and a hook on the display publisher that carries the
records. :func:`tampering_in` finds the same in a cell's code before the learner hands it in, so a learner hears
it from ``python -m grader check`` (:func:`grader.selfcheck.hand_in_warnings`) rather than from a 0.

It is conservative, never a false alarm on an honest habit: it reads only code whose meaning is plain — a name
bound by an import of the notebook, a literal attribute or key — so it misses what is computed at run time (the
kernel's watch still sees that). A patch put back in the same cell (``_print = builtins.print`` … ``builtins.print
= _print``), a ``mock.patch`` used as a context manager (over before the probe cell runs), a function's own
parameter that happens to be spelt ``json``, a global that shadows a builtin, a rebinding of a name imported from
the checks, a stream replaced (``sys.stdout``, not watched) and a callback of one's own are not reported.
"""

from __future__ import annotations

import ast
import re

from .wording import clip

__all__ = ["tampering_in", "notebook_names"]

_CHECKS = "rlhf_core.checks"
FIX_CHECKS = ("changes the course's checks: the grader reads that as tampering and scores the checks after it 0 — "
              "remove it (to try a check, call it)")
FIX_BUILTINS = ("replaces a builtin: the grader reads that as tampering and scores the checks after it 0 — remove it "
                "(a global of your own with that name is fine)")
FIX_JSON = "replaces part of the json module the grader's records go through: read as tampering — remove it"
FIX_EVENTS = ("removes IPython event callbacks: the grader reads that as tampering — remove it (callbacks of your "
              "own, added with events.register, are fine)")
FIX_DISPLAY = ("hooks or replaces the kernel's display publisher, which carries the grader's records: read as "
               "tampering — remove it")
_MUTATORS = {"update", "pop", "popitem", "clear", "setdefault", "append", "extend", "insert", "remove", "__setitem__",
             "__delitem__", "__setattr__", "__delattr__"}
_EXEMPT_BUILTINS = {"input", "raw_input"}     # ipykernel swaps these itself, for every execution request
_WATCHED = ("builtins", "json", "checks", "checks object", "rlhf_core", "sys")


def _source(source) -> str:
    return "".join(map(str, source)) if isinstance(source, list) else str(source or "")


def _tree(code: str) -> ast.Module | None:
    """``code`` parsed, IPython's magics and shell escapes read as blank lines; None when it is not Python."""
    for text in (code, re.sub(r"(?m)^[ \t]*(%|!).*$", "", code)):
        try:
            return ast.parse(text)
        except (SyntaxError, ValueError):
            continue
    return None


def _is_events(node) -> bool:
    """``node`` is IPython's event manager: ``….events`` (``get_ipython().events``, ``shell.events``, …)."""
    return isinstance(node, ast.Attribute) and node.attr == "events"


def _imported(node: ast.Import, names: dict[str, str]) -> None:
    for a in node.names:
        if a.name in ("builtins", "json", "sys"):
            names[a.asname or a.name] = a.name
        elif a.name == _CHECKS or a.name.startswith(_CHECKS + "."):
            names[a.asname or "rlhf_core"] = "checks" if a.asname else "rlhf_core"
        elif a.name == "rlhf_core" or a.name.startswith("rlhf_core."):
            names[a.asname or "rlhf_core"] = "rlhf_core" if not a.asname or a.name == "rlhf_core" else "other"


def _imported_from(node: ast.ImportFrom, names: dict[str, str]) -> None:
    for a in node.names:
        name = a.asname or a.name
        if a.name == "*":
            continue
        if node.module == "rlhf_core" and a.name == "checks":
            names[name] = "checks"
        elif node.module == _CHECKS or node.module.startswith(_CHECKS + "."):
            names[name] = "checks object"


def notebook_names(cells) -> dict[str, str]:
    """What the notebook's imports bind, by name: ``"builtins"``, ``"json"``, ``"sys"``, ``"checks"`` (a module of
    rlhf_core.checks), ``"checks object"`` (a name imported from one), ``"rlhf_core"`` (the package); and
    ``"registered NAME"`` for each function the notebook registers as an IPython event callback of its own."""
    names = {"__builtins__": "builtins"}
    for cell in cells:
        tree = _tree(_source(cell.get("source", ""))) if cell.get("cell_type") == "code" else None
        for node in ast.walk(tree) if tree else ():
            if isinstance(node, ast.Import):
                _imported(node, names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                _imported_from(node, names)
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "register" \
                    and _is_events(node.func.value) and len(node.args) > 1 and isinstance(node.args[1], ast.Name):
                names[f"registered {node.args[1].id}"] = "own callback"    # unregistering it later is the learner's business
    return names


def _family(node, names: dict[str, str]) -> str | None:
    """Which watched thing ``node`` is or lies within: "builtins", "json", "checks", "checks object", a module's
    ``__dict__`` ("builtins dict", …), or on the way to one ("rlhf_core", "sys", "sys.modules"); None for the rest."""
    if isinstance(node, ast.Name):
        kind = names.get(node.id)
        return kind if kind in _WATCHED else None
    if isinstance(node, ast.Attribute):
        base = _family(node.value, names)
        if base == "rlhf_core":
            return "checks" if node.attr == "checks" else None
        if base == "sys":
            return "sys.modules" if node.attr == "modules" else None
        if base in ("checks", "checks object"):
            return "checks object"
        return base + " dict" if node.attr == "__dict__" and base in ("builtins", "json", "checks") else None
    if isinstance(node, ast.Subscript):
        base = _family(node.value, names)
        key = node.slice.value if isinstance(node.slice, ast.Constant) else None
        if base == "sys.modules" and isinstance(key, str):
            return "checks" if key == _CHECKS or key.startswith(_CHECKS + ".") else key if key in ("builtins", "json") else None
        return "checks object" if base in ("checks", "checks object", "checks dict") else None
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "vars" and node.args:
        base = _family(node.args[0], names)
        return base + " dict" if base in ("builtins", "json", "checks") else None
    return None


def _builtin(name) -> str | None:
    return None if isinstance(name, str) and (name.startswith("_") or name in _EXEMPT_BUILTINS) else FIX_BUILTINS


def _target_fix(target, names: dict[str, str]) -> str | None:
    """The warning when assigning to (or deleting) ``target`` is tampering, else None."""
    if isinstance(target, ast.Attribute):
        base = _family(target.value, names)
        if base == "builtins":
            return _builtin(target.attr)
        if base in ("json", "checks", "checks object"):
            return FIX_JSON if base == "json" else FIX_CHECKS
        if target.attr in ("send", "session", "msg") and "display_pub" in ast.dump(target.value):
            return FIX_DISPLAY
        return FIX_EVENTS if target.attr == "callbacks" and _is_events(target.value) else None
    if isinstance(target, ast.Subscript):
        base = _family(target.value, names)
        if base in ("builtins", "builtins dict"):
            return _builtin(target.slice.value if isinstance(target.slice, ast.Constant) else None)
        if base in ("json dict", "checks", "checks object", "checks dict"):
            return FIX_JSON if base == "json dict" else FIX_CHECKS
        if isinstance(target.value, ast.Attribute) and target.value.attr == "callbacks" and _is_events(target.value.value):
            return FIX_EVENTS
    return None


def _patch_fix(patch: ast.Call, names: dict[str, str]) -> str | None:
    """``mock.patch(TARGET, …).start()``, a patch that lasts: the warning for TARGET, else None."""
    target = patch.args[0] if patch.args else None
    if isinstance(target, ast.Constant) and isinstance(target.value, str):
        dotted = target.value
        if dotted.startswith(_CHECKS + "."):
            return FIX_CHECKS
        if dotted.startswith("json."):
            return FIX_JSON
        return _builtin(dotted.split(".", 1)[1]) if dotted.startswith("builtins.") else None
    return FIX_CHECKS if target is not None and _family(target, names) in ("checks", "checks object") else None


def _call_fix(call: ast.Call, names: dict[str, str]) -> str | None:
    """The warning when ``call`` is tampering (``setattr`` on a watched module, a callback unregistered, a display
    hook, a checks object changed in place, a lasting ``mock.patch``), else None."""
    func = call.func
    if isinstance(func, ast.Name) and func.id in ("setattr", "delattr") and call.args:
        base = _family(call.args[0], names)
        attr = call.args[1].value if len(call.args) > 1 and isinstance(call.args[1], ast.Constant) else None
        if base == "builtins":
            return _builtin(attr)
        return FIX_JSON if base == "json" else FIX_CHECKS if base in ("checks", "checks object") else None
    if not isinstance(func, ast.Attribute):
        return None
    if func.attr == "unregister" and _is_events(func.value):
        own = len(call.args) > 1 and isinstance(call.args[1], ast.Name) and f"registered {call.args[1].id}" in names
        return None if own else FIX_EVENTS
    callbacks = func.value.value if isinstance(func.value, ast.Subscript) else func.value
    if func.attr in _MUTATORS and isinstance(callbacks, ast.Attribute) and callbacks.attr == "callbacks" \
            and _is_events(callbacks.value):
        return FIX_EVENTS
    if func.attr == "register_hook" and "display_pub" in ast.dump(func.value):
        return FIX_DISPLAY
    if func.attr in _MUTATORS and _family(func.value, names) in ("checks object", "checks dict", "builtins dict"):
        return FIX_BUILTINS if _family(func.value, names) == "builtins dict" else FIX_CHECKS
    if func.attr == "start" and isinstance(func.value, ast.Call):
        return _patch_fix(func.value, names)
    return None


class _Scan(ast.NodeVisitor):
    """Walks one cell, noting ``(target key, warning, line)`` for each tampering statement or call."""

    def __init__(self, names: dict[str, str], lines: list[str]):
        self.scopes, self.lines = [names], lines
        self.found: list[tuple[str, str, str]] = []
        self.saved: dict[str, str] = {}        # a name that holds the original of a target: `_orig = builtins.print`
        self.restored: set[str] = set()

    def note(self, key: str, why: str | None, node) -> None:
        if why:
            text = self.lines[node.lineno - 1].strip() if 0 < node.lineno <= len(self.lines) else ""
            self.found.append((key, why, f"`{clip(text, 60)}`" if text else "its code"))

    def visit_FunctionDef(self, node):    # a function's parameters hide the notebook's names of the same spelling
        args = node.args
        params = {a.arg for a in args.posonlyargs + args.args + args.kwonlyargs}
        params |= {a.arg for a in (args.vararg, args.kwarg) if a is not None}
        self.scopes.append({k: v for k, v in self.scopes[-1].items() if k not in params})
        self.generic_visit(node)
        self.scopes.pop()

    visit_AsyncFunctionDef = visit_Lambda = visit_FunctionDef

    def visit_Assign(self, node):
        for target in node.targets:
            why, key = _target_fix(target, self.scopes[-1]), ast.dump(target)
            if why and isinstance(node.value, ast.Name) and self.saved.get(node.value.id) == key:
                self.restored.add(key)        # `builtins.print = _orig`: put back in the same cell
            else:
                self.note(key, why, node)
        if len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) and isinstance(node.value, ast.Attribute):
            self.saved[node.targets[0].id] = ast.dump(ast.Attribute(node.value.value, node.value.attr, ast.Store()))
        self.generic_visit(node)

    def visit_AugAssign(self, node):
        self.note(ast.dump(node.target), _target_fix(node.target, self.scopes[-1]), node)
        self.generic_visit(node)

    def visit_AnnAssign(self, node):
        if node.value is not None:
            self.note(ast.dump(node.target), _target_fix(node.target, self.scopes[-1]), node)
        self.generic_visit(node)

    def visit_Delete(self, node):
        for target in node.targets:
            self.note(ast.dump(target), _target_fix(target, self.scopes[-1]), node)
        self.generic_visit(node)

    def visit_Call(self, node):
        self.note(f"call at {node.lineno}:{node.col_offset}", _call_fix(node, self.scopes[-1]), node)
        self.generic_visit(node)


def tampering_in(code, names: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """What in a code cell the grader's kernel would report as tampering, as ``(what it does and how to fix it, the
    line)``, each once. ``names``: what the notebook's imports bind (:func:`notebook_names`; default: this cell's)."""
    code = _source(code)
    tree = _tree(code)
    if tree is None:
        return []
    scan = _Scan(dict(names if names is not None else notebook_names([{"cell_type": "code", "source": code}])),
                 code.splitlines())
    scan.visit(tree)
    seen, out = set(), []
    for key, why, line in scan.found:
        if key not in scan.restored and (why, line) not in seen:
            seen.add((why, line))
            out.append((why, line))
    return out
