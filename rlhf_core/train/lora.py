"""LoRA and QLoRA through peft: adapters on a frozen (optionally 4/8-bit) base.

The reference policy of A-LoL, DPO and KL terms is the same base with the adapters disabled
(``Engine.reference``), not a second copy in memory, as in the [LoL] seeds' PPO baseline.
"""

from __future__ import annotations

from typing import Any

import torch

from rlhf_core.config import LoraConfig


def add_lora(model: torch.nn.Module, cfg: LoraConfig) -> torch.nn.Module:
    """``model`` wrapped as a PeftModel whose only trainable weights are the adapters."""
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model, prepare_model_for_kbit_training

    if getattr(model, "is_quantized", False):  # QLoRA: norms in fp32, inputs that carry gradients
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    targets = "all-linear" if cfg.target_modules == ["all-linear"] else list(cfg.target_modules)
    task = "SEQ_CLS" if hasattr(model, "score") else "CAUSAL_LM"  # SEQ_CLS also trains the score head
    peft_cfg = PeftLoraConfig(
        r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, target_modules=targets, task_type=task
    )
    return get_peft_model(model, peft_cfg)


def quantization_config(mode: str | None) -> Any:
    """``from_pretrained(quantization_config=...)`` for QLoRA: NF4 4-bit or 8-bit (bitsandbytes, CUDA)."""
    if mode is None:
        return None
    if not torch.cuda.is_available():
        raise RuntimeError(f"quantization {mode!r} needs CUDA (bitsandbytes); remove compute.quantization on CPU")
    from transformers import BitsAndBytesConfig

    if mode == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )
