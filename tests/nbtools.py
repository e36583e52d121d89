"""Execute notebooks in a fresh kernel and read their errors cell by cell (used by the notebook tests)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
# Screenshots and executed notebooks for a person to look at after a run (CI keeps the folder).
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", ROOT / "test-artifacts"))
EXECUTED = ARTIFACTS / "executed"   # each solution notebook as its test ran it, outputs and figures included


def execute(path: Path, allow_errors: bool, timeout: int = 300) -> nbformat.NotebookNode:
    """Run every cell of ``path`` in a fresh python3 kernel started in the notebook's folder."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=allow_errors,
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    return nb


def run_all(path: Path, timeout: int = 300) -> nbformat.NotebookNode:
    """Run every cell of ``path`` as a learner's Run All does: nbclient with its default error settings
    (``allow_errors=False``), which stops at the first cell that raises unless the cell carries the
    ``raises-exception`` tag. Raises AssertionError, naming the cell, where the run stopped early."""
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    try:
        client.execute()
    except CellExecutionError as exc:
        ran = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.get("execution_count") is not None]
        where = f"cell {ran[-1]} ({grade_id(nb.cells[ran[-1]]) or 'demo'})" if ran else "the first cell"
        raise AssertionError(f"Run All of {path.name} stopped at {where}: expected it to go on to the last cell, "
                             f"but that cell raised {exc.ename}: {exc.evalue[:200]} and carries no raises-exception tag") from None
    return nb


def last_code_cell_ran(nb: nbformat.NotebookNode) -> bool:
    """The last code cell has an execution count: a Run All got to the end."""
    code = [c for c in nb.cells if c.cell_type == "code"]
    return bool(code) and code[-1].get("execution_count") is not None


def errors_by_cell(nb: nbformat.NotebookNode) -> dict[int, dict]:
    """``{cell index: the error output}`` for every code cell that raised."""
    found = {}
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                found[i] = {"ename": out["ename"], "evalue": out["evalue"]}
    return found


def grade_id(cell) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def is_check_cell(cell) -> bool:
    return bool(cell.metadata.get("nbgrader", {}).get("grade"))


def skipped_checks(nb: nbformat.NotebookNode, variant: str = "dpo") -> set[str]:
    """The grade ids of lesson 10's check cells that skip in a drill on ``variant``: those whose
    ``drill.check("label", …)`` is not part of it (another variant's exercise, or a DPO-only check)."""
    from rlhf_core.course.drill import Drill
    from rlhf_core.course.variants import get_variant

    drill = Drill(variant=get_variant(variant))
    skipped = set()
    for cell in nb.cells:
        label = re.search(r'drill\.check\("([^"]+)"', cell.source) if is_check_cell(cell) else None
        if label and not drill.applies(label.group(1)):
            skipped.add(grade_id(cell))
    return skipped


def student_run_problems(nb: nbformat.NotebookNode, skipped: set[str] = frozenset()) -> list[str]:
    """What is wrong with an executed *student* notebook: every check cell must fail with the check's
    own 'not implemented yet' AssertionError, except those in ``skipped`` (lesson 10's cells of another
    drill variant), which must pass saying they skip; no other cell may fail."""
    problems = []
    errors = errors_by_cell(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        error = errors.get(i)
        if is_check_cell(cell) and grade_id(cell) in skipped:
            said = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")
            if error is not None or "skipped" not in said:
                problems.append(f"check cell {grade_id(cell)!r} (cell {i}) should skip in this drill variant; it "
                                f"{'failed: ' + error['evalue'][:200] if error else 'printed ' + repr(said[:200])}")
        elif is_check_cell(cell):
            if error is None:
                problems.append(f"check cell {grade_id(cell)!r} (cell {i}) passed on the unfilled stubs: it cannot fail")
            elif error["ename"] not in ("CheckFailed", "AssertionError") or "not implemented" not in error["evalue"]:
                problems.append(f"check cell {grade_id(cell)!r} (cell {i}) failed with {error['ename']}: "
                                f"{error['evalue'][:200]} — expected the check's own 'not implemented yet' verdict")
        elif error is not None:
            problems.append(f"cell {i} ({grade_id(cell) or 'demo'}) crashed with {error['ename']}: {error['evalue'][:200]} "
                            "— only check cells may fail in the student version (fall back to the library)")
    return problems
