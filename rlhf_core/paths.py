"""Where the course's shipped files live: one folder, ``rlhf_core/assets/``.

Every path to a shipped file is built here, from :data:`ASSETS_DIR`; the modules that use them
(``checkpoint``, ``data``, ``course.studies``, ``course.diagnosis_round``) re-export their own; :data:`LIBRARY_DIR`
is the one place the package folder is found (the grader reads it too). ``pyproject.toml`` ships the folder
as package data (``assets/*``).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["LIBRARY_DIR", "ASSETS_DIR", "SFT_CHECKPOINT", "MARGIN_STUDY_PATH", "FRONTIER_PATH", "HH_SAMPLE_PATH",
           "DIAGNOSIS_RUNS_PATH"]

LIBRARY_DIR = Path(__file__).resolve().parent   # the rlhf_core package folder, in a checkout or a wheel alike
ASSETS_DIR = LIBRARY_DIR / "assets"
SFT_CHECKPOINT = ASSETS_DIR / "sft.pt"              # made by `python -m rlhf_core.course.sft_checkpoint` (make sft-checkpoint)
MARGIN_STUDY_PATH = ASSETS_DIR / "margin_study.json"  # made by `python -m rlhf_core.course.studies --only margin`
FRONTIER_PATH = ASSETS_DIR / "frontier.json"          # made by `python -m rlhf_core.course.studies --only frontier`
HH_SAMPLE_PATH = ASSETS_DIR / "hh_sample.jsonl"       # six HH-format rows, written by hand
DIAGNOSIS_RUNS_PATH = ASSETS_DIR / "diagnosis_runs.json"  # made by `python -m rlhf_core.course.diagnosis_round`
