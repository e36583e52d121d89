"""What :mod:`grader.similarity` compares: exercise cells as copydetect fingerprints, and the code every
answer to an exercise is expected to share.

* :func:`exercise_cells`: a notebook's exercise cells by ``grade_id``;
* :func:`fingerprint` / :func:`fingerprints_of`: copydetect's k-gram fingerprints of a text (k = :data:`NOISE_T`
  filtered characters, window 1), with the expected fingerprints left out;
* :func:`unfold` / :func:`strip_literals`: code held in string literals (``exec('''...''')``), compared as code;
* :func:`statements`: a function's body as normalised text (``ast.unparse``), to tell a known mistake by text;
* :func:`statement_marks`: a cell's statements as what a disguised copy keeps of them (text, shape, comments);
* :func:`expected_code` / :func:`exercise_code`: the stub, the reference and the registered known mistakes of one
  exercise (:class:`ExerciseCode`), and whether the exercise is long enough to score
  (:data:`MIN_EXERCISE_FINGERPRINTS`, measured: :mod:`grader.similarity`'s docstring);
* :func:`library_fingerprints`: every ``rlhf_core`` file but the stubs, fingerprinted once per process;
* :func:`highlight`: a text with its shared regions marked, HTML-escaped.

**copydetect's fitness** (0.5.0, measured): its :class:`copydetect.CopyDetector` only takes files on disk,
but its lower-level API takes in-memory text — ``CodeFingerprint(name, k, win_size, boilerplate,
language="python", fp=io.StringIO(code))`` and ``compare_files(fp1, fp2)`` (the matched slices mapped
back to the raw text) — and ``copydetect.utils.highlight_overlap(..., escape_html=True)`` highlights with
the text escaped; that is what is used here. Its default noise threshold (k = 25) is too long for exercise
cells of three to ten lines (a whole ``dpo_loss`` body filters to about 40 characters). Importing it costs
about 0.5 s (it imports matplotlib), so it is imported only when this command runs.
"""

from __future__ import annotations

import ast
import html
import inspect
import io
import keyword
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path

__all__ = ["NOISE_T", "MIN_EXERCISE_FINGERPRINTS", "NOT_LIBRARY", "ExerciseCode", "exercise_cells", "unfold",
           "strip_literals", "fingerprint", "fingerprints_of", "as_array", "with_helpers", "statements", "MIN_STATEMENT_TOKENS",
           "MIN_COMMENT_CHARS", "statement_shape", "statement_marks",
           "expected_code", "exercise_code", "library_files", "library_fingerprints", "highlight", "solution_body"]

NOISE_T = 15                    # k: the shortest match, in filtered characters ("V=V-V" is 5)
MIN_EXERCISE_FINGERPRINTS = 60  # an exercise is scored when its reference body has at least this many
MIN_STATEMENT_TOKENS = 4        # a statement mark needs this many tokens: `return x`, `x = y` are every answer's
MIN_COMMENT_CHARS = 12          # and a comment this many characters (`# loss`, `# step 1` are anyone's)
NOT_LIBRARY = {"exercises.py"}  # the stubs: matching them is matching the released notebook
_READS_SOURCE = re.compile(r"getsource|__file__|\bopen\s*\(|rlhf_core|read_text|importlib")


def _grade_id(cell) -> str | None:
    meta = cell.get("metadata", {}) if isinstance(cell, dict) else {}
    meta = meta.get("nbgrader", {}) if isinstance(meta, dict) else {}
    gid = meta.get("grade_id") if isinstance(meta, dict) else None
    return gid if isinstance(gid, str) else None


def _is_solution(cell) -> bool:
    meta = cell.get("metadata", {})
    meta = meta.get("nbgrader", {}) if isinstance(meta, dict) else {}
    return bool(isinstance(meta, dict) and meta.get("solution"))


def _text(source) -> str:
    return "".join(str(s) for s in source) if isinstance(source, list) else ("" if source is None else str(source))


def exercise_cells(nb: dict, ids: list[str] | None = None) -> dict[str, str]:
    """``{grade_id: code}`` of a notebook's exercise cells (nbgrader solution code cells); with ``ids``,
    the code cells carrying those grade ids whatever their metadata says (a learner may have edited it)."""
    found = {}
    for cell in nb.get("cells", []) if isinstance(nb, dict) else []:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        gid = _grade_id(cell)
        wanted = gid in ids if ids is not None else _is_solution(cell)
        if gid and wanted:
            found.setdefault(gid, _text(cell.get("source")))
    return found


def unfold(code: str) -> tuple[str, bool]:
    """Code held in string literals (``exec('''...''')``), as extra code, and whether the cell execs
    something that is not a literal while reading source."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return "", False
    extra, dynamic = [], False
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and len(node.value) >= 40:
            try:
                inner = ast.parse(node.value)
            except (SyntaxError, ValueError):
                continue
            if any(isinstance(s, (ast.FunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom, ast.Assign, ast.Return))
                   for s in ast.walk(inner)):
                extra.append(node.value)
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("exec", "eval", "compile")
                and node.args and not (isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str))):
            dynamic = True
    dynamic = dynamic and bool(_READS_SOURCE.search(code))
    return "".join(f"# ── code in a string ──\n{s.rstrip()}\n\n" for s in extra), dynamic


def strip_literals(code: str) -> str:
    """``code`` with the string literals that :func:`unfold` unfolds replaced by ``''`` (their text is
    compared as code instead, and must not count as the student's own string tokens)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return code
    lines = code.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line.encode("utf-8")))
    raw = code.encode("utf-8")
    spans = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and len(node.value) >= 40 and node.end_lineno:
            try:
                ast.parse(node.value)
            except (SyntaxError, ValueError):
                continue
            spans.append((starts[node.lineno - 1] + node.col_offset, starts[node.end_lineno - 1] + node.end_col_offset))
    for a, b in sorted(spans, reverse=True):
        raw = raw[:a] + b"''" + raw[b:]
    return raw.decode("utf-8", errors="replace")


def fingerprint(name: str, code: str, boilerplate=None):
    from copydetect.detector import CodeFingerprint

    return CodeFingerprint(name, NOISE_T, 1, boilerplate, language="python", fp=io.StringIO(code))


def fingerprints_of(texts) -> set[int]:
    found: set[int] = set()
    for text in texts:
        if text.strip():
            found |= {int(h) for h in fingerprint("expected", text).hashes}
    return found


def as_array(hashes: set[int]):
    import numpy as np

    return np.array(sorted(hashes), dtype=np.int64)


def _source(fn) -> str:
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):
        return ""


def with_helpers(fn) -> list[str]:
    """``fn``'s source and the sources of the functions of its own module it calls by name."""
    texts = [_source(fn)]
    code, module = getattr(fn, "__code__", None), getattr(fn, "__module__", None)
    for name in (code.co_names if code else ()):
        helper = getattr(fn, "__globals__", {}).get(name)
        if inspect.isfunction(helper) and helper.__module__ == module and helper is not fn:
            texts.append(_source(helper))
    return texts


def statements(code: str, name: str | None = None) -> tuple[str, ...]:
    """The body of the function ``name`` (the first one without it) as normalised statements (``ast.unparse``:
    spacing, comments and redundant parentheses gone, names kept), the docstring left out; ``()`` if none."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return ()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and (name is None or node.name == name):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                body = body[1:]
            return tuple(ast.unparse(s) for s in body)
    return ()


def statement_shape(stmt: ast.stmt) -> str:
    """A statement's tokens with every name abstracted to ``V`` and every literal to ``C``: what a renamed copy keeps."""
    tokens = tokenize.generate_tokens(io.StringIO(ast.unparse(stmt)).readline)
    return " ".join("V" if t.type == tokenize.NAME and not keyword.iskeyword(t.string) else
                    "C" if t.type in (tokenize.NUMBER, tokenize.STRING) else t.string
                    for t in tokens if t.type not in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER)).strip()


def statement_marks(code: str) -> dict[str, tuple[str, str]]:
    """A cell's *marks*: what a copy keeps of each statement through renaming, reordering and padding.

    For every simple statement at any depth (not an import, not a docstring; the bodies of ``def``, ``if``,
    ``for``, ``with`` are walked, their headers left out) of at least :data:`MIN_STATEMENT_TOKENS` tokens: its text
    (``ast.unparse``: names kept, spacing and comments gone) and its shape (:func:`statement_shape`); and every
    comment of at least :data:`MIN_COMMENT_CHARS` characters, spacing normalised. ``{mark: (statement, text)}``:
    ``statement`` (the shape, or the comment) counts one statement once however many of its marks two cells share;
    ``text`` is how it reads in this cell. Text that does not parse has no statement marks."""
    found: dict[str, tuple[str, str]] = {}
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        tree = None
    for node in ast.walk(tree) if tree is not None else ():
        if not isinstance(node, ast.stmt) or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.If,
                                                               ast.For, ast.While, ast.With, ast.Try, ast.Import, ast.ImportFrom)):
            continue
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            continue
        try:
            shape, text = statement_shape(node), ast.unparse(node)
        except (tokenize.TokenError, SyntaxError, ValueError):
            continue
        if len(shape.split()) >= MIN_STATEMENT_TOKENS:
            found["text: " + text] = found["shape: " + shape] = (shape, text)
    try:
        for token in tokenize.generate_tokens(io.StringIO(code).readline):
            comment = " ".join(token.string.split())
            if token.type == tokenize.COMMENT and len(comment) >= MIN_COMMENT_CHARS:
                found["comment: " + comment] = (comment, comment)
    except (tokenize.TokenError, SyntaxError, IndentationError):
        pass
    return found


def expected_code(exercise: str) -> tuple[list[str], dict[str, list[str]]]:
    """The library's expected code of one exercise: its reference function's source, and
    ``{mistake id: sources}`` of its registered mistakes (empty for a grade id that is no exercise)."""
    from rlhf_core.checks import EXERCISES

    record = EXERCISES.get(exercise)
    if record is None:
        return [], {}
    return [_source(record.reference)], {m.id: with_helpers(m.fn) for m in record.mistakes}


_LIBRARY_CACHE: dict = {}


def library_files(library_dir: Path) -> list[Path]:
    """The library's files compared with students' cells: every ``*.py`` of ``library_dir`` but the stubs."""
    return sorted(p for p in Path(library_dir).rglob("*.py") if p.name not in NOT_LIBRARY and "__pycache__" not in p.parts)


def library_fingerprints(library_dir: Path) -> list[tuple[str, object]]:
    """``[(rlhf_core/<file>, fingerprint)]``, fingerprinted once per process and state of the files (about 2 s)."""
    files = library_files(library_dir)
    key = (NOISE_T, tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files))
    if key not in _LIBRARY_CACHE:
        _LIBRARY_CACHE.clear()
        _LIBRARY_CACHE[key] = [(str(p.relative_to(Path(library_dir).parent)), fingerprint(p.name, p.read_text(errors="replace")))
                               for p in files]
    return _LIBRARY_CACHE[key]


def highlight(fp, slices, truncate: int = -1) -> str:
    from copydetect.utils import highlight_overlap

    if len(slices) == 0 or slices.shape[-1] == 0:
        return html.escape(fp.raw_code)
    text, _ = highlight_overlap(fp.raw_code, slices, "<mark>", "</mark>", truncate=truncate, escape_html=True)
    return text


def solution_body(code: str) -> str:
    """The solution between the markers (all of it when it has none)."""
    found = re.search(r"### BEGIN SOLUTION[^\n]*\n(.*?)[ \t]*### END SOLUTION", code, flags=re.S)
    return found.group(1) if found else code


@dataclass
class ExerciseCode:
    """What one exercise's cells are compared against."""

    name: str
    boiler: object                    # np.ndarray of expected fingerprints (stub, reference, mistakes)
    stub_ref: object                  # np.ndarray: stub and reference only (for telling known mistakes)
    mistakes: tuple[str, ...]            # the mistake ids
    mistake_text: dict[tuple, str]       # normalised body → mistake id
    scored: bool
    size: int                         # fingerprints of the reference body
    marks: frozenset = frozenset()    # statement marks of the expected code (stub, reference, mistakes)


def exercise_code(gid: str, stub: str, reference: str, view=None) -> ExerciseCode:
    """What one exercise's cells are compared against. ``view`` (text → text), when given, is applied to every
    expected text before it is read, as it was to the cells (``bench/similarity_rates.py`` measures one)."""
    view = view or (lambda text: text)
    library_ref, mistakes = expected_code(gid)
    mistakes = {mid: [view(t) for t in texts] for mid, texts in mistakes.items()}
    base = fingerprints_of([view(t) for t in [stub, reference] + library_ref])
    every = base | fingerprints_of([t for texts in mistakes.values() for t in texts])
    text = {statements(texts[0]): mid for mid, texts in mistakes.items() if statements(texts[0])}
    size = len(fingerprints_of([view(solution_body(reference))]))
    marks = frozenset(m for t in [view(t) for t in [stub, reference] + library_ref] + [t for texts in mistakes.values() for t in texts]
                      for m in statement_marks(t))
    return ExerciseCode(gid, as_array(every), as_array(base), tuple(mistakes), text, size >= MIN_EXERCISE_FINGERPRINTS, size, marks)
