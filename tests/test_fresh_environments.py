"""Colab and Binder, replayed here in fresh virtual environments.

* **Colab**: a fresh venv with what Colab ships (torch, NumPy, pandas, Matplotlib, tqdm, datasets, a
  Jupyter kernel) and without ``rlhf_core``. Lesson 01 runs in it with ``DPO_COURSE_SOURCE`` pointed at
  a wheel built from this checkout and pip cut off from every index: the setup cell must install the
  course from that wheel, leave torch untouched, print [OK] for every package, and the lesson's checks
  must then pass.
* **Binder**: a fresh venv gets exactly what repo2docker does with ``binder/``: ``pip install -r
  binder/requirements.txt``, then ``binder/postBuild`` (with ``TORCH_INDEX_URL=""``: this machine's
  configured index serves torch's CPU build, as the PyTorch CPU index does on Binder). The released
  notebook 01 then runs as a learner opening it would see it: every package [OK], only the check cells
  failing, each with its "not implemented yet" verdict.

Each venv installs from pip's cache when it can; both tests take a minute or two (marked ``fresh_env``
and ``notebook``).

* **The dev extra** (``pip install torch==2.13.0 && pip install -e ".[dev]"``): offline and in a second,
  every third-party module that the library, the grader, the benches, the tests and the lessons import
  must come from a distribution that the project's dependencies and its ``dev`` extra pull in.
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from nbtools import ROOT, errors_by_cell, student_run_problems

NOTEBOOK = "01_rlhf_objective.ipynb"
COLAB_PACKAGES = ["torch", "numpy", "pandas", "matplotlib", "tqdm", "datasets", "ipykernel", "nbclient", "nbformat"]

RUNNER = """
import sys, nbformat
from nbclient import NotebookClient
source, target, folder = sys.argv[1:4]
nb = nbformat.read(source, as_version=4)
NotebookClient(nb, kernel_name="python3", timeout=600, allow_errors=True, resources={"metadata": {"path": folder}}).execute()
nbformat.write(nb, target)
"""


def make_venv(path: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    return path / "bin" / "python"


def pip(python: Path, *args: str, env: dict | None = None) -> None:
    result = subprocess.run([str(python), "-m", "pip", "install", "--quiet", *args], capture_output=True, text=True,
                            env=env, cwd=ROOT)
    assert result.returncode == 0, f"pip install {' '.join(args)} failed:\n{result.stderr[-3000:]}"


def run_notebook(python: Path, source: Path, folder: Path, env: dict) -> nbformat.NotebookNode:
    """Run ``source`` in a kernel of ``python``'s environment, from a copy in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    copy, executed = folder / source.name, folder / f"executed-{source.name}"
    copy.write_bytes(source.read_bytes())
    script = folder / "run_notebook.py"
    script.write_text(RUNNER)
    result = subprocess.run([str(python), str(script), str(copy), str(executed), str(folder)], capture_output=True,
                            text=True, env=env, cwd=folder, timeout=900)
    assert result.returncode == 0, f"running {source.name} failed:\n{result.stderr[-3000:]}"
    return nbformat.read(executed, as_version=4)


def setup_output(nb) -> str:
    cell = next(c for c in nb.cells if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade_id") == "setup")
    return "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")


def clean_env(**extra: str) -> dict:
    """The environment a learner's kernel would have: no PYTHONPATH into this checkout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "JUPYTER", "PIP_"))}
    env.update(extra)
    return env


def torch_fingerprint(python: Path) -> dict:
    out = subprocess.run([str(python), "-c", "import json, os, torch; print(json.dumps({'version': torch.__version__, "
                          "'mtime': os.stat(torch.__file__).st_mtime_ns, 'path': torch.__file__}))"],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


@pytest.mark.fresh_env
@pytest.mark.notebook
def test_the_colab_setup_cell_installs_the_course_offline_and_keeps_torch(tmp_path):
    dist = tmp_path / "dist"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                            "-w", str(dist), str(ROOT)], capture_output=True, text=True, cwd=tmp_path)
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next(dist.glob("dpo_paper_to_code-*.whl"))

    python = make_venv(tmp_path / "colab")
    pip(python, "-c", str(ROOT / "requirements.txt"), *COLAB_PACKAGES)
    missing = subprocess.run([str(python), "-c", "import importlib.util, sys; sys.exit(importlib.util.find_spec('rlhf_core') is not None)"],
                             cwd=tmp_path)
    assert missing.returncode == 0, "the Colab-like venv must start without rlhf_core"
    torch_before = torch_fingerprint(python)

    offline = clean_env(DPO_COURSE_SOURCE=str(wheel), PIP_NO_INDEX="1", PIP_CONFIG_FILE=os.devnull,
                        PIP_DISABLE_PIP_VERSION_CHECK="1")
    nb = run_notebook(python, ROOT / "solutions" / NOTEBOOK, tmp_path / "work", offline)

    said = setup_output(nb)
    assert f"rlhf_core is missing in this kernel: installing it from {wheel}" in said, said
    assert "[FAIL]" not in said and "[OK]   torch" in said and "device: cpu" in said, said
    site = str((tmp_path / "colab").resolve())
    assert "[OK]   rlhf_core 0.1.0 (" + site in said, f"rlhf_core was not imported from the fresh venv:\n{said}"
    assert errors_by_cell(nb) == {}, errors_by_cell(nb)
    verdicts = [o.get("text", "") for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade") for o in c.outputs]
    assert sum("✓" in v for v in verdicts) >= 2, verdicts
    assert torch_fingerprint(python) == torch_before, "installing the course must keep the torch that was there"


@pytest.mark.fresh_env
@pytest.mark.notebook
def test_binder_files_replayed_in_a_fresh_venv_open_notebook_01_ready_to_run(tmp_path):
    python = make_venv(tmp_path / "binder")
    pip(python, "-r", str(ROOT / "binder" / "requirements.txt"))
    env = clean_env(PATH=f"{python.parent}{os.pathsep}{os.environ['PATH']}", TORCH_INDEX_URL="")
    post = subprocess.run(["bash", str(ROOT / "binder" / "postBuild")], capture_output=True, text=True, env=env, cwd=ROOT)
    assert post.returncode == 0, f"binder/postBuild failed:\n{post.stderr[-3000:]}"
    assert "course ready: rlhf_core" in post.stdout and "+cpu" in post.stdout, post.stdout

    nb = run_notebook(python, ROOT / "notebooks" / NOTEBOOK, tmp_path / "work", clean_env())
    said = setup_output(nb)
    assert "[FAIL]" not in said and "[OK]   rlhf_core" in said and "installing" not in said, said
    assert student_run_problems(nb) == []


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _closure(requirements: list[str]) -> set[str]:
    """The distributions ``requirements`` pull in, transitively, read from this environment's metadata."""
    from packaging.requirements import Requirement

    found, todo = set(), [(Requirement(r), "") for r in requirements]
    while todo:
        req, extra = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": extra}):
            continue
        name = _normalize(req.name)
        if name in found:
            continue
        found.add(name)
        try:
            requires = md.requires(req.name) or []
        except md.PackageNotFoundError:
            continue          # not installed here: nothing of it can be imported here either
        for extra_name in ("", *req.extras):
            todo += [(Requirement(r), extra_name) for r in requires]
    return found


def _imported_modules() -> tuple[dict[str, str], set[str]]:
    """``{top-level module: a file that imports it}`` over the code, the tests, the benches and the lessons'
    code cells (imports under ``try: ... except ImportError`` left out), and the optional modules: those
    a test guards with ``pytest.importorskip``."""
    sources = [(p, p.read_text(encoding="utf-8")) for folder in ("rlhf_core", "grader", "tests", "bench")
               for p in sorted((ROOT / folder).rglob("*.py"))]
    for lesson in sorted((ROOT / "solutions").glob("*.ipynb")):
        cells = nbformat.read(lesson, as_version=4).cells
        code = [c.source for c in cells if c.cell_type == "code" and not c.source.lstrip().startswith(("%", "!"))]
        sources.append((lesson, "\n\n".join(code)))
    found, optional_modules = {}, set()
    for path, text in sources:
        tree = ast.parse(text)
        optional_modules |= {node.args[0].value.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Call)
                             and isinstance(node.func, ast.Attribute) and node.func.attr == "importorskip"
                             and node.args and isinstance(node.args[0], ast.Constant)}
        optional = {id(node) for t in ast.walk(tree) if isinstance(t, ast.Try)
                    and any("ImportError" in ast.unparse(h.type or ast.Name("BaseException")) for h in t.handlers)
                    for stmt in t.body for node in ast.walk(stmt)}
        for node in ast.walk(tree):
            if id(node) in optional:
                continue
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found, optional_modules


def test_the_dev_extra_brings_every_package_the_code_and_the_tests_import():
    tomllib = pytest.importorskip("tomllib")        # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert "dev" in project["optional-dependencies"], "pyproject.toml needs a dev extra"
    wanted = _closure(project["dependencies"] + project["optional-dependencies"]["dev"])
    local = {"rlhf_core", "grader", "__future__"} | {p.stem for folder in ("tests", "bench") for p in (ROOT / folder).glob("*.py")}
    providers = md.packages_distributions()
    imported, optional_modules = _imported_modules()
    # an optional package (its tests skip without it) and what it pulls in need not be in the dev extra
    optional = _closure(sorted({d for m in optional_modules for d in providers.get(m, [m])}))
    missing = {}
    for module, where in sorted(imported.items()):
        if module in local or module in sys.stdlib_module_names or module in optional_modules:
            continue
        dists = {_normalize(d) for d in providers.get(module, [])}
        if not dists:
            continue          # not installed here (an optional extra's module): whatever imports it fails or skips here too
        if not dists & (wanted | optional):
            missing[module] = (where, sorted(dists))
    assert not missing, f"imported, but not pulled in by pip install -e '.[dev]' (add to pyproject's dev extra): {missing}"
