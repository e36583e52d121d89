"""Save and load a model with its tokenizer and the config that produced it.

The shipped SFT checkpoint (``assets/sft.pt``) is made by ``python -m rlhf_core.course.sft_checkpoint``
from ``configs/sft.json``; it stores that config, so a test can re-run it and compare.

Training is reproducible bit for bit only on the same CPU and torch build (float reductions run in
another order elsewhere), so whatever writes shipped data also records :func:`machine_fingerprint`
next to it; :func:`same_machine` tells a test whether it may compare bit for bit. Data that carries
no fingerprint (the files made before fingerprints were recorded) counts as made elsewhere.
"""

from __future__ import annotations

import copy
import platform
from pathlib import Path

import torch

from .model import ModelConfig, TinyLM
from .paths import SFT_CHECKPOINT
from .tokenizer import WordTokenizer

__all__ = ["SFT_CHECKPOINT", "save_checkpoint", "load_checkpoint", "load_sft_model", "machine_fingerprint",
           "same_machine"]


def _cpu_info() -> tuple[str, str]:
    """``(model name, vendor)`` from /proc/cpuinfo where there is one, else from ``platform``."""
    model, vendor = "", ""
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name" and not model:
                model = value.strip()
            elif key == "vendor_id" and not vendor:
                vendor = value.strip()
            if model and vendor:
                break
    except OSError:
        pass
    return model or platform.processor() or "unknown", vendor or "unknown"


def machine_fingerprint() -> dict[str, str]:
    """What decides whether a CPU run repeats bit for bit: the CPU, its vector ISA as torch uses it,
    the torch build and the OS/architecture. Stored next to shipped data by the scripts that make it."""
    model, vendor = _cpu_info()
    return {
        "cpu": model,
        "vendor": vendor,
        "machine": platform.machine(),
        "system": platform.system(),
        "torch": str(torch.__version__),
        "cpu_capability": str(torch.backends.cpu.get_cpu_capability()),
    }


def same_machine(recorded: dict | None) -> bool:
    """True only when ``recorded`` (a :func:`machine_fingerprint`) is this machine's. A missing or
    partial fingerprint, or one with ``"unknown"`` fields, counts as another machine."""
    if not isinstance(recorded, dict):
        return False
    here = machine_fingerprint()
    return all(recorded.get(k) == v and v != "unknown" for k, v in here.items())


def save_checkpoint(path: str | Path, model: TinyLM, tokenizer: WordTokenizer, train_config: dict | None = None,
                    metrics: dict | None = None, machine: dict | None = None) -> None:
    """Write weights (float32, on CPU), model config, tokenizer, training config, final metrics and the
    fingerprint of the machine that trained it (``machine``; omitted when ``None``)."""
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
        **({"machine": dict(machine)} if machine is not None else {}),
    }, path)


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[TinyLM, WordTokenizer, dict]:
    """``(model, tokenizer, meta)``; ``meta`` holds ``train_config``, ``metrics`` and ``machine`` (the
    producing machine's fingerprint, ``None`` when not recorded). The model is in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; create it with `make sft-checkpoint`")
    blob = torch.load(path, map_location="cpu", weights_only=True)
    model = TinyLM(ModelConfig.from_dict(blob["model_config"]))
    model.load_state_dict(blob["state_dict"])
    tokenizer = WordTokenizer.from_dict(blob["tokenizer"])
    meta = {"train_config": copy.deepcopy(blob.get("train_config", {})), "metrics": dict(blob.get("metrics", {})),
            "machine": blob.get("machine")}
    return model.to(device).eval(), tokenizer, meta


def load_sft_model(device: str | torch.device = "cpu") -> tuple[TinyLM, WordTokenizer, dict]:
    """The shipped SFT model: the reference policy of every DPO run in this course."""
    return load_checkpoint(SFT_CHECKPOINT, device)
