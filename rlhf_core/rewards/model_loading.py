"""Load a reward model the same way whether it is a pinned hub id or a local directory.

Both become a ``ModelSource`` and go through ``rlhf_core.models.load`` (offline-aware, revision
pinned, ``trust_remote_code`` off, safetensors weights). Extra files such as a converted head are
found with ``transformers.utils.cached_file`` (hub cache or local directory alike) and read with
``torch.load(weights_only=True)``.

    model, tokenizer, device = load_model_and_tokenizer(AutoModelForSequenceClassification,
                                                        "textattack/roberta-base-CoLA", revision="<sha>")
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from rlhf_core.config import ModelSource
from rlhf_core.models.load import from_pretrained_model, hub_kwargs, load_tokenizer


def model_source(source: str, revision: str | None) -> ModelSource:
    """A local directory, else a hub id, which must come with a pinned revision (ConfigError if not)."""
    if Path(source).is_dir():
        return ModelSource(path=source)
    return ModelSource(hub_id=source, revision=revision)


def pick_device(device: str | None) -> torch.device:
    """The given device, else CUDA when available, else CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def inference_dtype(device: torch.device) -> torch.dtype:
    """bf16 on GPUs that support it (halves memory traffic, tensor cores); fp32 on CPU."""
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def load_model_and_tokenizer(
    model_cls: Any, source: str, revision: str | None, device: str | None = None
) -> tuple[Any, Any, torch.device]:
    """Load ``model_cls.from_pretrained`` and its tokenizer for inference (eval mode, SDPA attention
    where the architecture has it).

    Args:
        model_cls: A transformers model class (``AutoModelForSequenceClassification``, ``RobertaModel``,
            or a ``PreTrainedModel`` subclass of ours).
        source: Local directory or hub id.
        revision: Commit hash for a hub id; ignored for a local directory.
        device: ``"cuda"``, ``"cpu"``, ...; None picks CUDA when available.

    Returns:
        ``(model, tokenizer, device)``; a tokenizer without a pad token gets EOS as one.
    """
    src = model_source(source, revision)
    dev = pick_device(device)
    try:
        model = from_pretrained_model(
            model_cls, src, dtype=inference_dtype(dev), attn_implementation="sdpa", use_safetensors=True
        )
    except ValueError as err:  # an architecture without SDPA (Longformer) keeps its own attention
        if "scaled_dot_product_attention" not in str(err):
            raise
        model = from_pretrained_model(model_cls, src, dtype=inference_dtype(dev), use_safetensors=True)
    return model.to(dev).eval(), load_tokenizer(src), dev


def load_extra_weights(source: str, revision: str | None, filename: str) -> dict[str, torch.Tensor]:
    """Read a tensor-only state dict shipped beside the model (hub file or file in the directory)."""
    from transformers.utils import cached_file

    name, kwargs = hub_kwargs(model_source(source, revision))
    path = cached_file(name, filename, revision=kwargs.get("revision"))
    return torch.load(path, map_location="cpu", weights_only=True)
