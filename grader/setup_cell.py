"""The setup cell: the first code cell of every lesson, generated from this one template.

It must work where ``rlhf_core`` is installed (local JupyterLab, Binder) and where it is not
(Colab, a bare kernel): then it installs the course from :data:`COURSE_REPO_URL` with pip,
which keeps an existing torch (``pyproject.toml`` asks only for ``torch>=2.1``). It then fixes
the notebook's random seed and prints the environment. ``python -m grader setup-cells`` rewrites
the cell in every ``solutions/`` notebook; a test fails when one is out of date.
"""

from __future__ import annotations

#: Where Colab installs the course from: the single place this address is written.
COURSE_REPO_URL = "https://github.com/dpo-paper-to-code/dpo-paper-to-code"

TEMPLATE = '''\
# Setup: run this cell first. Where rlhf_core is missing (Colab, a fresh kernel) it installs the
# course library; everywhere it fixes this notebook's random seed and prints the environment.
COURSE_REPO_URL = "{url}"
SEED = {seed}
import importlib.util, subprocess, sys
if importlib.util.find_spec("rlhf_core") is None:
    print(f"installing rlhf_core from {{COURSE_REPO_URL}} (about a minute) ...")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", f"git+{{COURSE_REPO_URL}}"], check=True)
from rlhf_core.notebook import setup
setup(seed=SEED)'''


def render_setup_cell(seed: int, url: str = COURSE_REPO_URL) -> str:
    """The setup cell's source for a lesson with this seed."""
    return TEMPLATE.format(url=url, seed=int(seed))
