"""Where the course's shipped files live: one folder, ``rlhf_core/assets/``.

Every path to a shipped file is built here, from :data:`ASSETS_DIR`; ``checkpoint`` (``SFT_CHECKPOINT``),
``data`` (``HH_SAMPLE_PATH``) and ``course.studies`` (the three studies) re-export the ones they read.
:data:`LIBRARY_DIR`, the package folder, is found from this file, so it is right in a checkout and in an
installed wheel alike. ``pyproject.toml`` ships the folder's files as package data (``assets/*.pt``,
``*.json``, ``*.jsonl``).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["LIBRARY_DIR", "ASSETS_DIR", "SFT_CHECKPOINT", "MARGIN_STUDY_PATH", "FRONTIER_PATH", "HH_SAMPLE_PATH",
           "DISPLACEMENT_STUDY_PATH", "DIAGNOSIS_RUNS_PATH",
           "COURSE_PAIRS_PATH", "ON_POLICY_STUDY_PATH", "OVEROPTIMISATION_STUDY_PATH"]

LIBRARY_DIR = Path(__file__).resolve().parent   # the rlhf_core package folder, in a checkout or a wheel alike
ASSETS_DIR = LIBRARY_DIR / "assets"
SFT_CHECKPOINT = ASSETS_DIR / "sft.pt"              # made by `python -m rlhf_core.course.sft_checkpoint` (make sft-checkpoint)
MARGIN_STUDY_PATH = ASSETS_DIR / "margin_study.json"  # made by `python -m rlhf_core.course.studies --only margin`
FRONTIER_PATH = ASSETS_DIR / "frontier.json"          # made by `python -m rlhf_core.course.studies --only frontier`
DISPLACEMENT_STUDY_PATH = ASSETS_DIR / "displacement_study.json"  # made by `... course.studies --only displacement`
HH_SAMPLE_PATH = ASSETS_DIR / "hh_sample.jsonl"       # six HH-format rows, written by hand
DIAGNOSIS_RUNS_PATH = ASSETS_DIR / "diagnosis_runs.json"  # made by `python -m rlhf_core.course.diagnosis_round`
COURSE_PAIRS_PATH = ASSETS_DIR / "course_pairs.json.gz"   # made by `python -m rlhf_core.recipes`
ON_POLICY_STUDY_PATH = ASSETS_DIR / "on_policy_study.json"  # made by `python -m rlhf_core.course.topic_studies --only on_policy`
OVEROPTIMISATION_STUDY_PATH = ASSETS_DIR / "overoptimisation_study.json"  # `... course.topic_studies --only overoptimisation`
