"""How models train: optimiser and loop settings every trainer shares, adapters, compute, and the SFT section."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from rlhf_core.config.models import ModelSource
from rlhf_core.config.parse import ConfigError


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
class LoraConfig:
    """Low-rank adapters (peft) on a frozen base; the [LoL] seeds' settings are the defaults."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    # ["all-linear"]: every Linear (and GPT-2 Conv1D) layer but the output head
    target_modules: list[str] = field(default_factory=lambda: ["all-linear"])
    merge: bool = True  # fold the adapters into the base after training; False: the result keeps them separate


@dataclass(frozen=True)
class ComputeConfig:
    """How training runs (not what it computes): precision, micro-batches, adapters (where: ``launcher``).

    ``train.batch_size`` stays the global batch of one optimiser step; ``micro_batch_size`` rows per
    forward on one process set the gradient accumulation (None: the global batch split over processes).
    """

    precision: Literal["no", "bf16", "fp16"] = "no"
    micro_batch_size: int | None = None
    gradient_checkpointing: bool = False
    compile: bool | None = None  # torch.compile; None: on where CUDA is available
    lora: LoraConfig | None = None
    quantization: Literal["4bit", "8bit"] | None = None  # QLoRA base weights (bitsandbytes, CUDA only)

    def __post_init__(self) -> None:
        if self.micro_batch_size is not None and self.micro_batch_size < 1:
            raise ConfigError(f"micro_batch_size must be >= 1, got {self.micro_batch_size}")
        if self.quantization is not None and self.lora is None:
            raise ConfigError("quantization trains adapters only: set lora as well")


@dataclass(frozen=True)
class SFTConfig:
    data: str  # dataset name with prompt/completion columns
    model: ModelSource
    train: TrainConfig
