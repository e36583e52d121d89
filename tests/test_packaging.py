"""What pip installs: every package of the course is listed, so a wheel (Colab, Binder) holds all of it."""

from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]


def test_every_python_package_of_the_course_is_in_the_wheel():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {".".join(init.parent.relative_to(ROOT).parts)
               for top in ("rlhf_core", "grader") for init in (ROOT / top).rglob("__init__.py")}
    assert on_disk - listed == set(), f"packages missing from pyproject.toml's [tool.setuptools] packages: {sorted(on_disk - listed)}"
    assert listed - on_disk == set(), f"listed packages that do not exist: {sorted(listed - on_disk)}"
