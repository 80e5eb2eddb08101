"""[RF] ArmoRM embeddings (docs/sources.md §2.5): backbone hidden states at chosen token positions.

Each conversation is rendered with the tokenizer's chat template and run through ``AutoModel``
(the backbone without its head). Stage 1 keeps the final token's last-layer hidden state; stage 2
also keeps the one at the start of the last occurrence of a token pattern (for llama3 the
``<|eot_id|>`` that closes the last user turn), which conditions ArmoRM's gating network.

    model, tok = load_backbone({"hub_id": "sfairXC/FsfairX-LLaMA3-RM-v0.1", "revision": "<sha>"}, builder="x")
    ids = render(tok, messages)
    (states,) = hidden_states_at(model, [ids], [[last_occurrence(ids, TOKEN_PATTERNS["llama3"]), len(ids) - 1]])
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from rlhf_core.data.chat import chat_text
from rlhf_core.data.tokenizer import source_option
from rlhf_core.models.load import from_pretrained_source, load_tokenizer
from rlhf_core.rewards.model_loading import inference_dtype, pick_device

TOKEN_PATTERNS: dict[str, tuple[int, ...]] = {
    "llama3": (128009, 128006, 78191, 128007, 271),  # <|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n
    "gemma2": (107, 108, 106, 2516, 108),  # <end_of_turn>\n<start_of_turn>model\n
}


def token_pattern(option: Any, *, builder: str) -> tuple[int, ...]:
    """A pattern by family name (``llama3``, ``gemma2``) or as an explicit list of token ids."""
    if isinstance(option, str) and option in TOKEN_PATTERNS:
        return TOKEN_PATTERNS[option]
    if isinstance(option, list) and option and all(isinstance(i, int) and not isinstance(i, bool) for i in option):
        return tuple(option)
    raise ValueError(
        f"builder {builder!r}: option 'token_pattern' must be one of {sorted(TOKEN_PATTERNS)} "
        f"or a list of token ids, got {option!r}"
    )


def load_backbone(option: Any, *, builder: str, device: str | None = None):
    """``(model, tokenizer)`` from a builder's ``model`` option, a ``ModelSource`` mapping; a relative
    ``path`` is taken from the repo root. The model is in eval mode on ``device`` (default: CUDA
    when available), in bf16 on GPUs that support it."""
    src = source_option(option, name="model", builder=builder)
    from transformers import AutoModel

    dev = pick_device(device)
    model = from_pretrained_source(AutoModel, src, dtype=inference_dtype(dev), use_safetensors=True)
    return model.to(dev).eval(), load_tokenizer(src)


def render(tokenizer, messages: list[dict], *, strip_bos_text: bool = True) -> np.ndarray:
    """Token ids ``(T,)`` int32 of a conversation rendered with the chat template (no generation
    prompt); int32 arrays keep a whole rendered dataset small while it waits to be batched.

    With ``strip_bos_text`` the template's BOS text is removed before tokenizing, as the seed does
    for FsfairX, so the tokenizer's own BOS is the only one.
    """
    text = chat_text(tokenizer, messages, strip_bos_text=strip_bos_text)
    return np.asarray(tokenizer(text)["input_ids"], dtype=np.int32)


def last_occurrence(ids, pattern: tuple[int, ...]) -> int | None:
    """Start index of the last occurrence of ``pattern`` in ``ids``, or None."""
    ids = np.asarray(ids)
    if len(ids) < len(pattern):
        return None
    hits = np.flatnonzero((np.lib.stride_tricks.sliding_window_view(ids, len(pattern)) == pattern).all(axis=1))
    return int(hits[-1]) if len(hits) else None


def gating_positions(ids, pattern: tuple[int, ...]) -> list[int] | None:
    """``[start of the last pattern, final token]``: where a stage-2 response's ``prompt_embedding``
    and ``embedding`` are read; None when the pattern is missing."""
    start = last_occurrence(ids, pattern)
    return None if start is None else [start, len(ids) - 1]


def hidden_states_at(
    model, sequences: list[np.ndarray], positions: list[list[int]], batch_size: int = 8
) -> list[np.ndarray]:
    """Last-layer hidden states of each sequence at its positions, as float32 ``(len(positions[i]), H)``.

    Sequences are batched longest first, so a batch holds similar lengths and pads little. Padding
    goes on the right and is masked out.
    """
    device = next(model.parameters()).device
    order = sorted(range(len(sequences)), key=lambda i: -len(sequences[i]))
    out: list[np.ndarray] = [None] * len(sequences)  # type: ignore[list-item]
    with torch.inference_mode():
        for lo in range(0, len(order), batch_size):
            batch = order[lo : lo + batch_size]
            width = len(sequences[batch[0]])
            ids = torch.zeros(len(batch), width, dtype=torch.long)  # pad id is irrelevant: masked
            mask = torch.zeros(len(batch), width, dtype=torch.long)
            for row, i in enumerate(batch):
                ids[row, : len(sequences[i])] = torch.as_tensor(sequences[i])
                mask[row, : len(sequences[i])] = 1
            hidden = model(input_ids=ids.to(device), attention_mask=mask.to(device)).last_hidden_state  # (B, T, H)
            for row, i in enumerate(batch):
                out[i] = hidden[row, positions[i]].float().cpu().numpy()
    return out
