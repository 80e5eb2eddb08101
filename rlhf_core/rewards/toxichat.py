"""ToxiChat offensive classifier as the Reddit ``safe`` reward (docs/sources.md §3.2).

The checkpoint is a ``GPT2ForOC_S_offensive`` (ToxiChat); ``toxichat_model.OffensiveClassifier``
loads it with ``from_pretrained`` from a local directory.

    safe = build_scorer("toxichat_safe", model="/models/toxichat-offensive")
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from rlhf_core.rewards.base import register
from rlhf_core.rewards.model_loading import load_model_and_tokenizer
from rlhf_core.rewards.model_scorer import EOS, BatchedModelScorer


@register("toxichat_safe")
class ToxiChatSafeScorer(BatchedModelScorer):
    """P(safe) of the response, read at the EOS that closes it.

    Input: ``prompt + resp + "<|endoftext|>"`` (the prompt already ends in EOS), tokenised without
    special tokens. Value: softmax(logits)[0] at that final EOS.

    Length: the source skips a whole batch (returns None) once its padded length reaches 512 tokens.
    Here no row is skipped: a row over 511 tokens is cut on the **left**, so the response and its
    closing EOS are always what is classified with as much recent context as fits, and the row is
    flagged as truncated (counted in ``score_with_stats`` and the annotation stats).
    """

    name = "toxichat_safe"
    default_model = ""  # no hub copy: the ToxiChat release is a download to convert into a directory
    default_max_length = 511
    add_special_tokens = False
    truncation_side = "left"

    def __init__(self, model: str, **kwargs: Any):
        super().__init__(model=model, **kwargs)

    def load(self, source: str, revision: str | None, device: str | None) -> tuple[Any, Any, torch.device]:
        from rlhf_core.rewards.toxichat_model import OffensiveClassifier  # transformers only when used

        return load_model_and_tokenizer(OffensiveClassifier, source, revision, device)

    def model_inputs(self, prompts: Sequence[str], responses: Sequence[str]) -> tuple[list[str], None]:
        return [p + r + EOS for p, r in zip(prompts, responses)], None

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        return torch.softmax(logits.float(), dim=-1)[:, 0]
