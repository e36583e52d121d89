"""Where the course's shipped files live: one folder, ``rlhf_core/assets/``.

Every path to a shipped file is built here, from :data:`ASSETS_DIR`; the modules that use them
(``checkpoint``, ``data``, ``experiments``) re-export their own. ``pyproject.toml`` ships the folder
as package data (``assets/*``).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["ASSETS_DIR", "SFT_CHECKPOINT", "MARGIN_STUDY_PATH", "FRONTIER_PATH", "HH_SAMPLE_PATH"]

ASSETS_DIR = Path(__file__).parent / "assets"
SFT_CHECKPOINT = ASSETS_DIR / "sft.pt"              # made by `python -m rlhf_core.train_sft` (make sft-checkpoint)
MARGIN_STUDY_PATH = ASSETS_DIR / "margin_study.json"  # made by `python -m rlhf_core.experiments --only margin`
FRONTIER_PATH = ASSETS_DIR / "frontier.json"          # made by `python -m rlhf_core.experiments --only frontier`
HH_SAMPLE_PATH = ASSETS_DIR / "hh_sample.jsonl"       # six HH-format rows, written by hand
