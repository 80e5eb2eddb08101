"""The ToxiChat offensive classifier (``GPT2ForOC_S_offensive``) as a loadable transformers model.

ToxiChat's checkpoint is a DialoGPT-medium body with dropout and ``Linear(hidden, 2)`` applied at the
EOS that closes each utterance. ``OffensiveClassifier`` uses the same parameter names, so that
checkpoint, saved as a directory, loads with ``OffensiveClassifier.from_pretrained(path)``; its unused
language-model head is ignored.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import GPT2Model, GPT2PreTrainedModel

from rlhf_core.rewards.batching import last_token_states


class OffensiveClassifier(GPT2PreTrainedModel):
    """GPT-2 body + dropout + ``off_classifier`` (class 0 safe, class 1 offensive)."""

    _keys_to_ignore_on_load_unexpected = [*GPT2PreTrainedModel._keys_to_ignore_on_load_unexpected, r"^lm_head\."]

    def __init__(self, config: Any):
        super().__init__(config)
        self.transformer = GPT2Model(config)
        self.dropout = nn.Dropout(config.embd_pdrop)
        self.off_classifier = nn.Linear(config.hidden_size, 2)
        self.post_init()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Offensive logits at each row's last real token, shape ``(batch, 2)``."""
        hidden = self.transformer(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.off_classifier(self.dropout(last_token_states(hidden, attention_mask)))
