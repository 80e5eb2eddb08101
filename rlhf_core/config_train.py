"""Optimiser and loop settings shared by every trainer (beside ``config.py``, which re-exports them)."""
from __future__ import annotations

from dataclasses import dataclass
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
