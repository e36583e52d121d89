"""nbval and the released lessons: a check cell that fails still fails ``pytest --nbval-lax notebooks/``.

Release tags every check cell of the student notebooks ``raises-exception`` so that Run All (JupyterLab,
nbclient) goes past a check that fails (:mod:`grader.release`). nbval reads the same tag as "this cell
may raise" and would then pass a failing check. Run from this repository, this hook gives nbgrader's
check cells back their strictness under nbval: an error in one fails that cell's test, as it did
before the tag. Every other cell keeps nbval's own reading of its tags and comments, and outside this
repository nbval's documented behaviour applies (``docs/grading.md`` says what holds where).
"""

from __future__ import annotations


def _is_nbgrader_check_cell(cell) -> bool:
    meta = getattr(cell, "metadata", {}).get("nbgrader", {})
    return bool(meta.get("grade")) and not meta.get("solution")


def pytest_collection_modifyitems(items):
    for item in items:
        if type(item).__name__ != "IPyNbCell":     # only nbval's cell items (nbval may not be installed)
            continue
        cell, options = getattr(item, "cell", None), getattr(item, "options", None)
        if cell is not None and options is not None and _is_nbgrader_check_cell(cell) \
                and "raises-exception" in cell.metadata.get("tags", []):
            options["check_exception"] = False
