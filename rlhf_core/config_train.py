"""Optimiser, loop, adapter and sampling settings shared by every trainer (beside ``config.py``, which re-exports
them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser and loop settings shared by every trainer."""

    epochs: float = 1.0
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup_ratio: float = 0.0
    lr_schedule: Literal["linear", "cosine"] = "linear"  # after the warmup, down to 0 ([CRS], [RF]: cosine)
    adam_beta2: float = 0.999  # AdamW's second-moment decay ([CRS]: 0.95)
    max_grad_norm: float = 1.0
    max_length: int = 128
    checkpoint_every: int = 200  # optimizer steps between resumable checkpoints
    seed: int = 0


@dataclass(frozen=True)
class GenerationConfig:
    """How a stage samples from a policy (evaluation, V_ref, validation during training)."""

    max_new_tokens: int = 48
    do_sample: bool = False
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0  # nucleus sampling ([CRS] 0.9); 1.0: off
    batch_size: int = 64


@dataclass(frozen=True)
class LoraConfig:
    """Low-rank adapters (peft) on a frozen base; the [LoL] seeds' settings are the defaults."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    # ["all-linear"]: every Linear (and GPT-2 Conv1D) layer but the output head
    target_modules: list[str] = field(default_factory=lambda: ["all-linear"])
    merge: bool = True  # fold the adapters into the base after training; False: the result keeps them separate
