"""Optimiser and loop settings shared by every trainer (beside ``config.py``, which re-exports them)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser and loop settings shared by every trainer."""

    epochs: float = 1.0
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup_ratio: float = 0.0
    max_grad_norm: float = 1.0
    max_length: int = 128
    checkpoint_every: int = 200  # optimizer steps between resumable checkpoints
    seed: int = 0
