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


def _finds_the_library_folder(node) -> str | None:
    """What in ``node`` computes rlhf_core's folder other than through ``rlhf_core.paths.LIBRARY_DIR``: the
    package's ``__file__``/``__path__``, or a path built from a checkout's root and the name ``"rlhf_core"``."""
    import ast

    if isinstance(node, ast.Attribute) and node.attr in ("__file__", "__path__"):
        if isinstance(node.value, ast.Name) and node.value.id == "rlhf_core":
            return f"rlhf_core.{node.attr}"
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):    # a checkout's root / "rlhf_core" (a withheld
        left = ast.unparse(node.left)                                   # copy's folder / "rlhf_core" is no such path)
        if isinstance(node.right, ast.Constant) and node.right.value == "rlhf_core" and any(
                word in left for word in ("ROOT", "parent", "__file__", "cwd")):
            return f"{left} / 'rlhf_core'"
    if isinstance(node, ast.Call) and any(isinstance(a, ast.Constant) and a.value == "rlhf_core" for a in node.args):
        name = getattr(node.func, "attr", getattr(node.func, "id", ""))
        if name in ("joinpath", "join", "find_spec"):
            return f"{name}(..., 'rlhf_core')"
    return None


def test_the_grader_finds_the_library_in_one_way_that_works_from_a_wheel():
    """The grader reads rlhf_core's folder from ``rlhf_core.paths.LIBRARY_DIR`` (the package's own location, in a
    checkout or an installed wheel alike), never from the checkout's layout or the package's ``__file__``."""
    import ast

    import rlhf_core
    from rlhf_core.paths import LIBRARY_DIR

    assert LIBRARY_DIR == Path(rlhf_core.__file__).resolve().parent
    found = [f"{path.name}:{node.lineno}: {what}" for path in sorted((ROOT / "grader").glob("*.py"))
             for node in ast.walk(ast.parse(path.read_text(), str(path)))
             if (what := _finds_the_library_folder(node))]
    assert found == [], f"grader finds rlhf_core's folder on its own: {found}"
    uses = [path.name for path in (ROOT / "grader").glob("*.py") if "LIBRARY_DIR" in path.read_text()]
    assert {"sandbox.py", "warm.py", "withheld.py", "similarity.py"} <= set(uses), uses


def test_the_detector_of_a_second_way_to_find_the_library_can_fail():
    import ast

    for source in ('import rlhf_core\nx = rlhf_core.__file__', 'x = ROOT / "rlhf_core"', 'x = os.path.join(ROOT, "rlhf_core")',
                   'x = Path(__file__).parents[1] / "rlhf_core"'):
        assert any(_finds_the_library_folder(n) for n in ast.walk(ast.parse(source))), source
    for source in ("from rlhf_core.paths import LIBRARY_DIR", 'copy = folder / "rlhf_core"'):
        assert not any(_finds_the_library_folder(n) for n in ast.walk(ast.parse(source))), source
