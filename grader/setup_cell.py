"""The setup cell: the first code cell of every lesson, generated from this one template.

It must work where ``rlhf_core`` is installed (local JupyterLab, Binder) and where it is not
(Colab, a bare kernel). Where it is missing, the cell installs the course with pip from one source:
:data:`COURSE_REPO_URL` (``git+<url>``), or the pip requirement in the environment variable
``DPO_COURSE_SOURCE`` when set (a wheel, a folder or a fork: the offline test points it at a local
build). pip keeps the torch already there (Colab's, CUDA included), because ``pyproject.toml`` asks
only for ``torch>=2.1`` and the upgrade strategy is "only if needed". Then the cell prints one
[OK]/[FAIL] line per package with its version, and the device (``rlhf_core.course.environment``), and
fixes the lesson's random seed. ``python -m grader setup-cells`` rewrites the cell in every
``solutions/`` notebook; a test fails when one is out of date.
"""

from __future__ import annotations

#: Where Colab installs the course from, and where the README's badges point: the single place this
#: address is written.
COURSE_REPO_URL = "https://github.com/dpo-paper-to-code/dpo-paper-to-code"

#: The environment variable that replaces the install source (tests, offline machines, forks).
SOURCE_VARIABLE = "DPO_COURSE_SOURCE"

TEMPLATE = '''\
# Setup: run this cell first. Where rlhf_core is missing (Colab, a fresh kernel) it installs the course
# library, keeping the torch already there; then it checks the environment and fixes the random seed.
COURSE_REPO_URL = "{url}"
SEED = {seed}
import importlib, importlib.util, os, subprocess, sys
if importlib.util.find_spec("rlhf_core") is None:
    source = os.environ.get("{variable}") or f"git+{{COURSE_REPO_URL}}"
    where = "Colab" if "google.colab" in sys.modules else "this kernel"
    print(f"rlhf_core is missing in {{where}}: installing it from {{source}} (about a minute) ...")
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--upgrade-strategy", "only-if-needed", source],
                         capture_output=True, text=True)
    if pip.returncode != 0:
        said = ((pip.stderr or pip.stdout).strip().splitlines() or ["no message"])[-1]
        raise RuntimeError(f"pip could not install {{source}} ({{said}}); check the network, or install the course yourself")
    importlib.invalidate_caches()
from rlhf_core.course.notebook import setup
setup(seed=SEED)'''


def render_setup_cell(seed: int, url: str = COURSE_REPO_URL) -> str:
    """The setup cell's source for a lesson with this seed."""
    return TEMPLATE.format(url=url, seed=int(seed), variable=SOURCE_VARIABLE)
