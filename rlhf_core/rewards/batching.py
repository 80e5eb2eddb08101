"""Batched inference for reward models: length-sorted, token-budget batches, dynamic padding.

Scoring one text per forward (what the source repos do) leaves an accelerator almost idle; padding
a random batch to its longest member wastes most of the compute on pad tokens. Here the inputs are
tokenised once, sorted by length, cut into batches whose *padded* size stays under a token budget,
padded only to the longest member of their own batch, and the outputs are put back in input order.

    encoded = encode(tokenizer, texts, max_length=512)
    values = run_batched(lambda batch: model(**batch).logits, encoded.features, pad_id, device)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rlhf_core.progress import progress_bar

Features = dict[str, list[int]]

# Inputs above this count get a progress bar (``progress=None``); short calls stay quiet.
PROGRESS_MIN_INPUTS = 2048


@dataclass(frozen=True)
class Encoded:
    """Token ids per input (unpadded, already truncated) and which inputs were truncated."""

    features: list[Features]
    truncated: np.ndarray  # bool, one per input

    @property
    def n_truncated(self) -> int:
        return int(self.truncated.sum())


def encode(
    tokenizer: Any,
    texts: Sequence[str],
    pair_texts: Sequence[str] | None = None,
    *,
    max_length: int,
    add_special_tokens: bool = True,
) -> Encoded:
    """Tokenise texts (or text pairs) without padding, truncating to ``max_length`` and counting it.

    Everything is first tokenised untruncated so the count is exact; only the inputs that turn out
    too long are tokenised again with truncation (the tokenizer's ``truncation_side``, and
    ``longest_first`` for pairs), so the common case costs one tokenizer pass.

    Args:
        tokenizer: A Hugging Face tokenizer.
        texts: First (or only) segment of every input.
        pair_texts: Second segment of every input, or None for single texts.
        max_length: Most tokens an input may have, special tokens included.
        add_special_tokens: Passed to the tokenizer (False for GPT-2-style raw ids).

    Returns:
        The unpadded features (``input_ids`` and, where the tokenizer makes them,
        ``token_type_ids``) and a boolean truncation flag per input.
    """
    kwargs = dict(add_special_tokens=add_special_tokens, return_attention_mask=False, verbose=False)
    full = tokenizer(list(texts), list(pair_texts) if pair_texts is not None else None, truncation=False, **kwargs)
    keys = list(full.keys())
    features = [{k: full[k][i] for k in keys} for i in range(len(texts))]
    truncated = np.array([len(f["input_ids"]) > max_length for f in features], dtype=bool)
    long_rows = np.flatnonzero(truncated).tolist()
    if long_rows:
        cut = tokenizer(
            [texts[i] for i in long_rows],
            [pair_texts[i] for i in long_rows] if pair_texts is not None else None,
            truncation=True,
            max_length=max_length,
            **kwargs,
        )
        for j, i in enumerate(long_rows):
            features[i] = {k: cut[k][j] for k in keys}
    return Encoded(features, truncated)


def plan_batches(lengths: Sequence[int], max_batch_tokens: int, max_batch_size: int) -> list[np.ndarray]:
    """Group input indices into batches whose padded size ``len(batch) * longest <= max_batch_tokens``.

    Indices are taken longest first, so the first batch is the most memory-hungry one (an
    out-of-memory error shows up at once, not after an hour) and every batch holds inputs of
    similar length, which keeps padding small. An input longer than the budget gets a batch alone.
    """
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")
    batches: list[np.ndarray] = []
    start = 0
    while start < len(order):
        longest = max(int(lengths[order[start]]), 1)
        size = max(1, min(max_batch_size, max_batch_tokens // longest))
        batches.append(order[start : start + size])
        start += size
    return batches


def pad_batch(features: Sequence[Features], pad_id: int, device: torch.device | str) -> dict[str, torch.Tensor]:
    """Right-pad a list of feature dicts to their longest member and build the attention mask."""
    longest = max(len(f["input_ids"]) for f in features)
    out: dict[str, torch.Tensor] = {}
    for key in features[0]:
        fill = pad_id if key == "input_ids" else 0
        rows = [f[key] + [fill] * (longest - len(f[key])) for f in features]
        out[key] = torch.tensor(rows, dtype=torch.long)
    out["attention_mask"] = torch.tensor(
        [[1] * len(f["input_ids"]) + [0] * (longest - len(f["input_ids"])) for f in features], dtype=torch.long
    )
    return {k: v.to(device, non_blocking=True) for k, v in out.items()}


def run_batched(
    forward: Callable[[dict[str, torch.Tensor]], torch.Tensor],
    features: Sequence[Features],
    pad_id: int,
    device: torch.device | str,
    *,
    max_batch_tokens: int = 16384,
    max_batch_size: int = 256,
    progress: bool | None = None,
    desc: str = "scoring",
) -> np.ndarray:
    """Run ``forward`` over length-sorted, dynamically padded batches; return outputs in input order.

    Args:
        forward: Maps a padded batch (``input_ids``, ``attention_mask``, ...) to a float tensor whose
            first dimension is the batch (one value or one row of class scores per input).
        features: Unpadded token ids per input, as made by ``encode``.
        pad_id: Token id used for padding (masked out by ``attention_mask``).
        device: Where the batches go.
        max_batch_tokens: Budget on ``batch_size * padded_length``.
        max_batch_size: Cap on inputs per batch, whatever their length.
        progress: Show a tqdm bar; None shows one for runs of ``PROGRESS_MIN_INPUTS`` or more.
        desc: Label of the progress bar.

    Returns:
        A float32 array, ``result[i]`` belonging to ``features[i]``.
    """
    if not features:
        return np.zeros((0,), dtype=np.float32)
    lengths = [len(f["input_ids"]) for f in features]
    batches = plan_batches(lengths, max_batch_tokens, max_batch_size)
    show = len(features) >= PROGRESS_MIN_INPUTS if progress is None else progress
    result: np.ndarray | None = None
    with (
        torch.inference_mode(),
        progress_bar(total=len(features), desc=desc, unit="text", disable=not show, at_once=progress is True) as bar,
    ):
        for idx in batches:
            values = forward(pad_batch([features[i] for i in idx], pad_id, device)).float().cpu().numpy()
            if result is None:
                result = np.empty((len(features), *values.shape[1:]), dtype=np.float32)
            result[idx] = values
            bar.update(len(idx))
    assert result is not None
    return result


def last_token_states(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Hidden state of each row's last real token (right padding): the pooling of GPT-2 classifiers."""
    last = attention_mask.sum(dim=1) - 1
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
