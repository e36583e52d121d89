"""The environment check every lesson's setup cell prints: one [OK]/[FAIL] line per package, then the device.

The minimum versions are read from the installed package's own metadata (``pyproject.toml``'s
``dependencies``), so there is one list; :data:`FALLBACK_MINIMUMS` is used only when the course is
run from a source folder that was never installed (a test keeps the two equal). Versions are looked
up without importing the packages, so the check costs milliseconds.
"""

from __future__ import annotations

import os
import platform
import re
from importlib import metadata

__all__ = ["DIST_NAME", "FALLBACK_MINIMUMS", "minimums", "environment_report", "check_environment"]

DIST_NAME = "dpo-paper-to-code"
FALLBACK_MINIMUMS = {"python": "3.10", "torch": "2.1", "numpy": "1.24", "datasets": "2.14",
                     "matplotlib": "3.7", "tqdm": "4.60", "pandas": "1.5"}

_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*(?:>=\s*([0-9][0-9A-Za-z.]*))?\s*$")


def minimums() -> dict[str, str]:
    """``{"python": "3.10", "torch": "2.1", ...}``: what the course needs, Python first."""
    try:
        dist = metadata.distribution(DIST_NAME)
    except metadata.PackageNotFoundError:
        return dict(FALLBACK_MINIMUMS)
    found = {"python": (dist.metadata.get("Requires-Python") or ">=3.10").replace(">=", "").strip()}
    for requirement in dist.requires or []:
        if ";" in requirement:          # extras (grader, test) are not needed to run a lesson
            continue
        match = _REQUIREMENT.match(requirement)
        if match:
            found[match.group(1).lower()] = match.group(2) or "0"
    return found


def _release(version: str) -> tuple[int, ...]:
    """``"2.13.0+cpu"`` → ``(2, 13, 0)``; enough to compare against a ``>=`` minimum."""
    numbers = re.match(r"\d+(?:\.\d+)*", version)
    return tuple(int(n) for n in numbers.group(0).split(".")) if numbers else (0,)


def environment_report() -> list[tuple[bool, str]]:
    """``(ok, line)`` for Python, every required package and ``rlhf_core`` itself."""
    lines = []
    for name, minimum in minimums().items():
        if name == "python":
            version = platform.python_version()
        else:
            try:
                version = metadata.version(name)
            except metadata.PackageNotFoundError:
                lines.append((False, f"[FAIL] {name} not installed (needs ≥ {minimum}); run  pip install '{name}>={minimum}'"))
                continue
        ok = _release(version) >= _release(minimum)
        hint = "" if ok else f"; too old, run  pip install -U '{name}>={minimum}'"
        lines.append((ok, f"[{'OK' if ok else 'FAIL'}]{'  ' if ok else ''} {name} {version} (needs ≥ {minimum}){hint}"))
    from .. import __file__ as location
    from .. import __version__

    lines.append((True, f"[OK]   rlhf_core {__version__} ({os.path.dirname(os.path.dirname(location))})"))
    return lines


def check_environment(out=print) -> bool:
    """Print the report and the device; True when every line is [OK]."""
    report = environment_report()
    for _, line in report:
        out(line)
    import torch

    from ..model import pick_device

    device = pick_device()
    detail = {"cuda": lambda: torch.cuda.get_device_name(0), "mps": lambda: "Apple GPU"}.get(device.type, lambda: "no GPU needed: every lesson runs on a CPU")()
    out(f"device: {device} ({detail})")
    return all(ok for ok, _ in report)
