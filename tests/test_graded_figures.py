"""The grader judges numbers: in a graded run a matplotlib figure is one line of text, never rasterised, unless
the instructor asks for figures (``--figures``). Either way the grade is the same, and a figure drawn by a
submission is not tampering. (No sandbox needed: the kernels run plain.)"""

from __future__ import annotations

import nbformat
import pytest

from grader.autograde import autograde
from grader.kernel_side import FIGURE_LINE
from grader.sandbox import Limits
from grading_helpers import FULL, answered, read_grades, write_submissions

pytestmark = pytest.mark.notebook

# three ways a learner's cell shows a figure: plt.show(), a figure left open at the end of the cell (the inline
# backend's flush), and a Figure as the cell's value
PLOTS = ["import matplotlib.pyplot as plt\nplt.plot([1, 2, 3]); plt.title('shown'); plt.show()",
         "import matplotlib.pyplot as plt\nplt.figure(); plt.plot([3, 2, 1])",
         "import matplotlib.pyplot as plt\nfig, ax = plt.subplots(); ax.plot([1, 1]); fig"]


def _graded(tmp_path, draw: bool):
    nb = answered()
    at = next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == "implicit_reward")
    for offset, source in enumerate(PLOTS, start=1):
        nb.cells.insert(at + offset, nbformat.v4.new_code_cell(source))
    submissions, out = tmp_path / f"submissions-{draw}", tmp_path / f"out-{draw}"
    write_submissions(submissions, {"ann": nb})
    assert autograde(submissions, out, limits=Limits(cell_timeout=60, draw_figures=draw), sandbox=False,
                     gradebook=False, report=False, log=lambda *a: None) == 0
    row = read_grades(out)["ann"][0]
    graded = nbformat.read(next((out / "autograded" / "ann").rglob("*.ipynb")), as_version=4)
    outputs = [o for c in graded.cells if c.cell_type == "code" and c.source in PLOTS for o in c.outputs
               if o.get("output_type") in ("display_data", "execute_result")]
    page = next((out / "feedback" / "ann").glob("*.html")).read_text(encoding="utf-8")
    return row, outputs, page


def test_figures_are_a_line_of_text_in_a_graded_run_and_drawn_when_asked(tmp_path):
    row, outputs, page = _graded(tmp_path, draw=False)
    assert (float(row["score"]), row["status"]) == (FULL, "graded"), row["message"]
    lines = [o for o in outputs if o["data"].get("text/plain") == FIGURE_LINE]
    assert len(lines) >= len(PLOTS), [o["data"] for o in outputs]
    assert not any("image/png" in o["data"] for o in outputs), [o["data"] for o in outputs]
    assert "src=\"data:image/png" not in page and "figure not drawn" in page

    row, outputs, page = _graded(tmp_path, draw=True)
    assert (float(row["score"]), row["status"]) == (FULL, "graded"), row["message"]
    drawn = [o for o in outputs if "image/png" in o["data"]]
    assert len(drawn) == len(lines), [o["data"] for o in outputs]   # the same figures, drawn this time
    assert not any(o["data"].get("text/plain") == FIGURE_LINE for o in outputs)
    assert page.count("src=\"data:image/png") >= len(drawn)
