"""DialogRPT rankers (GPT-2 sequence classifiers) of the Reddit and WoW rewards (docs/sources.md §3.2).

updown = build_scorer("dialogrpt_updown", revision="<sha>")
depth_wow = build_scorer("dialogrpt_depth", revision="<sha>", history_only=True)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from rlhf_core.rewards.base import register
from rlhf_core.rewards.batching import last_token_states
from rlhf_core.rewards.model_scorer import EOS, BatchedModelScorer


class DialogRPTScorer(BatchedModelScorer):
    """sigmoid(logit) of DialogRPT on ``context + resp``.

    Input: ``prompt + resp`` (the prompt already ends in ``<|endoftext|>``, so this is
    ``parent<|endoftext|>response``) with no trailing EOS, truncated on the right to the model's
    1,024 positions as the source does. The logit is read at the last real token (right padding),
    which is where GPT2ForSequenceClassification pools.
    """

    default_max_length = 1024

    def model_inputs(self, prompts: Sequence[str], responses: Sequence[str]) -> tuple[list[str], None]:
        return [p + r for p, r in zip(self.contexts(prompts), responses)], None

    def contexts(self, prompts: Sequence[str]) -> list[str]:
        return list(prompts)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        hidden = self.model.transformer(**batch).last_hidden_state
        logits = self.model.score(last_token_states(hidden, batch["attention_mask"]))
        return torch.sigmoid(logits.float().squeeze(-1))


@register("dialogrpt_updown")
class DialogRPTUpdownScorer(DialogRPTScorer):
    name = "dialogrpt_updown"
    default_model = "microsoft/DialogRPT-updown"


@register("dialogrpt_depth")
class DialogRPTDepthScorer(DialogRPTScorer):
    """Depth ranker; ``history_only=True`` (WoW / FaithDial) drops the knowledge turn.

    With ``history_only`` the context is the text after the prompt's first ``<|endoftext|>``
    (the dialogue history, which itself ends in ``<|endoftext|>``).
    """

    name = "dialogrpt_depth"
    default_model = "microsoft/DialogRPT-depth"

    def __init__(self, history_only: bool = False, **kwargs: Any):
        self.history_only = history_only
        super().__init__(**kwargs)
        if history_only:
            self.version += "+history_only"

    def invalid_reason(self, prompt: str, completion: str) -> str | None:
        if self.history_only and EOS not in prompt:
            return f"prompt has no {EOS} separating knowledge from history"
        return None

    def contexts(self, prompts: Sequence[str]) -> list[str]:
        return [p.split(EOS, 1)[1] for p in prompts] if self.history_only else list(prompts)
