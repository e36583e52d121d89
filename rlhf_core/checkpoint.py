"""Save and load a model with its tokenizer and the config that produced it.

The shipped SFT checkpoint (``checkpoints/sft.pt``) is made by ``python -m rlhf_core.train_sft``
from ``configs/sft.json``; it stores that config, so a test can re-run it and compare.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch

from .model import ModelConfig, TinyLM
from .tokenizer import WordTokenizer

__all__ = ["SFT_CHECKPOINT", "save_checkpoint", "load_checkpoint", "load_sft_model"]

SFT_CHECKPOINT = Path(__file__).parent / "checkpoints" / "sft.pt"


def save_checkpoint(path: str | Path, model: TinyLM, tokenizer: WordTokenizer, train_config: dict | None = None,
                    metrics: dict | None = None) -> None:
    """Write weights (float32, on CPU), model config, tokenizer, training config and final metrics."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().float().clone() for k, v in model.state_dict().items()}
    torch.save({
        "format": 1,
        "model_config": model.config.to_dict(),
        "state_dict": state,
        "tokenizer": tokenizer.to_dict(),
        "train_config": train_config or {},
        "metrics": metrics or {},
    }, path)


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[TinyLM, WordTokenizer, dict]:
    """``(model, tokenizer, meta)``; ``meta`` holds ``train_config`` and ``metrics``. The model is in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; create it with `make sft-checkpoint`")
    blob = torch.load(path, map_location="cpu", weights_only=True)
    model = TinyLM(ModelConfig.from_dict(blob["model_config"]))
    model.load_state_dict(blob["state_dict"])
    tokenizer = WordTokenizer.from_dict(blob["tokenizer"])
    meta = {"train_config": copy.deepcopy(blob.get("train_config", {})), "metrics": dict(blob.get("metrics", {}))}
    return model.to(device).eval(), tokenizer, meta


def load_sft_model(device: str | torch.device = "cpu") -> tuple[TinyLM, WordTokenizer, dict]:
    """The shipped SFT model: the reference policy of every DPO run in this course."""
    return load_checkpoint(SFT_CHECKPOINT, device)
